"""The ``stellwerk`` command: ``check`` (exit 0 / 2 with precise messages) and ``serve`` (a real process)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stellwerk.cli import main
from stellwerk.sim import SimProvider
from support import GUARD, STARTUP, USER, RawConnection, http_request

STELLWERK = [sys.executable, "-m", "stellwerk.cli"]
SECRET = "sk-cli-secret-abcdefghijklmnop"

VALID = """\
models:
  - name: chat
    deployments:
      - id: primary
        provider: openai
        model: gpt-4o-mini
        api_base: http://127.0.0.1:9/v1
        api_key: ${CLI_TEST_KEY:-none}
      - id: backup
        provider: azure
        model: gpt4o
        api_base: https://example.openai.azure.com
  - name: embed
    deployments:
      - id: emb
        provider: openai
        model: text-embedding-3-small
"""


def write(tmp_path: Path, text: str, name: str = "stellwerk.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_valid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, VALID)
    code, out, err = run_check(path, capsys)
    assert code == 0
    assert out.strip() == f"{path}: OK (2 models, 3 deployments)"
    assert err == ""


BROKEN = {
    "unknown-key": (VALID.replace("        model: gpt-4o-mini\n", "        model: gpt-4o-mini\n        tiemout: 3\n"),
                    "models[0].deployments[0].tiemout: unknown key"),
    "wrong-type": (VALID.replace("  - name: chat\n", "  - name: chat\n    retries: many\n"),
                   "models[0].retries: expected `int`, got `str`"),
    "missing-required": (VALID.replace("        model: text-embedding-3-small\n", ""),
                         "models[1].deployments[0].model: required key is missing"),
    "duplicate-id": (VALID.replace("id: emb", "id: primary"),
                     "models[1].deployments[0].id: 'primary' is already used by models[0].deployments[0]"),
    "unknown-provider": (VALID.replace("provider: azure", "provider: no-such-provider"),
                         "models[0].deployments[1].provider: expected one of "),
    "bad-url": (VALID.replace("http://127.0.0.1:9/v1", "127.0.0.1:9/v1"),
                "models[0].deployments[0].api_base: expected an http:// or https:// URL"),
    "missing-env": (VALID.replace("${CLI_TEST_KEY:-none}", "${CLI_TEST_UNSET_VARIABLE}"),
                    "models[0].deployments[0].api_key: environment variable CLI_TEST_UNSET_VARIABLE is not set"),
    "invalid-yaml": ("models: [\n", "line 2, column 1: invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_invalid_file_exits_2_with_precise_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLI_TEST_UNSET_VARIABLE", raising=False)
    text, expected = BROKEN[case]
    path = write(tmp_path, text)
    code, out, err = run_check(path, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path} is invalid:\n")
    assert f"  - {expected}" in err, err


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_check(tmp_path / "absent.yaml", capsys)
    assert code == 2
    assert "absent.yaml: cannot read" in err


def test_check_never_prints_secrets_from_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLI_TEST_KEY", SECRET)
    path = write(tmp_path, VALID.replace("  - name: chat\n", "  - name: chat\n    timeout: -1\n"))
    code, out, err = run_check(path, capsys)
    assert code == 2
    assert "models[0].timeout: expected `float` > 0.0" in err
    assert SECRET not in out + err


def test_check_as_a_process_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, VALID, "good.yaml")
    bad = write(tmp_path, VALID.replace("provider: azure", "provider: nope"), "bad.yaml")
    env = {k: v for k, v in os.environ.items() if k != "CLI_TEST_KEY"}
    ok = subprocess.run([*STELLWERK, "check", str(good)], capture_output=True, text=True, env=env, timeout=STARTUP)
    assert ok.returncode == 0, ok.stderr
    assert "OK (2 models, 3 deployments)" in ok.stdout
    failed = subprocess.run([*STELLWERK, "check", str(bad)], capture_output=True, text=True, env=env,
                            timeout=STARTUP)
    assert failed.returncode == 2
    assert "models[0].deployments[1].provider: expected one of " in failed.stderr
    assert "got 'nope'" in failed.stderr


def test_serve_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "models: []\n")
    assert main(["serve", "--config", str(path)]) == 2
    assert "models: expected `array` of length >= 1" in capsys.readouterr().err


async def test_serve_runs_the_gateway_until_sigterm(tmp_path: Path, start_sim: object) -> None:
    sim: SimProvider = await start_sim()  # type: ignore[operator]
    path = write(tmp_path, f"""\
server:
  port: 4000
models:
  - name: chat
    deployments:
      - id: sim
        provider: openai
        model: sim-model
        api_base: {sim.base_url}
""")
    proc = await asyncio.create_subprocess_exec(
        *STELLWERK, "serve", "--config", str(path), "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(STARTUP):
            line = (await proc.stdout.readline()).decode()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        async with await RawConnection.open(port) as conn:
            await conn.send(http_request("GET", "/healthz"))
            assert (await conn.read_response()).status == 200
            body = orjson.dumps({"model": "chat", "messages": USER})
            await conn.send(http_request("POST", "/v1/chat/completions", body))
            answer = await conn.read_response()
        assert answer.status == 200, answer.body
        assert answer.headers["x-stellwerk-deployment"] == "sim"
        assert sim.stats.ok == 1
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(GUARD * 2):
            code = await proc.wait()
        assert code == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
