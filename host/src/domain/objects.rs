//! Repositories, remotes, distributions and publications as rows: applying validated changes
//! and deleting them with what hangs off them. The work of the update and delete tasks; the REST
//! API validates and queues, workers apply.

use serde::{Deserialize, Serialize};

use super::hrefs::{self, Href, RestNames};
use crate::db::{Db, new_id, now};

/// A column value an update task writes, typed so a NULL binds with the column's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnValue {
    /// A `TEXT` column.
    Text(Option<String>),
    /// A `BIGINT` column (booleans included).
    Int(Option<i64>),
}

/// Columns to set, in order, on one row.
pub type Changes = Vec<(String, ColumnValue)>;

/// Applies validated changes to a repository, remote, distribution, exporter or alternate
/// content source (the work of an update task), and moves its `pulp_last_updated`.
pub async fn update_object(
    db: &Db,
    names: &RestNames,
    href: &str,
    changes: &Changes,
) -> anyhow::Result<()> {
    let (table, id) = match hrefs::parse(names, href) {
        Some(Href::Repository { id, .. }) => ("repositories", id),
        Some(Href::Remote { id, .. }) => ("remotes", id),
        Some(Href::Distribution { id, .. }) => ("distributions", id),
        Some(Href::Exporter { id }) => ("exporters", id),
        Some(Href::AlternateContentSource { id, .. }) => ("acs_sources", id),
        _ => anyhow::bail!("{href} cannot be updated"),
    };
    let mut tx = db.begin_write().await?;
    let exists = sqlx::query(&format!("SELECT id FROM {table} WHERE id = $1"))
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?;
    anyhow::ensure!(exists.is_some(), "{href} no longer exists");
    let source_remote: Option<String> = if table == "acs_sources" {
        sqlx::query_scalar("SELECT remote_id FROM acs_sources WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?
    } else {
        None
    };
    for (column, value) in changes {
        // Column names come from the API's validation, never from a client; check anyway, as
        // they are spliced into SQL.
        anyhow::ensure!(
            !column.is_empty() && column.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "invalid column {column:?}"
        );
        let sql = format!("UPDATE {table} SET {column} = $2 WHERE id = $1");
        let query = sqlx::query(&sql).bind(&id);
        let query = match value {
            ColumnValue::Text(text) => query.bind(text.clone()),
            ColumnValue::Int(int) => query.bind(*int),
        };
        query
            .execute(&mut *tx)
            .await
            .map_err(|error| match error.as_database_error() {
                Some(db) if db.is_unique_violation() => {
                    anyhow::anyhow!("{column}: this field must be unique")
                }
                _ => anyhow::Error::from(error),
            })?;
    }
    sqlx::query(&format!("UPDATE {table} SET updated = $2 WHERE id = $1"))
        .bind(&id)
        .bind(crate::db::now())
        .execute(&mut *tx)
        .await?;
    if table == "remotes" {
        // Pages kept for conditional requests answered the remote as it was (its URL, its
        // credentials, its headers): a changed remote starts afresh.
        sqlx::query("DELETE FROM upstream_pages WHERE remote_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(before) = source_remote {
        // A source's records of paths it no longer lists, or of another remote, go.
        let now_remote: String =
            sqlx::query_scalar("SELECT remote_id FROM acs_sources WHERE id = $1")
                .bind(&id)
                .fetch_one(&mut *tx)
                .await?;
        super::acs::forget_unlisted(&mut tx, &id, now_remote != before).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes a repository, remote, distribution, publication or exporter (the work of a delete
/// task).
pub async fn delete_object(db: &Db, names: &RestNames, href: &str) -> anyhow::Result<()> {
    let (table, id) = match hrefs::parse(names, href) {
        Some(Href::Repository { id, .. }) => ("repositories", id),
        Some(Href::Remote { id, .. }) => ("remotes", id),
        Some(Href::Distribution { id, .. }) => ("distributions", id),
        Some(Href::Publication { id, .. }) => ("publications", id),
        Some(Href::Exporter { id }) => ("exporters", id),
        _ => anyhow::bail!("{href} cannot be deleted"),
    };
    let mut doomed = vec![(table, id)];
    if table == "distributions"
        && let Some(repository_id) = push_repository_of(db, names, &doomed[0].1).await?
    {
        // A push repository goes with its distribution, as in pulp_container: REST cannot
        // delete it on its own.
        doomed.push(("repositories", repository_id));
    }
    // The roles held on it go with it (ids are never reused, but lists of roles would show them).
    let roles = "DELETE FROM role_assignments WHERE object_id = $1";
    let mut tx = db.begin_write().await?;
    for (table, id) in doomed {
        let own = format!("DELETE FROM {table} WHERE id = $1");
        for sql in what_goes_with(table)
            .iter()
            .copied()
            .chain([own.as_str(), roles])
        {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The repository distribution `id` serves when it is one of its plugin's push repositories.
async fn push_repository_of(
    db: &Db,
    names: &RestNames,
    id: &str,
) -> anyhow::Result<Option<String>> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT r.id, r.plugin, r.type_name FROM distributions d
         JOIN repositories r ON r.id = d.repository_id WHERE d.id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.and_then(|(repository_id, plugin, type_name)| {
        names
            .plugin(&plugin)
            .is_some_and(|plugin| plugin.push_type() == Some(type_name.as_str()))
            .then_some(repository_id)
    }))
}

/// What deleting a row of `table` (its id bound as `$1`) first clears or deletes, in order.
fn what_goes_with(table: &str) -> &'static [&'static str] {
    match table {
        "repositories" => &[
            // Content stays (it may be in other repositories); orphan cleanup removes the rest.
            "DELETE FROM repository_content WHERE repository_id = $1",
            "UPDATE distributions SET repository_id = NULL WHERE repository_id = $1",
            "UPDATE distributions SET publication_id = NULL WHERE publication_id IN (SELECT id FROM publications WHERE repository_id = $1)",
            "DELETE FROM published_files WHERE publication_id IN (SELECT id FROM publications WHERE repository_id = $1)",
            "DELETE FROM publications WHERE repository_id = $1",
            "DELETE FROM repository_versions WHERE repository_id = $1",
        ],
        "publications" => &[
            "UPDATE distributions SET publication_id = NULL WHERE publication_id = $1",
            "DELETE FROM published_files WHERE publication_id = $1",
        ],
        "remotes" => &[
            "UPDATE repositories SET remote_id = NULL WHERE remote_id = $1",
            "UPDATE distributions SET remote_id = NULL WHERE remote_id = $1",
            "DELETE FROM remote_artifacts WHERE remote_id = $1",
        ],
        // The records of its exports; their files stay on disk, as in Pulp.
        "exporters" => &["DELETE FROM exports WHERE exporter_id = $1"],
        _ => &[],
    }
}

/// Creates a repository of `plugin`'s `type_name` with its version 0, as the REST API does
/// (imports with `create_repositories`, replication). Answers its id.
pub async fn create_repository(
    db: &Db,
    (plugin, type_name): (&str, &str),
    name: &str,
    description: Option<&str>,
    labels: &str,
) -> anyhow::Result<String> {
    let id = new_id();
    let stamp = now();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO repositories (id, plugin, type_name, name, description, labels, latest_version, created, updated)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
    )
    .bind(&id)
    .bind(plugin)
    .bind(type_name)
    .bind(name)
    .bind(description)
    .bind(labels)
    .bind(&stamp)
    .execute(&mut *tx)
    .await
    .map_err(|error| anyhow::anyhow!("creating the repository '{name}': {error}"))?;
    sqlx::query(
        "INSERT INTO repository_versions (id, repository_id, number, base_version_id, created)
         VALUES ($1, $2, 0, NULL, $3)",
    )
    .bind(new_id())
    .bind(&id)
    .bind(&stamp)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}
