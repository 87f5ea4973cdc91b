"""``make load``: the HTTP mode under load, measured end to end on this machine.

Starts ``ban-bot serve --http`` as a real process on 127.0.0.1 against the local Slack Web API
stand-in (``mock_slack``), then C concurrent clients send N @mentions to ``/slack/events``, each
signed exactly as Slack signs it, from N different people (one person would only meet the rate
limit). A share of them (``--retries``) is delivered a second time as Slack's retry of the same
event id, which must not be answered twice. Each client waits for its answer before sending the
next mention, like people waiting for a reply (``--open``: clients wait only for the ack, as
Slack's delivery does, which overloads the bot on purpose: then a mention is either answered or
its user told to try again, never silently dropped).

Prints what was answered, told to try again, lost (no reply at all) and duplicated; ack p50/p99
(request sent to HTTP response); answer p50/p95 (request sent to the stand-in receiving the
``chat.postMessage``); answers per second; then stops the server with SIGTERM and checks that it
exited 0, logged no error, no secret, and stored no raw user id. Exits 1 when a target is missed.

Usage::

    python tests/load.py [--mentions 600] [--clients 20] [--retries 0.1] [--open] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(TESTS))

from mock_slack import BOT_USER_ID, MockWebApi, signed_headers  # noqa: E402
from mock_slack.signing import event_body  # noqa: E402
from mock_slack.web_api import Call  # noqa: E402

from bot.bench import distinct_questions  # noqa: E402
from bot.config import Settings  # noqa: E402

BAN_BOT = str(Path(sys.executable).with_name("ban-bot"))
SIGNING_SECRET = "load-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-000000000-000000000-loadtesttokenvalue"
CHANNEL = "C0LOAD"
APOLOGY = "Sorry, something went wrong"
TARGETS = {"ack_p99_ms": 300.0, "answer_p95_ms": 2000.0}
ANSWER_TIMEOUT = 30.0  # seconds a client waits for one answer before counting it lost
SETTLE = 1.0  # seconds to wait after the last answer for late duplicates


@dataclass
class LoadReport:
    mentions: int
    clients: int
    mode: str
    retries_sent: int
    answered: int
    told_to_retry: int
    apologies: int
    lost: int
    duplicated: int
    refused_acks: int
    ack_p50_ms: float
    ack_p99_ms: float
    answer_p50_ms: float
    answer_p95_ms: float
    answers_per_second: float
    seconds: float
    exit_code: int | None
    errors_logged: int
    secrets_logged: int
    raw_user_ids_stored: int
    missed: list[str] = field(default_factory=list)
    error_excerpt: str = ""  # the server's first error, with its traceback

    def render(self) -> str:
        return "\n".join(
            [
                f"load: {self.mentions} signed @mentions from {self.clients} concurrent clients "
                f"({self.mode}), {self.retries_sent} also re-delivered as Slack retries",
                f"  answered          {self.answered}",
                f"  told to try again {self.told_to_retry}",
                f"  apologies         {self.apologies}",
                f"  lost (no reply)   {self.lost}",
                f"  duplicated        {self.duplicated}",
                f"  acks refused      {self.refused_acks}",
                f"  ack p50 / p99     {self.ack_p50_ms:.1f} / {self.ack_p99_ms:.1f} ms",
                f"  answer p50 / p95  {self.answer_p50_ms:.0f} / {self.answer_p95_ms:.0f} ms",
                f"  answers/s         {self.answers_per_second:.1f} ({self.seconds:.1f} s in all)",
                f"  server exit code  {self.exit_code}, errors logged {self.errors_logged}, "
                f"secrets logged {self.secrets_logged}, "
                f"raw user ids stored {self.raw_user_ids_stored}",
                "targets: "
                + ("all met" if not self.missed else "MISSED " + "; ".join(self.missed)),
                *([f"first error logged:\n{self.error_excerpt}"] if self.error_excerpt else []),
            ]
        )


class Replies:
    """What the stand-in received, by thread: the answers and the notices."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.posts: dict[str, list[Call]] = defaultdict(list)
        self.notices: dict[str, list[Call]] = defaultdict(list)

    def on_call(self, call: Call) -> None:
        thread = call.body.get("thread_ts")
        if not thread:
            return
        with self._cond:
            if call.api == "chat.postMessage":
                self.posts[str(thread)].append(call)
            elif call.api == "chat.postEphemeral":
                self.notices[str(thread)].append(call)
            self._cond.notify_all()

    def replied(self, thread: str) -> bool:
        return bool(self.posts.get(thread) or self.notices.get(thread))

    def wait(self, threads: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.wait_for(
                lambda: all(self.replied(t) for t in threads),
                max(deadline - time.monotonic(), 0.0),
            )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) * 1000 if samples else float("nan")


