//! Recounts the table and checks the invariants of SPEC section 5 that must
//! hold however events were interleaved. Returns the order-independent
//! projection of the state, for comparing a concurrent run with a sequential one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use shared::app::App;
use shared::store::items::{get_bool, get_n, get_opt_s, get_s, item_to_head};

type Item = HashMap<String, AttributeValue>;

/// An open alert as the projection sees it: (status, title, labels).
pub type OpenAlertView = (String, String, BTreeMap<String, String>);

/// What must be the same whatever order the events arrived in.
#[derive(Debug, PartialEq, Eq)]
pub struct Projection {
    /// Per alert key: is its alert open, and if so its (status, title, labels).
    pub alerts: BTreeMap<String, Option<OpenAlertView>>,
    /// Per open incident: the keys of its open alerts.
    pub open_incidents: BTreeSet<BTreeSet<String>>,
}

#[derive(Debug, Default)]
pub struct Totals {
    pub alerts: i64,
    pub incidents: i64,
    pub incident_alert_count: i64,
    pub event_count: i64,
}

fn s_of(item: &Item, name: &str) -> String {
    get_opt_s(item, name).unwrap_or_default()
}

/// Scan until two consecutive scans agree. A request that timed out on the
/// client may still land in DynamoDB afterwards, and a Scan is not isolated
/// from a transaction in flight: checking a moving table would see half of one.
async fn settled_items(app: &App) -> Vec<Item> {
    let mut previous = crate::table_dump(app).await;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let now = crate::table_dump(app).await;
        if now == previous {
            break;
        }
        previous = now;
    }
    crate::scan_all(app).await
}

