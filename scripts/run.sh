#!/usr/bin/env bash
# `make run`: the whole service on this machine. Starts DynamoDB Local, creates
# the table, an app key and a demo channel + standard integration (alertctl),
# then serves every function with `cargo lambda watch` under the same routes
# as infra/template.yaml, and prints the console's URL, the app key and
# ready-to-paste curl commands.
# Ctrl-C (or SIGTERM) stops everything this script started.
#
# Environment:
#   PORT               HTTP port of the functions (default 9000)
#   DYNAMODB_PORT      DynamoDB Local port (default 8000)
#   TABLE_NAME         table name (default alert-intake)
#   BOOTSTRAP_APP_KEY  app key to create (default: alertctl generates one)
#   PUBLIC_BASE_URL    base of the console links in webhook messages
#                      (default http://localhost:$PORT)
#   ALLOW_PRIVATE_WEBHOOK_TARGETS  webhooks may reach loopback and private
#                      addresses (default true here; false when deployed)
#   SMTP_URL           the mail server of email pages (default: a local SMTP
#                      server, scripts/smtp_sink.py, that prints every message
#                      into .cache/smtp-run.log; docs/email.md)
#   SMTP_FROM          their sender (default alert-intake <alerts@localhost>)
#   CONCURRENCY        instances per function in cargo lambda watch (default 4)
#   RUST_LOG           log filter of the functions (default info)
#   WATCH_RUST_LOG     log filter of cargo lambda watch itself (default warn:
#                      its info lines, which include every instance's
#                      environment, would drown the functions' JSON logs)
#   ALERTCTL           a prebuilt alertctl to use instead of building it
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/dynamodb-local.sh
. "$root/scripts/dynamodb-local.sh"

PORT=${PORT:-9000}
DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
TABLE_NAME=${TABLE_NAME:-alert-intake}
CONCURRENCY=${CONCURRENCY:-4}
RUST_LOG=${RUST_LOG:-info}
WATCH_RUST_LOG=${WATCH_RUST_LOG:-warn}
BOOTSTRAP_APP_KEY=${BOOTSTRAP_APP_KEY:-}
export TABLE_NAME RUST_LOG

die() {
  echo "run: $*" >&2
  exit 1
}

for v in PORT DYNAMODB_PORT CONCURRENCY; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[ "$PORT" != "$DYNAMODB_PORT" ] || die "PORT and DYNAMODB_PORT must differ (both $PORT)"

"$root/scripts/setup.sh"
export PATH="$root/.cache/venv/bin:$PATH"

if port_open "$DYNAMODB_PORT"; then
  die "something already listens on 127.0.0.1:$DYNAMODB_PORT (DYNAMODB_PORT). Stop it, or choose another port, e.g. DYNAMODB_PORT=8001 make run"
fi
if port_open "$PORT"; then
  die "something already listens on port $PORT (PORT). Stop it, or choose another port, e.g. PORT=9001 make run"
fi

DDB_PID=
WATCH_PID=
PUMP_PID=
SMTP_PID=
child=

# Stops cargo lambda watch (it stops its function instances on SIGTERM) and
# then DynamoDB Local; SIGKILL only for what is still there after 10 s.
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local _
  [ -z "$child" ] || kill -TERM -- "-$child" 2>/dev/null || true
  [ -z "$PUMP_PID" ] || kill -TERM -- "-$PUMP_PID" 2>/dev/null || true
  [ -z "$SMTP_PID" ] || kill -TERM -- "-$SMTP_PID" 2>/dev/null || true
  if [ -n "$WATCH_PID" ] && kill -0 "$WATCH_PID" 2>/dev/null; then
    echo
    echo "run: stopping cargo lambda watch and DynamoDB Local"
    kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$WATCH_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$WATCH_PID" 2>/dev/null || true
  fi
  ddb_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fg_run CMD...: runs a (long) command in its own process group and waits for
