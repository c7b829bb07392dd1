//! Host side of `granary:plugin/http`: GET and HEAD on the origins the remote may reach, with
//! redirects checked hop by hop ([`super::upstream`]).

use bytes::Bytes;
use wasmtime::component::Resource;

use super::PluginError;
use super::bindings::current::granary::plugin::http;
use super::runtime::{SandboxViolation, guest_error};
use super::scope::CallState;

/// A response whose body the guest reads in chunks.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<reqwest::Response>,
    pending: Bytes,
}

/// What the guest gets for a request: its response, or the error it may handle; a trap is the
/// host's refusal (a capability not granted).
type Answer = wasmtime::Result<Result<Resource<Response>, PluginError>>;

impl CallState {
    async fn request(
        &mut self,
        method: reqwest::Method,
        url: String,
        headers: Vec<(String, String)>,
    ) -> Answer {
        let Some(scope) = &self.scope.http else {
            return Err(SandboxViolation::new(
                "capability denied: the plugin made an HTTP request but did not declare the `http` capability in describe (outbound HTTP is granted only during a sync, and only to plugins that declare it)",
            )
            .into());
        };
        let parsed = match url::Url::parse(&url) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(guest_error(format!("invalid URL {url:?}: {error}")))),
        };
        if let Err(refused) = scope.upstream.policy().reach(&parsed) {
            return Err(SandboxViolation::new(format!(
                "plugin requested {refused}; plugins may only reach their remote's origin"
            ))
            .into());
        }
        // A redirect is the upstream's doing, not the plugin's: refused hops are the call's error.
        let response = match scope.upstream.send(method, &url, &headers).await {
            Ok(response) => response,
            Err(error) => {
                return Ok(Err(guest_error(format!(
                    "request to {url} failed: {error}"
                ))));
            }
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let resource = self.table.push(Response {
            status,
            headers,
            body: Some(response),
            pending: Bytes::new(),
        })?;
        Ok(Ok(resource))
    }
}

impl http::Host for CallState {
    async fn get(&mut self, url: String, headers: Vec<(String, String)>) -> Answer {
        self.request(reqwest::Method::GET, url, headers).await
    }

    async fn head(&mut self, url: String, headers: Vec<(String, String)>) -> Answer {
        self.request(reqwest::Method::HEAD, url, headers).await
    }
}

impl http::HostResponse for CallState {
    async fn status(&mut self, response: Resource<Response>) -> wasmtime::Result<u16> {
        Ok(self.table.get(&response)?.status)
    }

    async fn headers(
        &mut self,
        response: Resource<Response>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.table.get(&response)?.headers.clone())
    }

    async fn read(
        &mut self,
        response: Resource<Response>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let max = max_bytes.clamp(1, super::MAX_READ_CHUNK) as usize;
        let response = self.table.get_mut(&response)?;
        if response.pending.is_empty() {
            let Some(body) = response.body.as_mut() else {
                return Ok(Ok(Vec::new()));
            };
            match body.chunk().await {
                Ok(Some(chunk)) => response.pending = chunk,
                Ok(None) => {
                    response.body = None;
                    return Ok(Ok(Vec::new()));
                }
                Err(error) => {
                    return Ok(Err(guest_error(format!(
                        "reading the response body failed: {}",
                        super::upstream::describe(&error)
                    ))));
                }
            }
        }
        let take = max.min(response.pending.len());
        Ok(Ok(response.pending.split_to(take).to_vec()))
    }

    async fn drop(&mut self, response: Resource<Response>) -> wasmtime::Result<()> {
        self.table.delete(response)?;
        Ok(())
    }
}
