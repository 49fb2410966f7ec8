"""Any OpenAI-compatible chat endpoint (vLLM, Ollama, a llama.cpp server, OpenAI itself).

It talks `POST {base_url}/chat/completions` with httpx. A batch becomes concurrent
requests, at most `concurrency` at a time. Rate limits (429), server errors (5xx),
timeouts and dropped connections are retried with exponential backoff (honouring
Retry-After); other 4xx answers are not, since asking again cannot fix them.

The API key is read from an environment variable by name, sent only in the
Authorization header, and never logged, cached or shown in `repr`.
"""

from __future__ import annotations

import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from engine.backends.base import BackendError, ChatResult, Conversation, Price, Usage

log = logging.getLogger(__name__)

API_KEY_ENVS = ("STICKERBOT_LLM_API_KEY", "OPENAI_API_KEY")
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str
    api_key_env: str = ""  # empty: the first of API_KEY_ENVS that is set
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 0.5  # first wait; doubles each retry, with jitter
    max_backoff_s: float = 20.0
    concurrency: int = 4
    price: Price = Price()


def _api_key(env_name: str) -> str | None:
    names = (env_name,) if env_name else API_KEY_ENVS
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


class OpenAIBackend:
    """Chat completions over HTTP; thread-safe (httpx.Client is)."""

    name = "openai"

    def __init__(self, config: OpenAIConfig, *, transport: httpx.BaseTransport | None = None
                 ) -> None:
        self.config = config
        self.model = config.model
        self.usage = Usage()
        headers = {"Content-Type": "application/json"}
        key = _api_key(config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(base_url=config.base_url.rstrip("/"), headers=headers,
                                    timeout=config.timeout_s, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=max(1, config.concurrency),
                                        thread_name_prefix="llm-http")

    def __repr__(self) -> str:  # no headers: they hold the key
        return f"OpenAIBackend(base_url={self.config.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def list_models(self) -> list[str]:
        """The model names the server lists (GET /models; empty when it lists none), asked
        once with a short timeout: a server that is down or refuses the key fails here,
        at start, with the reason."""
        where = f"{self.config.base_url.rstrip('/')}/models"
        try:
            response = self._client.get("/models", timeout=min(self.config.timeout_s, 10.0))
        except httpx.HTTPError as error:
            raise BackendError(f"cannot reach the LLM server at {where} "
                               f"({type(error).__name__}: {error}); check "
                               f"STICKERBOT_LLM_BASE_URL and that the server runs") from error
        if response.status_code in (401, 403):
            raise BackendError(f"{where}: HTTP {response.status_code}, the server refused the "
                               f"API key (set it in STICKERBOT_LLM_API_KEY or OPENAI_API_KEY)")
        if response.status_code == 404:
            return []  # reachable, but it does not list its models
        if response.status_code != 200:
            raise BackendError(f"{where}: HTTP {response.status_code}: {response.text[:200]}")
        try:
            return [str(item["id"]) for item in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BackendError(f"{where}: unreadable model list "
                               f"({type(error).__name__})") from error

    def complete(self, conversations: list[Conversation], *, max_tokens: int,
                 temperature: float = 0.7, seed: int = 0) -> list[ChatResult]:
        if len(conversations) == 1:
            return [self._one(conversations[0], max_tokens, temperature, seed)]
        futures = [self._pool.submit(self._one, c, max_tokens, temperature, seed)
                   for c in conversations]
        return [f.result() for f in futures]

    def _one(self, conversation: Conversation, max_tokens: int, temperature: float,
             seed: int) -> ChatResult:
        body = {"model": self.model, "messages": conversation, "max_tokens": max_tokens,
                "temperature": temperature, "seed": seed}
        rng = random.Random(seed)  # jitter, reproducible
        last_error = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                self.usage.count(retries=1)
            started = time.perf_counter()
            wait: float | None = None
            try:
                response = self._client.post("/chat/completions", json=body)
            except (httpx.TimeoutException, httpx.TransportError) as error:
                last_error = f"{type(error).__name__}"
            else:
                if response.status_code == 200:
                    try:
                        return self._result(response.json(), time.perf_counter() - started)
                    except (ValueError, KeyError, IndexError, TypeError) as error:
                        last_error = f"unreadable answer ({type(error).__name__})"
                elif response.status_code in _RETRY_STATUS:
                    last_error = f"HTTP {response.status_code}"
                    wait = _retry_after(response)
                else:
                    self.usage.count(failures=1)
                    raise BackendError(f"{self.config.base_url}: HTTP {response.status_code}: "
                                       f"{response.text[:200]}")
            if attempt == self.config.max_retries:
                break
            if wait is None:
                wait = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** attempt)
                wait *= 0.5 + rng.random()
            log.info("LLM call failed (%s); retry %d in %.2f s", last_error, attempt + 1, wait)
            time.sleep(wait)
        self.usage.count(failures=1)
        raise BackendError(f"{self.config.base_url}: gave up after "
                           f"{self.config.max_retries + 1} tries ({last_error})")

    def _result(self, data: dict, seconds: float) -> ChatResult:
        choice = data["choices"][0]
        text = choice["message"]["content"] or ""
        usage = data.get("usage") or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        result = ChatResult(text=text.strip(), prompt_tokens=prompt, completion_tokens=completion,
                            cost_usd=self.config.price.cost(prompt, completion),
                            backend=self.name, model=str(data.get("model") or self.model),
                            seconds=seconds, finish_reason=str(choice.get("finish_reason")
                                                               or "stop"))
        self.usage.add(result)
        return result


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return min(60.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
