//! A plugin that fails the host's install and capability checks on purpose, for the plugin
//! lifecycle tests. Never install it anywhere else.
//!
//! `describe` has no input, so the behaviour is chosen by the four bytes after the marker
//! `granary-misfit-mode:` in the component's data; the tests rewrite them in a copy of the
//! component (same length, so it stays a valid component):
//!
//! - `none`: a valid plugin `misfit` with the content type `gadget` and **no** capabilities, whose
//!   `sync` nevertheless GETs the remote's URL (the host must deny it: capability not declared);
//! - `trap`: `describe` panics;
//! - `loop`: `describe` never returns;
//! - `file`: describes the content type `file`, which the built-in plugin already provides;
//! - `wit9`: `describe` claims WIT version `0.9.0`, which no host supports;
//! - `keys`: indexes a field whose name is not an identifier (`not-a-name`);
//! - `pulp`: claims the root `/pulp/`, the host's own;
//! - `pypi`: claims the root `/pypi/`, where the built-in python plugin serves its distributions.

use granary_sdk::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, Plugin, PluginError, PluginInfo,
    RemoteConfig, UnitDeclaration, http, json,
};

static MODE: [u8; 24] = *b"granary-misfit-mode:none";

fn mode() -> [u8; 4] {
    // Read through `black_box` so the optimiser keeps the bytes in the data section, where the
    // tests find and rewrite them.
    let mode = std::hint::black_box(&MODE);
    [mode[20], mode[21], mode[22], mode[23]]
}

struct Misfit;

impl Plugin for Misfit {
    fn describe() -> PluginInfo {
        let mode = mode();
        match &mode {
            b"trap" => panic!("misfit: describe trapped on purpose"),
            b"loop" => loop {
                std::hint::black_box(&mode);
            },
            _ => {}
        }
        let content_type = if &mode == b"file" { "file" } else { "gadget" };
        let mut gadget = ContentTypeInfo::new(content_type, "A thing that does not fit", &["name"]);
        if &mode == b"keys" {
            gadget = gadget.with_indexed_fields(&["not-a-name"]);
        }
        let mut info = PluginInfo::new("misfit", env!("CARGO_PKG_VERSION"), vec![gadget]);
        if &mode == b"wit9" {
            info.wit_version = "0.9.0".into();
        }
        if let b"pulp" | b"pypi" = &mode {
            info = info.with_root(&String::from_utf8_lossy(&mode));
        }
        info
    }

    /// Uses `http` without having declared it.
    fn sync(remote: &RemoteConfig) -> Result<(), PluginError> {
        let response = http::get(&remote.url, &[])?;
        Err(PluginError::new(format!(
            "the host let an undeclared HTTP request through (status {})",
            response.status()
        )))
    }

    fn parse_upload(
        upload: &ArtifactRef,
        relative_path: Option<&str>,
    ) -> Result<UnitDeclaration, PluginError> {
        let name = relative_path.unwrap_or("upload");
        Ok(UnitDeclaration {
            content_type: "gadget".into(),
            natural_key: json::string_object([("name", name)]),
            metadata: "{}".into(),
            artifacts: vec![ArtifactDeclaration {
                relative_path: name.into(),
                url: None,
                size: Some(upload.size),
                sha256: Some(upload.sha256.clone()),
                sha512: None,
            }],
        })
    }
}

granary_sdk::register_plugin!(Misfit);
