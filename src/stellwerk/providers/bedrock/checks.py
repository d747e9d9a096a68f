"""Config-time rules for ``bedrock`` deployments (and for the AWS keys elsewhere), without importing botocore."""

from __future__ import annotations

import importlib.util

from stellwerk.config import DeploymentConfig

__all__ = ["BOTOCORE_MISSING", "botocore_installed", "deployment_problems"]

BOTOCORE_MISSING = ("provider 'bedrock' signs requests with botocore, which is not installed: "
                    "pip install 'stellwerk[bedrock]' (or set api_key to a Bedrock API key)")
_AWS_FIELDS = ("region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def botocore_installed() -> bool:
    return importlib.util.find_spec("botocore") is not None


def deployment_problems(dep: DeploymentConfig, probes_models: bool = False) -> list[str]:
    """Problems as ``key: what was expected``, the key relative to the deployment.

    ``probes_models``: the model has active health checks of kind ``models`` (a GET that SigV4 cannot
    pre-sign, so SigV4-signed deployments need ``kind: chat``).
    """
    if dep.provider != "bedrock":
        return [f"{name}: only used by provider 'bedrock'" for name in _AWS_FIELDS if getattr(dep, name) is not None]
    problems: list[str] = []
    if not dep.region:
        problems.append("region: required for provider 'bedrock' (e.g. us-east-1, or ${AWS_REGION})")
    if bool(dep.aws_access_key_id) != bool(dep.aws_secret_access_key):
        problems.append("aws_secret_access_key: aws_access_key_id and aws_secret_access_key go together")
    if dep.aws_session_token and not dep.aws_access_key_id:
        problems.append("aws_session_token: needs aws_access_key_id and aws_secret_access_key")
    if dep.api_key and dep.aws_access_key_id:
        problems.append("api_key: a Bedrock API key and AWS access keys exclude each other; set one")
    if not dep.api_key:
        if not botocore_installed():
            problems.append(f"provider: {BOTOCORE_MISSING}")
        if probes_models:
            problems.append("provider: health checks of kind 'models' cannot sign their GET for 'bedrock' with "
                            "AWS credentials; use health_check.kind 'chat' (or a Bedrock API key)")
    return problems
