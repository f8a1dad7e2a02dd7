//! The table's DynamoDB Stream: timeline follow-ups (storm) and webhook delivery.

fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve_notify()
}
