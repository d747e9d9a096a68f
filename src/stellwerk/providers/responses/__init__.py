"""The OpenAI Responses API as a front door: requests to canonical chat, answers and streams back."""

from .inbound import ResponsesRequest, to_chat_request
from .outbound import ResponseEvents, to_response

__all__ = ["ResponseEvents", "ResponsesRequest", "to_chat_request", "to_response"]
