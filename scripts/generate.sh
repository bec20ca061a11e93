#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the local protoc-gen-es, and the descriptor set (with
# comments) that server reflection serves. Offline: everything comes from node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
buf lint
buf generate
buf build --as-file-descriptor-set -o gen/descriptors.binpb
