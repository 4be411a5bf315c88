"""``python -m whisper_api worker``: the same as the ``whisper-api`` command."""
import sys

from .cli import main

sys.exit(main())
