//! Who a request comes from, for the Clerk-miss budget's per-client share: the connection's peer,
//! or, behind a configured trusted proxy, the rightmost `X-Forwarded-For` hop that is not one.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

use crate::error::InvalidValue;

/// The address of a connection's peer, in a request's extensions. axum servers that put
/// `ConnectInfo<SocketAddr>` there (as `service_kit::serve` does) need nothing more; other
/// servers (hyper, tonic) insert this before the `AuthLayer` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub IpAddr);

/// Proxies whose `X-Forwarded-For` is believed (`M2M_VERIFY_TRUSTED_PROXIES`, addresses or CIDR
/// ranges). Empty, the default, ignores the header: any client could write it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|n| n.to_string()))
            .finish()
    }
}

/// Hops of `X-Forwarded-For` looked at, at most: a client cannot make the walk long.
const MAX_HOPS: usize = 16;

impl TrustedProxies {
    /// These networks (a single address is a /32 or /128).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self(nets.into_iter().map(|n| n.trunc()).collect())
    }

    /// Whether no proxy is trusted (the header is then ignored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client a request is from: `peer` itself unless it is a trusted proxy; then the
    /// rightmost `X-Forwarded-For` hop that is not a trusted proxy (each trusted proxy appends
    /// the address it saw, so hops to the left of the first untrusted one are the client's own
    /// say-so). A hop that is not an address stops the walk at the last trusted hop, which then
    /// pays: a client cannot pick whose share it spends.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let mut hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| {
                v.to_str()
                    .map_or_else(|_| vec![""], |s| s.rsplit(',').collect())
            })
            .take(MAX_HOPS);
        for hop in &mut hops {
            let Some(ip) = parse_hop(hop.trim()) else {
                return client;
            };
            client = ip.to_canonical();
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

/// An address, bare or with a port (`1.2.3.4:80`, `[::1]:80`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

impl FromStr for TrustedProxies {
    type Err = InvalidValue;

    /// Addresses or CIDR ranges separated by commas; blank items are skipped.
    fn from_str(v: &str) -> Result<Self, InvalidValue> {
        let nets = v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        InvalidValue::new(format!("{p:?} is not an IP address or CIDR range"))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(nets))
    }
}

/// Whose share of the budget a verification spends: an IPv4 address, or an IPv6 /64 (one
/// subscriber's usual allocation, so a host cannot rotate through its own addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => Self::V4(a.into()),
            IpAddr::V6(a) => Self::V6((u128::from(a) >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_is_ignored_unless_proxies_are_configured() {
        let none = TrustedProxies::default();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(none.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_header_is_ignored_when_the_peer_is_not_a_trusted_proxy() {
        let lb: TrustedProxies = "10.0.0.0/8".parse().expect("parse");
        let h = headers(&["203.0.113.9"]);
        assert_eq!(lb.client(ip("198.51.100.7"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let lb: TrustedProxies = "10.0.0.0/8, 192.0.2.1".parse().expect("parse");
        // The client wrote a forged first hop; the two proxies appended what they saw.
        let h = headers(&["1.1.1.1, 203.0.113.9", "192.0.2.1"]);
        assert_eq!(lb.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        let h = headers(&["1.1.1.1, 203.0.113.9:4711, 10.1.2.3"]);
        assert_eq!(lb.client(ip("10.0.0.2"), &h), ip("203.0.113.9"));
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(lb.client(ip("10.0.0.2"), &h), ip("2001:db8::1"));
    }

    #[test]
    fn garbage_or_no_header_charges_the_last_trusted_hop() {
        let lb: TrustedProxies = "10.0.0.0/8".parse().expect("parse");
        assert_eq!(lb.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        let h = headers(&["203.0.113.9, not-an-ip, 10.9.9.9"]);
        assert_eq!(lb.client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        let long = vec!["10.0.0.3"; 100].join(",");
        let h = headers(&[&format!("203.0.113.9,{long}")]);
        assert_eq!(
            lb.client(ip("10.0.0.2"), &h),
            ip("10.0.0.3"),
            "walk bounded"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4_and_ipv6_is_keyed_by_its_64() {
        let lb: TrustedProxies = "127.0.0.1".parse().expect("parse");
        assert_eq!(
            lb.client(ip("::ffff:127.0.0.1"), &headers(&["::ffff:1.2.3.4"])),
            ip("1.2.3.4")
        );
        assert_eq!(
            ClientKey::from(ip("::ffff:1.2.3.4")),
            ClientKey::from(ip("1.2.3.4"))
        );
        assert_eq!(
            ClientKey::from(ip("2001:db8:1:2::1")),
            ClientKey::from(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            ClientKey::from(ip("2001:db8:1:2::1")),
            ClientKey::from(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn a_bad_list_is_refused() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("lb.internal".parse::<TrustedProxies>().is_err());
        assert!(" , ".parse::<TrustedProxies>().expect("blank").is_empty());
    }
}
