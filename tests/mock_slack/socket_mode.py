"""A stand-in for Slack's Socket Mode WebSocket: a local ``websockets`` server that pushes
envelopes to the connected app and records the acknowledgements it sends back.

Usage::

    with MockSocketMode() as sm:
        api.socket_mode_url = sm.url            # what apps.connections.open hands out
        ...connect the app...
        sm.send(envelope)
        ack = sm.wait_for_ack(envelope["envelope_id"])
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


class MockSocketMode:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._connections: list[ServerConnection] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> MockSocketMode:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *_: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> Server:
        return await serve(self._session, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=test"

    async def _session(self, ws: ServerConnection) -> None:
        with self._cond:
            self._connections.append(ws)
            self._cond.notify_all()
        # As Slack does: greet, then relay whatever the app sends back (acks) to the test.
        await ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        try:
            async for message in ws:
                with self._cond:
                    self.received.append(json.loads(message))
                    self._cond.notify_all()
        except ConnectionClosed:
            pass  # the app hung up without a close frame, as clients may

    def wait_connected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._connections), timeout):
                raise AssertionError("the app never opened the Socket Mode WebSocket")

    def send(self, envelope: dict[str, Any]) -> None:
        """Push an envelope to every connected app."""
        self.wait_connected()
        for ws in list(self._connections):
            asyncio.run_coroutine_threadsafe(ws.send(json.dumps(envelope)), self._loop).result(5)

    def hang_up(self) -> None:
        """Close every connection from Slack's side, with a close frame, as Slack does when it
        retires a connection."""
        for ws in list(self._connections):
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(5)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.received:
                    if message.get("envelope_id") == envelope_id:
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for envelope {envelope_id}: {self.received}")
                self._cond.wait(left)
