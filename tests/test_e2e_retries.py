"""End to end: the retry rule with real timing, and keep-alive, against FakeLeonardo.

GET and DELETE are retried on 429/5xx, connection errors and read timeouts; POST (which
spends credits) only on 429 and connections that never reached the server. Retry-After is
honoured up to the 60 s cap; a longer one fails at once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List

import pytest

from leonardo_client import Client, LeonardoError
from leonardo_client.testing import FakeLeonardo, RecordedRequest

# Generous bounds for a busy 2-core machine; the sleeps being bounded are 1 s (Retry-After)
# and the read timeouts below.
MARGIN = 1.5
READ_TIMEOUT = 0.4


def hits(fake: FakeLeonardo, method: str, prefix: str) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


def new_generation(client: Client) -> str:
    return str(client.create_generation({"prompt": "p", "num_images": 1})["sdGenerationJob"]["generationId"])


# -- keep-alive -----------------------------------------------------------------------------


def test_fifty_calls_use_one_connection(fake: FakeLeonardo, client: Client) -> None:
    generation_id = new_generation(client)
    for n in range(48):
        if n % 4 == 0:
            client.get_generations_by_user_id(fake.user_id, limit=2)
        elif n % 4 == 1:
            client.get_texture_generations_by_model_id("asset", limit=1, offset=0)
        elif n % 4 == 2:
            with pytest.raises(LeonardoError):  # an error answer keeps the connection too
                client.create_generation({"prompt": "x", "bogusKey": 1})
        else:
            assert client.get_generation_by_id(generation_id)["generations_by_pk"]["status"] == "COMPLETE"
    client.delete_generation_by_id(generation_id)
    assert len(fake.requests) == 50
    assert fake.connections_opened == 1


def test_a_retried_get_stays_on_the_same_connection(fake: FakeLeonardo, client: Client) -> None:
    generation_id = new_generation(client)
    fake.inject(status=503, times=2, method="GET")
    client.get_generation_by_id(generation_id)
    assert fake.connections_opened == 1


# -- GET and DELETE: retried on 429 / 5xx -------------------------------------------------------


def test_get_503_503_200_succeeds(fake: FakeLeonardo, client: Client) -> None:
    generation_id = new_generation(client)
    fake.inject(status=503, times=2, path="/generations/*", method="GET")
    started = time.monotonic()
    result = client.get_generation_by_id(generation_id)
    assert result["generations_by_pk"]["id"] == generation_id
    assert len(hits(fake, "GET", "/generations/")) == 3
    assert time.monotonic() - started < MARGIN  # backoff_factor 0.01: no real sleeping


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_delete_is_retried_on_each_retryable_status(fake: FakeLeonardo, client: Client, status: int) -> None:
    generation_id = new_generation(client)
    fake.inject(status=status, times=1, method="DELETE")
    assert client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": {"id": generation_id}}
    assert len(hits(fake, "DELETE", "/generations/")) == 2


def test_get_429_retry_after_is_honoured(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=429, times=1, retry_after=1, method="GET")
    started = time.monotonic()
    assert client.get_generations_by_user_id(fake.user_id) == {"generations": []}
    elapsed = time.monotonic() - started
    assert len(hits(fake, "GET", "/generations/user/")) == 2
    assert 0.95 <= elapsed < 1 + MARGIN


def test_retry_after_above_the_cap_fails_at_once(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=429, times=1, retry_after=3600, method="GET")
    started = time.monotonic()
    with pytest.raises(LeonardoError) as caught:
        client.get_generation_by_id("some-id")
    elapsed = time.monotonic() - started
    err = caught.value
    assert err.status_code == 429
    assert err.retry_after == 3600
    assert "3600" in err.message and "cap" in err.message
    assert err.body["code"] == "unexpected"
    assert len(fake.requests) == 1
    assert elapsed < MARGIN


def test_retry_after_above_the_cap_on_post_fails_at_once(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=429, times=1, retry_after=61, method="POST")
    started = time.monotonic()
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    assert time.monotonic() - started < MARGIN
    assert caught.value.status_code == 429 and caught.value.retry_after == 61
    assert len(fake.requests) == 1 and fake.generation_ids() == []


def test_exhausted_retries_carry_the_last_status_and_body(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    fake.inject(status=502, times=1, method="GET", body={"error": "bad gateway", "path": "$", "code": "unexpected"})
    last_body = {"error": "down for maintenance", "path": "$", "code": "unexpected"}
    fake.inject(status=503, times=None, method="GET", body=last_body)
    with make_client(max_retries=2) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
    err = caught.value
    assert len(fake.requests) == 3  # 502, then 503, 503
    assert err.status_code == 503
    assert err.body == last_body
    assert err.message.startswith("down for maintenance")
    assert "after 2 retries" in err.message
    assert (err.method, err.url) == ("GET", fake.base_url + "/generations/some-id")


def test_max_retries_zero_sends_once(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    with make_client(max_retries=0) as client:
        fake.inject(status=503, times=1, method="GET")
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
        assert caught.value.status_code == 503
        assert len(fake.requests) == 1

        fake.inject(status=429, times=1, retry_after=1, method="POST")
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            new_generation(client)
        assert caught.value.status_code == 429 and caught.value.retry_after == 1
        assert time.monotonic() - started < 0.9  # no sleeping when no retry is left
        assert len(fake.requests) == 2

        fake.inject(drop=True, times=1, method="GET")
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
        assert caught.value.status_code is None
        assert len(fake.requests) == 3
    assert fake.generation_ids() == []


# -- POST: only 429 is retried -----------------------------------------------------------------


def test_post_429_retry_after_then_success_creates_one_generation(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=429, times=1, retry_after=1, path="/generations", method="POST")
    started = time.monotonic()
    generation_id = new_generation(client)
    elapsed = time.monotonic() - started
    assert len(hits(fake, "POST", "/generations")) == 2
    assert fake.generation_ids() == [generation_id]
    assert 0.95 <= elapsed < 1 + MARGIN


@pytest.mark.parametrize("status, message", [(500, "internal error"), (502, "Bad Gateway"),
                                             (503, "Service Unavailable"), (504, "Gateway Timeout")])
def test_post_5xx_is_sent_once(fake: FakeLeonardo, client: Client, status: int, message: str) -> None:
    fake.inject(status=status, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(client)
    err = caught.value
    assert err.status_code == status
    assert err.message == message
    assert err.body == {"error": message, "path": "$", "code": "unexpected"}
    assert len(fake.requests) == 1
    assert fake.generation_ids() == []
    # The fault was used once and never re-sent: the next call goes through.
    assert new_generation(client) in fake.generation_ids()


def test_post_5xx_on_every_kind_of_post_is_sent_once(fake: FakeLeonardo, client: Client) -> None:
    fake.inject(status=503, times=None, method="POST")
    calls: List[Callable[[], Dict[str, Any]]] = [
        lambda: client.create_texture_generation({"prompt": "p", "modelAssetId": "a"}),
        lambda: client.create_svd_motion_generation({"imageId": "i"}),
        lambda: client.create_lcm_generation({"imageDataUrl": "data:image/png;base64,AA==", "prompt": "p"}),
        lambda: client.perform_instant_refine({"imageDataUrl": "data:image/png;base64,AA==", "prompt": "p"}),
        lambda: client.perform_inpainting_lcm(
            {"imageDataUrl": "data:image/png;base64,AA==", "maskDataUrl": "data:image/png;base64,AA==", "prompt": "p"}
        ),
        lambda: client.perform_alchemy_upscale_lcm({"imageDataUrl": "data:image/png;base64,AA==", "prompt": "p"}),
    ]
    for n, call in enumerate(calls, start=1):
        with pytest.raises(LeonardoError) as caught:
            call()
        assert caught.value.status_code == 503
        assert len(fake.requests) == n


# -- read timeouts ---------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_post_slower_than_the_read_timeout_is_sent_once(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    delay = READ_TIMEOUT + 1.2
    # A slow server: the request is answered normally after the delay (the generation IS created).
    fake.inject(delay=delay, times=1, path="/generations", method="POST")
    with make_client(timeout=(2, READ_TIMEOUT)) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            new_generation(client)
        elapsed = time.monotonic() - started
        err = caught.value
        assert err.status_code is None
        assert "timed out" in err.message
        assert (err.method, err.url) == ("POST", fake.base_url + "/generations")
        # Given up at the read timeout, well before the server's answer (at `delay`) came.
        assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + 1.0 < delay

        # The server acted on it: the generation exists, though the client never saw its id.
        # This is why POST is never re-sent after a read timeout: a retry would bill twice.
        assert wait_for(lambda: len(fake.generation_ids()) == 1, delay + 3)
        time.sleep(0.1)
        assert len(hits(fake, "POST", "/generations")) == 1
        assert len(fake.generation_ids()) == 1


def test_get_slower_than_the_read_timeout_is_retried(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    fake.inject(delay=2.0, times=None, path="/generations/*", method="GET")
    with make_client(timeout=(2, READ_TIMEOUT), max_retries=2) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("slow-id")
        elapsed = time.monotonic() - started
    err = caught.value
    assert err.status_code is None and "timed out" in err.message
    assert len(hits(fake, "GET", "/generations/")) == 3
    # Three attempts, each cut off at the read timeout (plus tiny backoff): not 3 x 2 s.
    assert 3 * READ_TIMEOUT * 0.9 <= elapsed < 3 * READ_TIMEOUT + MARGIN


def test_get_slow_once_then_fast_succeeds(fake: FakeLeonardo, make_client: Callable[..., Client]) -> None:
    with make_client(timeout=(2, READ_TIMEOUT)) as client:
        generation_id = new_generation(client)
        fake.inject(delay=1.5, times=1, path="/generations/*", method="GET")
        started = time.monotonic()
        assert client.get_generation_by_id(generation_id)["generations_by_pk"]["id"] == generation_id
        elapsed = time.monotonic() - started
    assert len(hits(fake, "GET", "/generations/")) == 2
    assert READ_TIMEOUT * 0.9 <= elapsed < READ_TIMEOUT + MARGIN
