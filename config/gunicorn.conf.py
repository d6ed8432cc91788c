"""gunicorn settings for the broker.

A lookup spends its time waiting on authorities, so threads (gthread) rather
than processes carry the concurrency; no gevent/eventlet monkey-patching
beside the database drivers. Overridable with GUNICORN_* variables.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None  # request lines are not needed; no personal data is in URLs anyway
errorlog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