def _start_server(
    settings: Settings, api: MockWebApi, data_dir: Path, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SLACK_")},
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api.url,
        "BAN_BOT_INDEX_DIR": str(settings.index_dir),
        "BAN_BOT_DATA_DIR": str(data_dir),
        "HOST": "127.0.0.1",  # loopback only
        **env,
    }
    full_env.pop("DATABASE_URL", None)
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [BAN_BOT, "serve", "--http", "--port", str(port)],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ban-bot serve exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process, port
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("ban-bot serve was not healthy within 120 s")


def run_load(
    *,
    mentions: int = 600,
    clients: int = 20,
    retries: float = 0.1,
    open_loop: bool = False,
    settings: Settings | None = None,
    env: dict[str, str] | None = None,
) -> LoadReport:
    """Run one load against a fresh ``ban-bot serve --http`` process and measure it."""
    settings = settings or Settings.from_env(dotenv=False)
    questions = distinct_questions(settings, mentions)
    questions = [questions[i % len(questions)] for i in range(mentions)]
    replies = Replies()
    acks: list[float] = []
    sent_at: dict[str, float] = {}
    refused: list[int] = []
    retried: list[str] = []
    lock = threading.Lock()
    numbers = itertools.count()
    every = round(1 / retries) if retries > 0 else 0

    with tempfile.TemporaryDirectory(prefix="ban-bot-load-") as tmp, MockWebApi() as api:
        api.on_call = replies.on_call
        log = Path(tmp) / "serve.log"
        process, port = _start_server(settings, api, Path(tmp) / "data", log, env or {})

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while True:
                with lock:
                    i = next(numbers)
                if i >= mentions:
                    break
                ts = f"1720000000.{i:06d}"
                event = {
                    "type": "app_mention",
                    "user": f"ULOAD{i:05d}",
                    "text": f"<@{BOT_USER_ID}> {questions[i]}",
                    "ts": ts,
                    "channel": CHANNEL,
                    "event_ts": ts,
                }
                body = event_body(event, event_id=f"EvLOAD{i:06d}")
                started = time.monotonic()
                status = _post(conn, body, {})
                acked = time.monotonic()
                with lock:
                    sent_at[ts] = started
                    acks.append(acked - started)
                    if status != 200:
                        refused.append(status)
                if every and i % every == 0:  # Slack's retry of the same event id
                    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
                    if _post(conn, body, retry) != 200:
                        with lock:
                            refused.append(-1)
                    with lock:
                        retried.append(ts)
                if not open_loop:
                    replies.wait([ts], ANSWER_TIMEOUT)
            conn.close()

        started = time.monotonic()
        threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        replies.wait(list(sent_at), ANSWER_TIMEOUT)
        time.sleep(SETTLE)  # anything posted twice arrives now
        process.send_signal(signal.SIGTERM)
        try:
            exit_code: int | None = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            exit_code = None
        logged = log.read_text(errors="replace")
        stored = b"".join(p.read_bytes() for p in (Path(tmp) / "data").glob("*") if p.is_file())

    answer_latencies: list[float] = []
    answered = told = apologies = lost = duplicated = 0
    last_answer = started
    for ts, sent in sent_at.items():
        posts = replies.posts.get(ts, [])
        real = [p for p in posts if not p.text.startswith(APOLOGY)]
        if real:
            answered += 1
            answer_latencies.append(real[0].at - sent)
            last_answer = max(last_answer, real[0].at)
        elif posts:
            apologies += 1
        elif replies.notices.get(ts):
            told += 1
        else:
            lost += 1
        duplicated += len(posts) > 1
    seconds = last_answer - started
    report = LoadReport(
        mentions=mentions,
        clients=clients,
        mode="clients wait for the ack only" if open_loop else "each client waits for its answer",
        retries_sent=len(retried),
        answered=answered,
        told_to_retry=told,
        apologies=apologies,
        lost=lost + (mentions - len(sent_at)),
        duplicated=duplicated,
        refused_acks=len(refused),
        ack_p50_ms=_percentile(acks, 50),
        ack_p99_ms=_percentile(acks, 99),
        answer_p50_ms=_percentile(answer_latencies, 50),
        answer_p95_ms=_percentile(answer_latencies, 95),
        answers_per_second=answered / seconds if seconds > 0 else 0.0,
        seconds=seconds,
        exit_code=exit_code,
        errors_logged=sum(
            1
            for line in logged.splitlines()
            if " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ),
        secrets_logged=sum(logged.count(s) for s in (BOT_TOKEN, SIGNING_SECRET)),
        raw_user_ids_stored=stored.count(b"ULOAD"),
    )
    report.missed = _missed(report, open_loop)
    report.error_excerpt = _first_error(logged)
    return report


def _first_error(logged: str) -> str:
    lines = logged.splitlines()
    for i, line in enumerate(lines):
        if " ERROR " in line or " CRITICAL " in line:
            return "\n".join(lines[i : i + 30])
    return ""


def _post(conn: http.client.HTTPConnection, body: str, extra: dict[str, str]) -> int:
    headers = {**signed_headers(SIGNING_SECRET, body), **extra}
    try:
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()  # reconnects on the next request
        return 0


def _missed(r: LoadReport, open_loop: bool) -> list[str]:
    missed = []
    if r.lost:
        missed.append(f"{r.lost} lost")
    if r.duplicated:
        missed.append(f"{r.duplicated} duplicated")
    if r.refused_acks:
        missed.append(f"{r.refused_acks} acks not 200")
    if r.apologies:
        missed.append(f"{r.apologies} apologies")
    if r.ack_p99_ms >= TARGETS["ack_p99_ms"]:
        missed.append(f"ack p99 {r.ack_p99_ms:.0f} ms >= {TARGETS['ack_p99_ms']:.0f} ms")
    if not open_loop:
        if r.told_to_retry:
            missed.append(f"{r.told_to_retry} told to try again")
        if r.answer_p95_ms >= TARGETS["answer_p95_ms"]:
            missed.append(
                f"answer p95 {r.answer_p95_ms:.0f} ms >= {TARGETS['answer_p95_ms']:.0f} ms"
            )
    if r.exit_code != 0:
        missed.append(f"server exit code {r.exit_code}")
    if r.errors_logged:
        missed.append(f"{r.errors_logged} errors logged")
    if r.secrets_logged:
        missed.append("a secret in the log")
    if r.raw_user_ids_stored:
        missed.append("raw user ids in the store")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=600)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--retries", type=float, default=0.1, help="share also re-sent as Slack retries"
    )
    parser.add_argument(
        "--open", action="store_true", help="clients wait only for the ack (overload)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    if not 0 < args.mentions <= 100_000 or not 0 < args.clients <= 200:
        parser.error("--mentions must be 1 to 100000 and --clients 1 to 200")
    report = run_load(
        mentions=args.mentions, clients=args.clients, retries=args.retries, open_loop=args.open
    )
    print(json.dumps(asdict(report), indent=2) if args.json else report.render())
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
