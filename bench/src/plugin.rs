//! Item 4: what a plugin call costs the host, in process: a fresh instance from the pre-linked
//! component in the pooling allocator, plus the call, exactly as every export runs in the server.
//!
//! - `describe`: the trivial call.
//! - `publish` of an empty repository version: one `content.list-units` query, one staged
//!   `PULP_MANIFEST` (a temporary file), one empty `publish-content`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use granary::db::Db;
use granary::plugins::runtime::Limits;
use granary::plugins::{CallScope, ContentScope, PluginRuntime, PublicationScope, VersionInfo};
use granary::storage::BlobStore;

use crate::Bench;
use crate::report::Row;

const DESCRIBE_CALLS: u32 = 5000;
const PUBLISH_CALLS: u32 = 1000;

/// `granary serve`'s default limits.
const LIMITS: Limits = Limits {
    cpu_time: Duration::from_secs(300),
    memory_bytes: 256 * 1024 * 1024,
    max_output_bytes: 1 << 30,
};

pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    // host/build.rs builds the component there before this crate (which depends on the host)
    // is compiled.
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm/wasm32-wasip2/plugin/granary_plugin_file.wasm");
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let work = bench.dir("plugin");
    let runtime = PluginRuntime::new(&work.join("cache"), LIMITS)?;
    let plugin = runtime.load(bytes, true).await?;

    for _ in 0..DESCRIBE_CALLS / 10 {
        runtime.describe(&plugin).await?;
    }
    let started = Instant::now();
    for _ in 0..DESCRIBE_CALLS {
        runtime.describe(&plugin).await?;
    }
    let describe = started.elapsed().as_secs_f64() * 1e6 / f64::from(DESCRIBE_CALLS);
    bench.row(Row {
        item: 4,
        measure: "instantiate + `describe` (file plugin)".into(),
        granary: format!("{describe:.1} µs/call"),
        reference: String::new(),
        ratio: None,
        target: "≤ 50 µs",
        holds: Some(describe <= 50.0),
    });

    let db = Arc::new(
        Db::connect(&format!(
            "sqlite://{}?mode=rwc",
            work.join("granary.db").display()
        ))
        .await?,
    );
    let blobs = Arc::new(BlobStore::local(&work)?);
    let version = VersionInfo {
        repository_name: "bench".into(),
        number: 0,
    };
    let publish = || {
        let scope = CallScope {
            content: Some(ContentScope {
                db: db.clone(),
                repository_id: "bench".into(),
                version: 0,
            }),
            publication: Some(PublicationScope {
                publication_id: "bench".into(),
                files: BTreeMap::new(),
                blobs: blobs.clone(),
            }),
            content_types: plugin.content_type_names(),
            ..CallScope::default()
        };
        runtime.publish(&plugin, scope, &version)
    };
    for _ in 0..PUBLISH_CALLS / 10 {
        publish().await.0?;
    }
    let started = Instant::now();
    for _ in 0..PUBLISH_CALLS {
        // Dropping the returned scope deletes the staged manifest, as a failed publish would.
        publish().await.0?;
    }
    let publish = started.elapsed().as_secs_f64() * 1e6 / f64::from(PUBLISH_CALLS);
    bench.row(Row {
        item: 4,
        measure: "instantiate + `publish`, empty version (one query, one staged file)".into(),
        granary: format!("{publish:.1} µs/call"),
        reference: String::new(),
        ratio: None,
        target: "",
        holds: None,
    });
    Ok(())
}
