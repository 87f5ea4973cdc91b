"""A stand-in for the Slack Web API (and for ``response_url`` webhooks): a stdlib HTTP server on
127.0.0.1 that records every call and answers as Slack does.

Usage::

    with MockWebApi() as api:
        client = WebClient(token="xoxb-test", base_url=api.url)
        client.chat_postMessage(channel="C1", text="hi")
        [call] = api.calls_to("chat.postMessage")
        api.fail_next("chat.postMessage", status=429, retry_after=1)
        api.delay("chat.postMessage", 2.0)       # a slow Slack: answer each call after 2 s
        api.refuse("assistant.threads.setStatus", "not_allowed")  # a workspace without it
        api.reject_blocks("context_actions")     # a workspace without that Block Kit block
        api.on_call = lambda call: ...           # see each call as it arrives (load runs)

Messages are checked as Slack checks them: a section or context text over 3,000 characters,
more than 50 blocks, or a block type refused by ``reject_blocks`` gets ``invalid_blocks``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_USER_ID = "UBANBOT01"
BOT_ID = "BBANBOT01"
TEAM_ID = "T0001"
RESPONSE_URL_PREFIX = "/response/"  # response_url webhooks land here
PERMALINK_BASE = "https://example.slack.com/archives/"
# Slack's limits on a message's blocks.
MAX_BLOCKS = 50
MAX_BLOCK_TEXT = 3000
_MESSAGE_APIS = ("chat.postMessage", "chat.postEphemeral", "chat.update")


@dataclass(frozen=True)
class Call:
    """One request the stand-in received."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived
    response: dict[str, Any] = field(default_factory=dict)  # what the stand-in answered

    @property
    def api(self) -> str:
        """The Web API method ("chat.postMessage"), or the path of a webhook."""
        return self.path.lstrip("/")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.body.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    def rendered(self) -> str:
        """What Slack would show: ``text`` and every text of the blocks (not button values)."""
        return rendered_text({"text": self.text, "blocks": self.blocks})


