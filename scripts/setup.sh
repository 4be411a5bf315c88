#!/usr/bin/env bash
# Installs what whisper_api needs: Debian packages, a virtual environment in .venv, the
# package itself, and the offline Whisper models. Sourced by start.sh and test.sh.
#   setup_all runtime   -> service only
#   setup_all test      -> service + test tools (pytest, Chromium for the dashboard tests)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WHISPER_API_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {  # installs the Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

setup_all() {
  local mode="$1" extras=""
  local debs=(python3-venv python3-pip ffmpeg)
  [ "$mode" = test ] && debs+=(espeak-ng sox chromium fonts-dejavu-core redis-server) && extras="test"
  if command -v nvidia-smi >/dev/null 2>&1; then extras="${extras:+$extras,}gpu"; fi
  command -v dpkg >/dev/null && apt_install "${debs[@]}"

  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local stamp="$VENV/.whisper_api-$mode-$(cat "$ROOT/setup.cfg" | sha1sum | cut -c1-12)-${extras//,/_}"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT${extras:+[$extras]}"
    touch "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}
