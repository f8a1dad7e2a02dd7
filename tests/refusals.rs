//! Refusals never repeat what was sent (SPEC section 8: "never echo the value
//! that was sent (it may be a secret)"). Every parser and every management
//! body gets secret-looking values in wrong places; neither the response nor
//! the service's log lines may contain them.

use integration_tests::*;
use serde_json::{json, Value};
use shared::intake::http::{Inbound, Outbound};
use shared::intake::integrations::IntegrationKind;

/// Every planted value contains one of these.
const MARKERS: [&str; 2] = ["s3cr3t", "4815162342"];
const SECRET: &str = "s3cr3t-Zm9vYmFy";
const SECRET_NUMBER: i64 = 4_815_162_342;

fn assert_refused_without_echo(what: &str, out: &Outbound) {
    assert!(
        (400..500).contains(&out.status),
        "{what}: expected a refusal, got {} {}",
        out.status,
        out.body
    );
    let message = out.json()["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error message in {}", out.body))
        .to_lowercase();
    assert!(!message.is_empty(), "{what}");
    for marker in MARKERS {
        assert!(
            !message.contains(marker),
            "{what}: the message repeats the sent value: {message}"
        );
    }
}

fn assert_logs_clean(logs: &CapturedLogs) {
    let text = logs.text().to_lowercase();
    assert!(
        text.contains("request refused"),
        "the refusals were not logged at all:\n{text}"
    );
    for marker in MARKERS {
        if let Some(line) = text.lines().find(|l| l.contains(marker)) {
            panic!("a log line repeats a sent value: {line}");
        }
    }
}

/// One push that must be refused.
struct Case {
    what: String,
    kind: IntegrationKind,
    key: String,
    content_type: &'static str,
    body: String,
}

fn json_case(cases: &mut Vec<Case>, what: &str, kind: IntegrationKind, key: &str, body: Value) {
    cases.push(Case {
        what: what.to_string(),
        kind,
        key: key.to_string(),
        content_type: "application/json",
        body: body.to_string(),
    });
}

fn with(base: &Value, pointer: &str, value: Value) -> Value {
    let mut out = base.clone();
    let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
    let target = if parent.is_empty() {
        &mut out
    } else {
        out.pointer_mut(parent)
            .unwrap_or_else(|| panic!("{pointer}: no parent in the fixture"))
    };
    match target {
        Value::Object(map) => {
            map.insert(field.to_string(), value);
        }
        Value::Array(items) => {
            let i: usize = field.parse().expect("an index");
            items[i] = value;
        }
        other => panic!("{pointer}: parent is {other}"),
    }
    out
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).expect("fixture JSON")
}

