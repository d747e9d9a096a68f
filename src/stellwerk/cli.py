"""The ``stellwerk`` command: serve, check, schema, import-litellm, keys, spend, sim-provider, demo, simulate,
export-trace, tune-task-router."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from stellwerk.errors import ConfigError, StoreUnavailableError

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import os

    import msgspec

    from stellwerk.cluster.workers import WORKER_REDIS, run_workers, worker_count
    from stellwerk.compose import load_file
    from stellwerk.gateway import run_gateway

    config = load_file(args.config)
    workers = worker_count(args.workers)
    if workers > 1:
        extra = ["--allow-unauthenticated"] if args.allow_unauthenticated else []
        return run_workers(config, args.config, workers, args.host, args.port, extra)
    private = os.environ.get(WORKER_REDIS)
    if private and config.server.redis is None:  # a worker of a supervisor without server.redis
        config = msgspec.structs.replace(config, server=msgspec.structs.replace(config.server, redis=private))
    run_gateway(config, args.host, args.port, source=args.config, allow_unauthenticated=args.allow_unauthenticated,
                reuse_port=args.reuse_port)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from stellwerk.admin_cli import run_keys

    return run_keys(args)


def _spend(args: argparse.Namespace) -> int:
    from stellwerk.admin_cli import run_spend

    return run_spend(args)


def _check(args: argparse.Namespace) -> int:
    from stellwerk.compose import load_file

    config = load_file(args.config)
    deployments = sum(len(m.deployments) for m in config.models)
    print(f"{args.config}: OK ({len(config.models)} models, {deployments} deployments)")
    return 0


def _schema(args: argparse.Namespace) -> int:
    import orjson

    from stellwerk.config.jsonschema import json_schema

    sys.stdout.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _import_litellm(args: argparse.Namespace) -> int:
    import yaml

    from stellwerk.importers.litellm import convert

    try:
        with open(args.config, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as err:
        print(f"error: {args.config}: {err}", file=sys.stderr)
        return 2
    conversion = convert(data)
    for problem in conversion.problems:
        print(f"not converted: {problem}", file=sys.stderr)
    if not conversion.config["models"]:
        print("error: no model could be converted", file=sys.stderr)
        return 1
    sys.stdout.write(conversion.yaml())
    return 0


def _sim(args: argparse.Namespace) -> int:
    from stellwerk.sim.cli import run

    return run(args)


def _demo(args: argparse.Namespace) -> int:
    from stellwerk.demo import run

    return run(args)


def _simulate(args: argparse.Namespace) -> int:
    from stellwerk.simulate.cli import run

    return run(args)


def _tune_task_router(args: argparse.Namespace) -> int:
    from stellwerk.routing.task.tune import run

    return run(args)


def _export_trace(args: argparse.Namespace) -> int:
    from stellwerk.simulate.cli import run_export

    return run_export(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stellwerk", description="Resilient multi-model LLM router and gateway.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO (one line per request), WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway server")
    serve.add_argument("--config", "-c", required=True, help="YAML configuration file")
    serve.add_argument("--host", default=None, help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: server.port, 4000)")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="listen on a non-loopback address without server.master_key (anyone may use it)")
    serve.add_argument("--workers", default="1", metavar="N|auto",
                       help="processes serving one port (SO_REUSEPORT), limits shared through server.redis or a "
                            "private redis-server (default 1; auto: one per core)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers
    serve.set_defaults(func=_serve)

    from stellwerk.admin_cli import add_keys_arguments, add_spend_arguments

    keys = sub.add_parser("keys", help="create, list or revoke gateway keys")
    add_keys_arguments(keys)
    keys.set_defaults(func=_keys)
    spend = sub.add_parser("spend", help="spend from the ledger, grouped by key, team, model or deployment")
    add_spend_arguments(spend)
    spend.set_defaults(func=_spend)

    check = sub.add_parser("check", help="validate a configuration file")
    check.add_argument("config", help="YAML configuration file")
    check.set_defaults(func=_check)

    schema = sub.add_parser("schema", help="print the configuration's JSON Schema (for YAML editors)")
    schema.set_defaults(func=_schema)

    imports = sub.add_parser("import-litellm", help="convert a LiteLLM proxy config (stdout: YAML; stderr: what "
                                                    "could not be converted)")
    imports.add_argument("config", help="LiteLLM config.yaml")
    imports.set_defaults(func=_import_litellm)

    sim = sub.add_parser("sim-provider", help="run a simulated LLM provider (for demos, tests and benchmarks)")
    from stellwerk.sim.cli import add_arguments as add_sim_arguments

    add_sim_arguments(sim)
    sim.set_defaults(func=_sim)

    demo = sub.add_parser("demo", help="gateway + three simulated providers, one failing on a schedule")
    from stellwerk.demo import add_arguments as add_demo_arguments

    add_demo_arguments(demo)
    demo.set_defaults(func=_demo)

    from stellwerk.simulate.cli import add_arguments as add_simulate_arguments
    from stellwerk.simulate.cli import add_export_arguments

    simulate = sub.add_parser("simulate", help="try a config on simulated traffic and failures, in virtual time")
    add_simulate_arguments(simulate)
    simulate.set_defaults(func=_simulate)
    export = sub.add_parser("export-trace", help="past requests from the access log or spend ledger, as a trace to "
                                                 "replay in a simulation")
    add_export_arguments(export)
    export.set_defaults(func=_export_trace)

    tune = sub.add_parser("tune-task-router", help="fit the task router's calibrated head on your labelled "
                                                   "prompts (JSONL); writes a file for strategy_options.head")
    tune.add_argument("--examples", required=True, help='JSONL file, one {"prompt": ..., "label": ...} per line')
    tune.add_argument("--out", required=True, help="where to write the head (.npz), for strategy_options.head")
    tune.add_argument("--embedder", default="wordllama", help="embedder (default wordllama, see strategy_options)")
    tune.add_argument("--folds", type=int, default=5, help="cross-validation folds (calibration, report; default 5)")
    tune.set_defaults(func=_tune_task_router)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.func(args)
        return result
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StoreUnavailableError as err:  # at start (a running gateway degrades instead)
        print(f"error: {err.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
