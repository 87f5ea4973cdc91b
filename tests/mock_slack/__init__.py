"""Local stand-ins for Slack's servers, as bolt-python's own tests use: the Web API (a stdlib
HTTP server that records every call) and the Socket Mode WebSocket. Never the bot's own code.
"""

from mock_slack.signing import sign, signed_headers
from mock_slack.socket_mode import MockSocketMode
from mock_slack.web_api import BOT_USER_ID, Call, MockWebApi

__all__ = ["BOT_USER_ID", "Call", "MockSocketMode", "MockWebApi", "sign", "signed_headers"]
