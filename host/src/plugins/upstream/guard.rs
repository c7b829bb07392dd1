//! The SSRF guard: which addresses an upstream request may connect to.
//!
//! A plugin and the upstream it reads decide which URLs the host fetches (a files host, a
//! redirect), so neither may point the host at the machines around it: loopback, private
//! networks, link-local (where clouds serve their instance metadata), and the like. An address
//! written in a URL is checked by [`OriginPolicy`](super::OriginPolicy) before the request; a name
//! is checked here, by the client's resolver, on the addresses the connection will actually use,
//! so a name that resolves differently the second time (DNS rebinding) gains nothing.
//!
//! The remote's own host, the hosts of its `allowed_origins` and the proxies' hosts are the
//! operator's choice and may resolve anywhere. Documentation and benchmarking ranges are public
//! here on purpose: intercepting proxies and test networks use them for real upstreams.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why `ip` is no address for a request the operator did not allow; `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => non_public_v6(ip),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified (this network)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (169, 254, _) => "link-local (cloud metadata)",
        (192, 0, 0) => "IETF protocol assignment",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved or broadcast",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let segments = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: mapped (::ffff:a.b.c.d), the
    // deprecated compatible form (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    let carried = match segments {
        [0, 0, 0, 0, 0, 0xffff, high, low] | [0, 0, 0, 0, 0, 0, high, low] => {
            Some(embedded(high, low))
        }
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(embedded(high, low)),
        [0x2002, high, low, ..] => Some(embedded(high, low)),
        _ => None,
    };
    if let Some(v4) = carried {
        return non_public_v4(v4);
    }
    Some(match segments[0] {
        0xfc00..=0xfdff => "unique local (private)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        _ => return None,
    })
}

/// A refused name: every address it resolved to is non-public.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} resolves only to addresses the host does not fetch from ({addresses}); an operator may list its origin in the remote's allowed_origins"
)]
pub struct RefusedName {
    host: String,
    addresses: String,
}

/// The resolver of a remote's client: names resolve through the system, and a name outside
/// `trusted` keeps only its public addresses.
#[derive(Debug)]
pub struct GuardedResolver {
    /// Lower-case host names that may resolve to any address.
    trusted: Arc<BTreeSet<String>>,
}

impl GuardedResolver {
    /// A resolver that lets `trusted` (lower-case host names) resolve anywhere.
    pub fn new(trusted: BTreeSet<String>) -> Self {
        GuardedResolver {
            trusted: Arc::new(trusted),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted.contains(&host);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(addresses.into_iter()) as Addrs);
            }
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addresses
                .into_iter()
                .partition(|address| non_public(address.ip()).is_none());
            if public.is_empty() && !refused.is_empty() {
                let addresses = refused
                    .iter()
                    .map(|address| {
                        let ip = address.ip();
                        format!("{ip} is {}", non_public(ip).unwrap_or("public"))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Box::new(RefusedName { host, addresses }).into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn addresses_of_the_machines_around_the_host_are_not_public() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("0.0.0.0", "unspecified (this network)"),
            ("192.0.0.192", "IETF protocol assignment"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved or broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00:ec2::254", "unique local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:101::1", "private"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass_documentation_ranges_included() {
        for ip in [
            "151.101.0.223",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "203.0.113.80",
            "198.18.0.1",
            "2a04:4e42::223",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn names_resolving_only_to_loopback_are_refused_unless_trusted() {
        let guarded = GuardedResolver::new(BTreeSet::new());
        let refused = match guarded.resolve("localhost".parse().unwrap()).await {
            Ok(addresses) => panic!("resolved to {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error.to_string(),
        };
        assert!(refused.contains("localhost resolves only to"), "{refused}");
        assert!(refused.contains("is loopback"), "{refused}");
        assert!(refused.contains("allowed_origins"), "{refused}");

        let trusted = GuardedResolver::new(BTreeSet::from(["localhost".to_owned()]));
        let addresses: Vec<SocketAddr> = trusted
            .resolve("localhost".parse().unwrap())
            .await
            .expect("a trusted name resolves")
            .collect();
        assert!(
            addresses.iter().all(|address| address.ip().is_loopback()),
            "{addresses:?}"
        );
        assert!(!addresses.is_empty());
    }
}
