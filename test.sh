#!/usr/bin/env bash
# The whole test suite, from a fresh Linux machine with Go: installs the programs the end-to-end
# tests drive for real (from Debian, when missing and when it can), then runs every test with
# the race detector.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
# The socket suite (host/e2e/socketse2e) runs real apps of three languages and a real load
# generator. Debian's gunicorn runs /usr/bin/python3, which needs Debian's Flask (a pyenv or
# venv python3 earlier on PATH does not count).
[ -x /usr/bin/gunicorn ] || need+=(gunicorn)
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import flask' 2>/dev/null || need+=(python3-flask)
command -v node >/dev/null || need+=(nodejs)
# host/e2e/pm2compat and host/e2e/pm2import drive a real PM2 7, installed from npm below.
command -v pm2 >/dev/null || command -v npm >/dev/null || need+=(npm)
command -v wrk >/dev/null || need+=(wrk)
# The recipes of docs/sockets.md that Debian packages: uvicorn and puma.
[ -x /usr/bin/uvicorn ] || need+=(uvicorn)
[ -x /usr/bin/puma ] || need+=(puma)
# `pmdaemon monit` runs in a real terminal in host/e2e/monite2e: tmux's.
command -v tmux >/dev/null || need+=(tmux)
# A real Prometheus scrapes the daemon's /metrics in host/e2e/webe2e (promtool comes with it).
command -v prometheus >/dev/null || need+=(prometheus)
# The dashboard's tests (host/e2e/dashboarde2e) drive a real headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
    # A packaged nginx may be started by its postinst; the tests run their own.
    if command -v service >/dev/null; then
      service nginx stop >/dev/null 2>&1 || true
      service prometheus stop >/dev/null 2>&1 || true
    fi
  else
    echo "test.sh: the tests need ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
fi

if ! command -v pm2 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing pm2@7 from npm" >&2
    npm install -g --no-audit --no-fund --loglevel=error pm2@7 >/dev/null
  else
    echo "test.sh: the tests need PM2 7; install it (npm install -g pm2@7) or run as root" >&2
    exit 1
  fi
fi

exec go test -race -count=1 -timeout 45m ./... "$@"
