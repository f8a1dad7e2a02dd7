//! What a user sets on a webhook (SPEC 11), and the rules it must follow.

use std::collections::BTreeMap;

use super::target::{check_host, Targets};
use crate::engine::INCIDENT_EVENT_TYPES;
use crate::error::{ApiError, ApiResult};

/// The alert event types a webhook may also ask for.
pub const ALERT_EVENT_TYPES: [&str; 3] = ["a_new", "a_update", "a_close"];
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_HEADERS: usize = 20;
pub const MAX_SECRET_CHARS: usize = 256;

pub use crate::domain::delivery::{Webhook, WebhookKind};

/// What stands for a value never shown back (SPEC 15).
pub const MASK: &str = "***";

impl Webhook {
    /// What the API shows: never the secret (only whether there is one),
    /// header values as `"***"`, the URL's credentials masked ([`mask_url`]).
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self);
        v["url"] = serde_json::json!(mask_url(&self.url, self.kind));
        let headers: BTreeMap<&str, &str> =
            self.headers.keys().map(|k| (k.as_str(), MASK)).collect();
        v["headers"] = serde_json::json!(headers);
        v["has_secret"] = serde_json::json!(self.secret.is_some());
        v
    }

    /// Whether a change of `event_type` in `channel_id` goes to this webhook.
    pub fn wants(&self, event_type: &str, channel_id: &str) -> bool {
        self.enabled
            && self.event_types.iter().any(|t| t == event_type)
            && (self.channel_ids.is_empty() || self.channel_ids.iter().any(|c| c == channel_id))
    }
}

/// A URL as shown back: every query value `***` (DingTalk's `access_token`,
/// WeCom's `key`), a password in it `***`, and for Slack and Feishu, whose
/// token is the last path segment (`/services/T/B/<token>`,
/// `/bot/v2/hook/<token>`), that segment `***`. The scheme, host, port and
/// the rest of the path stay readable, so an operator can tell hooks apart.
pub fn mask_url(url: &str, kind: WebhookKind) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((r, _)) => (r, Some(MASK)),
        None => (url, None),
    };
    let (base, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (scheme, after) = base.split_once("://").unwrap_or(("", base));
    let (authority, path) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{host}"),
            None => format!("{MASK}@{host}"),
        },
        None => authority.to_string(),
    };
    let path = match (kind, path.rsplit_once('/')) {
        (WebhookKind::Slack | WebhookKind::Feishu, Some((dir, last))) if !last.is_empty() => {
            format!("{dir}/{MASK}")
        }
        _ => path.to_string(),
    };
    let mut out = if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    };
    if let Some(q) = query {
        let masked: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={MASK}"),
                None => pair.to_string(),
            })
            .collect();
        out = format!("{out}?{}", masked.join("&"));
    }
    if let Some(f) = fragment {
        out = format!("{out}#{f}");
    }
    out
}

pub fn default_event_types() -> Vec<String> {
    INCIDENT_EVENT_TYPES.iter().map(|t| t.to_string()).collect()
}

/// http(s) with a host; a literal address must be a target `targets`
/// allows (SPEC 15; names are checked at delivery, once resolved).
pub fn check_url(url: &str, targets: Targets) -> ApiResult<()> {
    let refused = || ApiError::invalid("url: must be an http:// or https:// URL with a host");
    if url.len() > MAX_URL_CHARS {
        return Err(ApiError::invalid(format!(
            "url: at most {MAX_URL_CHARS} characters"
        )));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| refused())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    match uri.host() {
        Some(host) if scheme_ok && !host.is_empty() => check_host(host, targets),
        _ => Err(refused()),
    }
}

pub fn check_event_types(types: &[String]) -> ApiResult<()> {
    if types.is_empty() {
        return Err(ApiError::invalid(
            "event_types: give at least one event type (or leave it out for the incident types)",
        ));
    }
    for (i, t) in types.iter().enumerate() {
        let known =
            INCIDENT_EVENT_TYPES.contains(&t.as_str()) || ALERT_EVENT_TYPES.contains(&t.as_str());
        if !known {
            return Err(ApiError::invalid(format!(
                "event_types[{i}]: must be one of {}, {}",
                INCIDENT_EVENT_TYPES.join(", "),
                ALERT_EVENT_TYPES.join(", ")
            )));
        }
    }
    Ok(())
}

