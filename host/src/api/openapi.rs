//! `docs/api.json` and `docs/api.yaml`: the OpenAPI 3.1 document of the REST API, built on each
//! request from [`ENDPOINTS`] and the plugins installed at that moment.
//!
//! # Layout
//! [`operations`] is the table of routes, the names each resource's operations take per plugin,
//! and how one operation renders; [`schemas`] derives what the document says about each resource
//! from its types (the response view's and request input's `utoipa::ToSchema`, the `ListSpec` its
//! lists go through, the fields its plugin declares); this module assembles the document and
//! serves it.
//!
//! The document is shaped the way pulp-glue (and so `pulp-cli`) reads Pulp's:
//! - operationIds `<prefix>_<action>`, the prefix naming the resource and, for plugin resources,
//!   the plugin and type (`repositories_file_file_sync`, `content_file_files_create`);
//! - objects are addressed by href-valued path parameters: the path of an object operation is
//!   `{file_file_repository_href}` or `{file_file_repository_href}sync/`, and a client substitutes
//!   the whole `pulp_href` for it (pulp-glue replaces one parameter and joins the result to its
//!   base URL);
//! - `info.x-pulp-app-versions` names the Pulp API level each app speaks, which pulp-cli checks
//!   its plugin requirements against.
//!
//! Paths that start with a parameter are not valid OpenAPI (paths must start with `/`), so, like
//! Pulp, `?pk_path=1` renders the same operations with id-valued parameters
//! (`/pulp/api/v3/repositories/file/file/{id}/sync/`): that variant is what validators and fuzzers
//! read.
//!
//! [`ENDPOINTS`] names every route by the template its module's `router()` declares; a unit test
//! reads those templates back from the routers' source, so a route added without a row there
//! fails the build's tests.

pub mod operations;
pub mod schemas;

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Map;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, RefOr};

use self::operations::{ENDPOINTS, operation, path_of};
use crate::plugins::rest_names::PluginNames as RestNames;
use crate::state::{App, AppState};

pub use crate::domain::PULP_API_VERSION;

/// An app as `status/` and `info.x-pulp-app-versions` report it: `core` and each plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `core` or the plugin's name.
    pub name: String,
    /// The Pulp API level it serves ([`PULP_API_VERSION`]). pulp-cli compares `status/`'s
    /// versions with the document's to tell whether its cached copy is current, so both read
    /// this one list.
    pub version: String,
    /// The package that provides it (`granary`, `granary-plugin-file`).
    pub package: String,
    /// That package's own version.
    pub package_version: String,
}

/// `core`, then every loaded plugin.
pub fn components(plugins: &crate::plugins::PluginRuntime) -> Vec<Component> {
    let core = Component {
        name: "core".into(),
        version: PULP_API_VERSION.into(),
        package: "granary".into(),
        package_version: env!("CARGO_PKG_VERSION").into(),
    };
    std::iter::once(core)
        .chain(plugins.list().iter().map(|plugin| Component {
            name: plugin.info.name.clone(),
            version: PULP_API_VERSION.into(),
            package: format!("granary-plugin-{}", plugin.info.name),
            package_version: plugin.info.version.clone(),
        }))
        .collect()
}

/// Routes (public, as Pulp's).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/docs/api.json", get(api_json))
        .route("/pulp/api/v3/docs/api.yaml", get(api_yaml))
}

fn path_style(query: &HashMap<String, String>) -> PathStyle {
    match query.get("pk_path").map(String::as_str) {
        Some("1" | "true") => PathStyle::Id,
        _ => PathStyle::Href,
    }
}

async fn api_json(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<OpenApi> {
    Json(document(&app, path_style(&query)))
}

async fn api_yaml(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let document = document(&app, path_style(&query));
    match yaml_serde::to_string(&document) {
        Ok(yaml) => ([(CONTENT_TYPE, "application/yaml")], yaml).into_response(),
        Err(error) => crate::error::ApiError::internal(error).into_response(),
    }
}

/// How object operations name their object in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `{file_file_repository_href}sync/`: what pulp-glue expects.
    Href,
    /// `/pulp/api/v3/repositories/file/file/{id}/sync/`: valid OpenAPI paths.
    Id,
}

