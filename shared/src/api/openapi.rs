//! `GET /api/openapi.json`: the OpenAPI 3.1 document of every push and
//! management route (SPEC 12), kept by hand beside the code. It is served
//! without an app key: it describes the API and holds no data.
//!
//! The integration tests check every real answer they receive against it and
//! that its paths are exactly the routers' (tests/openapi.rs), so it cannot
//! drift from what the service does.

use crate::intake::http::Outbound;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn document() -> Outbound {
    Outbound {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: DOCUMENT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_is_json_of_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }
}
