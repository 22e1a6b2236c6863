"""parse_webhook: the bearer check, the documented payload, the redaction of echoed keys."""

from __future__ import annotations

import copy
import http.client
import io
import json
from typing import Any, Dict

import pytest

from leonardo_client.webhooks import LEONARDO_WEBHOOK_IPS, REDACTED, parse_webhook

CALLBACK_KEY = "callback-key-for-tests"
API_KEY = "api-key-echoed-by-leonardo"
# The documented example (API_FACTS_MORE.md (e)), shortened to the fields a receiver reads.
PAYLOAD: Dict[str, Any] = {
    "type": "image_generation.complete",
    "object": "generation",
    "timestamp": 1699490546932,
    "api_version": "v1",
    "data": {
        "object": {
            "id": "gen-1",
            "status": "COMPLETE",
            "prompt": "An oil painting of a cat",
            "seed": "905778432",
            "apiDollarCost": "9",
            "images": [{"id": "img-1", "url": "https://cdn.leonardo.ai/users/u/generations/gen-1/cat_0.jpg"}],
            "apiKey": {"id": "k-1", "key": API_KEY, "name": "webhook with key", "webhookCallbackApiKey": CALLBACK_KEY},
        }
    },
}
BODY = json.dumps(PAYLOAD).encode()


