"""/healthz and /metrics of processes without a web page, and the queue depth gauge."""

from __future__ import annotations

import httpx
import redis
from prometheus_client import CollectorRegistry, generate_latest

from tasks.metrics import REPLIES, REPLY_SECONDS, HealthServer, QueueDepthCollector


def test_healthz_reports_each_check_and_fails_when_one_does() -> None:
    state = {"models_loaded": False, "broker": True}
    server = HealthServer("127.0.0.1", 0, lambda: dict(state)).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        loading = httpx.get(f"{base}/healthz")
        assert loading.status_code == 503
        assert loading.json() == {"ok": False, "models_loaded": False, "broker": True}
        state["models_loaded"] = True
        assert httpx.get(f"{base}/healthz").json()["ok"] is True
        REPLIES.labels("test").inc()
        REPLY_SECONDS.labels("test").observe(0.3)
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert 'stickerbot_replies_total{platform="test"}' in metrics.text
        assert "stickerbot_reply_seconds_bucket" in metrics.text
        assert httpx.get(f"{base}/nothing").status_code == 404
    finally:
        server.stop()


def test_queue_depth_counts_waiting_tasks(redis_url: str) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url)
    client.delete("gpu", "cpu")
    client.lpush("gpu", "a", "b", "c")
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(url, ("gpu", "cpu")))
    text = generate_latest(registry).decode()
    assert 'stickerbot_queue_depth{queue="gpu"} 3.0' in text
    assert 'stickerbot_queue_depth{queue="cpu"} 0.0' in text
    client.delete("gpu")


def test_queue_depth_is_left_out_while_redis_is_away() -> None:
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector("redis://127.0.0.1:9/0", ("gpu",)))
    assert "stickerbot_queue_depth{" not in generate_latest(registry).decode()
