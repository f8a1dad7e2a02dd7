//! SPEC 14's members and schedules through the management handler against
//! DynamoDB Local: CRUD, validation messages that name the field and never
//! the value, a member still named by a schedule refused deletion (and
//! nothing written), that refusal holding under concurrent writes, `oncall`
//! and `shifts` across the Berlin daylight-saving week, and the iCalendar
//! feed behind its rotatable token. Every answer is checked against the
//! OpenAPI document by the helpers.

use integration_tests::*;
use serde_json::{json, Value};
use shared::app::App;
use shared::intake::http::{Inbound, Outbound};

/// Monday 2026-03-23 09:00 Europe/Berlin (CET, UTC+1).
const MON_0900_BERLIN: i64 = 1_774_252_800;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

async fn member(app: &App, name: &str) -> String {
    let made = api_ok(
        app,
        "POST",
        "/api/members",
        Some(json!({"name": name, "email": format!("{}@example.org", name.to_lowercase())})),
    )
    .await;
    made["member_id"].as_str().expect("member_id").to_string()
}

async fn three_members(app: &App) -> (String, String, String) {
    (
        member(app, "Alice").await,
        member(app, "Bob").await,
        member(app, "Carol").await,
    )
}

fn daily_layer(member_ids: &[&str], start: i64) -> Value {
    json!({"name": "daily", "member_ids": member_ids, "start": start, "shift": {"unit": "days", "length": 1}})
}

fn refused(out: &Outbound) -> (u16, String, String) {
    let v = out.json();
    (
        out.status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// A refusal that names the field and the rule, wrote nothing, and does not
/// repeat `secret` (the value sent).
async fn assert_refused(
    app: &App,
    method: &str,
    path: &str,
    body: Value,
    message: &str,
    secret: &str,
) {
    let before = table_dump(app).await;
    let out = api(app, method, path, Some(body)).await;
    let (status, code, got) = refused(&out);
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidParameter"),
        "{method} {path}: {}",
        out.body
    );
    assert!(
        got.starts_with(message),
        "{method} {path}: {got:?} should start with {message:?}"
    );
    if !secret.is_empty() {
        assert!(!out.body.contains(secret), "the answer repeats the value");
    }
    assert_eq!(table_dump(app).await, before, "a refusal wrote");
}

#[tokio::test]
async fn members_crud_and_validation() {
    let _logs = capture_logs();
    let app = test_app().await;
    let made = api_ok(
        &app,
        "POST",
        "/api/members",
        Some(
            json!({"name": "  Alice ", "email": "alice@example.org", "phone": "+49-30-1234567",
                    "im": {"slack_user_id": "U024BE7LH", "feishu_open_id": ""}}),
        ),
    )
    .await;
    let id = made["member_id"].as_str().unwrap().to_string();
    assert_eq!(made["name"], "Alice");
    assert_eq!(made["time_zone"], "UTC", "the default zone");
    assert_eq!(made["im"], json!({"slack_user_id": "U024BE7LH"}));
    assert_eq!(
        api_ok(&app, "GET", &format!("/api/members/{id}"), None).await,
        made
    );
    let listed = api_ok(&app, "GET", "/api/members", None).await;
    assert_eq!(listed["items"], json!([made]));

    let patched = api_ok(
        &app,
        "PATCH",
        &format!("/api/members/{id}"),
        Some(json!({"phone": null, "time_zone": "Europe/Berlin", "im": {"wecom_user_id": "alice.w"}})),
    )
    .await;
    assert!(patched.get("phone").is_none(), "null removes the phone");
    assert_eq!(patched["time_zone"], "Europe/Berlin");
    assert_eq!(patched["im"], json!({"wecom_user_id": "alice.w"}));
    assert_eq!(patched["email"], "alice@example.org", "left alone");
    assert_eq!(
        api_ok(&app, "GET", &format!("/api/members/{id}"), None).await,
        patched
    );

    let cases = [
        (json!({"email": "a@example.org"}), "name: required", ""),
        (json!({"name": "A"}), "email: required", ""),
        (
            json!({"name": "A", "email": "not-an-address-s3cret"}),
            "email: must be an address",
            "not-an-address-s3cret",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "time_zone": "Mars/Olympus_Mons"}),
            "time_zone: not an IANA time zone name",
            "Olympus_Mons",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "im": {"slack_user_id": "<!channel>"}}),
            "im.slack_user_id: must be",
            "<!channel>",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "im": {"dingtalk_mobile": "call-me-maybe"}}),
            "im.dingtalk_mobile: must be",
            "call-me-maybe",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "im": {"telegram": "x"}}),
            "im.telegram",
            "",
        ),
        (json!({"name": "A", "mail": "a@example.org"}), "mail", ""),
        (
            json!({"name": "A", "email": "a@example.org", "phone": "12"}),
            "phone: must be",
            "",
        ),
    ];
    for (body, message, secret) in cases {
        assert_refused(&app, "POST", "/api/members", body, message, secret).await;
    }
    assert_refused(
        &app,
        "PATCH",
        &format!("/api/members/{id}"),
        json!({"email": "broken@@example.org"}),
        "email: must be",
        "broken@@",
    )
    .await;

    let out = api(&app, "GET", "/api/members/0123456789abcdef", None).await;
    assert_eq!(
        refused(&out),
        (
            404,
            "ResourceNotFound".into(),
            "member_id: no member has this id".into()
        )
    );
    let out = api(&app, "GET", "/api/members/a%2Fb", None).await;
    assert_eq!(out.status, 400);

    api_ok(&app, "DELETE", &format!("/api/members/{id}"), None).await;
    let out = api(&app, "GET", &format!("/api/members/{id}"), None).await;
    assert_eq!(out.status, 404);
    let out = api(&app, "DELETE", &format!("/api/members/{id}"), None).await;
    assert_eq!(out.status, 404);
}

