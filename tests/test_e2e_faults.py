"""End to end: dropped connections, refused connections and malformed bodies all surface
as LeonardoError, on urllib3 1.26 and 2.x alike, against FakeLeonardo over real sockets.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import pytest

from leonardo_client import Client, LeonardoError
from leonardo_client.testing import FakeLeonardo

MARGIN = 1.5
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def new_generation(client: Client) -> str:
    return str(client.create_generation({"prompt": "p", "num_images": 1})["sdGenerationJob"]["generationId"])


def assert_key_hidden(err: LeonardoError, key: str) -> None:
    for text in (str(err), repr(err), err.message, str(err.body), str(err.url), str(err.args)):
        assert key not in text


# -- dropped and refused connections -----------------------------------------------------------


def test_dropped_get_is_retried_and_succeeds(fake: FakeLeonardo, client: Client) -> None:
    generation_id = new_generation(client)
    fake.inject(drop=True, times=2, method="GET")
    assert client.get_generation_by_id(generation_id)["generations_by_pk"]["status"] == "COMPLETE"
    assert [r.method for r in fake.requests] == ["POST", "GET", "GET", "GET"]
    assert fake.connections_opened == 3  # each drop closes the connection; the retry opens a new one


def test_dropped_delete_is_retried_and_succeeds(fake: FakeLeonardo, client: Client) -> None:
    generation_id = new_generation(client)
    fake.inject(drop=True, times=1, method="DELETE")
    assert client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": {"id": generation_id}}
    assert [r.method for r in fake.requests] == ["POST", "DELETE", "DELETE"]


def test_get_dropped_every_time_fails_after_the_retries(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    fake.inject(drop=True, times=None, method="GET")
    with make_client(max_retries=2) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generations_by_user_id(fake.user_id, limit=1)
    err = caught.value
    assert err.status_code is None and err.body is None
    assert err.message.startswith("connection failed")
    assert (err.method, err.url) == ("GET", fake.base_url + "/generations/user/" + fake.user_id)
    assert len(fake.requests) == 3
    assert err.__cause__ is not None  # the transport error is chained
    assert_key_hidden(err, fake.api_key)


def test_dropped_post_is_not_resent(fake: FakeLeonardo, client: Client) -> None:
    """The request reached the server before it hung up: it may have acted, so no retry."""
    fake.inject(drop=True, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    assert caught.value.status_code is None
    # One readable line, not the repr of urllib3's nested exceptions.
    assert caught.value.message == "connection failed: Remote end closed connection without response"
    assert len(fake.requests) == 1
    # The next POST goes out on a fresh connection and succeeds, sent once.
    generation_id = new_generation(client)
    assert fake.generation_ids() == [generation_id]
    assert len(fake.requests) == 2
    assert fake.connections_opened == 2


def test_refused_connection_is_a_leonardo_error(fake: FakeLeonardo) -> None:
    base_url = fake.base_url
    fake.stop()  # the port is closed now: connections are refused
    with Client(api_key=fake.api_key, base_url=base_url, timeout=(1, 1), backoff_factor=0.01, max_retries=2) as client:
        for call in (lambda: client.get_generation_by_id("x"), lambda: new_generation(client)):
            started = time.monotonic()
            with pytest.raises(LeonardoError) as caught:
                call()
            assert time.monotonic() - started < MARGIN
            err = caught.value
            assert err.status_code is None
            assert err.message.startswith("connection failed")
            assert_key_hidden(err, fake.api_key)


# -- malformed bodies on a success status --------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("this is not json", "response body is not valid JSON"),
        ('{"generations_by_pk": {"id": "ab', "response body is not valid JSON"),  # cut JSON, full length
        ([1, 2, 3], "expected a JSON object, got list"),
        ("null", "expected a JSON object, got NoneType"),
    ],
)
def test_malformed_200_body_is_a_leonardo_error(fake: FakeLeonardo, client: Client, body: Any, message: str) -> None:
    fake.inject(status=200, body=body, times=1, method="GET")
    with pytest.raises(LeonardoError) as caught:
        client.get_generation_by_id("some-id")
    err = caught.value
    assert err.status_code == 200
    assert err.message == message
    assert (err.method, err.url) == ("GET", fake.base_url + "/generations/some-id")
    assert len(fake.requests) == 1  # a 200 is an answer: not retried


def test_malformed_200_on_post_is_a_leonardo_error(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=200, body="<html>maintenance page</html>", times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    assert caught.value.status_code == 200
    assert caught.value.message == "response body is not valid JSON"
    assert caught.value.body == "<html>maintenance page</html>"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_truncated_200_body_is_a_leonardo_error(fake: FakeLeonardo, client: Client, method: str) -> None:
    """Content-Length announced, half the body sent, connection closed.

    urllib3 2.x raises while reading; 1.26 returns the short body silently and the client
    compares it with Content-Length. Both end as LeonardoError saying "truncated".
    """
    body = {"generations_by_pk": {"id": "x" * 40}, "sdGenerationJob": {"generationId": "y" * 40}}
    fake.inject(status=200, body=body, truncate=True, times=1, method=method)
    with pytest.raises(LeonardoError) as caught:
        if method == "GET":
            client.get_generation_by_id("some-id")
        else:
            new_generation(client)
    err = caught.value
    assert err.status_code in (None, 200)  # 2.x fails before the status reaches the client
    assert "truncated" in err.message
    assert err.method == method
    assert len(fake.requests) == 1
    # The connection was closed by the server; the client recovers on a new one.
    assert client.get_generations_by_user_id(fake.user_id) == {"generations": []}


def test_truncated_error_body_is_a_leonardo_error(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    fake.inject(status=502, truncate=True, times=None, method="GET")
    with make_client(max_retries=1) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
    err = caught.value
    assert err.status_code in (None, 502)
    assert "truncated" in err.message
    assert '{"error"' not in err.message  # never half a JSON document as the message
    assert len(fake.requests) == 2


# -- error statuses with unhelpful bodies --------------------------------------------------------


def test_html_502_on_get_is_retried_then_a_clear_error(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    fake.inject(status=502, body=HTML_502, times=None, method="GET")
    with make_client(max_retries=2) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
    err = caught.value
    assert err.status_code == 502
    assert "<" not in err.message  # the HTML page is not the message...
    assert err.message.startswith("Bad Gateway") and "HTML" in err.message
    assert "after 2 retries" in err.message
    assert err.body == HTML_502  # ...but it is kept for whoever wants it
    assert len(fake.requests) == 3
    assert "\n" not in str(err)


def test_html_502_on_post_is_sent_once(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=502, body=HTML_502, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    assert caught.value.status_code == 502
    assert caught.value.message.startswith("Bad Gateway")
    assert len(fake.requests) == 1
    assert fake.generation_ids() == []


def test_plain_text_error_body_is_the_message(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=403, body="Forbidden by upstream\n", times=1, method="GET")
    with pytest.raises(LeonardoError) as caught:
        client.get_generation_by_id("some-id")
    assert caught.value.status_code == 403
    assert caught.value.message == "Forbidden by upstream"
    assert len(fake.requests) == 1  # 403 is not retried


def test_graphql_style_error_envelope(fake: FakeLeonardo, client: Client) -> None:
    body = {"errors": [{"message": "Key Creation Error Occurred", "extensions": {"path": "$", "code": "unexpected"}}]}
    fake.inject(status=400, body=body, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    assert caught.value.message == "Key Creation Error Occurred"
    assert caught.value.body == body

