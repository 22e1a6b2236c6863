"""The retry rule: the policy object directly, then through the client with mocked sequences,
then over real sockets (FakeLeonardo) for what needs them: dropped connections, read timeouts,
Retry-After really slept, the retry count in the message, keep-alive and threads.

GET and DELETE are retried on 429/500/502/503/504, connection errors and read timeouts; POST
only on 429 (and on connections that never reached the server), so a retry cannot bill a
generation twice. Retry-After is honoured up to the 60 s cap; a longer one fails at once.
"""

from __future__ import annotations

import email.utils
import http.server
import json
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import responses
import urllib3.util.connection
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError, SSLError
from urllib3.response import HTTPResponse
from urllib3.util.retry import RequestHistory

from conftest import (
    API_KEY,
    ARGUMENTS,
    BASE,
    THREADS,
    V2_BASE,
    api_matchers,
    call_endpoint,
    endpoint_doc,
    endpoint_methods,
    endpoint_root,
    inject_slow_answer,
    new_generation,
    refused_url,
)
from leonardo_client import DEFAULT_TIMEOUT, Client, CreateGenerationRequest, LeonardoError, may_have_run
from leonardo_client._retry import (
    ClientClosed,
    DEFAULT_MAX_RETRY_AFTER,
    MAX_ERROR_BODY,
    LeonardoRetry,
    default_retry,
    parse_retry_after,
    posts_not_retried,
)
from leonardo_client.errors import MAY_HAVE_BEEN_MADE, never_sent
from leonardo_client.testing import FakeLeonardo, RecordedRequest

STATUSES = [429, 500, 502, 503, 504]
MARGIN = 1.5  # seconds of slack for a busy 2-core machine


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
@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422, 501])
def test_other_statuses_are_never_retried(method, status):
    assert default_retry().is_retry(method, status) is False
    assert default_retry().is_retry(method, status, has_retry_after=True) is False  # urllib3 would retry a 413


def test_post_429_is_not_retried_when_retries_are_off():
    assert default_retry(max_retries=0).is_retry("POST", 429) is False


def test_post_is_not_resent_after_an_error_other_than_a_connection_that_never_reached_the_server():
    # urllib3 retries its "other" errors (a TLS record broken after the request went out)
    # whatever the method: one create call could be billed up to four times.
    mid_exchange = SSLError("[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac")
    with pytest.raises(SSLError):
        default_retry().increment("POST", "/x", error=mid_exchange)
    assert default_retry().increment("GET", "/x", error=mid_exchange).total == 2
    assert default_retry().increment("POST", "/x", error=NewConnectionError(None, "refused")).total == 2


def test_inside_posts_not_retried_a_threads_posts_are_not_retried_at_all():
    # run_batch re-sends its own create calls, journaling each: one the client re-sent after a 429's
    # Retry-After could reach the server later than the journal says, and be billed again on a rerun.
    with posts_not_retried():
        assert default_retry().is_retry("POST", 429) is False
        with pytest.raises(MaxRetryError):
            default_retry().increment("POST", "/x", error=NewConnectionError(None, "refused"))
        assert default_retry().is_retry("GET", 429) is True  # other methods as ever
        with posts_not_retried():
            pass
        assert default_retry().is_retry("POST", 429) is False  # still inside the outer one
    assert default_retry().is_retry("POST", 429) is True  # and only inside


@pytest.mark.parametrize("method, status, made_nothing", [
    ("POST", 429, True), ("POST", None, True), ("GET", 429, True), ("GET", None, True), ("DELETE", 503, False),
])
def test_a_wait_ended_by_close_says_whether_a_try_may_have_done_something(method, status, made_nothing):
    # Client.close() ends a retry's wait: a POST's tries never did anything (a 429, a connection never made: the
    # only ones retried), so that call was never sent (errors.never_sent); a DELETE answered 503 may have run.
    retry, response = default_retry(), urllib3_response(status, "5") if status else None
    retry.closed.set()
    refused = None if status else NewConnectionError(None, "refused")  # type: ignore[arg-type]
    retry = retry.increment(method, "/x", response=response, error=refused)
    with pytest.raises(MaxRetryError) as caught:
        retry.sleep(response)
    closed = caught.value.reason
    assert isinstance(closed, ClientClosed) and closed.made_nothing is made_nothing
    assert (closed.status, closed.retry_after) == ((status, 5.0) if status else (None, None))


