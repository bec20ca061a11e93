#!/usr/bin/env bash
# Copies the third-party protos that Talkhub builds on from npm packages into third_party/
# (git-ignored), so buf needs no registry: google/api (HTTP annotations), gRPC health and
# gRPC server reflection (v1 and v1alpha).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf third_party
mkdir -p third_party/google/api third_party/grpc/health/v1 third_party/grpc/reflection/v1 third_party/grpc/reflection/v1alpha
cp node_modules/google-proto-files/google/api/annotations.proto node_modules/google-proto-files/google/api/http.proto third_party/google/api/
cp node_modules/grpc-health-check/proto/health/v1/health.proto third_party/grpc/health/v1/
cp node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto third_party/grpc/reflection/v1/
cp node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto third_party/grpc/reflection/v1alpha/
