"""gunicorn settings for the Traction Ledger API (`traction serve` passes -c this file).

The store is opened by the app factory inside each worker, after fork: we
never preload the app in the master, where a connection pool or a SQLite
handle would be shared by every forked worker.
"""

import gc
import os

from gunicorn import glogging

from service.config import Settings
from service.http.request_log import logging_config

# The service's settings (TRACTION_*), read and checked once (service/config.py).
settings = Settings.from_env()
bind = settings.bind
# Requests spend most of their time waiting on the store, so a few threads per
# worker keep the cores busy; workers default to the core count.
workers = settings.workers
worker_class = "gthread"
threads = settings.threads
preload_app = False
# A request that takes longer than this is stuck: the worker is restarted.
timeout = 30
# On SIGTERM, finish in-flight requests for up to this long.
graceful_timeout = 20
keepalive = 5
# X-Forwarded-Proto and the like are believed only from the proxy in front
# (deploy/nginx/); the client's address is set by service/http/forwarded.py
# from the same list. Empty: believed from no one.
forwarded_allow_ips = ",".join(settings.trusted_proxies)
errorlog = "-"
loglevel = settings.log_level
# gunicorn's lines and the app's, to stderr as JSON (or text): service/http/request_log.py.
logconfig_dict = logging_config(settings.log_format, loglevel)


class Logger(glogging.Logger):
    """gunicorn's logger without its access lines.

    The app writes one per request itself, with the route template where
    gunicorn's would show the path, and the path holds programme ids.
    """

    access_log_enabled = False  # gunicorn then skips building the line

    def access(self, resp, req, environ, request_time):
        return None


logger_class = Logger
accesslog = None
# Bound memory growth from fragmentation over very long runs.
max_requests = 100_000
max_requests_jitter = 10_000
# gunicorn 24+ opens a control socket in the home directory by default; we
# manage the server with signals, and several servers on one host (tests,
# benchmarks) must not fight over one socket path.
control_socket_disable = True


def child_exit(server, worker):
    """A worker is gone: drop its live gauges from /metrics (service/http/metrics.py).

    Its counters stay: they are totals, and a sum over workers must not drop.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # Everything made while the worker loaded the app (modules, schemas, the
    # compiled routes) lives as long as the worker: frozen, the collector's
    # full passes no longer walk it, which were the slowest pauses in a
    # request's path (the tail of the latency percentiles).
    gc.freeze()
