//! Stream records in the Lambda event's JSON (DynamoDB JSON images), and a
//! reader of DynamoDB Local's stream that produces them: the tests feed the
//! notify core with it, and `make run`'s pump (`alertctl pump-stream`) sends
//! them to `cargo lambda watch`. In AWS, Lambda's event source mapping does
//! this reading.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::store::items::Item;

/// A DynamoDB JSON value (`{"S": "x"}`) as the SDK's attribute value.
pub fn attr_from_json(v: &Value) -> Option<AttributeValue> {
    let (tag, inner) = v.as_object()?.iter().next()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_string()),
        "N" => AttributeValue::N(inner.as_str()?.to_string()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "B" => AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(inner.as_str()?)
                .ok()?,
        )),
        "M" => AttributeValue::M(item_from_json(inner)?),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(attr_from_json)
                .collect::<Option<_>>()?,
        ),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        _ => return None,
    })
}

/// A DynamoDB JSON map as an item; `None` when anything in it is malformed.
pub fn item_from_json(v: &Value) -> Option<Item> {
    v.as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), attr_from_json(v)?)))
        .collect()
}

/// A stream record's image (`serde_dynamo::Item`; empty when the record has none).
pub fn image<T: serde::Serialize>(item: &T) -> Item {
    serde_json::to_value(item)
        .ok()
        .and_then(|v| item_from_json(&v))
        .unwrap_or_default()
}

fn stream_value_json(v: &StreamValue) -> Value {
    match v {
        StreamValue::S(s) => json!({ "S": s }),
        StreamValue::N(n) => json!({ "N": n }),
        StreamValue::Bool(b) => json!({ "BOOL": b }),
        StreamValue::Null(_) => json!({ "NULL": true }),
        StreamValue::B(b) => {
            json!({ "B": base64::engine::general_purpose::STANDARD.encode(b.as_ref()) })
        }
        StreamValue::M(m) => json!({ "M": stream_item_json(m) }),
        StreamValue::L(l) => json!({ "L": l.iter().map(stream_value_json).collect::<Vec<_>>() }),
        StreamValue::Ss(s) => json!({ "SS": s }),
        StreamValue::Ns(s) => json!({ "NS": s }),
        StreamValue::Bs(s) => json!({ "BS": s
            .iter()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
            .collect::<Vec<_>>() }),
        _ => json!({ "NULL": true }),
    }
}

fn stream_item_json(m: &HashMap<String, StreamValue>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), stream_value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// A record read from the Streams API, as Lambda's event carries it.
pub fn record_json(r: &Record, stream_arn: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(d) = r.dynamodb() {
        if let Some(t) = d.approximate_creation_date_time() {
            dynamodb.insert(
                "ApproximateCreationDateTime".into(),
                json!(t.as_secs_f64().floor()),
            );
        }
        for (name, image) in [
            ("Keys", d.keys()),
            ("NewImage", d.new_image()),
            ("OldImage", d.old_image()),
        ] {
            if let Some(m) = image {
                dynamodb.insert(name.into(), stream_item_json(m));
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(d.sequence_number()));
        dynamodb.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or(0)));
        dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    }
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region().unwrap_or("us-east-1"),
        "eventSourceARN": stream_arn,
        "dynamodb": Value::Object(dynamodb),
    })
}

/// Reads every shard of a table's stream from where it last stopped.
pub struct LocalStream {
    client: aws_sdk_dynamodbstreams::Client,
    pub stream_arn: String,
    /// Per shard, the iterator to continue from (`None`: the shard is closed).
    iterators: HashMap<String, Option<String>>,
    /// Start new shards at their oldest record (`true`) or at their newest.
    from_start: bool,
}

fn stream_error<E: std::error::Error + 'static>(op: &str, e: E) -> ApiError {
    let detail = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
    tracing::error!(operation = op, error = %detail, "dynamodb streams request failed");
    ApiError::internal(format!("stream request {op} failed: {detail}"))
}

