#!/usr/bin/env bash
# The whole test suite: generated code up to date, buf lint, buf breaking, typecheck, format, lint
# and layering, the deliberate breakages still apply to the code, then every vitest
# suite (embedded PGlite, Postgres, NATS, interop). Under CI=true the Postgres and NATS suites
# fail instead of skipping when their servers do not answer.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== generate (gen/ and the reference of docs/api.md must be up to date)"
bash scripts/generate.sh
if [ -d .git ] && ! git diff --quiet -- gen docs/api.md || [ -n "$(git status --porcelain -- gen docs/api.md 2>/dev/null)" ]; then
  git status --short -- gen docs/api.md
  echo "gen/ or docs/api.md is stale: run 'npm run generate' and commit the result" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi

echo "== buf lint (the vendored third_party/ protos must match their npm packages)"
bash scripts/third-party.sh --check
npx buf lint

echo "== buf breaking (proto/ against main and the contract before its latest change; docs/api.md)"
bash scripts/breaking.sh

echo "== typecheck"
npx tsc --noEmit -p .
npx tsc --noEmit -p web
npx tsc --noEmit -p scripts/breakages

echo "== format, lint and layering (biome.jsonc and .dependency-cruiser.cjs; npm run format fixes the layout)"
npx biome ci --error-on-warnings .
npm run --silent lint:layers

echo "== breakages still apply (npm run test:breakages runs them; see docs/testing.md)"
npx tsx scripts/breakages/run.ts --apply-only

echo "== tests"
npx vitest run "$@"
