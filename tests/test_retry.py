"""The retry rule: LeonardoRetry/default_retry directly, then through mocked and real sequences.

GET and DELETE are retried on 429/500/502/503/504 and on read timeouts; POST only on 429
(and on connections that never reached the server), so a retry cannot bill a generation twice.
"""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from typing import Any, List, Optional

import pytest
import responses
from responses import matchers
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse
from urllib3.util.retry import RequestHistory

from leonardo_client import Client, CreateGenerationRequest, LeonardoError
from leonardo_client._retry import (
    DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_RETRY_AFTER,
    LeonardoRetry,
    default_retry,
    parse_retry_after,
)

API_KEY = "fake-test-key-not-real"
BASE = "https://leonardo.example.test/api/rest/v1"
STATUSES = [429, 500, 502, 503, 504]


def urllib3_response(status: int = 429, retry_after: Optional[str] = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=False)


# --- LeonardoRetry / default_retry, directly ----------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("method", ["GET", "DELETE", "get"])
def test_get_and_delete_are_retried_on_every_listed_status(method, status):
    assert default_retry().is_retry(method, status) is True


@pytest.mark.parametrize("method", ["POST", "post"])
@pytest.mark.parametrize("status", STATUSES)
def test_post_is_retried_only_on_429(method, status):
    assert default_retry().is_retry(method, status) is (status == 429)
    # Not even when the server sends Retry-After with a 503 (urllib3 would retry that for GET).
    assert default_retry().is_retry(method, status, has_retry_after=True) is (status == 429)


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_other_statuses_are_never_retried(method, status):
    assert default_retry().is_retry(method, status) is False


def test_post_429_is_not_retried_when_retries_are_off():
    assert default_retry(max_retries=0).is_retry("POST", 429) is False


def test_allowed_methods_exclude_post():
    # Read errors are retried only for allowed_methods: POST must never be among them.
    allowed = default_retry().allowed_methods
    assert allowed is not None
    assert "POST" not in allowed and "PATCH" not in allowed
    assert {"GET", "DELETE"} <= set(allowed)


def test_default_policy():
    retry = default_retry()
    assert retry.total == 3
    assert retry.backoff_factor == 0.5
    assert set(retry.status_forcelist) == set(STATUSES)
    assert retry.raise_on_status is False  # the last response reaches LeonardoError with its body
    assert retry.respect_retry_after_header is True
    assert retry.max_retry_after == DEFAULT_MAX_RETRY_AFTER == 60


def with_errors(retry: LeonardoRetry, count: int) -> LeonardoRetry:
    history = tuple(RequestHistory("GET", "/x", None, 503, None) for _ in range(count))
    return retry.new(history=history)


def test_backoff_is_zero_for_the_first_retry_then_grows():
    retry = LeonardoRetry(total=20, backoff_factor=1.0)
    assert with_errors(retry, 0).get_backoff_time() == 0
    assert with_errors(retry, 1).get_backoff_time() == 0
    for errors in range(2, 6):
        ceiling = 1.0 * 2 ** (errors - 1)
        samples = [with_errors(retry, errors).get_backoff_time() for _ in range(30)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples), (errors, samples)


def test_backoff_is_jittered():
    samples = {with_errors(LeonardoRetry(total=20, backoff_factor=1.0), 4).get_backoff_time() for _ in range(30)}
    assert len(samples) > 1


def test_backoff_is_capped():
    retry = LeonardoRetry(total=50, backoff_factor=1.0)
    samples = [with_errors(retry, 20).get_backoff_time() for _ in range(30)]
    assert all(DEFAULT_MAX_BACKOFF / 2 <= s <= DEFAULT_MAX_BACKOFF for s in samples)
    small = LeonardoRetry(total=50, backoff_factor=1.0, max_backoff=2.0)
    assert all(1.0 <= with_errors(small, 10).get_backoff_time() <= 2.0 for _ in range(30))


