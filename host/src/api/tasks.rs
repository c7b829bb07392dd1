//! `tasks/`: list (with Pulp's filters), read, cancel (`PATCH {"state": "canceled"}`), delete
//! finished ones (409 otherwise), and `tasks/purge/`: delete the finished ones of long ago.

use std::collections::HashMap;

use axum::Json;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::Call;
use super::core_objects::{self, CoreObject, Deletable};
use super::list::{
    Bind, Conditions, ExtraFilter, Identity, ListQuery, in_list, resource, split_list,
};
use super::routes::Routes;
use super::support::{Fields, json_column, spawn_task};
use crate::db::{ago, now};
use crate::domain::hrefs;
use crate::domain::maintenance::{FINAL_STATES, Purger};
use crate::error::{ApiError, ApiResult};
use crate::state::App;
use crate::tasks::kinds::TaskArgs;
use crate::tasks::state;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/pulp/api/v3/tasks/", get(core_objects::list::<Task>))
        .route("/pulp/api/v3/tasks/purge/", post(purge))
        .route(
            "/pulp/api/v3/tasks/{id}/",
            get(core_objects::read::<Task>)
                .patch(cancel)
                .delete(core_objects::destroy::<Task>),
        )
}

resource! {
    /// A row of `tasks`.
    pub(crate) struct Task in "tasks" {
        name: String,
        state: String,
        created: String,
        started: Option<String>,
        finished: Option<String>,
        task_group_id: Option<String>,
        user_id: Option<String>,
        /// The worker's status row, while it is kept (a forgotten worker's tasks show none).
        worker_id: Option<String> = "(SELECT w.id FROM app_statuses w WHERE w.app_type = 'worker' AND w.name = tasks.worker)",
        error: Option<String>,
        progress_reports: String,
        created_resources: String,
        logging_cid: Option<String>,
    }
    filters: text state, text name, text logging_cid, time pulp_created = created,
        time started_at = started, time finished_at = finished, time unblocked_at = started;
    orderings: pulp_created = created, started_at = started, finished_at = finished, name, state;
    default_ordering: "-pulp_created";
}

/// A task as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskView {
    #[serde(flatten)]
    identity: Identity,
    name: String,
    state: String,
    logging_cid: String,
    /// The user who dispatched it (an href), if a user did.
    created_by: Option<String>,
    #[schema(format = DateTime)]
    unblocked_at: Option<String>,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// The href of the worker that ran it (`workers/<id>/`).
    worker: Option<String>,
    /// `{description, traceback}` of a failed task.
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    #[schema(value_type = Vec<Object>)]
    progress_reports: Value,
    /// Hrefs of the objects the task created.
    #[schema(value_type = Vec<String>)]
    created_resources: Value,
    reserved_resources_record: Vec<String>,
    parent_task: Option<String>,
    child_tasks: [String; 0],
    task_group: Option<String>,
}

impl TaskView {
    fn new(task: Task, reserved_resources_record: Vec<String>) -> TaskView {
        TaskView {
            identity: Identity::immutable(
                hrefs::task(&task.id),
                format!("prn:core.task:{}", task.id),
                task.created,
            ),
            name: task.name,
            state: task.state,
            logging_cid: task.logging_cid.unwrap_or_else(|| task.id.clone()),
            created_by: task.user_id.as_deref().map(hrefs::user),
            unblocked_at: task.started.clone(),
            started_at: task.started,
            finished_at: task.finished,
            worker: task.worker_id.as_deref().map(super::workers::href),
            error: task.error.map(|error| error_json(&error)),
            progress_reports: json_column(&task.progress_reports),
            created_resources: json_column(&task.created_resources),
            reserved_resources_record,
            parent_task: None,
            child_tasks: [],
            task_group: task.task_group_id.as_deref().map(super::task_groups::href),
        }
    }
}

/// A task's error as Pulp shows it: `{description, traceback}`. Granary has no traceback to
/// show (the description carries the chain of causes), so it is null.
fn error_json(text: &str) -> Value {
    let mut error = json_column(text);
    if let Some(object) = error.as_object_mut() {
        object.entry("traceback").or_insert(Value::Null);
    }
    error
}

/// A row of `task_resources`.
#[derive(Debug, sqlx::FromRow)]
struct TaskResource {
    task_id: String,
    resource: String,
    exclusive: i64,
}

