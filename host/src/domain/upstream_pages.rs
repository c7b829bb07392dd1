//! The `upstream_pages` table: pages a remote's upstream answered with a validator, so that a
//! re-sync and a pull-through page ask again with `If-None-Match` / `If-Modified-Since` and a 304
//! costs the upstream nothing (see `plugins/host_http.rs`, which decides what is kept).

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::db::{Db, now};
use crate::plugins::{CachedPage, UpstreamPages};

/// The kept pages of one remote.
pub struct RemotePages {
    pub db: Arc<Db>,
    pub remote_id: String,
}

impl UpstreamPages for RemotePages {
    fn lookup<'a>(
        &'a self,
        url: &'a str,
        request_headers: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<Option<CachedPage>>> {
        Box::pin(async move {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT headers, body FROM upstream_pages
                 WHERE remote_id = $1 AND url = $2 AND request_headers = $3",
            )
            .bind(&self.remote_id)
            .bind(url)
            .bind(request_headers)
            .fetch_optional(self.db.pool())
            .await?;
            Ok(row.and_then(|(headers, body)| {
                // A row this version cannot read is a miss, not an error: the page is asked again.
                let headers = serde_json::from_str(&headers).ok()?;
                Some(CachedPage { headers, body })
            }))
        })
    }

    fn keep<'a>(
        &'a self,
        url: &'a str,
        request_headers: &'a str,
        page: CachedPage,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let headers = serde_json::to_string(&page.headers)?;
            self.db
                .write_one(
                    sqlx::query(
                        "INSERT INTO upstream_pages
                             (remote_id, url, request_headers, headers, body, fetched)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (remote_id, url, request_headers) DO UPDATE
                         SET headers = excluded.headers, body = excluded.body,
                             fetched = excluded.fetched",
                    )
                    .bind(&self.remote_id)
                    .bind(url)
                    .bind(request_headers)
                    .bind(headers)
                    .bind(page.body)
                    .bind(now()),
                )
                .await?;
            Ok(())
        })
    }
}