def test_backoff_factor_zero_means_no_wait():
    assert with_errors(LeonardoRetry(total=20, backoff_factor=0), 5).get_backoff_time() == 0


def test_only_the_last_run_of_errors_counts():
    redirect = RequestHistory("GET", "/x", None, 302, "/y")
    retry = LeonardoRetry(total=20, backoff_factor=1.0, history=(
        RequestHistory("GET", "/x", None, 503, None),
        RequestHistory("GET", "/x", None, 503, None),
        RequestHistory("GET", "/x", None, 503, None),
        redirect,
        RequestHistory("GET", "/y", None, 503, None),
    ))
    assert retry.get_backoff_time() == 0


@pytest.mark.parametrize("header, expected", [("5", None), ("60", None), ("61", 61.0), ("3600", 3600.0), ("0", None)])
def test_only_a_retry_after_over_the_cap_is_reported(header, expected):
    assert default_retry().retry_after_over_cap(urllib3_response(429, header)) == expected


def test_retry_after_cap_is_configurable_and_missing_header_is_none():
    assert default_retry(max_retry_after=10).retry_after_over_cap(urllib3_response(429, "30")) == 30
    assert default_retry().retry_after_over_cap(urllib3_response(429)) is None
    assert default_retry().retry_after_over_cap(urllib3_response(429, "soon")) is None


def test_parse_retry_after_seconds():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(future) <= 31  # type: ignore[operator]
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "-5", "12:00", "Mon", "1 2 3"])
def test_parse_retry_after_garbage_is_none(value):
    assert parse_retry_after(value) is None


def test_new_and_increment_keep_our_settings():
    retry = default_retry(max_retries=5, max_retry_after=7)
    retry.max_backoff = 3.0
    copy = retry.new(total=2)
    assert isinstance(copy, LeonardoRetry)
    assert (copy.total, copy.max_retry_after, copy.max_backoff) == (2, 7, 3.0)
    after = retry.increment("GET", "/x", response=urllib3_response(503))
    assert isinstance(after, LeonardoRetry)
    assert (after.total, after.max_retry_after, after.max_backoff) == (4, 7, 3.0)
    assert after.allowed_methods == retry.allowed_methods


def test_increment_gives_up_at_once_on_a_retry_after_over_the_cap():
    retry = default_retry(max_retries=5)
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=urllib3_response(429, "61"))
    # Exactly the cap is honoured.
    assert retry.increment("GET", "/x", response=urllib3_response(429, "60")).total == 4


# --- through the client, with ordered mocks (responses never sleeps) ---------------------------


@pytest.fixture
def mocked():
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def client():
    with Client(api_key=API_KEY, base_url=BASE, backoff_factor=0) as c:
        yield c


GEN = BASE + "/generations"
BODY = {"prompt": "p"}


def add_post(mocked: responses.RequestsMock, status: int, **kwargs: Any) -> None:
    mocked.add("POST", GEN, status=status, match=[matchers.json_params_matcher(BODY)], **kwargs)


def test_get_503_503_200_returns_the_200_after_three_calls(mocked, client):
    mocked.add("GET", GEN + "/g", status=503, json={"error": "busy 1"})
    mocked.add("GET", GEN + "/g", status=503, json={"error": "busy 2"})
    mocked.add("GET", GEN + "/g", status=200, json={"generations_by_pk": {"id": "g"}})
    assert client.get_generation_by_id("g") == {"generations_by_pk": {"id": "g"}}
    assert len(mocked.calls) == 3


@pytest.mark.parametrize("status", STATUSES)
def test_delete_is_retried(mocked, client, status):
    mocked.add("DELETE", GEN + "/g", status=status, json={"error": "try again"})
    mocked.add("DELETE", GEN + "/g", status=200, json={"delete_generations_by_pk": {"id": "g"}})
    assert client.delete_generation_by_id("g") == {"delete_generations_by_pk": {"id": "g"}}
    assert len(mocked.calls) == 2


