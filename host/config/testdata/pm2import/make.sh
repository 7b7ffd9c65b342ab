#!/usr/bin/env bash
# How dump.pm2 and jlist.json here were made: PM2 7.0.4 (npm install -g pm2@7) running our own
# demo apps from a scratch PM2_HOME in a clean environment (env -i: PATH, HOME and LANG only,
# which TestImportPM2 gives as the importing environment). Run it again to remake them; it
# kills its PM2 daemon and leaves no process behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=/tmp/pmd-fixture
rm -rf "$base"
mkdir -p "$base/app/src" "$base/run" "$base/logs" "$base/home"
cat > "$base/app/server.js" <<'JS'
const http = require('http');
http.createServer((q, s) => s.end('ok\n')).listen(Number(process.env.PORT), '127.0.0.1');
JS
cat > "$base/app/worker.py" <<'PY'
import time
while True:
    time.sleep(1)
PY
cat > "$base/app/ecosystem.config.js" <<'JS'
module.exports = { apps: [
  { name: 'web', script: 'server.js', exec_mode: 'cluster', instances: 2, namespace: 'shop',
    env: { PORT: 23101, GREETING: 'hello world', NODE_ENV: 'production' } },
  { name: 'api', script: './server.js', args: ['--flag', 'two words'], namespace: 'shop',
    env: { PORT: 23102 }, pid_file: '/tmp/pmd-fixture/run/api.pid',
    out_file: '/tmp/pmd-fixture/logs/api-out.log', error_file: '/tmp/pmd-fixture/logs/api-err.log',
    max_restarts: 5, min_uptime: 2000, restart_delay: 500, kill_timeout: 3000,
    watch: ['src'], ignore_watch: ['*.tmp'], watch_delay: 300 },
  { name: 'shards', script: 'server.js', instances: 3, increment_var: 'PORT', env: { PORT: 23110 },
    out_file: '/tmp/pmd-fixture/logs/shards.log', cron_restart: '0 3 * * *' },
  { name: 'worker', script: 'worker.py', interpreter: 'python3', interpreter_args: '-u', args: 'a b',
    max_memory_restart: '200M', autorestart: false, stop_exit_codes: [0], vizion: false,
    env: { PATH: '/opt/worker/bin:/usr/bin:/bin' } },
  { name: 'pyhttp', script: 'python3 -m http.server 23120 --bind 127.0.0.1' },
  { name: 'sleeper', script: '/usr/bin/sleep', args: ['1000'] },
]};
JS
run() {
  env -i PATH=/usr/bin:/bin HOME="$base/home" LANG=C.UTF-8 PM2_HOME="$base/pm2" "$@"
}
trap 'run pm2 kill >/dev/null 2>&1 || true' EXIT
cd "$base/app"
run pm2 start ecosystem.config.js >/dev/null
run pm2 stop sleeper >/dev/null
sleep 2
run pm2 jlist > "$here/jlist.json"
run pm2 save >/dev/null
cp "$base/pm2/dump.pm2" "$here/dump.pm2"
