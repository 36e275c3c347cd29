#!/usr/bin/env bash
# `make run`: the whole system on one machine, on embedded defaults.
#  - a nats-server child on a free port, its store under var/nats (or NATS_URL if set)
#  - SQLite files under var/, mail as .eml files under var/mail (or SMTP_URL if set), text
#    messages as .txt files under var/sms (or SMS_URL if set)
#  - a dev-only JWT secret generated once into var/dev-jwt-secret (or JWT_SECRET if set)
# Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var/mail var/sms var/log

if [[ -z ${JWT_SECRET:-} ]]; then
  [[ -s var/dev-jwt-secret ]] || head -c 32 /dev/urandom | base64 | tr -d '\n=' > var/dev-jwt-secret
  JWT_SECRET=$(cat var/dev-jwt-secret) # dev-only, generated locally, never committed
fi
export JWT_SECRET
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://127.0.0.1:8080}

echo "building..."
cargo build -q --bins -p scheduling -p matching -p email-notifier -p inapp-notifier -p sms-notifier
bin="${CARGO_TARGET_DIR:-target}/debug"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

if [[ -z ${NATS_URL:-} ]]; then
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  [[ -x $nats_bin ]] || { scripts/prerequisites.sh nats; nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server); }
  port=""
  for _ in $(seq 1 50); do # a free port, found with bash alone
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
  done
  [[ -n $port ]] || { echo "no free port found for nats-server" >&2; exit 1; }
  "$nats_bin" -js -a 127.0.0.1 -p "$port" -sd var/nats -l var/log/nats-server.log &
  pids+=($!)
  export NATS_URL="nats://127.0.0.1:$port"
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
fi

start() { # name port extra-env...
  local name=$1 port=$2; shift 2
  env DATABASE_URL="${DATABASE_URL_PREFIX:-sqlite://var/}$name.sqlite?mode=rwc" LISTEN_ADDR="127.0.0.1:$port" "$@" \
    "$bin/$name" >>"var/log/$name.log" 2>&1 &
  pids+=($!)
}
start scheduling 8080
start matching 8081
start email-notifier 8082 MAIL_DIR="${MAIL_DIR:-var/mail}"
start inapp-notifier 8083
start sms-notifier 8084 SMS_DIR="${SMS_DIR:-var/sms}"

ready() { # GET /readyz with bash alone; true on a 200
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && head -n1 <&3) 2>/dev/null) || return 1
  [[ $reply == *" 200 "* ]]
}
for port in 8080 8081 8082 8083 8084; do
  for _ in $(seq 1 150); do ready "$port" && break; sleep 0.2; done
  ready "$port" || { echo "service on :$port is not ready; see var/log/" >&2; exit 1; }
done

cat <<INFO

slotcast is running (logs in var/log/, mail in ${MAIL_DIR:-var/mail}/, texts in ${SMS_DIR:-var/sms}/):
  scheduling      http://127.0.0.1:8080   (the API)
  matching        http://127.0.0.1:8081
  email-notifier  http://127.0.0.1:8082
  inapp-notifier  http://127.0.0.1:8083   (patients' feeds)
  sms-notifier    http://127.0.0.1:8084   (the gateway's delivery reports)
  nats            $NATS_URL

dev staff token (valid 24 h; dev-only secret in var/dev-jwt-secret):
  export TOKEN=$("$bin/scheduling" mint-token --role staff)

Ctrl-C stops everything.
INFO
wait -n "${pids[@]}" || true
echo "a process exited; see var/log/" >&2
