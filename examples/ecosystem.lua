-- A realistic multi-service setup, run with:  pmdaemon run examples/ecosystem.lua
-- The apps are the echo demo (examples/apps/echo), built into ../bin by examples/demo.sh.
-- Set STAGE=production for more instances; PMDAEMON_HOME chooses the daemon.

local stage = env.get("STAGE", "development")
local prod = stage == "production"
local echo = "../bin/echo"

-- One gateway on a fixed port.
local gateway = cluster.start {
  name = "api-gateway", script = echo, port = ports.single(8080),
  env = { STAGE = stage },
}

-- A two-instance service on a consecutive range: instance i gets 8001 + i.
local users = cluster.start {
  name = "user-service", script = echo, instances = 2, port = ports.range(8001, 8002),
  max_restarts = 10, restart_delay = "500ms",
}

-- Workers on the first free ports of a range; more of them in production.
local orders = cluster.start {
  name = "order-service", script = echo, instances = prod and 4 or 3,
  port = ports.auto(8010, 8020),
  exp_backoff_restart_delay = 100, max_memory_restart = "200M",
}

log.info(string.format("%s: gateway on %s, users on %s, orders on %s", stage,
  table.concat(gateway.ports, ","), table.concat(users.ports, ","), table.concat(orders.ports, ",")))
