"""Serve the Slack bot: Socket Mode (no public URL), or HTTP on uvicorn.

HTTP mode serves ``POST /slack/events`` (events, slash commands and interactivity on one URL,
signatures verified by bolt), ``GET /healthz`` (503 while the index loads, 200 once it has) and
``GET /metrics`` (Prometheus).

Usage::

    serve(Settings.from_env(), http=False, port=None)     # Socket Mode: SLACK_APP_TOKEN
    serve(Settings.from_env(), http=True, port=3000)      # HTTP: SLACK_SIGNING_SECRET
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import ConfigError, Settings
from bot.logs import configure_logging
from bot.metrics import metrics_app
from bot.slack import log
from bot.slack.app import create_app
from bot.store import Store

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.answer import Engine

logger = logging.getLogger("bot.slack.serve")
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"  # Prometheus


def serve(settings: Settings, *, http: bool, port: int | None) -> None:
    """Run until interrupted: HTTP with ``http=True``, else Socket Mode (needs SLACK_APP_TOKEN)."""
    configure_logging(settings.log_level)
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
    """Load the engine, connect over Socket Mode and block until interrupted."""
    logger.info(log.engine_loading(settings.index_dir))
    engine = _load_engine(settings)
    store = Store.open(settings)
    handler = socket_mode_handler(create_app(settings, engine, store=store), settings)
    logger.info(log.serving_socket_mode())
    try:
        handler.start()
    finally:
        handler.close()
        store.close()


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
        self.app: App | None = None
        self.store: Store | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.on_failure: Callable[[], None] = lambda: None
        self.asgi = Starlette(
            routes=[
                Route(EVENTS_PATH, self.slack_events, methods=["POST"]),
                Route(HEALTH_PATH, self.healthz, methods=["GET"]),
                Route(METRICS_PATH, metrics_app(), methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> AsyncIterator[None]:
        threading.Thread(target=self.load, name="ban-bot-engine-loader", daemon=True).start()
        yield
        if self.store is not None:
            self.store.close()

    def load(self) -> None:
        """Load the engine, open the store and build the bolt app; then report ready."""
        started = time.monotonic()
        logger.info(log.engine_loading(self.settings.index_dir))
        try:
            engine = self._load_engine(self.settings)
            self.store = Store.open(self.settings)
            self.app = create_app(self.settings, engine, store=self.store, client=self._client)
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
        app = self.app
        if app is None or not self.ready.is_set():
            # Slack retries a 503 later; by then the engine is there.
            return JSONResponse({"ok": False, "status": "loading"}, status_code=503)
        body = await request.body()
        # bolt's App is synchronous: run it on a worker thread so the event loop stays free for
        # other requests (the Starlette adapter's own handler would block it).
        bolt_response = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)


def serve_http(settings: Settings, *, port: int) -> None:
    """Serve ``POST /slack/events`` and ``GET /healthz`` on uvicorn until interrupted."""
    import uvicorn

    surface = HttpSurface(settings)
    # log_config=None: uvicorn logs through the root handlers, which scrub secrets.
    config = uvicorn.Config(
        surface.asgi, host=settings.host, port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    surface.on_failure = stop
    logger.info(log.serving_http(settings.host, port))
    server.run()
    if surface.error is not None:
        raise surface.error
