"""Bounded answering: a fixed number of threads behind a bounded queue.

Slack wants every request acknowledged within 3 seconds, so the listeners only admit work here
and return; the answering (encode, search, post to Slack) happens on these threads. The queue is
bounded so that a flood costs a bounded amount of memory and waiting time: when it is full,
``submit`` says so at once and the caller tells the user to try again.

The threads are daemons: ``drain`` waits for the accepted work up to its timeout, and whatever is
still running after that (say, a post sleeping through Slack's ``Retry-After``) cannot keep the
process from exiting.

Usage::

    pool = WorkerPool(workers=4, queue_size=64, name="answer")
    if not pool.submit(lambda: answer_and_post(event)):
        tell_the_user_to_try_again()
    pool.drain(timeout=10.0)   # at shutdown: refuse new work, finish what was accepted
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Job = Callable[[], None]


class WorkerPool:
    """``workers`` threads taking jobs from a queue of at most ``queue_size`` waiting jobs."""

    def __init__(self, *, workers: int, queue_size: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"a worker pool needs at least one thread, got {workers}")
        self.name = name
        self.capacity = workers + max(queue_size, 0)
        # The bound is ``capacity``, checked under the lock in ``submit``; the queue only hands
        # jobs to the threads.
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._pending = 0  # accepted and not finished: waiting or running
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"ban-bot-{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Jobs accepted and not yet finished (waiting in the queue or running)."""
        with self._cond:
            return self._pending

    def submit(self, job: Job) -> bool:
        """Queue ``job``; ``False`` at once (never blocking) when full or shutting down."""
        with self._cond:
            if self._closed or self._pending >= self.capacity:
                return False
            self._pending += 1
            self._queue.put(job)
        return True

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                # Jobs report their own failures to the user; this only keeps the thread alive.
                logger.exception("A %s job failed", self.name)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new jobs and wait up to ``timeout`` seconds for the accepted ones to finish.

        Returns ``True`` when everything finished; otherwise logs how many were abandoned.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            finished = self._cond.wait_for(
                lambda: self._pending == 0, max(deadline - time.monotonic(), 0.0)
            )
            left = self._pending
        if finished:
            for _ in self._threads:
                self._queue.put(None)  # wake each idle thread so it returns
        else:
            logger.warning(
                "Shutdown: %d %s job(s) still running after %.0fs were abandoned",
                left,
                self.name,
                timeout,
            )
        return finished
