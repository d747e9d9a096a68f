"""Issue 9, item 6: private CAs (``ca_file``) and outbound proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``,
``proxy:``), against a local TLS upstream with a throwaway CA and a local CONNECT proxy."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.proxy import ProxyEnvironment, no_proxy_matches, parse_proxy
from support import GUARD, CaptureUpstream, config, deployment, model, request
from tls_support import Certificates, ConnectProxy, TLSUpstream, chat_body, make_certificates

StartGateway = Callable[..., Awaitable[Gateway]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def tls_upstream(certs: Certificates) -> AsyncIterator[TLSUpstream]:
    upstream = TLSUpstream(certs)
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    p = ConnectProxy()
    await p.start()
    yield p
    await p.close()


async def _chat(start_gateway: StartGateway, api_base: str, **dep: Any) -> Any:
    gateway = await start_gateway(config(model("chat", deployment("a", api_base, **dep), retries=0, timeout=GUARD)))
    return await request(gateway.port, "POST", "/v1/chat/completions", chat_body(),
                         {"Content-Type": "application/json"})


# -- private CAs ---------------------------------------------------------------------------------------------------
async def test_an_unknown_ca_fails(start_gateway: StartGateway, tls_upstream: TLSUpstream) -> None:
    response = await _chat(start_gateway, f"https://localhost:{tls_upstream.port}/v1")
    assert response.status in (502, 503)  # no deployment could be reached
    assert "certificate" in response.json["error"]["message"]
    assert tls_upstream.requests == 0


async def test_a_hostname_mismatch_fails_even_with_the_ca(start_gateway: StartGateway, tls_upstream: TLSUpstream,
                                                          certs: Certificates) -> None:
    response = await _chat(start_gateway, f"https://127.0.0.1:{tls_upstream.port}/v1", ca_file=str(certs.ca))
    assert response.status in (502, 503)  # no deployment could be reached
    assert "certificate" in response.json["error"]["message"]
    assert tls_upstream.requests == 0


async def test_ca_file_is_trusted_in_addition_to_the_system_store(start_gateway: StartGateway,
                                                                  tls_upstream: TLSUpstream,
                                                                  certs: Certificates) -> None:
    response = await _chat(start_gateway, f"https://localhost:{tls_upstream.port}/v1", ca_file=str(certs.ca))
    assert response.status == 200, response.body
    assert response.json["choices"][0]["message"]["content"] == "over TLS"
    import ssl

    from stellwerk.outbound import _context
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert _context(str(certs.ca)).cert_store_stats()["x509_ca"] == system + 1


# -- proxies -------------------------------------------------------------------------------------------------------
async def test_https_proxy_tunnels_with_connect(start_gateway: StartGateway, tls_upstream: TLSUpstream,
                                                certs: Certificates, proxy: ConnectProxy,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://user:p%40ss@"))
    response = await _chat(start_gateway, f"https://localhost:{tls_upstream.port}/v1", ca_file=str(certs.ca))
    assert response.status == 200, response.body
    assert proxy.requests == [f"CONNECT localhost:{tls_upstream.port}"]
    assert proxy.authorization == ["Basic " + base64.b64encode(b"user:p@ss").decode()]


async def test_no_proxy_exempts_a_host(start_gateway: StartGateway, tls_upstream: TLSUpstream,
                                       certs: Certificates, proxy: ConnectProxy,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com, localhost")
    response = await _chat(start_gateway, f"https://localhost:{tls_upstream.port}/v1", ca_file=str(certs.ca))
    assert response.status == 200
    assert proxy.requests == []


async def test_http_proxy_gets_absolute_form_and_loopback_is_proxied(start_gateway: StartGateway,
                                                                     start_upstream: StartUpstream,
                                                                     proxy: ConnectProxy,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    up = await start_upstream()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    response = await _chat(start_gateway, up.base_url)
    assert response.status == 200
    assert proxy.requests == [f"POST {up.base_url}/chat/completions"]
    assert up.count == 1


async def test_the_deployment_proxy_option_wins(start_gateway: StartGateway, start_upstream: StartUpstream,
                                                proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    up = await start_upstream()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    assert (await _chat(start_gateway, up.base_url, proxy="direct")).status == 200
    assert (await _chat(start_gateway, up.base_url, proxy=proxy.url)).status == 200
    assert proxy.requests == [f"POST {up.base_url}/chat/completions"]


async def test_a_proxy_refusing_connect_is_a_connect_error(start_gateway: StartGateway, start_upstream: StartUpstream,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    up = await start_upstream()  # a plain HTTP server: answers CONNECT with an error
    monkeypatch.setenv("HTTPS_PROXY", up.base_url.removesuffix("/v1"))
    response = await _chat(start_gateway, "https://localhost:1/v1")
    assert response.status in (502, 503)  # no deployment could be reached
    assert "refused CONNECT localhost:1" in response.json["error"]["message"]


# -- curl's rules --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "no_proxy", "exempt"), [
    ("api.example.com", "example.com", True),
    ("api.example.com", ".example.com", True),
    ("example.com", ".example.com", True),
    ("notexample.com", "example.com", False),
    ("127.0.0.1", "localhost", False),  # loopback is proxied unless named
    ("127.0.0.1", "127.0.0.1", True),
    ("10.1.2.3", "10.0.0.0/8", True),
    ("::1", "::1", True),
    ("[::1]", "[::1]", True),
    ("anything", "*", True),
    ("host", "other, host:8080", True),
    ("host", "", False),
])
def test_no_proxy_matching(host: str, no_proxy: str, exempt: bool) -> None:
    assert no_proxy_matches(host, no_proxy) is exempt


def test_proxy_environment_and_urls() -> None:
    env = ProxyEnvironment({"https_proxy": "proxy.corp:3128", "HTTP_PROXY": "http://h:8080", "NO_PROXY": "internal"})
    assert env.proxy_for("https", "api.openai.com") is not None
    assert env.proxy_for("https", "x.internal") is None
    http = env.proxy_for("http", "a")
    assert http is not None and (http.host, http.port) == ("h", 8080)
    assert parse_proxy("http://p").port == 1080
    with pytest.raises(ValueError, match="socks5"):
        parse_proxy("socks5://p:1080")
    assert "secret" not in repr(parse_proxy("http://u:secret@p:1"))


