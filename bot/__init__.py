"""ban-bot: answers questions about the 2024 US ban on Kaspersky software from a curated knowledge set."""

__version__ = "0.1.0"