@pytest.mark.parametrize("answer", [None, 429], ids=["nothing listens", "429"])
def test_a_create_call_closed_in_its_retry_wait_was_never_sent_and_keeps_its_429(
    fake, make_fake_client, monkeypatch, answer
):
    # Every try did nothing (no connection made, or turned away by a 429): never sent; the 429 and its Retry-After kept.
    if answer:
        fake.inject(status=answer, retry_after=5, method="POST")
    base = fake.base_url if answer else refused_url() + "/api/rest/v1"
    with make_fake_client(base_url=base, max_retries=3) as client:
        # close(), from another thread, as the retry's wait starts: the wait ends at once
        monkeypatch.setattr(client.retry.closed, "wait", lambda timeout: (client.close(), True)[1])
        with pytest.raises(LeonardoError) as caught:
            client.create_generation(CreateGenerationRequest("a fox"))
    assert never_sent(caught.value) and not may_have_run(caught.value)
    assert (caught.value.status_code, caught.value.retry_after) == ((429, 5.0) if answer else (None, None))


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
    assert all(15.0 <= s <= 30.0 for s in samples)  # README: at most 30 s (the shipped cap, not its constant)
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


@pytest.mark.parametrize("header, expected", [("5", 5.0), ("60", 60.0), ("0", 0.0)])
def test_retry_after_within_the_cap_is_the_wait(header, expected):
    assert default_retry().get_retry_after(urllib3_response(429, header)) == expected
    assert default_retry().increment("GET", "/x", response=urllib3_response(429, header)).total == 2


@pytest.mark.parametrize("header, expected", [("5", None), ("60", None), ("61", 61.0), ("3600", 3600.0), ("0", None)])
def test_only_a_retry_after_over_the_cap_is_reported(header, expected):
    assert default_retry().retry_after_over_cap(urllib3_response(429, header)) == expected


def test_retry_after_cap_is_configurable_and_missing_header_is_none():
    assert default_retry(max_retry_after=10).retry_after_over_cap(urllib3_response(429, "30")) == 30
    with pytest.raises(MaxRetryError):
        default_retry(max_retry_after=10).increment("GET", "/x", response=urllib3_response(429, "30"))
    assert default_retry(max_retry_after=10).increment("GET", "/x", response=urllib3_response(429, "10")).total == 2
    assert default_retry().retry_after_over_cap(urllib3_response(429)) is None
    assert default_retry().retry_after_over_cap(urllib3_response(429, "soon")) is None


def test_parse_retry_after_seconds():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("1.5") == 1.5  # not HTTP's form, but a server may send it
    assert parse_retry_after("30, 30") == parse_retry_after("5,30") == 30.0  # two headers, joined (was None)


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after(future) <= 31  # type: ignore[operator]
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert parse_retry_after(past) == 0.0


UNUSABLE_DATES = ["Mon, 01 Jan 10000 00:00:00 GMT", "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"]


@pytest.mark.parametrize(
    "value", [None, "", "soon", "1.5.2", "-5", "12:00", "Mon", "1 2 3", "\u00b2", "\u0661\u0662", "9" * 400]
    + UNUSABLE_DATES + ["1 Jan , 0", "1 Jan , 1:2"],  # IndexError inside email.utils on Python 3.8
)
def test_parse_retry_after_garbage_is_none(value):
    # It runs inside urllib3 and LeonardoError.from_response: it must never raise ("²".isdigit() is True).
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
def mocked_in_order() -> Iterator[responses.RequestsMock]:
    """Like ``mocked``, but the answers are given in the order they were added."""
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def retrying_mock_client() -> Iterator[Client]:
    """A Client on BASE with the default retry policy, but no backoff sleeping."""
    with Client(api_key=API_KEY, base_url=BASE, backoff_factor=0) as client:
        yield client


GEN = BASE + "/generations"
BODY = {"prompt": "p"}
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def sent(method: str = "GET") -> List[Any]:
    """Matchers for what call(client, method) sends (a DELETE as a GET): the clients here keep the default timeout."""
    return api_matchers(BODY if method == "POST" else None, timeout=DEFAULT_TIMEOUT)


def add_post(mocked: responses.RequestsMock, status: int, url: str = GEN, **kwargs: Any) -> None:
    mocked.add("POST", url, status=status, match=sent("POST"), **kwargs)


