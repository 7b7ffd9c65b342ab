job "ecosystem" {
  type        = "service"
  datacenters = ["*"]

  group "web-0" {
    count = 1

    task "web" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples/plugins"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "web"
        PORT              = "8000"
      }

      service {
        name     = "web"
        port     = "port"
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
        static = 8000
      }
    }
  }

  group "web-1" {
    count = 1

    task "web" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples/plugins"
      }

      env {
        NODE_APP_INSTANCE = "1"
        PM2_INSTANCE_ID   = "1"
        PMDAEMON_APP_NAME = "web"
        PORT              = "8001"
      }

      service {
        name     = "web"
        port     = "port"
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
        static = 8001
      }
    }
  }

  group "web-2" {
    count = 1

    task "web" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples/plugins"
      }

      env {
        NODE_APP_INSTANCE = "2"
        PM2_INSTANCE_ID   = "2"
        PMDAEMON_APP_NAME = "web"
        PORT              = "8002"
      }

      service {
        name     = "web"
        port     = "port"
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
        static = 8002
      }
    }
  }

  group "web-3" {
    count = 1

    task "web" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples/plugins"
      }

      env {
        NODE_APP_INSTANCE = "3"
        PM2_INSTANCE_ID   = "3"
        PMDAEMON_APP_NAME = "web"
        PORT              = "8003"
      }

      service {
        name     = "web"
        port     = "port"
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
        static = 8003
      }
    }
  }

  group "metrics" {
    count = 2

    task "metrics" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples/plugins"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "metrics"
        PORT              = "${NOMAD_PORT_port}"
      }

      service {
        name     = "metrics"
        port     = "port"
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
      }
    }
  }
}