def rendered_text(payload: Any) -> str:
    """Every ``text`` string in a message payload, one per line; button values are data, not
    shown, and left out."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    return "\n".join(out)


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    times: int


@dataclass
class MockWebApi:
    """Records calls; ``url`` is the base URL to give the ``WebClient``."""

    socket_mode_url: str | None = None
    calls: list[Call] = field(default_factory=list)
    on_call: Callable[[Call], None] | None = None
    _faults: dict[str, _Fault] = field(default_factory=dict)
    _delays: dict[str, float] = field(default_factory=dict)
    _refusals: dict[str, str] = field(default_factory=dict)
    _rejected_blocks: set[str] = field(default_factory=set)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _ts: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # -- life cycle
    def start(self) -> MockWebApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MockWebApi:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def response_url(self, name: str = "cmd") -> str:
        """A ``response_url`` that points here."""
        return f"{self.url.rstrip('/')}{RESPONSE_URL_PREFIX}{name}"

    # -- control
    def fail_next(
        self, api: str, *, status: int = 500, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` calls to ``api`` with ``status`` (429 sets Retry-After)."""
        with self._lock:
            self._faults[api] = _Fault(status, retry_after, times)

    def delay(self, api: str, seconds: float) -> None:
        """Answer every later call to ``api`` only after ``seconds`` (0 for no delay)."""
        with self._lock:
            self._delays[api] = seconds

    def refuse(self, api: str, error: str) -> None:
        """Answer every later call to ``api`` with ``{"ok": false, "error": error}``, as a
        workspace without that feature (or an app without its scope) does."""
        with self._lock:
            self._refusals[api] = error

    def reject_blocks(self, block_type: str) -> None:
        """Refuse messages holding a block of ``block_type`` (``invalid_blocks``; a 400 from a
        ``response_url``), as a workspace whose Slack does not know it does."""
        with self._lock:
            self._rejected_blocks.add(block_type)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._faults.clear()
            self._delays.clear()
            self._refusals.clear()
            self._rejected_blocks.clear()

    # -- assertions
    def calls_to(self, api: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.api == api]

    def wait_for(
        self,
        api: str,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[Call], bool] = lambda _: True,
    ) -> list[Call]:
        """Block until at least ``count`` matching calls to ``api`` arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.api == api and where(c)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.api for c in self.calls]
                    raise AssertionError(f"expected {count} call(s) to {api}; got {seen}")
                self._lock.wait(left)

    def answered(self, call: Call, timeout: float = 5.0) -> dict[str, Any]:
        """What the stand-in answered ``call`` (a posted message's ``ts``), once it has."""
        with self._lock:
            if not self._lock.wait_for(lambda: bool(call.response), timeout):
                raise AssertionError(f"{call.api} was never answered")
            return dict(call.response)

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> list[Call]:
        """Wait until no call arrived for ``quiet`` seconds (to assert that nothing more came)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            last = len(self.calls)
            while time.monotonic() < deadline:
                self._lock.wait(quiet)
                if len(self.calls) == last:
                    break
                last = len(self.calls)
            return list(self.calls)

    # -- answering (called from the server threads)
    def _record(self, call: Call) -> _Fault | None:
        with self._lock:
            self.calls.append(call)
            fault = self._faults.get(call.api)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[call.api]
            self._lock.notify_all()
            delay = self._delays.get(call.api, 0.0)
        if self.on_call is not None:
            self.on_call(call)
        if delay:
            time.sleep(delay)
        return fault

    def invalid_blocks(self, call: Call) -> bool:
        """Would Slack refuse this message's blocks?"""
        try:
            blocks = call.blocks
        except ValueError:
            return True
        if len(blocks) > MAX_BLOCKS:
            return True
        with self._lock:
            rejected = set(self._rejected_blocks)
        for block in blocks:
            if not isinstance(block, dict) or block.get("type") in rejected:
                return True
            texts = [block.get("text"), *(block.get("elements") or [])]
            for text in texts:
                if isinstance(text, dict) and len(str(text.get("text", ""))) > MAX_BLOCK_TEXT:
                    return True
        return False

    def _answer(self, call: Call) -> dict[str, Any]:
        api, body = call.api, call.body
        with self._lock:
            refusal = self._refusals.get(api)
        if refusal is not None:
            return {"ok": False, "error": refusal}
        if api in _MESSAGE_APIS and self.invalid_blocks(call):
            return {"ok": False, "error": "invalid_blocks"}
        if api == "chat.getPermalink":
            channel, ts = str(body.get("channel")), str(body.get("message_ts"))
            return {
                "ok": True,
                "channel": channel,
                "permalink": f"{PERMALINK_BASE}{channel}/p{ts.replace('.', '')}",
            }
        if api == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "ban-bot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
            }
        if api == "apps.connections.open":
            if not call.headers.get("authorization", "").startswith("Bearer xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if api == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": {"ts": ts}}
        if api == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if api == "views.publish":
            return {"ok": True, "view": {"id": "V0001", "type": "home"}}
        return {"ok": True}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Slack does not refuse connections: a deep backlog, so that bursts of calls under load
    # (make load) queue here rather than fail with the stdlib's default of 5.
    request_queue_size = 256


def _handler_for(api: MockWebApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            parsed = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            call = Call(
                method="POST",
                path=parsed.path,
                body=_parse_body(raw, self.headers.get("Content-Type", ""), parsed.query),
                headers={k.lower(): v for k, v in self.headers.items()},
            )
            fault = api._record(call)
            if fault is not None:
                error = "ratelimited" if fault.status == 429 else "internal_error"
                headers = (
                    {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                )
                self._send(fault.status, {"ok": False, "error": error}, headers)
                return
            if call.path.startswith(RESPONSE_URL_PREFIX):
                if api.invalid_blocks(call):
                    self._send(400, None, body=b"invalid_blocks")
                    return
                self._send(200, None)  # webhooks answer a bare "ok"
                return
            auth = call.headers.get("authorization", "")
            if not auth.startswith(("Bearer xox", "Bearer xapp-")):
                self._send(200, {"ok": False, "error": "not_authed"})
                return
            if "revoked" in auth:  # a token Slack no longer accepts
                self._send(200, {"ok": False, "error": "invalid_auth"})
                return
            answer = api._answer(call)
            with api._lock:
                call.response.update(answer)
                api._lock.notify_all()
            self._send(200, answer)

        do_GET = do_POST

        def _send(
            self,
            status: int,
            payload: dict[str, Any] | None,
            headers: dict[str, str] | None = None,
            body: bytes = b"ok",
        ) -> None:
            data = body if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            kind = "text/plain" if payload is None else "application/json; charset=utf-8"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _parse_body(raw: str, content_type: str, query: str) -> dict[str, Any]:
    if "json" in content_type and raw:
        return dict(json.loads(raw))
    source = raw or query
    return {k: v[0] for k, v in parse_qs(source, keep_blank_values=True).items()}