#[tokio::test]
async fn schedules_crud_validation_and_the_hidden_token() {
    let _logs = capture_logs();
    let app = test_app().await;
    let (a, b) = (member(&app, "Alice").await, member(&app, "Bob").await);
    let before = table_dump(&app).await;
    let out = api(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "Europe/Berlin",
                    "layers": [daily_layer(&[&a, &b, "0123456789abcdef"], MON_0900_BERLIN)]})),
    )
    .await;
    assert_eq!(
        refused(&out),
        (
            400,
            "InvalidParameter".into(),
            "layers[0].member_ids[2]: no such member".into()
        )
    );
    assert_eq!(table_dump(&app).await, before, "a refusal wrote");

    let body = json!({"name": "primary", "time_zone": "Europe/Berlin",
                      "layers": [daily_layer(&[&a, &b], MON_0900_BERLIN)]});
    let cases = [
        (
            json!({"name": "x", "time_zone": "Europe/Berlin", "layers": []}),
            "layers: 1 to 10 layers",
        ),
        (
            json!({"name": "x", "time_zone": "Nowhere/Land", "layers": [daily_layer(&[&a], 0)]}),
            "time_zone: not an IANA time zone name",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "layers": [{"name": "l", "member_ids": [a], "start": 0, "shift": {"unit": "days", "length": 400}}]}),
            "layers[0].shift.length: must be 1 to 365",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "layers": [daily_layer(&[&a], 0)], "overrides": [{"member_id": b, "from": 10, "to": 5}]}),
            "overrides[0].to: must be after overrides[0].from",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "layers": [daily_layer(&[&a], 0)], "overrides": [{"member_id": "fedcba9876543210", "from": 10, "to": 50}]}),
            "overrides[0].member_id: no such member",
        ),
        (
            json!({"name": "x", "time_zone": "UTC", "layer": []}),
            "layer",
        ),
    ];
    for (body, message) in cases {
        assert_refused(&app, "POST", "/api/schedules", body, message, "").await;
    }

    let made = api_ok(&app, "POST", "/api/schedules", Some(body)).await;
    let id = made["schedule_id"].as_str().unwrap().to_string();
    let url = made["ical_url"].as_str().expect("ical_url").to_string();
    let token = token_of(&url);
    assert_eq!(made["overrides"], json!([]));
    let got = api_ok(&app, "GET", &format!("/api/schedules/{id}"), None).await;
    assert!(
        got.get("ical_url").is_none(),
        "GET cannot show the feed URL"
    );
    assert!(got.get("ical_hash").is_none());
    assert_eq!(got["ical_issued_at"], made["ical_issued_at"]);
    let mut without_url = made.clone();
    without_url.as_object_mut().unwrap().remove("ical_url");
    assert_eq!(got, without_url);
    // The table holds the token's hash, never the token.
    let dump = table_dump(&app).await.join("\n");
    assert!(
        !dump.contains(&token),
        "the table holds a usable feed token"
    );
    assert!(dump.contains(&shared::hashing::sha256_hex(&token)));

    let patched = api_ok(
        &app,
        "PATCH",
        &format!("/api/schedules/{id}"),
        Some(
            json!({"name": "primary on-call", "layers": [daily_layer(&[&b, &a], MON_0900_BERLIN)]}),
        ),
    )
    .await;
    assert_eq!(patched["name"], "primary on-call");
    assert_eq!(patched["layers"][0]["member_ids"], json!([b, a]));
    assert_eq!(patched["ical_issued_at"], made["ical_issued_at"]);
    assert_refused(
        &app,
        "PATCH",
        &format!("/api/schedules/{id}"),
        json!({"layers": [daily_layer(&[&a, "fedcba9876543210"], 0)]}),
        "layers[0].member_ids[1]: no such member",
        "",
    )
    .await;
    assert_refused(
        &app,
        "PATCH",
        &format!("/api/schedules/{id}"),
        json!({"timezone": "UTC"}),
        "timezone",
        "",
    )
    .await;
    let listed = api_ok(&app, "GET", "/api/schedules", None).await;
    assert_eq!(listed["items"], json!([patched]));

    api_ok(&app, "DELETE", &format!("/api/schedules/{id}"), None).await;
    let out = api(&app, "GET", &format!("/api/schedules/{id}"), None).await;
    assert_eq!(
        refused(&out),
        (
            404,
            "ResourceNotFound".into(),
            "schedule_id: no schedule has this id".into()
        )
    );
    let out = api(
        &app,
        "POST",
        &format!("/api/schedules/{id}/rotate-ical"),
        None,
    )
    .await;
    assert_eq!(out.status, 404);
}

