"""Who is writing in the web chat: an identity the server issues and signs.

The page gets a random user id in an HttpOnly, SameSite=Lax cookie on first load; scripts
get one from `POST /api/chat/session` and send it as `Authorization: Bearer <token>`.
Both carry "<user id>.<HMAC-SHA256 of it>", so nobody can claim another person's id.
Writes must also come from the page's own origin: a form or script on another site is
refused (the Origin check), and a url-encoded form is not accepted at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from bots.settings import BotSettings

log = logging.getLogger(__name__)

COOKIE = "stickerbot_chat"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
_USER_PREFIX = "web-"


class IdentityError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Identities:
    """Issues and checks signed web chat identities."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: BotSettings) -> Identities:
        if settings.web_secret is not None:
            return cls(settings.web_secret.get_secret_value().encode("utf-8"))
        log.warning("STICKERBOT_WEB_SECRET is not set: web chat identities are signed with "
                    "a random key and will not survive a restart of this process")
        return cls(secrets.token_bytes(32))

    def _signature(self, user: str) -> str:
        digest = hmac.new(self._secret, f"webchat:{user}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token(self, user: str) -> str:
        return f"{user}.{self._signature(user)}"

    def issue(self) -> tuple[str, str]:
        """A new (user id, token)."""
        user = _USER_PREFIX + secrets.token_hex(8)
        return user, self.token(user)

    def user_of(self, token: str | None) -> str | None:
        """The user id a token was issued for; None when it is missing or forged."""
        if not token or len(token) > 200:
            return None
        user, _, signature = token.rpartition(".")
        if not user or not hmac.compare_digest(signature.encode(),
                                               self._signature(user).encode()):
            return None
        return user

    def authenticate(self, request: Request) -> str:
        """The request's user: from a bearer token, else the page's cookie."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            user = self.user_of(token.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise IdentityError(401, "bad_token", "That bearer token is not valid: get "
                                    "a new one from POST /api/chat/session.")
            return user
        user = self.user_of(request.cookies.get(COOKIE))
        if user is None:
            raise IdentityError(401, "no_identity", "Reload the chat page to start a "
                                "session (scripts: POST /api/chat/session for a token).")
        return user

    def set_cookie(self, request: Request, response: Response, user: str) -> None:
        # Lax, not Strict: a link to the chat from elsewhere still finds the person's
        # cookie (Strict would start a new identity), while posts from other sites
        # carry none.
        response.set_cookie(COOKIE, self.token(user), max_age=COOKIE_MAX_AGE_S,
                            httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")


def check_same_origin(request: Request) -> None:
    """Refuse a write a page of another site makes: browsers send Origin (and
    Sec-Fetch-Site) with every cross-origin POST. Scripts send neither and are judged by
    their token alone."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
        raise IdentityError(403, "cross_origin", "Requests from other sites are refused.")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise IdentityError(403, "cross_origin", "Requests from other sites are refused.")
