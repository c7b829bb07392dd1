//! The WIT records the SDK's API speaks in, re-exported at the crate root, with a few constructors.

use crate::wit::granary::plugin::types as raw;

pub use raw::{
    ArtifactDeclaration, ArtifactRef, ContentTypeInfo, DistributionInfo, DownloadPolicy, FormField,
    FormFile, HandleOutcome, HttpBody, HttpRequest, HttpResponse, PluginInfo, RemoteConfig,
    RestNames, StoredArtifact, StoredUnit, UnitDeclaration, UpstreamFile, VersionInfo,
};
#[cfg(not(feature = "wit-v0_2"))]
pub use raw::{CallerAccess, UnitRef};

impl PluginInfo {
    /// A plugin named `name` (`[a-z][a-z0-9_]*`) at `version`, built against this SDK's
    /// [`crate::WIT_VERSION`], providing `content_types`; no capabilities, REST names equal to the
    /// plugin name, no plugin-specific remote or distribution fields. Adjust with the `with_*`
    /// methods.
    pub fn new(name: &str, version: &str, content_types: Vec<ContentTypeInfo>) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            wit_version: crate::WIT_VERSION.to_owned(),
            content_types,
            capabilities: Vec::new(),
            rest_names: None,
            remote_fields: "{}".to_owned(),
            distribution_fields: "{}".to_owned(),
            #[cfg(not(feature = "wit-v0_2"))]
            root: None,
            #[cfg(not(feature = "wit-v0_2"))]
            log_in_paths: Vec::new(),
        }
    }

    /// Answers at a segment of the server's root (`v2` for a container registry): a request for
    /// `/<root>/<path>` reaches the distribution whose base path is the longest that prefixes
    /// `<path>`, or, where none does, [`crate::Plugin::handle`] without a distribution.
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn with_root(mut self, segment: &str) -> Self {
        self.root = Some(segment.to_owned());
        self
    }

    /// Where clients log in below a distribution (npm's `-/user/`; a prefix ends in `/`): any
    /// request there reaches [`crate::Plugin::handle`], which may check a password with
    /// [`crate::accounts::log_in`] and changes no units.
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn with_log_in_paths(mut self, paths: &[&str]) -> Self {
        self.log_in_paths = paths.iter().map(|&p| p.to_owned()).collect();
        self
    }

    /// Asks for these capabilities (e.g. `http`).
    pub fn with_capabilities(mut self, capabilities: &[&str]) -> Self {
        self.capabilities = capabilities.iter().map(|&c| c.to_owned()).collect();
        self
    }

    /// Names the REST endpoints of the plugin's repository, remote, publication and distribution
    /// types (`repositories/<plugin>/<repository>/`, ...), and the distribution's own URL prefix
    /// (`/<distribution>/<base-path>/...`).
    pub fn with_rest_names(
        mut self,
        repository: &str,
        remote: &str,
        publication: &str,
        distribution: &str,
    ) -> Self {
        self.rest_names = Some(RestNames {
            repository: repository.to_owned(),
            remote: remote.to_owned(),
            publication: publication.to_owned(),
            distribution: distribution.to_owned(),
            #[cfg(not(feature = "wit-v0_2"))]
            push_repository: None,
        });
        self
    }

    /// Names a second repository type, `repositories/<plugin>/<segment>/`, for the repositories
    /// a push to a new name creates (`HandleOutcome::create_distribution`; pulp_container's
    /// `container-push`). Call it after [`Self::with_rest_names`], which it completes.
    ///
    /// # Panics
    /// Without REST names declared first: a plugin that describes itself so is a bug to fix
    /// before it loads.
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn with_push_repository(mut self, segment: &str) -> Self {
        let names = self
            .rest_names
            .as_mut()
            .expect("with_push_repository follows with_rest_names");
        names.push_repository = Some(segment.to_owned());
        self
    }

    /// Declares the plugin-specific remote fields: a JSON Schema object schema as JSON text, e.g.
    /// `{"type":"object","properties":{"includes":{"type":"array","items":{"type":"string"}}}}`.
    pub fn with_remote_fields(mut self, schema: &str) -> Self {
        self.remote_fields = schema.to_owned();
        self
    }

    /// Declares the plugin-specific distribution fields, like [`PluginInfo::with_remote_fields`].
    pub fn with_distribution_fields(mut self, schema: &str) -> Self {
        self.distribution_fields = schema.to_owned();
        self
    }
}

