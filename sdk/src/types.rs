//! The WIT records the SDK's API speaks in, re-exported at the crate root, with a few constructors.

use crate::wit::granary::plugin::types as raw;

pub use raw::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, DownloadPolicy, HttpBody, HttpRequest,
    HttpResponse, PluginInfo, RemoteConfig, StoredArtifact, StoredUnit, UnitDeclaration,
    VersionInfo,
};

impl ContentTypeInfo {
    /// A content type named `name` (`[a-z][a-z0-9_]*`) whose natural key has these fields.
    pub fn new(name: &str, description: &str, natural_key_fields: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            natural_key_fields: natural_key_fields.iter().map(|&f| f.to_owned()).collect(),
        }
    }
}

impl HttpResponse {
    /// 404 with an empty body: the answer for paths a plugin does not know.
    pub fn not_found() -> Self {
        Self {
            status: 404,
            headers: Vec::new(),
            body: HttpBody::Bytes(Vec::new()),
        }
    }
}
