"""`stickerbot review add-operator NAME`: the password never comes from the command line
(other users see argv in ps). It is read from stdin (--password-stdin, one line), from
STICKERBOT_REVIEW_PASSWORD, or asked twice at the terminal."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TextIO

from review.auth import OperatorError, add_operator
from review.settings import ReviewSettings
from storage.db import Database

PASSWORD_ENV = "STICKERBOT_REVIEW_PASSWORD"


def read_password(password_stdin: bool, stdin: TextIO | None = None) -> str:
    if password_stdin:
        line = (stdin or sys.stdin).readline()
        return line.rstrip("\r\n")
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("The passwords differ; nothing was changed.")
    return first


def add_operator_command(settings: ReviewSettings, username: str, *, password_stdin: bool = False,
                         replace: bool = False) -> int:
    password = read_password(password_stdin)
    db = Database(settings.resolved_database_url)
    try:
        db.migrate()
        add_operator(db, username, password, replace=replace)
    except OperatorError as error:
        raise SystemExit(str(error)) from None
    finally:
        db.dispose()
    print(f"operator {username} {'updated' if replace else 'added'}; log in at "
          f"http://{settings.http_host}:{settings.http_port}/review/")
    return 0
