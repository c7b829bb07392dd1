//! Streaming the units a `sync` declares back to the host.

#[cfg(not(target_arch = "wasm32"))]
use crate::harness::imports::sync_sink as raw;
#[cfg(target_arch = "wasm32")]
use crate::wit::granary::plugin::sync_sink as raw;
use crate::{PluginError, UnitDeclaration};

/// How many units an [`Emitter`] hands to the host at a time (the host accepts at most 1000).
pub const BATCH_SIZE: usize = 500;

/// Batches declared units and hands them to the host [`BATCH_SIZE`] at a time, so a sync of any
/// size runs in constant memory. Each batch call returns when the host is ready for more.
///
/// Call [`Emitter::finish`] at the end: units still buffered when an `Emitter` is dropped are not
/// emitted.
#[derive(Debug, Default)]
#[must_use = "call `finish` to emit the last batch"]
pub struct Emitter {
    batch: Vec<UnitDeclaration>,
    emitted: u64,
}

impl Emitter {
    /// An emitter with nothing emitted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `unit`; sends a batch to the host when [`BATCH_SIZE`] are pending.
    pub fn emit(&mut self, unit: UnitDeclaration) -> Result<(), PluginError> {
        self.batch.push(unit);
        if self.batch.len() >= BATCH_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    /// How many units were declared so far (sent or pending).
    pub fn emitted(&self) -> u64 {
        self.emitted + self.batch.len() as u64
    }

    /// Sends the pending units to the host now.
    pub fn flush(&mut self) -> Result<(), PluginError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        raw::emit(&self.batch)?;
        self.emitted += self.batch.len() as u64;
        self.batch.clear();
        Ok(())
    }

    /// Sends the last batch; returns how many units were declared in all.
    pub fn finish(mut self) -> Result<u64, PluginError> {
        self.flush()?;
        Ok(self.emitted)
    }
}
