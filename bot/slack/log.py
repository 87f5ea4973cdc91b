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
    return (
        f"Dropped Slack retry #{retry_num} ({reason or 'no reason'}) of event {event_id}: "
        "already seen"
    )


def answering_retry(retry_num: str, reason: str | None, event_id: str | None) -> str:
    return (
        f"Answering Slack retry #{retry_num} ({reason or 'no reason'}) of event {event_id}: "
        "its first delivery never reached this bot"
    )


def rate_limited(where: str, user_hash: str, told: bool) -> str:
    told_text = "told to wait" if told else "already told"
    return f"Rate limit: dropped a question ({where}) from user {user_hash[:12]}, {told_text}"


def busy(where: str, pending: int) -> str:
    return f"All answering threads busy and the queue full ({pending} waiting or running): {where} told to try again"


def notice_failed(where: str) -> str:
    return f"Could not send the try-again notice ({where})"


def notice_dropped(where: str) -> str:
    return f"Notice queue full too: could not tell the user ({where}) to try again"


def shutting_down(timeout: float) -> str:
    return f"Shutting down: finishing the answers in flight (at most {timeout:.0f}s)"


def shut_down(clean: bool) -> str:
    return "Shut down cleanly" if clean else "Shut down with answers abandoned"


def reload_requested() -> str:
    return "SIGHUP: checking the index for a new build"


def dropped_repeat(event_id: str) -> str:
    return f"Dropped event {event_id}: already seen"


def reaction_failed(name: str, error: str) -> str:
    return f"Could not toggle the :{name}: reaction: {error}"


def engine_loading(index_dir: object) -> str:
    return f"Loading the answer engine from {index_dir}"


def engine_ready(seconds: float) -> str:
    return f"Answer engine ready in {seconds:.1f}s"


def engine_failed() -> str:
    return "Could not load the answer engine"


def serving_http(host: str, port: int) -> str:
    return f"Serving Slack over HTTP on http://{host}:{port} (POST /slack/events, GET /healthz)"


def serving_socket_mode() -> str:
    return "Connecting to Slack over Socket Mode"


def malformed_request(problem: str) -> str:
    return f"Refused a signed but malformed request (400): {problem}"


def no_response_url(where: str) -> str:
    return f"Cannot answer ({where}): the request has no usable response_url"


def click_without_user_or_channel(where: str) -> str:
    return f"Ignored a button click ({where}) without a user or channel id: not one Slack sends"


def feature_off(feature: str, error: str) -> str:
    return (
        f"Slack refused {feature} ({error}): this workspace or app lacks it, so the classic "
        "behaviour is used from now on"
    )


def feature_call_failed(feature: str, reason: str) -> str:
    return f"Could not use {feature} this time: {reason}"


def experts_post_failed(channel: str, error: str) -> str:
    hint = " (invite the bot there: /invite @ban-bot)" if error == "not_in_channel" else ""
    return f"Could not post in BAN_BOT_EXPERTS_CHANNEL {channel}: {error}{hint}"


def escalation_refused(reason: str, user_hash: str) -> str:
    return f"Escalation click refused ({reason}) from user {user_hash[:12]}"


def permalink_failed(reason: str) -> str:
    return f"Could not get the question's permalink ({reason}); asking the experts without it"


def click_without_vote() -> str:
    return "Ignored a feedback click whose value names no vote: not one ban-bot rendered"


def indicator_failed(kind: str, error: str) -> str:
    return f"Could not clear the working {kind}: {error}"
