"""Keeping the bot token out of every log line.

python-telegram-bot and httpx put request URLs, which contain the token, into log
records and exception texts (discord.py keeps it in headers, but a traceback could
show it). httpx is held at WARNING, and every record is redacted
when it is made, tracebacks included, whichever handler later formats it.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

_SECRETS: set[str] = set()
_installed = False


def _scrub(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "<token>")
    return text


def redact_in_logs(secret: str) -> None:
    """From now on, `secret` appears as <token> in every log record of this process."""
    global _installed
    if not secret:
        return
    _SECRETS.add(secret)
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        record.msg, record.args = _scrub(message), None
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters print exc_text when set; dropping exc_info stops any handler
            # from formatting the unscrubbed traceback itself.
            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text, record.exc_info = _scrub(text).rstrip("\n"), None
        return record

    logging.setLogRecordFactory(factory)


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO: the token is in it."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
