"""``stellwerk import-litellm litellm_config.yaml > stellwerk.yaml``: a LiteLLM proxy config, converted.

=====================================  ==============================================================
LiteLLM                                Stellwerk
=====================================  ==============================================================
``model_list[].model_name``            a model (entries sharing a name are its deployments)
``litellm_params.model`` prefix        ``provider`` (``azure/``, ``anthropic/``, ``gemini/``,
                                       ``bedrock/``, ``ollama/``; OpenAI-compatible hosts such as
                                       ``groq/``, ``together_ai/``, ``deepseek/`` → ``openai`` with
                                       their ``api_base``); the rest of it → ``model``
``api_base``, ``api_key``,             the same (``os.environ/X`` → ``${X}``); ``aws_region_name``
``api_version``, ``rpm``, ``tpm``      → ``region``
``order``                              ``priority`` (the model uses ``failover``)
``model_info`` per-token costs         ``price`` (per million tokens)
``router_settings.routing_strategy``   ``strategy``: simple-shuffle → weighted-random, least-busy,
                                       usage-based-routing(-v2) → usage-aware, latency-based-routing
                                       → latency, cost-based-routing → cost
``num_retries``, ``timeout``           ``retries``, ``timeout`` (per model)
``allowed_fails``, ``cooldown_time``   ``breaker.consecutive_failures``, ``breaker.open_time``
``fallbacks``, ``context_window_``     the same, per model
``fallbacks``, ``content_policy_``
``fallbacks``
=====================================  ==============================================================

Every key that has no counterpart is reported (on stderr by the command), never dropped silently. The
output passes ``stellwerk check``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["Conversion", "convert"]

_NATIVE = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "gemini": "gemini",
           "bedrock": "bedrock", "ollama": "ollama", "ollama_chat": "ollama", "text-completion-openai": "openai"}
_COMPATIBLE = {  # OpenAI-compatible hosts LiteLLM names by prefix, with their public base URLs
    "groq": "https://api.groq.com/openai/v1", "together_ai": "https://api.together.xyz/v1",
    "deepseek": "https://api.deepseek.com/v1", "mistral": "https://api.mistral.ai/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1", "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai", "xai": "https://api.x.ai/v1", "hosted_vllm": None,
    "openai_compatible": None, "lm_studio": "http://localhost:1234/v1",
}
_STRATEGIES = {"simple-shuffle": "weighted-random", "least-busy": "least-busy", "usage-based-routing": "usage-aware",
               "usage-based-routing-v2": "usage-aware", "latency-based-routing": "latency",
               "cost-based-routing": "cost"}
_PARAMS = {"api_base", "api_key", "api_version", "rpm", "tpm", "order", "aws_region_name", "timeout", "model",
           "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "weight", "max_parallel_requests"}
_ENV = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")


class Conversion:
    def __init__(self) -> None:
        self.config: dict[str, Any] = {"models": []}
        self.problems: list[str] = []
        """Keys that have no counterpart, as ``key: what happened``."""

    def skip(self, key: str, why: str = "no counterpart in Stellwerk; not converted") -> None:
        self.problems.append(f"{key}: {why}")

    def yaml(self) -> str:
        return yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True)


def _env(value: Any) -> Any:
    """``os.environ/NAME`` → ``${NAME}``; literal ``$`` doubled (Stellwerk interpolates ``${...}``)."""
    if not isinstance(value, str):
        return value
    match = _ENV.match(value)
    return f"${{{match.group(1)}}}" if match else value.replace("$", "$$")


def _deployment(entry: Mapping[str, Any], where: str, taken: set[str], out: Conversion) -> dict[str, Any] | None:
    params = entry.get("litellm_params") or {}
    target = str(params.get("model") or "")
    prefix, _, name = target.partition("/") if "/" in target else ("openai", "", target)
    dep: dict[str, Any] = {}
    if prefix in _NATIVE:
        dep["provider"] = _NATIVE[prefix]
    elif prefix in _COMPATIBLE:
        dep["provider"] = "openai"
        if _COMPATIBLE[prefix] is not None:
            dep["api_base"] = _COMPATIBLE[prefix]
    else:
        out.skip(f"{where}.litellm_params.model", f"provider '{prefix}' is not supported; deployment left out")
        return None
    base = f"{entry.get('model_name')}-{dep['provider']}"
    dep_id, n = base, 1
    while dep_id in taken:
        n += 1
        dep_id = f"{base}-{n}"
    taken.add(dep_id)
    dep = {"id": dep_id, **dep, "model": name}
    for key in ("api_base", "api_key", "api_version", "rpm", "tpm", "aws_access_key_id", "aws_secret_access_key",
                "aws_session_token", "weight", "timeout"):
        if params.get(key) is not None:
            dep[key] = _env(params[key])
    if params.get("aws_region_name") is not None:
        dep["region"] = _env(params["aws_region_name"])
    if params.get("max_parallel_requests") is not None:
        dep["max_in_flight"] = params["max_parallel_requests"]
    if params.get("order") is not None:
        dep["priority"] = params["order"]
    if dep["provider"] == "ollama" and "api_base" not in dep:
        dep["api_base"] = "http://localhost:11434"
    if dep["provider"] == "bedrock" and "region" not in dep:
        dep["region"] = "${AWS_REGION_NAME:-us-east-1}"
        out.skip(f"{where}.litellm_params.aws_region_name", "not set: region ${AWS_REGION_NAME:-us-east-1} is used")
    if prefix == "text-completion-openai":
        dep["supports_completions"] = True
    for key in sorted(set(params) - _PARAMS):
        out.skip(f"{where}.litellm_params.{key}")
    info = entry.get("model_info") or {}
    price = {k: round(float(info[f]) * 1e6, 6) for k, f in (("input_per_mtok", "input_cost_per_token"),
                                                            ("output_per_mtok", "output_cost_per_token")) if f in info}
    if price:
        dep["price"] = price
    if isinstance(info.get("max_input_tokens"), int):
        dep["context_window"] = info["max_input_tokens"]
    for key in sorted(set(info) - {"input_cost_per_token", "output_cost_per_token", "max_input_tokens", "id",
                                   "base_model", "mode"}):
        out.skip(f"{where}.model_info.{key}")
    return dep


def _fallbacks(value: Any, key: str, out: Conversion) -> dict[str, list[str]]:
    """LiteLLM's ``[{"model": ["fallback", ...]}, ...]`` by model."""
    result: dict[str, list[str]] = {}
    for item in value or ():
        if isinstance(item, dict):
            for model, targets in item.items():
                result.setdefault(str(model), []).extend(str(t) for t in (targets or ()))
        else:
            out.skip(key, f"unexpected entry {item!r}; not converted")
    return result


