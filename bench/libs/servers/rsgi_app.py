"""A raw RSGI app for granian's native interface."""

from payload import RESPONSE

HEADERS = [("content-type", "application/json")]


async def app(scope, protocol):  # type: ignore[no-untyped-def]
    await protocol()  # read the request body
    protocol.response_bytes(200, HEADERS, RESPONSE)