def test_post_502_is_sent_once_and_raises_with_the_body():
    client = Client(api_key=API_KEY, base_url=BASE, backoff_factor=0)
    # A 200 queued behind the 502 must never be reached.
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
        add_post(mocked, 502, json={"error": "internal error", "path": "$", "code": "unexpected"})
        add_post(mocked, 200, json={"sdGenerationJob": {"generationId": "would-bill-twice"}})
        with pytest.raises(LeonardoError) as info:
            client.create_generation(CreateGenerationRequest("p"))
        assert len(mocked.calls) == 1
    err = info.value
    assert err.status_code == 502
    assert err.message == "internal error"
    assert err.body == {"error": "internal error", "path": "$", "code": "unexpected"}


@pytest.mark.parametrize("status", [500, 503, 504])
def test_post_5xx_is_sent_once(status):
    client = Client(api_key=API_KEY, base_url=BASE, backoff_factor=0)
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
        add_post(mocked, status, json={"error": f"status {status}"}, headers={"Retry-After": "1"})
        add_post(mocked, 200, json={"sdGenerationJob": {"generationId": "would-bill-twice"}})
        with pytest.raises(LeonardoError) as info:
            client.create_generation(CreateGenerationRequest("p"))
        assert len(mocked.calls) == 1
    assert info.value.status_code == status
    assert info.value.message == f"status {status}"


