"""Without a login nothing of the dashboard answers with data: every route of the app,
enumerated from the app itself (so a new route cannot be forgotten), is tried with the
ids of real seeded rows, without a cookie and with a forged one."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.routing import Route

from review.web import SESSION_COOKIE
from storage.models import EvaluationScore, Message, ReviewMark, User
from tests.review.conftest import SECRET_WORDS, log_in, page_csrf

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/static/{name}")}


GENERATED = "0123456789abcdef0123456789abcdef.png"
NAMES = {"/static/{name}": "review.css", "/generated/{name}": GENERATED}


def real_values(dashboard, path: str) -> dict[str, str]:
    """A real row (or file) for every path parameter: a missing guard would leak it."""
    seeded = dashboard.seeded
    generated = dashboard.settings.generated_dir / GENERATED
    if not generated.exists():
        generated.parent.mkdir(parents=True, exist_ok=True)
        generated.write_bytes(dashboard.settings.stickers_dir.joinpath(
            dashboard.app.state.review.library.get("happy-sun").png_path).read_bytes())
    message = seeded.bob_user_msg if path.startswith("/media/") else seeded.alice_bot
    return {"conversation_id": str(seeded.alice_conv), "message_id": str(message),
            "user_id": str(seeded.alice_user_id), "index": "0", "run_id": "seed-run",
            "name": NAMES.get(path, "happy-sun.png")}


def routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers flattened (FastAPI >= 0.16x keeps
    them nested; iter_route_contexts walks them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into app.routes
        contexts = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    found = []
    for route in contexts:
        # A Mount or websocket has no methods: it would escape this test, so refuse it.
        assert isinstance(getattr(route, "original_route", route), APIRoute | Route) and \
            route.methods, f"unexpected route kind {route!r}"
        for method in sorted(set(route.methods) - {"HEAD"}):
            found.append((method, route.path))
    return found


def filled(path: str, values: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"add a real value for {missing} of {path} to real_values()"
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], path)


def counts(db) -> tuple[int, ...]:
    with db.session() as s:
        return tuple(s.query(model).count() for model in (User, Message, ReviewMark,
                                                          EvaluationScore))


def test_every_route_refuses_access_without_a_login(dashboard) -> None:
    client, app = dashboard.client, dashboard.app
    found = routes(app)
    assert len(found) >= 20 and PUBLIC <= set(found)
    before = counts(dashboard.db)
    for cookie in (None, "forged-token"):
        client.cookies.clear()
        if cookie:
            client.cookies.set(SESSION_COOKIE, cookie, path="/review")
        for method, path in found:
            if (method, path) in PUBLIC:
                continue
            url = "/review" + filled(path, real_values(dashboard, path))
            data = {"ids": [str(dashboard.seeded.alice_conv)], "confirm": "alice",
                    "kind": "flag", "note": "x", "csrf_token": "x"}
            response = client.request(method, url, data=data if method == "POST" else None,
                                      follow_redirects=False)
            if path.startswith("/api/"):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.json()["error"]["code"] == "not_logged_in"
            else:
                assert response.status_code == 303, (method, path, response.status_code)
                assert response.headers["location"] == "/review/login"
            assert SECRET_WORDS not in response.text and "alice" not in response.text.lower()
            assert not response.headers.get("content-disposition")
    assert counts(dashboard.db) == before  # nothing was marked, deleted or started
    assert dashboard.app.state.review.runs.jobs() == []


def test_the_public_routes_hold_no_data(dashboard) -> None:
    client = dashboard.client
    login = client.get("/review/login")
    assert login.status_code == 200 and "Log in" in login.text
    assert SECRET_WORDS not in login.text
    assert client.get("/review/static/review.css").status_code == 200
    assert client.get("/review/static/..%2Fapp.py").status_code == 404
    assert client.get("/review/static/app.py").status_code == 404


def test_every_page_works_once_logged_in(dashboard) -> None:
    """The same enumeration with a session: every GET answers (no route is broken)."""
    client = dashboard.client
    log_in(client)
    for method, path in routes(dashboard.app):
        if method == "GET":
            url = "/review" + filled(path, real_values(dashboard, path))
            response = client.get(url, follow_redirects=False)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            if response.headers["content-type"].startswith("text/html"):
                assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page_csrf(client)
