#!/usr/bin/env bash
# Installs what is missing, places the offline default model if needed, starts the service.
# Settings come from WHISPER_API_* variables (see README.md).
source "$(dirname "$0")/setup.sh"
setup_all runtime
cd "$ROOT"
whisper-api-models --preload
exec gunicorn -c gunicorn.conf.py wsgi:app
