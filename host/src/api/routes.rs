//! [`Routes`]: an axum router that remembers the template of every route registered on it, so
//! the routes the API really serves can be compared with what its OpenAPI document describes
//! (`openapi::operations::ENDPOINTS`), generated routes included.

use axum::Router;
use axum::routing::MethodRouter;

use crate::state::AppState;

/// Routes of the REST API, with the templates they were registered under.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    templates: Vec<String>,
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Routes {
        Routes::default()
    }

    /// Serves `template` (axum's syntax: `/pulp/api/v3/tasks/{id}/`) with `handlers`.
    pub fn route(
        mut self,
        template: impl Into<String>,
        handlers: MethodRouter<AppState>,
    ) -> Routes {
        let template = template.into();
        self.router = self.router.route(&template, handlers);
        self.templates.push(template);
        self
    }

    /// These routes and `other`'s.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.templates.extend(other.templates);
        self
    }

    /// The template of every route, in the order they were registered.
    pub fn templates(&self) -> &[String] {
        &self.templates
    }

    /// The router serving them.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

impl From<Routes> for Router<AppState> {
    fn from(routes: Routes) -> Self {
        routes.into_router()
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::Routes;

    #[test]
    fn merged_routes_keep_every_template() {
        let tasks = Routes::new().route("/pulp/api/v3/tasks/", get(|| async {}));
        let routes = Routes::new()
            .route(String::from("/pulp/api/v3/status/"), get(|| async {}))
            .merge(tasks);
        assert_eq!(
            routes.templates(),
            ["/pulp/api/v3/status/", "/pulp/api/v3/tasks/"]
        );
    }
}
