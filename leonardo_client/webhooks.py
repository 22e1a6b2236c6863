"""Check and parse the callback Leonardo POSTs to your webhook URL when a generation completes.

Leonardo authenticates the callback with one header, ``authorization: Bearer <webhook
callback API key>`` (the key you gave when you created the production API key); there is no
signature. It sends from a few fixed addresses (``LEONARDO_WEBHOOK_IPS``), which an allowlist
can check too.
"""

from __future__ import annotations

import email.message
import hmac
from typing import Any, Dict, Iterable, Mapping, Tuple, Union

from .errors import REDACTED, parse_json
from .payloads import check_text, with_article

__all__ = ["parse_webhook", "LEONARDO_WEBHOOK_IPS", "REDACTED"]

# Published in Leonardo's "Guide to the Webhook Callback Feature" (2026-01-21).
LEONARDO_WEBHOOK_IPS = (
    "35.173.108.170", "34.239.69.60", "52.73.75.186", "3.229.99.26", "44.218.0.197", "174.129.230.221"
)
# The payload echoes your API key and the callback key; neither belongs in your logs or database.
_SECRETS = ("key", "webhookCallbackApiKey")
# A mapping, an http.client.HTTPMessage (http.server's self.headers), or (name, value) pairs.
Headers = Union[Mapping[Any, Any], email.message.Message, Iterable[Tuple[Any, Any]]]
Body = Union[bytes, bytearray, memoryview, str]  # the request body as received


def _authorization(headers: Headers) -> str:
    """The Authorization header's value, whatever its capitalisation and whatever holds the headers (a WSGI
    environ, or Django's request.META, keeps it as HTTP_AUTHORIZATION)."""
    pairs = headers.items() if hasattr(headers, "items") else headers  # http.server's headers have items()
    try:  # a raw ASGI scope's headers are (bytes, bytes) pairs
        given = [value for name, value in pairs if _lower(name) in ("authorization", "http_authorization")]
    except (TypeError, ValueError):
        raise TypeError(f"headers must be a mapping or (name, value) pairs, not {type(headers).__name__}") from None
    if not given:
        raise ValueError("webhook request has no Authorization header")
    value = given[0].decode("latin-1") if isinstance(given[0], bytes) else given[0]
    if not isinstance(value, str):
        raise ValueError(f"webhook Authorization header is {with_article(type(value).__name__)}, not text")
    return value


def _lower(name: Any) -> str:
    """A header's name, in lower case; "" for a name that is not text."""
    text = name.decode("latin-1") if isinstance(name, bytes) else name
    return text.lower() if isinstance(text, str) else ""


def parse_webhook(body: Body, headers: Headers, callback_api_key: str) -> Dict[str, Any]:
    """Check a webhook request's bearer header and return its JSON payload, secrets redacted.

    Args:
        body: the request body as received.
        headers: a mapping (a WSGI environ too), http.server's ``self.headers`` or (name, value) pairs.
        callback_api_key: your webhook callback API key (surrounding spaces ignored).

    Returns:
        The payload: ``{"type": "image_generation.complete", "object": "generation", ...,
        "data": {"object": {"id", "status", "prompt", "images": [{"id", "url"}], ...,
        "apiKey": {"key": "[redacted]", "webhookCallbackApiKey": "[redacted]", ...}}}}``.

    Raises:
        ValueError: a missing or wrong ``Authorization`` header (compared in constant time), a key
            that is not text, a body that is not JSON, or a payload of an unknown shape (an
            image_generation.complete without a str ``id`` and ``status`` and ``images`` of
            objects with a str ``url``); one line each, never showing the key.
        TypeError: ``callback_api_key`` is not a non-empty str, ``headers`` holds no headers, or ``body`` is not
            bytes or str (a framework's parsed JSON).
    """
    if not isinstance(callback_api_key, str) or not callback_api_key.strip():
        raise TypeError("callback_api_key must be a non-empty str")
    scheme, _, token = _authorization(headers).strip().partition(" ")
    expected = check_text(callback_api_key, "callback_api_key").strip().encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8", "surrogatepass"), expected):
        raise ValueError("webhook Authorization header does not carry the callback API key")
    payload = _payload(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    generation = data.get("object") if isinstance(data, dict) else None
    if not isinstance(generation, dict) or not isinstance(payload.get("type"), str):
        raise ValueError('webhook payload is not {"type": ..., "data": {"object": {...}}}')
    if payload["type"] == "image_generation.complete" and not _documented(generation):
        raise ValueError("image_generation.complete payload has no str id and status, or no images list with urls")
    api_key = generation.get("apiKey")
    if isinstance(api_key, dict):
        api_key.update((name, REDACTED) for name in _SECRETS if name in api_key)
    return payload  # type: ignore[no-any-return]


def _payload(body: Body) -> Any:
    """The body's JSON; TypeError for no raw body (a framework's parsed JSON, None), ValueError for no JSON."""
    if not isinstance(body, (bytes, bytearray, memoryview, str)):
        raise TypeError(f"body must be the request's raw body (bytes or str), not {type(body).__name__}")
    try:
        return parse_json(bytes(body) if isinstance(body, memoryview) else body)
    except ValueError as exc:
        raise ValueError(f"webhook body is not JSON ({type(exc).__name__})") from None


def _documented(generation: Dict[str, Any]) -> bool:
    """Whether the generation of an image_generation.complete has what a receiver reads of it."""
    images = generation.get("images")
    if not isinstance(images, list) or not all(isinstance(i, dict) and isinstance(i.get("url"), str) for i in images):
        return False
    return isinstance(generation.get("id"), str) and isinstance(generation.get("status"), str)
