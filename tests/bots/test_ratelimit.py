from bots.ratelimit import FloodGuard, RateLimiter


def test_burst_then_refused_then_refilled():
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.allow("u", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert 0.9 < limiter.retry_after("u") <= 1.0
    assert limiter.allow("u", now=1.01)
    assert not limiter.allow("u", now=1.02)


def test_users_are_limited_separately():
    limiter = RateLimiter(per_minute=1, burst=1)
    assert limiter.allow("a", now=0.0)
    assert not limiter.allow("a", now=0.1)
    assert limiter.allow("b", now=0.1)


def test_key_table_is_bounded_under_a_flood_of_new_ids():
    limiter = RateLimiter(per_minute=10, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"user-{i}", now=float(i))
    assert len(limiter._buckets) == 100


def test_flood_guard_tells_once_per_flood_then_again_after_a_pause():
    guard = FloodGuard(per_minute=600, burst=2)
    answers = [guard.check("u") for _ in range(5)]
    assert answers[:2] == [None, None]
    assert answers[2] and "wait" in answers[2].lower()
    assert answers[3:] == ["", ""]
    guard.limiter._buckets["u"].updated -= 10  # ten seconds later the bucket has refilled
    assert guard.check("u") is None
    assert guard.check("u") is None and guard.check("u")  # a new flood gets a new notice


def test_flood_guard_memory_is_bounded():
    guard = FloodGuard(per_minute=1, burst=1)
    guard.limiter.max_keys = 50
    for i in range(500):
        guard.check(f"user-{i}")
        guard.check(f"user-{i}")
    assert len(guard.flooded) <= 50


def test_a_chat_has_its_own_budget_whoever_writes() -> None:
    from bots.ratelimit import FloodGuard

    guard = FloodGuard(per_minute=0.0, burst=3, chat_per_minute=0.0, chat_burst=4)
    said = [guard.check(f"person-{i}", "group-1") for i in range(6)]
    assert said[:4] == [None] * 4  # each person is well within their own limit...
    assert said[4] and "This chat" in said[4]  # ...but the chat has had its four
    assert said[5] == ""  # told once per flood
    assert guard.check("person-9", "group-2") is None  # other chats are unaffected
    assert guard.check("person-0") is None  # per-person budget without a chat key
