"""The routing policy simulator: a config against traffic and failures, in virtual time (``stellwerk simulate``).

It runs the real router -- planner, strategies, attempt loop, breakers, budgets, hedging,
stream resume -- with its transport replaced by in-process simulated providers (one per
deployment, speaking the deployment's wire protocol) and its clock by an event loop on
virtual time, and reports availability, errors, latency, attempts, cost and shares::

    from stellwerk.simulate import Scenario, load_config, simulate

    report = simulate(load_config("stellwerk.yaml"), Scenario.from_file("outage.yaml"), seed=1)
    report["availability"], report["latency"]["p99"], report["deployments"]["primary"]["share"]

Modules: :mod:`~.scenario` (the YAML, strictly parsed), :mod:`~.distribution` (median/p99
lognormals), :mod:`~.traffic` (arrivals), :mod:`~.trace` (JSON Lines traces and their export),
:mod:`~.clock` (the virtual-time event loop), :mod:`~.upstreams` (simulated providers per
deployment), :mod:`~.transport` (the router's transport over them), :mod:`~.recorder` (the
router's events), :mod:`~.report` (the numbers), :mod:`~.render` (text, side by side),
:mod:`~.runner` (wiring it together), :mod:`~.cli` (the commands).
"""

from .runner import load_config, simulate
from .scenario import Scenario, ScenarioError

__all__ = ["Scenario", "ScenarioError", "load_config", "simulate"]