pub async fn check(app: &App) -> (Projection, Totals) {
    let items = settled_items(app).await;
    let mut heads = Vec::new();
    let mut incidents: BTreeMap<String, Item> = BTreeMap::new();
    let mut records: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    let mut events_per_alert: BTreeMap<String, i64> = BTreeMap::new();
    for item in &items {
        let (pk, sk) = (s_of(item, "pk"), s_of(item, "sk"));
        if sk == "HEAD" {
            let head = item_to_head(item).expect("head decodes");
            // Only open, unmarked alerts are inhibition sources.
            assert!(
                head.source_keys.is_empty() || (head.active && head.mark.is_none()),
                "key {}: a closed or marked alert is in the index of sources",
                head.alert_key
            );
            heads.push(head);
        } else if sk == "INCIDENT" {
            incidents.insert(s_of(item, "incident_id"), item.clone());
        } else if sk.starts_with("ALERT#") {
            records
                .entry(s_of(item, "incident_id"))
                .or_default()
                .push(item.clone());
        } else if let Some(alert_id) = pk.strip_prefix("EV#") {
            *events_per_alert.entry(alert_id.to_string()).or_default() += 1;
        }
    }
    let head_by_alert: HashMap<&str, &shared::model::AlertHead> =
        heads.iter().map(|h| (h.alert_id.as_str(), h)).collect();

    let mut totals = Totals {
        incidents: incidents.len() as i64,
        ..Default::default()
    };
    let mut open_incidents = BTreeSet::new();
    for (incident_id, incident) in &incidents {
        let members = records.get(incident_id).cloned().unwrap_or_default();
        let alert_count = get_n(incident, "alert_count").expect("alert_count");
        let active = get_n(incident, "active_alert_count").expect("active_alert_count");
        assert_eq!(
            alert_count,
            members.len() as i64,
            "incident {incident_id}: alert_count vs records"
        );
        let open_keys: BTreeSet<String> = members
            .iter()
            .filter(|r| !get_bool(r, "archived").unwrap_or(false))
            .filter_map(|r| head_by_alert.get(s_of(r, "alert_id").as_str()))
            .filter(|h| h.active)
            .map(|h| h.alert_key.clone())
            .collect();
        assert_eq!(
            active,
            open_keys.len() as i64,
            "incident {incident_id}: active_alert_count vs open alerts"
        );
        let status = s_of(incident, "status");
        if status == "Closed" {
            assert_eq!(active, 0, "closed incident {incident_id} has open alerts");
        } else {
            open_incidents.insert(open_keys);
        }
        totals.incident_alert_count += alert_count;
    }

    let mut alerts = BTreeMap::new();
    let mut keys_seen = BTreeSet::new();
    for h in &heads {
        assert!(
            keys_seen.insert((h.channel_id.clone(), h.alert_key.clone())),
            "two heads for one key"
        );
        if h.alert_id.is_empty() {
            // The mark an `Ok` leaves for a key that has no alert yet: no
            // alert, no record, never open.
            assert!(!h.active, "key {}: a placeholder head is open", h.alert_key);
            alerts.insert(h.alert_key.clone(), None);
            continue;
        }
        let live: Vec<&Item> = records
            .values()
            .flatten()
            .filter(|r| {
                s_of(r, "alert_key") == h.alert_key && s_of(r, "channel_id") == h.channel_id
            })
            .filter(|r| !get_bool(r, "archived").unwrap_or(false))
            .collect();
        assert_eq!(
            live.len(),
            1,
            "key {}: exactly one current alert record",
            h.alert_key
        );
        assert_eq!(
            s_of(live[0], "alert_id"),
            h.alert_id,
            "key {}: record is the head's alert",
            h.alert_key
        );
        if h.incident_id.is_empty() {
            // Silenced or inhibited: in no incident, its record beside its head.
            assert!(
                h.mark.is_some(),
                "key {}: in no incident but not marked",
                h.alert_key
            );
            assert_eq!(
                s_of(live[0], "pk"),
                format!("AK#{}#{}", h.channel_id, h.alert_key),
                "key {}: a marked alert's record lives beside its head",
                h.alert_key
            );
        } else {
            assert!(
                incidents.contains_key(&h.incident_id),
                "key {}: its incident exists",
                h.alert_key
            );
        }
        let view = h.active.then(|| {
            (
                h.event_status.as_str().to_string(),
                h.title.clone(),
                h.labels.clone(),
            )
        });
        alerts.insert(h.alert_key.clone(), view);
    }
    // Every alert (live or archived): stored history = event_count - duplicates - refreshes.
    for r in records.values().flatten() {
        let alert_id = s_of(r, "alert_id");
        let archived = get_bool(r, "archived").unwrap_or(false);
        let counts = if archived {
            (
                get_n(r, "event_count").unwrap(),
                get_n(r, "duplicate_count").unwrap(),
                get_n(r, "refresh_count").unwrap_or(0),
            )
        } else {
            let h = head_by_alert[alert_id.as_str()];
            (h.event_count, h.duplicate_count, h.refresh_count)
        };
        // The first event lives on the record; later ones are items, but for
        // the `Ok` that closed it, on its head (on its record once archived).
        let on_record = i64::from(r.contains_key("first_event"));
        let closing = if archived {
            r.contains_key("closing_event")
        } else {
            head_by_alert[alert_id.as_str()].closing_event.is_some()
        };
        let stored =
            events_per_alert.get(&alert_id).copied().unwrap_or(0) + on_record + i64::from(closing);
        assert_eq!(
            counts.0 - counts.1 - counts.2,
            stored,
            "alert {alert_id}: counters vs stored events"
        );
        totals.event_count += counts.0;
        totals.alerts += 1;
        let _ = get_s(r, "incident_id").expect("record names its incident (empty: none)");
    }
    // Each alert of an incident has one opening entry (`i_new` or `a_merge`)
    // in its timeline, which reads in order across pages whether the entry is
    // an item of its own or carried by the alert's record.
    for incident_id in incidents.keys() {
        let mut cursor: Option<String> = None;
        let mut seen = BTreeSet::new();
        let mut opened = Vec::new();
        let mut last_key = String::new();
        loop {
            let (page, next) = app
                .store
                .timeline(incident_id, 9, cursor.as_deref())
                .await
                .expect("timeline page");
            for entry in &page {
                assert!(
                    seen.insert(entry.entry_id.clone()),
                    "incident {incident_id}: entry {} served twice",
                    entry.entry_id
                );
                if entry.kind == "i_new" || entry.kind == "a_merge" {
                    opened.push(entry.detail["alert_id"].as_str().unwrap_or("").to_string());
                }
            }
            match next {
                Some(c) => {
                    assert!(c > last_key, "incident {incident_id}: cursor goes back");
                    last_key = c.clone();
                    cursor = Some(c);
                }
                None => break,
            }
        }
        let mut members: Vec<String> = records
            .get(incident_id)
            .into_iter()
            .flatten()
            .map(|r| s_of(r, "alert_id"))
            .collect();
        members.sort();
        opened.sort();
        assert_eq!(
            opened, members,
            "incident {incident_id}: one opening entry per alert"
        );
    }
    (
        Projection {
            alerts,
            open_incidents,
        },
        totals,
    )
}
