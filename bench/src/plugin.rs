//! Item 4: what a plugin call costs the host, in process: a fresh instance from the pre-linked
//! component in the pooling allocator, plus the call, exactly as every export runs in the server.
//!
//! - `describe`: the trivial call.
//! - `publish` of an empty repository version: one `content.list-units` query, one staged
//!   `PULP_MANIFEST` (a temporary file), one empty `publish-content`.
//! - the python plugin's `parse-upload` of a wheel and of an sdist (`fixture::python_archives`,
//!   written by python3): the archive read through `artifacts.read`, its metadata parsed,
//!   and for the wheel its `METADATA` stored with `artifacts.create`, as an upload is.
//!   `GRANARY_BENCH_PYTHON_WASM=path` measures another build of the plugin (an older commit's
//!   `granary_plugin_python.wasm`), so two builds can be compared in the same conditions.
//! - the python plugin's `handle` (#20 item 5: what a plugin route costs when no kept answer
//!   serves it): `simple/Some_Project`, answered with a redirect and no host call (the cost of a
//!   call itself), and `simple/some-project/` of an empty repository version (one
//!   `content.list-by-prefix` query, then a 404).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use granary::db::Db;
use granary::plugins::host_body::IncomingBody;
use granary::plugins::runtime::Limits;
use granary::plugins::{
    ArtifactRef, CallScope, CallerAccess, ContentScope, DistributionInfo, HttpRequest,
    PluginRuntime, PublicationScope, VersionInfo,
};
use granary::storage::BlobStore;

use crate::report::Row;
use crate::{Bench, fixture};

const DESCRIBE_CALLS: u32 = 5000;
const PUBLISH_CALLS: u32 = 1000;
const PARSE_UPLOAD_CALLS: u32 = 1000;
const HANDLE_CALLS: u32 = 5000;
/// Python modules in the wheel and the sdist parsed.
const PYTHON_MODULES: usize = 40;

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
    let python_wasm = match std::env::var_os("GRANARY_BENCH_PYTHON_WASM") {
        Some(path) => path.into(),
        None => wasm.with_file_name("granary_plugin_python.wasm"),
    };
    let python_bytes = std::fs::read(&python_wasm)
        .with_context(|| format!("reading {}", python_wasm.display()))?;
    let work = bench.dir("plugin");
    let runtime = PluginRuntime::new(&work.join("cache"), LIMITS)?;
    let plugin = runtime.load(bytes, true).await?;
    let python = runtime.load(python_bytes, true).await?;

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
            content: Some(ContentScope::new(db.clone(), &plugin, "bench", 0)),
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

    let handle = |path: &str| {
        let scope = CallScope {
            content: Some(ContentScope::new(db.clone(), &python, "bench", 0)),
            content_types: python.content_type_names(),
            ..CallScope::default()
        };
        let request = HttpRequest {
            method: "GET".into(),
            path: path.into(),
            query: None,
            headers: vec![("accept".into(), "text/html".into())],
            base_url: "http://127.0.0.1:24817/pypi/bench/".into(),
            form: Vec::new(),
            files: Vec::new(),
            user: None,
            access: CallerAccess {
                pull: true,
                push: false,
                delete: false,
            },
            distribution: Some(DistributionInfo {
                name: "bench".into(),
                base_path: "bench".into(),
                extra: "{}".into(),
                writable: true,
                remote: None,
            }),
        };
        let runtime = &runtime;
        let python = &python;
        async move {
            let (result, _) = runtime
                .handle(python, scope, &request, IncomingBody::empty())
                .await;
            result.map_err(|error| anyhow::anyhow!("{error:?}"))
        }
    };
    let routes = [
        (
            "simple/Some_Project",
            "a redirect, no host call",
            301,
            "≤ 50 µs",
        ),
        (
            "simple/some-project/",
            "a project page of an empty version (one query, 404)",
            404,
            "",
        ),
    ];
    for (path, what, status, target) in routes {
        let answered = handle(path).await?.response.status;
        anyhow::ensure!(answered == status, "{path} answered {answered}");
        for _ in 0..HANDLE_CALLS / 10 {
            handle(path).await?;
        }
        let started = Instant::now();
        for _ in 0..HANDLE_CALLS {
            handle(path).await?;
        }
        let call = started.elapsed().as_secs_f64() * 1e6 / f64::from(HANDLE_CALLS);
        bench.row(Row {
            item: 5,
            measure: format!("instantiate + `handle` of `{path}` (python plugin): {what}"),
            granary: format!("{call:.1} µs/call"),
            reference: String::new(),
            ratio: None,
            target,
            holds: (!target.is_empty()).then_some(call <= 50.0),
        });
    }

    let (wheel, sdist) = fixture::python_archives(&work.join("python"), PYTHON_MODULES)?;
    for (kind, path) in [("a wheel", wheel), ("an sdist", sdist)] {
        let archive = bytes::Bytes::from(std::fs::read(&path)?);
        let filename = path.file_name().unwrap().to_string_lossy().into_owned();
        let staged = blobs.stage_bytes(archive.clone()).await?;
        let upload = ArtifactRef {
            sha256: staged.sha256.clone(),
            size: staged.size,
        };
        blobs.commit(staged).await?;
        let parse_upload = || {
            let scope = CallScope {
                artifacts: [(upload.sha256.clone(), upload.size)].into(),
                blobs: Some(blobs.clone()),
                content_types: python.content_type_names(),
                create_in: Some(Arc::new(granary::domain::artifacts::Creator {
                    db: db.clone(),
                    blobs: blobs.clone(),
                })),
                ..CallScope::default()
            };
            runtime.parse_upload(&python, scope, &upload, Some(&filename))
        };
        for _ in 0..PARSE_UPLOAD_CALLS / 10 {
            parse_upload().await.0?;
        }
        let started = Instant::now();
        for _ in 0..PARSE_UPLOAD_CALLS {
            parse_upload().await.0?;
        }
        let call = started.elapsed().as_secs_f64() * 1e6 / f64::from(PARSE_UPLOAD_CALLS);
        bench.row(Row {
            item: 4,
            measure: format!(
                "instantiate + `parse-upload` of {kind} (python plugin; {PYTHON_MODULES} modules, {} KiB)",
                archive.len() / 1024
            ),
            granary: format!("{call:.1} µs/call"),
            reference: String::new(),
            ratio: None,
            target: "",
            holds: None,
        });
    }
    Ok(())
}
