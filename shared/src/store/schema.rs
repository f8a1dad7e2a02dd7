//! The table definition, for local runs and tests. `infra/template.yaml`
//! declares the same table for AWS; tests/infra_consistency checks they agree.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::{build_error, storage_error, GSI1, GSI2, GSI3, GSI3_PROJECTION};
use crate::error::ApiResult;

pub const TTL_ATTRIBUTE: &str = "expires_at";

fn attr(name: &str) -> ApiResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn key_schema(hash: &str, range: &str) -> ApiResult<Vec<KeySchemaElement>> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()
            .map_err(build_error)?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()
            .map_err(build_error)?,
    ])
}

/// An index of keys only: updates that leave its keys alone (an incident's
/// counters, a delivery's status) never write to it, and lists read the items
/// it names with one BatchGetItem.
fn gsi(name: &str, hash: &str, range: &str) -> ApiResult<GlobalSecondaryIndex> {
    gsi_projecting(name, hash, range, None)
}

/// An index projecting `include` besides the keys, or the keys only.
fn gsi_projecting(
    name: &str,
    hash: &str,
    range: &str,
    include: Option<&[&str]>,
) -> ApiResult<GlobalSecondaryIndex> {
    let projection = match include {
        Some(names) => Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(names.iter().map(|n| n.to_string()).collect()))
            .build(),
        None => Projection::builder()
            .projection_type(ProjectionType::KeysOnly)
            .build(),
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(key_schema(hash, range)?))
        .projection(projection)
        .build()
        .map_err(build_error)
}

/// Create the table if it does not exist yet, with its stream (the notify
/// function's feed). Returns whether it was created.
pub async fn create_table(client: &Client, table: &str) -> ApiResult<bool> {
    create_table_with(client, table, true).await
}

/// [`create_table`], with or without the stream. DynamoDB Local serialises
/// writes to a streamed table behind a lock that times out under heavy
/// contention on one item ("This request will succeed in actual DynamoDB
/// API"); tests that hammer a single item locally create theirs without it.
pub async fn create_table_with(client: &Client, table: &str, stream: bool) -> ApiResult<bool> {
    let exists = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok();
    if exists {
        return Ok(false);
    }
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            attr("pk")?,
            attr("sk")?,
            attr("gsi1pk")?,
            attr("gsi1sk")?,
            attr("gsi2pk")?,
            attr("gsi2sk")?,
            attr("gsi3pk")?,
            attr("gsi3sk")?,
            attr("gsi4pk")?,
            attr("gsi4sk")?,
        ]))
        .set_key_schema(Some(key_schema("pk", "sk")?))
        .global_secondary_indexes(gsi(GSI1, "gsi1pk", "gsi1sk")?)
        .global_secondary_indexes(gsi(GSI2, "gsi2pk", "gsi2sk")?)
        .global_secondary_indexes(gsi_projecting(
            GSI3,
            "gsi3pk",
            "gsi3sk",
            Some(GSI3_PROJECTION),
        )?)
        .global_secondary_indexes(gsi(super::retries::GSI4, "gsi4pk", "gsi4sk")?)
        // The notify function's feed (SPEC 11): every change with both images.
        .set_stream_specification(if stream {
            Some(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(build_error)?,
            )
        } else {
            None
        })
        .send()
        .await
        .map_err(|e| storage_error("CreateTable", e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| storage_error("UpdateTimeToLive", e))?;
    Ok(true)
}
