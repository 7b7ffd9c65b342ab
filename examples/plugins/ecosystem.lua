-- The same setup as ecosystem.json, as a script: pmdaemon run examples/plugins/ecosystem.lua
-- Build the binaries first (examples/demo.sh puts them in ../../bin). Set UPSTREAMS_FILE,
-- NGINX_RELOAD and NGINX_PID_FILE to point the nginx-upstream hook at your nginx.

-- Plugins first, so the policy applies to the apps below.
plugins.add {
  name = "reserved-range", path = "../../bin/reserved-range",
  config = { ranges = { ["9000-9999"] = "monitoring", ["5432"] = "postgres" } },
}
plugins.add {
  name = "nginx-upstream", path = "../../bin/nginx-upstream", timeout = "5s",
  config = {
    output = env.get("UPSTREAMS_FILE", "/etc/nginx/conf.d/pmdaemon-upstreams.conf"),
    upstreams = { web = "web_backend" },
    reload = env.get("NGINX_RELOAD", "nginx -s reload"),
    -- nginx's "pid": the hook waits for the workers from before a reload to finish.
    pid_file = env.get("NGINX_PID_FILE", "/run/nginx.pid"),
  },
}

-- nginx balances over these four; the hook rewrites its upstream when they move.
cluster.start { name = "web", script = "../../bin/echo", instances = 4, port = ports.range(8000, 8003) }

-- auto: skips 9000-9999, which reserved-range keeps for monitoring.
local m = cluster.start { name = "metrics", script = "../../bin/echo", instances = 2, port = ports.auto(8990, 9010) }
log.info("metrics on " .. table.concat(m.ports, ","))
