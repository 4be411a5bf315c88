#!/usr/bin/env bash
# Installs everything the tests need, places the offline models, runs the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k dashboard).
source "$(dirname "$0")/setup.sh"
setup_all test
cd "$ROOT"
whisper-api-models tiny.en base
exec python -m pytest "$@"
