#!/usr/bin/env bash
# `make bench` needs a fast SMTP server that accepts every message: Postfix's `smtp-sink`, from
# Debian's `postfix` package. Installing the package does not start a mail server where
# policy-rc.d forbids it (containers); where it does start one, it listens on port 25, which the
# benchmark does not use (it runs smtp-sink on a free port of its own).
set -euo pipefail

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

if [[ -n ${SMTP_SINK_BIN:-} ]]; then exit 0; fi
if command -v smtp-sink >/dev/null || [[ -x /usr/sbin/smtp-sink ]]; then exit 0; fi
echo "smtp-sink is missing; installing Debian's postfix package for it"
if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix; }; then
  echo "could not install postfix: run  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix  (or set SMTP_SINK_BIN)" >&2
  exit 1
fi
