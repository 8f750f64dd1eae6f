"""WSGI entry point for gunicorn: `gunicorn c3s.web.wsgi:app`."""

from c3s.web import create_app

app = create_app()
