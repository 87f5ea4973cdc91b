"""Hot reload: a running bot switches to a new index build without a restart.

``ban-bot index build`` (or ``index rollback``) makes a build live by replacing ``index/CURRENT``
in one rename. A daemon thread reads that pointer once a ``interval`` (one small file read; it
works on every filesystem, Docker volumes and network mounts included, where file-change
notifications may never arrive) and calls ``Engine.reload()`` when it names another build.
``request()`` (wired to SIGHUP) reloads at once. Answers go on throughout: the engine swaps its
state in one assignment, and a question already being answered finishes on the build it started
with. A build that fails to load (corrupt, truncated, mismatched) is logged with the reason and
the last good one keeps answering; it is not tried again until ``CURRENT`` changes or SIGHUP.

Usage::

    watcher = IndexWatcher(engine, settings.index_dir, interval=1.0).start()
    signal.signal(signal.SIGHUP, lambda *_: watcher.request())
    ...
    watcher.stop()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot import metrics
from bot.index import IndexLoadError, current_build

if TYPE_CHECKING:
    from bot.answer import Engine

logger = logging.getLogger(__name__)


class IndexWatcher:
    """Reloads ``engine`` when ``index_dir/CURRENT`` names a new build, or when asked to."""

    def __init__(
        self,
        engine: Engine,
        index_dir: Path,
        *,
        interval: float = 1.0,
        on_reload: Callable[[str], None] = metrics.set_index,
    ) -> None:
        self.engine = engine
        self.index_dir = index_dir
        self.interval = interval
        self.on_reload = on_reload
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._tried: str | None = engine.index.build_id
        self._thread = threading.Thread(target=self._run, name="ban-bot-index-watcher", daemon=True)

    def start(self) -> IndexWatcher:
        self._thread.start()
        return self

    def request(self) -> None:
        """Reload now (safe to call from a signal handler: it only sets an event)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            forced = self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            self.check(force=forced)

    def _pointer(self) -> str | None:
        """The build ``CURRENT`` names (a bad pointer is for ``Engine.reload`` to report)."""
        try:
            build = current_build(self.index_dir)
        except (IndexLoadError, OSError):
            return "?"
        return build.name if build is not None else None

    def check(self, *, force: bool = False) -> bool:
        """Reload if ``CURRENT`` names a build not yet tried (any build with ``force``).

        Returns ``True`` when a new build is now answering; never raises.
        """
        live = self._pointer()
        if not force and live == self._tried:
            return False
        self._tried = live
        previous = self.engine.index.build_id
        try:
            changed = self.engine.reload()
        except IndexLoadError as e:
            logger.warning("Index reload failed, still answering from build %s: %s", previous, e)
            return False
        except Exception:
            logger.exception("Index reload failed, still answering from build %s", previous)
            return False
        build_id = self.engine.index.build_id
        if changed:
            self.on_reload(build_id)
            logger.info("Now answering from index build %s (was %s)", build_id, previous)
        return changed
