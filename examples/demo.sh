#!/usr/bin/env bash
# Runs the demo: builds pmdaemon and the echo app, runs examples/ecosystem.lua (a gateway on one
# port, a 2-instance service on a range, 3 workers on auto:), then shows `pmdaemon list`. The daemon runs in
# ./.demo-home until `PMDAEMON_HOME=$PWD/.demo-home ./bin/pmdaemon kill`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
go build -o bin/ ./cmd/pmdaemon ./cmd/pmdaemond   # the CLI and its daemon, side by side
go build -o bin/echo ./examples/apps/echo
# The reference plugins, for examples/plugins/ecosystem.{json,lua} and docs/plugins.md.
go build -o bin/reserved-range ./plugins/reserved-range
go build -o bin/nginx-upstream ./plugins/nginx-upstream
export PMDAEMON_HOME="$PWD/.demo-home"
./bin/pmdaemon delete all >/dev/null 2>&1 || true
./bin/pmdaemon run examples/ecosystem.lua >/dev/null
if command -v curl >/dev/null; then
  for p in 8080 8001 8002; do
    for i in $(seq 50); do curl -sf "http://127.0.0.1:$p/" >/dev/null 2>&1 && break; sleep 0.1; done
  done
  echo "curl http://127.0.0.1:8001/ -> $(curl -s http://127.0.0.1:8001/ || echo unreachable)"
fi
./bin/pmdaemon list
echo "Stop everything with: PMDAEMON_HOME=$PMDAEMON_HOME ./bin/pmdaemon kill"
