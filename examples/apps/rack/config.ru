# A Rack app answering GET / with who it is ({app, instance, port, pid}), for puma:
#
#   pmdaemon start /usr/bin/puma --name rack --port 3000 --socket shared -i 2 \
#       -- -C examples/apps/rack/puma.rb examples/apps/rack/config.ru
#
# puma reads LISTEN_FDS/LISTEN_PID itself; puma.rb tells it to serve only on the daemon's
# socket.
require 'json'

run lambda { |_env|
  who = { app: ENV.fetch('PMDAEMON_APP_NAME', ''), instance: ENV.fetch('PM2_INSTANCE_ID', ''),
          port: ENV.fetch('PORT', ''), pid: Process.pid }
  [200, { 'Content-Type' => 'application/json' }, [JSON.generate(who)]]
}