def call(client: Client, method: str) -> Dict[str, Any]:
    """GET /generations/g or POST /generations."""
    if method == "GET":
        return client.get_generation_by_id("g")
    return client.create_generation(CreateGenerationRequest("p"))


def test_get_503_503_200_returns_the_200_after_three_calls(mocked_in_order, retrying_mock_client):
    mocked_in_order.add("GET", GEN + "/g", status=503, json={"error": "busy 1"}, match=sent())
    mocked_in_order.add("GET", GEN + "/g", status=503, json={"error": "busy 2"}, match=sent())
    mocked_in_order.add("GET", GEN + "/g", status=200, json={"generations_by_pk": {"id": "g"}}, match=sent())
    assert retrying_mock_client.get_generation_by_id("g") == {"generations_by_pk": {"id": "g"}}
    assert len(mocked_in_order.calls) == 3


@pytest.mark.parametrize("status", STATUSES)
def test_delete_is_retried(mocked_in_order, retrying_mock_client, status):
    mocked_in_order.add("DELETE", GEN + "/g", status=status, json={"error": "try again"}, match=sent("DELETE"))
    mocked_in_order.add("DELETE", GEN + "/g", status=200, json={"delete_generations_by_pk": {"id": "g"}}, match=sent("DELETE"))
    assert retrying_mock_client.delete_generation_by_id("g") == {"delete_generations_by_pk": {"id": "g"}}
    assert len(mocked_in_order.calls) == 2


@pytest.mark.parametrize(
    "status, answer, message",
    [
        (500, {"json": {"error": "status 500"}, "headers": {"Retry-After": "1"}}, "status 500"),
        (502, {"json": {"error": "internal error", "path": "$", "code": "unexpected"}}, "internal error"),
        (502, {"body": HTML_502, "content_type": "text/html"}, "Bad Gateway"),
        (503, {"json": {"error": "status 503"}, "headers": {"Retry-After": "1"}}, "status 503"),
        (504, {"json": {"error": "status 504"}, "headers": {"Retry-After": "1"}}, "status 504"),
    ],
    ids=["500-retry-after", "502-envelope", "502-html", "503-retry-after", "504-retry-after"],
)
def test_post_5xx_is_sent_once_and_raises_with_the_body(retrying_mock_client, status, answer, message):
    # A 200 queued behind the 5xx must never be reached: it would bill a second generation.
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
        add_post(mocked, status, **answer)
        add_post(mocked, 200, json={"sdGenerationJob": {"generationId": "would-bill-twice"}})
        with pytest.raises(LeonardoError) as info:
            retrying_mock_client.create_generation(CreateGenerationRequest("p"))
        assert len(mocked.calls) == 1
    err = info.value
    assert err.status_code == status
    assert err.message.startswith(message)
    assert err.body == answer.get("json", answer.get("body"))


def test_every_kind_of_post_is_sent_once_on_a_503(retrying_mock_client):
    lines = {name: endpoint_doc(name).groups() for name in endpoint_methods()}  # type: ignore[union-attr]
    posts = {name: template for name, (verb, template, _, _) in lines.items() if verb == "POST"}
    assert len(posts) == 9  # the 7 of v1, create_generation_v2 and upload_init_image
    for name, template in posts.items():
        url = endpoint_root(template) + template
        body = {"extension": ARGUMENTS["extension"]} if name == "upload_init_image" else ARGUMENTS["request"]
        expected = api_matchers(body, timeout=DEFAULT_TIMEOUT)
        with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
            mocked.add("POST", url, status=503, json={"error": "busy"}, match=expected)
            mocked.add("POST", url, json={"would": "bill twice"}, match=expected)
            with pytest.raises(LeonardoError) as info:
                call_endpoint(retrying_mock_client, name)
            assert len(mocked.calls) == 1, name
        assert info.value.status_code == 503


@pytest.mark.parametrize("url, create", [(GEN, "create_generation"), (V2_BASE + "/generations", "create_generation_v2")])
def test_post_429_then_200_is_retried(mocked_in_order, retrying_mock_client, url, create):
    add_post(mocked_in_order, 429, url, json={"error": "rate limited"}, headers={"Retry-After": "2"})
    add_post(mocked_in_order, 200, url, json={"generationId": "g1"})
    assert getattr(retrying_mock_client, create)(BODY) == {"generationId": "g1"}
    assert len(mocked_in_order.calls) == 2


