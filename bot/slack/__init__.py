"""The Slack surface: app factory (``app``), listeners by kind (``listeners``), Block Kit
builders (``blocks``) and serving over Socket Mode or HTTP (``serve``).

Kept free of imports so that ``bot.slack.blocks`` (used by the local chat) stays light.
"""
