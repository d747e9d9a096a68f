"""The ``bedrock`` provider: Amazon Bedrock's Converse API.

Importing this package does not import botocore; only SigV4 signing does
(``signing``, the optional extra ``stellwerk[bedrock]``).
"""

from .adapter import BedrockAdapter
from .checks import deployment_problems
from .errors import classify_error
from .eventstream import EventMessage, EventStreamDecoder
from .response import BedrockStreamDecoder

__all__ = ["BedrockAdapter", "BedrockStreamDecoder", "EventMessage", "EventStreamDecoder", "classify_error",
           "deployment_problems"]