@pytest.mark.parametrize("status, header", [(429, "\u00b2")] + [(503, date) for date in UNUSABLE_DATES])
def test_an_unusable_retry_after_ends_in_a_leonardo_error(mocked, retrying_mock_client, status, header):
    # It used to escape from inside urllib3 as ValueError or OverflowError.
    mocked.add("GET", GEN + "/g", status=status, json={"error": "busy"}, headers={"Retry-After": header}, match=sent())
    with pytest.raises(LeonardoError) as info:
        retrying_mock_client.get_generation_by_id("g")
    assert (info.value.status_code, info.value.retry_after, len(mocked.calls)) == (status, None, 4)


def test_a_retry_after_that_is_not_a_number_is_ignored(mocked_in_order, retrying_mock_client):
    mocked_in_order.add("GET", GEN + "/g", status=429, json={"error": "slow"}, headers={"Retry-After": "soon"}, match=sent())
    mocked_in_order.add("GET", GEN + "/g", json={"generations_by_pk": None}, match=sent())
    assert retrying_mock_client.get_generation_by_id("g") == {"generations_by_pk": None}
    assert retrying_mock_client.retry.parse_retry_after("soon") == 0.0  # so the backoff applies, no wait of its own


@pytest.mark.parametrize("method, header", [("GET", "3600"), ("POST", "3600"), ("POST", "61")])
def test_retry_after_over_the_cap_fails_at_once(mocked_in_order, retrying_mock_client, method, header):
    url = GEN + "/g" if method == "GET" else GEN
    mocked_in_order.add(method, url, status=429, json={"error": "slow down"}, headers={"Retry-After": header}, match=sent(method))
    started = time.monotonic()
    with pytest.raises(LeonardoError) as info:
        call(retrying_mock_client, method)
    assert time.monotonic() - started < MARGIN
    assert len(mocked_in_order.calls) == 1
    err = info.value
    assert err.status_code == 429
    assert err.retry_after == int(header)
    assert err.body == {"error": "slow down"}
    assert f"{header}s" in str(err) and "60s cap" in str(err)


@pytest.mark.parametrize(
    "method, status, retries", [("POST", 500, 3), ("POST", 503, 3), ("GET", 400, 3), ("GET", 404, 3), ("GET", 503, 0)]
)
def test_retry_after_over_the_cap_is_not_reported_on_an_answer_never_retried(mocked, method, status, retries):
    # A POST 500 read as if only the cap had stopped a retry: the create call would be sent again, and maybe billed twice.
    # With max_retries=0 nothing is retried, whatever the status.
    url = GEN + "/g" if method == "GET" else GEN
    mocked.add(method, url, status=status, json={"error": "no"}, headers={"Retry-After": "3600"}, match=sent(method))
    with Client(api_key=API_KEY, base_url=BASE, backoff_factor=0, max_retries=retries) as client:
        with pytest.raises(LeonardoError) as info:
            call(client, method)
    said = f"no; {MAY_HAVE_BEEN_MADE}" if method == "POST" else "no"  # a create call that may have run says so
    assert (info.value.message, info.value.retry_after) == (said, 3600)


def test_retry_after_http_date_over_the_cap_is_reported_in_seconds(mocked_in_order, retrying_mock_client):
    later = email.utils.formatdate(time.time() + 7200, usegmt=True)
    mocked_in_order.add("GET", GEN + "/g", status=503, json={"error": "maintenance"}, headers={"Retry-After": later}, match=sent())
    with pytest.raises(LeonardoError) as info:
        retrying_mock_client.get_generation_by_id("g")
    assert len(mocked_in_order.calls) == 1
    assert 7100 < info.value.retry_after < 7201  # type: ignore[operator]
    assert "GMT" not in info.value.message and "over the 60s cap" in info.value.message


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_exhausted_429s_raise_with_the_last_status_and_body(mocked_in_order, retrying_mock_client, method):
    url = GEN + "/g" if method == "GET" else GEN
    for attempt in range(1, 5):  # the first try and 3 retries
        answer = {"error": f"slow down {attempt}"}
        mocked_in_order.add(method, url, status=429, json=answer, headers={"Retry-After": "60"}, match=sent(method))
    with pytest.raises(LeonardoError) as info:
        call(retrying_mock_client, method)
    assert len(mocked_in_order.calls) == 4
    err = info.value
    assert (err.status_code, err.message, err.body) == (429, "slow down 4", {"error": "slow down 4"})
    assert err.retry_after == 60
    assert "cap" not in str(err)  # 60 s is within the cap: it was honoured, not refused


