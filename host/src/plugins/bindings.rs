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
