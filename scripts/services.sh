# Start Redis and RabbitMQ on 127.0.0.1 when they are not answering (sourced by scripts/test).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME SECONDS
  for _ in $(seq 1 "$3"); do
    port_open "$1" && return 0
    sleep 1
  done
  echo "error: $2 did not answer on 127.0.0.1:$1 within $3 s" >&2
  return 1
}

ensure_services() {
  if ! port_open 6379; then
    if command -v redis-server >/dev/null; then
      echo "==> starting redis-server"
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
      wait_port 6379 Redis 30
    else
      echo "warning: Redis is not running and redis-server is not installed (see README)" >&2
    fi
  fi
  if ! port_open 5672; then
    if command -v rabbitmq-server >/dev/null; then
      echo "==> starting rabbitmq-server"
      rabbitmq-server -detached
      wait_port 5672 RabbitMQ 120
    else
      echo "warning: RabbitMQ is not running and rabbitmq-server is not installed (see README)" >&2
    fi
  fi
}
