#!/usr/bin/env bash
# Ensures Debian's Chromium is at /usr/bin/chromium for the debug page's end-to-end test
# (test/integration/debugPage.test.ts drives it with playwright-core, which downloads no browser).
# Installs it with apt-get only when missing; idempotent.
set -euo pipefail

log() { printf 'chromium: %s\n' "$*"; }

if [ -x /usr/bin/chromium ]; then
  log "installed"; exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "apt-get not found; install Chromium at /usr/bin/chromium by hand (the debug page test is skipped without it)"
  exit 0
fi
log "installing chromium"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
log "installed $(/usr/bin/chromium --version 2>/dev/null || true)"