def _settings(data: Mapping[str, Any], out: Conversion) -> dict[str, Any]:
    """Model-level settings from ``router_settings`` and ``litellm_settings``."""
    router = data.get("router_settings") or {}
    lite = data.get("litellm_settings") or {}
    settings: dict[str, Any] = {}
    strategy = router.get("routing_strategy")
    if strategy is not None:
        if strategy in _STRATEGIES:
            settings["strategy"] = _STRATEGIES[strategy]
        else:
            out.skip("router_settings.routing_strategy", f"'{strategy}' has no counterpart; failover is used")
    retries = router.get("num_retries", lite.get("num_retries"))
    if retries is not None:
        settings["retries"] = min(int(retries), 10)
    timeout = router.get("timeout", lite.get("request_timeout"))
    if timeout is not None:
        settings["timeout"] = float(timeout)
    breaker: dict[str, float] = {}
    if router.get("allowed_fails") is not None:
        breaker["consecutive_failures"] = max(1, int(router["allowed_fails"]))
    if router.get("cooldown_time") is not None:
        breaker["open_time"] = float(router["cooldown_time"])
    if breaker:
        settings["breaker"] = breaker
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        merged = _fallbacks(router.get(key), f"router_settings.{key}", out)
        for model, targets in _fallbacks(lite.get(key), f"litellm_settings.{key}", out).items():
            merged.setdefault(model, []).extend(targets)
        if merged:
            settings[key] = merged
    handled_router = {"routing_strategy", "num_retries", "timeout", "allowed_fails", "cooldown_time", "fallbacks",
                      "context_window_fallbacks", "content_policy_fallbacks"}
    for key in sorted(set(router) - handled_router):
        out.skip(f"router_settings.{key}")
    for key in sorted(set(lite) - {"num_retries", "request_timeout", "fallbacks", "context_window_fallbacks",
                                   "content_policy_fallbacks", "drop_params"}):
        out.skip(f"litellm_settings.{key}")
    if lite.get("drop_params"):
        out.skip("litellm_settings.drop_params", "Stellwerk never drops parameters silently: a parameter no "
                                                 "deployment can serve is a 400 naming it")
    for key in sorted(data.get("general_settings") or {}):
        out.skip(f"general_settings.{key}")
    for key in sorted(set(data) - {"model_list", "router_settings", "litellm_settings", "general_settings"}):
        out.skip(key)
    return settings


def convert(data: Any) -> Conversion:
    """A parsed LiteLLM config → a Stellwerk config (``conversion.config``) and what could not be converted."""
    out = Conversion()
    if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
        out.skip("model_list", "expected a list of models; nothing to convert")
        return out
    settings = _settings(data, out)
    models: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for i, entry in enumerate(data["model_list"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            out.skip(f"model_list[{i}]", "expected model_name and litellm_params; left out")
            continue
        dep = _deployment(entry, f"model_list[{i}]", taken, out)
        if dep is not None:
            models.setdefault(entry["model_name"], {"name": entry["model_name"], "deployments": []})
            models[entry["model_name"]]["deployments"].append(dep)
    for model in models.values():
        uses_order = any("priority" in d for d in model["deployments"])
        model["strategy"] = "failover" if uses_order else settings.get("strategy", "failover")
        for key in ("retries", "timeout", "breaker"):
            if key in settings:
                model[key] = settings[key]
        for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            targets = [t for t in settings.get(key, {}).get(model["name"], []) if t in models and t != model["name"]]
            missing = [t for t in settings.get(key, {}).get(model["name"], []) if t not in models]
            if missing:
                out.skip(f"router_settings.{key}", f"{model['name']} → {', '.join(missing)}: no such model; left out")
            if targets:
                model[key] = targets
    out.config["models"] = list(models.values())
    return out
