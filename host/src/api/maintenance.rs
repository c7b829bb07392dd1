//! Maintenance endpoints, as in Pulp: `orphans/cleanup/`, `repositories/reclaim_space/`,
//! `repair/` and `repositories/<plugin>/<type>/<id>/versions/<n>/repair/`. Each queues a task
//! (202); the work is in [`crate::domain::maintenance`].

use axum::extract::Path;
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use super::access::Call;
use super::list::object_id;
use super::repositories;
use super::routes::Routes;
use super::support::{Fields, spawn_task, typed_route, version_id};
use crate::domain::hrefs::{self, Collection, Href};
use crate::error::{ApiError, ApiResult};
use crate::rbac::policy::Subject;
use crate::state::App;
use crate::tasks::ResourceLock;
use crate::tasks::kinds::TaskArgs;

/// Pulp's default `ORPHAN_PROTECTION_TIME`: a day, in minutes.
const DEFAULT_ORPHAN_PROTECTION_MINUTES: i64 = 24 * 60;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/pulp/api/v3/orphans/cleanup/", post(orphan_cleanup))
        .route(
            "/pulp/api/v3/repositories/reclaim_space/",
            post(reclaim_space),
        )
        .route("/pulp/api/v3/repair/", post(repair_all))
        .route(
            "/pulp/api/v3/repositories/{plugin}/{type}/{id}/versions/{number}/repair/",
            post(repair_version),
        )
}

/// `POST {orphan_protection_time?, content_hrefs?}`: deletes content in no repository version
/// and artifacts nothing uses, created more than `orphan_protection_time` minutes ago.
async fn orphan_cleanup(Call { app, caller }: Call, fields: Fields) -> ApiResult<Response> {
    caller
        .authorize_action(&app, "orphans/cleanup", "create")
        .await?;
    let protection_minutes = fields
        .opt_int("orphan_protection_time", 0, 100 * 365 * 24 * 60)?
        .unwrap_or(DEFAULT_ORPHAN_PROTECTION_MINUTES);
    let content_ids = if fields.has("content_hrefs") {
        let mut ids = Vec::new();
        for href in fields.href_list(&app.plugins.rest_names(), "content_hrefs")? {
            match href {
                Href::Content { id, .. } => ids.push(id),
                _ => {
                    return Err(ApiError::field(
                        "content_hrefs",
                        "Invalid hyperlink - not a content href.",
                    ));
                }
            }
        }
        Some(ids)
    } else {
        None
    };
    spawn_task(
        &app,
        "granary.tasks.orphan.orphan_cleanup",
        TaskArgs::OrphanCleanup {
            protection_minutes,
            content_ids,
        },
        &[ResourceLock::exclusive("/pulp/api/v3/orphans/cleanup/")],
    )
    .await
}

/// The repository a `repositories/<plugin>/<type>/<id>/` href names, checked to exist.
async fn existing_repository(app: &App, field: &str, href: &Href) -> ApiResult<(String, String)> {
    let Href::Repository {
        plugin,
        type_name,
        id,
    } = href
    else {
        return Err(ApiError::field(
            field,
            "Invalid hyperlink - not a repository href.",
        ));
    };
    sqlx::query("SELECT id FROM repositories WHERE id = $1 AND plugin = $2 AND type_name = $3")
        .bind(id)
        .bind(plugin)
        .bind(type_name)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(|| ApiError::field(field, "Invalid hyperlink - Object does not exist."))?;
    let href = hrefs::repository(&app.plugins.rest_names(), plugin, type_name, id);
    Ok((id.clone(), href))
}