/// The list filters [`resource_filters`] reads, for the API document.
pub(crate) const FILTERS: &[ExtraFilter] = &[
    ExtraFilter::one("worker", "Tasks run by this worker (an href)."),
    ExtraFilter::one("task_group", "Tasks of this task group (an href)."),
    ExtraFilter::one("state__ne", "Tasks in any other state."),
    ExtraFilter::one("name__ne", "Tasks of any other name."),
    ExtraFilter::one(
        "parent_task",
        "Tasks spawned by this task (an href; Granary tasks spawn none).",
    ),
    ExtraFilter::one(
        "child_tasks",
        "The task that spawned this one (an href; Granary tasks spawn none).",
    ),
    ExtraFilter::one(
        "created_resources",
        "Tasks that created this object (an href).",
    ),
    ExtraFilter::one("reserved_resources", "Tasks holding this resource."),
    ExtraFilter::many(
        "reserved_resources__in",
        "Tasks holding any of these resources.",
    ),
    ExtraFilter::one(
        "exclusive_resources",
        "Tasks holding this resource exclusively.",
    ),
    ExtraFilter::many(
        "exclusive_resources__in",
        "Tasks holding any of these exclusively.",
    ),
    ExtraFilter::one("shared_resources", "Tasks sharing this resource."),
    ExtraFilter::many(
        "shared_resources__in",
        "Tasks sharing any of these resources.",
    ),
    ExtraFilter::many(
        "reserved_resources_record",
        "Tasks that reserved all of these (`shared:` first for a shared one).",
    ),
];

/// The filters of Pulp's task list that are not plain fields: `created_resources`,
/// `reserved_resources` (and `exclusive_resources`, `shared_resources`, each with `__in`), and
/// `reserved_resources_record`. The plain ones (`state`, `name`, `worker`, `logging_cid` with
/// their lookups; `pulp_created`, `started_at`, `finished_at` ranges) are the spec's.
fn resource_filters(query: &ListQuery) -> Conditions {
    let mut conditions = Conditions::new();
    if let Some(href) = query.get("task_group").filter(|href| !href.is_empty()) {
        let id = href
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        conditions.push("tasks.task_group_id = ?", [Bind::from(id)]);
    }
    for (param, column) in [("state__ne", "tasks.state"), ("name__ne", "tasks.name")] {
        if let Some(value) = query.get(param).filter(|value| !value.is_empty()) {
            conditions.push(&format!("{column} <> ?"), [Bind::from(value.as_str())]);
        }
    }
    for param in ["parent_task", "child_tasks"] {
        if query.get(param).is_some_and(|href| !href.is_empty()) {
            conditions.push("1 = 0", []);
        }
    }
    if let Some(href) = query.get("worker").filter(|href| !href.is_empty()) {
        conditions.push(
            "tasks.worker IN (SELECT w.name FROM app_statuses w WHERE w.app_type = 'worker' AND w.id = ?)",
            [Bind::Text(super::workers::id_of(href).unwrap_or_default().to_owned())],
        );
    }
    if let Some(href) = query
        .get("created_resources")
        .filter(|href| !href.is_empty())
    {
        conditions.push(
            "REPLACE(created_resources, CAST(? AS TEXT), '') <> created_resources",
            [Bind::Text(format!("\"{href}\""))],
        );
    }
    for (param, kind) in [
        ("reserved_resources", ""),
        ("exclusive_resources", " AND tr.exclusive = 1"),
        ("shared_resources", " AND tr.exclusive = 0"),
    ] {
        for (name, many) in [(param.to_owned(), false), (format!("{param}__in"), true)] {
            let Some(value) = query.get(&name).filter(|value| !value.is_empty()) else {
                continue;
            };
            let items: Vec<Bind> = if many {
                split_list(value).map(Bind::from).collect()
            } else {
                vec![Bind::from(value.as_str())]
            };
            let marks = vec!["?"; items.len()].join(", ");
            conditions.push(
                &format!(
                    "EXISTS (SELECT 1 FROM task_resources tr WHERE tr.task_id = tasks.id AND tr.resource IN ({marks}){kind})"
                ),
                items,
            );
        }
    }
    if let Some(record) = query.get("reserved_resources_record") {
        for item in split_list(record) {
            let (resource, exclusive) = match item.strip_prefix("shared:") {
                Some(resource) => (resource, 0),
                None => (item, 1),
            };
            conditions.push(
                "EXISTS (SELECT 1 FROM task_resources tr WHERE tr.task_id = tasks.id AND tr.resource = ? AND tr.exclusive = ?)",
                [Bind::from(resource), Bind::Int(exclusive)],
            );
        }
    }
    conditions
}

/// `tasks/`: Pulp's filters and ordering, newest first by default.
impl CoreObject for Task {
    const VIEWSET: &'static str = "tasks";
    const VIEW_PERMISSION: Option<&'static str> = Some("core.view_task");
    type View = TaskView;

