//! Requests the Pulp round trips in `pulp.rs` do not cover: a chunk `PUT` with `Content-Range`,
//! `DELETE`, and calls made with someone else's credentials (another user, an API token) or with
//! extra headers: a `Call` made by `As` (`SAM.get(&href)`) is sent by `TestApp::call`, or by
//! `TestApp::expect`, which also asserts its status; `TestApp::create_user` makes the user.

use std::fmt;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::app::{TestApp, random_hex};
use super::pulp::{API, str_field};

/// Who a request is made as.
#[derive(Debug, Clone, Copy)]
pub enum As<'a> {
    /// The admin's Basic credentials (what every other helper sends).
    Admin,
    /// HTTP Basic with this user and password.
    Basic(&'a str, &'a str),
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// No credentials.
    Anonymous,
}

impl fmt::Display for As<'_> {
    /// Who, as a failure message names them: `admin`, the user's name, `a token`, `anonymous`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            As::Admin => f.write_str("admin"),
            As::Basic(user, _) => f.write_str(user),
            As::Bearer(_) => f.write_str("a token"),
            As::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// A request to send: `who` sends `method path`, with a JSON body when given. `As` makes one
/// (`SAM.get(&href)`, `OLIVIA.post(&path, body)`); `TestApp::call` and `TestApp::expect` send it.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub who: As<'a>,
    pub body: Option<Value>,
}

impl<'a> As<'a> {
    /// `method path` as this user, with a JSON body when given.
    pub fn call(self, method: Method, path: &str, body: Option<Value>) -> Call<'a> {
        Call {
            method,
            path: path.to_owned(),
            who: self,
            body,
        }
    }

    /// `GET path` as this user.
    pub fn get(self, path: &str) -> Call<'a> {
        self.call(Method::GET, path, None)
    }

    /// `POST path` as this user, with a JSON body.
    pub fn post(self, path: &str, body: Value) -> Call<'a> {
        self.call(Method::POST, path, Some(body))
    }

    /// `PATCH path` as this user, with a JSON body.
    pub fn patch(self, path: &str, body: Value) -> Call<'a> {
        self.call(Method::PATCH, path, Some(body))
    }

    /// `DELETE path` as this user.
    pub fn delete(self, path: &str) -> Call<'a> {
        self.call(Method::DELETE, path, None)
    }
}

impl fmt::Display for Call<'_> {
    /// `METHOD path as who`, and ` with body` when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} as {}", self.method, self.path, self.who)?;
        if let Some(body) = &self.body {
            write!(f, " with {body}")?;
        }
        Ok(())
    }
}

/// A response: status, the headers (names lower-cased) and the body (JSON when it parses).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A `multipart/form-data` body of `(name, filename, bytes)` parts and its content type.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("granary-e2e-{}", random_hex(12));
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let disposition = match filename {
            Some(filename) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl TestApp {
    /// `request` with the credentials of `who`.
    pub fn sent_as(
        &self,
        request: reqwest::RequestBuilder,
        who: As<'_>,
    ) -> reqwest::RequestBuilder {
        match who {
            As::Admin => {
                let (user, password) = self.credentials();
                request.basic_auth(user, Some(password))
            }
            As::Basic(user, password) => request.basic_auth(user, Some(password)),
            As::Bearer(token) => request.bearer_auth(token),
            As::Anonymous => request,
        }
    }

    /// Sends `method path` as `who`, with a JSON body when given and extra `headers`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        json: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.sent_as(self.anonymous().request(method, self.url(path)), who);
        if let Some(json) = json {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(json.to_string());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.reply(request).await
    }

    /// Sends `call`; answers the reply, whatever its status.
    pub async fn call(&self, call: Call<'_>) -> Reply {
        self.request(call.method, &call.path, call.who, call.body.as_ref(), &[])
            .await
    }

    /// Sends `call`, expecting `status`; answers the reply's body. Any other status fails the
    /// test with `what`, the request (method, path, who, body) and the body of the reply.
    pub async fn expect(&self, call: Call<'_>, status: StatusCode, what: &str) -> Value {
        let sent = call.to_string();
        let reply = self.call(call).await;
        assert_eq!(
            reply.status, status,
            "{what}: {sent} answered {}",
            reply.body
        );
        reply.body
    }

    /// Each of `calls` (`method path`, with `body` for a POST) answers 401 to an anonymous
    /// client and 403 or 404 to `stranger`, a user who holds no role that opens it.
    pub async fn assert_closed_to(
        &self,
        stranger: As<'_>,
        calls: &[(Method, String)],
        body: &Value,
    ) {
        for (method, path) in calls {
            let body = (*method == Method::POST).then_some(body);
            let anonymous = self
                .request(method.clone(), path, As::Anonymous, body, &[])
                .await;
            assert_eq!(
                anonymous.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
            let refused = self
                .request(method.clone(), path, stranger, body, &[])
                .await;
            assert!(
                [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&refused.status),
                "{method} {path}: {} {}",
                refused.status,
                refused.body
            );
        }
    }

    /// The admin creates a user who is not staff; answers its href.
    pub async fn create_user(&self, username: &str, password: &str) -> String {
        let user = self
            .create(
                &format!("{API}/users/"),
                json!({"username": username, "password": password}),
            )
            .await;
        str_field(&user, "pulp_href").to_owned()
    }

    async fn reply(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("request failed: {err}\n{}", self.logs()));
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `DELETE path` as the admin.
    pub async fn delete_href(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, As::Admin, None, &[])
            .await
    }

    /// `PUT` a chunk of an upload: multipart `file` (and `sha256` when given) with
    /// `Content-Range: bytes START-END/TOTAL`.
    pub async fn put_chunk(
        &self,
        upload_href: &str,
        bytes: &[u8],
        start: usize,
        total: usize,
        sha256: Option<&str>,
    ) -> Reply {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![("file", Some("chunk.bin"), bytes)];
        if let Some(sha256) = sha256 {
            parts.push(("sha256", None, sha256.as_bytes()));
        }
        let (content_type, body) = multipart(&parts);
        let end = start + bytes.len() - 1;
        let (user, password) = self.credentials();
        let request = self
            .anonymous()
            .put(self.url(upload_href))
            .basic_auth(user, Some(password))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("Content-Range", format!("bytes {start}-{end}/{total}"))
            .body(body);
        self.reply(request).await
    }
}
