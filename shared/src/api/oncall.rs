//! On-call routes (SPEC 14): members, schedules, who is on call and the
//! shifts, and a schedule's iCalendar feed (`/ical/{schedule_id}/{token}`,
//! public: calendar apps send no app key, the token in the URL is the
//! secret). The schedule arithmetic is `engine::schedule`'s; this file
//! checks what is sent, reads and writes through the store, and shapes the
//! answers.
//!
//! A feed token is shown twice only: in the answer that created the
//! schedule and in the answer of `rotate-ical`. The table keeps its SHA-256,
//! so `GET` cannot show the URL again (it shows when it was issued); an
//! operator who lost it rotates.
//!
//! DynamoDB requests: a member write is one request (a delete: a GetItem,
//! the schedules' listing, one DeleteItem); a schedule write is a
//! BatchGetItem of its members and one transaction (the schedule and a
//! reference bump per member); `oncall` and `shifts` one GetItem; the feed a
//! GetItem and a BatchGetItem of the members it shows.
//!
//! Why one file of about 570 lines: members and schedules refer to each other
//! (a schedule names members, a member in use by a schedule cannot be
//! deleted), and the feed serves a schedule; splitting them would put the
//! "in use" checks on both sides of a file boundary.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, not_found, path_id};
use crate::app::App;
use crate::domain::member::{self, Member, MemberIm, DEFAULT_TIME_ZONE};
use crate::domain::time::now_ms;
use crate::engine::schedule::{CompiledSchedule, Layer, Override, Schedule, LATEST_SECOND};
use crate::error::{ApiError, ApiResult};
use crate::hashing::{constant_time_eq, random_hex, sha256_hex};
use crate::ids::is_valid_id;
use crate::intake::http::{respond, Inbound, Outbound};
use crate::intake::integrations::from_value;
use crate::store::config::members::MemberDelete;
use crate::store::config::schedules::{ScheduleWrite, StoredSchedule};

/// The public feed route (served before any app key is asked for).
pub const ICAL_PATH: &str = "/ical/{schedule_id}/{token}";
/// What `shifts` covers when `to` is not given: the console's picture.
pub const DEFAULT_SHIFTS_SECS: i64 = 14 * 86_400;
/// A member delete that keeps losing to concurrent references gives up.
const DELETE_ATTEMPTS: usize = 5;

/// `/api/members...` and `/api/schedules...`, after access was decided.
pub(super) async fn route(
    app: &App,
    req: &Inbound,
    segments: &[&str],
    method: &str,
) -> ApiResult<Value> {
    match (segments, method) {
        (["api", "members"], "POST") => create_member(app, req).await,
        (["api", "members"], "GET") => list_members(app).await,
        (["api", "members", id], "GET") => get_member(app, id).await,
        (["api", "members", id], "PATCH") => patch_member(app, id, req).await,
        (["api", "members", id], "DELETE") => delete_member(app, id).await,
        (["api", "schedules"], "POST") => create_schedule(app, req).await,
        (["api", "schedules"], "GET") => list_schedules(app).await,
        (["api", "schedules", id], "GET") => get_schedule(app, id).await,
        (["api", "schedules", id], "PATCH") => patch_schedule(app, id, req).await,
        (["api", "schedules", id], "DELETE") => delete_schedule(app, id).await,
        (["api", "schedules", id, "oncall"], "GET") => oncall(app, id, req).await,
        (["api", "schedules", id, "shifts"], "GET") => shifts(app, id, req).await,
        (["api", "schedules", id, "rotate-ical"], "POST") => rotate_ical(app, id, req).await,
        _ => Err(super::unrouted()),
    }
}

// ---- members ----

/// `POST /api/members` and `PATCH /api/members/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    name: Option<String>,
    email: Option<String>,
    /// `null` in a PATCH removes the phone; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    phone: Option<Option<String>>,
    time_zone: Option<String>,
    /// Replaces the member's IM ids as a whole; an empty id is no id.
    im: Option<MemberIm>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Apply a body's fields to `m`, then check the whole member.
