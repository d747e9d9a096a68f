"""The ``sim-provider`` CLI hook: argument handling, and a real process that stops on SIGTERM."""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from stellwerk.sim import cli
from support import GUARD

LAUNCH = (
    "import argparse, sys\n"
    "from stellwerk.sim import cli\n"
    "parser = argparse.ArgumentParser()\n"
    "cli.add_arguments(parser)\n"
    "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse()
    assert (args.host, args.port, args.profile) == ("127.0.0.1", 8001, "fast")
    assert cli.build_profile(args).name == "fast"


def test_overrides_apply_on_top_of_the_preset() -> None:
    profile = cli.build_profile(parse("--profile", "realistic", "--latency-ms", "5", "--tps", "30", "--seed", "9"))
    assert (profile.name, profile.latency_ms, profile.tokens_per_second, profile.seed) == ("realistic", 5, 30, 9)
    assert profile.tokens_per_second_max == 0
    assert cli.build_profile(parse("--error-rate", "0.5", "--output-tokens", "4")).error_rate == 0.5


def test_protocol_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse().protocol == "openai"
    assert parse("--protocol", "bedrock").protocol == "bedrock"
    with pytest.raises(SystemExit):
        parse("--protocol", "grpc")
    assert "invalid choice: 'grpc'" in capsys.readouterr().err


def test_bad_profile_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.run(parse("--profile", "nonsense")) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert cli.run(parse("--profile", str(tmp_path / "missing.yaml"))) == 2


def test_process_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--port", "0", "--profile", "flaky", "--error-rate", "0", "--api-key", "k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"sim-provider listening on (http://127\.0\.0\.1:\d+/v1) \(profile flaky, protocol openai\)\n", line)
        assert match, line
        resp = httpx.get(match.group(1) + "/models", headers={"authorization": "Bearer k"}, timeout=GUARD)
        assert resp.status_code == 200 and resp.json()["object"] == "list"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=GUARD) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
