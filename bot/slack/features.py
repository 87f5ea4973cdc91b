"""Slack features a workspace (or the app's configuration) may not have: the agent surfaces'
suggested prompts and loading status, and Block Kit's feedback element. Each is tried where it
fits; the first refusal that says the feature is missing turns it off for this process, logged
once, and the bot carries on the classic way (no prompts, the 👀 reaction, 👍/👎 buttons).

Usage::

    if services.features.available(STATUS):
        try:
            client.assistant_threads_setStatus(channel_id=c, thread_ts=t, status="...")
        except Exception as e:
            services.features.refused(STATUS, e, logger)   # logs; True if now off
"""

from __future__ import annotations

import logging
import threading

from slack_sdk.errors import SlackApiError

from bot.slack import log
from bot.slack.retries import ResponseUrlError

SUGGESTED_PROMPTS = "assistant.threads.setSuggestedPrompts"
STATUS = "assistant.threads.setStatus"
FEEDBACK_ELEMENT = "feedback_buttons"

# Refusals of one call (this thread, this channel, Slack busy), which say nothing about
# whether the workspace has the feature: the next call tries again.
_ONE_CALL_ERRORS = frozenset(
    {
        "channel_not_found",
        "invalid_thread_ts",
        "message_not_found",
        "thread_not_found",
        "not_in_channel",
        "is_archived",
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)


def slack_error(error: Exception) -> str | None:
    """The error code Slack answered with (``ok: false`` or a ``response_url`` refusal), or
    ``None`` when the call failed otherwise (a connection, a timeout, a 5xx past the retries)."""
    if isinstance(error, SlackApiError):
        if getattr(error.response, "status_code", 200) >= 500:
            return None
        code = error.response.get("error")
        return code if isinstance(code, str) else None
    if isinstance(error, ResponseUrlError) and error.status is not None and error.status < 500:
        return error.body.strip()[:100] or None
    return None


class OptionalFeatures:
    """Which optional Slack features still look available in this process."""

    def __init__(self) -> None:
        self._off: dict[str, str] = {}
        self._lock = threading.Lock()

    def available(self, feature: str) -> bool:
        return feature not in self._off

    def refused(self, feature: str, error: Exception, logger: logging.Logger) -> bool:
        """Judge a failed call of ``feature``: True (and the feature off from now on, logged
        once) when Slack's answer says the workspace lacks it; otherwise the one failure is
        logged and False returned."""
        code = slack_error(error)
        if feature == FEEDBACK_ELEMENT:
            missing = code is not None and "invalid_blocks" in code
        else:
            missing = code is not None and code not in _ONE_CALL_ERRORS
        if not missing:
            logger.warning(log.feature_call_failed(feature, code or type(error).__name__))
            return False
        with self._lock:
            first = feature not in self._off
            self._off.setdefault(feature, code or "")
        if first:
            logger.info(log.feature_off(feature, code or ""))
        return True
