"""The outbound HTTP client the configuration asks for: response size limit, proxies, private CAs.

Each deployment's origins (scheme, host, port of its URLs) get a :class:`~stellwerk.http.client.Route`:
its ``proxy`` (``direct`` for none) or else the environment's ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
(curl's rules, :mod:`stellwerk.http.proxy`), and its ``ca_file`` trusted *in addition to* the system
store. Deployments sharing an origin must agree on both (``check`` reports it otherwise). Any other
origin follows the environment.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from stellwerk.config import Config, DeploymentConfig
from stellwerk.errors import ConfigError
from stellwerk.http.client import HTTPClient, Route
from stellwerk.http.proxy import Proxy, ProxyEnvironment, parse_proxy
from stellwerk.providers.base import Endpoint

__all__ = ["build_client", "origin_conflicts"]

Origin = tuple[str, str, int]


def _origins(endpoint: Endpoint) -> set[Origin]:
    found: set[Origin] = set()
    for url in (endpoint.chat_url, endpoint.embeddings_url, endpoint.models_url, endpoint.stream_url):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            found.add((parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return found


def _context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()  # the system store...
    context.load_verify_locations(cafile=ca_file)  # ...plus the private CA
    return context


def origin_conflicts(deployments: Iterable[tuple[DeploymentConfig, Endpoint]]) -> list[str]:
    """Deployments that share an origin but not their ``proxy``/``ca_file`` (one route per origin)."""
    seen: dict[Origin, DeploymentConfig] = {}
    problems: list[str] = []
    for dep, endpoint in deployments:
        for origin in sorted(_origins(endpoint)):
            first = seen.setdefault(origin, dep)
            if first is not dep and (first.proxy, first.ca_file) != (dep.proxy, dep.ca_file):
                problems.append(f"deployment '{dep.id}': proxy and ca_file must match those of '{first.id}', "
                                f"which calls the same origin {origin[0]}://{origin[1]}:{origin[2]}")
    return problems


def build_client(config: Config, deployments: Iterable[tuple[DeploymentConfig, Endpoint]] = (),
                 environ: Mapping[str, str] | None = None) -> HTTPClient:
    """The client for ``config``; ``deployments`` pairs each deployment with its endpoint (the URLs it calls)."""
    pairs = list(deployments)
    problems = origin_conflicts(pairs)
    try:
        env = ProxyEnvironment(os.environ if environ is None else environ)
    except ValueError as err:
        problems.append(f"environment (HTTPS_PROXY/HTTP_PROXY/ALL_PROXY): {err}")
        env = ProxyEnvironment({})
    if problems:
        raise ConfigError(problems)
    routes: dict[Origin, Route] = {}
    contexts: dict[str, ssl.SSLContext] = {}
    for dep, endpoint in pairs:
        if dep.proxy is None and dep.ca_file is None:
            continue
        context = None
        if dep.ca_file is not None:
            context = contexts.get(dep.ca_file) or contexts.setdefault(dep.ca_file, _context(dep.ca_file))
        for origin in _origins(endpoint):
            proxy: Proxy | None
            if dep.proxy is None:
                proxy = env.proxy_for(origin[0], origin[1])
            else:
                proxy = None if dep.proxy == "direct" else parse_proxy(dep.proxy)
            routes[origin] = Route(proxy, context)

    def route(scheme: str, host: str, port: int) -> Route:
        found = routes.get((scheme, host, port))
        return found if found is not None else Route(env.proxy_for(scheme, host), None)

    return HTTPClient(max_response_size=config.server.max_response_size, router=route)
