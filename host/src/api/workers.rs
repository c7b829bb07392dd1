//! `workers/`: the task workers of the installation, as Pulp lists them (`pulp worker list`).
//! Read-only; the rows are the processes' `worker` statuses ([`crate::domain::app_statuses`]). A
//! Granary worker is a process, which runs up to `--workers` tasks at once: `current_task` is
//! the one it started first.

use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::core_objects::{self, CoreObject};
use super::list::{Bind, Conditions, ExtraFilter, Identity, ListQuery, resource};
use super::routes::Routes;
use super::support::json_column;
use crate::domain::app_statuses::AppType;
use crate::domain::hrefs::{self, API_ROOT};
use crate::error::{ApiError, ApiResult};
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/pulp/api/v3/workers/", get(core_objects::list::<Worker>))
        .route(
            "/pulp/api/v3/workers/{id}/",
            get(core_objects::read::<Worker>),
        )
}

/// `/pulp/api/v3/workers/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}workers/{id}/")
}

/// The id a worker's href names.
pub fn id_of(href: &str) -> Option<&str> {
    let start = href.find(API_ROOT)? + API_ROOT.len();
    href[start..]
        .strip_prefix("workers/")?
        .trim_end_matches('/')
        .split('/')
        .next()
}

resource! {
    /// A `worker` row of `app_statuses`.
    pub(crate) struct Worker in "(SELECT * FROM app_statuses WHERE app_type = 'worker') w" as w {
        name: String,
        created: String,
        heartbeat: String,
        versions: String,
        current_task: Option<String> = "(SELECT t.id FROM tasks t WHERE t.worker = w.name AND t.state IN ('running', 'canceling') ORDER BY t.started, t.id LIMIT 1)",
    }
    filters: text name, time last_heartbeat = heartbeat, time pulp_created = created;
    orderings: name, last_heartbeat = heartbeat, pulp_created = created;
    default_ordering: "name";
}

/// The list filters [`Worker::filters`] reads.
pub const FILTERS: &[ExtraFilter] = &[
    ExtraFilter::flag(
        "online",
        "Workers whose heartbeat is recent (`true`) or not (`false`).",
    ),
    ExtraFilter::flag(
        "missing",
        "Workers whose process stopped without saying so (`true`), or the others.",
    ),
];

/// A worker as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkerView {
    #[serde(flatten)]
    identity: Identity,
    /// The process's name, `<pid>@<uuid>`.
    name: String,
    #[schema(format = DateTime)]
    last_heartbeat: String,
    /// `{component: version}` of what the process has loaded.
    #[schema(value_type = Object)]
    versions: Value,
    /// The href of the task it is running, if any.
    current_task: Option<String>,
}

/// `online` / `missing` as Pulp's flags read: `true`, `True` or `1`; `false`, `False` or `0`.
fn flag(param: &str, value: &str) -> ApiResult<bool> {
    match value {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(ApiError::field(param, "Select a valid choice.")),
    }
}

impl CoreObject for Worker {
    const VIEWSET: &'static str = "workers";
    type View = WorkerView;

    /// `online=true` and `missing=false` are the same rows (a heartbeat within the time to
    /// live), as are their opposites.
    fn filters(query: &ListQuery) -> ApiResult<Conditions> {
        let mut conditions = Conditions::new();
        for (param, online_when) in [("online", true), ("missing", false)] {
            let Some(value) = query.get(param).filter(|value| !value.is_empty()) else {
                continue;
            };
            let comparison = if flag(param, value)? == online_when {
                "w.heartbeat >= ?"
            } else {
                "w.heartbeat < ?"
            };
            conditions.push(comparison, [Bind::Text(AppType::Worker.online_since())]);
        }
        Ok(conditions)
    }

    async fn views(_app: &App, workers: Vec<Worker>) -> ApiResult<Vec<WorkerView>> {
        Ok(workers
            .into_iter()
            .map(|worker| WorkerView {
                identity: Identity::core(
                    href(&worker.id),
                    "appstatus",
                    &worker.id,
                    &worker.created,
                    &worker.heartbeat,
                ),
                name: worker.name,
                last_heartbeat: worker.heartbeat,
                versions: json_column(&worker.versions),
                current_task: worker.current_task.as_deref().map(hrefs::task),
            })
            .collect())
    }
}
