# Shaped like the examples in Vault Agent's documentation.
pid_file        = "/run/arca-agent/pidfile"
exit_after_auth = false
log_level       = "info"

vault {
  address         = "https://arca.example.internal:8200"
  ca_cert         = "/etc/arca-agent/ca.pem"
  tls_skip_verify = false
  tls_server_name = "arca.example.internal"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path  = "auth/approle-apps"
    min_backoff = "2s"
    max_backoff = 120
    config = {
      role_id_file_path                   = "/etc/arca-agent/role-id"
      secret_id_file_path                 = "/etc/arca-agent/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "/run/arca-agent/token"
      mode = 0600
    }
  }

  sink "file" {
    wrap_ttl = "5m"
    config = {
      path = "/run/arca-agent/token-wrapped"
    }
  }
}

template_config {
  static_secret_render_interval = "10m"
  exit_on_retry_failure         = true
  max_connections_per_host      = 20
}

template {
  source      = "/etc/arca-agent/db.ctmpl"
  destination = "/etc/app/db.conf"
  perms       = "0640"
  command     = "systemctl reload app"
  backup      = true
  wait {
    min = "2s"
    max = "10s"
  }
}

template {
  contents             = "{{ with secret \"secret/data/app\" }}{{ .Data.data.api_key }}{{ end }}"
  destination          = "/etc/app/api-key"
  error_on_missing_key = true
  left_delimiter       = "[["
  right_delimiter      = "]]"
  exec {
    command = ["/usr/local/bin/notify", "api-key"]
    timeout = "45s"
  }
}

api_proxy {
  use_auto_auth_token = "force"
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
}

listener "unix" {
  address     = "/run/arca-agent/agent.sock"
  tls_disable = true
  socket_mode = "0660"
}
