"""The client's address behind the proxy, believed only from the proxy.

Behind nginx (deploy/nginx/) every request reaches gunicorn from the proxy's
address, so the request log and the access log would record the proxy, not
the reader. The proxy says who the client was in `X-Forwarded-For`; anyone
can send that header, so it is believed only when the request comes from an
address in TRACTION_TRUSTED_PROXIES, and then only its last entry (the one
the proxy itself added: entries before it are whatever the client sent).
werkzeug's ProxyFix trusts the header from any peer, which is why this is
not it. gunicorn's `forwarded_allow_ips` (deploy/gunicorn.conf.py) applies
the same list to the scheme headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: Sequence[str]) -> tuple[Network, ...]:
    """Addresses or networks (`10.0.0.5`, `172.30.80.0/24`); ValueError if one is not."""
    return tuple(ipaddress.ip_network(item.strip()) for item in raw)


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the forwarded client address when,
    and only when, the request came from a trusted proxy."""

    def __init__(self, app: Callable[..., Iterable[bytes]], proxies: Sequence[str]) -> None:
        self.app = app
        self.networks = parse_networks(proxies)

    def trusted(self, address: str | None) -> bool:
        try:
            peer = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(peer in network for network in self.networks)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self.trusted(environ.get("REMOTE_ADDR")):
            client = forwarded.split(",")[-1].strip()
            try:
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(client))
            except ValueError:
                pass  # not an address: keep the proxy's rather than record junk
        return self.app(environ, start_response)
