//! Host side of `granary:plugin/log`, `granary:plugin/progress` and the record-only `types`.

use super::bindings::current::granary::plugin::{log, progress};
use super::scope::CallState;

/// Longest log message kept; the rest is cut.
const MAX_LOG_MESSAGE: usize = 4096;

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let task = self
            .scope
            .task
            .as_ref()
            .map(|task| task.id.clone())
            .unwrap_or_default();
        match level {
            log::Level::Trace => tracing::trace!(target: "granary::plugin", %task, "{message}"),
            log::Level::Debug => tracing::debug!(target: "granary::plugin", %task, "{message}"),
            log::Level::Info => tracing::info!(target: "granary::plugin", %task, "{message}"),
            log::Level::Warn => tracing::warn!(target: "granary::plugin", %task, "{message}"),
            log::Level::Error => tracing::error!(target: "granary::plugin", %task, "{message}"),
        }
        Ok(())
    }
}

impl progress::Host for CallState {
    async fn report(
        &mut self,
        code: String,
        message: String,
        done: u64,
        total: Option<u64>,
    ) -> wasmtime::Result<()> {
        if let Some(task) = &self.scope.task {
            let code: String = code.chars().take(128).collect();
            let message: String = message.chars().take(256).collect();
            task.report(&code, &message, done, total);
        }
        Ok(())
    }
}
