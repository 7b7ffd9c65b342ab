job "ecosystem" {
  type        = "service"
  datacenters = ["*"]

  group "pm2-api" {
    count = 2

    task "pm2-api" {
      driver = "raw_exec"

      config {
        args     = ["node", "/REPO/host/export/testdata/api.js"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        NODE_ENV          = "development"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "pm2-api"
      }

      resources {
        memory = 300
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }
  }
}
