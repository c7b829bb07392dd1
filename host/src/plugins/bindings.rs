//! The generated host side of every supported `granary:plugin` version. `bindgen!` runs here and
//! nowhere else.
//!
//! The current version (`wit/since_v0.2.0`) is the crate's vocabulary: its records are what the
//! rest of the host speaks. Older versions get their own generated module, and `v0_1.rs` adapts
//! them to the current one (one implementation of each import, converted at the boundary).

/// `granary:plugin@0.2.0`, the current version.
pub mod current {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.2.0",
        world: "granary:plugin/content-type",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "granary:plugin/http.response": crate::plugins::host_http::Response,
        },
    });
}

/// `granary:plugin@0.1.0`, released and frozen; adapted by `v0_1.rs`.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "granary:plugin/content-type",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "granary:plugin/http.response": crate::plugins::host_http::Response,
        },
    });
}

pub use self::current::granary::plugin::types;
pub use self::current::{ContentType, ContentTypePre};
