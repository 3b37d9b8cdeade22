"""The service's settings: every TRACTION_* variable, read once, typed and checked.

`Settings.from_env()` is the only reader of the environment in the service
(besides PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads itself and
`traction serve` sets for gunicorn's workers). A value that does not parse
stops the process at start-up with a message that names the variable and
says what it accepts; nothing reads a variable later, per request, or with a
different default. Everything else is given a `Settings` (or the part of it
it needs) by the composition root (service/bootstrap.py).

The README's configuration table lists the same variables; a test checks
that it lists every one of `VARIABLES`.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from service.audit.checkpoints import WeakKey, key_bytes
from service.storage.sealing import parse_kek
from service.storage.stores import (
    DatabaseUrlError,
    Store,
    StoreOptions,
    parse_database_url,
)

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("json", "text")


class SettingsError(ValueError):
    """A variable's value cannot be used: names the variable and what it accepts."""

    def __init__(self, variable: str, value: str | None, accepts: str) -> None:
        shown = f"{variable}={value!r}" if value is not None else variable
        super().__init__(f"{shown} is not valid: {accepts}")
        self.variable = variable


class SettingMissing(SettingsError):
    """A variable that has no default here must be set."""

    def __init__(self, variable: str, why: str) -> None:
        ValueError.__init__(self, f"{variable} is not set: {why}")
        self.variable = variable


#: The source tree the service runs from: `make run`, the image and the systemd
#: units all install it in place (editable), with deploy/ beside the packages.
SOURCE_TREE = Path(__file__).resolve().parents[1]


def default_database_url(source_tree: Path | None = None) -> str | None:
    """The default store: var/traction.sqlite in the source tree, as an absolute
    path, so every command finds the same store whatever directory it runs in.
    None when the packages are not in a source tree (installed elsewhere):
    there is no sensible default, and TRACTION_DATABASE_URL must be set."""
    source_tree = source_tree or SOURCE_TREE
    if not (source_tree / "pyproject.toml").is_file():
        return None
    return f"sqlite:///{source_tree / 'var' / 'traction.sqlite'}"


def _default_workers() -> int:
    return os.cpu_count() or 2