    fn filters(query: &ListQuery) -> ApiResult<Conditions> {
        Ok(resource_filters(query))
    }

    /// The resources of a page's tasks are read in one query: one per task made a page of 100
    /// tasks 100 database trips (7 ms).
    async fn views(app: &App, tasks: Vec<Task>) -> ApiResult<Vec<TaskView>> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let mut conditions = Conditions::new();
        let ids = tasks.iter().map(|task| Bind::from(task.id.as_str()));
        in_list(&mut conditions, "task_id", ids.collect());
        let sql = format!(
            "SELECT task_id, resource, exclusive FROM task_resources{} ORDER BY task_id, resource",
            conditions.where_clause()
        );
        let resources: Vec<TaskResource> = conditions
            .bind_as(sqlx::query_as(&sql))
            .fetch_all(app.db.pool())
            .await?;
        let mut records: HashMap<String, Vec<String>> = HashMap::new();
        for TaskResource {
            task_id,
            resource,
            exclusive,
        } in resources
        {
            let shown = if exclusive != 0 {
                resource
            } else {
                format!("shared:{resource}")
            };
            records.entry(task_id).or_default().push(shown);
        }
        Ok(tasks
            .into_iter()
            .map(|task| {
                let record = records.remove(&task.id).unwrap_or_default();
                TaskView::new(task, record)
            })
            .collect())
    }
}

/// Cancels a waiting task at once; a running one is marked `canceling` and its worker stops it.
async fn cancel(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    let task: Task = core_objects::authorized(&app, &caller, &id, "partial_update").await?;
    if fields.opt_str("state")?.as_deref() != Some(state::CANCELED) {
        return Err(ApiError::field(
            "state",
            "The only state a task can be set to is \"canceled\".",
        ));
    }
    let id = task.id;
    let mut tx = app.db.begin_write().await?;
    let current: String = sqlx::query_scalar("SELECT state FROM tasks WHERE id = $1")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    match current.as_str() {
        state::WAITING => {
            sqlx::query("UPDATE tasks SET state = 'canceled', finished = $2 WHERE id = $1")
                .bind(&id)
                .bind(now())
                .execute(&mut *tx)
                .await?;
        }
        state::RUNNING => {
            sqlx::query("UPDATE tasks SET state = 'canceling' WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        state::CANCELING => {}
        other => {
            return Err(ApiError::conflict(format!(
                "Task is already in state \"{other}\" and cannot be canceled."
            )));
        }
    }
    tx.commit().await?;
    core_objects::answer::<Task>(&app, &id).await
}

/// Only a finished task is deleted (409 otherwise), with its resources.
impl Deletable for Task {
    async fn delete(app: &App, task: Task) -> ApiResult<()> {
        if matches!(
            task.state.as_str(),
            state::WAITING | state::RUNNING | state::CANCELING
        ) {
            return Err(ApiError::conflict("Only finished tasks can be deleted."));
        }
        core_objects::delete_rows(
            app,
            &task.id,
            &[
                ("task_resources", "task_id"),
                ("role_assignments", "object_id"),
                ("tasks", "id"),
            ],
        )
        .await
    }
}

/// How old a finished task must be for a purge that names no time: Pulp's default, 30 days.
const PURGE_DEFAULT_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// `POST tasks/purge/ {finished_before?, states?}`: queues a task deleting the tasks in `states`
/// (final states; `["completed"]` by default) that finished before `finished_before` (30 days
/// ago by default) and that the caller may delete, as Pulp's `purge`.
async fn purge(Call { app, caller }: Call, fields: Fields) -> ApiResult<Response> {
    caller.authorize_action(&app, "tasks", "purge").await?;
    let finished_before = match fields.opt_str("finished_before")? {
        Some(value) => super::list::stored_time("finished_before", &value)?,
        None => ago(PURGE_DEFAULT_AGE),
    };
    let states = match fields.0.get("states") {
        None | Some(Value::Null) => vec![state::COMPLETED.to_owned()],
        Some(Value::Array(items)) => {
            let mut states = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(name) if FINAL_STATES.contains(&name) => states.push(name.to_owned()),
                    _ => {
                        return Err(ApiError::field(
                            "states",
                            format!("{item} is not a valid choice."),
                        ));
                    }
                }
            }
            states
        }
        Some(_) => {
            return Err(ApiError::field(
                "states",
                "Expected a list of items but got a single value.",
            ));
        }
    };
    let purger = Purger {
        user_id: caller.user.id.clone(),
        is_staff: caller.user.is_staff,
    };
    spawn_task(
        &app,
        "granary.tasks.purge",
        TaskArgs::PurgeTasks {
            finished_before,
            states,
            purger,
        },
        &[],
    )
    .await
}
