#!/usr/bin/env bash
# Regenerates gen/ from proto/ with the local protoc-gen-es, and the descriptor set (with
# comments) that server reflection serves, and from those the OpenAPI document of the REST
# paths (gen/openapi.json) and the reference section of docs/api.md (scripts/contract.ts).
# Offline: everything comes from node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
buf lint
buf generate
buf build --as-file-descriptor-set -o gen/descriptors.binpb
tsx scripts/contract.ts
