"""Checks of configured values that end up on the wire: header injection, proxies, CA files, host lists.

A value with CR, LF or NUL in a header would inject headers upstream, and a trailing newline (common in
secret files) knocks the upstream connection out of sync; such values are refused at load time, naming
the key and never echoing the value (it is usually a secret).
"""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit

from .schema import Config, DeploymentConfig

__all__ = ["problems"]

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
_HOST = re.compile(r"^(\*|(\*\.)?[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])$")
_SECRET_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def _value_problem(value: str) -> str | None:
    if "\r" in value or "\n" in value or "\0" in value:
        return "contains a line break (CR or LF) or NUL, which would inject headers upstream (a secret file's " \
               "trailing newline?); the value is not shown"
    if _CONTROL.search(value):
        return "contains a control character; the value is not shown"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "contains characters that cannot be sent in an HTTP header (only Latin-1); the value is not shown"
    return None


def _deployment(where: str, dep: DeploymentConfig) -> list[str]:
    found: list[str] = []
    for field in _SECRET_FIELDS:
        value = getattr(dep, field)
        if value is not None and (problem := _value_problem(value)) is not None:
            found.append(f"{where}.{field}: {problem}")
    for name, value in dep.headers.items():
        if (problem := _value_problem(value)) is not None:
            found.append(f"{where}.headers.{name}: {problem}")
    if dep.proxy is not None and dep.proxy != "direct":
        parts = urlsplit(dep.proxy)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or _CONTROL.search(dep.proxy):
            found.append(f"{where}.proxy: expected http://[user:password@]host:port or 'direct'")
    if dep.ca_file is not None:
        try:
            ssl.create_default_context(cafile=dep.ca_file)
        except (OSError, ssl.SSLError) as err:
            found.append(f"{where}.ca_file: cannot load PEM certificates from '{dep.ca_file}': "
                         f"{getattr(err, 'strerror', None) or err}")
    return found


def problems(config: Config) -> list[str]:
    """Every problem found, each as ``key: what is wrong``."""
    found: list[str] = []
    for i, model in enumerate(config.models):
        for j, dep in enumerate(model.deployments):
            found.extend(_deployment(f"models[{i}].deployments[{j}]", dep))
    for k, origin in enumerate(config.server.cors_origins):
        if origin != "*" and not _ORIGIN.match(origin):
            found.append(f"server.cors_origins[{k}]: expected '*' or an origin such as https://app.example.com "
                         f"(scheme and host, no path), got '{origin}'")
    for k, host in enumerate(config.server.allowed_hosts):
        if not _HOST.match(host):
            found.append(f"server.allowed_hosts[{k}]: expected a host name, '*.example.com' or '*', got '{host}'")
    return found