#[tokio::test]
async fn a_member_named_by_a_schedule_is_not_deleted() {
    let _logs = capture_logs();
    let app = test_app().await;
    let (a, b, c) = three_members(&app).await;
    let made = api_ok(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "UTC",
                    "layers": [daily_layer(&[&a, &b], 0)],
                    "overrides": [{"member_id": c, "from": 100, "to": 200}]})),
    )
    .await;
    let sid = made["schedule_id"].as_str().unwrap();
    let before = table_dump(&app).await;
    for (who, place) in [
        (&b, format!("schedules/{sid}.layers[0].member_ids[1]")),
        (&c, format!("schedules/{sid}.overrides[0].member_id")),
    ] {
        let out = api(&app, "DELETE", &format!("/api/members/{who}"), None).await;
        assert_eq!(
            refused(&out),
            (
                400,
                "InvalidParameter".into(),
                format!("member_id: still used at {place}; remove it there first")
            )
        );
    }
    assert_eq!(table_dump(&app).await, before, "a refused delete wrote");

    // Once the schedule no longer names Bob, Bob goes.
    api_ok(
        &app,
        "PATCH",
        &format!("/api/schedules/{sid}"),
        Some(json!({"layers": [daily_layer(&[&a], 0)]})),
    )
    .await;
    api_ok(&app, "DELETE", &format!("/api/members/{b}"), None).await;
    // And once the schedule is gone, so can everyone be.
    api_ok(&app, "DELETE", &format!("/api/schedules/{sid}"), None).await;
    api_ok(&app, "DELETE", &format!("/api/members/{a}"), None).await;
    api_ok(&app, "DELETE", &format!("/api/members/{c}"), None).await;
}

