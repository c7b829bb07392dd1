//! The generated host side of every supported `granary:plugin` version. `bindgen!` runs here and
//! nowhere else.
//!
//! The current version (`wit/since_v0.3.0`) is the crate's vocabulary: its records are what the
//! rest of the host speaks. Older versions get their own generated module, and `v0_1.rs` and
//! `v0_2.rs` adapt them to the current one (one implementation of each import, converted at the
//! boundary).

/// Generates the host side of the `granary:plugin` version in the WIT directory `$wit`. Every
/// version is generated alike: `v0_1.rs` and `v0_2.rs` forward an old version's imports to the current ones,
/// which only works while their modes (async, trappable) and the `http.response` resource agree.
macro_rules! plugin_bindings {
    ($wit:literal $(, $resource:literal => $host_type:path)* $(,)?) => {
        wasmtime::component::bindgen!({
            path: $wit,
            world: "granary:plugin/content-type",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "granary:plugin/http.response": crate::plugins::host_http::Response,
                $($resource: $host_type,)*
            },
        });
    };
}

/// `granary:plugin@0.3.0`, the current version.
pub mod current {
    plugin_bindings!(
        "../wit/since_v0.3.0",
        "granary:plugin/types.incoming-body" => crate::plugins::host_body::IncomingBody,
        "granary:plugin/artifacts.artifact-writer" => crate::plugins::host_artifacts::ArtifactWriter,
    );
}

/// `granary:plugin@0.2.0`, released and frozen; adapted by `v0_2.rs`.
pub mod v0_2 {
    plugin_bindings!("../wit/since_v0.2.0");
}

/// `granary:plugin@0.1.0`, released and frozen; adapted by `v0_1.rs`.
pub mod v0_1 {
    plugin_bindings!("../wit/since_v0.1.0");
}

pub use self::current::granary::plugin::types;
pub use self::current::{ContentType, ContentTypePre};

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    /// The sha256 of a WIT file's text without its comments and blank lines: what freezing a
    /// version keeps (`wit/README.md`: a released version's text changes only in comments).
    fn contract_digest(wit: &str) -> String {
        let mut hasher = Sha256::new();
        for line in wit.lines() {
            let code = line.split("//").next().unwrap_or_default().trim();
            if !code.is_empty() {
                hasher.update(code.as_bytes());
                hasher.update(b"\n");
            }
        }
        hex::encode(hasher.finalize())
    }

    #[test]
    fn released_contracts_are_frozen() {
        // A change here is a change to a released contract: add a version beside it instead
        // (docs/plugins.md, "Versioning").
        let released = [
            (
                include_str!("../../../wit/since_v0.1.0/granary-plugin.wit"),
                "0.1.0",
                "c4785ae280d5506cc5caa66f9bf8f44aa922ea19f6e37a63593cc695acdf9292",
            ),
            (
                include_str!("../../../wit/since_v0.2.0/granary-plugin.wit"),
                "0.2.0",
                "9dbdc90bdc6e6aef2ef49b84f6c95470a6333f31b742882bf5fa77f5bb06fd35",
            ),
            (
                include_str!("../../../wit/since_v0.3.0/granary-plugin.wit"),
                "0.3.0",
                "30d98939a75052cbf58fa2b9b921cc722cecd921a27ff5f6a8d8f753f4502d82",
            ),
        ];
        for (wit, version, frozen) in released {
            assert_eq!(
                contract_digest(wit),
                frozen,
                "granary:plugin@{version} changed"
            );
        }
    }
}
