"""State behind small interfaces: windowed counters and key-value (:class:`StateStore`), responses (:class:`Cache`).

In-memory implementations are the default (:mod:`.memory`); shared ones
(Redis) plug in behind the same interfaces, chosen in one composition root.
"""

from .interfaces import Cache, CacheHit, CacheUnavailable, CacheUsage, Counter, StateStore
from .memory import MemoryCache, MemoryStateStore

__all__ = ["Cache", "CacheHit", "CacheUnavailable", "CacheUsage", "Counter", "MemoryCache", "MemoryStateStore", "StateStore"]