def test_exhausted_5xx_on_get_raise_with_the_last_body(mocked_in_order, retrying_mock_client):
    for status in (500, 502, 503, 504):
        mocked_in_order.add("GET", GEN + "/g", status=status, json={"error": f"got {status}"}, match=sent())
    with pytest.raises(LeonardoError) as info:
        retrying_mock_client.get_generation_by_id("g")
    assert len(mocked_in_order.calls) == 4
    assert (info.value.status_code, info.value.message) == (504, "got 504")


@pytest.mark.parametrize("method, status", [("GET", 429), ("POST", 429), ("GET", 503)])
def test_max_retries_zero_means_one_call(method, status):
    client = Client(api_key=API_KEY, base_url=BASE, max_retries=0)
    assert client.retry.total == 0
    url = GEN + "/g" if method == "GET" else GEN
    with responses.RequestsMock(registry=OrderedRegistry, assert_all_requests_are_fired=False) as mocked:
        mocked.add(method, url, status=status, json={"error": "first"}, match=sent(method))
        mocked.add(method, url, status=200, json={"never": "reached"}, match=sent(method))
        with pytest.raises(LeonardoError) as info:
            call(client, method)
        assert len(mocked.calls) == 1
    assert info.value.status_code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not_retried(mocked_in_order, retrying_mock_client, status):
    mocked_in_order.add("GET", GEN + "/g", status=status, json={"error": "no"}, match=sent())
    with pytest.raises(LeonardoError):
        retrying_mock_client.get_generation_by_id("g")
    assert len(mocked_in_order.calls) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_200_with_a_bad_body_is_an_answer_not_retried(mocked_in_order, retrying_mock_client, method):
    url = GEN + "/g" if method == "GET" else GEN
    mocked_in_order.add(method, url, body="<html>maintenance page</html>", content_type="text/html", match=sent(method))
    with pytest.raises(LeonardoError) as info:
        call(retrying_mock_client, method)
    assert info.value.status_code == 200
    assert len(mocked_in_order.calls) == 1


# --- over real sockets (FakeLeonardo) --------------------------------------------------------------
# Generous bounds for a busy 2-core machine; the sleeps being bounded are 1 s (Retry-After) and
# the read timeouts below.

READ_TIMEOUT = 0.4


def hits(fake: FakeLeonardo, method: str, prefix: str) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


def assert_key_hidden(err: LeonardoError, key: str) -> None:
    for text in (str(err), repr(err), err.message, str(err.body), str(err.url), str(err.args)):
        assert key not in text


@pytest.mark.parametrize("header", ["0.1", "soon"])
def test_an_unreadable_or_fractional_retry_after_still_retries_over_sockets(fake: FakeLeonardo, fake_client: Client, header: str) -> None:
    """urllib3 2.x raises InvalidHeader on such a value; LeonardoRetry reads it itself (or ignores it)."""
    generation_id = new_generation(fake_client)
    fake.inject(status=429, retry_after=header, times=1, path="/generations/*", method="GET")
    assert fake_client.get_generation_by_id(generation_id)["generations_by_pk"]["id"] == generation_id
    assert [r.method for r in fake.requests[-2:]] == ["GET", "GET"]


def test_a_retried_get_stays_on_the_same_connection(fake: FakeLeonardo, fake_client: Client) -> None:
    generation_id = new_generation(fake_client)
    fake.inject(status=503, times=2, path="/generations/*", method="GET")
    started = time.monotonic()
    result = fake_client.get_generation_by_id(generation_id)
    assert result["generations_by_pk"]["id"] == generation_id
    assert len(hits(fake, "GET", "/generations/")) == 3
    assert time.monotonic() - started < MARGIN  # backoff_factor 0.01: no real sleeping
    assert fake.connections_opened == 1


