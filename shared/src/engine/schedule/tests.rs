use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn ts(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_second()
}

fn schedule(value: serde_json::Value) -> Schedule {
    serde_json::from_value(value).unwrap()
}

fn compiled(value: serde_json::Value) -> CompiledSchedule {
    schedule(value).compile().unwrap()
}

fn item(member: &str, from: &str, to: &str, source: Source, layer: Option<usize>) -> ShiftItem {
    ShiftItem {
        member_id: member.into(),
        from: ts(from),
        to: ts(to),
        source,
        layer,
    }
}

fn layer_item(member: &str, from: &str, to: &str, layer: usize) -> ShiftItem {
    item(member, from, to, Source::Layer, Some(layer))
}

#[test]
fn berlin_daily_handoff_stays_at_nine_across_spring_forward() {
    let s = compiled(json!({
        "name": "primary", "time_zone": "Europe/Berlin",
        "layers": [{"name": "daily", "member_ids": ["alice", "bob", "carol"],
                    "start": ts("2026-03-23T08:00:00Z"), // Monday 09:00 CET
                    "shift": {"unit": "days", "length": 1}}]
    }));
    let items = s
        .shifts(ts("2026-03-23T08:00:00Z"), ts("2026-03-30T07:00:00Z"))
        .unwrap();
    assert_eq!(
        items,
        vec![
            layer_item("alice", "2026-03-23T08:00:00Z", "2026-03-24T08:00:00Z", 0),
            layer_item("bob", "2026-03-24T08:00:00Z", "2026-03-25T08:00:00Z", 0),
            layer_item("carol", "2026-03-25T08:00:00Z", "2026-03-26T08:00:00Z", 0),
            layer_item("alice", "2026-03-26T08:00:00Z", "2026-03-27T08:00:00Z", 0),
            layer_item("bob", "2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", 0),
            // Saturday 09:00 CET to Sunday 09:00 CEST: 23 hours.
            layer_item("carol", "2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", 0),
            layer_item("alice", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z", 0),
        ]
    );
    assert_eq!(items[5].to - items[5].from, 23 * 3600);
    let now = s.oncall(ts("2026-03-29T06:59:59Z"));
    assert_eq!(now.member_ids, vec!["carol"]);
    assert_eq!(now.until, Some(ts("2026-03-29T07:00:00Z")));
}

#[test]
fn berlin_autumn_change_gives_a_25_hour_shift() {
    let s = compiled(json!({
        "name": "primary", "time_zone": "Europe/Berlin",
        "layers": [{"name": "daily", "member_ids": ["alice", "bob"],
                    "start": ts("2026-10-20T07:00:00Z"), // 09:00 CEST
                    "shift": {"unit": "days", "length": 1}}]
    }));
    // 2026-10-25: 03:00 CEST becomes 02:00 CET.
    let items = s
        .shifts(ts("2026-10-24T07:00:00Z"), ts("2026-10-26T08:00:00Z"))
        .unwrap();
    assert_eq!(
        items
            .iter()
            .map(|i| (i.to - i.from) / 3600)
            .collect::<Vec<_>>(),
        vec![25, 24]
    );
    assert_eq!(items[1].from, ts("2026-10-25T08:00:00Z"), "09:00 CET");
}

#[test]
fn restricted_later_layer_covers_shanghai_office_hours_only() {
    let s = compiled(json!({
        "name": "support", "time_zone": "Asia/Shanghai",
        "layers": [
            {"name": "24x7", "member_ids": ["night"], "start": 0,
             "shift": {"unit": "weeks", "length": 1}},
            {"name": "office", "member_ids": ["day1", "day2"],
             "start": ts("2026-11-29T16:00:00Z"), // Monday 00:00 local
             "shift": {"unit": "days", "length": 1},
             "restrictions": [{"weekdays": [1, 2, 3, 4, 5], "from": "09:00", "to": "18:00"}]}
        ]
    }));
    // Friday 2026-12-04 00:00 to Monday 2026-12-07 12:00 local.
    let items = s
        .shifts(ts("2026-12-03T16:00:00Z"), ts("2026-12-07T04:00:00Z"))
        .unwrap();
    assert_eq!(
        items,
        vec![
            layer_item("night", "2026-12-03T16:00:00Z", "2026-12-04T01:00:00Z", 0),
            layer_item("day1", "2026-12-04T01:00:00Z", "2026-12-04T10:00:00Z", 1),
            layer_item("night", "2026-12-04T10:00:00Z", "2026-12-07T01:00:00Z", 0),
            layer_item("day2", "2026-12-07T01:00:00Z", "2026-12-07T04:00:00Z", 1),
        ]
    );
    // The console's row for the office layer alone.
    let office = s
        .layer_shifts(1, ts("2026-12-03T16:00:00Z"), ts("2026-12-07T04:00:00Z"))
        .unwrap();
    assert_eq!(office.len(), 2);
}

#[test]
fn overnight_restriction_in_new_york_across_its_dst_change() {
    // 22:00–06:00 every night; 2026-11-01 02:00 EDT becomes 01:00 EST.
    let s = compiled(json!({
        "name": "nights", "time_zone": "America/New_York",
        "layers": [{"name": "n", "member_ids": ["owl"], "start": 0,
                    "shift": {"unit": "days", "length": 1},
                    "restrictions": [{"weekdays": [1,2,3,4,5,6,7], "from": "22:00", "to": "06:00"}]}]
    }));
    let items = s
        .shifts(ts("2026-10-31T12:00:00Z"), ts("2026-11-01T18:00:00Z"))
        .unwrap();
    assert_eq!(
        items,
        vec![layer_item(
            "owl",
            "2026-11-01T02:00:00Z",
            "2026-11-01T11:00:00Z",
            0
        )],
        "22:00 EDT to 06:00 EST is nine hours"
    );
}

#[test]
fn overrides_win_over_every_layer() {
    let s = compiled(json!({
        "name": "p", "time_zone": "UTC",
        "layers": [
            {"name": "a", "member_ids": ["alice"], "start": 0, "shift": {"unit": "days", "length": 1}},
            {"name": "b", "member_ids": ["bob"], "start": 0, "shift": {"unit": "days", "length": 1}}
        ],
        "overrides": [{"member_id": "carol", "from": ts("2026-12-04T10:00:00Z"), "to": ts("2026-12-04T12:00:00Z")}]
    }));
    let items = s
        .shifts(ts("2026-12-04T00:00:00Z"), ts("2026-12-05T00:00:00Z"))
        .unwrap();
    assert_eq!(
        items,
        vec![
            layer_item("bob", "2026-12-04T00:00:00Z", "2026-12-04T10:00:00Z", 1),
            item(
                "carol",
                "2026-12-04T10:00:00Z",
                "2026-12-04T12:00:00Z",
                Source::Override,
                None
            ),
            layer_item("bob", "2026-12-04T12:00:00Z", "2026-12-05T00:00:00Z", 1),
        ],
        "bob's daily handoffs to himself are merged; alice's layer is hidden"
    );
    let at = s.oncall(ts("2026-12-04T11:00:00Z"));
    assert_eq!(
        at,
        OnCall {
            member_ids: vec!["carol".into()],
            until: Some(ts("2026-12-04T12:00:00Z"))
        }
    );
    // A single member forever: no change within the horizon.
    assert_eq!(s.oncall(ts("2026-12-05T00:00:00Z")).until, None);
}

#[test]
fn weekly_rotation_hands_off_on_monday_morning() {
    let s = compiled(json!({
        "name": "p", "time_zone": "Europe/Berlin",
        "layers": [{"name": "w", "member_ids": ["a", "b"],
                    "start": ts("2026-11-30T08:00:00Z"), "shift": {"unit": "weeks", "length": 1}}]
    }));
    let items = s
        .shifts(ts("2026-11-30T00:00:00Z"), ts("2027-01-01T00:00:00Z"))
        .unwrap();
    let who: Vec<&str> = items.iter().map(|i| i.member_id.as_str()).collect();
    assert_eq!(who, vec!["a", "b", "a", "b", "a"]);
    assert_eq!(
        items[0].from,
        ts("2026-11-30T08:00:00Z"),
        "nobody before start"
    );
    assert_eq!(items[1].from, ts("2026-12-07T08:00:00Z"));
    assert_eq!(
        s.oncall(ts("2026-11-30T07:00:00Z")).member_ids,
        Vec::<String>::new()
    );
    assert_eq!(
        s.oncall(ts("2026-11-30T07:00:00Z")).until,
        Some(ts("2026-11-30T08:00:00Z"))
    );
}

#[test]
fn validation_names_the_field() {
    let base = json!({
        "name": "p", "time_zone": "Europe/Berlin",
        "layers": [{"name": "l", "member_ids": ["a"], "start": 0,
                    "shift": {"unit": "days", "length": 1},
                    "restrictions": [{"weekdays": [1], "from": "09:00", "to": "17:00"}]}],
        "overrides": [{"member_id": "a", "from": 10, "to": 20}]
    });
    assert!(schedule(base.clone()).validate().is_ok());
    let cases = [
        ("/time_zone", json!("Mars/Olympus"), "time_zone:"),
        (
            "/layers/0/shift/length",
            json!(0),
            "layers[0].shift.length:",
        ),
        (
            "/layers/0/shift/length",
            json!(366),
            "layers[0].shift.length:",
        ),
        ("/layers/0/member_ids", json!([]), "layers[0].member_ids:"),
        (
            "/layers/0/member_ids/0",
            json!("no/slash"),
            "layers[0].member_ids[0]:",
        ),
        (
            "/layers/0/restrictions/0/weekdays",
            json!([8]),
            "layers[0].restrictions[0].weekdays:",
        ),
        (
            "/layers/0/restrictions/0/from",
            json!("9am"),
            "layers[0].restrictions[0].from:",
        ),
        (
            "/layers/0/restrictions/0/to",
            json!("09:00"),
            "layers[0].restrictions[0].to:",
        ),
        ("/layers/0/start", json!(-1), "layers[0].start:"),
        ("/overrides/0/to", json!(10), "overrides[0].to:"),
        ("/name", json!(""), "name:"),
    ];
    for (pointer, value, expected) in cases {
        let mut body = base.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        let err = schedule(body).validate().unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(
            err.message().starts_with(expected),
            "{pointer}: {}",
            err.message()
        );
        assert!(!err.message().contains("Mars"), "never echoes the value");
    }
    let mut body = base.clone();
    body["layers"] = json!([]);
    assert!(schedule(body)
        .validate()
        .unwrap_err()
        .message()
        .starts_with("layers:"));
    assert!(
        CompiledSchedule::shifts(&schedule(base.clone()).compile().unwrap(), 0, 91 * 86_400)
            .unwrap_err()
            .message()
            .starts_with("to:")
    );
    // Unknown fields and units are refused by name.
    let mut body = base;
    body["layers"][0]["shift"]["unit"] = json!("months");
    let err = crate::json::from_value::<Schedule>(body).unwrap_err();
    assert!(
        err.message().contains("layers[0].shift.unit")
            || err.message().contains("layers.0.shift.unit"),
        "{}",
        err.message()
    );
}

// ---- properties ----

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe", // a 30-minute DST shift
    "Asia/Kolkata",
];
const MEMBERS: [&str; 4] = ["m0", "m1", "m2", "m3"];
/// 2026-01-01T00:00:00Z; generated times fall in 2026, across both DST changes.
const YEAR_START: i64 = 1_767_225_600;

