"""``stellwerk simulate`` and ``stellwerk export-trace``.

    stellwerk simulate --config stellwerk.yaml --scenario scenario.yaml [--compare other.yaml] [--seed N] [--json]
    stellwerk export-trace (--access-log FILE | --store sqlite:///stellwerk.db) [--since T] [--until T] [-o FILE]

Exit codes: 0 done; 2 an invalid config, scenario or option (the message names the key).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import orjson

from stellwerk.errors import ConfigError

from .render import render
from .runner import check_deployments, load_config, simulate
from .scenario import Scenario, ScenarioError
from .trace import export_access_log, export_ledger, write_trace

__all__ = ["add_arguments", "add_export_arguments", "run", "run_export"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="the configuration to try (YAML)")
    parser.add_argument("--scenario", "-s", required=True, help="traffic and failures to simulate (YAML)")
    parser.add_argument("--compare", metavar="CONFIG", help="a second configuration, run on the same scenario and seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of traffic, failures and routing (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        scenario = Scenario.from_file(args.scenario)
        paths = [args.config] + ([args.compare] if args.compare else [])
        configs = [load_config(path) for path in paths]
        check_deployments(scenario, configs)  # a deployment only the compared config has is no typo
        reports = [simulate(config, scenario, seed=args.seed, name=path, check=False)
                   for config, path in zip(configs, paths, strict=True)]
    except (ScenarioError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        doc = reports[0] if len(reports) == 1 else {"configs": reports}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(reports))
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--access-log", metavar="FILE", help="a JSON access log (server.access_log)")
    source.add_argument("--store", metavar="URL", help="the spend ledger, e.g. sqlite:///stellwerk.db (server.store)")
    parser.add_argument("--since", help="only requests from then on: RFC 3339 or Unix seconds")
    parser.add_argument("--until", help="only requests before then: RFC 3339 or Unix seconds")
    parser.add_argument("--output", "-o", help="the trace file to write (default: stdout)")


def run_export(args: argparse.Namespace) -> int:
    try:
        since, until = _when(args.since, "--since"), _when(args.until, "--until")
        if args.access_log:
            path = Path(args.access_log)
            if not path.is_file():
                raise ValueError(f"{path}: no such file")
            rows = [r for r in export_access_log(path)
                    if (since is None or r[0] >= since) and (until is None or r[0] < until)]
        else:
            rows = list(export_ledger(args.store, since, until))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "wb") as out:
            count = write_trace(rows, out)
    else:
        count = write_trace(rows, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    print(f"{count} requests", file=sys.stderr)
    return 0


def _when(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{option}: expected RFC 3339 or Unix seconds, got {value!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=datetime.UTC)).timestamp()
