"""Listeners by kind, each module with a ``register(app, services)``.

Usage::

    listeners.register(app, Services(settings=settings, engine=engine, store=store))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.listeners import actions, commands, events, home

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.slack.app import Services


def register(app: App, services: Services) -> None:
    events.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    home.register(app, services)
