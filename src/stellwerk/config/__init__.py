"""Configuration: the schema (a strict, documented contract) and its loader."""

from .load import check, interpolate, load_dict, load_file, load_text
from .schema import (
    Config,
    DeploymentConfig,
    HealthCheckOptions,
    HedgeOptions,
    KeyConfig,
    ModelConfig,
    OtelOptions,
    Price,
    ServerConfig,
)

__all__ = [
    "Config",
    "DeploymentConfig",
    "HealthCheckOptions",
    "HedgeOptions",
    "KeyConfig",
    "ModelConfig",
    "OtelOptions",
    "Price",
    "ServerConfig",
    "check",
    "interpolate",
    "load_dict",
    "load_file",
    "load_text",
]
