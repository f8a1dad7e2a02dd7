#!/usr/bin/env bash
# `make bench`: the CPU benchmark of the pure push path (criterion) and the
# DynamoDB cost/throughput benchmark against a private DynamoDB Local.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/dynamodb-local.sh
. "$root/scripts/dynamodb-local.sh"
"$root/scripts/setup.sh"

DDB_PID=
trap ddb_stop EXIT
port=$(free_port)
ddb_start "$port" "$root/.cache/dynamodb-bench.log"
ddb_export_env "$port"

echo "== criterion: normalise + decide vs serde_json::from_slice (standard payload)"
cargo bench -p shared --bench normalise
echo
echo "== DynamoDB cost per event and throughput (DynamoDB Local on port $port)"
cargo bench -p integration-tests --bench store
echo
echo "== webhook delivery end to end and the notify function's DynamoDB cost (DynamoDB Local on port $port)"
cargo bench -p integration-tests --bench delivery
echo
echo "== on-call escalation: DynamoDB requests per tick and per paged incident (DynamoDB Local on port $port, local SMTP server)"
cargo bench -p integration-tests --bench escalation
echo
echo "== cold start: each function's release binary against a local runtime API emulator"
# The bench profile: release code generation without the per-binary fat LTO
# (4 minutes a binary here); cargo puts it in target/release, where the bench reads.
cargo build --profile bench --bins
cargo bench -p integration-tests --bench coldstart
