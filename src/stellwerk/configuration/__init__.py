"""Configuration at run time: versions, the overlay of API edits, diffs, reloads and rollbacks.

    file / PUT /admin/config ─► base config ─┐
    API edits (weight, strategy, enabled) ──► overlay ─► base + overlay ─► Router.install ─► table N+1
                                                         └─► History: version N+1 (source, author, time)
"""

from .diff import diff
from .history import History, Version
from .manager import ConfigManager
from .overlay import Edit, apply_edits

__all__ = ["ConfigManager", "Edit", "History", "Version", "apply_edits", "diff"]
