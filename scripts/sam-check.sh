#!/usr/bin/env bash
# `make sam`: the deploy path checked offline. `sam validate --lint` and `sam
# build` of infra/template.yaml (the rust-cargolambda build method, which runs
# cargo lambda for each function), with the SAM CLI from PyPI in its own venv
# (its pins differ from cfn-lint 1.53.3's in .cache/venv).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
sam_venv="$root/.cache/sam-venv"
if [ ! -x "$sam_venv/bin/sam" ]; then
  python3 -m venv "$sam_venv"
  "$sam_venv/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli
fi
export SAM_CLI_TELEMETRY=0 AWS_REGION="${AWS_REGION:-us-east-1}"
start=$(date +%s)
"$sam_venv/bin/sam" validate --lint --template-file infra/template.yaml
echo "-- sam validate --lint: $(($(date +%s) - start)) s"
start=$(date +%s)
PATH="$root/.cache/venv/bin:$sam_venv/bin:$PATH" "$sam_venv/bin/sam" build \
  --template-file infra/template.yaml --beta-features --build-dir "$root/.aws-sam/build"
echo "-- sam build: $(($(date +%s) - start)) s"
