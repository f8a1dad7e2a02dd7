//! `POST /event/push/alert/{integration}?integration_key=KEY`: check, parse,
//! normalise every event (so a bad one refuses the whole push before anything
//! is written), then apply each to its channel.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use tracing::Instrument;

use crate::app::App;
use crate::domain::event::{normalise, NormaliseContext, ParsedEvent, StandardEvent};
use crate::domain::time::now_ms;
use crate::engine::Outcome;
use crate::error::{ApiError, ApiResult};
use crate::intake::http::{media_type, new_request_id, Inbound, Outbound};
use crate::intake::integrations::aws_cloudwatch::TimestampWindow;
use crate::intake::integrations::{
    BodyFormat, Endpoint, IntegrationKind, ParseSettings, PushBody, Reply, SourceRequest,
};
use crate::intake::shaping::{
    channel_setup, integration_setup, CachedMappings, ChannelSetup, IntegrationSetup, Shaping,
};
use crate::intake::source_actions::source_action;
use crate::model::Integration;
use crate::rules::channel::silence_verdict;
use crate::rules::conditions::Subject;
use crate::rules::ratelimit::too_frequent;
use crate::rules::routing::CompiledRoutes;
use crate::store::alerts::{Applied, EventRules};

pub const MAX_BODY_BYTES: usize = 256 * 1024;
pub const PUSH_PATH_PREFIX: &str = "/event/push/alert/";

/// Events of distinct alert keys applied at once, per push.
pub const PUSH_CONCURRENCY: usize = 32;

/// One event of a chain: its result slot, the event and its channel.
type ChainLink = (usize, Arc<StandardEvent>, Arc<ChannelSetup>);

/// The push handler of `kind` (tests and the local server reach every kind).
pub async fn handle_push(app: &App, kind: IntegrationKind, req: Inbound) -> Outbound {
    handle_endpoint(app, kind.endpoint(), req).await
}

/// The push handler every integration function runs, for its own endpoint.
pub async fn handle_endpoint(app: &App, endpoint: Endpoint, req: Inbound) -> Outbound {
    let request_id = new_request_id();
    let kind = endpoint.kind;
    let span = tracing::info_span!("push", request_id = %request_id, integration = kind.slug());
    async {
        let result = push(app, endpoint, &req).await;
        if let Err(e) = &result {
            let outcome = if e.status() < 500 { "refused" } else { "error" };
            crate::metrics::events(kind.slug(), [outcome]);
        }
        endpoint.source.reply(&request_id, result)
    }
    .instrument(span)
    .await
}

/// The checks that need no storage, in the order the spec lists them.
pub fn check_request(endpoint: Endpoint, req: &Inbound) -> ApiResult<BodyFormat> {
    let kind = endpoint.kind;
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(ApiError::MethodNotAllowed(
            "method: push endpoints take POST only".into(),
        ));
    }
    if let Some(slug) = req.path.strip_prefix(PUSH_PATH_PREFIX) {
        if slug.trim_end_matches('/') != kind.slug() {
            return Err(ApiError::RouteNotFound(format!(
                "path: this function serves {PUSH_PATH_PREFIX}{} only",
                kind.slug()
            )));
        }
    }
    let accepted_types = endpoint.source.content_types();
    let media = media_type(req.get_header("content-type"));
    let format = match accepted_types
        .iter()
        .find(|(accepted, _)| media.as_deref() == Some(*accepted))
    {
        Some((_, format)) => *format,
        // The header is not repeated back: the message names what is accepted.
        None => {
            let other = media;
            let accepted = accepted_types
                .iter()
                .map(|(t, _)| *t)
                .collect::<Vec<_>>()
                .join(" or ");
            let problem = if other.is_some() {
                "not accepted"
            } else {
                "missing"
            };
            return Err(ApiError::InvalidContentType(format!(
                "Content-Type: {problem}; send {accepted} (a charset parameter is allowed)"
            )));
        }
    };
    if req.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::invalid(format!(
            "body: {} bytes is over the limit of {MAX_BODY_BYTES} bytes (256 KiB)",
            req.body.len()
        )));
    }
    Ok(format)
}

/// The source's settings, as stored on the integration, and the receipt
/// time with the window SNS timestamps must fall in.
pub fn parse_settings<'a>(
    integration: &'a Integration,
    received_ms: i64,
    sns_window: TimestampWindow,
) -> ParseSettings<'a> {
    ParseSettings {
        callback_token: integration.callback_token.as_deref(),
        client_secret: integration.client_secret.as_deref(),
        verify_signature: integration.verify_signature.unwrap_or(true),
        sns_topic_arns: &integration.sns_topic_arns,
        sns_timestamp: Some((received_ms, sns_window)),
    }
}

