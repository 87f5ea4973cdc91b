"""Serve the Slack bot: Socket Mode (no public URL), or HTTP on uvicorn.

HTTP mode serves ``POST /slack/events`` (events, slash commands and interactivity on one URL,
signatures verified by bolt), ``GET /healthz`` (503 while the index loads, 200 once it has) and
``GET /metrics`` (Prometheus).

Both modes reload the index when ``index/CURRENT`` names a new build, or on SIGHUP
(``bot.reload``), and on SIGTERM stop taking events, finish the answers in flight (at most
``BAN_BOT_SHUTDOWN_TIMEOUT`` seconds) and exit 0.

Usage::

    serve(Settings.from_env(), http=False, port=None)     # Socket Mode: SLACK_APP_TOKEN
    serve(Settings.from_env(), http=True, port=3000)      # HTTP: SLACK_SIGNING_SECRET
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import ConfigError, Settings
from bot.index import IndexLoadError
from bot.logs import configure_logging
from bot.metrics import metrics_app
from bot.reload import IndexWatcher
from bot.slack import log
from bot.slack.app import Bot, build_bot
from bot.store import Store

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.answer import Engine

logger = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"  # Prometheus


def serve(settings: Settings, *, http: bool, port: int | None) -> None:
    """Run until interrupted: HTTP with ``http=True``, else Socket Mode (needs SLACK_APP_TOKEN)."""
    configure_logging(settings.log_level, secrets=settings.secrets)
    if http:
        settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
        serve_http(settings, port=port or settings.port)
        return
    if not settings.slack_app_token:
        raise ConfigError(
            "SLACK_APP_TOKEN is not set; add it to the environment or to .env for Socket Mode, "
            "or serve over HTTP with --http."
        )
    settings.require("SLACK_BOT_TOKEN")
    serve_socket_mode(settings)


def _load_engine(settings: Settings) -> Engine:
    from bot.answer import Engine

    return Engine.load(settings)


# -- Socket Mode ---------------------------------------------------------------------------------


def socket_mode_handler(app: App, settings: Settings) -> SocketModeHandler:
    """bolt's built-in Socket Mode client (no extra dependency) on the app's ``WebClient``, so
    ``apps.connections.open`` goes to ``SLACK_API_URL`` too."""
    return SocketModeHandler(app, app_token=settings.slack_app_token, web_client=app.client)


def serve_socket_mode(settings: Settings) -> None:
    """Load the engine, connect over Socket Mode and serve until SIGTERM or Ctrl-C."""
    logger.info(log.engine_loading(settings.index_dir))
    engine = _load_engine(settings)
    store = Store.open(settings)
    bot = build_bot(settings, engine, store=store)
    watcher = IndexWatcher(engine, settings.index_dir, interval=settings.reload_interval).start()
    handler = socket_mode_handler(bot.app, settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _on_sighup(watcher.request)
    logger.info(log.serving_socket_mode())
    try:
        handler.connect()
        stop.wait()  # Ctrl-C raises KeyboardInterrupt out of the wait
    finally:
        handler.close()  # no new events from here on
        watcher.stop()
        _drain(bot, settings.shutdown_timeout)
        store.close()


def _on_sighup(reload: Callable[[], None]) -> None:
    """SIGHUP checks the index for a new build at once (the watcher also polls by itself)."""

    def handle(*_: object) -> None:
        logger.info(log.reload_requested())
        reload()

    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, handle)


def _drain(bot: Bot, timeout: float) -> None:
    logger.info(log.shutting_down(timeout))
    logger.info(log.shut_down(bot.shutdown(timeout)))


# -- HTTP ----------------------------------------------------------------------------------------


class HttpSurface:
    """The ASGI app for HTTP mode. The engine loads in a background thread once the server has
    started, so ``/healthz`` can answer (503) while it does.

    Usage::

        surface = HttpSurface(settings)
        uvicorn.run(surface.asgi, port=3000)
    """

    def __init__(
        self,
        settings: Settings,
        *,
        load_engine: Callable[[Settings], Engine] = _load_engine,
        client: WebClient | None = None,
    ) -> None:
        self.settings = settings
        self._load_engine = load_engine
        self._client = client
        self.bot: Bot | None = None
        self.store: Store | None = None
        self.watcher: IndexWatcher | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.on_failure: Callable[[], None] = lambda: None
        # Done first, so that only Slack's requests are looked into (see handle).
        self._verifier = SignatureVerifier(settings.slack_signing_secret or "")
        self.asgi = Starlette(
            routes=[
                Route(EVENTS_PATH, self.slack_events, methods=["POST"]),
                Route(HEALTH_PATH, self.healthz, methods=["GET"]),
                Route(METRICS_PATH, metrics_app(), methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @property
    def app(self) -> App | None:
        return self.bot.app if self.bot is not None else None

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=self.load, name="ban-bot-engine-loader", daemon=True).start()
        yield
        # uvicorn has stopped accepting connections and finished the requests in flight, so
        # every event it acknowledged has been admitted: finish those answers.
        await run_in_threadpool(self.shutdown)

    def shutdown(self) -> None:
        """Stop reloading, finish the answers in flight (bounded), close the store."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.bot is not None:
            _drain(self.bot, self.settings.shutdown_timeout)
        if self.store is not None:
            self.store.close()

    def request_reload(self) -> None:
        """Check the index for a new build now (SIGHUP); nothing to do while still loading."""
        if self.watcher is not None:
            self.watcher.request()

    def load(self) -> None:
        """Load the engine, open the store and build the bolt app; then report ready."""
        started = time.monotonic()
        logger.info(log.engine_loading(self.settings.index_dir))
        try:
            engine = self._load_engine(self.settings)
            self.store = Store.open(self.settings)
            self.bot = build_bot(self.settings, engine, store=self.store, client=self._client)
            self.watcher = IndexWatcher(
                engine, self.settings.index_dir, interval=self.settings.reload_interval
            ).start()
        except (IndexLoadError, ConfigError) as e:
            # Errors a user can fix: their one clear sentence, without a traceback.
            self.error = e
            logger.error("%s: %s", log.engine_failed(), e)
            self.on_failure()
            return
        except BaseException as e:
            self.error = e
            logger.error(log.engine_failed(), exc_info=True)
            self.on_failure()
            return
        self.ready.set()
        logger.info(log.engine_ready(time.monotonic() - started))

    async def healthz(self, _: Request) -> Response:
        if self.ready.is_set():
            return JSONResponse({"ok": True, "status": "ready"})
        status = "failed" if self.error is not None else "loading"
        return JSONResponse({"ok": False, "status": status}, status_code=503)

    async def slack_events(self, request: Request) -> Response:
        body = await request.body()
        # bolt's App is synchronous: run it on a worker thread so the event loop stays free for
        # other requests (the Starlette adapter's own handler would block it).
        response = await run_in_threadpool(self.handle, body, request.headers, request.url.query)
        return to_starlette_response(response)

    def handle(self, body: bytes, headers: Mapping[str, str], query: str = "") -> BoltResponse:
        """Answer one ``POST /slack/events`` as the bolt app does, once it is known to be Slack's.

        503 while the engine loads (Slack retries later); 401 unless signed with
        ``SLACK_SIGNING_SECRET`` within five minutes, before anything reads the body; 400 for a
        signed body bolt could not handle (``malformed``); else the app's own response.
        """
        app = self.app
        if app is None or not self.ready.is_set():
            return BoltResponse(status=503, body={"ok": False, "status": "loading"})
        # The only signature check: bolt's own (RequestVerification) would come after
        # BoltRequest has parsed the body and read it for its context, which junk can crash.
        if not self._verifier.is_valid_request(body, headers):
            return BoltResponse(status=401, body="")  # as bolt would: nothing is told
        try:
            request = BoltRequest(body=body.decode("utf-8"), query=query, headers=dict(headers))
        except Exception as e:  # bolt parses as it builds the request; junk raises there
            return self._malformed(type(e).__name__)
        problem = malformed(request.body)
        if problem:
            return self._malformed(problem)
        return app.dispatch(request)

    def _malformed(self, problem: str) -> BoltResponse:
        logger.warning(log.malformed_request(problem))
        return BoltResponse(status=400, body={"ok": False, "error": "malformed request"})


