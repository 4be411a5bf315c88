"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``."""
from whisper_api.app import create_app

app = create_app()