/// Normalise what the source parsed: the whole payload is valid, or nothing is applied.
pub fn prepare_events(
    parsed: Vec<ParsedEvent>,
    integration: &Integration,
    now_ms: i64,
) -> ApiResult<Vec<Result<StandardEvent, Applied>>> {
    let ctx = NormaliseContext {
        integration_name: &integration.name,
        now_ms,
    };
    if parsed.is_empty() {
        return Err(ApiError::invalid("body: the payload carries no alert"));
    }
    let many = parsed.len() > 1;
    parsed
        .into_iter()
        .enumerate()
        .map(|(i, p)| match p {
            ParsedEvent::Apply(ev) => normalise(ev, &ctx).map(Ok).map_err(|e| {
                if many {
                    ApiError::invalid(format!("alerts[{i}].{}", e.message()))
                } else {
                    e
                }
            }),
            ParsedEvent::Ignore { alert_key, reason } => {
                tracing::info!(
                    reason = reason.as_str(),
                    "event accepted without state change"
                );
                Ok(Err(Applied {
                    alert_key: alert_key.unwrap_or_default(),
                    outcome: Outcome::Ignored,
                    channel_id: None,
                    alert_id: None,
                    incident_id: None,
                }))
            }
        })
        .collect()
}

async fn push(app: &App, endpoint: Endpoint, req: &Inbound) -> ApiResult<Value> {
    // The time of receipt: event times are judged against it (SPEC section 3).
    let received_ms = now_ms();
    let kind = endpoint.kind;
    let format = check_request(endpoint, req)?;
    let source_request = SourceRequest {
        method: &req.method,
        headers: &req.headers,
        query: &req.query,
        body: PushBody {
            bytes: &req.body,
            format,
        },
    };
    let source = endpoint.source;
    let key = source
        .integration_key(&source_request)
        .ok_or_else(|| ApiError::Unauthorized(source.missing_key().into()))?;
    let integration = app
        .store
        .find_integration_by_key(&key)
        .await?
        .ok_or_else(|| {
            ApiError::Unauthorized("integration_key: no integration has this key".into())
        })?;
    if integration.kind != kind.slug() {
        return Err(ApiError::AccessDenied(format!(
            "integration_key: the key belongs to a {} integration, not {}",
            integration.kind,
            kind.slug()
        )));
    }
    let settings = parse_settings(&integration, received_ms, app.sns_timestamp_window);
    let parsed = source.parse(&source_request, &settings)?;
    let reply = parsed.reply;
    if let Some(action) = parsed.action {
        if let Some(done) = source_action(app, &integration, action, reply, received_ms).await? {
            return Ok(done);
        }
    }
    let events = prepare_events(parsed.events, &integration, received_ms)?;
    let setup = integration_setup(Shaping::of(app), &integration).await?;
    let events = enrich_and_run_pipeline(app, &integration, &setup, events).await?;
    let targets = route_events(app, &integration, setup.routes.as_ref(), &events).await?;

    // Every channel must exist, and the rate limit admit the request, before the first write.
    let mut channels: HashMap<String, Arc<ChannelSetup>> = HashMap::new();
    for id in targets.iter().flatten() {
        if !channels.contains_key(id) {
            channels.insert(id.clone(), channel_setup(Shaping::of(app), id).await?);
        }
    }
    if let Some(minute_full) = app
        .store
        .admit_request(
            &integration.integration_id,
            &integration.rate_limit,
            received_ms,
        )
        .await?
    {
        return Err(too_frequent(
            &integration.rate_limit,
            minute_full,
            received_ms,
        ));
    }

    // One result slot per (event, channel), in payload order. Events of one
    // (channel, alert key) form a chain applied in order; chains run concurrently.
    let integration_id = integration.integration_id.as_str();
    let mut keys = Vec::with_capacity(events.len());
    let mut slots: Vec<Option<Applied>> = Vec::new();
    let mut chains: Vec<Vec<ChainLink>> = Vec::new();
    let mut chain_of: HashMap<(String, String), usize> = HashMap::new();
    for (event, channel_ids) in events.into_iter().zip(targets) {
        match event {
            Ok(ev) => {
                keys.push(ev.alert_key.clone());
                let ev = Arc::new(ev);
                for id in channel_ids {
                    let channel = channels
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| ApiError::internal("channel vanished"))?;
                    // Drop rules (stage 4): never for a recovery.
                    if !ev.event_status.is_ok()
                        && channel
                            .rules
                            .dropped(&Subject::of_event(&ev, Some(integration_id)))
                    {
                        let mut dropped = Applied::new(&ev, Outcome::Dropped, None);
                        dropped.channel_id = Some(id);
                        slots.push(Some(dropped));
                        continue;
                    }
                    let chain = *chain_of
                        .entry((id, ev.alert_key.clone()))
                        .or_insert_with(|| {
                            chains.push(Vec::new());
                            chains.len() - 1
                        });
                    chains[chain].push((slots.len(), Arc::clone(&ev), channel));
                    slots.push(None);
                }
            }
            Err(ignored) => {
                keys.push(ignored.alert_key.clone());
                slots.push(Some(ignored));
            }
        }
    }
    let shared_integration = integration
        .routes_version
        .is_some()
        .then_some(integration_id);
    let applied: Vec<Vec<(usize, ApiResult<Applied>)>> = stream::iter(chains)
        .map(|chain| async move {
            let mut done = Vec::with_capacity(chain.len());
            for (slot, ev, setup) in chain {
                let rules = event_rules(&setup, &ev, integration_id, received_ms);
                let result = app
                    .store
                    .apply_event_via(&setup.channel, &ev, received_ms, shared_integration, &rules)
                    .await
                    .map(|mut a| {
                        a.channel_id = Some(setup.channel.channel_id.clone());
                        a
                    });
                let failed = result.is_err();
                done.push((slot, result));
                if failed {
                    // Later events of this key wait for a re-send, in order.
                    break;
                }
            }
            done
        })
        .buffer_unordered(PUSH_CONCURRENCY)
        .collect()
        .await;
    for (slot, result) in applied.into_iter().flatten() {
        slots[slot] = Some(result?);
    }
    let results = slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::internal("an event was not applied"))?;
    crate::metrics::events(kind.slug(), results.iter().map(|a| a.outcome.as_str()));
    Ok(response_data(reply, keys, results))
}

