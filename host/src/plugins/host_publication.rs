//! Host side of `granary:plugin/publication`: metadata files and published stored files of the
//! publication in scope.

use std::collections::BTreeSet;

use super::bindings::current::granary::plugin::publication;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::CallState;
use super::{PluginError, validate_relative_path};
use crate::db::IN_VERSION;
use crate::db::placeholders;

/// Most entries in one `publish-content` call.
const MAX_PUBLISH_BATCH: usize = 1000;

impl publication::Host for CallState {
    async fn write_file(
        &mut self,
        relative_path: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if let Err(message) = validate_relative_path(&relative_path) {
            return Err(SandboxViolation::new(format!(
                "plugin tried to write a publication file outside the publication: {message}"
            ))
            .into());
        }
        self.charge_output(data.len())?;
        let Some(scope) = &mut self.scope.publication else {
            return Err(
                SandboxViolation::new("plugin wrote a publication file outside a publish").into(),
            );
        };
        if !scope.files.contains_key(&relative_path) {
            match scope.blobs.stage().await {
                Ok(staged) => {
                    scope.files.insert(relative_path.clone(), staged);
                }
                Err(error) => {
                    return Ok(Err(guest_error(format!(
                        "staging {relative_path} failed: {error}"
                    ))));
                }
            }
        }
        let staged = scope.files.get_mut(&relative_path).expect("inserted above");
        match staged.write(&data).await {
            Ok(()) => Ok(Ok(())),
            Err(error) => Ok(Err(guest_error(format!(
                "writing {relative_path} failed: {error}"
            )))),
        }
    }

    async fn publish_content(
        &mut self,
        entries: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if entries.len() > MAX_PUBLISH_BATCH {
            return Err(SandboxViolation::new(format!(
                "plugin published {} entries in one call; the limit is {MAX_PUBLISH_BATCH}",
                entries.len()
            ))
            .into());
        }
        for (path, _) in &entries {
            if let Err(message) = validate_relative_path(path) {
                return Err(SandboxViolation::new(format!(
                    "plugin tried to publish outside the publication: {message}"
                ))
                .into());
            }
        }
        let (Some(content), Some(publication)) = (&self.scope.content, &self.scope.publication)
        else {
            return Err(SandboxViolation::new("plugin published content outside a publish").into());
        };
        if entries.is_empty() {
            return Ok(Ok(()));
        }
        // Only files of units in the version being published may be published.
        let wanted: BTreeSet<&str> = entries.iter().map(|(_, id)| id.as_str()).collect();
        let sql = format!(
            // Driven by the ids (primary-key lookups), then one index probe per unit, so the
            // cost of a batch does not grow with the repository.
            "SELECT ca.id FROM content_artifacts ca WHERE ca.id IN ({}) AND EXISTS (
                 SELECT 1 FROM repository_content rc WHERE rc.content_id = ca.content_id AND {IN_VERSION})",
            placeholders(3, wanted.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql)
            .bind(&content.repository_id)
            .bind(content.version);
        for id in &wanted {
            query = query.bind(*id);
        }
        let found: BTreeSet<String> = match query.fetch_all(content.db.pool()).await {
            Ok(rows) => rows.into_iter().collect(),
            Err(error) => {
                return Ok(Err(guest_error(format!(
                    "checking published content failed: {error}"
                ))));
            }
        };
        if let Some(missing) = wanted.iter().find(|id| !found.contains(**id)) {
            return Err(SandboxViolation::new(format!(
                "plugin published {missing:?}, which is not a file of the repository version being published"
            ))
            .into());
        }
        let result: Result<(), sqlx::Error> = async {
            let mut tx = content.db.begin_write().await?;
            for chunk in entries.chunks(300) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("($1, ${}, ${}, NULL)", 2 * i + 2, 2 * i + 3)).collect();
                let sql = format!(
                    "INSERT INTO published_files (publication_id, relative_path, content_artifact_id, artifact_id) VALUES {}",
                    values.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(&publication.publication_id);
                for (path, id) in chunk {
                    query = query.bind(path).bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => Ok(Ok(())),
            Err(error)
                if error
                    .as_database_error()
                    .is_some_and(|db| db.is_unique_violation()) =>
            {
                Ok(Err(guest_error(
                    "a path was published twice in this publication",
                )))
            }
            Err(error) => Ok(Err(guest_error(format!(
                "recording published files failed: {error}"
            )))),
        }
    }
}
