//! Turns for the content app's expensive work, so that a slow upstream or one busy client cannot
//! take everything: a plugin call (`handle`, which holds one of the pooled plugin instances for
//! as long as it runs, a hanging upstream included) and an upstream fetch (pull-through and
//! on-demand files) each need a turn of their distribution, of their client's address, and of
//! the whole process. A request waits for its turns in order (client, distribution, process) up
//! to one deadline, then gets 503 with `Retry-After`.
//!
//! Stored files and the REST API take no turns: they stay responsive while upstreams hang.
//! A turn is a value: it is given back when the call or the fetch ends, or when the request is
//! dropped (the client went away).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Extensions;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::ApiError;

/// The kinds of work that take turns.
#[derive(Clone, Copy, Debug)]
pub(super) enum Work {
    /// A call of the plugin's `handle` export.
    PluginCall,
    /// A download of a file from a remote for a client (pull-through, on-demand, streamed).
    UpstreamFetch,
}

impl Work {
    fn describe(self) -> &'static str {
        match self {
            Work::PluginCall => "plugin calls",
            Work::UpstreamFetch => "upstream downloads",
        }
    }
}

/// Whose turns a content request takes: its distribution's and its client's.
#[derive(Clone, Debug)]
pub(super) struct Requester {
    /// The distribution's name.
    pub distribution: String,
    /// The client's address as turns count it (see [`client_key`]); `None` when the listener does
    /// not say (then only the distribution's and the process's turns apply).
    pub client: Option<IpAddr>,
}

impl Requester {
    /// The requester of a request to `distribution` whose extensions carry the connection's
    /// address (`ConnectInfo`, set by the server loop).
    pub(super) fn new(distribution: &str, extensions: &Extensions) -> Self {
        Requester {
            distribution: distribution.to_owned(),
            client: extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| client_key(address.ip())),
        }
    }
}

/// The address turns are counted by: an IPv4 address as it is (IPv4-mapped IPv6 too), an IPv6
/// address by its /64, the block one host or one site usually gets.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
    }
}

/// The turns of the content app, by kind of work.
#[derive(Debug)]
pub(super) struct Admission {
    plugin_calls: Turns,
    upstream_fetches: Turns,
    queue_timeout: Duration,
}

impl Admission {
    /// Turns as the configuration sets them (checked at start-up against the plugin instance
    /// pool: `Config::check_content_limits`).
    pub(super) fn new(config: &Config) -> Self {
        let turns = |process| Turns {
            process: Arc::new(Semaphore::new(process)),
            per_distribution: Keyed::new(config.content_per_distribution),
            per_client: Keyed::new(config.content_per_client),
        };
        Admission {
            plugin_calls: turns(config.content_plugin_calls),
            upstream_fetches: turns(config.content_upstream_fetches),
            queue_timeout: Duration::from_millis(config.content_queue_timeout_ms),
        }
    }

    /// Waits for a turn of `work` for `requester`, up to the queue timeout; 503 with
    /// `Retry-After` when none came.
    pub(super) async fn turn(&self, work: Work, requester: &Requester) -> Result<Turn, ApiError> {
        let turns = match work {
            Work::PluginCall => &self.plugin_calls,
            Work::UpstreamFetch => &self.upstream_fetches,
        };
        let deadline = Instant::now() + self.queue_timeout;
        let busy = |whose: &str| {
            tracing::debug!(?work, requester = ?requester, whose, "no turn before the deadline");
            let seconds = self.queue_timeout.as_secs().max(1);
            ApiError::unavailable(
                format!(
                    "Too many {} are running for {whose}; try again in {seconds} s.",
                    work.describe()
                ),
                seconds,
            )
        };
        let client = match requester.client {
            Some(address) => Some(
                turns
                    .per_client
                    .take(address, deadline)
                    .await
                    .ok_or_else(|| busy("this client address"))?,
            ),
            None => None,
        };
        let distribution = turns
            .per_distribution
            .take(requester.distribution.clone(), deadline)
            .await
            .ok_or_else(|| busy("this distribution"))?;
        let process = tokio::time::timeout_at(deadline, turns.process.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| busy("this server"))?;
        Ok(Turn {
            _process: process,
            _distribution: distribution,
            _client: client,
        })
    }
}

/// A turn: given back when dropped.
#[derive(Debug)]
pub(super) struct Turn {
    _process: OwnedSemaphorePermit,
    _distribution: KeyedTurn<String>,
    _client: Option<KeyedTurn<IpAddr>>,
}

/// The turns of one kind of work.
#[derive(Debug)]
struct Turns {
    process: Arc<Semaphore>,
    per_distribution: Keyed<String>,
    per_client: Keyed<IpAddr>,
}

/// `limit` turns per key. A key has an entry only while someone holds or waits for one of its
/// turns, so keys a client chooses (its address) cost nothing once it is gone.
#[derive(Debug)]
struct Keyed<K> {
    limit: usize,
    slots: Arc<Mutex<HashMap<K, Slot>>>,
}

/// A key's turns and how many [`KeyedTurn`]s (held or waiting) use them.
#[derive(Debug)]
struct Slot {
    turns: Arc<Semaphore>,
    users: usize,
}

impl<K: Clone + Eq + Hash> Keyed<K> {
    fn new(limit: usize) -> Self {
        Keyed {
            limit,
            slots: Arc::default(),
        }
    }

    /// Waits for a turn of `key` until `deadline`; `None` when none came.
    async fn take(&self, key: K, deadline: Instant) -> Option<KeyedTurn<K>> {
        let turns = {
            let mut slots = self.slots.lock().expect("turn table");
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                turns: Arc::new(Semaphore::new(self.limit)),
                users: 0,
            });
            slot.users += 1;
            slot.turns.clone()
        };
        // Counted as a user from here: dropping it (a timeout, a cancelled request) un-counts.
        let mut turn = KeyedTurn {
            permit: None,
            key,
            slots: self.slots.clone(),
        };
        let permit = tokio::time::timeout_at(deadline, turns.acquire_owned()).await;
        turn.permit = Some(permit.ok()?.ok()?);
        Some(turn)
    }
}

/// A turn of one key (or a wait for one).
#[derive(Debug)]
struct KeyedTurn<K: Eq + Hash> {
    permit: Option<OwnedSemaphorePermit>,
    key: K,
    slots: Arc<Mutex<HashMap<K, Slot>>>,
}

impl<K: Eq + Hash> Drop for KeyedTurn<K> {
    fn drop(&mut self) {
        drop(self.permit.take());
        let mut slots = self.slots.lock().expect("turn table");
        if let Some(slot) = slots.get_mut(&self.key) {
            slot.users -= 1;
            if slot.users == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_key_has_its_limit_and_is_forgotten_when_unused() {
        let keyed = Keyed::new(2);
        let first = keyed.take("a", far()).await.expect("a turn");
        let second = keyed.take("a", far()).await.expect("a turn");
        let expired = Instant::now();
        assert!(keyed.take("a", expired).await.is_none(), "a third waits");
        let other = keyed.take("b", expired).await.expect("another key");
        drop((first, other));
        assert!(keyed.take("a", expired).await.is_some());
        drop(second);
        assert!(
            keyed.slots.lock().unwrap().is_empty(),
            "no entry outlives its users"
        );
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_back() {
        let keyed = Keyed::new(1);
        let held = keyed.take("a", far()).await.expect("a turn");
        let waiting = keyed.take("a", far());
        // Polled once (now queued), then dropped, as when the client goes away.
        assert!(futures::poll!(Box::pin(waiting)).is_pending());
        drop(held);
        assert!(keyed.slots.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
