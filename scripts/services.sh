# Start Redis and RabbitMQ on 127.0.0.1 when they are not answering (sourced by scripts/test).
# Outside CI a server that is missing is a warning (the tests that need it are skipped); with
# CI=true those tests fail (tests/services.py), so a missing server cannot hide behind a skip.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME SECONDS
  for _ in $(seq 1 "$3"); do
    port_open "$1" && return 0
    sleep 1
  done
  echo "error: $2 did not answer on 127.0.0.1:$1 within $3 s" >&2
  return 1
}

in_ci() { case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; *) return 1 ;; esac; }

service_problem() {  # service_problem MESSAGE...: "warning:" outside CI, "error:" in CI
  local level=warning
  in_ci && level=error
  printf '%s: %s\n' "$level" "$1" >&2
  shift
  local line
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  if in_ci; then
    echo "  (CI=true: the tests that need it will fail)" >&2
  else
    echo "  (the tests that need it will be skipped)" >&2
  fi
}

writable_dir() { mkdir -p "$1" 2>/dev/null && [ -w "$1" ]; }

start_redis() {
  if writable_dir /var/lib/redis && writable_dir /var/log/redis \
    && { [ ! -e /var/log/redis/ci.log ] || [ -w /var/log/redis/ci.log ]; }; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    # Not root (or those folders are not ours): keep Redis's files in a temporary folder.
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/jararaca-redis.XXXXXX")"
    echo "    (/var/lib/redis or /var/log/redis is not writable: using $dir)"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir "$dir" --logfile "$dir/redis.log"
  fi
}

RABBITMQ_HELP=(
  "install it: sudo apt-get install rabbitmq-server (Debian/Ubuntu), brew install rabbitmq"
  "(macOS), or docker run -d -p 5672:5672 rabbitmq:3; or point the tests at a RabbitMQ of"
  "your own: make it answer on 127.0.0.1:5672 (e.g. ssh -N -L 5672:localhost:5672 HOST) and"
  "set JARARACA_TEST_AMQP_URL if its user is not guest:guest"
  "(default amqp://guest:guest@127.0.0.1:5672/). See README.md, Installing the servers."
)
REDIS_HELP=(
  "install it: sudo apt-get install redis-server (Debian/Ubuntu), brew install redis (macOS),"
  "or docker run -d -p 6379:6379 redis:7; or make a Redis of your own answer on"
  "127.0.0.1:6379 and set JARARACA_TEST_REDIS_URL if it needs a password"
  "(default redis://127.0.0.1:6379/0). See README.md, Installing the servers."
)

ensure_services() {
  if ! port_open 6379; then
    if command -v redis-server >/dev/null; then
      echo "==> starting redis-server"
      if start_redis; then
        wait_port 6379 Redis 30
      else
        service_problem "redis-server is installed but did not start (see its message above)" \
          "${REDIS_HELP[@]}"
        in_ci && return 1
      fi
    else
      service_problem "Redis is not running on 127.0.0.1:6379 and redis-server is not installed" \
        "${REDIS_HELP[@]}"
    fi
  fi
  if ! port_open 5672; then
    if command -v rabbitmq-server >/dev/null; then
      echo "==> starting rabbitmq-server"
      if rabbitmq-server -detached; then
        wait_port 5672 RabbitMQ 120
      else
        service_problem "rabbitmq-server is installed but did not start (see its message above)" \
          "as a user other than root or rabbitmq, start it yourself and run ./scripts/test again:" \
          "sudo systemctl start rabbitmq-server, or sudo rabbitmq-server -detached; or" \
          "${RABBITMQ_HELP[@]}"
        in_ci && return 1
      fi
    else
      service_problem "RabbitMQ is not running on 127.0.0.1:5672 and rabbitmq-server is not installed" \
        "${RABBITMQ_HELP[@]}"
    fi
  fi
  return 0
}
