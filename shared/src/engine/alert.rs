//! What an event does to its alert and incident (SPEC section 5), decided
//! purely from the current state. The store reads the state, asks here, and
//! writes the answer with conditions, retrying with fresh state on conflict.

use std::collections::BTreeMap;

use crate::domain::event::{EventStatus, StandardEvent};
use crate::hashing::{absorb, short_hex, Sha256};
use crate::model::{AlertHead, ClosingEvent, StoredEvent};

pub use crate::domain::outcome::Outcome;

/// Layer-1 and layer-2 fingerprints of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Status, title, description and labels.
    pub content: String,
    /// Status, title and description.
    pub brief: String,
}

pub fn fingerprint(ev: &StandardEvent) -> Fingerprint {
    use sha2::Digest;
    // The content digest continues the brief one, so the shared prefix is hashed once.
    let mut hasher = Sha256::new();
    absorb(
        &mut hasher,
        &[
            ev.event_status.as_str(),
            ev.title.as_str(),
            ev.description.as_str(),
        ],
    );
    let brief = short_hex(hasher.clone());
    for (k, v) in &ev.labels {
        absorb(&mut hasher, &[k, v]);
    }
    Fingerprint {
        content: short_hex(hasher),
        brief,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to write; answer with this outcome.
    Nothing(Outcome),
    /// Layer 1: move the duplicate counter and the last-seen time.
    Duplicate,
    /// Layer 2: refresh the labels, store no event.
    Refresh,
    /// Store the event; the alert takes its fields.
    Update,
    /// Store the `Ok` event and close the alert.
    Recover,
    /// Open a new alert (and find or open its incident).
    Open,
    /// `Ok` for a closed alert, newer than anything applied: nothing visible
    /// changes, but the ordering watermark moves so that an older firing that
    /// arrives later cannot reopen the alert.
    Watermark,
}

/// How long after it was applied a re-sent event counts as a retry. Senders
/// whose event time is the alert's start (Alertmanager's `startsAt`) repeat
/// the same content and time for hours: past this window such a repeat is a
/// new observation (a duplicate, or a new alert after a close).
pub const RETRY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// At most this many same-time fingerprints are remembered per alert key.
pub const MAX_RECENT_CONTENTS: usize = 16;

pub fn decide(
    head: Option<&AlertHead>,
    ev: &StandardEvent,
    fp: &Fingerprint,
    now_ms: i64,
) -> Decision {
    if let Some(h) = head {
        if ev.event_time_ms < h.last_time_ms {
            return Decision::Nothing(Outcome::Ignored);
        }
        let retry = h
            .recent_contents
            .get(&fp.content)
            .is_some_and(|&at| now_ms - at < RETRY_WINDOW_MS);
        if ev.event_time_ms == h.last_time_ms && retry {
            return Decision::Nothing(Outcome::AlreadyApplied);
        }
        // Ties: a recovery is final. A firing stamped with the very time of
        // the `Ok` that closed the alert (or left the mark) is a retry or a
        // race the `Ok` already answered, not a new outage.
        if !h.active
            && h.event_status.is_ok()
            && !ev.event_status.is_ok()
            && ev.event_time_ms == h.last_time_ms
        {
            return Decision::Nothing(Outcome::Ignored);
        }
        if h.active {
            if ev.event_status.is_ok() {
                return Decision::Recover;
            }
            if fp.content == h.last_content {
                return Decision::Duplicate;
            }
            if fp.brief == h.last_brief {
                return Decision::Refresh;
            }
            return Decision::Update;
        }
        if ev.event_status.is_ok() {
            return Decision::Watermark;
        }
        return Decision::Open;
    }
    // An `Ok` for a key never seen: nothing to recover, but its time is
    // recorded so that a firing it overtook is recognised as stale.
    if ev.event_status.is_ok() {
        Decision::Watermark
    } else {
        Decision::Open
    }
}

/// Whether a channel's silence and inhibit rules are asked about an event:
/// it would open a new alert, or it is the next firing of a marked alert
/// (which stays marked, or lifts). Recoveries never are.
pub fn meets_channel_rules(head: Option<&AlertHead>, decision: Decision) -> bool {
    match decision {
        Decision::Open => true,
        Decision::Duplicate | Decision::Refresh | Decision::Update => {
            head.is_some_and(|h| h.active && h.is_marked())
        }
        _ => false,
    }
}

/// Ids for what `Open` creates.
pub struct NewAlert<'a> {
    pub alert_id: &'a str,
    pub incident_id: &'a str,
}

