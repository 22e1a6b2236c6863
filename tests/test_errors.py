"""LeonardoError: every failure of a call, whatever the body, is one exception with one-line text."""

from __future__ import annotations

import json
import pickle
import socket
from typing import Any

import pytest
import requests

from leonardo_client import Client, CreateGenerationRequest, LeonardoError

API_KEY = "fake-test-key-not-real"
BASE = "https://leonardo.example.test/api/rest/v1"
GEN_URL = BASE + "/generations/g"
POST_URL = BASE + "/generations"


@pytest.fixture
def client():
    # No retries: each mocked failure is seen exactly once (retries are tested in test_retry.py).
    with Client(api_key=API_KEY, base_url=BASE, max_retries=0) as c:
        yield c


def fail(client: Client) -> LeonardoError:
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    return info.value


def assert_one_line(err: LeonardoError) -> None:
    text = str(err)
    assert text and "\n" not in text and "\r" not in text


# --- HTTP errors and their bodies ---------------------------------------------------------------


def test_json_error_envelope(mocked, client):
    envelope = {"error": "Authentication hook unauthorized this request", "path": "$", "code": "access-denied"}
    mocked.add("GET", GEN_URL, status=401, json=envelope, headers={"x-request-id": "req-123"})
    err = fail(client)
    assert err.status_code == 401
    assert err.message == "Authentication hook unauthorized this request"
    assert err.body == envelope
    assert err.method == "GET"
    assert err.url == GEN_URL
    assert err.request_id == "req-123"
    assert err.retry_after is None
    assert str(err) == f"HTTP 401: Authentication hook unauthorized this request (GET {GEN_URL})"


def test_moderation_403_keeps_the_api_text(mocked, client):
    text = "content moderation filter: example"
    mocked.add("POST", POST_URL, status=403, json={"error": text, "path": "$", "code": "unexpected"})
    with pytest.raises(LeonardoError) as info:
        client.create_generation(CreateGenerationRequest("p"))
    assert (info.value.status_code, info.value.message, info.value.method) == (403, text, "POST")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"errors": [{"message": "first problem"}, {"message": "second"}]}, "first problem"),
        ([{"message": "bad variable", "extensions": {"path": "$", "code": "unexpected"}}], "bad variable"),
        ({"message": "from message"}, "from message"),
        ({"detail": "from detail"}, "from detail"),
    ],
)
def test_other_error_shapes(mocked, client, body, message):
    mocked.add("GET", GEN_URL, status=400, json=body)
    err = fail(client)
    assert (err.status_code, err.message, err.body) == (400, message, body)


def test_json_error_without_a_known_message_keeps_the_text(mocked, client):
    body = {"error": {"nested": True}, "code": 7}
    mocked.add("GET", GEN_URL, status=400, json=body)
    err = fail(client)
    assert err.body == body
    assert err.message == json.dumps(body)


def test_html_502(mocked, client):
    html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudfront</body>\r\n</html>"
    mocked.add("GET", GEN_URL, status=502, body=html, content_type="text/html")
    err = fail(client)
    assert err.status_code == 502
    assert err.body == html
    assert "Bad Gateway" in err.message and "HTML" in err.message
    assert "<" not in str(err)  # no markup in the one-line text
    assert_one_line(err)


@pytest.mark.parametrize("status, reason", [(500, "Internal Server Error"), (503, "Service Unavailable")])
def test_empty_error_body(mocked, client, status, reason):
    mocked.add("GET", GEN_URL, status=status, body=b"")
    err = fail(client)
    assert err.status_code == status
    assert err.body is None
    assert reason in err.message and "empty" in err.message


def test_plain_text_error_is_one_line_and_truncated(mocked, client):
    text = "something\nwent\twrong " + "x" * 400
    mocked.add("GET", GEN_URL, status=400, body=text, content_type="text/plain")
    err = fail(client)
    assert err.body == text
    assert err.message.startswith("something went wrong xxx") and err.message.endswith("...")
    assert len(err.message) == 203
    assert_one_line(err)


def test_retry_after_is_parsed_on_errors(mocked, client):
    mocked.add("GET", GEN_URL, status=429, json={"error": "slow"}, headers={"Retry-After": "30"})
    err = fail(client)
    assert (err.status_code, err.retry_after) == (429, 30.0)


@pytest.mark.parametrize("header", ["x-request-id", "X-Amzn-RequestId", "x-amz-cf-id"])
def test_request_id_headers(mocked, client, header):
    mocked.add("GET", GEN_URL, status=500, json={"error": "oops"}, headers={header: "id-42"})
    assert fail(client).request_id == "id-42"


