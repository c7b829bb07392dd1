//! A deliberately misbehaving plugin for the host's sandbox tests. Never install it anywhere else.
//!
//! Its behaviour is chosen by its input, so one component covers every test:
//!
//! - `sync`, by the last path segment of `remote.url`:
//!   - `loop`: spins forever (the host's CPU deadline must stop it);
//!   - `memory`: allocates 1 MiB blocks forever (the host's memory limit must stop it);
//!   - `foreign-origin`: GETs `http://127.0.0.1:9/elsewhere`, another origin than the remote's,
//!     and returns the host's error unchanged;
//!   - `oversized-batch`: emits 5000 units in one `sync-sink.emit` call (the limit is 1000);
//!   - `escape-path`: emits a unit whose artifact path is `../../etc/passwd`;
//!   - anything else: emits the units `a`, `b` and `c` and succeeds.
//! - `publish`, by the repository name:
//!   - `escape-path`: writes `../outside.txt` and returns the host's error;
//!   - `oversized-output`: writes 1 MiB chunks to `big.bin` until the host refuses, and returns
//!     its error;
//!   - `loop`: spins forever;
//!   - anything else: writes `index.txt` containing `ok\n`.
//! - `parse-upload`: a `thing` named after the relative path (or `upload`), with the upload as its
//!   artifact.
//! - `handle`: 404.

use granary_sdk::publication::write_file;
use granary_sdk::sync::Emitter;
use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, Plugin, PluginError, PluginInfo,
    RemoteConfig, UnitDeclaration, VersionInfo, http, json,
};

const THING: &str = "thing";

struct Hostile;

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            vec![ContentTypeInfo::new(
                THING,
                "A thing with a name",
                &["name"],
            )],
        )
        .with_capabilities(&["http"])
    }

    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        let path = remote.url.split(['?', '#']).next().unwrap_or_default();
        let last_segment = path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        match last_segment {
            "loop" => spin(),
            "memory" => exhaust_memory(),
            "foreign-origin" => {
                http::get("http://127.0.0.1:9/elsewhere", &[])?;
                Err(PluginError::new(
                    "the host allowed a request to another origin",
                ))
            }
            "oversized-batch" => {
                let units: Vec<_> = (0..5000)
                    .map(|i| thing(&format!("unit-{i}"), Vec::new()))
                    .collect();
                // The raw binding on purpose: `Emitter` would split this into legal batches.
                granary_sdk::wit::granary::plugin::sync_sink::emit(&units)?;
                Ok(())
            }
            "escape-path" => {
                let escape = ArtifactDeclaration {
                    relative_path: "../../etc/passwd".into(),
                    url: Some(format!("{}/x", remote.url)),
                    size: None,
                    sha256: None,
                    sha512: None,
                };
                let mut emitter = Emitter::new();
                emitter.emit(thing("escape", vec![escape]))?;
                emitter.finish()?;
                Ok(())
            }
            _ => {
                let mut emitter = Emitter::new();
                for name in ["a", "b", "c"] {
                    emitter.emit(thing(name, Vec::new()))?;
                }
                emitter.finish()?;
                Ok(())
            }
        }
    }

    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let name = relative_path.unwrap_or("upload");
        let artifact = ArtifactDeclaration {
            relative_path: name.into(),
            url: None,
            size: Some(upload.size),
            sha256: Some(upload.sha256.clone()),
            sha512: None,
        };
        Ok(thing(name, vec![artifact]))
    }

    fn publish(version: &VersionInfo) -> Result<(), PluginError> {
        match version.repository_name.as_str() {
            "escape-path" => {
                write_file("../outside.txt", b"x")?;
                Err(PluginError::new(
                    "the host allowed a write outside the publication",
                ))
            }
            "oversized-output" => {
                let chunk = vec![0u8; 1024 * 1024];
                loop {
                    write_file("big.bin", &chunk)?;
                }
            }
            "loop" => spin(),
            _ => write_file("index.txt", b"ok\n"),
        }
    }
}

fn thing(name: &str, artifacts: Vec<ArtifactDeclaration>) -> UnitDeclaration {
    UnitDeclaration {
        content_type: THING.into(),
        natural_key: json::string_object([("name", name)]),
        metadata: "{}".into(),
        artifacts,
    }
}

/// Busy-loops forever; `black_box` keeps the optimiser from proving the loop useless.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Allocates and touches 1 MiB blocks until the host's memory limit traps the instance.
fn exhaust_memory() -> ! {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1024 * 1024];
        // Touch every page so the memory is really committed, not just reserved.
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        blocks.push(std::hint::black_box(block));
    }
}

granary_sdk::register_plugin!(Hostile);
