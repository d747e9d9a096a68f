"""Stellwerk's own server (uvloop + httptools). Usage: python stellwerk_app.py PORT"""

import asyncio
import sys

import uvloop
from payload import RESPONSE

from stellwerk.http.server import HTTPServer, Request, Response


async def handler(request: Request) -> Response:
    return Response(200, RESPONSE)


async def main(port: int) -> None:
    server = HTTPServer(handler)
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
