//! Route memory: the channels a key's firing went to through a shared
//! integration, so that its `Ok` reaches them whatever the routes say.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::WriteFailure;
use crate::domain::event::StandardEvent;
use crate::error::ApiResult;
use crate::model::Channel;
use crate::store::items::*;
use crate::store::{build_error, Store};

impl Store {
    /// Remember that `ev`'s key fired into `channel` through a shared integration.
    pub(super) fn route_memory_update(
        &self,
        integration_id: &str,
        channel: &Channel,
        ev: &StandardEvent,
        now_ms: i64,
    ) -> Result<TransactWriteItem, WriteFailure> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                route_memory_pk(integration_id, &ev.alert_key),
                ROUTE_MEMORY_SK,
            )))
            .update_expression("ADD channel_ids :channel SET expires_at = :expires")
            .expression_attribute_values(
                ":channel",
                AttributeValue::Ss(vec![channel.channel_id.clone()]),
            )
            .expression_attribute_values(":expires", n(now_ms / 1000 + super::ROUTE_MEMORY_SECS))
            .build()
            .map_err(|e| WriteFailure::Fatal(build_error(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The channels the firing of `alert_key` went to through this shared
    /// integration: where its `Ok` must go, whatever the routes say.
    pub async fn remembered_channels(
        &self,
        integration_id: &str,
        alert_key: &str,
    ) -> ApiResult<Vec<String>> {
        Ok(self
            .get(route_memory_pk(integration_id, alert_key), ROUTE_MEMORY_SK)
            .await?
            .map(|i| get_list(&i, "channel_ids"))
            .unwrap_or_default())
    }
}
