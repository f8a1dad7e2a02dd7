//! Slack incoming webhook: `{"text": ...}` in Slack's mrkdwn (bold is `*x*`).

use serde_json::{json, Value};

use super::{json_request, summary, Context, Kind, OutRequest};
use crate::outbound::config::Webhook;

pub struct Slack;

impl Kind for Slack {
    fn request(&self, hook: &Webhook, body: &Value, _: i64, ctx: &Context) -> OutRequest {
        let text = summary(body, ctx).markdown(("*", "*"));
        json_request(&hook.url, &json!({ "text": text }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, hook};
    use super::*;
    use crate::outbound::config::WebhookKind;

    #[test]
    fn text_message() {
        let req = Slack.request(
            &hook(WebhookKind::Slack, "https://hooks.slack.com/x", None),
            &body(),
            0,
            &Context::default(),
        );
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert!(sent["text"]
            .as_str()
            .unwrap()
            .starts_with("*[Triggered] Critical: disk full*"));
        assert_eq!(req.url, "https://hooks.slack.com/x");
    }
}