/// Stages 1 and 2: label enrichment for every event (a recovery's labels may
/// decide its route), then the pipeline for all but recoveries. A pipeline
/// `drop` answers `dropped`. Events are enriched concurrently, in order.
async fn enrich_and_run_pipeline(
    app: &App,
    integration: &Integration,
    setup: &IntegrationSetup,
    events: Vec<Result<StandardEvent, Applied>>,
) -> ApiResult<Vec<Result<StandardEvent, Applied>>> {
    if setup.enrichment.is_empty() && setup.pipeline.is_empty() {
        return Ok(events);
    }
    let mappings = CachedMappings(Shaping::of(app));
    let id = integration.integration_id.as_str();
    let name = integration.name.as_str();
    let mappings = &mappings;
    stream::iter(events)
        .map(|event| async move {
            let mut ev = match event {
                Ok(ev) => ev,
                ignored => return Ok(ignored),
            };
            setup.enrichment.enrich(&mut ev, id, name, mappings).await?;
            if !ev.event_status.is_ok() && !setup.pipeline.run_pipeline(&mut ev, id, name) {
                return Ok(Err(Applied::new(&ev, Outcome::Dropped, None)));
            }
            Ok(Ok(ev))
        })
        .buffered(PUSH_CONCURRENCY)
        .collect::<Vec<ApiResult<_>>>()
        .await
        .into_iter()
        .collect()
}

/// What a channel's silence and inhibit rules say of an event, before
/// storage is asked: a recovery meets none of them.
fn event_rules<'a>(
    setup: &'a ChannelSetup,
    ev: &StandardEvent,
    integration_id: &str,
    received_ms: i64,
) -> EventRules<'a> {
    if ev.event_status.is_ok() || setup.rules.is_empty() {
        // A recovery still withdraws its alert from the inhibition sources.
        return EventRules {
            sources: &setup.rules.inhibit,
            escalation: Some(&setup.escalation),
            ..EventRules::default()
        };
    }
    let subject = Subject::of_event(ev, Some(integration_id));
    EventRules {
        silence: Some(silence_verdict(
            setup.rules.silence(&subject, received_ms / 1000),
        )),
        inhibit: setup.rules.inhibit_rules_for(&subject),
        sources: &setup.rules.inhibit,
        escalation: Some(&setup.escalation),
    }
}