/// The check "no schedule names this member" and the delete are two
/// requests; schedules written in between must either fail (no such member)
/// or make the delete fail. Afterwards no schedule names a deleted member.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_member_while_schedules_name_it_leaves_no_dangling_reference() {
    let _logs = capture_logs();
    let app = test_app().await;
    let anchor = member(&app, "Anchor").await;
    for round in 0..6 {
        let victim = member(&app, &format!("Victim{round}")).await;
        let mut tasks = Vec::new();
        for i in 0..4 {
            let app = another_instance(&app).await;
            let (anchor, victim) = (anchor.clone(), victim.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"name": format!("s{i}"), "time_zone": "UTC",
                                  "layers": [daily_layer(&[&anchor, &victim], 0)]});
                api(&app, "POST", "/api/schedules", Some(body)).await
            }));
        }
        let deleter = {
            let app = another_instance(&app).await;
            let victim = victim.clone();
            tokio::spawn(async move {
                api(&app, "DELETE", &format!("/api/members/{victim}"), None).await
            })
        };
        let mut created = 0;
        for t in tasks {
            let out = t.await.unwrap();
            match out.status {
                200 => created += 1,
                400 => assert!(refused(&out).2.ends_with("no such member"), "{}", out.body),
                other => panic!("{other}: {}", out.body),
            }
        }
        let deleted = deleter.await.unwrap();
        let gone = api(&app, "GET", &format!("/api/members/{victim}"), None)
            .await
            .status
            == 404;
        let schedules = api_ok(&app, "GET", "/api/schedules", None).await;
        let naming: Vec<&Value> = schedules["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["layers"][0]["member_ids"][1] == victim.as_str())
            .collect();
        assert_eq!(naming.len(), created, "round {round}");
        if gone {
            assert_eq!(deleted.status, 200, "{}", deleted.body);
            assert!(
                naming.is_empty(),
                "round {round}: a schedule names a deleted member"
            );
        } else {
            assert!(created > 0, "round {round}: {}", deleted.body);
            assert_eq!(deleted.status, 400, "{}", deleted.body);
        }
        // Clean up for the next round.
        for s in naming {
            let sid = s["schedule_id"].as_str().unwrap();
            api_ok(&app, "DELETE", &format!("/api/schedules/{sid}"), None).await;
        }
    }
}

