#!/usr/bin/env bash
# `make build`: every function for Lambda (arm64, release, cargo lambda) as a
# zip in $CARGO_TARGET_DIR/lambda/<function>/bootstrap.zip, then each zip's
# size (docs/benchmarks.md's size table comes from this output).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
target="${CARGO_TARGET_DIR:-$root/target}"
packages=()
for dir in functions/*/; do
  packages+=(-p "$(basename "$dir")")
done
# rust-toolchain.toml names the arm64 target; the Makefile stops rustup from
# fetching it implicitly, so add it here, the one step that needs it.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
start=$(date +%s)
PATH="$root/.cache/venv/bin:$PATH" cargo lambda build --release --arm64 --output-format zip "${packages[@]}"
echo "-- build: $(($(date +%s) - start)) s"
echo
echo "| function | zip | bootstrap (unzipped) |"
echo "| --- | ---: | ---: |"
for dir in functions/*/; do
  name=$(basename "$dir")
  zip="$target/lambda/$name/bootstrap.zip"
  unzipped=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
  printf '| %s | %.2f MB | %.1f MB |\n' "$name" "$(stat -c %s "$zip")e-6" "${unzipped}e-6"
done