/// The channels each event goes to: the integration's own, or its routes'.
/// An `Ok` also goes wherever its key's firing went (its routes may not match
/// an `Ok`, which carries no severity and maybe fewer labels). An event no
/// route takes refuses the whole push, before anything is written.
async fn route_events(
    app: &App,
    integration: &Integration,
    routes: Option<&CompiledRoutes>,
    events: &[Result<StandardEvent, Applied>],
) -> ApiResult<Vec<Vec<String>>> {
    let compiled = match (routes, &integration.channel_id) {
        (Some(routes), _) => routes,
        (None, Some(channel_id)) => {
            return Ok(events
                .iter()
                .map(|e| match e {
                    Ok(_) => vec![channel_id.clone()],
                    Err(_) => Vec::new(),
                })
                .collect())
        }
        (None, None) => {
            return Err(ApiError::internal(
                "integration has neither a channel nor routes",
            ))
        }
    };
    let recovering: Vec<String> = events
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .filter(|ev| ev.event_status.is_ok())
        .map(|ev| ev.alert_key.clone())
        .collect();
    let remembered: HashMap<String, Vec<String>> = stream::iter(recovering)
        .map(|alert_key| async move {
            let channels = app
                .store
                .remembered_channels(&integration.integration_id, &alert_key)
                .await?;
            Ok::<_, ApiError>((alert_key, channels))
        })
        .buffer_unordered(PUSH_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<ApiResult<_>>()?;
    let many = events.len() > 1;
    events
        .iter()
        .enumerate()
        .map(|(i, e)| match e {
            Ok(ev) => {
                let subject = Subject::of_event(ev, Some(&integration.integration_id));
                let mut channels = compiled.channels_for(&subject);
                for id in remembered.get(&ev.alert_key).into_iter().flatten() {
                    if !channels.contains(id) {
                        channels.push(id.clone());
                    }
                }
                if channels.is_empty() {
                    // Named by position, not by alert_key: the key is the sender's text.
                    let which = if many {
                        format!("alerts[{i}]")
                    } else {
                        "the event".to_string()
                    };
                    Err(ApiError::invalid(format!(
                        "routes: no route matched {which} and the integration has no default route"
                    )))
                } else {
                    Ok(channels)
                }
            }
            Err(_) => Ok(Vec::new()),
        })
        .collect()
}

/// One result per (event, channel). Single-alert integrations answer
/// `alert_key` with its result inline, or with `results` when routes fanned
/// it out; Alertmanager-shaped payloads answer `alert_keys` in payload order
/// (and `truncated_alerts` when the sender left some out); PagerDuty's
/// answers name the key as `dedup_key` (v2) or `incident_key` (v1).
fn response_data(reply: Reply, keys: Vec<String>, results: Vec<Applied>) -> Value {
    match (reply, results.as_slice()) {
        (Reply::Many { truncated_alerts }, _) => {
            let mut data = json!({ "alert_keys": keys, "results": results });
            if truncated_alerts > 0 {
                data["truncated_alerts"] = json!(truncated_alerts);
            }
            data
        }
        (Reply::PagerDuty { v1 }, _) => {
            let mut data = response_data(Reply::Single, keys, results);
            data[if v1 { "incident_key" } else { "dedup_key" }] = data["alert_key"].clone();
            data
        }
        (_, [single]) => json!({
            "alert_key": single.alert_key,
            "outcome": single.outcome,
            "alert_id": single.alert_id,
            "incident_id": single.incident_id,
            "channel_id": single.channel_id,
        }),
        _ => json!({ "alert_key": keys.first(), "results": results }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ct: Option<&str>, body: usize) -> Inbound {
        let mut r = Inbound::new("POST", "/event/push/alert/standard?integration_key=k");
        if let Some(ct) = ct {
            r = r.header("Content-Type", ct);
        }
        r.body = vec![b' '; body];
        r
    }

    #[test]
    fn content_types() {
        let std = IntegrationKind::Standard.endpoint();
        assert_eq!(
            check_request(std, &req(Some("application/json"), 1)),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            check_request(std, &req(Some("Application/JSON; charset=utf-8"), 1)),
            Ok(BodyFormat::Json)
        );
        for bad in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(
                check_request(std, &req(bad, 1)).unwrap_err().code(),
                "InvalidContentType"
            );
        }
        let mut form = req(Some("application/x-www-form-urlencoded"), 1);
        form.path = "/event/push/alert/jiankongbao".into();
        assert_eq!(
            check_request(IntegrationKind::Jiankongbao.endpoint(), &form),
            Ok(BodyFormat::Form)
        );
    }

    #[test]
    fn body_cap_is_256_kib() {
        let std = IntegrationKind::Standard.endpoint();
        assert!(check_request(std, &req(Some("application/json"), MAX_BODY_BYTES)).is_ok());
        let err =
            check_request(std, &req(Some("application/json"), MAX_BODY_BYTES + 1)).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(err.message().contains("262144"));
    }

    #[test]
    fn method_and_route() {
        let mut r = req(Some("application/json"), 1);
        r.method = "GET".into();
        assert_eq!(
            check_request(IntegrationKind::Standard.endpoint(), &r)
                .unwrap_err()
                .code(),
            "MethodNotAllowed"
        );
        let r = req(Some("application/json"), 1);
        assert_eq!(
            check_request(IntegrationKind::Blueking.endpoint(), &r)
                .unwrap_err()
                .code(),
            "RouteNotFound"
        );
    }
}
