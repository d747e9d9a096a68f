"""``stellwerk sim-provider``: run the simulated provider until SIGINT/SIGTERM.

The main CLI registers :func:`add_arguments` on its sub-parser and calls :func:`run`.
``--protocol`` picks the wire format (openai, anthropic, gemini, ollama, bedrock);
the profile and every override apply the same to each.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from stellwerk.sim.dialects import PROTOCOLS
from stellwerk.sim.profile import Profile, ProfileError, load_profile
from stellwerk.sim.server import SimProvider

__all__ = ["add_arguments", "build_profile", "run"]


_EPILOG = """protocols and their routes (point the protocol's client at the printed URL):
  openai     POST /v1/chat/completions, /v1/embeddings; GET /v1/models
  anthropic  POST /v1/messages, /v1/messages/count_tokens; GET /v1/models
  gemini     POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse,
             :embedContent, :batchEmbedContents, :countTokens; GET /v1beta/models
  ollama     POST /api/chat, /api/embed; GET /api/tags
  bedrock    POST /model/{modelId}/converse, /model/{modelId}/converse-stream
control (all protocols): GET /_sim/stats, GET|POST /_sim/profile, POST /_sim/reset"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on, 0 = any (default: %(default)s)")
    parser.add_argument(
        "--profile",
        default="fast",
        help="preset (fast, realistic, flaky, slow, down) or a YAML file of profile fields (default: %(default)s)",
    )
    parser.add_argument("--latency-ms", type=float, help="mean time to first token in ms (overrides the profile)")
    parser.add_argument("--tps", type=float, help="output tokens per second, 0 = unpaced (overrides the profile)")
    parser.add_argument("--error-rate", type=float, help="share of requests answered 5xx, 0..1 (overrides)")
    parser.add_argument("--output-tokens", type=int, help="words per reply (overrides the profile)")
    parser.add_argument("--seed", type=int, help="RNG seed (overrides the profile)")
    parser.add_argument(
        "--protocol",
        default="openai",
        choices=list(PROTOCOLS),
        help="wire format to speak (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        help="require KEY the protocol's way: Bearer (openai, ollama), x-api-key (anthropic), x-goog-api-key "
        "or ?key= (gemini), the SigV4 access key id or a Bearer key (bedrock)",
    )


def build_profile(args: argparse.Namespace) -> Profile:
    """The profile named by ``--profile`` with the direct overrides applied."""
    profile = load_profile(args.profile)
    overrides: dict[str, Any] = {}
    if args.latency_ms is not None:
        overrides["latency_ms"] = args.latency_ms
    if args.tps is not None:
        overrides["tokens_per_second"] = args.tps
        overrides["tokens_per_second_max"] = 0.0
    if args.error_rate is not None:
        overrides["error_rate"] = args.error_rate
    if args.output_tokens is not None:
        overrides["output_tokens"] = args.output_tokens
    if args.seed is not None:
        overrides["seed"] = args.seed
    return profile.updated(overrides) if overrides else profile


async def _serve(profile: Profile, args: argparse.Namespace) -> None:
    sim = SimProvider(profile, protocol=args.protocol, api_key=args.api_key)
    await sim.start(args.host, args.port)
    print(f"sim-provider listening on {sim.base_url} (profile {profile.name}, protocol {sim.protocol})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await sim.close()


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code."""
    try:
        profile = build_profile(args)
    except (ProfileError, OSError) as exc:
        print(f"sim-provider: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on Windows
        asyncio.run(_serve(profile, args))
    else:
        uvloop.run(_serve(profile, args))
    return 0
