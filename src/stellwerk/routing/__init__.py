"""Routing: model groups, strategies, the attempt loop and the results it returns."""

from .deployment import Deployment, ModelGroup
from .router import ChatResult, EmbeddingsResult, Router
from .stream import ChatStream

__all__ = ["ChatResult", "ChatStream", "Deployment", "EmbeddingsResult", "ModelGroup", "Router"]
