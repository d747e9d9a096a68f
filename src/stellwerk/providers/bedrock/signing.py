"""AWS Signature Version 4 for Bedrock requests, by botocore (the optional extra ``stellwerk[bedrock]``).

Credentials are the deployment's (``aws_access_key_id``, ``aws_secret_access_key``,
``aws_session_token``) or, when it names none, botocore's default chain
(environment, ``~/.aws``, SSO, container and instance roles), resolved once
when the deployment is prepared; refreshable ones refresh themselves.

botocore's ``SigV4Auth.add_auth`` reads the wall clock; :meth:`SigV4Signer.sign`
performs the same steps at the time of the injected clock, so signatures are
reproducible in tests (one of which checks them against ``add_auth``'s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session

from stellwerk.config import DeploymentConfig
from stellwerk.errors import ConfigError

__all__ = ["SERVICE", "SigV4Signer", "resolve_credentials"]

SERVICE = "bedrock"
"""The SigV4 signing name of both ``bedrock`` and ``bedrock-runtime`` endpoints."""


def resolve_credentials(deployment: DeploymentConfig) -> Any:
    """The deployment's static credentials, or botocore's default chain (``ConfigError`` if it finds none)."""
    if deployment.aws_access_key_id and deployment.aws_secret_access_key:
        return Credentials(deployment.aws_access_key_id, deployment.aws_secret_access_key,
                           deployment.aws_session_token)
    credentials = Session().get_credentials()
    if credentials is None:
        raise ConfigError([f"deployment '{deployment.id}': no AWS credentials: set aws_access_key_id and "
                           "aws_secret_access_key, or configure botocore's default chain (AWS_ACCESS_KEY_ID, "
                           "~/.aws/credentials, an instance role…), or use a Bedrock API key as api_key"])
    return credentials


class SigV4Signer:
    """Signs requests for one deployment: its credentials, its region, the injected clock."""

    __slots__ = ("_clock", "_credentials", "region")

    def __init__(self, credentials: Any, region: str, clock: Callable[[], float]) -> None:
        self._credentials = credentials
        self.region = region
        self._clock = clock

    def secrets(self) -> tuple[str, ...]:
        frozen = self._credentials.get_frozen_credentials()
        return tuple(s for s in (frozen.secret_key, frozen.token, frozen.access_key) if s)

    def sign(self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
        """``headers`` plus ``x-amz-date``, ``x-amz-security-token`` (if any) and ``authorization``.

        ``host`` is signed as the HTTP client sends it (from the URL) and is not added.
        """
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        auth = SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region)
        request.context["timestamp"] = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
        # SigV4Auth.add_auth, without its own clock:
        auth._modify_request_before_signing(request)
        canonical = auth.canonical_request(request)
        auth._inject_signature_to_request(request, auth.signature(auth.string_to_sign(request, canonical), request))
        return [(str(k).lower(), str(v)) for k, v in request.headers.items()]