@pytest.mark.parametrize("method, drops", [("GET", 2), ("DELETE", 1)])
def test_dropped_get_and_delete_are_retried_and_succeed(
    fake: FakeLeonardo, fake_client: Client, method: str, drops: int
) -> None:
    generation_id = new_generation(fake_client)
    fake.inject(drop=True, times=drops, method=method)
    if method == "GET":
        assert fake_client.get_generation_by_id(generation_id)["generations_by_pk"]["status"] == "COMPLETE"
    else:
        assert fake_client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": {"id": generation_id}}
    assert [r.method for r in fake.requests] == ["POST"] + [method] * (drops + 1)
    assert fake.connections_opened == drops + 1  # each drop closes the connection; the retry opens a new one


def test_get_dropped_every_time_fails_after_the_retries(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    fake.inject(drop=True, times=None, method="GET")
    with make_fake_client(max_retries=2) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generations_by_user_id(fake.user_id, limit=1)
    err = caught.value
    assert err.status_code is None and err.body is None
    assert err.message.startswith("connection failed")
    # The URL sent, its query too, as an error status shows it (the query was dropped from a transport error).
    assert (err.method, err.url) == ("GET", fake.base_url + "/generations/user/" + fake.user_id + "?limit=1")
    assert len(fake.requests) == 3
    assert err.__cause__ is not None  # the transport error is chained
    assert_key_hidden(err, fake.api_key)


def test_dropped_post_is_not_resent(fake: FakeLeonardo, fake_client: Client) -> None:
    """The request reached the server before it hung up: it may have acted, so no retry."""
    fake.inject(drop=True, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(fake_client)
    assert caught.value.status_code is None
    # One readable line, not the repr of urllib3's nested exceptions.
    said = "connection failed: Remote end closed connection without response"
    assert caught.value.message == f"{said}; {MAY_HAVE_BEEN_MADE}"  # a create call: it may have run
    assert len(fake.requests) == 1
    # The next POST goes out on a fresh connection and succeeds, sent once.
    generation_id = new_generation(fake_client)
    assert fake.generation_ids() == [generation_id]
    assert len(fake.requests) == 2
    assert fake.connections_opened == 2


def test_retry_after_is_slept_for_get_and_post(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.inject(status=429, times=1, retry_after=1, method="GET")
    started = time.monotonic()
    assert fake_client.get_generations_by_user_id(fake.user_id) == {"generations": []}
    assert 0.95 <= time.monotonic() - started < 1 + MARGIN
    assert len(hits(fake, "GET", "/generations/user/")) == 2

    fake.inject(status=429, times=1, retry_after=1, path="/generations", method="POST")
    started = time.monotonic()
    generation_id = new_generation(fake_client)
    assert 0.95 <= time.monotonic() - started < 1 + MARGIN
    assert len(hits(fake, "POST", "/generations")) == 2
    assert fake.generation_ids() == [generation_id]  # the 429 created nothing, the retry one


@pytest.mark.parametrize(
    "status, last_body, message",
    [
        (503, {"error": "down for maintenance", "path": "$", "code": "unexpected"}, "down for maintenance"),
        (502, HTML_502, "Bad Gateway"),
    ],
    ids=["json-503", "html-502"],
)
def test_exhausted_retries_carry_the_last_answer_and_their_count(
    fake: FakeLeonardo, make_fake_client: Callable[..., Client], status: int, last_body: Any, message: str
) -> None:
    fake.inject(status=502, times=1, method="GET", body={"error": "bad gateway", "path": "$", "code": "unexpected"})
    fake.inject(status=status, times=None, body=last_body)
    with make_fake_client(max_retries=2) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
        err = caught.value
        assert len(fake.requests) == 3  # 502, then the last status twice
        assert err.status_code == status
        assert err.body == last_body
        assert err.message.startswith(message) and err.message.endswith(" (after 2 retries)")
        assert "\n" not in str(err)
        assert (err.method, err.url) == ("GET", fake.base_url + "/generations/some-id")

        with pytest.raises(LeonardoError) as caught:
            new_generation(client)  # a POST is not retried: no count in its message
    assert len(fake.requests) == 4
    assert caught.value.status_code == status and caught.value.message.startswith(message)
    assert "retries" not in caught.value.message


def test_retry_after_over_the_cap_is_not_reported_once_the_retries_are_spent(
    fake: FakeLeonardo, make_fake_client: Callable[..., Client]
) -> None:
    fake.inject(status=503, times=1, method="GET")
    fake.inject(status=503, times=1, method="GET", retry_after=3600)  # no retry left: the cap stopped nothing
    with make_fake_client(max_retries=1) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
    assert (caught.value.message, caught.value.retry_after) == ("Service Unavailable (after 1 retry)", 3600)
    assert len(fake.requests) == 2


def test_max_retries_zero_sends_once_and_sleeps_never(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    with make_fake_client(max_retries=0) as client:
        fake.inject(status=429, times=1, retry_after=1, method="POST")
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            new_generation(client)
        assert caught.value.status_code == 429 and caught.value.retry_after == 1
        assert time.monotonic() - started < 0.9  # no sleeping when no retry is left
        assert len(fake.requests) == 1

        fake.inject(drop=True, times=1, method="GET")
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
        assert caught.value.status_code is None
        assert len(fake.requests) == 2
    assert fake.generation_ids() == []


# -- read timeouts -------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_post_slower_than_the_read_timeout_is_sent_once(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    delay = READ_TIMEOUT + 1.2
    # The generation IS created, first (after=True): its answer then comes at `delay`, or at the fake's stop.
    inject_slow_answer(fake, delay, times=1, path="/generations", method="POST", after=True)
    with make_fake_client(timeout=(2, READ_TIMEOUT)) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            new_generation(client)
        elapsed = time.monotonic() - started
        err = caught.value
        assert err.status_code is None
        assert "timed out" in err.message
        assert err.__cause__ is not None
        assert (err.method, err.url) == ("POST", fake.base_url + "/generations")
        # Given up at the read timeout, well before the server's answer (at `delay`) came.
        assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 1.0 < delay

        # The server acted on it: the generation exists, though the client never saw its id.
        # This is why POST is never re-sent after a read timeout: a retry would bill twice.
        assert wait_for(lambda: len(fake.generation_ids()) == 1, delay + 3)
        time.sleep(0.1)
        assert len(hits(fake, "POST", "/generations")) == 1
        assert len(fake.generation_ids()) == 1


def test_get_slower_than_the_read_timeout_is_retried(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    inject_slow_answer(fake, 2.0, times=None, path="/generations/*", method="GET")
    with make_fake_client(timeout=(2, READ_TIMEOUT), max_retries=2) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("slow-id")
        elapsed = time.monotonic() - started
    err = caught.value
    assert err.status_code is None and "timed out waiting for 127.0.0.1's response" in err.message  # not "connection failed"
    assert err.__cause__ is not None
    assert len(hits(fake, "GET", "/generations/")) == 3
    # Three attempts, each cut off at the read timeout (plus tiny backoff): not 3 x 2 s.
    assert 3 * READ_TIMEOUT * 0.9 <= elapsed < 3 * READ_TIMEOUT + MARGIN


def test_get_slow_once_then_fast_succeeds(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    with make_fake_client(timeout=(2, READ_TIMEOUT)) as client:
        generation_id = new_generation(client)
        inject_slow_answer(fake, 1.5, times=1, path="/generations/*", method="GET")
        started = time.monotonic()
        assert client.get_generation_by_id(generation_id)["generations_by_pk"]["id"] == generation_id
        elapsed = time.monotonic() - started
    assert len(hits(fake, "GET", "/generations/")) == 2
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + MARGIN


# -- threads -------------------------------------------------------------------------------------


def test_retries_under_concurrency_send_each_post_once(
    fake: FakeLeonardo,
    urllib3_warnings: Callable[[], List[str]],
    run_threads: Callable[[Callable[[int], None]], List[BaseException]],
) -> None:
    """429 with Retry-After: 0 on POST and 503 on GET, hitting threads at random: all succeed,
    each successful create made exactly one generation."""
    fake.inject(status=429, retry_after=0, times=THREADS, method="POST")
    fake.inject(status=503, times=THREADS, method="GET")
    results: Dict[int, List[str]] = {}
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10), backoff_factor=0.01,
                pool_maxsize=THREADS, max_retries=THREADS) as client:  # enough even if one thread meets every fault

        def work(n: int) -> None:
            ids = []
            for call in range(3):
                gid = client.create_generation({"prompt": "t%d-%d" % (n, call), "num_images": 1})[
                    "sdGenerationJob"]["generationId"]
                assert client.get_generation_by_id(gid)["generations_by_pk"]["status"] == "COMPLETE"
                ids.append(gid)
            results[n] = ids

        errors = run_threads(work)
    assert errors == []
    assert urllib3_warnings() == []
    ids = [gid for n in sorted(results) for gid in results[n]]
    assert len(ids) == THREADS * 3 == len(set(ids))
    assert sorted(fake.generation_ids()) == sorted(ids)
    posts = sum(1 for r in fake.requests if r.method == "POST")
    gets = sum(1 for r in fake.requests if r.method == "GET")
    assert posts == THREADS * 3 + THREADS  # every 429 retried once, nothing else re-sent
    assert gets == THREADS * 3 + THREADS
    assert fake.connections_opened <= THREADS


class LongError(http.server.BaseHTTPRequestHandler):
    """A first GET answered 503 with a 64 MiB body (chunked, or of that Content-Length), what went counted in
    ``sent``; the next, 200."""

    protocol_version, chunked, sent = "HTTP/1.1", True, [0]

    def do_GET(self) -> None:
        if self.sent[0]:
            self.send_response(200)
            self.send_header("Content-Length", "20")
            self.end_headers()
            self.wfile.write(b'{"user_details": []}')
            return
        self.send_response(503)
        self.send_header(*("Transfer-Encoding", "chunked") if self.chunked else ("Content-Length", str(64 << 20)))
        self.end_headers()
        try:
            for _ in range(1024):
                self.wfile.write(b"10000\r\n%s\r\n" % (b"x" * 65536) if self.chunked else b"x" * 65536)
                self.sent[0] += 65536
            self.wfile.write(b"0\r\n\r\n" if self.chunked else b"")
        except OSError:  # the client closed it
            self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("chunked", [True, False])
def test_a_retried_answer_of_no_or_a_long_length_is_closed_not_read(chunked: bool) -> None:
    # urllib3 1.26 (1.26.0 on the floor) read a retried 503 whole before the retry, into memory: an endless chunked
    # body took 4 GiB. Found by hunt K.
    sent = [0]
    handler = type("Handler", (LongError,), {"chunked": chunked, "sent": sent})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = False  # server_close() waits for the handlers: their count is whole
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Client(api_key=API_KEY, base_url=f"http://127.0.0.1:{server.server_port}/v1", backoff_factor=0) as client:
            assert client.get_user_info() == {"user_details": []}
    finally:
        server.shutdown()
        server.server_close()
    assert 0 < sent[0] < 16 * MAX_ERROR_BODY  # what the sockets' buffers took: not 64 MiB


class SlowReader(http.server.BaseHTTPRequestHandler):
    """Reads a POST's body 16 KiB at a time, 5 ms apart (an uplink of about 3 MB/s), into ``bodies``; answers the
    first 429 with a Retry-After of 0, the next {}."""

    protocol_version, timeout = "HTTP/1.1", 5
    bodies: List[bytearray] = []

    def do_POST(self) -> None:
        length, body = int(self.headers["Content-Length"]), bytearray()
        while len(body) < length:
            time.sleep(0.005)
            piece = self.rfile.read1(min(16384, length - len(body)))
            if not piece:  # the client gave up
                break
            body += piece
        self.bodies.append(body)
        self.send_response(429 if len(self.bodies) == 1 else 200)
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_a_body_slower_to_send_than_the_connect_timeout_is_sent_whole_and_again_after_a_429(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sent as one bytes object, all of it had to go within the connect timeout (the socket's while urllib3 sends):
    # "connection failed: timed out" on a slow uplink, an S3 upload's or a data URL's. Found by hunt WU.
    def small_send_buffer(*args: Any, **kwargs: Any) -> socket.socket:  # the kernel's, autotuned, would take MBs
        sock = connect(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        return sock

    connect, bodies = urllib3.util.connection.create_connection, []
    monkeypatch.setattr(urllib3.util.connection, "create_connection", small_send_buffer)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (SlowReader,), {"bodies": bodies}))
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    request = {"imageDataUrl": "data:image/png;base64," + "A" * 1_500_000, "prompt": "p"}  # 0.5 s or more to send
    try:
        with Client(api_key=API_KEY, base_url=f"http://127.0.0.1:{server.server_port}/v1", timeout=(0.3, 5),
                    backoff_factor=0) as client:
            assert client.perform_instant_refine(request) == {}
    finally:
        server.shutdown()
        server.server_close()
    assert len(bodies) == 2 and bodies[0] == bodies[1] and json.loads(bodies[1]) == request  # rewound for the retry
