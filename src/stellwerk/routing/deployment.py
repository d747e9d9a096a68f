"""A deployment at run time: its config, its adapter, its prepared endpoint and live counters."""

from __future__ import annotations

from stellwerk.config import DeploymentConfig, ModelConfig
from stellwerk.providers import Adapter, Endpoint, get_adapter

__all__ = ["Deployment", "ModelGroup"]


class Deployment:
    __slots__ = ("adapter", "config", "endpoint", "id", "in_flight")

    def __init__(self, config: DeploymentConfig) -> None:
        self.config = config
        self.id = config.id
        self.adapter: Adapter = get_adapter(config.provider)
        self.endpoint: Endpoint = self.adapter.endpoint(config)
        self.in_flight = 0

    def __repr__(self) -> str:
        return f"Deployment({self.id!r}, provider={self.config.provider!r}, model={self.config.model!r})"


class ModelGroup:
    """A model name clients ask for, with its deployments in configured order."""

    __slots__ = ("config", "deployments", "name", "strategy_name")

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.deployments = tuple(Deployment(d) for d in config.deployments)
        self.strategy_name = config.strategy

    def timeout_for(self, deployment: Deployment) -> float:
        return deployment.config.timeout or self.config.timeout
