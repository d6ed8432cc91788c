"""WSGI entry point: ``gunicorn -c config/gunicorn.conf.py wsgi:app``."""

from federator import create_app

app = create_app()
