#!/usr/bin/env bash
# `make test`: every check CI runs, against a private DynamoDB Local that this
# script starts on a free port and stops again on any exit.
# Steps: cargo fmt --check, clippy -D warnings, cargo test --workspace, cfn-lint.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/dynamodb-local.sh
. "$root/scripts/dynamodb-local.sh"

"$root/scripts/setup.sh" test

DDB_PID=
child=
# Each step runs in its own process group, in the background, and is waited
# for: a SIGINT/SIGTERM to this script is then handled at once (bash defers
# traps while a foreground command runs) and stops the whole step (cargo and
# its rustc/test children), then DynamoDB Local.
on_signal() {
  [ -z "$child" ] || kill -TERM -- "-$child" 2>/dev/null || true
  exit "$1"
}
trap ddb_stop EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

port=$(free_port)
log="$root/.cache/dynamodb-test.log"
echo "== DynamoDB Local on 127.0.0.1:$port (log: .cache/dynamodb-test.log)"
ddb_start "$port" "$log"
ddb_export_env "$port"

# step NAME COMMAND...: prints a header, runs the command, prints its wall
# time; the first failure ends the script with that command's status.
step() {
  local name=$1 start rc=0
  shift
  echo
  echo "== $name: $*"
  start=$(date +%s)
  setsid "$@" &
  child=$!
  wait "$child" || rc=$?
  child=
  echo "-- $name: $(($(date +%s) - start)) s$([ "$rc" -eq 0 ] || echo ", FAILED (exit $rc)")"
  [ "$rc" -eq 0 ] || exit "$rc"
}

# Generous storage timeouts for the suite: on two loaded cores a request can
# otherwise time out on the client and land later. tests/faults.rs sets the
# production values (3 s per attempt, 8 s per operation) for itself.
export DYNAMODB_ATTEMPT_TIMEOUT_SECS=10 DYNAMODB_OPERATION_TIMEOUT_SECS=30

# setup.sh installed chromium and chromedriver: the console's browser test
# must run here, not skip (tests/console_browser.rs).
export CONSOLE_BROWSER_REQUIRED=1

# A clean build gains nothing from incremental caches, and they would roughly
# double the target folder's size (the disk is part of CI's budget too).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
test_log="$root/.cache/cargo-test.log"
step test bash -o pipefail -c 'cargo test --workspace 2>&1 | tee "$0"' "$test_log"
step cfn-lint "$root/.cache/venv/bin/cfn-lint" infra/template.yaml

# One closing line for the whole suite: cargo prints one result line per test
# binary, the last of which is often an empty doc-test run.
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
  END { printf "%d passed, %d failed, %d skipped", p, f, s }' "$test_log")
echo
echo "== all checks passed"
echo "tests: $summary"
