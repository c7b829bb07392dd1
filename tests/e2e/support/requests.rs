//! Requests the Pulp round trips in `pulp.rs` do not cover: a chunk `PUT` with `Content-Range`,
//! `DELETE`, and calls made with someone else's credentials (another user, an API token) or with
//! extra headers.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::app::{TestApp, random_hex};

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
    /// Sends `method path` as `who`, with a JSON body when given and extra `headers`.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        json: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.anonymous().request(method, self.url(path));
        request = match who {
            As::Admin => {
                let (user, password) = self.credentials();
                request.basic_auth(user, Some(password))
            }
            As::Basic(user, password) => request.basic_auth(user, Some(password)),
            As::Bearer(token) => request.bearer_auth(token),
            As::Anonymous => request,
        };
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