fn apply_member(m: &mut Member, body: MemberBody) -> ApiResult<()> {
    if let Some(name) = body.name {
        m.name = member::check_name("name", &name)?;
    }
    if let Some(email) = body.email {
        m.email = email.trim().to_string();
    }
    if let Some(phone) = body.phone {
        m.phone = non_empty(phone).map(|p| p.trim().to_string());
    }
    if let Some(tz) = body.time_zone {
        m.time_zone = tz;
    }
    if let Some(im) = body.im {
        m.im = MemberIm {
            slack_user_id: non_empty(im.slack_user_id),
            feishu_open_id: non_empty(im.feishu_open_id),
            dingtalk_mobile: non_empty(im.dingtalk_mobile),
            wecom_user_id: non_empty(im.wecom_user_id),
        };
    }
    m.validate()
}

async fn create_member(app: &App, req: &Inbound) -> ApiResult<Value> {
    let body: MemberBody = from_value(json_body(req)?)?;
    if body.name.is_none() {
        return Err(ApiError::invalid("name: required"));
    }
    if body.email.is_none() {
        return Err(ApiError::invalid("email: required"));
    }
    let mut m = Member {
        member_id: random_hex(8)?,
        name: String::new(),
        email: String::new(),
        phone: None,
        time_zone: DEFAULT_TIME_ZONE.to_string(),
        im: MemberIm::default(),
        created_at: now_ms() / 1000,
    };
    apply_member(&mut m, body)?;
    app.store.create_member(&m).await?;
    Ok(json!(m))
}

async fn list_members(app: &App) -> ApiResult<Value> {
    Ok(json!({ "items": app.store.list_members().await?, "next_cursor": null }))
}

async fn find_member(app: &App, id: &str) -> ApiResult<Member> {
    app.store
        .get_member(id)
        .await?
        .ok_or_else(|| not_found("member_id", "member"))
}

async fn get_member(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("member_id", id)?;
    Ok(json!(find_member(app, id).await?))
}

async fn patch_member(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("member_id", id)?;
    let body: MemberBody = from_value(json_body(req)?)?;
    let mut m = find_member(app, id).await?;
    apply_member(&mut m, body)?;
    if !app.store.update_member(&m).await? {
        return Err(not_found("member_id", "member"));
    }
    Ok(json!(m))
}

/// Where a member is still named, as `schedules/{id}.layers[0].member_ids[1]`;
/// `None` when nowhere. Reads every schedule (their listing).
// Escalation rules name members too: they are checked here when they land.
pub async fn member_in_use(app: &App, member_id: &str) -> ApiResult<Option<String>> {
    if let Some(place) = super::escalation::member_used_by_escalation(app, member_id).await? {
        return Ok(Some(place));
    }
    for st in app.store.list_schedules().await? {
        if let Some((place, _)) = st
            .schedule
            .member_places()
            .into_iter()
            .find(|(_, id)| *id == member_id)
        {
            return Ok(Some(format!("schedules/{}.{place}", st.schedule_id)));
        }
    }
    Ok(None)
}

/// Refused while anything names the member; the delete is conditioned on
/// no reference having been added since the check (store/config/members.rs).
async fn delete_member(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("member_id", id)?;
    for attempt in 0..DELETE_ATTEMPTS {
        if attempt > 0 {
            crate::store::db::backoff(attempt as u32).await;
        }
        let Some(ref_version) = app.store.member_ref_version(id).await? else {
            return Err(not_found("member_id", "member"));
        };
        if let Some(place) = member_in_use(app, id).await? {
            return Err(ApiError::invalid(format!(
                "member_id: still used at {place}; remove it there first"
            )));
        }
        match app
            .store
            .delete_member_if_unreferenced(id, ref_version)
            .await?
        {
            MemberDelete::Deleted => return Ok(json!({ "member_id": id, "deleted": true })),
            MemberDelete::Gone => return Err(not_found("member_id", "member")),
            MemberDelete::Referenced => continue,
        }
    }
    Err(ApiError::internal(
        "member_id: references to this member kept changing; retry",
    ))
}

