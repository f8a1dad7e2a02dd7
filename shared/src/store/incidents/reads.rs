//! Reading incidents and alerts for the management API.

use std::collections::{HashMap, HashSet};

use crate::error::{ApiError, ApiResult};
use crate::model::{Alert, Incident, IncidentStatus, StoredEvent};
use crate::store::items::*;
use crate::store::{storage_error, Store, Units, GSI1, GSI2};

/// Alerts a `GET /api/incidents/{id}` carries, and events a `GET /api/alerts/{id}`.
pub const PAGE_OF_ALERTS: usize = 100;
pub const PAGE_OF_EVENTS: usize = 100;

/// One page of incidents and where the next one starts.
pub struct IncidentPage {
    pub items: Vec<Incident>,
    /// Per status, the sort key to continue below; `None` when there is no more.
    pub next: Option<HashMap<String, String>>,
}

impl Store {
    // ---- incidents and alerts ----

    pub async fn get_incident_item(&self, incident_id: &str) -> ApiResult<Option<Item>> {
        self.get(incident_pk(incident_id), INCIDENT_SK).await
    }

    pub async fn get_incident(&self, incident_id: &str) -> ApiResult<Option<Incident>> {
        self.get_incident_item(incident_id)
            .await?
            .as_ref()
            .map(item_to_incident)
            .transpose()
    }

    /// The incident with its first page of alerts and where the next page
    /// starts (SPEC 16: a bounded read whatever the incident's size).
    pub async fn get_incident_with_alerts(
        &self,
        incident_id: &str,
    ) -> ApiResult<Option<(Incident, Option<String>)>> {
        let Some(mut incident) = self.get_incident(incident_id).await? else {
            return Ok(None);
        };
        let (alerts, next) = self
            .incident_alerts(incident_id, None, PAGE_OF_ALERTS)
            .await?;
        incident.alerts = Some(alerts);
        Ok(Some((incident, next)))
    }

    /// Which of these incidents are marked flapping (one BatchGetItem per
    /// 100, only the two attributes it needs).
    pub async fn flapping_incidents(&self, incident_ids: &[&str]) -> ApiResult<HashSet<String>> {
        let keys = incident_ids
            .iter()
            .map(|id| key(incident_pk(id), INCIDENT_SK))
            .collect();
        Ok(self
            .batch_get_projected(keys, "incident_id, flapping", &[])
            .await?
            .iter()
            .filter(|i| get_bool(i, "flapping").unwrap_or(false))
            .filter_map(|i| get_opt_s(i, "incident_id"))
            .collect())
    }

