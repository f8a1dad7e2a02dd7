//! `POST /event/push/alert/aliyun-prometheus`: the aliyun-prometheus integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::aliyun_prometheus::ENDPOINT)
}
