#!/usr/bin/env bash
# fal's JS client (@fal-ai/client, installed here with npm) uploads a 100 MiB file to the
# emulator and submits a job with its URL. Needs node 18+ and npm; not run by the tests.
#   bash scripts/js_client_upload.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'kill "${mock:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$here/js-client/package.json" "$here/js-client/upload.mjs" "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund >/dev/null)
echo "installed @fal-ai/client $(node -p "require('$work/node_modules/@fal-ai/client/package.json').version")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="js-client-check"
batchgen mock --port "$port" --api-key "$key" --latency 2 --time-scale 1 >"$work/mock.log" 2>&1 &
mock=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/_mock/stats" >/dev/null && break; sleep 0.2; done
(cd "$work" && BATCHGEN_BASE="http://127.0.0.1:$port" BATCHGEN_KEY="$key" node upload.mjs)
