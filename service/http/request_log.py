"""One structured log line per request, and a request id on every response.

Each request gets an id: the client's `X-Request-ID` when it is 1-128
characters of `[A-Za-z0-9._-]`, otherwise a new uuid4 hex. It is returned on
every response, errors included, and is on the request's access line and on
every other line the app logs while serving it.

The access line (logger `traction.access`) says who called what and how it
went: request id, method, route *template* (never the path, which holds
clinic and programme ids), status, latency, token id (never the token),
remote address. No query string, no body, no header values other than the
request id: nothing secret or patient-level.

The measuring happens in a WSGI middleware around the Flask app, so it sees
the status that really went out, whatever failed on the way; other modules
(service/http/metrics.py) subscribe to the same measurement with
`on_request_finished`.

`logging_config()` sends every line (the app's and gunicorn's) to stderr as
JSON or text, by TRACTION_LOG_FORMAT; deploy/gunicorn.conf.py applies it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, has_request_context, request
from werkzeug.wsgi import ClosingIterator

ACCESS_LOGGER = "traction.access"
REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMATS = ("json", "text")
#: Where the request's facts wait in the WSGI environ for the middleware.
ENV_REQUEST_ID = "traction.request_id"
ENV_ROUTE = "traction.route"
ENV_TOKEN_ID = "traction.token_id"
#: The kind of problem document the request was answered with (service/http/problems.py).
ENV_PROBLEM = "traction.problem"
#: Set by a view whose answer streams: measured until it is all sent.
ENV_STREAMED = "traction.streamed"
LISTENERS = "traction.request_listeners"

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
access_log = logging.getLogger(ACCESS_LOGGER)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinishedRequest:
    """What the access line and the request metrics know about one request."""

    request_id: str
    method: str
    route: str | None  # the URL rule template; None when no route matched
    status: int
    seconds: float
    token_id: str | None
    remote_addr: str | None
    #: The problem document's kind (`version-conflict`, ...) when it was answered with one.
    problem: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "latency_ms": round(self.seconds * 1000, 2),
            "token_id": self.token_id,
            "remote_addr": self.remote_addr,
        }


def request_id_from(value: str | None) -> str:
    """The client's request id when it is safe to echo and log, else a new one."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    if has_request_context():
        return request.environ.get(ENV_REQUEST_ID)
    return None


Listener = Callable[[FinishedRequest], None]


def on_request_finished(app: Flask, listener: Listener) -> None:
    """Call `listener` after every request with its FinishedRequest."""
    app.extensions.setdefault(LISTENERS, []).append(listener)


def write_access_line(finished: FinishedRequest) -> None:
    access_log.info("request", extra={"fields": finished.fields()})


class RequestLog:
    """WSGI middleware: request id in, request id out, one measurement per request."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]],
                 listeners: list[Listener]) -> None:
        self.wsgi_app = wsgi_app
        self.listeners = listeners

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENV_REQUEST_ID] = request_id
        status = [500]  # if the app fails before answering

        def start_with_id(status_line: str, headers: list[tuple[str, str]],
                          exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            finished = FinishedRequest(
                request_id=request_id,
                method=environ.get("REQUEST_METHOD", ""),
                route=environ.get(ENV_ROUTE),
                status=status[0],
                seconds=time.perf_counter() - started,
                token_id=environ.get(ENV_TOKEN_ID),
                remote_addr=environ.get("REMOTE_ADDR"),
                problem=environ.get(ENV_PROBLEM),
            )
            for listener in self.listeners:
                try:
                    listener(finished)
                except Exception:  # a log or metric must never break an answer
                    log.exception("request listener %r failed", listener)

        try:
            answer = self.wsgi_app(environ, start_with_id)
        except BaseException:
            finish()
            raise
        if environ.get(ENV_STREAMED):
            # Its body is made as it is sent: measured once the server is done.
            return ClosingIterator(answer, finish)
        finish()
        return answer


def measure_until_sent(environ: dict[str, Any]) -> None:
    """Log and measure this request once its streamed answer is all sent."""
    environ[ENV_STREAMED] = True


def route_template() -> str | None:
    return request.url_rule.rule if request.url_rule is not None else None


def remember_route_and_token(_error: BaseException | None) -> None:
    """Leave the route template and token id where the middleware finds them.

    A teardown hook: it runs for every request, whatever failed before it.
    """
    environ = request.environ
    environ[ENV_ROUTE] = route_template()
    token = g.get("token")
    if token is not None:
        environ[ENV_TOKEN_ID] = token.token_id


def log_exception_without_path(app: Flask) -> None:
    """Flask's own line for an error that escaped every handler names the
    request's path, and the path holds clinic and programme ids: name the
    route template instead."""

    def log_exception(exc_info: Any) -> None:
        app.logger.error("exception on %s %s", request.method, route_template() or "-",
                         exc_info=exc_info)

    app.log_exception = log_exception  # type: ignore[method-assign]


def init_app(app: Flask) -> None:
    log_exception_without_path(app)
    app.teardown_request(remember_route_and_token)
    listeners = app.extensions.setdefault(LISTENERS, [])
    listeners.insert(0, write_access_line)
    app.wsgi_app = RequestLog(app.wsgi_app, listeners)  # type: ignore[method-assign]


# ---- formatting: every line to stderr, JSON or text --------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """A plain line for people at a terminal: the record's fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = dict(getattr(record, "fields", None) or {})
        request_id = current_request_id()
        if request_id is not None:
            fields.setdefault("request_id", request_id)
        if fields:
            text += " " + " ".join(
                f"{key}={'-' if value is None else value}" for key, value in fields.items()
            )
        return text


def logging_config(log_format: str = "json", level: str = "info") -> dict[str, Any]:
    """A logging.config.dictConfig: the app's and gunicorn's lines to stderr.

    The access lines are always written (at INFO), whatever `level` says.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"TRACTION_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {log_format!r}")
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"traction": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "traction",
                       "stream": "ext://sys.stderr"},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # gunicorn's own handlers are dropped: its lines go through ours.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Never gunicorn's access lines: they show the path, which holds ids.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": "INFO"},
        },
    }


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Apply logging_config() in a process that gunicorn does not configure."""
    logging.config.dictConfig(logging_config(log_format, level))