impl ContentTypeInfo {
    /// A content type named `name` (`[a-z][a-z0-9_]*`) whose natural key has these fields. Its
    /// REST endpoint is `content/<plugin>/<name>s/`; change it with
    /// [`ContentTypeInfo::with_endpoint`].
    pub fn new(name: &str, description: &str, natural_key_fields: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            natural_key_fields: natural_key_fields.iter().map(|&f| f.to_owned()).collect(),
            endpoint: None,
            #[cfg(not(feature = "wit-v0_2"))]
            indexed_fields: Vec::new(),
            #[cfg(not(feature = "wit-v0_2"))]
            repository_key: None,
        }
    }

    /// Serves the type's REST endpoint at `content/<plugin>/<endpoint>/`.
    pub fn with_endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_owned());
        self
    }

    /// Asks the host to index these top-level string fields of the units' metadata (at most 8,
    /// each `[a-z][a-z0-9_]*`), for [`crate::content::distinct_values`] and
    /// [`crate::content::units_with_value`].
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn with_indexed_fields(mut self, fields: &[&str]) -> Self {
        self.indexed_fields = fields.iter().map(|&f| f.to_owned()).collect();
        self
    }

    /// Names the indexed field that identifies a unit within a repository version (Pulp's
    /// `repo_key_fields`, e.g. a file's `relative_path`): a unit added to a version replaces the
    /// one with the same value, and a version may not hold two. It must be one of
    /// [`ContentTypeInfo::with_indexed_fields`]'s.
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn with_repository_key(mut self, field: &str) -> Self {
        self.repository_key = Some(field.to_owned());
        self
    }
}

impl HttpResponse {
    /// 404 with an empty body: the answer for paths a plugin does not know.
    pub fn not_found() -> Self {
        Self::bytes(404, Vec::new())
    }

    /// `status` with a body produced by the plugin and no headers.
    pub fn bytes(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: HttpBody::Bytes(body.into()),
        }
    }

    /// 200 with `body` and this `Content-Type`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::bytes(200, body).with_header("content-type", content_type)
    }

    /// 200 streaming a stored file of the version in scope (its
    /// [`StoredArtifact::content_artifact`] handle); the host serves Range, HEAD and ETag.
    pub fn content_artifact(handle: &str) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: HttpBody::ContentArtifact(handle.to_owned()),
        }
    }

    /// 200 streaming the file at `relative_path` of `unit`, fetched once from its declared `url`
    /// when the host does not store it yet, then kept and added to the distribution's repository
    /// (pull-through caching).
    pub fn fetch_upstream(unit: UnitDeclaration, relative_path: &str) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: HttpBody::FetchUpstream(UpstreamFile {
                unit,
                relative_path: relative_path.to_owned(),
            }),
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Lets the host keep this answer to a GET or HEAD and serve it again, without calling
    /// `handle`, for up to `seconds`, and never once the distribution serves another repository
    /// version. The answer is kept per method, URL, user and the values of the request headers
    /// named in its `Vary` header, so it must depend on nothing else the request carries. Only
    /// 200, 203, 301 and 308 answers are kept. Sets [`HOST_CACHE_CONTROL`], which the client
    /// never sees.
    pub fn kept_by_host(self, seconds: u32) -> Self {
        self.with_header(HOST_CACHE_CONTROL, &format!("max-age={seconds}"))
    }
}

/// The response header by which `handle` tells the host how long it may keep an answer
/// (`max-age=N`) or that it must not (`no-store`); see [`HttpResponse::kept_by_host`]. Without
/// it, the host reads the answer's `Cache-Control` as a shared cache does.
pub const HOST_CACHE_CONTROL: &str = "granary-cache-control";

