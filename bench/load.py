"""Load from wrk, in its own process, driven by bench/lua/load.lua.

Each run writes the script's configuration as a Lua table (targets, tokens,
the run's id nonce) to bench/data/tmp/ and reads back the one JSON line the
script's done() prints. Every run is bounded: wrk's own duration, and a
subprocess timeout beyond it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from typing import Any

from bench.common import DATA, LUA, log

WRK_INSTALL_HINT = "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu)"


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(WRK_INSTALL_HINT)
    return path


def to_lua(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Lua string literal here
    if isinstance(value, list | tuple):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        # A key that is no Lua name (If-None-Match) is written as ["..."].
        return "{" + ", ".join(f"{k if k.isidentifier() else '[' + to_lua(k) + ']'} = "
                               f"{to_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as Lua")


def run_wrk(base_url: str, config: dict[str, Any], *, duration: float, threads: int = 2,
            connections: int = 32, label: str = "wrk") -> dict[str, Any]:
    """Run wrk against base_url (127.0.0.1 only); return its figures."""
    if not base_url.startswith("http://127.0.0.1:"):
        raise ValueError("benchmarks only send traffic to 127.0.0.1")
    wrk = require_wrk()
    config = {"nonce": secrets.token_hex(4), "threads": threads, "rate": 0, **config}
    tmp = DATA / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    config_path = tmp / f"{label}-{config['nonce']}.lua"
    config_path.write_text("return " + to_lua(config) + "\n")
    seconds = max(1, round(duration))
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
               "--timeout", "10s", "-s", str(LUA / "load.lua"), base_url]
    try:
        done = subprocess.run(command, env={**os.environ, "BENCH_WRK_CONFIG": str(config_path)},
                              capture_output=True, text=True, timeout=seconds + 60)
    finally:
        config_path.unlink(missing_ok=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no figures (exit {done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds_run = raw["duration_us"] / 1e6
    errors = raw["errors"]
    latency = {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()}  # ms
    result = {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "requests_per_s": round(raw["requests"] / seconds_run, 1) if seconds_run else 0.0,
        "non_2xx": errors["status"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "latency_ms": latency,
        "threads": threads,
        "connections": connections,
        "rate_target": config.get("rate") or None,
        "statuses": {int(k): v for k, v in (raw.get("statuses") or {}).items()},
    }
    log(f"  {label}: {result['requests_per_s']:.0f} req/s, p99 {latency['p99']:.1f} ms, "
        f"non-2xx {result['non_2xx']}, socket errors {result['socket_errors']}")
    return result


def run_with_warmup(base_url: str, config: dict[str, Any], *, duration: float, warmup: float,
                    label: str, **kwargs: Any) -> dict[str, Any]:
    """A short discarded run first (caches, connections, lazy imports), then the measured one."""
    if warmup > 0:
        run_wrk(base_url, config, duration=warmup, label=label + "-warmup", **kwargs)
    return run_wrk(base_url, config, duration=duration, label=label, **kwargs)
