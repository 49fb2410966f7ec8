"""Settings of the review dashboard (/review): logins and their cookies.

A group of the layered settings (see engine/settings.py): the dashboard reads transcripts
and queues evaluation jobs, so it extends the tasks group; the top-level
`settings.Settings` composes it.
"""

from __future__ import annotations

from tasks.settings import TaskSettings


class ReviewSettings(TaskSettings):
    # How long a login lasts, whether its cookie is sent over HTTPS only (set it when a TLS
    # proxy fronts the dashboard), and how many failed logins per username and per client
    # address lock logging in for the window.
    review_session_hours: float = 12.0
    review_secure_cookies: bool = False
    review_login_max_failures: int = 5
    review_login_window_s: float = 900.0
