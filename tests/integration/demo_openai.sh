#!/usr/bin/env bash
# scripts/demo --once against an OpenAI-compatible upstream (the fake in tests/fakes): the
# demo's LLMGATE_OPENAI_* path writes a provider config, streams through it, and the billing
# row in ClickHouse names provider openai and the model asked for.
#   demo_openai.sh BUILD_DIR WORK_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$1 WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
/usr/bin/python3 "$ROOT/tests/fakes/openai_fake.py" --listen 127.0.0.1:0 >"$WORK/fake.out" 2>"$WORK/fake.log" &
FAKE=$!
trap 'kill $FAKE 2>/dev/null || true; wait $FAKE 2>/dev/null || true' EXIT
deadline=$(( $(date +%s) + 30 ))
until grep -q '^listening fake ' "$WORK/fake.out"; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "fake upstream did not start" >&2; exit 1; }
  sleep 0.1
done
ADDR=$(awk '/^listening fake /{print $3}' "$WORK/fake.out")
LLMGATE_OPENAI_BASE_URL="http://$ADDR/v1" LLMGATE_OPENAI_API_KEY=sk-demo-fake-key \
  LLMGATE_OPENAI_MODEL=fake-normal LLMGATE_BUILD_DIR="$BUILD" LLMGATE_DEMO_SKIP_INSTALL=1 \
  LLMGATE_DEMO_DIR="$WORK/demo" "$ROOT/scripts/demo" --once >"$WORK/demo.out" 2>&1 \
  || { tail -30 "$WORK/demo.out" >&2; exit 1; }
grep -Eq '^provider: +openai$' "$WORK/demo.out" || { echo "billing row does not name provider openai" >&2; cat "$WORK/demo.out" >&2; exit 1; }
grep -Eq '^model: +fake-normal$' "$WORK/demo.out" || { echo "billing row has the wrong model" >&2; exit 1; }
if grep -rq sk-demo-fake-key "$WORK/demo"/*.log "$WORK/demo/providers.json" "$WORK/demo.out"; then
  echo "the API key leaked into a log or the config file" >&2; exit 1
fi
echo "demo --once through the OpenAI-compatible path: ok"
