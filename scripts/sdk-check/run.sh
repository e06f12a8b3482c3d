#!/usr/bin/env bash
# Checks clerk-mock with Clerk's own SDKs (clients nobody here wrote): @clerk/backend (npm) and
# clerk-backend-api (PyPI), pinned, installed into a temporary folder. Needs node, npm, python3
# and the registries. Usage: scripts/sdk-check/run.sh [path/to/clerk-mock]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mock="${1:-$here/../../target/debug/clerk-mock}"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$here/package.json" "$here/check-clerk-backend.mjs" "$here/check_clerk_backend_api.py" "$work/"
(cd "$work" && npm install --silent --no-audit --no-fund >/dev/null)
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q clerk-backend-api==7.0.0
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CLERK_MOCK_BIND="127.0.0.1:$port" RUST_LOG=warn "$mock" & pid=$!
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
(cd "$work" && MOCK="http://127.0.0.1:$port" node check-clerk-backend.mjs)
"$work/venv/bin/python" "$work/check_clerk_backend_api.py" "http://127.0.0.1:$port"
