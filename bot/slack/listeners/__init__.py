"""Listeners by kind (``events``, ``commands``, ``actions``, ``home``, ``experts``): plain functions of the
``Services`` and what bolt passes, each module with a ``register(app, services)`` that binds
them.

Usage::

    listeners.register(app, build_services(settings, engine, store))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.slack.listeners import actions, commands, events, experts, home

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.slack.services import Services


def register(app: App, services: Services) -> None:
    events.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    home.register(app, services)
    experts.register(app, services)
