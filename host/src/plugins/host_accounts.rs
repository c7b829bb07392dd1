//! Host side of `granary:plugin/accounts`: a format's own log-in (`npm login`) checked by the
//! host's authenticator and answered with a new API token.

use super::PluginError;
use super::bindings::current::granary::plugin::accounts;
use super::runtime::guest_error;
use super::scope::CallState;

impl accounts::Host for CallState {
    async fn log_in(
        &mut self,
        username: String,
        password: String,
        client: String,
    ) -> wasmtime::Result<Result<Option<String>, PluginError>> {
        // Taken: one password per call, so a plugin cannot turn a request into a guessing loop.
        let Some(accounts) = self.scope.accounts.take() else {
            return Ok(Err(guest_error(
                "accounts.log-in is available once per handle call, at one of the plugin's log-in paths",
            )));
        };
        Ok(accounts
            .log_in(&username, &password, &client)
            .await
            .map_err(guest_error))
    }
}