/// Header names are tokens, values visible ASCII; the service's own headers
/// and the body's framing are not the user's to set.
pub fn check_headers(headers: &BTreeMap<String, String>) -> ApiResult<()> {
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid(format!(
            "headers: at most {MAX_HEADERS} headers"
        )));
    }
    for (name, value) in headers {
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !name_ok {
            return Err(ApiError::invalid(
                "headers: each name must be 1 to 100 characters from [A-Za-z0-9_-]",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("x-alert-intake-")
            || [
                "host",
                "content-length",
                "content-type",
                "transfer-encoding",
                "connection",
            ]
            .contains(&lower.as_str())
        {
            return Err(ApiError::invalid(
                "headers: Host, Content-Length, Content-Type, Transfer-Encoding, Connection and X-Alert-Intake-* are set by the service",
            ));
        }
        if value.len() > 1024 || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(ApiError::invalid(
                "headers: each value must be at most 1024 printable ASCII characters",
            ));
        }
    }
    Ok(())
}

pub fn check_secret(secret: &str) -> ApiResult<()> {
    if secret.is_empty() || secret.len() > MAX_SECRET_CHARS {
        return Err(ApiError::invalid(format!(
            "secret: must be 1 to {MAX_SECRET_CHARS} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let allowed = Targets::PublicAndPrivate;
        assert!(check_url("http://127.0.0.1:9/x", allowed).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", Targets::Public).is_err());
        assert!(check_url("http://169.254.169.254/latest", allowed).is_err());
        assert!(check_url("https://hooks.slack.com/services/T/B/X", Targets::Public).is_ok());
        assert!(check_url("ftp://h/x", allowed).is_err());
        assert!(check_url("not a url", allowed).is_err());
        assert!(check_url("/relative", allowed).is_err());
    }

    #[test]
    fn event_types_and_headers() {
        assert!(check_event_types(&["i_new".into(), "a_close".into()]).is_ok());
        let err = check_event_types(&["i_nwe".into()]).unwrap_err();
        assert!(err.message().starts_with("event_types[0]:"));
        assert!(!err.message().contains("i_nwe"));
        let mut h = BTreeMap::new();
        h.insert("X-Team".to_string(), "ops".to_string());
        assert!(check_headers(&h).is_ok());
        h.insert("X-Alert-Intake-Signature".to_string(), "x".to_string());
        assert!(check_headers(&h).is_err());
    }

    #[test]
    fn urls_are_masked_for_every_kind() {
        let cases = [
            (
                WebhookKind::Dingtalk,
                "https://oapi.dingtalk.com/robot/send?access_token=abc123",
                "https://oapi.dingtalk.com/robot/send?access_token=***",
            ),
            (
                WebhookKind::Wecom,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1&debug=1",
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***&debug=***",
            ),
            (
                WebhookKind::Slack,
                "https://hooks.slack.com/services/T0/B0/XXXXSECRET",
                "https://hooks.slack.com/services/T0/B0/***",
            ),
            (
                WebhookKind::Feishu,
                "https://open.feishu.cn/open-apis/bot/v2/hook/0f2a-secret",
                "https://open.feishu.cn/open-apis/bot/v2/hook/***",
            ),
            (
                WebhookKind::Generic,
                "http://user:pw@h.example:8080/x/y?t=1#frag",
                "http://user:***@h.example:8080/x/y?t=***#***",
            ),
            (
                WebhookKind::Generic,
                "https://h.example/plain",
                "https://h.example/plain",
            ),
        ];
        for (kind, url, shown) in cases {
            assert_eq!(mask_url(url, kind), shown);
        }
    }

    #[test]
    fn filters() {
        let w = Webhook {
            webhook_id: "w".into(),
            name: "n".into(),
            url: "http://x".into(),
            kind: WebhookKind::Generic,
            channel_ids: vec!["c1".into()],
            event_types: default_event_types(),
            headers: BTreeMap::new(),
            secret: None,
            enabled: true,
            created_at: 0,
        };
        assert!(w.wants("i_new", "c1"));
        assert!(!w.wants("i_new", "c2"));
        assert!(!w.wants("a_new", "c1"));
        let off = Webhook {
            enabled: false,
            ..w
        };
        assert!(!off.wants("i_new", "c1"));
    }
}