impl HandleOutcome {
    /// Sends `response` and changes nothing.
    pub fn respond(response: HttpResponse) -> Self {
        Self {
            response,
            add_units: Vec::new(),
            #[cfg(not(feature = "wit-v0_2"))]
            remove_units: Vec::new(),
            #[cfg(not(feature = "wit-v0_2"))]
            create_distribution: None,
        }
    }

    /// Adds `units` to the distribution's repository as one new version, then sends `response`.
    /// Their artifacts must name stored artifacts by sha256 (form files of the request, or
    /// [`crate::artifacts::create`] results).
    pub fn with_units(response: HttpResponse, units: Vec<UnitDeclaration>) -> Self {
        Self {
            response,
            add_units: units,
            #[cfg(not(feature = "wit-v0_2"))]
            remove_units: Vec::new(),
            #[cfg(not(feature = "wit-v0_2"))]
            create_distribution: None,
        }
    }

    /// Also removes `units` (named by content type and natural key) from the distribution's
    /// repository, in the version that adds the outcome's units; units it does not hold are
    /// ignored.
    ///
    /// ```
    /// # use granary_sdk::{HandleOutcome, HttpResponse, UnitRef};
    /// let unpublished = UnitRef {
    ///     content_type: "package".into(),
    ///     natural_key: r#"{"name":"left-pad","version":"1.0.0"}"#.into(),
    /// };
    /// let outcome = HandleOutcome::respond(HttpResponse::bytes(200, "{}")).removing(vec![unpublished]);
    /// assert_eq!(outcome.remove_units.len(), 1);
    /// ```
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn removing(mut self, units: Vec<UnitRef>) -> Self {
        self.remove_units.extend(units);
        self
    }

    /// For a request at the plugin's root that matches no distribution (a push to a new name):
    /// asks the host to create a repository and a distribution at `base_path` (the leading
    /// segments of the request's path) for the caller, and to call `handle` again for the same
    /// request there. This outcome's response is then not sent.
    ///
    /// ```
    /// # use granary_sdk::{HandleOutcome, HttpResponse};
    /// let outcome = HandleOutcome::respond(HttpResponse::not_found()).creating("team/app");
    /// assert_eq!(outcome.create_distribution.as_deref(), Some("team/app"));
    /// ```
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn creating(mut self, base_path: &str) -> Self {
        self.create_distribution = Some(base_path.to_owned());
        self
    }
}

impl From<HttpResponse> for HandleOutcome {
    fn from(response: HttpResponse) -> Self {
        Self::respond(response)
    }
}

impl HttpRequest {
    /// The distribution the request arrived at; `None` for a request at the plugin's root that
    /// matches no distribution (see [`PluginInfo::with_root`]). The same call on every WIT
    /// version the SDK builds for.
    #[cfg(not(feature = "wit-v0_2"))]
    pub fn distribution(&self) -> Option<&DistributionInfo> {
        self.distribution.as_ref()
    }

    /// The distribution the request arrived at (0.2.0 requests always have one).
    #[cfg(feature = "wit-v0_2")]
    pub fn distribution(&self) -> Option<&DistributionInfo> {
        Some(&self.distribution)
    }

    /// The value of the first request header called `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the query parameter `name`, percent-decoded (`+` as a space): a digest's
    /// `:` arrives as `%3A`.
    ///
    /// ```
    /// let mut request = granary_sdk::harness::request("PUT", "blobs/uploads/1");
    /// request.query = Some("digest=sha256%3Aab&n=2".into());
    /// assert_eq!(request.query_param("digest").as_deref(), Some("sha256:ab"));
    /// assert_eq!(request.query_param("last"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .as_deref()?
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .map(percent_decoded)
    }

    /// The value of the first text form field called `name`.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|field| field.name == name)
            .map(|field| field.value.as_str())
    }

    /// The first uploaded file of the form field called `name`.
    pub fn form_file(&self, name: &str) -> Option<&FormFile> {
        self.files.iter().find(|file| file.name == name)
    }
}

/// `text` with `%XX` escapes and `+` decoded; invalid escapes are kept as they are.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                decoded.push(byte);
                i += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                i += 1;
            }
            (None, byte) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
