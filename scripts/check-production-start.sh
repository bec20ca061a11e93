#!/usr/bin/env bash
# The production path, as a deploy runs it: build here (what is stale), copy the tracked files and the build
# (dist/, web/dist/) to a scratch directory, `npm ci --omit=dev` there, run `node dist/migrate.js`
# and then start `node dist/main.js` with migrations off
# on the embedded default (fresh data dir, free port), wait for /readyz, mint tokens with
# `node dist/token.js`, send a message over Connect and read it back over REST, fetch the web
# console, stop with SIGTERM and expect exit 0. Every wait is bounded (READY_TIMEOUT seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ready_timeout=${READY_TIMEOUT:-180}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/talkhub-production.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "== build"
node scripts/build.mjs --if-stale

echo "== copy tracked files and the build to $scratch/app"
app=$scratch/app
mkdir -p "$app"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new (not ignored) files: what a clone of this commit would hold.
  git ls-files -z --cached --others --exclude-standard -- . ':!:node_modules' | xargs -0 cp --parents -t "$app"
else
  tar --exclude=./node_modules --exclude=./.git --exclude=./.talkhub -cf - . | tar -xf - -C "$app"
fi
cp -r dist "$app/"
mkdir -p "$app/web" && cp -r web/dist "$app/web/"

echo "== npm ci --omit=dev"
(cd "$app" && npm ci --omit=dev --no-audit --no-fund 2>&1) | tee "$scratch/npm-ci.log"
if grep -q "install-scripts" "$scratch/npm-ci.log"; then
  echo "note: npm listed packages with install scripts (above); none is expected among the production dependencies" >&2
fi
for dev in tsx esbuild vite typescript vitest; do
  if [ -e "$app/node_modules/$dev" ]; then echo "devDependency $dev installed by npm ci --omit=dev" >&2; exit 1; fi
done

data=$scratch/data
echo "== node dist/migrate.js (embedded default), as a deploy that migrates before it starts"
(cd "$app" && TALKHUB_DATA_DIR="$data" node dist/migrate.js)

echo "== node dist/main.js (embedded default, migrations off: the schema is checked, not changed)"
log=$scratch/talkhub.log
started=$(date +%s%N)
(cd "$app" && exec env TALKHUB_DATA_DIR="$data" TALKHUB_MIGRATE_AT_START=false TALKHUB_PORT=0 TALKHUB_OPERATOR_PORT=off node dist/main.js) >"$log" 2>&1 &
pid=$!
port=""
deadline=$((SECONDS + ready_timeout))
until [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$log" >&2; echo "node dist/main.js exited before it was ready" >&2; exit 1; fi
  if [ "$SECONDS" -ge "$deadline" ]; then cat "$log" >&2; echo "not ready within ${ready_timeout}s" >&2; exit 1; fi
  port=$(sed -n 's/^Talkhub listening on :\([0-9]*\).*/\1/p' "$log" | head -n 1)
  sleep 0.1
done
echo "ready on :$port in $((($(date +%s%N) - started) / 1000000)) ms"
base=http://127.0.0.1:$port

customer=$(node -e 'console.log(crypto.randomUUID())')
alice=$(node -e 'console.log(crypto.randomUUID())')
bob=$(node -e 'console.log(crypto.randomUUID())')
token() { (cd "$app" && TALKHUB_DATA_DIR="$data" node dist/token.js --customer "$customer" --agent "$1" --name "$2"); }
ta=$(token "$alice" Alice)
tb=$(token "$bob" Bob)
call() { curl -sf "$base/talk.v1.$2" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3"; }
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(process.argv[1].split(".").reduce((o,k)=>o[k],JSON.parse(s))))' "$1"; }

call "$tb" TalkService/ListTalks '{}' >/dev/null
talk=$(call "$ta" TalkService/CreateTalk "{\"participant_ids\":[\"$bob\"]}" | field talk.id)
text="production start $(date +%s)"
call "$ta" MessageService/SendMessage "{\"chat_id\":\"$talk\",\"text\":\"$text\"}" >/dev/null
listed=$(curl -sf "$base/v1.0/service_agents/talk_messages?chat_id=$talk&page_size=10&token=$tb")
if ! grep -qF "$text" <<<"$listed"; then echo "the message sent is not listed: $listed" >&2; exit 1; fi
echo "sent and listed a message in talk $talk"

if ! curl -sf "$base/" | grep -q '<title>Talkhub console</title>'; then echo "the web console is not served at /" >&2; exit 1; fi
echo "the web console is served at /"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
if [ "$status" != 0 ]; then cat "$log" >&2; echo "node dist/main.js exited with $status after SIGTERM" >&2; exit 1; fi
echo "production start: passed"