# What bolt reads from a request without checking its type first (a signed request is Slack's,
# which never sends these shapes; bolt would answer 500 and log an error).
_OBJECTS = ("event", "user", "channel", "team", "enterprise", "container", "message", "view")
_LISTS = ("authorizations", "actions")
_STRINGS = ("type", "command", "callback_id", "event_id")


def malformed(body: Any) -> str | None:
    """Why bolt cannot handle a parsed request body, or ``None`` when it can.

    Usage: ``malformed({"event": None})`` -> ``"'event' is not an object"``
    """
    if not isinstance(body, dict):
        return "the body is not an object"
    for key in _OBJECTS:
        if key in body and not isinstance(body[key], dict):
            return f"{key!r} is not an object"
    for key in _LISTS:
        value = body.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, dict) for v in value)
        ):
            return f"{key!r} is not a list of objects"
    for key in _STRINGS:
        if key in body and not isinstance(body[key], str):
            return f"{key!r} is not a string"
    event = body.get("event")
    if event is not None and "type" in event and not isinstance(event["type"], str):
        return "the event's 'type' is not a string"
    if event is not None:
        problem = _malformed_event(event)
        if problem:
            return problem
    if body.get("type") == "block_actions":
        actions = body.get("actions") or []
        if not actions or not all(isinstance(a.get("action_id"), str) for a in actions):
            return "a block action without an 'action_id'"
    return None


def _malformed_event(event: dict[str, Any]) -> str | None:
    """What bolt's agent (Assistant) middleware reads from an event without checking it."""
    for key in ("channel", "thread_ts"):
        if event.get(key) is not None and not isinstance(event[key], str):
            return f"the event's {key!r} is not a string"
    if event.get("thread_ts") is not None and event.get("channel") is None:
        return "a threaded event without a 'channel'"
    if event.get("type") in ("assistant_thread_started", "assistant_thread_context_changed"):
        thread = event.get("assistant_thread")
        if not isinstance(thread, dict) or not all(
            isinstance(thread.get(k), str) for k in ("channel_id", "thread_ts")
        ):
            return "an agent thread event without its 'assistant_thread' channel and ts"
    return None


def serve_http(settings: Settings, *, port: int) -> None:
    """Serve ``POST /slack/events`` and ``GET /healthz`` on uvicorn until interrupted."""
    import uvicorn

    surface = HttpSurface(settings)
    # log_config=None: uvicorn logs through the root handlers, which scrub secrets.
    config = uvicorn.Config(
        surface.asgi,
        host=settings.host,
        port=port,
        log_config=None,
        lifespan="on",
        # On SIGTERM uvicorn stops accepting, then waits this long for the requests in flight
        # (acknowledgements: milliseconds); the lifespan shutdown then finishes the answers.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    surface.on_failure = stop
    _on_sighup(surface.request_reload)
    # uvicorn handles SIGTERM itself (graceful shutdown), then raises it again once done so that
    # the default action ends the process; by then everything is finished, so exit 0 instead.
    signal.signal(signal.SIGTERM, lambda *_: None)
    logger.info(log.serving_http(settings.host, port))
    server.run()
    if surface.error is not None:
        raise surface.error