/// `POST {repo_hrefs, repo_versions_keeplist?}`: drops the stored bytes of content in those
/// repositories that can be downloaded again and that no kept version needs. `repo_hrefs` may
/// be `["*"]`: every repository.
async fn reclaim_space(Call { app, caller }: Call, fields: Fields) -> ApiResult<Response> {
    caller
        .authorize(
            &app,
            "repositories/reclaim_space",
            "create",
            &Subject::default(),
        )
        .await?;
    let all = matches!(
        fields.0.get("repo_hrefs"),
        Some(Value::Array(items)) if items.len() == 1 && items[0] == "*"
    );
    let names = app.plugins.rest_names();
    let mut repositories: Vec<(String, String)> = Vec::new();
    if all {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, plugin, type_name FROM repositories")
                .fetch_all(app.db.pool())
                .await?;
        for (id, plugin, type_name) in rows {
            let href = hrefs::repository(&names, &plugin, &type_name, &id);
            repositories.push((id, href));
        }
    } else {
        for href in fields.href_list(&names, "repo_hrefs")? {
            repositories.push(existing_repository(&app, "repo_hrefs", &href).await?);
        }
        if repositories.is_empty() {
            return Err(ApiError::field("repo_hrefs", "This field is required."));
        }
    }
    let mut keep = Vec::new();
    for href in fields.href_list(&names, "repo_versions_keeplist")? {
        let Href::Version { id, number, .. } = href else {
            return Err(ApiError::field(
                "repo_versions_keeplist",
                "Invalid hyperlink - not a repository version href.",
            ));
        };
        if !repositories.iter().any(|(repository, _)| *repository == id) {
            return Err(ApiError::field(
                "repo_versions_keeplist",
                "Some of the specified repository versions do not belong to the specified repositories.",
            ));
        }
        version_id(&app, "repo_versions_keeplist", &id, number).await?;
        keep.push((id, number));
    }
    let locks: Vec<ResourceLock> = repositories
        .iter()
        .map(|(_, href)| ResourceLock::exclusive(href.clone()))
        .collect();
    spawn_task(
        &app,
        "granary.tasks.reclaim_space.reclaim",
        TaskArgs::ReclaimSpace {
            repository_ids: repositories.into_iter().map(|(id, _)| id).collect(),
            keep,
        },
        &locks,
    )
    .await
}

/// `verify_checksums`, which defaults to true as in Pulp.
fn verify_checksums(fields: &Fields) -> ApiResult<bool> {
    Ok(fields.opt_bool("verify_checksums")?.unwrap_or(true))
}

/// `POST {verify_checksums?}`: checks every stored artifact.
async fn repair_all(Call { app, caller }: Call, fields: Fields) -> ApiResult<Response> {
    caller.authorize_action(&app, "repair", "create").await?;
    let verify_checksums = verify_checksums(&fields)?;
    spawn_task(
        &app,
        "granary.tasks.repository.repair_all_artifacts",
        TaskArgs::Repair {
            version: None,
            verify_checksums,
        },
        &[ResourceLock::exclusive("/pulp/api/v3/repair/")],
    )
    .await
}

/// `POST {verify_checksums?}`: checks the artifacts of one repository version.
async fn repair_version(
    Call { app, caller }: Call,
    Path((plugin, segment, id, number)): Path<(String, String, String, String)>,
    fields: Fields,
) -> ApiResult<Response> {
    repositories::versions_of(&app, &caller, (&plugin, &segment, &id), "repair").await?;
    let (_, type_name) = typed_route(&app, &plugin, Collection::Repositories, &segment)?;
    let id = object_id(&id)?;
    let number: i64 = number.parse().map_err(|_| ApiError::not_found())?;
    sqlx::query(
        "SELECT 1 FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
         WHERE r.id = $1 AND r.plugin = $2 AND r.type_name = $3 AND v.number = $4",
    )
    .bind(&id)
    .bind(&plugin)
    .bind(&type_name)
    .bind(number)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)?;
    let verify_checksums = verify_checksums(&fields)?;
    let lock = ResourceLock::shared(hrefs::repository(
        &app.plugins.rest_names(),
        &plugin,
        &type_name,
        &id,
    ));
    spawn_task(
        &app,
        "granary.tasks.repository.repair_version",
        TaskArgs::Repair {
            version: Some((id, number)),
            verify_checksums,
        },
        &[lock],
    )
    .await
}