def test_post_429_then_200_is_retried(mocked, client):
    add_post(mocked, 429, json={"error": "rate limited"}, headers={"Retry-After": "2"})
    add_post(mocked, 200, json={"sdGenerationJob": {"generationId": "g1"}})
    assert client.create_generation(CreateGenerationRequest("p")) == {"sdGenerationJob": {"generationId": "g1"}}
    assert len(mocked.calls) == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_retry_after_over_the_cap_fails_at_once(mocked, client, method):
    url = GEN + "/g" if method == "GET" else GEN
    mocked.add(method, url, status=429, json={"error": "slow down"}, headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(LeonardoError) as info:
        if method == "GET":
            client.get_generation_by_id("g")
        else:
            client.create_generation(CreateGenerationRequest("p"))
    assert time.monotonic() - started < 5
    assert len(mocked.calls) == 1
    err = info.value
    assert err.status_code == 429
    assert err.retry_after == 3600
    assert err.body == {"error": "slow down"}
    assert "3600s" in str(err) and "60s cap" in str(err)


def test_retry_after_http_date_over_the_cap_is_reported_in_seconds(mocked, client):
    later = email.utils.formatdate(time.time() + 7200, usegmt=True)
    mocked.add("GET", GEN + "/g", status=503, json={"error": "maintenance"}, headers={"Retry-After": later})
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    assert len(mocked.calls) == 1
    assert 7100 < info.value.retry_after < 7201  # type: ignore[operator]
    assert "GMT" not in info.value.message and "over the 60s cap" in info.value.message


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_exhausted_429s_raise_with_the_last_status_and_body(mocked, client, method):
    url = GEN + "/g" if method == "GET" else GEN
    for attempt in range(1, 5):  # the first try and 3 retries
        mocked.add(method, url, status=429, json={"error": f"slow down {attempt}"}, headers={"Retry-After": "60"})
    with pytest.raises(LeonardoError) as info:
        if method == "GET":
            client.get_generation_by_id("g")
        else:
            client.create_generation(CreateGenerationRequest("p"))
    assert len(mocked.calls) == 4
    err = info.value
    assert (err.status_code, err.message, err.body) == (429, "slow down 4", {"error": "slow down 4"})
    assert err.retry_after == 60
    assert "cap" not in str(err)  # 60 s is within the cap: it was honoured, not refused


def test_exhausted_5xx_on_get_raise_with_the_last_body(mocked, client):
    for status in (500, 502, 503, 504):
        mocked.add("GET", GEN + "/g", status=status, json={"error": f"got {status}"})
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    assert len(mocked.calls) == 4
    assert (info.value.status_code, info.value.message) == (504, "got 504")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_max_retries_zero_means_one_call(method):
    client = Client(api_key=API_KEY, base_url=BASE, max_retries=0)
    url = GEN + "/g" if method == "GET" else GEN
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
        mocked.add(method, url, status=429, json={"error": "first"})
        mocked.add(method, url, status=200, json={"never": "reached"})
        with pytest.raises(LeonardoError) as info:
            if method == "GET":
                client.get_generation_by_id("g")
            else:
                client.create_generation(CreateGenerationRequest("p"))
        assert len(mocked.calls) == 1
    assert info.value.status_code == 429


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(mocked, client, status):
    mocked.add("GET", GEN + "/g", status=status, json={"error": "no"})
    with pytest.raises(LeonardoError):
        client.get_generation_by_id("g")
    assert len(mocked.calls) == 1


# --- read timeouts and real retries, against a loopback socket server ---------------------------


class LoopbackServer:
    """A tiny HTTP server on 127.0.0.1 that counts requests.

    ``reply=None``: reads each request and never answers (slower than any short read timeout);
    otherwise sends ``reply`` (raw bytes) and closes. Bounded: accept polls every 50 ms,
    every socket is closed and the thread joined on exit.
    """

    def __init__(self, reply: Optional[bytes] = None) -> None:
        self.reply = reply
        self.requests: List[str] = []
        self._held: List[socket.socket] = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.base_url = "http://127.0.0.1:%d/v1" % self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            conn.settimeout(1.0)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            if data:
                self.requests.append(" ".join(data.split(b"\r\n", 1)[0].decode("latin-1").split()[:2]))
            if self.reply is None:
                self._held.append(conn)  # never answered: the client's read timeout fires
            else:
                try:
                    conn.sendall(self.reply)
                except OSError:
                    pass
                conn.close()


def loopback_client(server: LoopbackServer, **kwargs: Any) -> Client:
    return Client(api_key=API_KEY, base_url=server.base_url, backoff_factor=0, **kwargs)


def test_post_read_timeout_is_sent_once():
    with LoopbackServer() as server:
        client = loopback_client(server, timeout=(2, 0.15), max_retries=3)
        started = time.monotonic()
        with pytest.raises(LeonardoError) as info:
            client.create_generation(CreateGenerationRequest("p"))
        elapsed = time.monotonic() - started
        time.sleep(0.1)  # a (wrong) re-send would have reached the server by now
        client.close()
    assert server.requests == ["POST /v1/generations"]
    assert info.value.status_code is None
    assert "timed out" in info.value.message
    assert info.value.__cause__ is not None
    assert elapsed < 1.5


def test_get_read_timeout_is_retried():
    with LoopbackServer() as server:
        client = loopback_client(server, timeout=(2, 0.15), max_retries=2)
        with pytest.raises(LeonardoError) as info:
            client.get_generation_by_id("g")
        client.close()
    assert server.requests == ["GET /v1/generations/g"] * 3
    assert info.value.status_code is None
    assert info.value.__cause__ is not None


def test_real_503s_are_retried_and_the_note_counts_them():
    body = b'{"error": "busy"}'
    reply = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    with LoopbackServer(reply + b"Connection: close\r\n\r\n" + body) as server:
        client = loopback_client(server, max_retries=2)
        with pytest.raises(LeonardoError) as info:
            client.get_generation_by_id("g")
        with pytest.raises(LeonardoError) as post_info:
            client.create_generation(CreateGenerationRequest("p"))
        client.close()
    assert server.requests == ["GET /v1/generations/g"] * 3 + ["POST /v1/generations"]
    assert info.value.status_code == 503
    assert info.value.message == "busy (after 2 retries)"
    assert post_info.value.message == "busy"