// ---- schedules ----

/// `PATCH /api/schedules/{id}`: the fields given replace the schedule's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulePatch {
    name: Option<String>,
    time_zone: Option<String>,
    layers: Option<Vec<Layer>>,
    overrides: Option<Vec<Override>>,
}

/// A schedule as the API shows it: never its feed token or the token's hash.
fn schedule_view(st: &StoredSchedule) -> Value {
    let mut value = json!(st.schedule);
    value["schedule_id"] = json!(st.schedule_id);
    if value.get("overrides").is_none() {
        value["overrides"] = json!([]);
    }
    value["created_at"] = json!(st.created_at);
    value["updated_at"] = json!(st.updated_at);
    value["ical_issued_at"] = json!(st.ical_issued_at);
    value
}

/// 192 random bits, hex: shown once (in `ical_url`), stored only as a hash.
fn new_ical_token() -> ApiResult<String> {
    random_hex(24)
}

/// `{base}/ical/{id}/{token}.ics`. The base is `PUBLIC_BASE_URL` when set;
/// else the host the request came to (API Gateway's own name, or a custom
/// domain), over https unless the front said it spoke http.
fn ical_url(app: &App, req: &Inbound, schedule_id: &str, token: &str) -> String {
    let path = format!("/ical/{schedule_id}/{token}.ics");
    if let Some(base) = &app.public_base_url {
        return format!("{}{path}", base.trim_end_matches('/'));
    }
    let host = req.get_header("host").filter(|h| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    match host {
        Some(host) => {
            let scheme = match req.get_header("x-forwarded-proto") {
                Some("http") => "http",
                _ => "https",
            };
            format!("{scheme}://{host}{path}")
        }
        None => path,
    }
}

/// The first place that names a member that does not exist:
/// `layers[0].member_ids[2]: no such member`.
async fn check_members_exist(app: &App, schedule: &Schedule) -> ApiResult<()> {
    let ids = crate::store::config::schedules::distinct_members(schedule);
    let found = app.store.batch_get_members(&ids).await?;
    match schedule
        .member_places()
        .into_iter()
        .find(|(_, id)| !found.contains_key(*id))
    {
        Some((place, _)) => Err(ApiError::invalid(format!("{place}: no such member"))),
        None => Ok(()),
    }
}

/// A store answer to a schedule write, in the API's words.
fn written(schedule: &Schedule, outcome: ScheduleWrite, on_missing: ApiError) -> ApiResult<()> {
    match outcome {
        ScheduleWrite::Written => Ok(()),
        ScheduleWrite::NoSchedule => Err(on_missing),
        ScheduleWrite::NoSuchMember(gone) => {
            let place = schedule
                .member_places()
                .into_iter()
                .find(|(_, id)| *id == gone)
                .map_or_else(|| "layers".to_string(), |(place, _)| place);
            Err(ApiError::invalid(format!("{place}: no such member")))
        }
    }
}

async fn create_schedule(app: &App, req: &Inbound) -> ApiResult<Value> {
    let mut schedule: Schedule = from_value(json_body(req)?)?;
    normalise(&mut schedule);
    schedule.compile()?;
    check_members_exist(app, &schedule).await?;
    let token = new_ical_token()?;
    let now = now_ms() / 1000;
    let st = StoredSchedule {
        schedule_id: random_hex(8)?,
        schedule,
        ical_hash: sha256_hex(&token),
        ical_issued_at: now,
        created_at: now,
        updated_at: now,
    };
    let outcome = app.store.create_schedule(&st).await?;
    written(
        &st.schedule,
        outcome,
        ApiError::internal("schedule id collision; retry"),
    )?;
    let mut answer = schedule_view(&st);
    answer["ical_url"] = json!(ical_url(app, req, &st.schedule_id, &token));
    Ok(answer)
}

/// Names are kept trimmed, as everywhere else in the API.
fn normalise(schedule: &mut Schedule) {
    schedule.name = schedule.name.trim().to_string();
    for layer in &mut schedule.layers {
        layer.name = layer.name.trim().to_string();
    }
}

async fn list_schedules(app: &App) -> ApiResult<Value> {
    let items: Vec<Value> = app
        .store
        .list_schedules()
        .await?
        .iter()
        .map(schedule_view)
        .collect();
    Ok(json!({ "items": items, "next_cursor": null }))
}

async fn find_schedule(app: &App, id: &str) -> ApiResult<StoredSchedule> {
    app.store
        .get_schedule(id)
        .await?
        .ok_or_else(|| not_found("schedule_id", "schedule"))
}

async fn get_schedule(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    Ok(schedule_view(&find_schedule(app, id).await?))
}

async fn patch_schedule(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    let body: SchedulePatch = from_value(json_body(req)?)?;
    let mut st = find_schedule(app, id).await?;
    let schedule = &mut st.schedule;
    if let Some(name) = body.name {
        schedule.name = name;
    }
    if let Some(tz) = body.time_zone {
        schedule.time_zone = tz;
    }
    if let Some(layers) = body.layers {
        schedule.layers = layers;
    }
    if let Some(overrides) = body.overrides {
        schedule.overrides = overrides;
    }
    normalise(schedule);
    schedule.compile()?;
    check_members_exist(app, schedule).await?;
    st.updated_at = now_ms() / 1000;
    let outcome = app
        .store
        .update_schedule(id, &st.schedule, st.updated_at)
        .await?;
    written(&st.schedule, outcome, not_found("schedule_id", "schedule"))?;
    Ok(schedule_view(&st))
}

/// Where a schedule is still named (only escalation rules name schedules);
/// `None` when nowhere. A rule written concurrently is not guarded: the tick
/// treats a schedule that is gone as nobody on call.
pub async fn schedule_in_use(app: &App, schedule_id: &str) -> ApiResult<Option<String>> {
    super::escalation::schedule_used_by_escalation(app, schedule_id).await
}

async fn delete_schedule(app: &App, id: &str) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    if let Some(place) = schedule_in_use(app, id).await? {
        return Err(ApiError::invalid(format!(
            "schedule_id: still used at {place}; remove it there first"
        )));
    }
    if app.store.delete_schedule(id).await? {
        Ok(json!({ "schedule_id": id, "deleted": true }))
    } else {
        Err(not_found("schedule_id", "schedule"))
    }
}

