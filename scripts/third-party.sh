#!/usr/bin/env bash
# The third-party protos the contract imports live in third_party/, committed, so buf, protoc and
# @grpc/proto-loader build the contract from a clone with nothing else: google/api (HTTP
# annotations), gRPC health and gRPC server reflection (v1 and v1alpha). They are copies of the
# files the npm packages pinned in package-lock.json ship.
#   bash scripts/third-party.sh          refresh the copies (after upgrading those packages)
#   bash scripts/third-party.sh --check  fail when a copy differs from its package (npm test)
set -euo pipefail
cd "$(dirname "$0")/.."
sources=(
  "node_modules/google-proto-files/google/api/annotations.proto google/api/annotations.proto"
  "node_modules/google-proto-files/google/api/http.proto google/api/http.proto"
  "node_modules/grpc-health-check/proto/health/v1/health.proto grpc/health/v1/health.proto"
  "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto grpc/reflection/v1/reflection.proto"
  "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto grpc/reflection/v1alpha/reflection.proto"
)
status=0
for pair in "${sources[@]}"; do
  read -r from to <<<"$pair"
  if [ "${1:-}" = "--check" ]; then
    cmp -s "$from" "third_party/$to" || { echo "third_party/$to differs from $from: run bash scripts/third-party.sh" >&2; status=1; }
  else
    mkdir -p "third_party/$(dirname "$to")"
    cp "$from" "third_party/$to"
  fi
done
exit $status
