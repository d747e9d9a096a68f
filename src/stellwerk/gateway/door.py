"""What every translating front door (Anthropic messages, legacy completions, Responses) shares: the readers
the gateway lends it, so all of them read requests alike, and the chat call they turn a request into."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

from stellwerk.http.server import Request
from stellwerk.pipeline import Call, Operation, Principal
from stellwerk.routing import Router

__all__ = ["FrontDoor"]


@mypyc_attr(allow_interpreted_subclasses=True)
class FrontDoor:
    """``parse_json`` reads the body (raising InvalidRequestError), ``timeout_of`` the ``x-stellwerk-timeout``
    header, ``caller`` the caller's key (401 first: call it before reading the body)."""

    def __init__(self, router: Router, parse_json: Callable[[Request], Any],
                 timeout_of: Callable[[Request], float | None],
                 caller: Callable[[Request], Principal | None] = lambda request: None) -> None:
        self.router = router
        self._parse_json = parse_json
        self._timeout_of = timeout_of
        self._caller = caller

    def chat_call(self, request: Request, rid: str, chat: dict[str, Any], principal: Principal | None) -> Call:
        """The chat call a translated request becomes."""
        return self.router.call(Operation.CHAT, chat, request_id=rid, timeout=self._timeout_of(request),
                                headers=request.headers, principal=principal)