/// A unix-seconds query parameter; `None` when absent or empty.
fn query_second(req: &Inbound, name: &str) -> ApiResult<Option<i64>> {
    match req
        .query
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|s| (0..=LATEST_SECOND).contains(s))
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{name}: must be unix seconds from 0 to {LATEST_SECOND}"
                ))
            }),
    }
}

async fn compiled(app: &App, id: &str) -> ApiResult<(StoredSchedule, CompiledSchedule)> {
    let st = find_schedule(app, id).await?;
    let compiled = st.schedule.compile()?;
    Ok((st, compiled))
}

/// `GET /api/schedules/{id}/oncall?at=` (default now).
async fn oncall(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    let at = query_second(req, "at")?.unwrap_or(now_ms() / 1000);
    let (_, schedule) = compiled(app, id).await?;
    let answer = schedule.oncall(at);
    Ok(json!({ "at": at, "member_ids": answer.member_ids, "until": answer.until }))
}

/// `GET /api/schedules/{id}/shifts?from=&to=&layer=`: the final schedule,
/// or with `layer` (its index in `layers`) that layer alone. `from`
/// defaults to now, `to` to 14 days after `from`; at most 90 days.
async fn shifts(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    let from = query_second(req, "from")?.unwrap_or(now_ms() / 1000);
    let to = query_second(req, "to")?.unwrap_or(from.saturating_add(DEFAULT_SHIFTS_SECS));
    crate::engine::schedule::walk::check_range(from, to)?;
    let layer = match req.query.get("layer").filter(|l| !l.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::invalid("layer: must be the index of a layer (0 for the first)")
        })?),
    };
    let (st, schedule) = compiled(app, id).await?;
    let items = match layer {
        None => schedule.shifts(from, to)?,
        Some(i) if i < st.schedule.layers.len() => schedule.layer_shifts(i, from, to)?,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "layer: this schedule has layers 0 to {}",
                st.schedule.layers.len().saturating_sub(1)
            )))
        }
    };
    Ok(json!({ "from": from, "to": to, "layer": layer, "items": items }))
}

