#!/usr/bin/env bash
# A worker host of the distributed queue: installs what is missing, places the offline default
# model if needed, then runs one device worker per GPU (CPU workers without one) fed by the
# Redis in WHISPER_API_QUEUE_URL. Settings come from WHISPER_API_* variables (see README.md).
source "$(dirname "$0")/setup.sh"
if [ -z "${WHISPER_API_QUEUE_URL:-}" ]; then
  echo "set WHISPER_API_QUEUE_URL=redis://redis-host:6379/0 (the same as on the API nodes)" >&2
  exit 2
fi
setup_all runtime
cd "$ROOT"
whisper-api-models --preload
exec whisper-api worker
