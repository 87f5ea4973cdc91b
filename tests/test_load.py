"""A small ``make load`` inside the suite: 60 signed mentions from 6 concurrent clients to a real
``ban-bot serve --http`` process, a tenth of them re-delivered as Slack retries: every mention
answered once, none lost or duplicated, a clean SIGTERM exit, no error or secret in the log and
no raw user id in the store. The full 600 x 20 run and its latency targets are ``make load``."""

from __future__ import annotations

from load import run_load

from bot.config import Settings


def test_sixty_mentions_from_six_clients_are_each_answered_once(real_settings: Settings) -> None:
    report = run_load(mentions=60, clients=6, retries=0.1, settings=real_settings)
    print(report.render())
    assert report.answered == 60 and report.retries_sent == 6
    assert (report.lost, report.duplicated, report.told_to_retry, report.apologies) == (0, 0, 0, 0)
    assert report.refused_acks == 0 and report.exit_code == 0
    assert (report.errors_logged, report.secrets_logged, report.raw_user_ids_stored) == (0, 0, 0)


def test_overload_is_answered_or_told_to_try_again_never_dropped(real_settings: Settings) -> None:
    # One answering thread, a queue of two, and clients that wait only for the ack.
    report = run_load(
        mentions=40,
        clients=8,
        retries=0,
        open_loop=True,
        settings=real_settings,
        env={"BAN_BOT_WORKERS": "1", "BAN_BOT_QUEUE_SIZE": "2"},
    )
    print(report.render())
    assert report.told_to_retry > 0 and report.answered > 0
    assert report.answered + report.told_to_retry == 40
    assert (report.lost, report.duplicated, report.apologies, report.errors_logged) == (0, 0, 0, 0)