# it, so that Ctrl-C / SIGTERM reach the trap at once and stop it too.
fg_run() {
  local rc=0
  setsid "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  return "$rc"
}

echo "== DynamoDB Local on 127.0.0.1:$DYNAMODB_PORT (in memory; log: .cache/dynamodb-run.log)"
ddb_start "$DYNAMODB_PORT" "$root/.cache/dynamodb-run.log"
ddb_export_env "$DYNAMODB_PORT"

# Email pages go to a local SMTP server that prints each message, unless
# SMTP_URL names a real one.
if [ -z "${SMTP_URL:-}" ]; then
  smtp_port=$(free_port)
  echo "== local SMTP server on 127.0.0.1:$smtp_port (prints every message into .cache/smtp-run.log)"
  setsid "$root/.cache/venv/bin/python" "$root/scripts/smtp_sink.py" --port "$smtp_port" >"$root/.cache/smtp-run.log" 2>&1 &
  SMTP_PID=$!
  for _ in $(seq 1 100); do
    port_open "$smtp_port" && break
    sleep 0.1
  done
  port_open "$smtp_port" || die "the local SMTP server did not listen within 10 s (see .cache/smtp-run.log)"
  SMTP_URL="smtp://127.0.0.1:$smtp_port"
  mail_info="printed by the local SMTP server: tail -f .cache/smtp-run.log"
else
  mail_info="sent through SMTP_URL from the environment"
fi
SMTP_FROM=${SMTP_FROM:-alert-intake <alerts@localhost>}