#[tokio::test]
async fn oncall_and_shifts_across_the_berlin_spring_change() {
    let _logs = capture_logs();
    let app = test_app().await;
    let (a, b, c) = three_members(&app).await;
    let made = api_ok(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "Europe/Berlin",
                    "layers": [daily_layer(&[&a, &b, &c], MON_0900_BERLIN)]})),
    )
    .await;
    let sid = made["schedule_id"].as_str().unwrap().to_string();
    let week = MON_0900_BERLIN + 7 * DAY;
    let shifts = api_ok(
        &app,
        "GET",
        &format!("/api/schedules/{sid}/shifts?from={MON_0900_BERLIN}&to={week}"),
        None,
    )
    .await;
    let items = shifts["items"].as_array().unwrap();
    let hours: Vec<i64> = items
        .iter()
        .map(|i| (i["to"].as_i64().unwrap() - i["from"].as_i64().unwrap()) / HOUR)
        .collect();
    // Sunday 2026-03-29 02:00 CET becomes 03:00 CEST: Saturday's shift
    // (09:00 to 09:00 local) is 23 hours; the last one, from Monday's 09:00
    // CEST handoff, is clipped at `to` (09:00 CET + 7 days = 10:00 CEST).
    assert_eq!(hours, [24, 24, 24, 24, 24, 23, 24, 1]);
    let who: Vec<&str> = items
        .iter()
        .map(|i| i["member_id"].as_str().unwrap())
        .collect();
    assert_eq!(who, [&a, &b, &c, &a, &b, &c, &a, &b].map(String::as_str));
    // Every handoff from Sunday on is at 09:00 CEST = 07:00 UTC.
    let sunday_handoff = MON_0900_BERLIN + 6 * DAY - HOUR;
    assert_eq!(items[6]["from"], sunday_handoff);
    assert!(items
        .iter()
        .all(|i| i["source"] == "layer" && i["layer"] == 0));

    let oncall = api_ok(
        &app,
        "GET",
        &format!(
            "/api/schedules/{sid}/oncall?at={}",
            sunday_handoff + 30 * 60
        ),
        None,
    )
    .await;
    assert_eq!(oncall["member_ids"], json!([a]));
    assert_eq!(oncall["until"], sunday_handoff + DAY);
    let before = api_ok(
        &app,
        "GET",
        &format!("/api/schedules/{sid}/oncall?at={}", sunday_handoff - 1),
        None,
    )
    .await;
    assert_eq!(before["member_ids"], json!([c]));
    assert_eq!(before["until"], sunday_handoff);
    let nobody = api_ok(
        &app,
        "GET",
        &format!("/api/schedules/{sid}/oncall?at={}", MON_0900_BERLIN - 1),
        None,
    )
    .await;
    assert_eq!(nobody["member_ids"], json!([]));
    assert_eq!(nobody["until"], MON_0900_BERLIN);

    // An override of Bob over two hours of Alice's Sunday, and one layer alone.
    api_ok(
        &app,
        "PATCH",
        &format!("/api/schedules/{sid}"),
        Some(json!({"overrides": [{"member_id": b, "from": sunday_handoff + HOUR, "to": sunday_handoff + 3 * HOUR}]})),
    )
    .await;
    let day = api_ok(
        &app,
        "GET",
        &format!(
            "/api/schedules/{sid}/shifts?from={sunday_handoff}&to={}",
            sunday_handoff + DAY
        ),
        None,
    )
    .await;
    let parts: Vec<(String, String, i64)> = day["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["member_id"].as_str().unwrap().to_string(),
                i["source"].as_str().unwrap().to_string(),
                (i["to"].as_i64().unwrap() - i["from"].as_i64().unwrap()) / HOUR,
            )
        })
        .collect();
    assert_eq!(
        parts,
        [
            (a.clone(), "layer".to_string(), 1),
            (b.clone(), "override".to_string(), 2),
            (a.clone(), "layer".to_string(), 21),
        ]
    );
    let layer = api_ok(
        &app,
        "GET",
        &format!(
            "/api/schedules/{sid}/shifts?from={sunday_handoff}&to={}&layer=0",
            sunday_handoff + DAY
        ),
        None,
    )
    .await;
    assert_eq!(layer["layer"], 0);
    assert_eq!(
        layer["items"].as_array().unwrap().len(),
        1,
        "the layer alone"
    );

    // The default range is 14 days from `from`.
    let default = api_ok(
        &app,
        "GET",
        &format!("/api/schedules/{sid}/shifts?from={MON_0900_BERLIN}"),
        None,
    )
    .await;
    assert_eq!(default["to"], MON_0900_BERLIN + 14 * DAY);

    for (query, message) in [
        (
            format!(
                "shifts?from={MON_0900_BERLIN}&to={}",
                MON_0900_BERLIN + 91 * DAY
            ),
            "to: must be after from, and at most 90 days after it",
        ),
        (
            "shifts?from=yesterday".to_string(),
            "from: must be unix seconds",
        ),
        (
            "shifts?layer=1".to_string(),
            "layer: this schedule has layers 0 to 0",
        ),
        ("shifts?layer=-1".to_string(), "layer: must be the index"),
        ("oncall?at=-5".to_string(), "at: must be unix seconds"),
    ] {
        let out = api(&app, "GET", &format!("/api/schedules/{sid}/{query}"), None).await;
        let (status, code, got) = refused(&out);
        assert_eq!(
            (status, code.as_str()),
            (400, "InvalidParameter"),
            "{query}"
        );
        assert!(got.starts_with(message), "{query}: {got}");
    }
}

