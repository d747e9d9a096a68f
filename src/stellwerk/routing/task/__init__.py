"""Task-specific routing: send each request to a route chosen by hint, rules, keywords or a semantic classifier.

See :mod:`.strategy` for the order of the steps, :mod:`.options` for the YAML shape,
:mod:`.classifier` for the scoring and :mod:`.embedders` for the offline models.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .options import TaskOptions, TaskRouteOptions, TaskRuleOptions, builtin_examples, check
from .rules import Header, HintRule, Keywords, Length, Match, Metadata, PromptRegex, Rule, TaskRequest, first_match

if TYPE_CHECKING:
    from .classifier import Classification, SemanticClassifier
    from .embedders import Embedder, StaticEmbedder, load_embedder, load_model2vec, load_wordllama
    from .strategy import TaskDecision, TaskRouter, build_rules

# numpy and the embedding model load only when a task model is configured (start-up time).
_LAZY = {
    "Classification": ".classifier", "SemanticClassifier": ".classifier",
    "Embedder": ".embedders", "StaticEmbedder": ".embedders", "load_embedder": ".embedders",
    "load_model2vec": ".embedders", "load_wordllama": ".embedders",
    "TaskDecision": ".strategy", "TaskRouter": ".strategy", "build_rules": ".strategy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(import_module(module, __name__), name)

__all__ = [
    "Classification",
    "Embedder",
    "Header",
    "HintRule",
    "Keywords",
    "Length",
    "Match",
    "Metadata",
    "PromptRegex",
    "Rule",
    "SemanticClassifier",
    "StaticEmbedder",
    "TaskDecision",
    "TaskOptions",
    "TaskRequest",
    "TaskRouteOptions",
    "TaskRouter",
    "TaskRuleOptions",
    "build_rules",
    "builtin_examples",
    "check",
    "first_match",
    "load_embedder",
    "load_model2vec",
    "load_wordllama",
]
