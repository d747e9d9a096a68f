"""The config file of ``stellwerk serve --config FILE``: read again when it changes, on SIGHUP and on
``POST /admin/config/reload``.

The file is polled (its size, modification time and inode, every ``interval`` seconds; the sleep is
injected): a change is applied within about one interval of the write. An invalid file is refused: the
running version stays, the error (with its key path) is logged and shown as ``last_error`` by
``GET /admin/config``. A write caught half-way (an editor saving in two steps) is refused the same way and
applied at the next poll once whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from stellwerk.config import Config
from stellwerk.configuration import Version
from stellwerk.errors import ConfigError
from stellwerk.routing import Router

__all__ = ["ConfigFile"]

log = logging.getLogger("stellwerk.config")


class ConfigFile:
    def __init__(self, path: str | os.PathLike[str], router: Router, load: Callable[[Path], Config]) -> None:
        self.path = Path(path)
        self._router = router
        self._load = load
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns, stat.st_ino

    def reload(self) -> Version:
        """Read the file and apply it (``ConfigError`` when it is refused; the running version stays)."""
        self._seen = self._signature()
        try:
            config = self._load(self.path)
            return self._router.configuration.reload(config, f"file:{self.path}")
        except ConfigError as err:
            self._router.configuration.history.last_error = str(err)
            log.warning("config %s refused, version %d keeps serving: %s", self.path,
                        self._router.configuration.current.number, err)
            raise

    async def watch(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, interval: float = 0.5) -> None:
        """Apply the file whenever it changes (until cancelled)."""
        while True:
            await sleep(interval)
            if self._signature() != self._seen:
                try:
                    version = self.reload()
                except ConfigError:
                    continue
                log.info("config %s applied as version %d", self.path, version.number)
