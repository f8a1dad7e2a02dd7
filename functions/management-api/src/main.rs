//! `/api/*`: the management API.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_api()
}