/// `…/ical/{id}/{token}.ics` → `/ical/{id}/{token}.ics`.
fn feed_path(url: &str) -> String {
    let at = url.find("/ical/").expect("an /ical/ URL");
    url[at..].to_string()
}

fn token_of(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap();
    last.strip_suffix(".ics").unwrap_or(last).to_string()
}

/// A GET without an app key, as a calendar app sends it.
async fn fetch(app: &App, path: &str) -> Outbound {
    call_api(app, Inbound::new("GET", path)).await
}

#[tokio::test(flavor = "current_thread")]
async fn the_ical_feed_answers_its_token_only() {
    let (logs, _capture) = capture_logs();
    let app = test_app().await;
    let a = api_ok(
        &app,
        "POST",
        "/api/members",
        Some(json!({"name": "Alice, \"the DBA\"", "email": "alice@example.org"})),
    )
    .await["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let today = shared::domain::time::now_ms() / 1000 / DAY * DAY;
    let req = Inbound::new("POST", "/api/schedules")
        .header("authorization", &format!("Bearer {APP_KEY}"))
        .header("host", "alerts.example.net")
        .json_body(
            json!({"name": "primary", "time_zone": "Europe/Berlin",
                   "layers": [daily_layer(&[&a], today - DAY)]})
            .to_string(),
        );
    let made = call_api(&app, req).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let made = made.json()["data"].clone();
    let sid = made["schedule_id"].as_str().unwrap().to_string();
    let url = made["ical_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("https://alerts.example.net/ical/{sid}/"))
            && url.ends_with(".ics"),
        "{url}"
    );
    let token = token_of(&url);
    assert_eq!(token.len(), 48);

    let out = fetch(&app, &feed_path(&url)).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.content_type(), "text/calendar; charset=utf-8");
    assert!(out.body.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(out
        .body
        .contains("SUMMARY:On call: Alice\\, \"the DBA\"\r\n"));
    assert!(out.body.contains("X-WR-CALNAME:primary\r\n"));
    // One member without restrictions: one merged event over the window.
    assert_eq!(out.body.matches("BEGIN:VEVENT").count(), 1);
    // Without the suffix too.
    assert_eq!(
        fetch(&app, &format!("/ical/{sid}/{token}")).await.status,
        200
    );

    let not_found = |out: &Outbound| {
        assert_eq!(
            refused(out),
            (404, "ResourceNotFound".into(), "not found".into()),
            "{}",
            out.body
        );
    };
    let wrong = "0".repeat(48);
    not_found(&fetch(&app, &format!("/ical/{sid}/{wrong}.ics")).await);
    not_found(&fetch(&app, &format!("/ical/0123456789abcdef/{token}.ics")).await);
    not_found(&fetch(&app, &format!("/ical/{sid}/short")).await);
    not_found(&fetch(&app, &format!("/ical/{sid}/{}", "g".repeat(48))).await);
    // The public table serves only what it names: a path that merely fits
    // another public pattern is not answered with some other page.
    let odd = fetch(&app, "//ack/not-a-link").await;
    assert_ne!(odd.status, 200, "{}", odd.body);
    let post = call_api(&app, Inbound::new("POST", &feed_path(&url))).await;
    assert_eq!(refused(&post).1, "MethodNotAllowed");

    // Rotation: the old URL stops, the new one works; PUBLIC_BASE_URL wins
    // over the request's host.
    let mut app = app;
    app.public_base_url = Some("https://oncall.example.com/".into());
    let rotated = api_ok(
        &app,
        "POST",
        &format!("/api/schedules/{sid}/rotate-ical"),
        None,
    )
    .await;
    let new_url = rotated["ical_url"].as_str().unwrap().to_string();
    assert!(
        new_url.starts_with(&format!("https://oncall.example.com/ical/{sid}/")),
        "{new_url}"
    );
    assert_ne!(token_of(&new_url), token);
    not_found(&fetch(&app, &feed_path(&url)).await);
    assert_eq!(fetch(&app, &feed_path(&new_url)).await.status, 200);
    let got = api_ok(&app, "GET", &format!("/api/schedules/{sid}"), None).await;
    assert_eq!(got["ical_issued_at"], rotated["ical_issued_at"]);

    // A deleted schedule's feed is gone.
    api_ok(&app, "DELETE", &format!("/api/schedules/{sid}"), None).await;
    not_found(&fetch(&app, &feed_path(&new_url)).await);

    let text = logs.text();
    assert!(
        text.contains("\"route\":\"/ical/{schedule_id}/{token}\""),
        "{text}"
    );
    for secret in [&token, &token_of(&new_url)] {
        assert!(!text.contains(secret.as_str()), "a feed token was logged");
    }
}

#[tokio::test]
async fn responders_read_and_only_admins_change() {
    let _logs = capture_logs();
    let app = test_app().await;
    let a = member(&app, "Alice").await;
    let made = api_ok(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "UTC", "layers": [daily_layer(&[&a], 0)]})),
    )
    .await;
    let sid = made["schedule_id"].as_str().unwrap().to_string();
    let key = api_ok(
        &app,
        "POST",
        "/api/app-keys",
        Some(json!({"name": "wall", "role": "responder"})),
    )
    .await["app_key"]
        .as_str()
        .unwrap()
        .to_string();
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let mut req = Inbound::new(method, &path).header("authorization", &format!("Bearer {key}"));
        if let Some(b) = body {
            req = req.json_body(b.to_string());
        }
        let app = app.clone();
        async move { call_api(&app, req).await }
    };
    for path in [
        "/api/members".to_string(),
        format!("/api/members/{a}"),
        "/api/schedules".to_string(),
        format!("/api/schedules/{sid}/oncall"),
        format!("/api/schedules/{sid}/shifts"),
    ] {
        assert_eq!(call("GET", path.clone(), None).await.status, 200, "{path}");
    }
    let before = table_dump(&app).await;
    for (method, path, body) in [
        (
            "POST",
            "/api/members".to_string(),
            Some(json!({"name": "B", "email": "b@example.org"})),
        ),
        ("DELETE", format!("/api/members/{a}"), None),
        (
            "PATCH",
            format!("/api/schedules/{sid}"),
            Some(json!({"name": "x"})),
        ),
        ("POST", format!("/api/schedules/{sid}/rotate-ical"), None),
        ("DELETE", format!("/api/schedules/{sid}"), None),
    ] {
        let out = call(method, path.clone(), body).await;
        assert_eq!(
            (out.status, refused(&out).1.as_str()),
            (403, "AccessDenied"),
            "{method} {path}"
        );
    }
    assert_eq!(table_dump(&app).await, before, "a refused change wrote");
}