#[tokio::test]
async fn push_refusals_never_echo_the_sent_value() {
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;

    let standard = standard_setup(&app).await;
    let std_kind = IntegrationKind::Standard;
    let base = json!({"title_rule": "t", "event_status": "Warning", "alert_key": "k"});
    let mut cases: Vec<Case> = Vec::new();
    for (what, body) in [
        (
            "standard event_status",
            with(&base, "/event_status", json!(SECRET)),
        ),
        (
            "standard event_status number",
            with(&base, "/event_status", json!(SECRET_NUMBER)),
        ),
        (
            "standard title_rule object",
            with(&base, "/title_rule", json!({"a": SECRET})),
        ),
        (
            "standard labels string",
            with(&base, "/labels", json!(SECRET)),
        ),
        (
            "standard label key",
            with(&base, "/labels", json!({format!("{SECRET}-key"): "v"})),
        ),
        (
            "standard long label key",
            with(
                &base,
                "/labels",
                json!({format!("{SECRET}{}", "k".repeat(200)): "v"}),
            ),
        ),
        (
            "standard label value list",
            with(&base, "/labels", json!({"a": [SECRET]})),
        ),
        (
            "standard event_time text",
            with(&base, "/event_time", json!(SECRET)),
        ),
        (
            "standard event_time negative",
            with(&base, "/event_time", json!(-SECRET_NUMBER)),
        ),
        (
            "standard alert_key object",
            with(&base, "/alert_key", json!({"k": SECRET})),
        ),
        (
            "standard alert_key too long",
            with(&base, "/alert_key", json!(SECRET.repeat(20))),
        ),
        ("standard body string", json!(SECRET)),
    ] {
        json_case(&mut cases, what, std_kind, &standard.integration_key, body);
    }

    let bk = channel_with_integration(&app, "blueking", json!({"name": "bk"})).await;
    let anomaly = fixture_json("blueking/anomaly.json");
    for (what, body) in [
        (
            "blueking level text",
            with(&anomaly, "/event/level", json!(SECRET)),
        ),
        (
            "blueking level number",
            with(&anomaly, "/event/level", json!(SECRET_NUMBER)),
        ),
        (
            "blueking begin_time",
            with(
                &with(&anomaly, "/latest_anomaly_record/source_time", Value::Null),
                "/event/begin_time",
                json!(SECRET),
            ),
        ),
        (
            "blueking source_time number",
            with(
                &anomaly,
                "/latest_anomaly_record/source_time",
                json!(-SECRET_NUMBER),
            ),
        ),
        (
            "blueking event string",
            with(&anomaly, "/event", json!(SECRET)),
        ),
        (
            "blueking type list",
            with(&anomaly, "/type", json!([SECRET])),
        ),
        (
            "blueking dimensions string",
            with(&anomaly, "/event/dimensions", json!(SECRET)),
        ),
        (
            "blueking dimension entry",
            with(&anomaly, "/event/dimensions", json!([SECRET])),
        ),
        (
            "blueking labels",
            with(&anomaly, "/labels", json!([{"k": SECRET}])),
        ),
        (
            "blueking event id too long",
            with(&anomaly, "/event/id", json!(SECRET.repeat(20))),
        ),
        (
            "blueking strategy string",
            with(&anomaly, "/strategy", json!(SECRET)),
        ),
    ] {
        json_case(
            &mut cases,
            what,
            IntegrationKind::Blueking,
            &bk.integration_key,
            body,
        );
    }

    let ali = channel_with_integration(&app, "aliyun-prometheus", json!({"name": "ali"})).await;
    let firing = fixture_json("aliyun-prometheus/firing.json");
    for (what, body) in [
        (
            "aliyun alerts string",
            with(&firing, "/alerts", json!(SECRET)),
        ),
        (
            "aliyun alert string",
            with(&firing, "/alerts/0", json!(SECRET)),
        ),
        (
            "aliyun startsAt",
            with(&firing, "/alerts/0/startsAt", json!(SECRET)),
        ),
        (
            "aliyun labels string",
            with(&firing, "/alerts/0/labels", json!(SECRET)),
        ),
        (
            "aliyun label value list",
            with(&firing, "/alerts/0/labels", json!({"a": [SECRET]})),
        ),
        (
            "aliyun status object",
            with(&firing, "/status", json!({"s": SECRET})),
        ),
        (
            "aliyun fingerprint too long",
            with(&firing, "/alerts/0/fingerprint", json!(SECRET.repeat(20))),
        ),
    ] {
        json_case(
            &mut cases,
            what,
            IntegrationKind::AliyunPrometheus,
            &ali.integration_key,
            body,
        );
    }

    let jkb = channel_with_integration(&app, "jiankongbao", json!({"name": "jkb"})).await;
    let alarm = fixture_json("jiankongbao/alarm.json");
    for (what, body) in [
        (
            "jiankongbao message_type number",
            with(&alarm, "/message_type", json!(SECRET_NUMBER)),
        ),
        (
            "jiankongbao message_type text",
            with(&alarm, "/message_type", json!(SECRET)),
        ),
        (
            "jiankongbao message_status number",
            with(&alarm, "/message_status", json!(SECRET_NUMBER)),
        ),
        (
            "jiankongbao fault_time text",
            with(&alarm, "/fault_time", json!(SECRET)),
        ),
        (
            "jiankongbao fault_time negative",
            with(&alarm, "/fault_time", json!(-SECRET_NUMBER)),
        ),
        (
            "jiankongbao task_id list",
            with(&alarm, "/task_id", json!([SECRET])),
        ),
    ] {
        json_case(
            &mut cases,
            what,
            IntegrationKind::Jiankongbao,
            &jkb.integration_key,
            body,
        );
    }
    let form =
        format!("task_id=1&message_type={SECRET_NUMBER}&message_status=1&fault_time={SECRET}");
    cases.push(Case {
        what: "jiankongbao form".into(),
        kind: IntegrationKind::Jiankongbao,
        key: jkb.integration_key.clone(),
        content_type: "application/x-www-form-urlencoded",
        body: form,
    });
    // A Jiankongbao integration with a callback token: the signature check
    // must not show the token, the expected signature or what was sent.
    let ch = api_ok(
        &app,
        "POST",
        "/api/channels",
        Some(json!({"name": "jkb-signed"})),
    )
    .await;
    let signed = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "signed", "kind": "jiankongbao", "channel_id": ch["channel_id"], "callback_token": format!("{SECRET}-token"), "rate_limit": UNLIMITED.clone()})),
    )
    .await;
    let signed_key = signed["integration_key"].as_str().unwrap().to_string();
    for (what, body) in [
        (
            "jiankongbao token number",
            with(&alarm, "/token", json!(SECRET_NUMBER)),
        ),
        (
            "jiankongbao token text",
            with(&alarm, "/token", json!(SECRET)),
        ),
        ("jiankongbao token missing", alarm.clone()),
    ] {
        json_case(
            &mut cases,
            what,
            IntegrationKind::Jiankongbao,
            &signed_key,
            body,
        );
    }
    // The integrations of SPEC section 10 that answer in this service's envelope.
    for (kind, fixture_path, pointer, value) in [
        (
            IntegrationKind::Prometheus,
            "prometheus/firing.json",
            "/alerts/0/startsAt",
            json!(SECRET),
        ),
        (
            IntegrationKind::Prometheus,
            "prometheus/firing.json",
            "/alerts/0/labels",
            json!(SECRET),
        ),
        (
            IntegrationKind::Grafana,
            "grafana/legacy-alerting.json",
            "/state",
            json!(SECRET),
        ),
        (
            IntegrationKind::Grafana,
            "grafana/unified-firing.json",
            "/truncatedAlerts",
            json!(SECRET),
        ),
        (
            IntegrationKind::Zabbix,
            "zabbix/problem.json",
            "/event_nseverity",
            json!(SECRET),
        ),
        (
            IntegrationKind::Zabbix,
            "zabbix/problem.json",
            "/event_value",
            json!(SECRET_NUMBER),
        ),
        (
            IntegrationKind::N9e,
            "n9e/alerting.json",
            "/severity",
            json!(SECRET_NUMBER),
        ),
        (
            IntegrationKind::N9e,
            "n9e/alerting.json",
            "/is_recovered",
            json!({"x": SECRET}),
        ),
    ] {
        let setup = channel_with_integration(&app, kind.slug(), json!({"name": kind.slug()})).await;
        json_case(
            &mut cases,
            &format!("{} {pointer}", kind.slug()),
            kind,
            &setup.integration_key,
            with(&fixture_json(fixture_path), pointer, value),
        );
    }

    // A shared integration whose routes take nothing this event carries.
    let routed = api_ok(
        &app,
        "POST",
        "/api/integrations",
        Some(json!({"name": "routed", "kind": "standard", "rate_limit": UNLIMITED.clone(), "routes": {"cases": [{"if": [[{"key": "labels.env", "oper": "IN", "vals": ["prod"]}]], "channel_ids": [ch["channel_id"]]}]}})),
    )
    .await;
    json_case(
        &mut cases,
        "no route matched",
        std_kind,
        routed["integration_key"].as_str().unwrap(),
        with(&base, "/alert_key", json!(SECRET)),
    );

    // Not JSON, not the right content type.
    cases.push(Case {
        what: "broken JSON".into(),
        kind: std_kind,
        key: standard.integration_key.clone(),
        content_type: "application/json",
        body: format!(r#"{{"title_rule": "{SECRET}" "#),
    });
    cases.push(Case {
        what: "trailing garbage".into(),
        kind: std_kind,
        key: standard.integration_key.clone(),
        content_type: "application/json",
        body: format!(r#"{{"title_rule": "t", "event_status": "Info"}} {SECRET}"#),
    });
    cases.push(Case {
        what: "content type".into(),
        kind: std_kind,
        key: standard.integration_key.clone(),
        content_type: "text/s3cr3t-type",
        body: base.to_string(),
    });
    cases.push(Case {
        what: "unknown integration key".into(),
        kind: std_kind,
        key: format!("{SECRET}-key"),
        content_type: "application/json",
        body: base.to_string(),
    });

    let before = state_dump(&app).await;
    for case in &cases {
        let out = push_raw(&app, case.kind, &case.key, case.content_type, &case.body).await;
        assert_refused_without_echo(&case.what, &out);
    }

    // The method and the path are the sender's text too.
    let odd_method = Inbound::new(
        "S3CR3T",
        &format!(
            "/event/push/alert/standard?integration_key={}",
            standard.integration_key
        ),
    )
    .json_body(base.to_string());
    let out = call_push(&app, std_kind, odd_method).await;
    assert_refused_without_echo("push method", &out);
    let odd_path = Inbound::new(
        "POST",
        &format!(
            "/event/push/alert/{SECRET}?integration_key={}",
            standard.integration_key
        ),
    )
    .json_body(base.to_string());
    let out = call_push(&app, std_kind, odd_path).await;
    assert_refused_without_echo("push path", &out);

    assert_eq!(
        state_dump(&app).await,
        before,
        "a refused push wrote something"
    );
    assert_logs_clean(&logs);
}

#[tokio::test]
async fn management_refusals_never_echo_the_sent_value() {
    let logs = CapturedLogs::default();
    let _capture = logs.install();
    let app = test_app().await;
    let ch = api_ok(&app, "POST", "/api/channels", Some(json!({"name": "c"}))).await;
    let cid = ch["channel_id"].as_str().unwrap().to_string();
    let integration = |extra: Value| {
        let mut body = json!({"name": "x", "kind": "jiankongbao", "channel_id": cid});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let route = |case: Value| json!({"name": "x", "kind": "standard", "routes": {"cases": [case]}});
    let condition = |c: Value| route(json!({"if": [[c]], "channel_ids": [cid]}));

    let bodies: Vec<(&str, &str, String, Value)> = vec![
        // The reported case: a callback token sent as a JSON number.
        (
            "callback_token number",
            "POST",
            "/api/integrations".into(),
            integration(json!({"callback_token": SECRET_NUMBER})),
        ),
        (
            "callback_token object",
            "POST",
            "/api/integrations".into(),
            integration(json!({"callback_token": {"t": SECRET}})),
        ),
        (
            "client_secret number",
            "POST",
            "/api/integrations".into(),
            integration(json!({"kind": "sentry", "client_secret": SECRET_NUMBER})),
        ),
        (
            "client_secret on another kind",
            "POST",
            "/api/integrations".into(),
            integration(json!({"client_secret": SECRET})),
        ),
        (
            "verify_signature text",
            "POST",
            "/api/integrations".into(),
            integration(json!({"kind": "aws-cloudwatch", "verify_signature": SECRET})),
        ),
        (
            "kind",
            "POST",
            "/api/integrations".into(),
            integration(json!({"kind": SECRET})),
        ),
        (
            "name number",
            "POST",
            "/api/integrations".into(),
            integration(json!({"name": SECRET_NUMBER})),
        ),
        (
            "channel_id missing",
            "POST",
            "/api/integrations".into(),
            integration(json!({"channel_id": SECRET})),
        ),
        (
            "channel_id malformed",
            "POST",
            "/api/integrations".into(),
            integration(json!({"channel_id": format!("{SECRET}/x")})),
        ),
        (
            "rate_limit text",
            "POST",
            "/api/integrations".into(),
            integration(json!({"rate_limit": {"per_second": SECRET}})),
        ),
        (
            "rate_limit overflow",
            "POST",
            "/api/integrations".into(),
            integration(json!({"rate_limit": {"per_second": SECRET_NUMBER}})),
        ),
        (
            "rate_limit negative",
            "POST",
            "/api/integrations".into(),
            integration(json!({"rate_limit": {"per_minute": -SECRET_NUMBER}})),
        ),
        (
            "route key",
            "POST",
            "/api/integrations".into(),
            condition(json!({"key": format!("labels.{SECRET}-x"), "oper": "IN", "vals": ["a"]})),
        ),
        (
            "route oper",
            "POST",
            "/api/integrations".into(),
            condition(json!({"key": "title", "oper": SECRET, "vals": ["a"]})),
        ),
        (
            "route regex",
            "POST",
            "/api/integrations".into(),
            condition(json!({"key": "title", "oper": "IN", "vals": [format!("/{SECRET}(/")]})),
        ),
        (
            "route vals number",
            "POST",
            "/api/integrations".into(),
            condition(json!({"key": "title", "oper": "IN", "vals": [SECRET_NUMBER]})),
        ),
        (
            "route channel",
            "POST",
            "/api/integrations".into(),
            route(
                json!({"if": [[{"key": "title", "oper": "IN", "vals": ["a"]}]], "channel_ids": [SECRET]}),
            ),
        ),
        (
            "route fallthrough",
            "POST",
            "/api/integrations".into(),
            route(
                json!({"if": [[{"key": "title", "oper": "IN", "vals": ["a"]}]], "channel_ids": [cid], "fallthrough": SECRET}),
            ),
        ),
        (
            "channel name",
            "POST",
            "/api/channels".into(),
            json!({"name": SECRET_NUMBER}),
        ),
        (
            "grouping method",
            "POST",
            "/api/channels".into(),
            json!({"name": "x", "grouping": {"method": SECRET}}),
        ),
        (
            "grouping key",
            "POST",
            "/api/channels".into(),
            json!({"name": "x", "grouping": {"method": "rules", "equals": [[SECRET]]}}),
        ),
        (
            "grouping window",
            "POST",
            "/api/channels".into(),
            json!({"name": "x", "grouping": {"window_minutes": SECRET_NUMBER}}),
        ),
        (
            "grouping window over",
            "POST",
            "/api/channels".into(),
            json!({"name": "x", "grouping": {"method": "rules", "equals": [["title"]], "window_minutes": 48151}}),
        ),
        (
            "grouping window type",
            "POST",
            "/api/channels".into(),
            json!({"name": "x", "grouping": {"window_type": SECRET}}),
        ),
        (
            "auto_close",
            "PATCH",
            format!("/api/channels/{cid}"),
            json!({"auto_close": SECRET}),
        ),
        (
            "app key name",
            "POST",
            "/api/app-keys".into(),
            json!({"name": SECRET_NUMBER}),
        ),
    ];
    let before = table_dump(&app).await;
    for (what, method, path, body) in &bodies {
        let out = api(&app, method, path, Some(body.clone())).await;
        assert_refused_without_echo(what, &out);
    }
    // The window's limit is named, the value sent is not.
    let over = &bodies
        .iter()
        .find(|(what, ..)| *what == "grouping window over")
        .expect("the case")
        .3;
    let out = api(&app, "POST", "/api/channels", Some(over.clone())).await;
    assert!(
        out.body.contains("43200") && !out.body.contains("48151"),
        "{}",
        out.body
    );

    // Paths, queries, methods and content types.
    for (what, method, path) in [
        ("incident id", "GET", format!("/api/incidents/{SECRET}")),
        (
            "incident id malformed",
            "GET",
            format!("/api/incidents/{SECRET}$"),
        ),
        ("ack", "POST", format!("/api/incidents/{SECRET}/ack")),
        (
            "resolve",
            "POST",
            format!("/api/incidents/{SECRET}/resolve"),
        ),
        ("alert id", "GET", format!("/api/alerts/{SECRET}")),
        ("channel id", "GET", format!("/api/channels/{SECRET}")),
        (
            "channel delete",
            "DELETE",
            format!("/api/channels/{SECRET}"),
        ),
        (
            "integration id",
            "GET",
            format!("/api/integrations/{SECRET}"),
        ),
        (
            "rotate",
            "POST",
            format!("/api/integrations/{SECRET}/rotate-key"),
        ),
        ("app key id", "DELETE", format!("/api/app-keys/{SECRET}")),
        ("unknown route", "GET", format!("/api/{SECRET}")),
        (
            "status",
            "GET",
            format!("/api/incidents?status=Triggered,{SECRET}"),
        ),
        (
            "limit",
            "GET",
            format!("/api/incidents?limit={SECRET_NUMBER}"),
        ),
        ("cursor", "GET", format!("/api/incidents?cursor={SECRET}")),
        (
            "channel filter",
            "GET",
            format!("/api/incidents?channel_id={SECRET}$"),
        ),
        ("method", "S3CR3T", "/api/channels".into()),
    ] {
        let out = api(&app, method, &path, None).await;
        assert_refused_without_echo(what, &out);
    }
    let wrong_type = Inbound::new("POST", "/api/channels")
        .header("authorization", &format!("Bearer {APP_KEY}"))
        .header("content-type", "text/s3cr3t");
    let out = call_api(&app, wrong_type).await;
    assert_refused_without_echo("content type", &out);
    let bad_key =
        Inbound::new("GET", "/api/channels").header("authorization", &format!("Bearer {SECRET}"));
    let out = call_api(&app, bad_key).await;
    assert_refused_without_echo("app key", &out);

    assert_eq!(
        table_dump(&app).await,
        before,
        "a refused request wrote something"
    );
    assert_logs_clean(&logs);
}
