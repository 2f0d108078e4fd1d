#!/usr/bin/env bash
# Ensures the services the tests need are running on 127.0.0.1: Redis on 6379 and PostgreSQL on
# 5432. Starts an installed-but-stopped service; installs it with apt-get where it is missing.
# Idempotent: does nothing for a service that already answers.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null; then
    log "apt-get not found; install $* by hand"; exit 1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name, command
  for _ in $(seq 1 50); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "$1 did not come up"; exit 1
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    log "redis is running"; return
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  wait_for redis "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG"
}

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "postgresql is running"; return
  fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  log "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
  wait_for postgresql "pg_isready -h 127.0.0.1 -p 5432 -q"
}

ensure_redis
ensure_postgres