# --- bad bodies on a success status -------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ['{"generations_by_pk": {"id": "g", "status": "PEND', "OK", "<html>ok</html>", "\x00\x01"]
)
def test_unparseable_200(mocked, client, body):
    mocked.add("GET", GEN_URL, status=200, body=body, content_type="application/json")
    err = fail(client)
    assert err.status_code == 200
    assert err.message == "response body is not valid JSON"
    assert err.body == body
    assert isinstance(err.__cause__, ValueError)
    assert_one_line(err)


@pytest.mark.parametrize("body, kind", [("[1, 2]", "list"), ('"text"', "str"), ("42", "int"), ("null", "NoneType")])
def test_200_json_that_is_not_an_object(mocked, client, body, kind):
    mocked.add("GET", GEN_URL, status=200, body=body, content_type="application/json")
    err = fail(client)
    assert err.status_code == 200
    assert err.message == f"expected a JSON object, got {kind}"
    assert err.body == json.loads(body)


# --- transport failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc, text",
    [
        (requests.ConnectionError("connection refused"), "connection failed: connection refused"),
        (requests.exceptions.ConnectTimeout("slow connect"), "timed out connecting to leonardo.example.test"),
        (requests.exceptions.ReadTimeout("slow read"), "timed out waiting for leonardo.example.test's response"),
        (requests.exceptions.ChunkedEncodingError("cut"), "connection broke while reading the response"),
        (requests.exceptions.SSLError("bad certificate"), "TLS/SSL handshake with leonardo.example.test failed: bad certificate"),
        (requests.exceptions.TooManyRedirects("loop"), "request to leonardo.example.test failed: loop"),
    ],
)
def test_transport_failures_are_leonardo_errors_with_the_cause_chained(mocked, client, exc, text):
    mocked.add("GET", GEN_URL, body=exc)
    err = fail(client)
    assert err.status_code is None
    assert err.body is None
    assert err.__cause__ is exc
    assert text in err.message
    assert (err.method, err.url) == ("GET", GEN_URL)
    assert_one_line(err)


def test_connection_refused_on_loopback():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on this port now
    client = Client(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", timeout=(1, 1), backoff_factor=0)
    with pytest.raises(LeonardoError) as info:
        client.create_generation(CreateGenerationRequest("p"))
    err = info.value
    assert err.status_code is None
    assert err.message.startswith("connection failed")
    assert isinstance(err.__cause__, requests.ConnectionError)
    assert "HTTPConnection" not in err.message and "object at 0x" not in err.message
    assert_one_line(err)


# --- the exception itself -----------------------------------------------------------------------


def test_str_is_one_line_with_status_message_and_request():
    err = LeonardoError("first\nsecond\r\n\tthird  ", status_code=400, method="POST", url="https://h/x")
    assert str(err) == "HTTP 400: first second third (POST https://h/x)"
    assert str(LeonardoError("no status")) == "no status"
    assert str(LeonardoError("m", status_code=None, method="GET", url="u")) == "m (GET u)"
    assert err.message == "first\nsecond\r\n\tthird  "  # the attribute keeps the text as given


def test_repr():
    assert repr(LeonardoError("m", status_code=404)) == "LeonardoError(status_code=404, message='m')"


def test_is_an_exception_with_args():
    err = LeonardoError("m", status_code=500)
    assert isinstance(err, Exception)
    assert err.args == ("m",)


def test_pickling_round_trips_every_attribute(mocked, client):
    mocked.add(
        "GET",
        GEN_URL,
        status=429,
        json={"error": "slow", "path": "$", "code": "unexpected"},
        headers={"x-request-id": "req-9", "Retry-After": "12"},
    )
    err = fail(client)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is LeonardoError
    attributes = ("message", "status_code", "body", "method", "url", "request_id", "retry_after")
    assert {a: getattr(copy, a) for a in attributes} == {a: getattr(err, a) for a in attributes}
    assert str(copy) == str(err)
    assert copy.request_id == "req-9" and copy.retry_after == 12.0


def test_every_failure_is_caught_by_one_except(mocked, client):
    outcomes: Any = []
    mocked.add("GET", BASE + "/generations/a", status=500, body="")
    mocked.add("GET", BASE + "/generations/b", status=200, body="nope")
    mocked.add("GET", BASE + "/generations/c", body=requests.ConnectionError("down"))
    for ident in "abc":
        try:
            client.get_generation_by_id(ident)
        except LeonardoError as err:
            outcomes.append(err.status_code)
    assert outcomes == [500, 200, None]
