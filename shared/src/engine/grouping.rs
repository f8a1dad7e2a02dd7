//! Which incident a new alert joins (SPEC section 5, grouping): its merge
//! group, and until when an incident takes new alerts.

use crate::domain::event::StandardEvent;
use crate::hashing::digest_parts;
use crate::model::{Grouping, GroupingMethod, WindowType};

/// The merge group of an alert under `rules` grouping: the first key group
/// whose values the alert has (with `strict`, a missing value never matches;
/// without, it counts as empty). `None`: the alert gets an incident of its own.
pub fn group_key(grouping: &Grouping, ev: &StandardEvent) -> Option<String> {
    if grouping.method != GroupingMethod::Rules {
        return None;
    }
    for (index, keys) in grouping.equals.iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        let mut parts = vec![index.to_string()];
        let mut complete = true;
        for key in keys {
            let value = match key.as_str() {
                "title" => Some(ev.title.as_str()),
                "severity" => Some(ev.event_status.as_str()),
                other => other
                    .strip_prefix("labels.")
                    .and_then(|name| ev.labels.get(name))
                    .map(String::as_str),
            };
            match value {
                Some(v) => {
                    parts.push(key.clone());
                    parts.push(v.to_string());
                }
                None if grouping.strict => {
                    complete = false;
                    break;
                }
                None => {
                    parts.push(key.clone());
                    parts.push(String::new());
                }
            }
        }
        if complete {
            let mut key = digest_parts(&parts);
            key.truncate(32);
            return Some(key);
        }
    }
    None
}

/// Until when (unix ms) an incident opened or merged into at `now_ms` takes
/// new alerts; 0 means until it closes.
pub fn merge_deadline(grouping: &Grouping, incident_created_ms: i64, now_ms: i64) -> i64 {
    if grouping.window_minutes == 0 {
        return 0;
    }
    let window = i64::from(grouping.window_minutes) * 60_000;
    match grouping.window_type {
        WindowType::Tumbling => incident_created_ms + window,
        WindowType::Sliding => now_ms + window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventStatus;

    fn event(status: EventStatus, title: &str, labels: &[(&str, &str)], t: i64) -> StandardEvent {
        StandardEvent {
            title: title.into(),
            event_status: status,
            alert_key: "k".into(),
            description: "d".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            event_time_ms: t,
        }
    }

    #[test]
    fn grouping_keys() {
        let mut g = Grouping {
            method: GroupingMethod::Rules,
            equals: vec![
                vec!["labels.service".into(), "severity".into()],
                vec!["title".into()],
            ],
            strict: true,
            ..Default::default()
        };
        let a = event(EventStatus::Warning, "t", &[("service", "api")], 1);
        let b = event(EventStatus::Warning, "other", &[("service", "api")], 1);
        assert_eq!(group_key(&g, &a), group_key(&g, &b));
        let c = event(EventStatus::Critical, "t", &[("service", "api")], 1);
        assert_ne!(group_key(&g, &a), group_key(&g, &c));
        // strict: no service label → falls through to the title group
        let d = event(EventStatus::Warning, "t", &[], 1);
        let e = event(EventStatus::Critical, "t", &[], 1);
        assert_eq!(group_key(&g, &d), group_key(&g, &e));
        assert_ne!(group_key(&g, &d), group_key(&g, &a));
        g.equals = vec![vec!["labels.service".into()]];
        assert_eq!(group_key(&g, &d), None);
        g.strict = false;
        assert!(group_key(&g, &d).is_some());
        g.method = GroupingMethod::None;
        assert_eq!(group_key(&g, &a), None);
    }

    #[test]
    fn windows() {
        let mut g = Grouping {
            method: GroupingMethod::Rules,
            window_minutes: 10,
            ..Default::default()
        };
        assert_eq!(merge_deadline(&g, 1_000, 5_000), 1_000 + 600_000);
        g.window_type = WindowType::Sliding;
        assert_eq!(merge_deadline(&g, 1_000, 5_000), 5_000 + 600_000);
        g.window_minutes = 0;
        assert_eq!(merge_deadline(&g, 1_000, 5_000), 0);
    }
}
