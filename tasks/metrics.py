"""Prometheus metrics of the reply path, and a small HTTP server for /healthz and /metrics.

Each process exposes its own: a worker counts the replies it made (latency of the
reply itself); an adapter counts what people waited for (latency through the queue),
and any process with a broker reports the depth of the queues.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120)

REPLY_SECONDS = Histogram(
    "stickerbot_reply_seconds", "Time a worker took to make one reply (perception to "
    "stored exchange)", ["platform"], buckets=LATENCY_BUCKETS)
ROUNDTRIP_SECONDS = Histogram(
    "stickerbot_reply_roundtrip_seconds", "Time from handing a turn to the queue to "
    "having its reply, as the adapter saw it", ["platform"], buckets=LATENCY_BUCKETS)
REPLIES = Counter("stickerbot_replies_total", "Replies made", ["platform"])
FAILURES = Counter("stickerbot_reply_failures_total", "Replies that failed",
                   ["platform", "reason"])
BATCH_TURNS = Histogram("stickerbot_batch_turns", "Turns answered together in one batch",
                        buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64))


class QueueDepthCollector(Collector):
    """Reads the length of each Celery queue from the Redis broker at scrape time."""

    def __init__(self, broker_url: str, queues: tuple[str, ...]) -> None:
        import redis

        self.client = redis.Redis.from_url(broker_url, socket_connect_timeout=2,
                                           socket_timeout=2)
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("stickerbot_queue_depth", "Tasks waiting in a queue",
                                  labels=["queue"])
        try:
            for queue in self.queues:
                gauge.add_metric([queue], float(self.client.llen(queue)))
        except Exception as error:  # a scrape must not fail because Redis is away
            log.warning("queue depth unavailable: %s", type(error).__name__)
            return
        yield gauge


_depth_registered = False


def register_queue_depth(broker_url: str, queues: tuple[str, ...]) -> None:
    global _depth_registered
    if not _depth_registered and broker_url.startswith(("redis://", "rediss://")):
        REGISTRY.register(QueueDepthCollector(broker_url, queues))
        _depth_registered = True


def metrics_text() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


HealthCheck = Callable[[], dict[str, bool]]


class HealthServer:
    """/healthz (200 when every check passes, else 503, JSON either way) and /metrics,
    on a daemon thread, for processes that have no web server of their own."""

    def __init__(self, host: str, port: int, checks: HealthCheck) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                if self.path == "/healthz":
                    status = outer.checks()
                    code = 200 if all(status.values()) else 503
                    self._send(code, json.dumps({"ok": code == 200, **status}).encode(),
                               "application/json")
                elif self.path == "/metrics":
                    body, content_type = metrics_text()
                    self._send(200, body, content_type)
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the log

        self.checks = checks
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, name="health",
                                        daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("health and metrics on http://%s:%d/healthz and /metrics",
                 self.server.server_address[0], self.port)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
