//! `POST /event/push/alert/jiankongbao`: the jiankongbao integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::jiankongbao::ENDPOINT)
}
