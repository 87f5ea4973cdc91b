"""Log messages of the Slack surface, in one place. (Secrets are scrubbed by ``bot.logs``.)

Usage::

    logger.exception(log.error_answering("mention", error_id))
"""

from __future__ import annotations


def error_answering(where: str, error_id: str) -> str:
    return f"Could not answer ({where}); the user was shown error id {error_id}"


def error_replying(where: str, error_id: str) -> str:
    return f"Could not even send the apology ({where}, error id {error_id})"


def dropped_retry(retry_num: str, reason: str | None, event_id: str | None) -> str:
    return f"Dropped Slack retry #{retry_num} ({reason or 'no reason'}) of event {event_id}"


def dropped_repeat(event_id: str) -> str:
    return f"Dropped event {event_id}: already seen"


def reaction_failed(name: str, error: str) -> str:
    return f"Could not toggle the :{name}: reaction: {error}"


def engine_loading(index_dir: object) -> str:
    return f"Loading the answer engine from {index_dir}"


def engine_ready(seconds: float) -> str:
    return f"Answer engine ready in {seconds:.1f}s"


def engine_failed() -> str:
    return "Could not load the answer engine; /healthz stays 503"


def serving_http(host: str, port: int) -> str:
    return f"Serving Slack over HTTP on http://{host}:{port} (POST /slack/events, GET /healthz)"


def serving_socket_mode() -> str:
    return "Connecting to Slack over Socket Mode"
