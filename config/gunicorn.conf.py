"""gunicorn settings for the broker.

A lookup spends its time waiting on authorities, so threads (gthread) rather
than processes carry the concurrency; no gevent/eventlet monkey-patching
beside the database drivers. Overridable with GUNICORN_* variables.

Metrics: every worker writes its Prometheus samples to files in
``PROMETHEUS_MULTIPROC_DIR`` (set here, before any worker imports
``prometheus_client``; a fresh directory per server unless the operator
names one), so a scrape of any worker reports the whole server. A dead
worker's live gauges are dropped in ``child_exit``.
"""

import glob
import os
import shutil
import tempfile
from typing import Any

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

_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="federator-metrics-")


def on_starting(server: Any) -> None:
    """Samples of an earlier run of this server would be summed with the new ones."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """A directory made for this server goes with it."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
