"""A simulated LLM provider: an upstream with scriptable latency and failures, in any of five wire protocols.

Used by the test suite, demos, chaos drills and benchmarks::

    from stellwerk.sim import SimProvider, Profile

    sim = SimProvider(Profile(latency_ms=50, error_rate=0.1))   # or SimProvider.from_preset("fast")
    await sim.start("127.0.0.1", 0)
    ...  # point an OpenAI client at sim.base_url
    await sim.close()

    SimProvider(profile, protocol="anthropic")   # or "gemini", "ollama", "bedrock" (see PROTOCOLS)

The same profile scripts every protocol; only the wire differs.

Modules: :mod:`~stellwerk.sim.profile` (what to do), :mod:`~stellwerk.sim.behaviour`
(pure per-request decisions), :mod:`~stellwerk.sim.content` (deterministic replies,
embeddings), :mod:`~stellwerk.sim.protocol` (what the protocols share: request summaries,
the planned reply, the ``Dialect`` interface), :mod:`~stellwerk.sim.dialects` (the registry),
one ``*_wire`` and one ``*_errors`` module per protocol (``openai``, ``anthropic``, ``gemini``,
``ollama``, ``bedrock``; :mod:`~stellwerk.sim.eventstream` frames Bedrock's streams),
:mod:`~stellwerk.sim.stats` (counters), :mod:`~stellwerk.sim.server` (HTTP),
:mod:`~stellwerk.sim.cli` (``stellwerk sim-provider``).
"""

from stellwerk.sim.behaviour import Behaviour, Decision, Outcome
from stellwerk.sim.content import reply_words
from stellwerk.sim.dialects import PROTOCOLS, dialect_for
from stellwerk.sim.profile import PRESETS, Outage, Profile, ProfileError, load_profile
from stellwerk.sim.server import SimProvider
from stellwerk.sim.stats import SimStats

__all__ = [
    "PRESETS",
    "PROTOCOLS",
    "Behaviour",
    "Decision",
    "Outage",
    "Outcome",
    "Profile",
    "ProfileError",
    "SimProvider",
    "SimStats",
    "dialect_for",
    "load_profile",
    "reply_words",
]