/// The feed is reachable without a key in AWS and under `make run`: the
/// template routes it to the management function (and
/// tests/infra_consistency.rs holds the watch router to the template).
#[test]
fn the_feed_is_routed_to_the_management_function() {
    let route = (
        shared::api::oncall::ICAL_PATH.to_string(),
        "GET".to_string(),
        "management-api".to_string(),
    );
    assert!(
        integration_tests::template::template()
            .routes()
            .contains(&route),
        "infra/template.yaml: no GET {} route to management-api",
        shared::api::oncall::ICAL_PATH
    );
    assert!(shared::api::PUBLIC_ROUTES
        .iter()
        .any(
            |(pattern, methods)| *pattern == shared::api::oncall::ICAL_PATH && *methods == ["GET"]
        ));
}

/// The escalation tick resolves a schedule target to whoever is on call at
/// that moment, and finds that member's address: a level naming a schedule
/// pages the schedule's current member by email (failed here, with the
/// reason, since the test configures no SMTP server), never "no such member".
#[tokio::test]
async fn the_tick_pages_the_schedules_on_call_member_by_email() {
    use integration_tests::iam::{self, Function};
    let _logs = capture_logs();
    let app = test_app().await;
    let (alice, bob, _) = three_members(&app).await;
    let now_ms = shared::store::now_ms();
    let made = api_ok(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "UTC",
                    "layers": [daily_layer(&[&alice, &bob], now_ms / 1000 - HOUR)]})),
    )
    .await;
    let sid = made["schedule_id"].as_str().unwrap();
    let setup = standard_setup(&app).await;
    api_ok(
        &app,
        "PUT",
        &format!("/api/channels/{}/escalation", setup.channel_id),
        Some(json!({"rules": [{"name": "on call", "levels": [
            {"targets": {"schedule_ids": [sid]}, "notify": ["email"], "escalate_after_minutes": 5}]}]})),
    )
    .await;
    let pushed = push_ok(
        &app,
        &setup.integration_key,
        &json!({"title_rule": "db down", "event_status": "Critical", "alert_key": "db"}),
    )
    .await;
    let incident_id = pushed["incident_id"].as_str().unwrap();
    let escalator = shared::outbound::escalate::Escalator {
        mailer: None,
        public_base_url: "http://console.test".into(),
    };
    let tick_app = iam::as_function(&app, Function::Escalate);
    // The chain is due from the incident's opening, after `now_ms` above.
    let report = escalator
        .tick(&tick_app, shared::store::now_ms())
        .await
        .expect("tick");
    assert_eq!(report.pages, 1);
    let incident = api_ok(&app, "GET", &format!("/api/incidents/{incident_id}"), None).await;
    assert_eq!(incident["responders"][0]["member_id"], alice.as_str());
    let notes = api_ok(
        &app,
        "GET",
        &format!("/api/incidents/{incident_id}/notifications"),
        None,
    )
    .await;
    let notes = notes["items"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["member_id"], alice.as_str());
    assert_eq!(notes[0]["via"], "email");
    let error = notes[0]["error"].as_str().unwrap_or_default();
    assert!(!error.contains("no such member"), "{error}");
    assert!(!error.contains("no email"), "{error}");
}

