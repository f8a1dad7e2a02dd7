//! Where webhooks may go (SPEC 15): never to "this host" (0.0.0.0/8, ::),
//! link-local (169.254.0.0/16: cloud instance metadata; fe80::/10),
//! multicast or broadcast; to loopback and private ranges only when the
//! deployment allows it (`ALLOW_PRIVATE_WEBHOOK_TARGETS=true`). Checked on
//! the literal address when a webhook is saved, and on every address a name
//! resolves to when it is delivered ([`CheckedResolver`], the resolver of the
//! one outbound HTTP client), so DNS cannot be used to reach them.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

use crate::error::{ApiError, ApiResult};

pub const ALLOW_PRIVATE_ENV: &str = "ALLOW_PRIVATE_WEBHOOK_TARGETS";

pub use crate::domain::delivery::Targets;

impl Targets {
    /// `ALLOW_PRIVATE_WEBHOOK_TARGETS=true` (exactly) allows private targets.
    pub fn from_env() -> Targets {
        match std::env::var(ALLOW_PRIVATE_ENV).as_deref() {
            Ok("true") => Targets::PublicAndPrivate,
            _ => Targets::Public,
        }
    }

    /// Why `ip` is not a target here, or `None` when it is.
    pub fn refusal(self, ip: IpAddr) -> Option<&'static str> {
        if self == Targets::Any {
            return None;
        }
        match class(ip) {
            Class::Public => None,
            Class::Private(_) if self == Targets::PublicAndPrivate => None,
            Class::Private(why) => Some(why),
            Class::Never(why) => Some(why),
        }
    }
}

enum Class {
    Public,
    /// Allowed only with `ALLOW_PRIVATE_WEBHOOK_TARGETS=true`.
    Private(&'static str),
    Never(&'static str),
}

const PRIVATE_HINT: &str =
    "loopback and private addresses are refused unless ALLOW_PRIVATE_WEBHOOK_TARGETS=true";

fn class(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => class_v4(v4),
            None => class_v6(v6),
        },
    }
}

fn class_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Class::Never("0.0.0.0/8 (this host) is never a webhook target")
    } else if a == 169 && b == 254 {
        Class::Never(
            "169.254.0.0/16 (link-local, cloud instance metadata) is never a webhook target",
        )
    } else if ip.is_multicast() {
        Class::Never("multicast addresses are never webhook targets")
    } else if ip.is_broadcast() || a >= 240 {
        Class::Never("broadcast and reserved addresses (240.0.0.0/4) are never webhook targets")
    } else if ip.is_loopback() || ip.is_private() {
        Class::Private(PRIVATE_HINT)
    } else {
        Class::Public
    }
}

fn class_v6(ip: Ipv6Addr) -> Class {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Class::Never(":: (this host) is never a webhook target")
    } else if first & 0xffc0 == 0xfe80 {
        Class::Never("fe80::/10 (link-local) is never a webhook target")
    } else if ip.is_multicast() {
        Class::Never("multicast addresses are never webhook targets")
    } else if ip.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Class::Private(PRIVATE_HINT)
    } else {
        Class::Public
    }
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`), which reach
/// that IPv4 host.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|&x| x == 0) && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0);
    (compatible || nat64).then_some(tail)
}

/// The host of a URL as an address, when it is one (`[::1]` without brackets).
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// A host that is all numbers (`2130706433`, `0x7f.1`, `017700000001`):
/// resolvers read these as IPv4 addresses in forms no one writes on purpose.
fn numeric_host(host: &str) -> bool {
    let label_is_number = |l: &str| {
        let l = l.to_ascii_lowercase();
        !l.is_empty()
            && match l.strip_prefix("0x") {
                Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
                None => l.bytes().all(|b| b.is_ascii_digit()),
            }
    };
    host.trim_end_matches('.').split('.').all(label_is_number)
}

/// The save-time check of a URL's host: a literal address must be allowed.
/// A name is checked at delivery, after resolving it.
pub fn check_host(host: &str, targets: Targets) -> ApiResult<()> {
    match literal_ip(host) {
        Some(ip) => match targets.refusal(ip) {
            Some(why) => Err(ApiError::invalid(format!("url: {why}"))),
            None => Ok(()),
        },
        None if numeric_host(host) => Err(ApiError::invalid(
            "url: write an IPv4 address in dotted decimal (a.b.c.d)",
        )),
        None => Ok(()),
    }
}

/// A delivery refused because of where it would go.
#[derive(Debug)]
pub struct RefusedTarget(pub &'static str);

impl std::fmt::Display for RefusedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused target address: {}", self.0)
    }
}

impl std::error::Error for RefusedTarget {}

/// The system resolver, then [`Targets::refusal`] on every answer: a name
/// with any refused address fails (no falling back to its other addresses,
/// which would make the outcome depend on their order).
#[derive(Clone)]
pub struct CheckedResolver {
    inner: GaiResolver,
    targets: Targets,
}

impl CheckedResolver {
    pub fn new(targets: Targets) -> Self {
        CheckedResolver {
            inner: GaiResolver::new(),
            targets,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolving = self.inner.call(name);
        let targets = self.targets;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = resolving.await?.collect();
            if let Some(why) = addrs.iter().find_map(|a| targets.refusal(a.ip())) {
                return Err(Box::new(RefusedTarget(why)) as BoxError);
            }
            Ok(addrs.into_iter())
        })
    }
}

/// The refusal somewhere in an error's chain of causes.
pub fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<RefusedTarget>() {
            return Some(r.0);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(host: &str, targets: Targets) -> bool {
        check_host(host, targets).is_err()
    }

    #[test]
    fn never_targets() {
        for host in [
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "[fe80::1]",
            "[febf::1]",
            "224.0.0.1",
            "239.255.255.250",
            "[ff02::1]",
            "255.255.255.255",
            "[::]",
            "[::ffff:169.254.169.254]",
            "[64:ff9b::a9fe:a9fe]",
            "2130706433",
            "0x7f.1",
        ] {
            assert!(refused(host, Targets::PublicAndPrivate), "{host}");
            assert!(refused(host, Targets::Public), "{host}");
        }
    }

    #[test]
    fn private_targets_only_when_allowed() {
        for host in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "[::1]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[::ffff:10.0.0.1]",
        ] {
            assert!(refused(host, Targets::Public), "{host}");
            assert!(!refused(host, Targets::PublicAndPrivate), "{host}");
        }
    }

    #[test]
    fn public_targets_and_names() {
        for host in [
            "8.8.8.8",
            "172.32.0.1",
            "[2606:4700::1111]",
            "hooks.slack.com",
            "localhost",
            "1password.example",
        ] {
            assert!(!refused(host, Targets::Public), "{host}");
        }
        let err = check_host("169.254.169.254", Targets::Public).unwrap_err();
        assert!(err.message().starts_with("url: "));
        assert!(!err.message().contains("169.254.169.254"));
        assert_eq!(
            Targets::Any.refusal("169.254.169.254".parse().unwrap()),
            None
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_fails() {
        use tower_service::Service;
        let mut resolver = CheckedResolver::new(Targets::Public);
        let name: Name = "localhost".parse().unwrap();
        let err = resolver.call(name).await.unwrap_err();
        assert!(refusal_in(err.as_ref()).is_some(), "{err}");
        let mut allowed = CheckedResolver::new(Targets::PublicAndPrivate);
        let addrs: Vec<_> = allowed
            .call("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
    }
}
