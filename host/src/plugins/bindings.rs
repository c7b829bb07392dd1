//! The generated host side of `wit/since_v0.1.0/granary-plugin.wit`. `bindgen!` runs here and nowhere else.

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "granary:plugin/content-type",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "granary:plugin/http.response": crate::plugins::host_http::Response,
    },
});

pub use self::granary::plugin::types;