def test_a_good_request_is_parsed_with_the_echoed_keys_redacted() -> None:
    parsed = parse_webhook(BODY, {"authorization": f"Bearer {CALLBACK_KEY}", "content-type": "application/json"}, CALLBACK_KEY)
    generation = parsed["data"]["object"]
    assert (parsed["type"], generation["id"], generation["images"][0]["id"]) == ("image_generation.complete", "gen-1", "img-1")
    assert generation["apiKey"] == {"id": "k-1", "key": REDACTED, "name": "webhook with key", "webhookCallbackApiKey": REDACTED}
    assert API_KEY not in json.dumps(parsed) and CALLBACK_KEY not in json.dumps(parsed)
    empty = broken(data={"object": {"id": "gen-1", "status": "COMPLETE", "images": []}})  # no images: documented too
    assert parse_webhook(empty, {"Authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)["data"]["object"] == {
        "id": "gen-1", "status": "COMPLETE", "images": []}


def test_only_the_keys_echoed_are_redacted_none_is_added() -> None:
    echoed = {"id": "k-1", "webhookCallbackApiKey": CALLBACK_KEY}  # without "key"
    body = json.dumps({**PAYLOAD, "data": {"object": {**PAYLOAD["data"]["object"], "apiKey": echoed}}})
    generation = parse_webhook(body, {"Authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)["data"]["object"]
    assert generation["apiKey"] == {"id": "k-1", "webhookCallbackApiKey": REDACTED}


def test_header_name_and_scheme_are_case_insensitive_and_str_bodies_work() -> None:
    assert parse_webhook(BODY.decode(), {"Authorization": f"bearer  {CALLBACK_KEY} "}, CALLBACK_KEY)["type"]
    assert parse_webhook(memoryview(BODY), {"Authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)["type"]


@pytest.mark.parametrize("body, name", [(json.loads(BODY), "dict"), (None, "NoneType")])
def test_a_body_already_parsed_or_none_is_a_type_error(body: Any, name: str) -> None:
    # A framework's parsed JSON (Flask's get_json()) was "webhook body is not JSON", a ValueError: a receiver
    # answering 400 to those hid the programming mistake behind Leonardo's retries.
    with pytest.raises(TypeError, match=f"^body must be the request's raw body \\(bytes or str\\), not {name}$"):
        parse_webhook(body, {"Authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)


@pytest.mark.parametrize(
    "headers, text",
    [
        ({}, "no Authorization header"),
        ({"authorization": "Bearer wrong-key"}, "does not carry the callback API key"),
        ({"authorization": f"Basic {CALLBACK_KEY}"}, "does not carry"),
        ({"authorization": f"Bearer {CALLBACK_KEY}x"}, "does not carry"),
        # No token, or a prefix of the key: equal to as much of the key as they hold, yet not it.
        ({"authorization": "Bearer "}, "does not carry"),
        ({"authorization": "Bearer  "}, "does not carry"),
        ({"authorization": f"Bearer {CALLBACK_KEY[:1]}"}, "does not carry"),
        ({"authorization": f"Bearer {CALLBACK_KEY[:-1]}"}, "does not carry"),
        ({"authorization": "Bearer \u00e9t\u00e9"}, "does not carry"),
        # Two (a proxy added one): the first is the one read.
        ([("authorization", "Bearer wrong-key"), ("Authorization", f"Bearer {CALLBACK_KEY}")], "does not carry"),
    ],
)
def test_a_missing_or_wrong_key_is_refused_in_one_line(headers: Any, text: str) -> None:
    with pytest.raises(ValueError, match=text) as info:
        parse_webhook(BODY, headers, CALLBACK_KEY)
    assert "\n" not in str(info.value) and CALLBACK_KEY not in str(info.value)


def test_a_token_with_a_lone_surrogate_never_matches_a_key() -> None:
    # A framework decoding with surrogateescape gives "\udcff" for a byte 0xff; encoded with "replace" it was "?".
    for token in ("s3cret\udcff", "s3cret\ud800"):
        with pytest.raises(ValueError, match="does not carry the callback API key"):
            parse_webhook(BODY, {"authorization": f"Bearer {token}"}, "s3cret?")


def test_headers_come_as_http_server_gives_them_or_as_raw_asgi_pairs_or_in_a_wsgi_environ() -> None:
    message = http.client.HTTPMessage()  # BaseHTTPRequestHandler.headers
    message["Authorization"] = f"Bearer {CALLBACK_KEY}"
    raw_asgi = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {CALLBACK_KEY}".encode())]
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(BODY), "HTTP_AUTHORIZATION": f"Bearer {CALLBACK_KEY}"}
    for headers in (message, raw_asgi, dict(raw_asgi), environ):  # environ (Django's request.META): was "no header"
        assert parse_webhook(BODY, headers, CALLBACK_KEY)["type"] == "image_generation.complete"


def test_headers_that_are_no_headers_are_a_type_error_and_an_odd_value_a_value_error() -> None:
    for headers in (None, "authorization", 5):
        with pytest.raises(TypeError, match="headers must be a mapping or"):
            parse_webhook(BODY, headers, CALLBACK_KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Authorization header is an int, not text"):
        parse_webhook(BODY, {"Authorization": 5}, CALLBACK_KEY)


def test_the_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import leonardo_client.webhooks as webhooks

    compared = []
    monkeypatch.setattr(webhooks.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or a == b)
    parse_webhook(BODY, {"authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)
    assert compared == [(CALLBACK_KEY.encode(), CALLBACK_KEY.encode())]


def broken(**changes: Any) -> bytes:
    payload = copy.deepcopy(PAYLOAD)
    payload.update(changes)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "body, text",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "is not {"),
        (broken(data={"object": "gen-1"}), "is not {"),
        (broken(data=None), "is not {"),
        (broken(type=None), "is not {"),
        (broken(data={"object": {"id": "gen-1", "status": "COMPLETE"}}), "no images list with urls"),
        (broken(data={"object": {"id": "gen-1", "status": "COMPLETE", "images": [1, "x", None]}}), "no images list"),
        (broken(data={"object": {"id": "gen-1", "status": "COMPLETE", "images": [{"id": "i"}]}}), "no images list"),
        (broken(data={"object": {"id": "gen-1", "status": "COMPLETE", "images": [{"url": "u"}, 1]}}), "no images list"),
        (broken(data={"object": {"status": "COMPLETE", "images": []}}), "no str id and status"),
        (broken(data={"object": {"id": "gen-1", "images": []}}), "no str id and status"),
        (broken(data={"object": {"id": "gen-1", "status": 1, "images": []}}), "no str id and status"),
    ],
)
def test_bad_bodies_are_one_line_value_errors(body: bytes, text: str) -> None:
    with pytest.raises(ValueError, match=text) as info:
        parse_webhook(body, {"authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)
    assert "\n" not in str(info.value)


def test_the_callers_payload_is_not_changed_and_other_event_types_pass() -> None:
    body = broken(type="image_generation.something_new")
    parsed = parse_webhook(body, {"authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY)
    assert parsed["type"] == "image_generation.something_new"
    assert parsed["data"]["object"]["apiKey"]["key"] == REDACTED  # echoed keys are redacted whatever the event
    assert API_KEY not in json.dumps(parsed) and CALLBACK_KEY not in json.dumps(parsed)
    assert PAYLOAD["data"]["object"]["apiKey"]["key"] == API_KEY


def test_an_empty_callback_key_is_a_type_error() -> None:
    for empty in ("", "  "):
        with pytest.raises(TypeError):
            parse_webhook(BODY, {"authorization": "Bearer "}, empty)


def test_a_callback_key_read_with_its_newline_still_matches() -> None:
    assert parse_webhook(BODY, {"Authorization": f"Bearer {CALLBACK_KEY}"}, CALLBACK_KEY + "\n")["object"] == "generation"


def test_a_callback_key_that_is_not_text_is_a_value_error_without_the_key() -> None:
    key = "secret-callback-key-\udcff"  # an undecodable byte of an environment variable
    with pytest.raises(ValueError) as info:  # was a UnicodeEncodeError whose repr held the key
        parse_webhook(BODY, {"Authorization": "Bearer x"}, key)
    assert "secret-callback" not in repr(info.value) + str(info.value)


def test_the_published_source_addresses() -> None:
    assert len(LEONARDO_WEBHOOK_IPS) == 6 and "35.173.108.170" in LEONARDO_WEBHOOK_IPS
