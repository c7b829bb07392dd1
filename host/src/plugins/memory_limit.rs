//! One memory budget for everything a plugin instance allocates.
//!
//! wasmtime's `StoreLimits` checks each linear memory and each table against the limit on its
//! own. A component holds several core instances, and a core module may declare several
//! memories (multi-memory is on by default), so a guest could reach the limit many times over:
//! about 32 × 256 MiB per instance with the limits the host sets. [`InstanceMemory`] adds up every
//! memory and every table of the store (one store per call, so one instance) and refuses the
//! growth that would take the sum past the budget.

use wasmtime::ResourceLimiter;

/// Bytes charged for one table element: wasmtime stores a pointer per element.
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();
/// Core instances, tables and memories a store may create: a component built by today's tools has
/// a handful of each (the guest, the WASI adapter, shims); the budget is what bounds their size.
const MAX_INSTANCES: usize = 32;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 32;

/// The store's resource limiter: every memory and table of the call's instance draws on one
/// budget of bytes. A growth past it traps, so the guest stops with the host's memory-limit error
/// instead of seeing `memory.grow` fail and carrying on.
#[derive(Debug)]
pub struct InstanceMemory {
    budget: usize,
    used: usize,
    /// Bytes granted by the last growth: given back when the growth then fails in wasmtime (the
    /// operating system refused the memory), as no callback says it succeeded.
    last_grant: usize,
}

impl InstanceMemory {
    /// A limiter allowing `budget` bytes in all.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            last_grant: 0,
        }
    }

    /// Bytes of memories and tables the instance holds.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used
    }

    /// Grants growing something from `current` to `desired` bytes, or fails with why not.
    fn grow(
        &mut self,
        what: &str,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        let total = self.used.saturating_add(more);
        if total > self.budget || maximum.is_some_and(|maximum| desired > maximum) {
            // "growing memory" is what the runtime's error classification looks for.
            wasmtime::bail!(
                "forcing trap when growing memory: the {what} would take the instance to {total} bytes of memories and tables, over its limit of {} bytes",
                self.budget
            );
        }
        self.used = total;
        self.last_grant = more;
        Ok(true)
    }

    fn growth_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= std::mem::take(&mut self.last_grant);
        Err(error.context("forcing trap when growing memory failed"))
    }
}

impl ResourceLimiter for InstanceMemory {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("linear memory", current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.growth_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        self.grow("table", bytes(current), bytes(desired), maximum.map(bytes))
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.growth_failed(error)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::{Engine, Memory, MemoryType, Ref, Store, Table, TableType};

    use super::*;

    const PAGE: usize = 64 * 1024;
    const MIB: usize = 1024 * 1024;

    fn store(budget: usize) -> Store<InstanceMemory> {
        let mut store = Store::new(&Engine::default(), InstanceMemory::new(budget));
        store.limiter(|limits| limits);
        store
    }

    #[test]
    fn every_memory_of_an_instance_draws_on_one_budget() {
        let mut store = store(8 * MIB);
        // Two memories of 5 MiB: each alone is under the limit (what `StoreLimits` checked),
        // together they are over it.
        let first = Memory::new(&mut store, MemoryType::new(0, None)).unwrap();
        let second = Memory::new(&mut store, MemoryType::new(0, None)).unwrap();
        first.grow(&mut store, (5 * MIB / PAGE) as u64).unwrap();
        assert_eq!(store.data().used(), 5 * MIB);
        let error = second
            .grow(&mut store, (5 * MIB / PAGE) as u64)
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("over its limit of 8388608 bytes"),
            "{error:#}"
        );
        // What fits in the rest of the budget is still granted.
        second.grow(&mut store, (3 * MIB / PAGE) as u64).unwrap();
        assert_eq!(store.data().used(), 8 * MIB);
        assert!(first.grow(&mut store, 1).is_err());
    }

    #[test]
    fn memories_created_with_initial_pages_are_counted() {
        let mut store = store(4 * MIB);
        let pages = |bytes: usize| (bytes / PAGE) as u32;
        Memory::new(&mut store, MemoryType::new(pages(3 * MIB), None)).unwrap();
        let error = Memory::new(&mut store, MemoryType::new(pages(2 * MIB), None)).unwrap_err();
        assert!(format!("{error:#}").contains("growing memory"), "{error:#}");
        assert_eq!(store.data().used(), 3 * MIB);
    }

    #[test]
    fn tables_draw_on_the_same_budget() {
        let mut store = store(MIB);
        let elements = |bytes: usize| (bytes / TABLE_ELEMENT_BYTES) as u64;
        let table_type = TableType::new(wasmtime::RefType::FUNCREF, 0, None);
        let table = Table::new(&mut store, table_type, Ref::Func(None)).unwrap();
        table
            .grow(&mut store, elements(MIB / 2), Ref::Func(None))
            .unwrap();
        let memory = Memory::new(&mut store, MemoryType::new(0, None)).unwrap();
        assert!(memory.grow(&mut store, (MIB / PAGE) as u64).is_err());
        memory.grow(&mut store, (MIB / 2 / PAGE) as u64).unwrap();
        assert!(table.grow(&mut store, 1, Ref::Func(None)).is_err());
    }

    #[test]
    fn a_memory_may_not_grow_past_its_own_maximum() {
        let mut store = store(8 * MIB);
        let memory = Memory::new(&mut store, MemoryType::new(0, Some(2))).unwrap();
        assert!(memory.grow(&mut store, 3).is_err());
        assert_eq!(store.data().used(), 0);
        memory.grow(&mut store, 2).unwrap();
        assert_eq!(store.data().used(), 2 * PAGE);
    }
}
