"""Odd values in the dashboard's query strings, paths and forms get a clear 400 (or 404
for an id that names nothing), never a 500: dates past the calendar, digits int() does
not read ("²"), ids past the database's integer range (issue 21)."""

from __future__ import annotations

import pytest

from tests.review.conftest import log_in, page_csrf

HUGE = "99999999999999999999999"


@pytest.mark.parametrize("url", [
    "/review/?until=9999-12-31",
    "/review/?since=2024-02-30",
    "/review/?before=%C2%B2",
    "/review/?after=" + HUGE,
    "/review/?judge_min=nan",
    "/review/?judge_max=1e999",
    "/review/?has_sticker=maybe",
    "/review/api/conversations?until=9999-12-31",
    "/review/api/conversations?before=%C2%B2",
    "/review/metrics?days=%C2%B2",
    "/review/api/metrics?days=" + HUGE,
    "/review/conversations/" + HUGE,
    "/review/conversations/%C2%B2",
    "/review/media/" + HUGE + "/0",
    "/review/media/1/" + HUGE,
    "/review/users/" + HUGE + "/delete",
])
def test_odd_query_and_path_values_are_a_400(dashboard, url) -> None:
    client = dashboard.client
    log_in(client)
    response = client.get(url, follow_redirects=False)
    assert response.status_code in (400, 404), (url, response.status_code)
    if "/api/" in url:
        assert response.json()["error"]["message"]


def test_a_good_filter_still_works(dashboard) -> None:
    client = dashboard.client
    log_in(client)
    response = client.get("/review/api/conversations", params={
        "until": "9999-12-30", "since": "2000-01-01", "judge_min": "1", "has_sticker": "yes"})
    assert response.status_code == 200, response.text
    assert client.get("/review/?until=&since=&judge_min=").status_code == 200


@pytest.mark.parametrize("path, data", [
    ("/review/export", {"ids": ["²"]}),
    ("/review/export", {"ids": [HUGE]}),
    ("/review/messages/" + HUGE + "/mark", {"kind": "flag"}),
    ("/review/users/" + HUGE + "/delete", {"confirm": "x"}),
    ("/review/evaluations", {"since": "9999-12-31", "until": "9999-12-31"}),
    ("/review/evaluations", {"judge_samples": HUGE}),
])
def test_odd_form_values_are_a_400(dashboard, path, data) -> None:
    client = dashboard.client
    log_in(client)
    response = client.post(path, data={**data, "csrf_token": page_csrf(client)},
                           follow_redirects=False)
    assert response.status_code in (400, 404), (path, response.status_code, response.text)
    assert dashboard.app.state.review.runs.jobs() == []


def test_an_odd_json_id_is_a_400(dashboard) -> None:
    client = dashboard.client
    log_in(client)
    response = client.post(f"/review/api/messages/{HUGE}/marks", json={"kind": "flag"},
                           headers={"X-CSRF-Token": page_csrf(client)})
    assert response.status_code in (400, 404)
    assert response.json()["error"]["message"]
