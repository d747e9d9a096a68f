"""Task-specific routing: send each request to a route chosen by hint, rules, keywords or a semantic classifier.

See :mod:`.strategy` for the order of the steps, :mod:`.options` for the YAML shape,
:mod:`.classifier` for the scoring and :mod:`.embedders` for the offline models.
"""

from .classifier import Classification, SemanticClassifier
from .embedders import Embedder, StaticEmbedder, load_embedder, load_model2vec, load_wordllama
from .options import TaskOptions, TaskRouteOptions, TaskRuleOptions, builtin_examples, check
from .rules import Header, HintRule, Keywords, Length, Match, Metadata, PromptRegex, Rule, TaskRequest, first_match
from .strategy import TaskDecision, TaskRouter, build_rules

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
