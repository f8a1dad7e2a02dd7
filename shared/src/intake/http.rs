//! The HTTP edge: a plain request/response pair the handlers work on (so
//! tests call handlers directly), the JSON envelope, and the Lambda adapters.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::hashing::random_hex;

/// A request as the handlers see it. Header names are lower-case.
#[derive(Clone, Debug, Default)]
pub struct Inbound {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Inbound {
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Inbound {
            method: method.to_string(),
            path: path.to_string(),
            query: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            ..Default::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .insert(name.to_ascii_lowercase(), value.to_string());
        self
    }

    pub fn json_body(self, body: impl Into<Vec<u8>>) -> Self {
        let mut me = self.header("content-type", "application/json");
        me.body = body.into();
        me
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn from_lambda(req: lambda_http::Request) -> Self {
        use lambda_http::RequestExt;
        let mut query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        if query.is_empty() {
            for (k, v) in req
                .query_string_parameters_ref()
                .into_iter()
                .flat_map(|m| m.iter())
            {
                query.insert(k.to_string(), v.to_string());
            }
        }
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let body = req.into_body().to_vec();
        Inbound {
            method,
            path,
            query,
            headers,
            body,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outbound {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Outbound {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `Content-Type` this answer is sent with: JSON unless a handler
    /// named another (the console's HTML).
    pub fn content_type(&self) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map_or("application/json", |(_, v)| v.as_str())
    }

    pub fn into_lambda(self) -> lambda_http::Response<lambda_http::Body> {
        let mut builder = lambda_http::Response::builder()
            .status(self.status)
            .header("content-type", self.content_type());
        let others = self
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        for (k, v) in others {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
            .body(lambda_http::Body::Text(self.body.clone()))
            .unwrap_or_else(|_| {
                let mut fallback = lambda_http::Response::new(lambda_http::Body::Text(self.body));
                *fallback.status_mut() = lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR;
                fallback
            })
    }
}

/// A fresh id for every request; it is in every response and every log line.
pub fn new_request_id() -> String {
    random_hex(16).unwrap_or_else(|_| format!("{:032x}", crate::domain::time::now_ms()))
}

/// The envelope for a handler's result, logged once with its outcome.
pub fn respond(request_id: &str, result: Result<Value, ApiError>) -> Outbound {
    match result {
        Ok(data) => {
            tracing::info!(status = 200, "request served");
            success(request_id, data)
        }
        Err(err) => {
            tracing::warn!(
                status = err.status(),
                code = err.code(),
                message = err.message(),
                "request refused"
            );
            failure(request_id, &err)
        }
    }
}

pub fn success(request_id: &str, data: Value) -> Outbound {
    Outbound {
        status: 200,
        headers: Vec::new(),
        body: json!({ "request_id": request_id, "data": data }).to_string(),
    }
}

pub fn failure(request_id: &str, err: &ApiError) -> Outbound {
    let mut headers = Vec::new();
    if let ApiError::RequestTooFrequently {
        retry_after_secs, ..
    } = err
    {
        headers.push(("retry-after".to_string(), retry_after_secs.to_string()));
    }
    Outbound {
        status: err.status(),
        headers,
        body: json!({
            "request_id": request_id,
            "error": { "code": err.code(), "message": err.message() }
        })
        .to_string(),
    }
}

/// The media type of a `Content-Type` header, lower-cased, parameters dropped.
pub fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type.map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}
