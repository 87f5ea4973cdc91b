"""How ban-bot talks to Slack when Slack has trouble: slack_sdk's retry handlers for rate limits
(429, obeying ``Retry-After``), server errors (any 5xx) and dropped connections, on the Web API
client and on ``response_url`` alike; and a ``response_url`` reply that raises when Slack
refuses it, where bolt's ``respond`` would return the failure unnoticed.

Usage::

    client = WebClient(token=token, retry_handlers=retry_handlers())
    reply = ResponseUrl(respond)              # inside a listener that was given ``respond``
    reply(response_type="ephemeral", text="...", blocks=[...])   # raises ResponseUrlError
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from slack_bolt import Respond
from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

# Two retries each: a 5xx or a dropped connection backs off 0.5 s then 1 s, each plus up to 1 s
# of random jitter (slack_sdk's own back-off); a 429 sleeps what Retry-After says, on the
# answering thread. After that the call fails, the user gets the apology and the log the event id.
RETRIES = 2
BACKOFF: RetryIntervalCalculator = BackoffRetryIntervalCalculator(backoff_factor=0.5)


class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's 5xx handler, for every 5xx: it retries only 500 and 503, but a proxy or load
    balancer between the bot and Slack (GovSlack, a corporate egress) answers 502 and 504 for the
    same passing trouble."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


def retry_handlers() -> list[RetryHandler]:
    """Fresh handlers (they keep no state between calls, but each client gets its own list)."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=RETRIES),
        AnyServerErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=BACKOFF),
        ConnectionErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=BACKOFF),
    ]


class ResponseUrlError(Exception):
    """Slack did not accept a message sent to a ``response_url``: ``status`` and ``body`` say
    how (``None`` and ``""`` when there was no URL to send to)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ResponseUrl:
    """Replies through a listener's ``response_url``, retried like the Web API client."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond

    @property
    def usable(self) -> bool:
        """Is there an http(s) URL to reply to? (Slack always sends one with a slash command.)"""
        url = self._respond.response_url
        if not isinstance(url, str):
            return False
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    def __call__(self, **message: Any) -> None:
        """Send ``message`` (``text``, ``blocks``, ``response_type``, ``replace_original``,
        ``delete_original``); raises ``ResponseUrlError`` unless Slack answers 200."""
        if not self._respond.response_url:
            raise ResponseUrlError("this request carries no response_url")
        client = WebhookClient(
            url=self._respond.response_url,
            proxy=self._respond.proxy,
            ssl=self._respond.ssl,
            retry_handlers=retry_handlers(),
        )
        response = client.send(**message)
        if response.status_code != 200:
            raise ResponseUrlError(
                f"response_url answered {response.status_code}: {response.body[:200]!r}",
                status=response.status_code,
                body=str(response.body)[:200],
            )