fn arb_layer() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::collection::vec(0..MEMBERS.len(), 1..4),
        0..300i64 * 86_400,
        prop_oneof![Just("hours"), Just("days"), Just("weeks")],
        1..4u32,
        prop::option::of(prop::collection::vec(
            (prop::collection::vec(1..=7u8, 1..4), 0..48u16, 0..48u16),
            1..3,
        )),
    )
        .prop_map(|(members, start, unit, length, restrictions)| {
            let hhmm = |half: u16| format!("{:02}:{:02}", half / 2, (half % 2) * 30);
            let restrictions: Vec<serde_json::Value> = restrictions
                .unwrap_or_default()
                .into_iter()
                .map(|(weekdays, from, to)| {
                    let to = if to == from { (to + 1) % 48 } else { to };
                    json!({"weekdays": weekdays, "from": hhmm(from), "to": hhmm(to)})
                })
                .collect();
            json!({
                "name": "l",
                "member_ids": members.iter().map(|&m| MEMBERS[m]).collect::<Vec<_>>(),
                "start": YEAR_START + start,
                "shift": {"unit": unit, "length": length},
                "restrictions": restrictions,
            })
        })
}

fn arb_case() -> impl Strategy<Value = (CompiledSchedule, serde_json::Value, i64, i64)> {
    // Keep the JSON too, for the no-gap property (which layers are unrestricted).
    (
        0..ZONES.len(),
        prop::collection::vec(arb_layer(), 1..4),
        prop::collection::vec((0..MEMBERS.len(), 0..330i64 * 86_400, 1..72i64 * 3600), 0..3),
        0..330i64 * 86_400,
        3600..21i64 * 86_400,
    )
        .prop_map(|(zone, layers, overrides, from, len)| {
            let overrides: Vec<serde_json::Value> = overrides
                .into_iter()
                .map(|(m, from, len)| {
                    json!({"member_id": MEMBERS[m], "from": YEAR_START + from, "to": YEAR_START + from + len})
                })
                .collect();
            let body = json!({"name": "p", "time_zone": ZONES[zone], "layers": layers, "overrides": overrides});
            let from = YEAR_START + from;
            (compiled(body.clone()), body, from, from + len)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn shifts_never_overlap_and_are_merged((s, _body, from, to) in arb_case()) {
        let items = s.shifts(from, to).unwrap();
        for i in &items {
            prop_assert!(from <= i.from && i.from < i.to && i.to <= to);
        }
        for pair in items.windows(2) {
            prop_assert!(pair[0].to <= pair[1].from, "overlap: {:?}", pair);
            let same = pair[0].member_id == pair[1].member_id
                && pair[0].source == pair[1].source
                && pair[0].layer == pair[1].layer;
            prop_assert!(!(same && pair[0].to == pair[1].from), "not merged: {:?}", pair);
        }
    }

    #[test]
    fn no_gaps_once_an_unrestricted_layer_has_started((s, body, from, to) in arb_case()) {
        let covered_from = body["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["restrictions"].as_array().is_none_or(Vec::is_empty))
            .map(|l| l["start"].as_i64().unwrap())
            .min();
        let Some(covered_from) = covered_from else { return Ok(()) };
        let items = s.shifts(from, to).unwrap();
        let mut t = from.max(covered_from);
        for i in &items {
            if i.to <= t {
                continue;
            }
            prop_assert!(i.from <= t, "gap from {} to {}", t, i.from);
            t = i.to;
        }
        prop_assert!(t >= to, "gap at the end, from {}", t);
    }

    #[test]
    fn oncall_agrees_with_shifts((s, _body, from, to) in arb_case(), probes in prop::collection::vec(0.0..1.0f64, 8)) {
        let items = s.shifts(from, to).unwrap();
        // Probe every item's edges and a few points inside the range.
        let mut points: Vec<i64> = items.iter().flat_map(|i| [i.from, i.to - 1]).collect();
        points.extend(probes.iter().map(|p| from + ((to - from) as f64 * p) as i64));
        for t in points {
            let at = s.oncall(t);
            let idx = items.iter().position(|i| i.from <= t && t < i.to);
            match idx {
                Some(idx) => {
                    prop_assert_eq!(&at.member_ids, &vec![items[idx].member_id.clone()]);
                    // The end of the member's run of contiguous items.
                    let mut end = items[idx].to;
                    for next in &items[idx + 1..] {
                        if next.from != end || next.member_id != items[idx].member_id { break; }
                        end = next.to;
                    }
                    if end < to {
                        prop_assert_eq!(at.until, Some(end), "at {}", t);
                    } else {
                        prop_assert!(at.until.is_none_or(|u| u >= to), "at {}: {:?}", t, at.until);
                    }
                }
                None => {
                    prop_assert!(at.member_ids.is_empty(), "at {}: {:?}", t, at.member_ids);
                    let next = items.iter().find(|i| i.from > t).map(|i| i.from);
                    match next {
                        Some(n) => prop_assert_eq!(at.until, Some(n)),
                        None => prop_assert!(at.until.is_none_or(|u| u >= to)),
                    }
                }
            }
        }
    }

    #[test]
    fn splitting_the_range_changes_nothing_but_the_cut((s, _body, from, to) in arb_case(), cut in 0.0..1.0f64) {
        let mid = from + ((to - from) as f64 * cut) as i64;
        prop_assume!(mid > from && mid < to);
        let whole = s.shifts(from, to).unwrap();
        let mut parts = s.shifts(from, mid).unwrap();
        let second = s.shifts(mid, to).unwrap();
        // Re-join an item the cut split in two.
        let mut rest = second.into_iter().peekable();
        if let (Some(last), Some(first)) = (parts.last_mut(), rest.peek()) {
            if last.to == first.from && last.member_id == first.member_id
                && last.source == first.source && last.layer == first.layer {
                last.to = first.to;
                rest.next();
            }
        }
        parts.extend(rest);
        prop_assert_eq!(whole, parts);
    }
}
