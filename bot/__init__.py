"""ban-bot: answers questions about the 2024 US ban on Kaspersky software."""

__version__ = "0.1.0"
