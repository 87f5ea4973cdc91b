"""``python -m bot`` is the ``ban-bot`` command."""

from bot.cli import main

main()
