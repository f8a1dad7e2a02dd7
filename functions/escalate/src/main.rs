//! The escalation tick (SPEC 14): an EventBridge schedule every minute in
//! AWS, the stream pump every 5 s under `make run`.

fn main() -> Result<(), lambda_runtime::Error> {
    shared::runtime::serve_escalate()
}
