//! The SSRF guard: webhook URLs may not reach into the server's own
//! networks (loopback, private, link-local with its cloud metadata
//! address `169.254.169.254`, unique-local, CGNAT, multicast, unspecified,
//! reserved), unless `[webhooks] allow_private_networks` says so.
//!
//! Two checks, because a name can change what it points at: a URL whose
//! host is an address literal is checked when it is made, changed and
//! sent ([`check_url`]); a host name is resolved by [`GuardedResolver`]
//! at every connection, and only its public addresses are dialled, so a
//! name that resolves to `127.0.0.1` (or is rebound to it after the
//! check) is never reached. Redirects are not followed and proxies are not
//! used (the client is built so), since either would dial an address this
//! guard never saw.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest endpoint URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Why a URL is refused, in words for the API's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// `text` as an endpoint URL: `http` or `https`, with a host, no user or
/// password, at most [`MAX_URL_BYTES`]; an address literal must be
/// public, and a live endpoint must use `https`, unless private networks
/// are allowed.
pub fn check_url(text: &str, live: bool, allow_private: bool) -> Result<Url, Refused> {
    let refused = |why: &str| Err(Refused(why.to_owned()));
    if text.len() > MAX_URL_BYTES {
        return refused("url is longer than 2048 bytes");
    }
    let Ok(url) = Url::parse(text) else {
        return refused("url is not an absolute URL");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refused("url must be an http or https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refused("url must not hold a user name or password");
    }
    let literal = match url.host() {
        None => return refused("url has no host"),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
    };
    if let Some(ip) = literal {
        if !allow_private && !is_public(ip) {
            return Err(Refused(format!(
                "url points at {ip}, a private, loopback, link-local or otherwise non-public \
                 address; webhooks are sent to public addresses only"
            )));
        }
    }
    if url.scheme() == "http" && live && !allow_private {
        return refused("url must use https for a live endpoint");
    }
    Ok(url)
}

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network", 0.0.0.0
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // Addresses that carry an IPv4 one are judged by it: mapped
    // (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if segments[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible form.
        return false;
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::from((u32::from(segments[6]) << 16) | u32::from(segments[7]));
        return is_public_v4(v4);
    }
    let first = segments[0];
    !((first & 0xfe00) == 0xfc00              // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80         // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0         // site-local (deprecated)
        || (first & 0xff00) == 0xff00         // multicast
        || (first == 0x2001 && segments[1] == 0x0db8) // documentation
        || (first == 0x2001 && segments[1] == 0)      // Teredo tunnels
        || first == 0x2002                    // 6to4: an IPv4 address inside
        || first == 0x0100) // discard-only 100::/64
}

/// The client's resolver: the system's answer, less every non-public
/// address unless private networks are allowed.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                let why = format!(
                    "{host} resolves to no public address (private, loopback and link-local \
                     ones are refused)"
                );
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_of_the_server_s_own_networks_are_not_public() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused_unless_allowed() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1/hook",
            "https://[::1]:8443/",
            "https://10.0.0.8/",
            "https://0x7f000001/",
        ] {
            let refused = check_url(url, false, false).unwrap_err();
            assert!(refused.0.contains("non-public"), "{url}: {refused}");
            assert!(check_url(url, false, true).is_ok(), "{url}");
        }
        assert!(check_url("https://hooks.example.com/x", true, false).is_ok());
    }

    #[test]
    fn only_http_and_https_without_credentials_and_https_when_live() {
        assert!(check_url("ftp://example.com/", false, false).is_err());
        assert!(check_url("file:///etc/passwd", false, true).is_err());
        assert!(check_url("https://u:p@example.com/", false, false).is_err());
        assert!(check_url("http://example.com/", true, false).is_err());
        assert!(check_url("http://example.com/", false, false).is_ok());
        assert!(check_url("http://example.com/", true, true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(check_url(&long, false, false).is_err());
        assert!(check_url("not a url", false, false).is_err());
    }
}