/// `POST /api/schedules/{id}/rotate-ical`: a new feed URL; the old one
/// answers 404 from now on.
async fn rotate_ical(app: &App, id: &str, req: &Inbound) -> ApiResult<Value> {
    let id = path_id("schedule_id", id)?;
    let token = new_ical_token()?;
    let st = app
        .store
        .rotate_schedule_ical(id, &sha256_hex(&token), now_ms() / 1000)
        .await?
        .ok_or_else(|| not_found("schedule_id", "schedule"))?;
    Ok(json!({
        "schedule_id": st.schedule_id,
        "ical_url": ical_url(app, req, &st.schedule_id, &token),
        "ical_issued_at": st.ical_issued_at,
    }))
}

// ---- for the escalation tick ----

/// The schedules of `ids` that exist, compiled, by id: one BatchGetItem per
/// 100 ids ([`crate::store::Store::load_compiled_schedules`], which the tick
/// in `outbound` calls directly).
pub async fn load_compiled_schedules(
    app: &App,
    ids: &[String],
) -> ApiResult<HashMap<String, CompiledSchedule>> {
    app.store.load_compiled_schedules(ids).await
}

// ---- the iCalendar feed ----

/// The feed's answer for anything wrong (no such schedule, a wrong or old
/// token, garbage): the same 404, naming nothing.
fn feed_not_found() -> ApiError {
    ApiError::ResourceNotFound("not found".into())
}

/// `GET /ical/{schedule_id}/{token}` (a `.ics` suffix is allowed): the
/// schedule's next 90 days as iCalendar, from today's UTC midnight.
pub(super) async fn serve_ical(app: &App, segments: &[&str], request_id: &str) -> Outbound {
    match ical_feed(app, segments).await {
        Ok(calendar) => {
            tracing::info!(status = 200, "request served");
            Outbound {
                status: 200,
                headers: vec![
                    ("content-type".into(), super::ical::CONTENT_TYPE.into()),
                    ("cache-control".into(), "private, max-age=300".into()),
                    ("x-content-type-options".into(), "nosniff".into()),
                    ("referrer-policy".into(), "no-referrer".into()),
                ],
                body: calendar,
            }
        }
        Err(e) => respond(request_id, Err(e)),
    }
}

async fn ical_feed(app: &App, segments: &[&str]) -> ApiResult<String> {
    let (id, token) = match segments {
        ["ical", id, token] => (*id, token.strip_suffix(".ics").unwrap_or(token)),
        _ => return Err(feed_not_found()),
    };
    let shaped = token.len() == 48 && token.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_valid_id(id) || !shaped {
        return Err(feed_not_found());
    }
    let st = app
        .store
        .get_schedule(id)
        .await?
        .ok_or_else(feed_not_found)?;
    if !constant_time_eq(sha256_hex(token).as_bytes(), st.ical_hash.as_bytes()) {
        return Err(feed_not_found());
    }
    tracing::Span::current().record("id", id);
    let now = now_ms() / 1000;
    let (from, to) = super::ical::feed_window(now);
    let items = st.schedule.compile()?.shifts(from, to)?;
    let ids: Vec<String> = items.iter().map(|i| i.member_id.clone()).collect();
    let members = app.store.batch_get_members(&ids).await?;
    let name = |id: &str| members.get(id).map(|m| m.name.clone());
    Ok(super::ical::render(
        &st.schedule_id,
        &st.schedule.name,
        &items,
        &name,
        now,
    ))
}
