//! The web UI at `/ui/`: server-rendered pages for people, readable without JavaScript.
//!
//! It is a client of the REST API, in process ([`rest::Rest`]): each page reads what it shows,
//! and each action does what it does, through the API with the session's API token, so the
//! UI passes the same access policies as any client and adds no privileged path. Sessions and
//! their CSRF tokens are [`session`]'s; the page skeleton is [`layout`]'s; each screen is in
//! [`pages`], each action (a form's POST) in [`actions`].

mod actions;
mod clients;
mod layout;
mod pages;
mod rest;
mod session;

use axum::Extension;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use self::rest::Rest;
use self::session::Session;
use crate::state::AppState;

/// The REST router the UI calls, with its state.
#[derive(Clone)]
struct ApiRouter(Router);

/// The UI's routes.
pub fn router(app: &AppState) -> Router<AppState> {
    let api = crate::api::router(app).with_state(app.clone());
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::dashboard))
        .route("/ui/login", get(pages::log_in_form).post(actions::log_in))
        .route("/ui/logout", post(actions::log_out))
        .route(
            "/ui/repositories/",
            get(pages::repositories).post(actions::create_repository),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/",
            get(pages::repository),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/versions/{number}/",
            get(pages::version),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/sync",
            post(actions::sync),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/distribute",
            post(actions::distribute),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/upload",
            post(actions::upload),
        )
        .route(
            "/ui/repositories/{plugin}/{type}/{id}/delete",
            post(actions::delete_repository),
        )
        .route("/ui/remotes/", get(pages::remotes))
        .route("/ui/distributions/", get(pages::distributions))
        .route("/ui/tasks/", get(pages::tasks))
        .route("/ui/tasks/{id}/", get(pages::task))
        .route(
            "/ui/plugins/",
            get(pages::plugins).post(actions::install_plugin),
        )
        .route("/ui/plugins/remove", post(actions::remove_plugin))
        .route("/ui/users/", get(pages::users))
        .layer(axum::middleware::map_response(protective_headers))
        .layer(Extension(ApiRouter(api)))
}

/// Headers every UI answer carries: no framing by other sites (clickjacking), no script at all
/// and no resource from elsewhere (the pages have none; a value that slipped past escaping
/// could not run), and no copy kept by caches (pages show private data).
async fn protective_headers(mut response: Response) -> Response {
    use axum::http::HeaderValue;
    use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request of a logged-in visitor: their session and the REST API called as them. A visitor
/// without a session is sent to the log-in page (and back here after it).
struct Visit {
    app: AppState,
    session: Session,
    rest: Rest,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let Some(session) = Session::of(app, &parts.headers).await else {
            let Ok(OriginalUri(uri)) = OriginalUri::from_request_parts(parts, app).await;
            let next = layout::encoded(uri.path());
            return Err(Redirect::to(&format!("/ui/login?next={next}")).into_response());
        };
        let Some(ApiRouter(api)) = parts.extensions.get::<ApiRouter>().cloned() else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let rest = Rest::new(api, &session.token);
        Ok(Visit {
            app: app.clone(),
            session,
            rest,
        })
    }
}

impl Visit {
    /// Whether a form carries this session's CSRF token (`csrf`); one that does not is
    /// answered with [`forbidden_form`], before anything is done.
    fn sent_by_session(&self, csrf: Option<&String>) -> bool {
        csrf.is_some_and(|given| self.session.csrf_matches(given))
    }
}

/// The answer to a form without a valid CSRF token.
fn forbidden_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        "The form was not sent from this session's page (CSRF check failed). Reload it and try again.",
    )
        .into_response()
}
