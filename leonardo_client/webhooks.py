"""Check and parse the callback Leonardo POSTs to your webhook URL when a generation completes.

Leonardo authenticates the callback with one header, ``authorization: Bearer <webhook
callback API key>`` (the key you gave when you created the production API key); there is no
signature. It sends from a few fixed addresses (``LEONARDO_WEBHOOK_IPS``), which an allowlist
can check too.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Dict, Mapping, Union

from .errors import REDACTED

__all__ = ["parse_webhook", "LEONARDO_WEBHOOK_IPS", "REDACTED"]

# Published in Leonardo's "Guide to the Webhook Callback Feature" (2026-01-21).
LEONARDO_WEBHOOK_IPS = (
    "35.173.108.170", "34.239.69.60", "52.73.75.186", "3.229.99.26", "44.218.0.197", "174.129.230.221"
)
# The payload echoes your API key and the callback key; neither belongs in your logs or database.
_SECRETS = ("key", "webhookCallbackApiKey")


def _authorization(headers: Mapping[str, str]) -> str:
    """The Authorization header's value, whatever its capitalisation."""
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping, not {type(headers).__name__}")
    names = (name for name in headers if isinstance(name, str) and name.lower() == "authorization")
    given: Any = next((headers[name] for name in names), None)
    if given is None:
        raise ValueError("webhook request has no Authorization header")
    given = given.decode("latin-1") if isinstance(given, bytes) else given  # raw ASGI headers are bytes
    if not isinstance(given, str):
        raise TypeError(f"the Authorization header must be a str, not {type(given).__name__}")
    return given


def parse_webhook(body: Union[bytes, str], headers: Mapping[str, str], callback_api_key: str) -> Dict[str, Any]:
    """Check a webhook request's bearer header and return its JSON payload, secrets redacted.

    Args:
        body: the request body as received.
        headers: the request headers (any capitalisation of ``Authorization``).
        callback_api_key: your webhook callback API key.

    Returns:
        The payload: ``{"type": "image_generation.complete", "object": "generation", ...,
        "data": {"object": {"id", "status", "prompt", "images": [{"id", "url"}], ...,
        "apiKey": {"key": "[redacted]", "webhookCallbackApiKey": "[redacted]", ...}}}}``.

    Raises:
        ValueError: a missing or wrong ``Authorization`` header (compared in constant time),
            a body that is not JSON, or a payload of an unknown shape; one line each.
        TypeError: ``callback_api_key`` is not a non-empty str, or ``headers`` not a mapping.
    """
    if not isinstance(callback_api_key, str) or not callback_api_key:
        raise TypeError("callback_api_key must be a non-empty str")
    scheme, _, token = _authorization(headers).strip().partition(" ")
    expected = callback_api_key.encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8", "replace"), expected):
        raise ValueError("webhook Authorization header does not carry the callback API key")
    try:
        payload = json.loads(body)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        raise ValueError(f"webhook body is not JSON ({type(exc).__name__})") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    generation = data.get("object") if isinstance(data, dict) else None
    if not isinstance(generation, dict) or not isinstance(payload.get("type"), str):
        raise ValueError('webhook payload is not {"type": ..., "data": {"object": {...}}}')
    if payload["type"] == "image_generation.complete" and not isinstance(generation.get("images"), list):
        raise ValueError("image_generation.complete payload has no images list")
    api_key = payload["data"]["object"].get("apiKey")
    for name in _SECRETS if isinstance(api_key, dict) else ():
        if name in api_key:
            api_key[name] = REDACTED
    return payload  # type: ignore[no-any-return]
