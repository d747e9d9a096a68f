"""Response caching: the pipeline's ``cache`` stage, exact and semantic, scoped, stream-aware.

:mod:`.keys` (what an answer is filed under), :mod:`.entry` (stored bytes, replay, collecting a
stream), :mod:`.guard` (facts that must match for a semantic hit), :mod:`.middleware` (the stage).
The entries live in a :class:`stellwerk.state.Cache` (memory or Redis).
"""

from .guard import guard, signature
from .keys import ANONYMOUS, IGNORED, Controls, context_key, exact_key, read_controls, scope_id
from .middleware import DEFAULT_THRESHOLD, CacheTally, ResponseCache

__all__ = ["ANONYMOUS", "DEFAULT_THRESHOLD", "IGNORED", "CacheTally", "Controls", "ResponseCache", "context_key",
           "exact_key", "guard", "read_controls", "scope_id", "signature"]
