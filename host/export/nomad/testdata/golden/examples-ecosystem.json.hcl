job "ecosystem" {
  type        = "service"
  datacenters = ["*"]

  group "api-gateway" {
    count = 1

    task "api-gateway" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples"
      }

      env {
        GATEWAY           = "1"
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "api-gateway"
        PORT              = "8080"
      }

      service {
        name     = "api-gateway"
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
        static = 8080
      }
    }
  }

  group "user-service-0" {
    count = 1

    task "user-service" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples"
      }

      env {
        NODE_APP_INSTANCE = "0"
        PM2_INSTANCE_ID   = "0"
        PMDAEMON_APP_NAME = "user-service"
        PORT              = "8001"
      }

      service {
        name     = "user-service"
        port     = "port"
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 10
      delay    = "500ms"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 8001
      }
    }
  }

  group "user-service-1" {
    count = 1

    task "user-service" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples"
      }

      env {
        NODE_APP_INSTANCE = "1"
        PM2_INSTANCE_ID   = "1"
        PMDAEMON_APP_NAME = "user-service"
        PORT              = "8002"
      }

      service {
        name     = "user-service"
        port     = "port"
        provider = "nomad"
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "15s"
      attempts = 10
      delay    = "500ms"
      mode     = "fail"
    }

    network {
      port "port" {
        static = 8002
      }
    }
  }

  group "order-service" {
    count = 3

    task "order-service" {
      driver = "raw_exec"

      config {
        command  = "/REPO/bin/echo"
        work_dir = "/REPO/examples"
      }

      env {
        NODE_APP_INSTANCE = "${NOMAD_ALLOC_INDEX}"
        PM2_INSTANCE_ID   = "${NOMAD_ALLOC_INDEX}"
        PMDAEMON_APP_NAME = "order-service"
        PORT              = "${NOMAD_PORT_port}"
      }

      service {
        name     = "order-service"
        port     = "port"
        provider = "nomad"
      }

      resources {
        memory = 200
      }
      kill_timeout = "5s"
    }

    restart {
      interval = "16.5s"
      attempts = 15
      delay    = "100ms"
      mode     = "fail"
    }

    network {
      port "port" {
      }
    }
  }
}
