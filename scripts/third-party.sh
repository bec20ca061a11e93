#!/usr/bin/env bash
# Copies the third-party protos that proto/ imports from npm packages into third_party/
# (git-ignored), so buf needs no registry.
set -euo pipefail
cd "$(dirname "$0")/.."
src=node_modules/google-proto-files/google/api
rm -rf third_party
mkdir -p third_party/google/api
cp "$src/annotations.proto" "$src/http.proto" third_party/google/api/
