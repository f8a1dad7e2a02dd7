//! `POST /event/push/alert/zabbix`: the Zabbix webhook media type integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::zabbix::ENDPOINT)
}
