"""LLM backends behind one interface: the local model, OpenAI-compatible endpoints,
an on-disk cache of identical calls, and schema-validated structured outputs.

`LocalBackend` is imported from `engine.backends.local` (it loads torch), and
`build_backend` from `engine.backends.factory` (it reads BackendSettings)."""

from engine.backends.base import (
    BackendError,
    ChatBackend,
    ChatResult,
    Conversation,
    Message,
    Price,
    Usage,
)
from engine.backends.cache import CachedBackend, call_key
from engine.backends.openai_compat import API_KEY_ENVS, OpenAIBackend, OpenAIConfig
from engine.backends.structured import (
    Structured,
    complete_structured,
    extract_json,
    format_hint,
    parse,
)

__all__ = [
    "API_KEY_ENVS", "BackendError", "CachedBackend", "ChatBackend", "ChatResult",
    "Conversation", "Message", "OpenAIBackend", "OpenAIConfig", "Price", "Structured",
    "Usage", "call_key", "complete_structured", "extract_json", "format_hint", "parse",
]
