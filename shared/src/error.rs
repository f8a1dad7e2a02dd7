//! The one error type of the service. Every failure a caller can see is one of
//! these variants, and each maps to exactly one `code` and HTTP status.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    InvalidParameter(String),
    InvalidContentType(String),
    MethodNotAllowed(String),
    Unauthorized(String),
    AccessDenied(String),
    RouteNotFound(String),
    /// A management-API resource (incident, alert, channel, integration) that does not exist.
    ResourceNotFound(String),
    RequestTooFrequently {
        message: String,
        retry_after_secs: u64,
    },
    /// Storage failures, exhausted conflict retries. The message is safe to show.
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter(_) => "InvalidParameter",
            ApiError::InvalidContentType(_) => "InvalidContentType",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::AccessDenied(_) => "AccessDenied",
            ApiError::RouteNotFound(_) => "RouteNotFound",
            ApiError::ResourceNotFound(_) => "ResourceNotFound",
            ApiError::RequestTooFrequently { .. } => "RequestTooFrequently",
            ApiError::Internal(_) => "InternalError",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidParameter(_)
            | ApiError::InvalidContentType(_)
            | ApiError::MethodNotAllowed(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::AccessDenied(_) => 403,
            ApiError::RouteNotFound(_) | ApiError::ResourceNotFound(_) => 404,
            ApiError::RequestTooFrequently { .. } => 429,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::InvalidParameter(m)
            | ApiError::InvalidContentType(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::Unauthorized(m)
            | ApiError::AccessDenied(m)
            | ApiError::RouteNotFound(m)
            | ApiError::ResourceNotFound(m)
            | ApiError::Internal(m) => m,
            ApiError::RequestTooFrequently { message, .. } => message,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidParameter(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal(message.into())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_status_the_spec_pairs_it_with() {
        let pairs = [
            (ApiError::invalid("x"), "InvalidParameter", 400),
            (
                ApiError::InvalidContentType("x".into()),
                "InvalidContentType",
                400,
            ),
            (
                ApiError::MethodNotAllowed("x".into()),
                "MethodNotAllowed",
                400,
            ),
            (ApiError::Unauthorized("x".into()), "Unauthorized", 401),
            (ApiError::AccessDenied("x".into()), "AccessDenied", 403),
            (ApiError::RouteNotFound("x".into()), "RouteNotFound", 404),
            (
                ApiError::RequestTooFrequently {
                    message: "x".into(),
                    retry_after_secs: 1,
                },
                "RequestTooFrequently",
                429,
            ),
            (ApiError::internal("x"), "InternalError", 500),
        ];
        for (err, code, status) in pairs {
            assert_eq!(err.code(), code);
            assert_eq!(err.status(), status);
        }
    }
}
