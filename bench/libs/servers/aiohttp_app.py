"""aiohttp.web on uvloop, no access log. Usage: python aiohttp_app.py PORT"""

import sys

import uvloop
from aiohttp import web
from payload import RESPONSE


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=RESPONSE, content_type="application/json")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
                loop=uvloop.new_event_loop())