impl LocalStream {
    /// The table's latest stream; `from_start`: read its records from the oldest.
    pub async fn open(
        dynamodb: &aws_sdk_dynamodb::Client,
        table: &str,
        from_start: bool,
    ) -> ApiResult<LocalStream> {
        let described = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| stream_error("DescribeTable", e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| ApiError::internal("the table has no stream"))?
            .to_string();
        // The environment's region and credentials, the local endpoint of the
        // table's client, one rustls+ring HTTP client (as the table's).
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http.clone())
            .load()
            .await;
        let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
        config.set_endpoint_url(std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok());
        config.set_http_client(Some(
            aws_smithy_runtime_api::client::http::SharedHttpClient::new(TypeEmptyMaps {
                inner: http.clone(),
            }),
        ));
        let client = aws_sdk_dynamodbstreams::Client::from_conf(config.build());
        Ok(LocalStream {
            client,
            stream_arn,
            iterators: HashMap::new(),
            from_start,
        })
    }

    /// Every record written since the last call, shard by shard (in order
    /// within a shard), as Lambda event records.
    pub async fn poll(&mut self) -> ApiResult<Vec<Value>> {
        let described = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| stream_error("DescribeStream", e))?;
        let shards: Vec<String> = described
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::new();
        for shard in shards {
            if !self.iterators.contains_key(&shard) {
                let kind = if self.from_start {
                    ShardIteratorType::TrimHorizon
                } else {
                    ShardIteratorType::Latest
                };
                let it = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard)
                    .shard_iterator_type(kind)
                    .send()
                    .await
                    .map_err(|e| stream_error("GetShardIterator", e))?;
                self.iterators
                    .insert(shard.clone(), it.shard_iterator().map(str::to_string));
            }
            while let Some(Some(iterator)) = self.iterators.get(&shard).cloned() {
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(1000)
                    .send()
                    .await
                    .map_err(|e| stream_error("GetRecords", e))?;
                let records = page.records();
                out.extend(records.iter().map(|r| record_json(r, &self.stream_arn)));
                self.iterators.insert(
                    shard.clone(),
                    page.next_shard_iterator().map(str::to_string),
                );
                if records.is_empty() {
                    break;
                }
            }
        }
        // New shards are read from their start: they only hold new records.
        self.from_start = true;
        Ok(out)
    }
}

/// DynamoDB Local writes an empty map attribute into stream records as `{}`
/// (no `M` tag), which the SDK refuses to parse. The stream client's HTTP
/// client tags them in every answer before the SDK reads it.
#[derive(Debug)]
struct TypeEmptyMaps {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

#[derive(Debug)]
struct TypeEmptyMapsConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
}

impl aws_smithy_runtime_api::client::http::HttpClient for TypeEmptyMaps {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(TypeEmptyMapsConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for TypeEmptyMapsConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use http_body_util::BodyExt;
        let inner = self.inner.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            let body = std::mem::replace(
                response.body_mut(),
                aws_smithy_types::body::SdkBody::taken(),
            );
            let bytes = body
                .collect()
                .await
                .map_err(aws_smithy_runtime_api::client::result::ConnectorError::io)?
                .to_bytes();
            let fixed = match serde_json::from_slice::<Value>(&bytes) {
                Ok(mut v) => {
                    if let Some(records) = v.get_mut("Records").and_then(Value::as_array_mut) {
                        for r in records {
                            for name in ["Keys", "NewImage", "OldImage"] {
                                if let Some(image) =
                                    r.get_mut("dynamodb").and_then(|d| d.get_mut(name))
                                {
                                    tag_empty_maps(image);
                                }
                            }
                        }
                    }
                    serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
                }
                Err(_) => bytes.to_vec(),
            };
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(fixed);
            Ok(response)
        })
    }
}

fn tag_empty_maps(item: &mut Value) {
    let Some(attributes) = item.as_object_mut() else {
        return;
    };
    for value in attributes.values_mut() {
        match value.as_object_mut() {
            Some(o) if o.is_empty() => *value = json!({ "M": {} }),
            Some(o) => {
                if let Some(m) = o.get_mut("M") {
                    tag_empty_maps(m);
                }
                if let Some(Value::Array(list)) = o.get_mut("L") {
                    for element in list {
                        let mut wrapper = json!({ "x": element.take() });
                        tag_empty_maps(&mut wrapper);
                        *element = wrapper["x"].take();
                    }
                }
            }
            None => {}
        }
    }
}

/// Lambda event records from their JSON.
pub fn records(values: &[Value]) -> Vec<EventRecord> {
    values
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_json_round_trip() {
        let v = json!({"a": {"S": "x"}, "n": {"N": "5"}, "l": {"L": [{"BOOL": true}]},
                       "m": {"M": {"k": {"SS": ["p", "q"]}}}});
        let item = item_from_json(&v).unwrap();
        assert_eq!(item["a"], AttributeValue::S("x".into()));
        assert_eq!(item["n"], AttributeValue::N("5".into()));
        assert_eq!(
            item["l"],
            AttributeValue::L(vec![AttributeValue::Bool(true)])
        );
        assert!(item_from_json(&json!({"a": {"X": 1}})).is_none());
    }

    #[test]
    fn lambda_records_parse_and_give_their_images() {
        let v = json!({
            "eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1.0,
                "Keys": {"pk": {"S": "INC#1"}, "sk": {"S": "INCIDENT"}},
                "NewImage": {"pk": {"S": "INC#1"}, "alert_count": {"N": "2"}},
                "SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        });
        let recs = records(&[v]);
        assert_eq!(recs.len(), 1);
        let new = image(&recs[0].change.new_image);
        assert_eq!(new["alert_count"], AttributeValue::N("2".into()));
        assert!(image(&recs[0].change.old_image).is_empty());
    }
}
