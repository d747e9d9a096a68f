"""Configuration: the schema (a strict, documented contract) and its loader."""

from .load import check, interpolate, load_dict, load_file, load_text
from .schema import (
    CacheOptions,
    Config,
    DeploymentConfig,
    HealthCheckOptions,
    HedgeOptions,
    KeyConfig,
    ModelConfig,
    OtelOptions,
    Price,
    ServerCacheConfig,
    ServerConfig,
)

__all__ = [
    "CacheOptions",
    "Config",
    "DeploymentConfig",
    "HealthCheckOptions",
    "HedgeOptions",
    "KeyConfig",
    "ModelConfig",
    "OtelOptions",
    "Price",
    "ServerCacheConfig",
    "ServerConfig",
    "check",
    "interpolate",
    "load_dict",
    "load_file",
    "load_text",
]