/// What each on-call call asks of DynamoDB, counted by the store's meter
/// (docs/oncall.md states these figures).
#[tokio::test]
async fn dynamodb_requests_per_call() {
    let _logs = capture_logs();
    let app = test_app().await;
    let (a, b, _) = three_members(&app).await;
    let requests = || {
        app.store
            .meter
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = requests();
    let made = api_ok(
        &app,
        "POST",
        "/api/schedules",
        Some(json!({"name": "primary", "time_zone": "UTC", "layers": [daily_layer(&[&a, &b], 0)]})),
    )
    .await;
    // The app key's GetItem, the members' BatchGetItem, the transaction.
    assert_eq!(requests() - before, 3, "create");
    let sid = made["schedule_id"].as_str().unwrap();
    let url = made["ical_url"].as_str().unwrap();
    for (path, expected, what) in [
        (format!("/api/schedules/{sid}/oncall"), 2, "oncall"),
        (format!("/api/schedules/{sid}/shifts"), 2, "shifts"),
    ] {
        let before = requests();
        api_ok(&app, "GET", &path, None).await;
        assert_eq!(requests() - before, expected, "{what}: key + schedule");
    }
    let before = requests();
    assert_eq!(fetch(&app, &feed_path(url)).await.status, 200);
    assert_eq!(requests() - before, 2, "feed: schedule + members' names");
    let before = requests();
    assert_eq!(
        api(&app, "DELETE", &format!("/api/members/{a}"), None)
            .await
            .status,
        400
    );
    // Key, the member's ref_version, the channels' listing for their
    // escalation rules (a gsi1 Query; no channel here, so no rules read),
    // the schedules' listing (a gsi1 Query and a BatchGetItem).
    assert_eq!(requests() - before, 5, "a refused member delete");
}
