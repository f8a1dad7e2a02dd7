//! The generic kind: the body as SPEC 11 defines it, with the event id, the
//! timestamp and (with a secret) an HMAC-SHA256 signature in headers.

use serde_json::Value;

use super::{json_request, Context, Kind, OutRequest};
use crate::outbound::config::Webhook;
use crate::outbound::sign::generic_signature;

pub struct Generic;

impl Kind for Generic {
    fn request(&self, hook: &Webhook, body: &Value, now_ms: i64, _: &Context) -> OutRequest {
        let mut req = json_request(&hook.url, body);
        let timestamp = (now_ms / 1000).to_string();
        req.headers.push((
            "x-alert-intake-event-id".into(),
            body["event_id"].as_str().unwrap_or_default().to_string(),
        ));
        if let Some(secret) = &hook.secret {
            req.headers.push((
                "x-alert-intake-signature".into(),
                generic_signature(secret, &timestamp, &req.body),
            ));
        }
        req.headers
            .push(("x-alert-intake-timestamp".into(), timestamp));
        req
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn signed_over_timestamp_and_body() {
        let h = hook(WebhookKind::Generic, "http://h/x", Some("s3cret"));
        let req = Generic.request(&h, &body(), 1_700_000_000_123, &Context::default());
        let header = |n: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("x-alert-intake-timestamp"), "1700000000");
        assert_eq!(header("x-alert-intake-event-id"), "e1");
        assert_eq!(
            header("x-alert-intake-signature"),
            generic_signature("s3cret", "1700000000", &req.body)
        );
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent, body());
        let unsigned = Generic.request(
            &hook(WebhookKind::Generic, "http://h/x", None),
            &body(),
            0,
            &Context::default(),
        );
        assert!(!unsigned
            .headers
            .iter()
            .any(|(k, _)| k == "x-alert-intake-signature"));
    }
}
