job "features" {
  type        = "service"
  datacenters = ["*"]

  group "Web_Front" {
    count = 2

    task "Web_Front" {
      driver = "raw_exec"

      config {
        args     = ["node", "/REPO/host/export/testdata/server.js", "--mode", "prod"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        GREETING          = "hello $${USER}"
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        NODE_ENV          = "production"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "Web_Front"
        PORT              = "${NOMAD_PORT_port}"
      }

      service {
        name = "web-front"
        port = "port"

        check {
          name     = "web-front-health"
          type     = "http"
          path     = "/healthz?full=1"
          interval = "2.5s"
          timeout  = "1s"

          check_restart {
            limit = 4
          }
        }
        provider = "nomad"
      }

      resources {
        memory = 1536
      }
      kill_timeout = "45s"

      logs {
        max_files     = 3
        max_file_size = 20
      }
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
      }
    }
  }

  group "shared-api" {
    count = 4

    task "shared-api" {
      driver = "raw_exec"

      config {
        args     = ["gunicorn", "app:app"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "shared-api"
        PORT              = "7000"
      }

      service {
        name = "shared-api"
        port = "port"

        check {
          name     = "shared-api-health"
          type     = "script"
          command  = "curl"
          args     = ["-fsS", "http://127.0.0.1:${NOMAD_PORT_port}/ping"]
          interval = "5s"
          timeout  = "2s"
        }
        provider = "consul"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 7000
      }
    }
  }

  group "worker" {
    count = 1

    task "worker" {
      driver = "raw_exec"

      config {
        args     = ["-c", "python3 -u worker.py && echo done"]
        command  = "/bin/sh"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "worker"
      }
      kill_timeout = "5s"
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }

  group "metrics-probe" {
    count = 1

    task "metrics-probe" {
      driver = "raw_exec"

      config {
        command  = "/usr/local/bin/exporter"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "metrics-probe"
        PORT              = "9300"
      }

      service {
        name = "metrics-probe"
        port = "port"

        check {
          name     = "metrics-probe-health"
          type     = "http"
          path     = "/metrics"
          port     = "health"
          interval = "5s"
          timeout  = "2s"

          check_restart {
            limit = 3
          }
        }
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 9300
      }

      port "health" {
        static = 9301
      }
    }
  }

  group "9lives-0" {
    count = 1

    task "migrate" {
      driver = "raw_exec"

      lifecycle {
        hook = "prestart"
      }

      config {
        args     = ["bash", "/REPO/host/export/testdata/migrate.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "migrate"
      }

      restart {
        attempts = 0
        mode     = "fail"
      }
      kill_timeout = "5s"
    }

    task "9lives" {
      driver = "raw_exec"

      config {
        args     = ["bash", "/REPO/host/export/testdata/run.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "9lives"
        PORT              = "7100"
      }

      service {
        name = "app-9lives"
        port = "port"

        check {
          name     = "app-9lives-health"
          type     = "http"
          path     = "/"
          interval = "5s"
          timeout  = "2s"

          check_restart {
            limit = 3
          }
        }
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 7100
      }
    }
  }

  group "9lives-1" {
    count = 1

    task "migrate" {
      driver = "raw_exec"

      lifecycle {
        hook = "prestart"
      }

      config {
        args     = ["bash", "/REPO/host/export/testdata/migrate.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "migrate"
      }

      restart {
        attempts = 0
        mode     = "fail"
      }
      kill_timeout = "5s"
    }

    task "9lives" {
      driver = "raw_exec"

      config {
        args     = ["bash", "/REPO/host/export/testdata/run.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "1"
        PM2_INSTANCE_ID   = "1"
        PMDAEMON_APP_NAME = "9lives"
        PORT              = "7101"
      }

      service {
        name = "app-9lives"
        port = "port"

        check {
          name     = "app-9lives-health"
          type     = "http"
          path     = "/"
          interval = "5s"
          timeout  = "2s"

          check_restart {
            limit = 3
          }
        }
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 7101
      }
    }
  }

  group "9lives-2" {
    count = 1

    task "migrate" {
      driver = "raw_exec"

      lifecycle {
        hook = "prestart"
      }

      config {
        args     = ["bash", "/REPO/host/export/testdata/migrate.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "migrate"
      }

      restart {
        attempts = 0
        mode     = "fail"
      }
      kill_timeout = "5s"
    }

    task "9lives" {
      driver = "raw_exec"

      config {
        args     = ["bash", "/REPO/host/export/testdata/run.sh"]
        command  = "/usr/bin/env"
        work_dir = "/REPO/host/export/testdata"
      }

      env {
        NODE_APP_INSTANCE = "2"
        PM2_INSTANCE_ID   = "2"
        PMDAEMON_APP_NAME = "9lives"
        PORT              = "7102"
      }

      service {
        name = "app-9lives"
        port = "port"

        check {
          name     = "app-9lives-health"
          type     = "http"
          path     = "/"
          interval = "5s"
          timeout  = "2s"

          check_restart {
            limit = 3
          }
        }
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 15
      delay    = "0s"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 7102
      }
    }
  }
}
