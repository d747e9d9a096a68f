"""A simulated LLM provider: an OpenAI-compatible upstream with scriptable latency and failures.

Used by the test suite, demos, chaos drills and benchmarks::

    from stellwerk.sim import SimProvider, Profile

    sim = SimProvider(Profile(latency_ms=50, error_rate=0.1))   # or SimProvider.from_preset("fast")
    await sim.start("127.0.0.1", 0)
    ...  # point a client at sim.base_url
    await sim.close()

Modules: :mod:`~stellwerk.sim.profile` (what to do), :mod:`~stellwerk.sim.behaviour`
(pure per-request decisions), :mod:`~stellwerk.sim.content` (deterministic replies,
embeddings), :mod:`~stellwerk.sim.openai_wire` and :mod:`~stellwerk.sim.openai_errors` (OpenAI
bodies), :mod:`~stellwerk.sim.stats` (counters), :mod:`~stellwerk.sim.server`
(HTTP), :mod:`~stellwerk.sim.cli` (``stellwerk sim-provider``).
"""

from stellwerk.sim.behaviour import Behaviour, Decision, Outcome
from stellwerk.sim.content import reply_words
from stellwerk.sim.profile import PRESETS, Outage, Profile, ProfileError, load_profile
from stellwerk.sim.server import SimProvider
from stellwerk.sim.stats import SimStats

__all__ = [
    "PRESETS",
    "Behaviour",
    "Decision",
    "Outage",
    "Outcome",
    "Profile",
    "ProfileError",
    "SimProvider",
    "SimStats",
    "load_profile",
    "reply_words",
]
