"""Routing: routing tables, models and their planners, the attempt loop, leases, streams, the Router."""

from stellwerk.pipeline import ChatResult, EmbeddingsResult, Result

from .deployment import Deployment, DeploymentState, ModelGroup
from .router import Router
from .stream import ChatStream
from .table import Model, RoutingTable

__all__ = ["ChatResult", "ChatStream", "Deployment", "DeploymentState", "EmbeddingsResult", "Model", "ModelGroup",
           "Result", "Router", "RoutingTable"]
