//! `/api/*`: the management API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_api().await
}
