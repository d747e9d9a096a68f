"""What every protocol shares: the same profile scripts the same faults, whatever the wire.

Protocol-specific shapes are tested in ``test_sim_<protocol>.py``; this file runs the
protocol-free behaviour (hangs, refusals, drops, malformed bodies, stats, control
endpoints, auth, unknown routes) once per protocol over plain HTTP.
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from sim_support import AUTH, KEY, chat_request, running

from stellwerk.http.server import Request
from stellwerk.sim import PROTOCOLS, SimProvider, dialect_for
from stellwerk.sim.protocol import Route, RouteSpec, RouteTable, WireError
from support import GUARD

ALL = sorted(PROTOCOLS)
AUTH_FAILURE = {"openai": 401, "anthropic": 401, "gemini": 400, "ollama": 401, "bedrock": 403}


def test_registry_names_five_protocols() -> None:
    assert ALL == ["anthropic", "bedrock", "gemini", "ollama", "openai"]
    assert dialect_for("gemini").name == "gemini"
    with pytest.raises(ValueError, match="unknown protocol 'grpc'"):
        SimProvider(protocol="grpc")


def test_route_table_matches_fixed_paths_models_and_query_conditions() -> None:
    table = RouteTable(
        [
            RouteSpec("POST", "/v1/messages", Route("chat")),
            RouteSpec("POST", "/m/{model}:go", Route("chat", stream=True), query="alt=sse"),
            RouteSpec("POST", "/m/{model}:go", Route("chat", variant="array")),
        ]
    )
    assert table.match("POST", "/v1/messages", "") == Route("chat")
    assert table.match("GET", "/v1/messages", "") is None
    assert table.match("POST", "/m/a%3A0:go", "key=k&alt=sse") == Route("chat", "a:0", stream=True)
    assert table.match("POST", "/m/a:go", "") == Route("chat", "a", variant="array")
    assert table.match("POST", "/m/:go", "") is None  # an empty model matches nothing
    with pytest.raises(ValueError, match="query condition"):
        RouteTable([RouteSpec("GET", "/x", Route("info"), query="a=b")])


@pytest.mark.parametrize("protocol", ALL)
def test_each_rejection_is_a_new_exception(protocol: str) -> None:
    """A shared exception object raised again and again would grow its traceback without bound."""
    dialect = dialect_for(protocol)
    path, _ = chat_request(protocol)
    route = RouteTable(dialect.routes).match("POST", path, "")
    assert route is not None
    raised = []
    for body in (b"{oops", b"{oops", b"{}", b"{}"):
        with pytest.raises(WireError) as info:
            dialect.parse_chat(Request("POST", path, "", {}, body), route, "")
        raised.append(info.value)
    assert len({id(e) for e in raised}) == 4


@pytest.mark.parametrize("protocol", ALL)
async def test_base_url_and_ok_stats(protocol: str) -> None:
    async with running(protocol) as (sim, client):
        assert sim.protocol == protocol
        assert sim.base_url == f"http://127.0.0.1:{sim.port}" + ("/v1" if protocol == "openai" else "")
        path, body = chat_request(protocol)
        assert (await client.post(path, json=body)).status_code == 200
        path, body = chat_request(protocol, stream=True)
        assert (await client.post(path, json=body)).status_code == 200
        stats = (await client.get("/_sim/stats")).json()
        assert (stats["requests"], stats["ok"], stats["streams"]) == (2, 2, 1)


@pytest.mark.parametrize("protocol", ALL)
async def test_wrong_credentials_are_rejected_the_protocols_way(protocol: str) -> None:
    async with running(protocol) as (sim, client):
        path, body = chat_request(protocol)
        headers = {k: v.replace(KEY, "wrong-key") for k, v in AUTH[protocol].items()}
        resp = await client.post(path, json=body, headers=headers)
        assert resp.status_code == AUTH_FAILURE[protocol]
        assert "wrong-key" not in resp.text
        assert sim.stats.invalid == 1 and sim.stats.ok == 0


@pytest.mark.parametrize("protocol", ALL)
async def test_unknown_route_is_404(protocol: str) -> None:
    async with running(protocol) as (sim, client):
        assert (await client.post("/nowhere", json={})).status_code == 404
        assert sim.stats.invalid == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_unknown_model_is_rejected_when_only_listed_models_are_served(protocol: str) -> None:
    async with running(protocol, models=("sim-model",), accept_any_model=False) as (sim, client):
        path, body = chat_request(protocol)
        resp = await client.post(path, json=body)
        assert resp.status_code == (400 if protocol == "bedrock" else 404)
        assert sim.stats.invalid == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_hang_until_the_client_gives_up(protocol: str) -> None:
    # only the wait for the answer is short: connecting and sending get GUARD, so the request surely arrives
    async with running(protocol, hang_rate=1.0, timeout=httpx.Timeout(GUARD, read=0.2)) as (sim, client):
        path, body = chat_request(protocol)
        with pytest.raises(httpx.ReadTimeout):
            await client.post(path, json=body)
        assert sim.stats.hang == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_outage_refuses_connections_then_answers_its_status(protocol: str) -> None:
    async with running(protocol, outages=({"start": 0, "duration": 60, "mode": "refuse"},)) as (sim, client):
        path, body = chat_request(protocol)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(path, json=body)
        sim.update(outages=[{"start": 0, "duration": 60, "status": 503}])
        resp = await client.post(path, json=body)
        assert resp.status_code == 503
        assert sim.stats.refused == 1 and sim.stats.error == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_drop_before_the_answer_and_mid_stream(protocol: str) -> None:
    async with running(protocol, drop_mid_stream_rate=1.0, output_tokens=40) as (sim, client):
        path, body = chat_request(protocol)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(path, json=body)
        path, body = chat_request(protocol, stream=True)
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", path, json=body) as resp:
                assert resp.status_code == 200
                async for _ in resp.aiter_bytes():
                    pass
        assert sim.stats.drop == 2


@pytest.mark.parametrize("protocol", ALL)
async def test_malformed_body_does_not_parse(protocol: str) -> None:
    async with running(protocol, malformed_rate=1.0) as (sim, client):
        path, body = chat_request(protocol)
        resp = await client.post(path, json=body)
        assert resp.status_code == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(resp.content)
        assert sim.stats.malformed == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_stream_error_outcome_is_an_error_status_without_a_stream(protocol: str) -> None:
    async with running(protocol, stream_error_rate=1.0, error_statuses=(503,)) as (sim, client):
        path, body = chat_request(protocol)
        assert (await client.post(path, json=body)).status_code == 503
        assert sim.stats.stream_error == 1


@pytest.mark.parametrize("protocol", ALL)
async def test_live_profile_changes_apply_to_every_protocol(protocol: str) -> None:
    async with running(protocol) as (_, client):
        resp = await client.post("/_sim/profile", json={"error_rate": 1.0, "error_statuses": [500]})
        assert resp.status_code == 200 and resp.json()["error_rate"] == 1.0
        path, body = chat_request(protocol)
        assert (await client.post(path, json=body)).status_code == 500
        await client.post("/_sim/reset")
        assert (await client.post(path, json=body)).status_code == 200


@pytest.mark.parametrize("protocol", ALL)
async def test_latency_is_applied(protocol: str) -> None:
    async with running(protocol, latency_ms=60) as (_, client):
        path, body = chat_request(protocol)
        started = asyncio.get_running_loop().time()
        assert (await client.post(path, json=body)).status_code == 200
        assert asyncio.get_running_loop().time() - started >= 0.05