@dataclass(frozen=True)
class Settings:
    """Everything an operator can set, with its default."""

    #: Empty only outside a source tree, where `from_env` insists on the variable.
    database_url: str = field(default_factory=lambda: default_database_url() or "")
    #: A streaming replica of the PostgreSQL store, for reads (README, "Reads from a replica").
    read_database_url: str | None = None
    bind: str = "127.0.0.1:8000"
    workers: int = field(default_factory=_default_workers)
    threads: int = 8
    max_body_bytes: int = 2_000_000
    max_bulk_bytes: int = 4_000_000_000
    pg_pool_size: int = 4
    pg_max_overflow: int = 4
    pg_connect_timeout: int = 1
    pg_lock_timeout: int = 10
    sqlite_lock_timeout: int = 30
    aggregate_cache_size: int = 1000
    log_level: str = "info"
    log_format: str = "json"
    checkpoint_key: str | None = field(default=None, repr=False)
    #: Keys that signed earlier checkpoints (rotation): they authenticate, never sign.
    checkpoint_previous_keys: tuple[str, ...] = field(default=(), repr=False)
    #: The file every checkpoint is also appended to, outside the database.
    checkpoint_log: Path | None = None
    #: Proxies whose X-Forwarded-For is believed (service/http/forwarded.py).
    trusted_proxies: tuple[str, ...] = ()
    #: The key-encryption key (base64 of 32 bytes) that wraps every programme's data key:
    #: TRACTION_DATA_KEY, or the content of TRACTION_DATA_KEY_FILE (read at start).
    data_key: str | None = field(default=None, repr=False)
    data_key_file: str | None = None
    #: What a Prometheus scrape sends as its bearer token for /metrics (README, "Metrics").
    metrics_token: str | None = field(default=None, repr=False)
    min_position_wait: float = 2.0
    #: Reads a worker lets wait for min_position at once, and how many of them one token
    #: may have: the rest are answered 503 at once (README, "Waiting for a position").
    min_position_waiters: int = 2
    min_position_waiters_per_token: int = 1
    read_staleness: float = 0.2
    projection_drop_grace: float = 5.0
    #: Where FHIR Bulk Data exports write their NDJSON files (None: beside the store).
    fhir_export_dir: str | None = None
    demo_clinics: int = 4
    demo_programmes: int = 60

    @property
    def store(self) -> Store:
        """The store the service records into (its URL checked by `from_env`)."""
        return parse_database_url(self.database_url, StoreOptions(
            pg_pool_size=self.pg_pool_size,
            pg_max_overflow=self.pg_max_overflow,
            pg_connect_timeout=self.pg_connect_timeout,
            pg_lock_timeout=self.pg_lock_timeout,
            sqlite_lock_timeout=self.sqlite_lock_timeout,
            aggregate_cache_size=self.aggregate_cache_size,
        ))

    @property
    def fhir_export_path(self) -> Path:
        """The directory of FHIR export files: TRACTION_FHIR_EXPORT_DIR, else
        `fhir-exports` beside a SQLite store, or in the temporary directory."""
        if self.fhir_export_dir:
            return Path(self.fhir_export_dir)
        sqlite_path = self.store.sqlite_path
        if sqlite_path is not None:
            return sqlite_path.absolute().parent / "fhir-exports"
        return Path(tempfile.gettempdir()) / "traction-fhir-exports"

    @property
    def kek(self) -> bytes | None:
        """The key-encryption key, or None when neither variable is set."""
        return parse_kek(self.data_key) if self.data_key is not None else None

    @property
    def read_store(self) -> Store | None:
        """The replica that serves reads, in the store's schema; None without one."""
        if self.read_database_url is None:
            return None
        replica = parse_database_url(self.read_database_url, self.store.options)
        return replace(replica, pg_schema=self.store.pg_schema)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every TRACTION_* variable (unset or empty: the default); SettingsError
        on the first value that does not parse, or that does not fit the others."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            raw = environ.get(variable.name, "")
            secret_file = (environ.get(f"{variable.name}_FILE", "")
                           if variable.secret and not variable.own_file else "")
            if secret_file.strip() and not raw.strip():
                raw = _read_secret_file(variable.name, secret_file.strip())
            if raw.strip():
                values[variable.field] = variable.parse(raw.strip())
            elif raw and variable.secret:
                # A key of spaces is a mistake to point out, not a key to ignore.
                raise SettingsError(variable.name, None, variable.accepts + " (it is set but "
                                    "blank: unset it, or give it a value)")
        if values.get("data_key_file") is not None:
            if values.get("data_key") is not None:
                raise SettingsError("TRACTION_DATA_KEY_FILE", values["data_key_file"],
                                    "set it or TRACTION_DATA_KEY, not both")
            values["data_key"] = _key_file(values["data_key_file"])
        settings = cls(**values)
        if not settings.database_url:
            raise SettingMissing(
                "TRACTION_DATABASE_URL",
                "traction runs outside its source tree, so it has no default store; set it "
                "to sqlite:////absolute/path/traction.sqlite or postgresql://user@host/dbname")
        settings.check_read_database_url()
        return settings

    def check_read_database_url(self) -> None:
        """A replica belongs to a PostgreSQL store, and reads its schema."""
        if self.read_database_url is None:
            return
        replica = parse_database_url(self.read_database_url)
        if not self.store.is_postgres:
            raise SettingsError(
                "TRACTION_READ_DATABASE_URL", self.read_database_url,
                "a read replica needs a PostgreSQL store, and TRACTION_DATABASE_URL is "
                f"{self.store.kind}")
        named = "schema" in parse_qs(urlsplit(self.read_database_url).query)
        if named and replica.pg_schema != self.store.pg_schema:
            raise SettingsError(
                "TRACTION_READ_DATABASE_URL", self.read_database_url,
                f"the replica is read in the store's schema ({self.store.pg_schema!r}); "
                "leave ?schema= out of it")


