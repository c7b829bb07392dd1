//! Publications: the plugin renders a repository version's metadata and says which stored files
//! are served at which paths; the host stores the metadata files as artifacts and records the
//! mapping. A publication becomes visible (`complete`) only when all of it is recorded.

use std::sync::Arc;

use anyhow::Context as _;

use super::Backends;
use crate::db::{new_id, now};
use crate::domain::artifacts;
use crate::domain::hrefs;
use crate::plugins::{CallScope, ContentScope, PublicationScope, VersionInfo};
use crate::progress::TaskHandle;

/// The repository and version a publication is made of.
#[derive(Debug, sqlx::FromRow)]
struct VersionRow {
    plugin: String,
    type_name: String,
    name: String,
    id: String,
}

/// Publishes the new version among `created` (the hrefs a task created) when the repository
/// has `autopublish`; returns the publication's href.
pub async fn autopublish(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    repository_id: &str,
    created: &[String],
) -> anyhow::Result<Option<String>> {
    let names = backends.plugins.rest_names();
    let Some(number) = created
        .iter()
        .find_map(|href| match hrefs::parse(&names, href) {
            Some(hrefs::Href::Version { id, number, .. }) if id == repository_id => Some(number),
            _ => None,
        })
    else {
        return Ok(None);
    };
    let autopublish: i64 = sqlx::query_scalar("SELECT autopublish FROM repositories WHERE id = $1")
        .bind(repository_id)
        .fetch_one(backends.db.pool())
        .await?;
    if autopublish == 0 {
        return Ok(None);
    }
    Ok(Some(publish(backends, task, repository_id, number).await?))
}

/// Publishes version `number` of a repository; returns the publication's href.
pub async fn publish(
    backends: &Backends,
    task: &Arc<TaskHandle>,
    repository_id: &str,
    number: i64,
) -> anyhow::Result<String> {
    let VersionRow {
        plugin: plugin_name,
        type_name,
        name: repository_name,
        id: version_id,
    } = sqlx::query_as::<_, VersionRow>(
        "SELECT r.plugin, r.type_name, r.name, v.id FROM repositories r
         JOIN repository_versions v ON v.repository_id = r.id AND v.number = $2 WHERE r.id = $1",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_optional(backends.db.pool())
    .await?
    .with_context(|| format!("version {number} of the repository does not exist"))?;
    let plugin = backends.plugin(&plugin_name).await?;

    let publication_id = new_id();
    let mut tx = backends.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO publications (id, plugin, type_name, repository_id, repository_version_id, complete, created)
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(&publication_id)
    .bind(&plugin_name)
    .bind(&type_name)
    .bind(repository_id)
    .bind(&version_id)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let scope = CallScope {
        task: Some(task.clone()),
        content: Some(ContentScope::new(
            backends.db.clone(),
            &plugin,
            repository_id,
            number,
        )),
        publication: Some(PublicationScope {
            publication_id: publication_id.clone(),
            files: Default::default(),
            blobs: backends.blobs.clone(),
        }),
        content_types: plugin.content_type_names(),
        ..CallScope::default()
    };
    let version = VersionInfo {
        repository_name,
        number: number as u64,
    };
    let (result, scope) = backends.plugins.publish(&plugin, scope, &version).await;
    let finished = match result {
        Ok(()) => record_metadata_files(backends, &publication_id, scope).await,
        Err(error) => Err(anyhow::anyhow!("{error}")),
    };
    if let Err(error) = finished {
        let delete = sqlx::query("DELETE FROM publications WHERE id = $1").bind(&publication_id);
        backends.db.write_one(delete).await?;
        return Err(error);
    }
    Ok(hrefs::publication(
        &backends.plugins.rest_names(),
        &plugin_name,
        &type_name,
        &publication_id,
    ))
}

async fn record_metadata_files(
    backends: &Backends,
    publication_id: &str,
    scope: CallScope,
) -> anyhow::Result<()> {
    let files = scope
        .publication
        .map(|publication| publication.files)
        .unwrap_or_default();
    let mut recorded = Vec::with_capacity(files.len());
    for (path, staged) in files {
        let artifact =
            artifacts::store_staged(&backends.db, &backends.blobs, staged, &path).await?;
        recorded.push((path, artifact.id));
    }
    let mut tx = backends.db.begin_write().await?;
    for (path, artifact_id) in recorded {
        sqlx::query(
            "INSERT INTO published_files (publication_id, relative_path, content_artifact_id, artifact_id)
             VALUES ($1, $2, NULL, $3)",
        )
        .bind(publication_id)
        .bind(&path)
        .bind(&artifact_id)
        .execute(&mut *tx)
        .await
        .map_err(|error| match error.as_database_error() {
            Some(db) if db.is_unique_violation() => {
                anyhow::anyhow!("the plugin published {path:?} both as a metadata file and as content")
            }
            _ => error.into(),
        })?;
    }
    sqlx::query("UPDATE publications SET complete = 1 WHERE id = $1")
        .bind(publication_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
