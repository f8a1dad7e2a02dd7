//! The service's own metrics, as CloudWatch Embedded Metric Format (EMF):
//! one JSON object per line on stdout, beside the tracing lines. CloudWatch
//! Logs turns each into metric data points, so a metric costs no request
//! from the function (no `PutMetricData`, no extra latency).
//!
//! Ground floor: depends on nothing else in the crate; callers pass strings.
//! The names here are the ones `infra/template.yaml`'s alarms and dashboard
//! use (`tests/infra_consistency.rs` checks them against [`EMITTED`]).
//! Dimension values are bounded sets (integration kinds, outcomes, statuses),
//! never ids: every distinct combination is a billed custom metric.
//!
//! Written only once a function's entry point called [`enable`]: tests and
//! benchmarks call the handlers directly and keep their output quiet.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every metric the functions emit.
pub const NAMESPACE: &str = "AlertIntake";

/// Push path: events by integration kind and outcome (Count). One data point
/// per event and channel it was applied to; a refused request counts once,
/// as `refused` (4xx) or `error` (5xx).
pub const EVENTS: &str = "Events";
/// Notify function: webhook deliveries by status (Count): `delivered`,
/// `failed` (given up), `pending` (to be retried on a schedule).
pub const DELIVERIES: &str = "Deliveries";
/// On-call: notifications to people by status (Count): `sent`, `failed`,
/// `pending`.
pub const NOTIFICATIONS: &str = "Notifications";
/// On-call: how long after its due time an escalation step ran
/// (Milliseconds).
pub const ESCALATION_LAG: &str = "EscalationLag";

/// Every metric the code emits, with its one dimension set.
pub const EMITTED: &[(&str, &[&str])] = &[
    (EVENTS, &["Integration", "Outcome"]),
    (DELIVERIES, &["Status"]),
    (NOTIFICATIONS, &["Status"]),
    (ESCALATION_LAG, &[]),
];

/// CloudWatch's unit names for the values written here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Start writing metric lines (a function's entry point, once).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// One EMF log line (without the newline): the `_aws` metadata naming the
/// metric and its dimensions, then the dimension values and the metric
/// value as top-level members, as CloudWatch requires.
pub fn emf_line(
    timestamp_ms: i64,
    name: &str,
    unit: Unit,
    value: f64,
    dimensions: &[(&str, &str)],
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": [{ "Name": name, "Unit": unit.as_str() }],
            }],
        }),
    );
    for (k, v) in dimensions {
        root.insert((*k).into(), Value::from(*v));
    }
    root.insert(name.into(), json!(value));
    Value::Object(root).to_string()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn emit(name: &str, unit: Unit, value: f64, dimensions: &[(&str, &str)]) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    write_line(&emf_line(now_ms(), name, unit, value, dimensions));
}

fn write_line(line: &str) {
    // One write under the lock, so a line never interleaves with a log line.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A push's events by outcome: one line per distinct outcome, so a
/// 1,000-alert payload writes a handful of lines, not a thousand.
pub fn events<'a>(integration: &str, outcomes: impl IntoIterator<Item = &'a str>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    for line in event_lines(now_ms(), integration, outcomes) {
        write_line(&line);
    }
}

/// The lines [`events`] writes.
fn event_lines<'a>(
    timestamp_ms: i64,
    integration: &str,
    outcomes: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for o in outcomes {
        *counts.entry(o).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(outcome, n)| {
            emf_line(
                timestamp_ms,
                EVENTS,
                Unit::Count,
                f64::from(n),
                &[("Integration", integration), ("Outcome", outcome)],
            )
        })
        .collect()
}

/// One webhook delivery's status (`delivered`, `failed`, `pending`).
pub fn delivery(status: &str) {
    emit(DELIVERIES, Unit::Count, 1.0, &[("Status", status)]);
}

/// One notification's status (`sent`, `failed`, `pending`).
pub fn notification(status: &str) {
    emit(NOTIFICATIONS, Unit::Count, 1.0, &[("Status", status)]);
}

/// How late an escalation step ran after it was due (0 when on time).
pub fn escalation_lag(lag_ms: i64) {
    emit(
        ESCALATION_LAG,
        Unit::Milliseconds,
        lag_ms.max(0) as f64,
        &[],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_has_the_shape_cloudwatch_extracts() {
        let line = emf_line(
            1_700_000_000_123,
            EVENTS,
            Unit::Count,
            3.0,
            &[("Integration", "prometheus"), ("Outcome", "new_incident")],
        );
        assert!(!line.contains('\n'), "one line");
        let v: Value = serde_json::from_str(&line).unwrap();
        let aws = &v["_aws"];
        assert_eq!(aws["Timestamp"], json!(1_700_000_000_123_i64));
        let cwm = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(cwm.len(), 1);
        assert_eq!(cwm[0]["Namespace"], json!("AlertIntake"));
        assert_eq!(cwm[0]["Dimensions"], json!([["Integration", "Outcome"]]));
        assert_eq!(
            cwm[0]["Metrics"],
            json!([{ "Name": "Events", "Unit": "Count" }])
        );
        // Every dimension and metric named in `_aws` is a top-level member.
        assert_eq!(v["Integration"], json!("prometheus"));
        assert_eq!(v["Outcome"], json!("new_incident"));
        assert_eq!(v["Events"], json!(3.0));
    }

    #[test]
    fn a_metric_without_dimensions_has_one_empty_dimension_set() {
        let v: Value = serde_json::from_str(&emf_line(
            5,
            ESCALATION_LAG,
            Unit::Milliseconds,
            1500.0,
            &[],
        ))
        .unwrap();
        let cwm = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cwm["Dimensions"], json!([[]]));
        assert_eq!(cwm["Metrics"][0]["Unit"], json!("Milliseconds"));
        assert_eq!(v["EscalationLag"], json!(1500.0));
    }

    #[test]
    fn a_push_writes_one_line_per_outcome_with_its_count() {
        let lines = event_lines(
            7,
            "prometheus",
            [
                "deduplicated",
                "new_incident",
                "deduplicated",
                "deduplicated",
            ],
        );
        let got: Vec<(String, f64)> = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                assert_eq!(v["Integration"], json!("prometheus"));
                (
                    v["Outcome"].as_str().unwrap().to_string(),
                    v["Events"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("deduplicated".to_string(), 3.0),
                ("new_incident".to_string(), 1.0)
            ]
        );
        assert!(event_lines(7, "standard", []).is_empty());
    }

    #[test]
    fn emitted_names_every_metric_with_its_dimensions() {
        let names: Vec<&str> = EMITTED.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [EVENTS, DELIVERIES, NOTIFICATIONS, ESCALATION_LAG],
            "a new metric belongs in EMITTED (the template test reads it)"
        );
    }
}