def _read_secret_file(name: str, path: str) -> str:
    """A secret from the file NAME_FILE names (a Docker secret, a systemd
    credential), so that it never sits in an environment file."""
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{name}_FILE", path, f"a readable file holding {name} "
                            f"({error.__class__.__name__})") from None
    if not secret:
        raise SettingsError(f"{name}_FILE", path, f"a file holding {name}: it is empty")
    return secret


@dataclass(frozen=True)
class Variable:
    """One environment variable: the field it sets and how its text is read."""

    name: str
    field: str
    read: Callable[[str], Any]
    accepts: str
    #: A secret's value is never repeated in an error message.
    secret: bool = False
    #: A secret whose NAME_FILE is a variable of its own, with its own checks
    #: (else any secret may be read from the file NAME_FILE names).
    own_file: bool = False

    def parse(self, raw: str) -> Any:
        try:
            return self.read(raw)
        except (ValueError, DatabaseUrlError) as error:
            detail = f" ({error})" if isinstance(error, DatabaseUrlError | WeakKey) else ""
            raise SettingsError(self.name, None if self.secret else raw,
                                self.accepts + detail) from None


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def read(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ValueError(raw)
        return value
    return read


def _seconds(low: float = 0.0, high: float = float("inf")) -> Callable[[str], float]:
    def read(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high or value == float("inf"):  # also refuses NaN
            raise ValueError(raw)
        return value
    return read


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def read(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()
    return read


def _database_url(raw: str) -> str:
    parse_database_url(raw)
    return raw


def _replica_url(raw: str) -> str:
    if not parse_database_url(raw).is_postgres:
        raise ValueError(raw)
    return raw


def _bind(raw: str) -> str:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(raw)
    return raw


def _signing_key(raw: str) -> str:
    key_bytes(raw)  # WeakKey unless it holds 256 bits of randomness
    return raw


def _previous_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(","))
    if not all(keys):
        raise ValueError(raw)
    return keys


def _networks(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(","))
    for item in items:
        ipaddress.ip_network(item)  # ValueError if it is not one (or has host bits set)
    return items


def _file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_absolute() or path.is_dir():
        raise ValueError(raw)
    return path


def _data_key(raw: str) -> str:
    parse_kek(raw)
    return raw


def _key_file(path: str) -> str:
    """The KEK in a key file (read once, at start); SettingsError naming what is wrong."""
    try:
        text = Path(path).read_text().strip()
    except OSError as error:
        raise SettingsError("TRACTION_DATA_KEY_FILE", path,
                            f"a readable file holding the key ({error.strerror})") from None
    try:
        parse_kek(text)
    except ValueError:
        raise SettingsError("TRACTION_DATA_KEY_FILE", path,
                            "a file holding one key as `traction keys generate` prints it "
                            "(base64 of 32 bytes)") from None
    return text


def _scrape_token(raw: str) -> str:
    if len(raw) < 32 or any(character.isspace() or not character.isprintable()
                            for character in raw):
        raise ValueError("a scrape token needs at least 32 characters, no spaces")
    return raw


VARIABLES = (
    Variable("TRACTION_DATABASE_URL", "database_url", _database_url,
             "sqlite:///relative/path, sqlite:////absolute/path or "
             "postgresql://user:password@host:port/dbname[?schema=name]"),
    Variable("TRACTION_READ_DATABASE_URL", "read_database_url", _replica_url,
             "postgresql://user:password@host:port/dbname of a streaming replica of "
             "TRACTION_DATABASE_URL's server (the same database)"),
    Variable("TRACTION_BIND", "bind", _bind, "HOST:PORT, e.g. 127.0.0.1:8000"),
    Variable("TRACTION_WORKERS", "workers", _integer(1, 64), "an integer from 1 to 64"),
    Variable("TRACTION_THREADS", "threads", _integer(1, 256), "an integer from 1 to 256"),
    Variable("TRACTION_MAX_BODY_BYTES", "max_body_bytes", _integer(1024),
             "an integer of at least 1024 (bytes)"),
    Variable("TRACTION_MAX_BULK_BYTES", "max_bulk_bytes", _integer(1024),
             "an integer of at least 1024 (bytes)"),
    Variable("TRACTION_PG_POOL_SIZE", "pg_pool_size", _integer(1, 1000),
             "an integer from 1 to 1000"),
    Variable("TRACTION_PG_MAX_OVERFLOW", "pg_max_overflow", _integer(0, 1000),
             "an integer from 0 to 1000"),
    Variable("TRACTION_PG_CONNECT_TIMEOUT", "pg_connect_timeout", _integer(1, 3600),
             "a whole number of seconds from 1 to 3600"),
    Variable("TRACTION_PG_LOCK_TIMEOUT", "pg_lock_timeout", _integer(1, 3600),
             "a whole number of seconds from 1 to 3600"),
    Variable("TRACTION_SQLITE_LOCK_TIMEOUT", "sqlite_lock_timeout", _integer(1, 3600),
             "a whole number of seconds from 1 to 3600"),
    Variable("TRACTION_AGGREGATE_CACHE_SIZE", "aggregate_cache_size", _integer(0),
             "an integer of at least 0 (programmes)"),
    Variable("TRACTION_LOG_LEVEL", "log_level", _choice(LOG_LEVELS),
             "one of " + ", ".join(LOG_LEVELS)),
    Variable("TRACTION_LOG_FORMAT", "log_format", _choice(LOG_FORMATS),
             "one of " + ", ".join(LOG_FORMATS)),
    Variable("TRACTION_CHECKPOINT_KEY", "checkpoint_key", _signing_key,
             "the HMAC key of signed checkpoints: at least 256 random bits, as hex or "
             "base64 (`traction audit new-key` prints one)", secret=True),
    Variable("TRACTION_CHECKPOINT_PREVIOUS_KEYS", "checkpoint_previous_keys", _previous_keys,
             "earlier checkpoint keys, separated by commas (they verify, never sign)",
             secret=True),
    Variable("TRACTION_TRUSTED_PROXIES", "trusted_proxies", _networks,
             "IP addresses or networks, separated by commas (e.g. 172.30.80.10 or "
             "10.0.0.0/24): the proxies whose X-Forwarded-For is believed"),
    Variable("TRACTION_CHECKPOINT_LOG", "checkpoint_log", _file,
             "the absolute path of a file that every checkpoint is appended to"),
    Variable("TRACTION_DATA_KEY", "data_key", _data_key,
             "a key as `traction keys generate` prints it (base64 of 32 bytes)", secret=True,
             own_file=True),
    Variable("TRACTION_DATA_KEY_FILE", "data_key_file", str,
             "the path of a file holding the key (as `traction keys generate` prints it)"),
    Variable("TRACTION_METRICS_TOKEN", "metrics_token", _scrape_token,
             "a secret of at least 32 characters, no spaces (e.g. from "
             "`openssl rand -hex 32`): the bearer token of /metrics"),
    Variable("TRACTION_MIN_POSITION_WAIT", "min_position_wait", _seconds(0, 30),
             "a number of seconds from 0 to 30"),
    Variable("TRACTION_MIN_POSITION_WAITERS", "min_position_waiters", _integer(0, 256),
             "an integer from 0 to 256 (reads waiting at once, per worker)"),
    Variable("TRACTION_MIN_POSITION_WAITERS_PER_TOKEN", "min_position_waiters_per_token",
             _integer(0, 256), "an integer from 0 to 256 (reads waiting at once, per token "
             "and worker)"),
    Variable("TRACTION_READ_STALENESS", "read_staleness", _seconds(),
             "a number of seconds of at least 0"),
    Variable("TRACTION_PROJECTION_DROP_GRACE", "projection_drop_grace", _seconds(),
             "a number of seconds of at least 0"),
    Variable("TRACTION_FHIR_EXPORT_DIR", "fhir_export_dir", str,
             "a directory (FHIR Bulk Data export files)"),
    Variable("TRACTION_DEMO_CLINICS", "demo_clinics", _integer(1, 200),
             "an integer from 1 to 200"),
    Variable("TRACTION_DEMO_PROGRAMMES", "demo_programmes", _integer(1, 100_000),
             "an integer from 1 to 100000"),
)