/// The fingerprints to remember after applying `ev`: those of the same event
/// time still inside the retry window, plus this one; at most MAX_RECENT_CONTENTS.
fn recent_after(
    head: Option<&AlertHead>,
    ev: &StandardEvent,
    fp: &Fingerprint,
    now_ms: i64,
) -> BTreeMap<String, i64> {
    let mut recent: BTreeMap<String, i64> = match head {
        Some(h) if h.last_time_ms == ev.event_time_ms => h
            .recent_contents
            .iter()
            .filter(|(_, &at)| now_ms - at < RETRY_WINDOW_MS)
            .map(|(k, &v)| (k.clone(), v))
            .collect(),
        _ => BTreeMap::new(),
    };
    recent.insert(fp.content.clone(), now_ms);
    while recent.len() > MAX_RECENT_CONTENTS {
        let oldest = recent
            .iter()
            .min_by_key(|(_, &at)| at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => recent.remove(&k),
            None => break,
        };
    }
    recent
}

/// The head after applying `decision`. `None` for decisions that write no head.
pub fn next_head(
    head: Option<&AlertHead>,
    channel_id: &str,
    ev: &StandardEvent,
    fp: &Fingerprint,
    decision: Decision,
    new_alert: Option<NewAlert<'_>>,
    now_ms: i64,
) -> Option<AlertHead> {
    let now_s = now_ms / 1000;
    let recent_contents = recent_after(head, ev, fp, now_ms);
    let version = head.map_or(0, |h| h.version) + 1;
    match (decision, head, new_alert) {
        (Decision::Open, _, Some(ids)) => Some(AlertHead {
            channel_id: channel_id.to_string(),
            alert_key: ev.alert_key.clone(),
            alert_id: ids.alert_id.to_string(),
            incident_id: ids.incident_id.to_string(),
            active: true,
            event_status: ev.event_status,
            severity: ev.event_status,
            title: ev.title.clone(),
            description: ev.description.clone(),
            labels: ev.labels.clone(),
            last_content: fp.content.clone(),
            last_brief: fp.brief.clone(),
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            event_count: 1,
            duplicate_count: 0,
            refresh_count: 0,
            created_at: now_s,
            last_event_at: now_s,
            closed_at: None,
            version,
            mark: None,
            source_keys: Vec::new(),
            closing_event: None,
        }),
        (Decision::Duplicate, Some(h), _) => Some(AlertHead {
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            event_count: h.event_count + 1,
            duplicate_count: h.duplicate_count + 1,
            last_event_at: now_s,
            version,
            ..h.clone()
        }),
        (Decision::Refresh, Some(h), _) => Some(AlertHead {
            labels: ev.labels.clone(),
            last_content: fp.content.clone(),
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            event_count: h.event_count + 1,
            refresh_count: h.refresh_count + 1,
            last_event_at: now_s,
            version,
            ..h.clone()
        }),
        (Decision::Update, Some(h), _) => Some(AlertHead {
            event_status: ev.event_status,
            severity: ev.event_status,
            title: ev.title.clone(),
            description: ev.description.clone(),
            labels: ev.labels.clone(),
            last_content: fp.content.clone(),
            last_brief: fp.brief.clone(),
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            event_count: h.event_count + 1,
            last_event_at: now_s,
            version,
            ..h.clone()
        }),
        (Decision::Recover, Some(h), _) => {
            let labels = labels_after_recovery(&h.labels, &ev.labels);
            Some(AlertHead {
                active: false,
                event_status: EventStatus::Ok,
                labels,
                last_content: fp.content.clone(),
                last_brief: fp.brief.clone(),
                last_time_ms: ev.event_time_ms,
                recent_contents: recent_contents.clone(),
                event_count: h.event_count + 1,
                last_event_at: now_s,
                closed_at: Some(now_s),
                version,
                closing_event: Some(ClosingEvent {
                    event: StoredEvent {
                        event_status: ev.event_status,
                        title: ev.title.clone(),
                        description: ev.description.clone(),
                        labels: ev.labels.clone(),
                        event_time: ev.event_time_ms / 1000,
                    },
                    event_time_ms: ev.event_time_ms,
                    sequence: h.event_count + 1,
                }),
                ..h.clone()
            })
        }
        (Decision::Watermark, Some(h), _) => Some(AlertHead {
            // The mark of an `Ok`: a firing at this very time is a tie it wins.
            event_status: EventStatus::Ok,
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            version,
            ..h.clone()
        }),
        // A placeholder: an ordering watermark with no alert behind it yet.
        (Decision::Watermark, None, _) => Some(AlertHead {
            channel_id: channel_id.to_string(),
            alert_key: ev.alert_key.clone(),
            alert_id: String::new(),
            incident_id: String::new(),
            active: false,
            event_status: EventStatus::Ok,
            severity: EventStatus::Info,
            title: ev.title.clone(),
            description: ev.description.clone(),
            labels: ev.labels.clone(),
            last_content: fp.content.clone(),
            last_brief: fp.brief.clone(),
            last_time_ms: ev.event_time_ms,
            recent_contents: recent_contents.clone(),
            event_count: 0,
            duplicate_count: 0,
            refresh_count: 0,
            created_at: now_s,
            last_event_at: now_s,
            closed_at: None,
            version,
            mark: None,
            source_keys: Vec::new(),
            closing_event: None,
        }),
        _ => None,
    }
}