functions=()
for manifest in functions/*/Cargo.toml; do
  functions+=("$(basename "$(dirname "$manifest")")")
done

target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ -n "${ALERTCTL:-}" ]; then
  alertctl=$ALERTCTL
else
  echo "== building alertctl"
  fg_run cargo build -p shared --bin alertctl --bin stream-pump
  alertctl="$target_dir/debug/alertctl"
fi
# cargo lambda watch would compile each function on its first request; build
# them now so that the first curl answers at once (same profile, same target).
echo "== building the functions: ${functions[*]}"
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
fg_run cargo build "${packages[@]}"

echo "== alertctl create-table ($TABLE_NAME)"
"$alertctl" create-table
key_args=()
[ -z "$BOOTSTRAP_APP_KEY" ] || key_args=(--key "$BOOTSTRAP_APP_KEY")
app_key=$("$alertctl" create-app-key ${key_args[@]+"${key_args[@]}"} | sed '/^[[:space:]]*$/d' | tail -n 1)
[ -n "$app_key" ] || die "alertctl create-app-key printed no key"
demo=$("$alertctl" demo | sed '/^[[:space:]]*$/d' | tail -n 1)

# The demo line: {"channel_id", "integration_id", "integration_key", "push_path"}.
# push_url is push_path on this host, with ?integration_key= added if absent.
read -r channel_id integration_key push_url < <(
  DEMO="$demo" BASE="http://localhost:$PORT" python3 -c '
import json, os, sys
try:
    d = json.loads(os.environ["DEMO"])
    key, path = d["integration_key"], d.get("push_path") or "/event/push/alert/standard"
except (ValueError, KeyError, TypeError) as e:
    sys.exit("run: alertctl demo did not print the expected JSON line (%s): %r" % (e, os.environ["DEMO"]))
if "integration_key=" not in path:
    path += ("&" if "?" in path else "?") + "integration_key=" + key
print(d.get("channel_id", "-"), key, os.environ["BASE"] + path)
')
[ -n "${push_url:-}" ] || die "could not read the demo integration from: $demo"

# Environment of the functions. cargo lambda watch passes its own environment
# on as well, but an env file makes the contract explicit. Values are
# single-quoted: cargo lambda rejects an unquoted '=' inside a value
# (RUST_LOG=info,shared=debug).
env_file="$root/.cache/watch.env"
: >"$env_file"
# Links in IM webhook messages open the console on this host.
PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://localhost:$PORT}
# Local receivers (a listener on this machine) are the point of `make run`.
ALLOW_PRIVATE_WEBHOOK_TARGETS=${ALLOW_PRIVATE_WEBHOOK_TARGETS:-true}
for v in TABLE_NAME RUST_LOG AWS_ENDPOINT_URL_DYNAMODB AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY PUBLIC_BASE_URL ALLOW_PRIVATE_WEBHOOK_TARGETS SMTP_URL SMTP_FROM; do
  [[ ${!v} != *"'"* ]] || die "$v must not contain a single quote"
  printf "%s='%s'\n" "$v" "${!v}" >>"$env_file"
done

# Only the service's logs on the terminal: cargo lambda watch reads RUST_LOG
# for its own log lines, so it gets WATCH_RUST_LOG (its warnings and errors
# stay), while the functions get RUST_LOG from the env file, which takes
# precedence over the environment watch passes on. --quiet drops cargo's
# Finished/Running lines for each instance it starts (build errors still show).
echo "== cargo lambda watch on port $PORT (concurrency $CONCURRENCY; functions log at $RUST_LOG, watch itself at $WATCH_RUST_LOG)"
RUST_LOG="$WATCH_RUST_LOG" setsid cargo lambda watch --quiet --invoke-port "$PORT" --concurrency "$CONCURRENCY" --env-file "$env_file" &
WATCH_PID=$!
for _ in $(seq 1 300); do
  kill -0 "$WATCH_PID" 2>/dev/null || die "cargo lambda watch exited during start-up"
  port_open "$PORT" && break
  sleep 0.1
done
port_open "$PORT" || die "cargo lambda watch did not listen on port $PORT within 30 s"

# Lambda's stream event source, locally: DynamoDB Local's stream -> the notify
# function through cargo lambda watch's invoke endpoint (SPEC 11).
pump="${STREAM_PUMP:-$(dirname "$alertctl")/stream-pump}"
echo "== stream pump: DynamoDB Local's stream -> notify (POST /2015-03-31/functions/notify/invocations)"
setsid "$pump" "http://127.0.0.1:$PORT/2015-03-31/functions/notify/invocations" &
PUMP_PID=$!

# The bodies of the shared fixtures standard/firing.json and recovery.json,
# inline so that the printed commands work from any directory.
# shellcheck disable=SC2016  # $resource/$check are title-template variables
{ read -r firing; read -r ok; } < <(python3 -c '
import json
firing = {
    "title_rule": "$resource::$check",
    "event_status": "Warning",
    "alert_key": "web-01-latency",
    "description": "p99 latency of /checkout above 500ms for 5 minutes",
    "labels": {"resource": "10.20.3.14", "check": "api latency > 500ms", "service": "checkout", "cluster": "prod-east"},
}
ok = dict(firing, event_status="Ok", description="p99 latency back under 500ms")
for body in (firing, ok):
    print(json.dumps(body, separators=(",", ":")))
')

banner="$root/.cache/run-info.txt"
{
  echo
  echo "=================================================================="
  echo " alert intake is up: http://localhost:$PORT   (Ctrl-C stops it all)"
  echo "  console:       http://localhost:$PORT/console   (sign in with the app key)"
  echo "  app key:       $app_key"
  echo "  OpenAPI:       http://localhost:$PORT/api/openapi.json"
  echo "  table:         $TABLE_NAME on $AWS_ENDPOINT_URL_DYNAMODB"
  echo "  demo channel:  $channel_id"
  echo "  email pages:   $mail_info"
  echo "  integration:   $integration_key"
  echo
  echo "# push a firing event (standard integration):"
  echo "curl -sS -X POST '$push_url' -H 'Content-Type: application/json' -d '$firing'"
  echo
  echo "# list incidents:"
  echo "curl -sS 'http://localhost:$PORT/api/incidents' -H 'Authorization: Bearer $app_key'"
  echo
  echo "# webhooks: run a local receiver (prints what it gets) in another terminal ..."
  echo "scripts/receiver.py 9999"
  echo "# ... and subscribe it to every incident and alert event (then push the firing event above):"
  echo "curl -sS -X POST 'http://localhost:$PORT/api/webhooks' -H 'Authorization: Bearer $app_key' -H 'Content-Type: application/json' -d '{\"name\":\"local receiver\",\"url\":\"http://127.0.0.1:9999/hook\",\"secret\":\"change-me\",\"event_types\":[\"i_new\",\"a_merge\",\"i_ack\",\"i_unack\",\"i_rslv\",\"i_reopen\",\"i_comm\",\"i_storm\",\"i_m_flapping\",\"a_new\",\"a_update\",\"a_close\"]}'"
  echo
  echo "# recover it (event_status Ok):"
  echo "curl -sS -X POST '$push_url' -H 'Content-Type: application/json' -d '$ok'"
  echo
  echo "# on-call: a member, and an escalation rule that pages her by email (and IM mention) when the demo channel opens an incident:"
  echo "MEMBER=\$(curl -sS -X POST 'http://localhost:$PORT/api/members' -H 'Authorization: Bearer $app_key' -H 'Content-Type: application/json' -d '{\"name\":\"Alice\",\"email\":\"alice@example.com\"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"data\"][\"member_id\"])')"
  echo "curl -sS -X PUT 'http://localhost:$PORT/api/channels/$channel_id/escalation' -H 'Authorization: Bearer $app_key' -H 'Content-Type: application/json' -d '{\"rules\":[{\"name\":\"default\",\"levels\":[{\"targets\":{\"member_ids\":[\"'\"\$MEMBER\"'\"]},\"escalate_after_minutes\":5}]}]}'"
  echo "# ... then push the firing event above: within seconds the page is in the mail ($mail_info), with its acknowledgement link"
  # Each vendor's sample payloads, from the fixtures kept in the repository.
  DEMO="$demo" BASE="http://localhost:$PORT" FIXTURES="$root/shared/fixtures" python3 -c '
import json, os
d = json.loads(os.environ["DEMO"])
fixtures = os.path.realpath(os.environ["FIXTURES"])
for kind, path in sorted(d.get("vendor_push_paths", {}).items()):
    folder = os.path.join(fixtures, kind)
    if not os.path.isdir(folder):
        continue
    print()
    print("# %s: push its sample payloads (firing first, then recovery)" % kind)
    for name in sorted(os.listdir(folder), key=lambda n: (any(w in n for w in ("recover", "resolve", "closed", "ok", "-up.")), "acknowledge" in n, n)):
        # Senders that say more in headers: SNS names the message type (and posts
        # text/plain), Sentry the resource (the fixture name starts with it).
        headers = "-H \x27Content-Type: application/json\x27"
        if kind == "aws-cloudwatch":
            headers = "-H \x27Content-Type: text/plain; charset=UTF-8\x27 -H \x27x-amz-sns-message-type: Notification\x27"
        elif kind == "sentry":
            headers += " -H \x27Sentry-Hook-Resource: %s\x27" % name.split("-")[0]
        if kind == "aws-cloudwatch":
            # SNS Timestamps older than an hour are refused as replays (SPEC 15):
            # send the sample with the time of sending (the demo integration
            # does not check signatures).
            print("sed \x27s/\"Timestamp\" *: *\"[^\"]*\"/\"Timestamp\": \"\x27\"$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\x27\"/\x27 %s | curl -sS -X POST \x27%s%s\x27 %s --data-binary @-" % (os.path.join(folder, name), os.environ["BASE"], path, headers))
            continue
        print("curl -sS -X POST \x27%s%s\x27 %s --data-binary @%s" % (os.environ["BASE"], path, headers, os.path.join(folder, name)))
'
  echo "=================================================================="
  echo "(also in .cache/run-info.txt)"
} | tee "$banner"

rc=0
wait "$WATCH_PID" || rc=$?
WATCH_PID=
exit "$rc"
