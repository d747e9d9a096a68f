"""Outbound HTTP proxies as curl reads them: ``https_proxy``/``http_proxy``/``all_proxy`` and ``no_proxy``.

* ``https_proxy`` (or ``HTTPS_PROXY``) serves https upstreams, through a ``CONNECT`` tunnel;
  ``http_proxy`` (or ``HTTP_PROXY``) serves http upstreams, with absolute-form requests;
  ``all_proxy`` (or ``ALL_PROXY``) serves both when the specific one is not set.
* ``no_proxy`` (or ``NO_PROXY``): comma- or space-separated; ``*`` alone matches every host; a name
  matches itself and its subdomains (a leading dot is ignored); an IP address matches itself, a CIDR
  range its addresses. As with curl, loopback addresses are proxied too unless ``no_proxy`` names them.
* A proxy URL without a scheme is ``http://``; without a port, port 1080 (curl's default). Only plain
  ``http://`` proxies are supported.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

__all__ = ["Proxy", "ProxyEnvironment", "no_proxy_matches", "parse_proxy"]


class Proxy:
    """An HTTP proxy: where to connect, and the ``Proxy-Authorization`` value if it has credentials."""

    __slots__ = ("authorization", "host", "port")

    def __init__(self, host: str, port: int, authorization: str | None = None) -> None:
        self.host = host
        self.port = port
        self.authorization = authorization

    def __repr__(self) -> str:  # never the credentials
        return f"Proxy({self.host}:{self.port})"


def parse_proxy(url: str) -> Proxy:
    """``http://[user:password@]host[:port]``; raises ValueError naming what is wrong (never the password)."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() != "http":
        raise ValueError(f"proxy scheme '{parts.scheme}' is not supported (only http:// proxies)")
    try:
        host, port = parts.hostname, parts.port or 1080
    except ValueError:
        raise ValueError("proxy URL has an invalid port") from None
    if not host:
        raise ValueError("proxy URL has no host")
    authorization = None
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Proxy(host, port, authorization)


def no_proxy_matches(host: str, no_proxy: str) -> bool:
    """Whether ``host`` is exempt from proxying by a ``no_proxy`` value (curl's rules, above)."""
    name = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for raw in no_proxy.replace(",", " ").split():
        entry = raw.lower()
        if entry == "*":
            return True
        entry = entry.lstrip(".").rstrip(".")
        if entry.startswith("["):
            entry = entry[1:entry.find("]")] if "]" in entry else entry[1:]
        elif entry.count(":") == 1:
            entry = entry.split(":", 1)[0]  # a port: ignored
        if not entry:
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if name == entry or name.endswith("." + entry):
            return True
    return False


class ProxyEnvironment:
    """The proxies the environment asks for: ``proxy_for(scheme, host)`` → a :class:`Proxy` or None."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        def get(name: str) -> str:
            return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()

        fallback = get("all_proxy")
        self.https = parse_proxy(get("https_proxy") or fallback) if (get("https_proxy") or fallback) else None
        self.http = parse_proxy(get("http_proxy") or fallback) if (get("http_proxy") or fallback) else None
        self.no_proxy = get("no_proxy")

    def proxy_for(self, scheme: str, host: str) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or (self.no_proxy and no_proxy_matches(host, self.no_proxy)):
            return None
        return proxy
