#!/usr/bin/env bash
# Makes sure the servers the tests use are there: nats-server on PATH, Kannel's bearerbox and
# smsbox (the SMS gateway the sms-notifier's tests send through), and Postgres answering on
# TEST_POSTGRES_URL's host (default 127.0.0.1:5432); and schemathesis, which fuzzes the HTTP APIs,
# in a venv of its own under var/. Installs or starts them where it can (as root on Debian);
# otherwise stops with the one command that does. `prerequisites.sh nats`
# sees to nats-server alone (what `make run` needs).
set -euo pipefail
only=${1:-}

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if ! command -v nats-server >/dev/null && [[ ! -x /usr/sbin/nats-server ]]; then
  echo "nats-server is missing; installing it from Debian's packages"
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq nats-server; }; then
    echo "could not install nats-server: run  apt-get install -y nats-server" >&2
    exit 1
  fi
fi

[[ $only == nats ]] && exit 0

if [[ ! -x /usr/sbin/bearerbox || ! -x /usr/sbin/smsbox ]]; then
  echo "Kannel is missing; installing it from Debian's packages"
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq kannel; }; then
    echo "could not install Kannel: run  apt-get install -y kannel" >&2
    exit 1
  fi
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
installed_pg=""
if ! command -v pg_isready >/dev/null; then
  echo "PostgreSQL is missing; installing it from Debian's packages"
  if ! { as_root apt-get update -qq && as_root apt-get install -y -qq postgresql; }; then
    echo "could not install PostgreSQL: run  apt-get install -y postgresql" >&2
    exit 1
  fi
  installed_pg=yes
fi
if ! pg_up; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it"
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  if ! pg_up; then
    echo "PostgreSQL did not start: run  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
    exit 1
  fi
fi
if [[ -n $installed_pg ]]; then
  # A cluster we just installed for the tests: let `postgres` in over loopback without a password.
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi
# The tests connect as `postgres` without a password (trust on loopback) unless TEST_POSTGRES_URL says otherwise.
if [[ -z ${TEST_POSTGRES_URL:-} ]] && ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  echo "cannot connect as postgres@127.0.0.1 without a password: set TEST_POSTGRES_URL (e.g. postgres://user:pass@127.0.0.1:5432/postgres)" >&2
  exit 1
fi
# schemathesis (PyPI) runs in testing/e2e/tests/fuzz.rs; pinned, in a venv, never system-wide.
st_version=4.32.5
venv="$(cd "$(dirname "$0")/.." && pwd)/var/schemathesis"
if [[ $("$venv/bin/st" --version 2>/dev/null) != "st, version $st_version" ]]; then
  echo "installing schemathesis $st_version into $venv"
  if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
    as_root apt-get update -qq && as_root apt-get install -y -qq python3 python3-venv || true
  fi
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$st_version"; }; then
    echo "could not install schemathesis: run  python3 -m venv $venv && $venv/bin/pip install schemathesis==$st_version" >&2
    exit 1
  fi
fi
echo "prerequisites: nats-server $(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version), Kannel, PostgreSQL up, $("$venv/bin/st" --version)"
