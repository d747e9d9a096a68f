"""Several replicas as one gateway: shared limits, health and key changes through Redis (``server.redis``).

    node.Cluster        connections, heartbeat, notices, up/down (degradation)
    limits.SharedLimits global rpm/tpm of keys, teams and deployments (Lua, checked and counted in Redis)
    leases              allowances granted out of those windows, spent here without a round trip
    rounds              the admissions and reconciliations that meet share one ADMIT round trip
    admission           the limits stage's shared path
    health.SharedHealth breakers opened or closed on one replica, applied on all
    notices             key, team and configuration (API edit) changes, applied on all
    workers             ``stellwerk serve --workers N``: a supervisor and N processes on one port
"""

from .health import SharedHealth
from .limits import SharedLimits
from .node import Cluster
from .notices import ConfigNotices, KeyNotices

__all__ = ["Cluster", "ConfigNotices", "KeyNotices", "SharedHealth", "SharedLimits"]