    /// One page of an incident's alerts, in the order of their records' sort
    /// keys (the alert id), after the record `after`: one Query and one
    /// BatchGetItem of the live heads.
    pub async fn incident_alerts(
        &self,
        incident_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ApiResult<(Vec<Alert>, Option<String>)> {
        let (records, next) = self
            .partition_page(incident_pk(incident_id), Some("ALERT#"), after, limit)
            .await?;
        let alerts = self.alerts_of_records(&records).await?;
        Ok((alerts, next))
    }

    /// The alerts these records stand for: archived snapshots as they are,
    /// live ones from their heads, read in one BatchGetItem per 100.
    async fn alerts_of_records(&self, records: &[Item]) -> ApiResult<Vec<Alert>> {
        let mut head_keys: Vec<String> = Vec::new();
        for r in records
            .iter()
            .filter(|r| !get_bool(r, "archived").unwrap_or(false))
        {
            let pk = head_pk(&get_s(r, "channel_id")?, &get_s(r, "alert_key")?);
            if !head_keys.contains(&pk) {
                head_keys.push(pk);
            }
        }
        let heads: HashMap<String, crate::model::AlertHead> = self
            .batch_get(head_keys.into_iter().map(|pk| key(pk, HEAD_SK)).collect())
            .await?
            .iter()
            .map(|item| Ok((get_s(item, "pk")?, item_to_head(item)?)))
            .collect::<ApiResult<_>>()?;
        let mut alerts = Vec::with_capacity(records.len());
        for r in records {
            if get_bool(r, "archived").unwrap_or(false) {
                alerts.push(alert_from_record(r)?);
                continue;
            }
            let alert_id = get_s(r, "alert_id")?;
            let pk = head_pk(&get_s(r, "channel_id")?, &get_s(r, "alert_key")?);
            match heads.get(&pk) {
                Some(h) if h.alert_id == alert_id => alerts.push(h.to_alert()),
                // The head moved on: the record is archived by now.
                _ => alerts.push(self.alert_from_record(r).await?),
            }
        }
        Ok(alerts)
    }

    /// The alert a record stands for: its snapshot once archived, else the live head.
    async fn alert_from_record(&self, record: &Item) -> ApiResult<Alert> {
        if get_bool(record, "archived").unwrap_or(false) {
            return alert_from_record(record);
        }
        let alert_id = get_s(record, "alert_id")?;
        let head = self
            .get_head(&get_s(record, "channel_id")?, &get_s(record, "alert_key")?)
            .await?;
        match head {
            Some(h) if h.alert_id == alert_id => Ok(h.to_alert()),
            // The head moved on after we read the record: the record is archived now.
            _ => {
                let fresh = self
                    .get(get_s(record, "pk")?, &get_s(record, "sk")?)
                    .await?
                    .ok_or_else(|| ApiError::internal("alert record vanished"))?;
                alert_from_record(&fresh)
            }
        }
    }

    /// The alert with its first page of events and where the next starts.
    pub async fn get_alert_with_events(
        &self,
        alert_id: &str,
    ) -> ApiResult<Option<(Alert, Option<String>)>> {
        let Some(record) = self.find_alert_record(alert_id).await? else {
            return Ok(None);
        };
        let mut alert = self.alert_from_record(&record).await?;
        let (events, next) = self
            .events_after(&record, alert_id, None, PAGE_OF_EVENTS)
            .await?;
        alert.events = Some(events);
        Ok(Some((alert, next)))
    }

    /// The alert, found through its record's listing in gsi1.
    pub async fn find_alert(&self, alert_id: &str) -> ApiResult<Option<Alert>> {
        match self.find_alert_record(alert_id).await? {
            Some(record) => Ok(Some(self.alert_from_record(&record).await?)),
            None => Ok(None),
        }
    }

    async fn find_alert_record(&self, alert_id: &str) -> ApiResult<Option<Item>> {
        // An id that names its incident: the record is in that partition
        // (one GetItem); other ids (and a random id that only looks so) are
        // listed in gsi1.
        if let Some(incident_id) = crate::ids::incident_named_by(alert_id) {
            let record = self
                .get(incident_pk(incident_id), &alert_record_sk(alert_id))
                .await?;
            if record.is_some() {
                return Ok(record);
            }
        }
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(format!("ALERT#{alert_id}")))
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, None);
        let Some(listed) = found.items().first() else {
            return Ok(None);
        };
        self.get(get_s(listed, "pk")?, &get_s(listed, "sk")?).await
    }

    /// One page of an alert's stored events, oldest first, after `after`
    /// (`None`: no such alert).
    pub async fn alert_events(
        &self,
        alert_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ApiResult<Option<(Vec<StoredEvent>, Option<String>)>> {
        let Some(record) = self.find_alert_record(alert_id).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.events_after(&record, alert_id, after, limit).await?,
        ))
    }

    /// The first event lives on the alert's record, the later ones in its
    /// history partition, and the `Ok` that closed it on its head (on its
    /// record once superseded); a page reads them in that order.
    async fn events_after(
        &self,
        record: &Item,
        alert_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ApiResult<(Vec<StoredEvent>, Option<String>)> {
        let mut events = Vec::new();
        let mut last = after.map(str::to_string);
        if after.is_none() {
            if let Some((sk, first)) = first_event_of(record)? {
                events.push(first);
                last = Some(sk);
            }
        }
        let room = limit.saturating_sub(events.len());
        let (items, next) = self
            .partition_page(events_pk(alert_id), None, last.as_deref(), room.max(1))
            .await?;
        if room == 0 {
            // A page of just the first event: is there more after it?
            let more = !items.is_empty() || self.closing_event(record).await?.is_some();
            return Ok((events, last.filter(|_| more)));
        }
        for item in &items {
            events.push(item_to_event(item)?);
            last = get_opt_s(item, "sk");
        }
        if next.is_some() {
            return Ok((events, next));
        }
        // The history items are read to the end: the closing event is last.
        let closing = self
            .closing_event(record)
            .await?
            .filter(|(sk, _)| last.as_deref().is_none_or(|l| sk.as_str() > l));
        match closing {
            Some((_, event)) if events.len() < limit => {
                events.push(event);
                Ok((events, None))
            }
            Some(_) => Ok((events, last)),
            None => Ok((events, None)),
        }
    }

    /// The `Ok` that closed the alert of `record`, with its sort key: on
    /// the record once superseded, else on the head while it is the head's.
    async fn closing_event(&self, record: &Item) -> ApiResult<Option<(String, StoredEvent)>> {
        if get_bool(record, "archived").unwrap_or(false) {
            return closing_event_entry(record);
        }
        let head = self
            .get(
                head_pk(&get_s(record, "channel_id")?, &get_s(record, "alert_key")?),
                HEAD_SK,
            )
            .await?;
        match head {
            Some(h) if get_opt_s(&h, "alert_id") == get_opt_s(record, "alert_id") => {
                closing_event_entry(&h)
            }
            // The head moved on since the record was read: a new alert
            // superseded this one, and its snapshot took the closing event.
            _ => match self
                .get(get_s(record, "pk")?, &get_s(record, "sk")?)
                .await?
            {
                Some(now) if get_bool(&now, "archived").unwrap_or(false) => {
                    closing_event_entry(&now)
                }
                _ => Ok(None),
            },
        }
    }

    /// Newest first, across the given statuses, `limit` at most. `bounds`
    /// (from the previous page) says where each status continues.
    pub async fn list_incidents(
        &self,
        channel_id: Option<&str>,
        statuses: &[IncidentStatus],
        limit: usize,
        bounds: &HashMap<String, String>,
    ) -> ApiResult<IncidentPage> {
        let mut fetched: Vec<(IncidentStatus, String, Item)> = Vec::new();
        let mut more_in: Vec<IncidentStatus> = Vec::new();
        for &status in statuses {
            let (index, pk_name, sk_name, scope) = match channel_id {
                Some(c) => (GSI1, "gsi1pk", "gsi1sk", incident_scope(c, status)),
                None => (GSI2, "gsi2pk", "gsi2sk", incident_scope_all(status)),
            };
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .scan_index_forward(false)
                .limit(limit as i32 + 1)
                .expression_attribute_values(":pk", s(scope));
            query = match bounds.get(status.as_str()) {
                Some(bound) => query
                    .key_condition_expression(format!("{pk_name} = :pk AND {sk_name} < :bound"))
                    .expression_attribute_values(":bound", s(bound)),
                None => query.key_condition_expression(format!("{pk_name} = :pk")),
            };
            let page = query.send().await.map_err(|e| storage_error("Query", e))?;
            let items = page.items();
            if items.len() > limit || page.last_evaluated_key().is_some() {
                more_in.push(status);
            }
            for item in items.iter().take(limit) {
                let sk = get_s(item, sk_name)?;
                fetched.push((status, sk, item.clone()));
            }
        }
        fetched.sort_by(|a, b| b.1.cmp(&a.1));
        let leftover = fetched.len() > limit;
        fetched.truncate(limit);
        let mut next = bounds.clone();
        for (status, sk, _) in &fetched {
            next.insert(status.as_str().to_string(), sk.clone());
        }
        let listed: Vec<Item> = fetched.iter().map(|(_, _, item)| item.clone()).collect();
        let items = self
            .items_listed(&listed)
            .await?
            .iter()
            .map(item_to_incident)
            // The index lags a status change by a moment: list what is still asked for.
            .filter(|i| i.as_ref().map_or(true, |i| statuses.contains(&i.status)))
            .collect::<ApiResult<Vec<_>>>()?;
        let has_more = leftover || !more_in.is_empty();
        Ok(IncidentPage {
            items,
            next: has_more.then_some(next),
        })
    }

    pub(crate) async fn require_incident(&self, incident_id: &str) -> ApiResult<Incident> {
        self.get_incident(incident_id).await?.ok_or_else(|| {
            ApiError::ResourceNotFound(format!("incident {incident_id} does not exist"))
        })
    }
}
