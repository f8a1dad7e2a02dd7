//! Placeholder: the vendor parser lands in its own change.

use super::{ParseSettings, PushBody};
use crate::error::{ApiError, ApiResult};
use crate::event::ParsedEvent;

pub fn parse(_body: &PushBody<'_>, _settings: &ParseSettings<'_>) -> ApiResult<Vec<ParsedEvent>> {
    Err(ApiError::invalid("this integration is not implemented yet"))
}