/// The OpenAPI document of the REST API as served by `app` now.
pub fn document(app: &App, style: PathStyle) -> OpenApi {
    let loaded = app.plugins.list();
    let plugins: Vec<RestNames> = app.plugins.rest_names().all().cloned().collect();
    let mut paths = Paths::new();
    let mut schemas: BTreeMap<String, RefOr<Schema>> = schemas::named()
        .into_iter()
        .map(|(name, schema)| (name.to_owned(), schema))
        .collect();
    for endpoint in ENDPOINTS {
        let doc = schemas::doc(endpoint.resource);
        for names in operations::expansions(endpoint.resource, &plugins) {
            let (path, parameters) = path_of(endpoint, &names, style);
            let operation = operation(endpoint, &doc, &names, parameters);
            paths.add_path_operation(path, vec![endpoint.method.http()], operation);
            if schemas.contains_key(&format!("{}Response", names.schema)) {
                continue;
            }
            // The plugin's declared fields, for a resource that takes them.
            let declared = doc.plugin_fields.and_then(|kind| {
                let plugin = loaded
                    .iter()
                    .find(|plugin| Some(&plugin.info.name) == names.plugin.as_ref())?;
                Some(schemas::plugin_schema(&plugin.info, kind))
            });
            let with_declared = |mut schema: RefOr<Schema>| {
                if let (Some(declared), Some(object)) =
                    (&declared, schemas::object_mut(&mut schema))
                {
                    schemas::add_properties(object, declared);
                }
                schema
            };
            let base = &names.schema;
            if let Some((request, required)) = doc.request {
                let request = with_declared(request());
                let patched = schemas::requiring(request.clone(), &[]);
                schemas.insert(base.clone(), schemas::requiring(request, required));
                schemas.insert(format!("Patched{base}"), patched);
            }
            if let Some(view) = doc.view {
                schemas.insert(format!("{base}Response"), with_declared(view()));
                schemas.insert(format!("Paginated{base}ResponseList"), schemas::page(base));
            }
        }
    }
    let mut versions = Map::new();
    let mut package_versions = Map::new();
    for component in components(&app.plugins) {
        versions.insert(component.name.clone(), component.version.into());
        package_versions.insert(component.name, component.package_version.into());
    }
    let info = InfoBuilder::new()
        .title("Granary API")
        .description(Some(
            "Granary's REST API, shaped like Pulp 3's. Generated from the installed plugins.",
        ))
        .version(env!("CARGO_PKG_VERSION"))
        .extensions(Some(Extensions::from_iter([
            ("x-pulp-app-versions", versions),
            ("x-granary-package-versions", package_versions),
        ])));
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "basicAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    OpenApiBuilder::new()
        .info(info)
        .paths(paths)
        .components(Some(components.build()))
        .security(Some([SecurityRequirement::new(
            "basicAuth",
            Vec::<String>::new(),
        )]))
        .build()
}

#[cfg(test)]
mod tests {
    use super::operations::UNDOCUMENTED_ROUTES;
    use super::*;

    #[test]
    fn every_route_the_routers_register_is_in_the_document_table() {
        let routes = crate::api::route_templates();
        assert!(
            routes.len() > 10,
            "the routers' routes were recorded: {routes:?}"
        );
        for route in routes {
            assert!(
                UNDOCUMENTED_ROUTES.contains(&route.as_str())
                    || ENDPOINTS.iter().any(|endpoint| endpoint.route == route),
                "{route} is served but not described in openapi::ENDPOINTS"
            );
        }
    }

    #[test]
    fn every_documented_route_is_registered_by_a_router() {
        let routes = crate::api::route_templates();
        for endpoint in ENDPOINTS {
            assert!(
                routes.iter().any(|route| route == endpoint.route),
                "{} is described but no router registers it",
                endpoint.route
            );
        }
    }
}
