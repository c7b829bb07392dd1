//! `task-groups/`: tasks dispatched together (an ACS refresh queues one per path, an import one
//! per repository), as Pulp shows them (`pulp task-group show --wait`): counts of their tasks
//! per state and the tasks in short. As in Pulp, a user sees the groups with a task they may
//! see, and `PATCH {"state": "canceled"}` cancels every unfinished task of a group when they
//! may change all of them (200, or 409 while some still run).

use std::collections::HashMap;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::access::{Call, Caller};
use super::core_objects::{self, CoreObject};
use super::list::{Bind, Conditions, Identity, Visibility, in_list, resource};
use super::routes::Routes;
use super::support::Fields;
use crate::domain::hrefs::{self, API_ROOT};
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::state::App;
use crate::tasks::state;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
        .route(
            "/pulp/api/v3/task-groups/",
            get(core_objects::list::<TaskGroup>),
        )
        .route(
            "/pulp/api/v3/task-groups/{id}/",
            get(core_objects::read::<TaskGroup>).patch(cancel),
        )
}

/// `/pulp/api/v3/task-groups/<id>/`
pub fn href(id: &str) -> String {
    format!("{API_ROOT}task-groups/{id}/")
}

resource! {
    /// A row of `task_groups`.
    pub(crate) struct TaskGroup in "task_groups" {
        description: String,
        all_tasks_dispatched: i64,
    }
    filters: text description, time pulp_created = created;
    orderings: pulp_created = created;
    default_ordering: "-pulp_created";
}

/// A task of a group, in short (Pulp's `MinimalTaskSerializer`).
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub(crate) struct GroupTask {
    #[serde(skip)]
    task_group_id: String,
    #[serde(skip)]
    id: String,
    #[serde(skip)]
    created: String,
    #[serde(skip)]
    worker_id: Option<String>,
    name: String,
    state: String,
    #[schema(format = DateTime)]
    #[sqlx(rename = "started")]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    #[sqlx(rename = "finished")]
    finished_at: Option<String>,
}

/// A task of a group as shown: its identity and worker href besides [`GroupTask`].
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupTaskView {
    #[serde(flatten)]
    identity: Identity,
    #[serde(flatten)]
    task: GroupTask,
    #[schema(format = DateTime)]
    unblocked_at: Option<String>,
    worker: Option<String>,
}

/// A task group as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskGroupView {
    pulp_href: String,
    prn: String,
    description: String,
    all_tasks_dispatched: bool,
    waiting: usize,
    skipped: usize,
    running: usize,
    completed: usize,
    canceled: usize,
    failed: usize,
    canceling: usize,
    /// Progress reports over the whole group (none yet: each task has its own).
    #[schema(value_type = Vec<Object>)]
    group_progress_reports: Vec<serde_json::Value>,
    tasks: Vec<GroupTaskView>,
}

impl CoreObject for TaskGroup {
    const VIEWSET: &'static str = "task-groups";
    type View = TaskGroupView;

    /// The groups with a task the caller may see (Pulp's scoping).
    async fn visibility(app: &App, caller: &Caller) -> ApiResult<Visibility> {
        let visible = caller
            .visible_rows(app, "tasks", "core.view_task", "t.id")
            .await?;
        Ok(match visible {
            None => Visibility::all(),
            Some((sql, binds)) => Visibility::only(Conditions::of(
                &format!(
                    "EXISTS (SELECT 1 FROM tasks t WHERE t.task_group_id = task_groups.id AND ({sql}))"
                ),
                binds.into_iter().map(Bind::from),
            )),
        })
    }

    /// The tasks of the page's groups are read in one query.
    async fn views(app: &App, groups: Vec<TaskGroup>) -> ApiResult<Vec<TaskGroupView>> {
        let mut conditions = Conditions::new();
        in_list(
            &mut conditions,
            "task_group_id",
            groups
                .iter()
                .map(|group| Bind::from(group.id.as_str()))
                .collect(),
        );
        let sql = format!(
            "SELECT task_group_id, id, created, name, state, started, finished,
                    (SELECT w.id FROM app_statuses w WHERE w.app_type = 'worker' AND w.name = tasks.worker) AS worker_id
             FROM tasks{} ORDER BY created, id",
            conditions.where_clause()
        );
        let rows: Vec<GroupTask> = conditions
            .bind_as(sqlx::query_as(&sql))
            .fetch_all(app.db.pool())
            .await?;
        let mut by_group: HashMap<String, Vec<GroupTask>> = HashMap::new();
        for row in rows {
            by_group
                .entry(row.task_group_id.clone())
                .or_default()
                .push(row);
        }
        Ok(groups
            .into_iter()
            .map(|group| {
                let tasks = by_group.remove(&group.id).unwrap_or_default();
                let count = |wanted: &str| tasks.iter().filter(|task| task.state == wanted).count();
                TaskGroupView {
                    pulp_href: href(&group.id),
                    prn: format!("prn:core.taskgroup:{}", group.id),
                    description: group.description,
                    all_tasks_dispatched: group.all_tasks_dispatched != 0,
                    waiting: count(state::WAITING),
                    skipped: count("skipped"),
                    running: count(state::RUNNING),
                    completed: count(state::COMPLETED),
                    canceled: count(state::CANCELED),
                    failed: count(state::FAILED),
                    canceling: count(state::CANCELING),
                    group_progress_reports: Vec::new(),
                    tasks: tasks
                        .into_iter()
                        .map(|task| GroupTaskView {
                            identity: Identity::immutable(
                                hrefs::task(&task.id),
                                format!("prn:core.task:{}", task.id),
                                task.created.clone(),
                            ),
                            unblocked_at: task.started_at.clone(),
                            worker: task.worker_id.as_deref().map(super::workers::href),
                            task,
                        })
                        .collect(),
                }
            })
            .collect())
    }
}

/// `PATCH {"state": "canceled"}`: cancels every waiting or running task of the group, when the
/// caller may change each of them (403 otherwise); answers the group, with 409 while some of
/// its tasks still run (Pulp's answer).
async fn cancel(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let group: TaskGroup = core_objects::authorized(&app, &caller, &id, "partial_update").await?;
    if fields.opt_str("state")?.as_deref() != Some(state::CANCELED) {
        return Err(ApiError::field(
            "state",
            "The only state a task can be set to is \"canceled\".",
        ));
    }
    let tasks: Vec<String> =
        sqlx::query_scalar("SELECT id FROM tasks WHERE task_group_id = $1 ORDER BY created")
            .bind(&group.id)
            .fetch_all(app.db.pool())
            .await?;
    for task in &tasks {
        caller
            .authorize(&app, "tasks", "partial_update", &core_objects::on(task))
            .await?;
    }
    let mut tx = app.db.begin_write().await?;
    // No task of the group starts from now on: the ones waiting end canceled, the running ones
    // are asked to stop (their workers see `canceling`).
    sqlx::query(
        "UPDATE tasks SET state = 'canceled', finished = $2 WHERE task_group_id = $1 AND state = 'waiting'",
    )
    .bind(&group.id)
    .bind(crate::db::now())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE tasks SET state = 'canceling' WHERE task_group_id = $1 AND state = 'running'",
    )
    .bind(&group.id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE task_groups SET all_tasks_dispatched = 1 WHERE id = $1")
        .bind(&group.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let answer = core_objects::answer::<TaskGroup>(&app, &group.id).await?;
    let busy = [state::WAITING, state::RUNNING]
        .iter()
        .any(|wanted| answer.0[*wanted].as_u64().unwrap_or(0) > 0);
    let status = if busy {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    Ok((status, answer).into_response())
}