/// A recovery adds only labels the alert lacks, never past the 50-label
/// limit nor the label byte budget, so that an `Ok` can always be stored.
pub fn labels_after_recovery(
    alert: &BTreeMap<String, String>,
    recovery: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    use crate::domain::event::{label_bytes, LABELS_MAX, LABELS_MAX_BYTES};
    let mut labels = alert.clone();
    let mut used: usize = labels.iter().map(|(k, v)| label_bytes(k, v)).sum();
    for (k, v) in recovery {
        if labels.len() >= LABELS_MAX {
            break;
        }
        if labels.contains_key(k) {
            continue;
        }
        used += label_bytes(k, v);
        if used > LABELS_MAX_BYTES {
            break;
        }
        labels.insert(k.clone(), v.clone());
    }
    labels
}

/// Whether the event changes what the incident shows as its severity set.
pub fn raises_incident_severity(head: &AlertHead, ev: &StandardEvent) -> bool {
    !ev.event_status.is_ok() && ev.event_status != head.severity
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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

    fn open(ev: &StandardEvent) -> AlertHead {
        let fp = fingerprint(ev);
        next_head(
            None,
            "ch",
            ev,
            &fp,
            Decision::Open,
            Some(NewAlert {
                alert_id: "a1",
                incident_id: "i1",
            }),
            100,
        )
        .unwrap()
    }

    fn step(head: &AlertHead, ev: &StandardEvent) -> (Decision, Option<AlertHead>) {
        let fp = fingerprint(ev);
        let d = decide(Some(head), ev, &fp, 200);
        (d, next_head(Some(head), "ch", ev, &fp, d, None, 200))
    }

    #[test]
    fn first_firing_opens_and_first_ok_is_ignored() {
        let fire = event(EventStatus::Warning, "t", &[], 1000);
        assert_eq!(decide(None, &fire, &fingerprint(&fire), 0), Decision::Open);
        let ok = event(EventStatus::Ok, "t", &[], 2000);
        assert_eq!(decide(None, &ok, &fingerprint(&ok), 0), Decision::Watermark);
        // The placeholder it leaves makes the firing it overtook stale.
        let fp = fingerprint(&ok);
        let placeholder = next_head(None, "ch", &ok, &fp, Decision::Watermark, None, 0).unwrap();
        assert!(!placeholder.active && placeholder.alert_id.is_empty());
        assert_eq!(
            decide(Some(&placeholder), &fire, &fingerprint(&fire), 0),
            Decision::Nothing(Outcome::Ignored)
        );
    }

    #[test]
    fn identical_newer_event_is_a_duplicate_and_moves_counters_only() {
        let h = open(&event(EventStatus::Warning, "t", &[("a", "1")], 1000));
        let (d, next) = step(&h, &event(EventStatus::Warning, "t", &[("a", "1")], 2000));
        assert_eq!(d, Decision::Duplicate);
        let next = next.unwrap();
        assert_eq!(
            (next.event_count, next.duplicate_count, next.last_time_ms),
            (2, 1, 2000)
        );
        assert_eq!(next.labels, h.labels);
    }

    #[test]
    fn retry_of_the_same_event_changes_nothing() {
        let ev = event(EventStatus::Warning, "t", &[], 1000);
        let h = open(&ev);
        assert_eq!(step(&h, &ev).0, Decision::Nothing(Outcome::AlreadyApplied));
    }

    #[test]
    fn same_second_different_event_applies_and_its_retry_does_not() {
        let h = open(&event(EventStatus::Warning, "t", &[], 1000));
        let crit = event(EventStatus::Critical, "t", &[], 1000);
        let (d, next) = step(&h, &crit);
        assert_eq!(d, Decision::Update);
        let next = next.unwrap();
        assert_eq!(next.recent_contents.len(), 2);
        // A retry of the first event, arriving after the second, must not flip the alert back.
        assert_eq!(
            step(&next, &event(EventStatus::Warning, "t", &[], 1000)).0,
            Decision::Nothing(Outcome::AlreadyApplied)
        );
    }

    #[test]
    fn same_content_and_time_after_the_retry_window_is_new_again() {
        let ev = event(EventStatus::Warning, "t", &[], 1000);
        let h = open(&ev);
        let fp = fingerprint(&ev);
        let later = 100 + RETRY_WINDOW_MS;
        // Still firing, same startsAt hours later: a duplicate, not a retry.
        assert_eq!(decide(Some(&h), &ev, &fp, later), Decision::Duplicate);
        // Closed meanwhile (by hand): the repeat opens a new alert.
        let closed = AlertHead {
            active: false,
            ..h.clone()
        };
        assert_eq!(decide(Some(&closed), &ev, &fp, later), Decision::Open);
        // Remembered fingerprints expire and are bounded.
        let dup = next_head(Some(&h), "ch", &ev, &fp, Decision::Duplicate, None, later).unwrap();
        assert_eq!(dup.recent_contents.len(), 1);
        let mut many = h.clone();
        for i in 0..40 {
            let e = event(EventStatus::Warning, &format!("t{i}"), &[], 1000);
            many = next_head(
                Some(&many),
                "ch",
                &e,
                &fingerprint(&e),
                Decision::Update,
                None,
                200 + i,
            )
            .unwrap();
        }
        assert_eq!(many.recent_contents.len(), MAX_RECENT_CONTENTS);
    }

    #[test]
    fn label_change_only_is_a_refresh() {
        let h = open(&event(EventStatus::Warning, "t", &[("a", "1")], 1000));
        let (d, next) = step(&h, &event(EventStatus::Warning, "t", &[("a", "2")], 2000));
        assert_eq!(d, Decision::Refresh);
        let next = next.unwrap();
        assert_eq!(next.labels["a"], "2");
        assert_eq!((next.event_count, next.refresh_count), (2, 1));
    }

    #[test]
    fn status_change_is_an_update() {
        let h = open(&event(EventStatus::Warning, "t", &[], 1000));
        let (d, next) = step(&h, &event(EventStatus::Critical, "t2", &[], 2000));
        assert_eq!(d, Decision::Update);
        let next = next.unwrap();
        assert_eq!(
            (next.severity, next.title.as_str()),
            (EventStatus::Critical, "t2")
        );
    }

    #[test]
    fn ok_recovers_and_only_adds_missing_labels() {
        let h = open(&event(EventStatus::Warning, "t", &[("a", "1")], 1000));
        let (d, next) = step(
            &h,
            &event(EventStatus::Ok, "t", &[("a", "9"), ("b", "2")], 2000),
        );
        assert_eq!(d, Decision::Recover);
        let next = next.unwrap();
        assert!(!next.active);
        assert_eq!(
            next.labels,
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert_eq!(next.severity, EventStatus::Warning);
    }

    #[test]
    fn recovery_never_grows_labels_past_the_limit() {
        let a: Vec<String> = (0..50).map(|i| format!("a{i}")).collect();
        let b: Vec<String> = (0..50).map(|i| format!("b{i}")).collect();
        let many: Vec<(&str, &str)> = a.iter().map(|k| (k.as_str(), "v")).collect();
        let more: Vec<(&str, &str)> = b.iter().map(|k| (k.as_str(), "v")).collect();
        let h = open(&event(EventStatus::Warning, "t", &many, 1000));
        let (_, rec) = step(&h, &event(EventStatus::Ok, "t", &more, 2000));
        assert_eq!(rec.unwrap().labels.len(), 50);
    }

    #[test]
    fn late_firing_never_reopens_and_late_ok_never_closes() {
        let h = open(&event(EventStatus::Warning, "t", &[], 1000));
        let (_, recovered) = step(&h, &event(EventStatus::Ok, "t", &[], 3000));
        let recovered = recovered.unwrap();
        assert_eq!(
            step(&recovered, &event(EventStatus::Critical, "t", &[], 2000)).0,
            Decision::Nothing(Outcome::Ignored)
        );
        let (_, newer) = step(&h, &event(EventStatus::Critical, "t", &[], 5000));
        assert_eq!(
            step(&newer.unwrap(), &event(EventStatus::Ok, "t", &[], 4000)).0,
            Decision::Nothing(Outcome::Ignored)
        );
    }

    #[test]
    fn closed_alert_reopens_on_next_newer_firing() {
        let h = open(&event(EventStatus::Warning, "t", &[], 1000));
        let (_, closed) = step(&h, &event(EventStatus::Ok, "t", &[], 2000));
        assert_eq!(
            step(
                &closed.unwrap(),
                &event(EventStatus::Warning, "t", &[], 3000)
            )
            .0,
            Decision::Open
        );
    }

    #[test]
    fn newer_ok_on_closed_alert_moves_the_watermark() {
        let h = open(&event(EventStatus::Warning, "t", &[], 1000));
        let (_, closed) = step(&h, &event(EventStatus::Ok, "t", &[], 2000));
        let (d, wm) = step(&closed.unwrap(), &event(EventStatus::Ok, "t", &[], 5000));
        assert_eq!(d, Decision::Watermark);
        let wm = wm.unwrap();
        assert!(!wm.active);
        assert_eq!(
            step(&wm, &event(EventStatus::Warning, "t", &[], 4000)).0,
            Decision::Nothing(Outcome::Ignored)
        );
    }

    #[test]
    fn fingerprints_separate_layers() {
        let a = fingerprint(&event(EventStatus::Warning, "t", &[("a", "1")], 1));
        let b = fingerprint(&event(EventStatus::Warning, "t", &[("a", "2")], 2));
        assert_eq!(a.brief, b.brief);
        assert_ne!(a.content, b.content);
    }
}
