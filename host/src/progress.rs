//! What running work sees of its task: its id and a place to report progress. The task system
//! ([`crate::tasks`]) creates a [`TaskHandle`] per task and writes its reports to the task row; the
//! work itself (plugins' calls, domain work, sync) only reports, so this sits below all of them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// One progress report, as Pulp shows it on a task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProgressReport {
    /// Human message, e.g. "Downloading Artifacts".
    pub message: String,
    /// Machine code, e.g. `sync.downloading.artifacts`.
    pub code: String,
    /// `running` or `completed`.
    pub state: String,
    /// Items done.
    pub done: u64,
    /// Items in all, when known.
    pub total: Option<u64>,
}

/// What running work sees of its task: its id and a place to report progress.
#[derive(Debug)]
pub struct TaskHandle {
    /// The task's id.
    pub id: String,
    reports: Mutex<Vec<ProgressReport>>,
    dirty: AtomicBool,
}

impl TaskHandle {
    pub(crate) fn new(id: String) -> Self {
        Self {
            id,
            reports: Mutex::new(Vec::new()),
            dirty: AtomicBool::new(false),
        }
    }

    /// Sets the report identified by `code`. Written to the database by the worker shortly after.
    pub fn report(&self, code: &str, message: &str, done: u64, total: Option<u64>) {
        let mut reports = self.reports.lock().expect("progress lock");
        match reports.iter_mut().find(|report| report.code == code) {
            Some(report) => {
                report.done = done;
                report.total = total;
                report.message = message.to_owned();
            }
            None => reports.push(ProgressReport {
                message: message.to_owned(),
                code: code.to_owned(),
                state: "running".into(),
                done,
                total,
            }),
        }
        self.dirty.store(true, Ordering::Release);
    }

    /// Adds `by` to the `done` count of report `code`.
    pub fn advance(&self, code: &str, message: &str, by: u64) {
        let done = {
            let reports = self.reports.lock().expect("progress lock");
            reports
                .iter()
                .find(|report| report.code == code)
                .map_or(0, |report| report.done)
        };
        self.report(code, message, done + by, None);
    }

    /// The reports as JSON, with `final_state` applied to each when the task ends.
    pub(crate) fn reports_json(&self, final_state: Option<&str>) -> String {
        let mut reports = self.reports.lock().expect("progress lock").clone();
        if let Some(final_state) = final_state {
            for report in &mut reports {
                report.state = final_state.to_owned();
            }
        }
        serde_json::to_string(&reports).unwrap_or_else(|_| "[]".into())
    }

    pub(crate) fn take_dirty(&self) -> Option<String> {
        self.dirty
            .swap(false, Ordering::AcqRel)
            .then(|| self.reports_json(None))
    }
}
