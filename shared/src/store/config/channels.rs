//! Channels: one item each, listed through gsi1.

use aws_sdk_dynamodb::operation::put_item::PutItemError;

use crate::error::{ApiError, ApiResult};
use crate::model::Channel;
use crate::store::items::*;
use crate::store::{storage_error, Store, GSI1};

impl Store {
    // ---- channels ----

    pub async fn create_channel(&self, channel: &Channel) -> ApiResult<()> {
        if self.put_new(channel_to_item(channel)?).await? {
            Ok(())
        } else {
            Err(ApiError::internal("channel id collision; retry"))
        }
    }

    pub async fn get_channel(&self, channel_id: &str) -> ApiResult<Option<Channel>> {
        self.get(channel_pk(channel_id), "CHANNEL")
            .await?
            .as_ref()
            .map(item_to_channel)
            .transpose()
    }

    pub async fn list_channels(&self) -> ApiResult<Vec<Channel>> {
        self.query_all(Some(GSI1), "gsi1pk", "CHANNELS".into())
            .await?
            .iter()
            .map(item_to_channel)
            .collect()
    }

    /// Replace a channel's settings; `Ok(false)` when it does not exist.
    pub async fn update_channel(&self, channel: &Channel) -> ApiResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(channel_to_item(channel)?))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(storage_error("PutItem", err)),
            },
        }
    }

    pub async fn delete_channel(&self, channel_id: &str) -> ApiResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(channel_pk(channel_id), "CHANNEL")))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| storage_error("DeleteItem", e))?;
        // Its rules go with it.
        self.delete_partition(&channel_pk(channel_id)).await?;
        Ok(out.attributes().is_some())
    }
}
