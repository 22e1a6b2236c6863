"""Client.wait_for_generation / wait_for_texture_generation against FakeLeonardo (and a mock).

The polling schedule itself is checked on a virtual clock (the fake_client module's ``time``
replaced), so no test sleeps through it.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any, Dict, List, Tuple

import pytest
import requests
import responses

import leonardo_client.client as client_module
from conftest import API_KEY, BASE, api_matchers, refused_url
from leonardo_client import Client, LeonardoError, generation_id
from leonardo_client.testing import FakeLeonardo


IMAGES = [{"id": "i-1", "url": "https://cdn.example.test/i-1.png"}]


def create(fake_client: Client, num_images: int = 1) -> str:
    job = fake_client.create_generation({"prompt": "a lighthouse at dusk", "num_images": num_images})
    return str(job["sdGenerationJob"]["generationId"])


def polls(fake: FakeLeonardo, path_prefix: str) -> int:
    return sum(1 for r in fake.requests if r.method == "GET" and r.path.startswith(path_prefix))


class VirtualTime:
    """Stands in for the client module's `time` and the client's `closed` event: sleeping, or
    waiting for a close() that never comes, advances a virtual clock at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: List[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return False

    def is_set(self) -> bool:
        return False

    def set(self) -> None:  # the fixture's close() at teardown
        pass

    @classmethod
    def of(cls, client: Client, monkeypatch: pytest.MonkeyPatch) -> "VirtualTime":
        clock = cls()
        monkeypatch.setattr(client_module, "time", clock)
        monkeypatch.setattr(client.retry, "closed", clock)
        return clock


def test_returns_the_generation_when_complete(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 0.2
    generation_id = create(fake_client, num_images=2)
    seen: List[Tuple[str, float]] = []

    generation = fake_client.wait_for_generation(generation_id, poll_interval=0.05, on_poll=lambda s, e: seen.append((s, e)))

    assert generation["id"] == generation_id
    assert generation["status"] == "COMPLETE"
    assert len(generation["generated_images"]) == 2
    assert [s for s, _ in seen][0] == "PENDING" and seen[-1][0] == "COMPLETE"
    assert [e for _, e in seen] == sorted(e for _, e in seen)
    assert polls(fake, "/generations/") == len(seen)


def test_an_already_finished_generation_costs_one_request(fake: FakeLeonardo, fake_client: Client) -> None:
    generation_id = create(fake_client)
    started = time.monotonic()
    assert fake_client.wait_for_generation(generation_id)["status"] == "COMPLETE"
    assert time.monotonic() - started < 0.5
    assert polls(fake, "/generations/") == 1


def test_a_one_second_generation_is_seen_soon_with_few_requests(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 1.0
    generation_id = create(fake_client)
    created = time.monotonic()
    fake_client.wait_for_generation(generation_id)  # default intervals: checks at 0, 1 s
    late = time.monotonic() - created - 1.0
    assert late < 0.5
    assert polls(fake, "/generations/") <= 3


def test_failed_generation_raises(fake: FakeLeonardo, fake_client: Client) -> None:
    """fail_generation(): a single job of an otherwise healthy run ends FAILED."""
    fake.completion_delay = 0.2
    ok_id = create(fake_client)
    generation_id = create(fake_client)
    fake.fail_generation(generation_id)
    with pytest.raises(LeonardoError) as info:
        fake_client.wait_for_generation(generation_id, poll_interval=0.05)
    assert "FAILED" in str(info.value) and generation_id in str(info.value)
    assert info.value.body["status"] == "FAILED"
    assert info.value.body["generated_images"] == []
    assert "\n" not in str(info.value)
    assert fake_client.wait_for_generation(ok_id, poll_interval=0.05)["status"] == "COMPLETE"


def test_fail_new_generations_raises(fake: FakeLeonardo, fake_client: Client) -> None:
    done = fake_client.wait_for_generation(create(fake_client), timeout=5, poll_interval=0.05)
    assert done["status"] == "COMPLETE" and len(done["generated_images"]) == 1
    fake.fail_new_generations = True
    generation_id = create(fake_client)
    with pytest.raises(LeonardoError, match="FAILED"):
        fake_client.wait_for_generation(generation_id)


@pytest.mark.parametrize("fault", [{"drop": True}, {"status": 200, "truncate": True}])
def test_a_poll_that_got_no_whole_answer_is_waited_out(fake: FakeLeonardo, fake_client: Client, fault: Any) -> None:
    # Every try of one poll: dropped, or its 200 body broken off (that one ended the wait at once).
    generation_id = create(fake_client)
    fake.inject(path=f"/generations/{generation_id}", method="GET", times=4, **fault)
    assert fake_client.wait_for_generation(generation_id, timeout=60, poll_interval=0.05)["status"] == "COMPLETE"


def test_unknown_id_raises_after_one_request(fake: FakeLeonardo, fake_client: Client) -> None:
    with pytest.raises(LeonardoError, match="no generation with id 'nope'"):
        fake_client.wait_for_generation("nope")
    assert polls(fake, "/generations/") == 1


def test_an_answer_of_another_shape_says_so(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.inject(status=200, path="/generations/g-1", body={"generations_by_pk": [{"id": "g-1"}]})
    with pytest.raises(LeonardoError, match=r"no generation with id 'g-1' \(the API answered generations_by_pk: a JSON list"):
        fake_client.wait_for_generation("g-1")  # it said "null"


def test_an_answer_about_another_generation_is_an_error(fake: FakeLeonardo, fake_client: Client) -> None:
    other = create(fake_client)
    fake.inject(status=200, path="/generations/asked", body=fake_client.get_generation_by_id(other))
    with pytest.raises(LeonardoError, match=f"asked for generation 'asked', the API answered generation '{other}'"):
        fake_client.wait_for_generation("asked")  # its images are not the ones asked for


def test_an_id_asked_in_upper_case_is_the_one_answered_in_lower_case(mocked: responses.RequestsMock, mock_client: Client) -> None:
    done = {"generations_by_pk": {"id": "6f1b2c3d-0000-4000-8000-00000000abcd", "status": "COMPLETE", "generated_images": IMAGES}}
    mocked.add("GET", BASE + "/generations/6F1B2C3D-0000-4000-8000-00000000ABCD", json=done, match=api_matchers())
    # The API's ids are Postgres uuids, which it reads in either case and writes in lower case: this was refused.
    assert mock_client.wait_for_generation("6F1B2C3D-0000-4000-8000-00000000ABCD") == done["generations_by_pk"]


def test_timeout_raises_without_sleeping_past_the_deadline(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 30
    generation_id = create(fake_client)
    started = time.monotonic()
    with pytest.raises(LeonardoError, match="still PENDING") as info:
        fake_client.wait_for_generation(generation_id, timeout=0.5, poll_interval=0.2)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.8
    assert "timeout 0.5s" in str(info.value)


def test_the_timeout_message_counts_the_time_on_poll_took(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 30
    generation_id = create(fake_client)
    with pytest.raises(LeonardoError, match=r"still PENDING after 0\.[3-9]s \(timeout 0\.05s\)"):  # was "after 0.0s"
        fake_client.wait_for_generation(generation_id, timeout=0.05, on_poll=lambda status, elapsed: time.sleep(0.3))


def test_intervals_grow_by_half_up_to_the_cap_and_stop_at_the_deadline(
    fake: FakeLeonardo, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.completion_delay = 3600
    generation_id = create(fake_client)
    clock = VirtualTime.of(fake_client, monkeypatch)

    with pytest.raises(LeonardoError, match="still PENDING"):
        fake_client.wait_for_generation(generation_id)  # its default timeout: 300 s (README)

    assert clock.sleeps[:5] == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625])
    assert max(clock.sleeps) == 12.0
    assert sum(clock.sleeps) == pytest.approx(300.0)  # the last sleep is cut to the time left
    assert clock.sleeps[-1] <= 12.0
    assert polls(fake, "/generations/") == len(clock.sleeps) + 1 <= 32


def test_a_long_first_interval_is_not_cut_to_the_cap(
    fake: FakeLeonardo, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.completion_delay = 3600
    generation_id = create(fake_client)
    clock = VirtualTime.of(fake_client, monkeypatch)
    with pytest.raises(LeonardoError):
        fake_client.wait_for_generation(generation_id, timeout=100, poll_interval=30)
    assert clock.sleeps == [30, 30, 30, 10]


def test_close_ends_a_wait_at_once(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 3600
    generation_id = create(fake_client)
    closer = threading.Timer(0.3, fake_client.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(LeonardoError, match="this Client was closed"):
        fake_client.wait_for_generation(generation_id, poll_interval=30)
    assert time.monotonic() - started < 5  # not the 30 s interval
    closer.join()


def test_motion_generation_is_waited_for_the_same_way(fake: FakeLeonardo, fake_client: Client) -> None:
    image = fake_client.wait_for_generation(create(fake_client))["generated_images"][0]
    fake.completion_delay = 0.2
    job = fake_client.create_svd_motion_generation({"imageId": image["id"]})
    motion = fake_client.wait_for_generation(job["motionSvdGenerationJob"]["generationId"], poll_interval=0.1)
    assert motion["generated_images"][0]["motionMP4URL"].endswith(".mp4")


def test_texture_generation(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 0.2
    job = fake_client.create_texture_generation({"prompt": "rusty metal", "modelAssetId": "model-1"})
    texture = fake_client.wait_for_texture_generation(job, poll_interval=0.1)  # its create response: its id
    assert texture["status"] == "COMPLETE" and texture["id"] == job["textureGenerationJob"]["id"]
    assert {t["type"] for t in texture["model_asset_texture_images"]} >= {"ALBEDO", "NORMAL"}
    assert polls(fake, "/generations-texture/") >= 2


def test_a_texture_wait_gives_up_after_600_s_by_default(
    fake: FakeLeonardo, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.completion_delay = 3600
    job = fake_client.create_texture_generation({"prompt": "rusty metal", "modelAssetId": "model-1"})
    clock = VirtualTime.of(fake_client, monkeypatch)
    with pytest.raises(LeonardoError, match=r"still PENDING after 600\.0s \(timeout 600s\)"):
        fake_client.wait_for_texture_generation(job)  # README: "default timeout 600 s"
    assert sum(clock.sleeps) == pytest.approx(600.0)


def test_texture_failed_and_unknown(fake: FakeLeonardo, fake_client: Client) -> None:
    job = fake_client.create_texture_generation({"prompt": "rusty metal", "modelAssetId": "model-1"})
    fake.fail_generation(job["textureGenerationJob"]["id"])
    with pytest.raises(LeonardoError, match="texture generation .* FAILED") as info:
        fake_client.wait_for_texture_generation(job["textureGenerationJob"]["id"])
    assert info.value.body["status"] == "FAILED" and info.value.body["model_asset_texture_images"] == []
    with pytest.raises(LeonardoError, match="no texture generation with id 'nope'"):
        fake_client.wait_for_texture_generation("nope")


@pytest.mark.parametrize("key, status", [("0f3c6a52-8e1d-4b7a-9c2e-5d4f6a7b8c9d", 401), ("wrong-key", 500)])
def test_api_errors_while_polling_surface(fake: FakeLeonardo, key: str, status: int) -> None:
    # A key that is not a UUID gets the auth hook's 500 (API_FACTS 1.2): a refusal too, not a 5xx that passes, which
    # the wait polled until its timeout (its 300 s by default; 60 here: the test fails, it does not hang).
    with Client(api_key=key, base_url=fake.base_url, timeout=(2, 5), max_retries=0) as bad:
        with pytest.raises(LeonardoError) as info:
            bad.wait_for_generation("anything", timeout=60)
    assert info.value.status_code == status and len(fake.requests) == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"timeout": -1}, {"poll_interval": 0}, {"poll_interval": True}, {"timeout": float("nan")},
     {"timeout": float("inf"), "poll_interval": float("inf")}, {"timeout": 1e12}, {"on_poll": 5}],
)
def test_bad_arguments_send_nothing(fake: FakeLeonardo, fake_client: Client, kwargs: Dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):  # TypeError: not a number / not callable
        fake_client.wait_for_generation("abc", **kwargs)
    with pytest.raises(ValueError):
        fake_client.wait_for_generation("..")
    with pytest.raises(TypeError):
        fake_client.wait_for_texture_generation(123)  # type: ignore[arg-type]
    assert fake.requests == []


def test_a_create_response_is_waited_for_by_its_id(mocked: responses.RequestsMock, mock_client: Client) -> None:
    done = {"generations_by_pk": {"id": "g-9", "status": "COMPLETE", "generated_images": IMAGES}}
    mocked.add("GET", BASE + "/generations/g-9", json=done, match=api_matchers())
    assert mock_client.wait_for_generation({"generate": {"generationId": "g-9"}}) == done["generations_by_pk"]
    with pytest.raises(ValueError, match="texture generation's create response: wait with wait_for_texture_generation"):
        mock_client.wait_for_generation({"textureGenerationJob": {"id": "t-1"}})
    with pytest.raises(ValueError, match="not a texture generation's create response: wait with wait_for_generation$"):
        mock_client.wait_for_texture_generation({"sdGenerationJob": {"generationId": "g-9"}})
    assert len(mocked.calls) == 1


def test_a_generation_or_a_get_answer_given_to_wait_on_is_a_value_error(
    mocked: responses.RequestsMock, mock_client: Client
) -> None:
    # Both were a LeonardoError ("no generation id in the response"), an API failure's type, for the caller's mix-up.
    done = {"id": "g-9", "status": "COMPLETE", "generated_images": IMAGES}
    with pytest.raises(ValueError, match=r"^that is a generation \(status 'COMPLETE'\), not an id or a create resp"
                                         r"onse: pass its id, generation\['id'\] \(or the create response\)$"):
        mock_client.wait_for_generation(done)
    with pytest.raises(ValueError, match=r"^that is a GET call's answer \(it holds generations_by_pk\), .*: pass "
                                         r"generations_by_pk\['id'\]"):
        mock_client.wait_for_generation({"generations_by_pk": done})
    # The API's answer for an id it does not know: "pass generations_by_pk['id']" was advice for a null.
    no_job = r"^that is a GET call's answer of no job \(model_asset_texture_generations_by_pk is null: no such id\)"
    with pytest.raises(ValueError, match=no_job + r", .*: pass the id of a job"):
        mock_client.wait_for_texture_generation({"model_asset_texture_generations_by_pk": None})
    with pytest.raises(LeonardoError, match="^no generation id in the response"):  # an answer without its id: the API's
        mock_client.wait_for_generation({"sdGenerationJob": {"cost": {"amount": "1"}}})
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("answer, said", [
    ({"lcmGenerationJob": {"imageDataUrl": ["data:image/jpeg;base64,AAAA"]}},
     r"an LCM result, not a create response: its images are in it, save them with save_results\(it\)$"),
    ({"user_details": [{"user": {"id": "u-1"}}]}, r"GET /me's answer \(it holds user_details\), not an id or a "),
    ({"generations": []}, r"a page of GET /generations/user/\{userId\} \(it holds generations\), not an id or a "),
])
def test_another_calls_answer_given_to_wait_on_is_a_value_error_before_anything_is_sent(
    mocked: responses.RequestsMock, mock_client: Client, answer: Dict[str, Any], said: str
) -> None:
    # Each was a LeonardoError "no generation id in the response ...; it may have been made (and billed): look for it
    # in your Leonardo library": a hunt for a generation no one asked for, where the caller passed the wrong dict.
    with pytest.raises(ValueError, match="^that is " + said):
        mock_client.wait_for_generation(answer)
    # generation_id() takes no id: its advice is where the id is for a wait (it said "pass the id of a job (or ...").
    advice = r"not a create response: generation_id\(\) reads one; to wait, pass the id of a job$"
    for_ids = said.replace("not an id or a ", advice)
    with pytest.raises(ValueError, match="^that is " + for_ids):
        generation_id(answer)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("odd", [{"id": "j-1", "status": "PENDING"}, {"status": "error", "id": "r-1", "message": "timeout"}])
def test_an_odd_create_answer_given_to_wait_on_says_it_may_have_been_made(
    mocked: responses.RequestsMock, mock_client: Client, odd: Dict[str, Any]
) -> None:
    # The API's answer (a job of another shape, an error in a 200), not the caller's mix-up: the waits called it "a
    # generation ... pass its id" where generation_id() said it may have been made.
    for wait in (mock_client.wait_for_generation, mock_client.wait_for_texture_generation):
        with pytest.raises(LeonardoError, match="it may have been made"):
            wait(odd)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize("texture_job", [None, {}])
def test_a_create_response_naming_no_texture_job_is_not_a_texture_one(
    mocked: responses.RequestsMock, mock_client: Client, texture_job: Any
) -> None:
    done = {"generations_by_pk": {"id": "g-9", "status": "COMPLETE", "generated_images": IMAGES}}
    mocked.add("GET", BASE + "/generations/g-9", json=done, match=api_matchers())
    created = {"sdGenerationJob": {"generationId": "g-9"}, "textureGenerationJob": texture_job}  # there, with no id
    assert mock_client.wait_for_generation(created) == done["generations_by_pk"]


# A poll that fails in a way that passes (a 5xx, a 429, no answer at all: mock_client's retries, none here, spent) is
# waited out until the wait's own deadline; one the API refuses (a 4xx, a bad body) ends the wait at once.

DONE = {"generations_by_pk": {"id": "g-9", "status": "COMPLETE", "generated_images": IMAGES}}
TRANSIENT = [{"status": 503, "json": {"error": "busy"}}, {"status": 500, "body": "oops"},
             {"status": 429, "json": {"error": "slow down"}}, {"body": requests.ConnectionError("connection reset")}]


@pytest.mark.parametrize("then, timeout, waited", [(DONE, 600, 8.125), (None, 600, 68.171875), (None, 30, 30)])
def test_complete_with_no_images_yet_is_asked_again_for_a_minute(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch, then: Any, timeout: float,
    waited: float,
) -> None:
    # A generation is not finished while its generated_images is [] (API_FACTS_MORE (c)): it was returned so, and
    # save_results saved nothing, said by no one.
    clock = VirtualTime.of(mock_client, monkeypatch)
    empty = {"generations_by_pk": dict(DONE["generations_by_pk"], generated_images=[])}
    for answer in [empty] * 4 + [then or empty]:  # the last one answers every later poll too
        mocked.add("GET", BASE + "/generations/g-9", json=answer, match=api_matchers())
    generation = mock_client.wait_for_generation("g-9", timeout=timeout)
    assert generation == (then or empty)["generations_by_pk"]  # with its images; else, after a minute, without
    assert clock.now - 1000.0 == waited  # the first poll past the minute, or the wait's own deadline if that is first


@pytest.mark.parametrize("url", [None, ""])
def test_complete_with_no_image_url_yet_is_asked_again_as_one_with_none(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch, url: Any
) -> None:
    # Eventual-consistency hunt: every image listed with a null (or "") url was returned at once, and save_results
    # then raised, where the batch waited for the urls.
    VirtualTime.of(mock_client, monkeypatch)
    no_url = {"generations_by_pk": dict(DONE["generations_by_pk"], generated_images=[dict(IMAGES[0], url=url)] * 2)}
    for answer in [no_url] * 3 + [DONE]:
        mocked.add("GET", BASE + "/generations/g-9", json=answer, match=api_matchers())
    assert mock_client.wait_for_generation("g-9") == DONE["generations_by_pk"]  # was no_url's, at the first poll
    assert len(mocked.calls) == 4


def test_a_texture_generation_complete_with_no_images_yet_is_asked_again_too(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    VirtualTime.of(mock_client, monkeypatch)
    texture = {"id": "t-9", "status": "COMPLETE", "model_asset_texture_images": []}
    for images in ([], [], [{"id": "i-1", "url": "https://cdn.example/t.png", "type": "ALBEDO"}]):
        answer = {"model_asset_texture_generations_by_pk": dict(texture, model_asset_texture_images=images)}
        mocked.add("GET", BASE + "/generations-texture/t-9", json=answer, match=api_matchers())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = mock_client.wait_for_texture_generation("t-9")
    assert found["model_asset_texture_images"][0]["id"] == "i-1"  # it was returned at once, with none to save
    assert caught == []  # each of its 3 polls warned, from inside client.py: the create call warned already


def test_complete_with_no_images_gone_back_to_pending_is_still_running_at_the_deadline(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The minute's grace is for a COMPLETE answer: once a poll says PENDING again, the deadline ends the wait as for
    # any generation still running (it returned that PENDING generation, as if done).
    VirtualTime.of(mock_client, monkeypatch)
    empty = {"generations_by_pk": dict(DONE["generations_by_pk"], generated_images=[])}
    pending = {"generations_by_pk": dict(DONE["generations_by_pk"], status="PENDING", generated_images=[])}
    for answer in [empty, pending]:  # the last one answers every later poll too
        mocked.add("GET", BASE + "/generations/g-9", json=answer, match=api_matchers())
    with pytest.raises(LeonardoError, match=r"^generation g-9 still PENDING after 30\.0s \(timeout 30s\)$"):
        mock_client.wait_for_generation("g-9", timeout=30)


@pytest.mark.parametrize("failure", TRANSIENT, ids=["503", "500", "429", "no answer"])
def test_polls_failing_for_a_while_are_waited_out(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch, failure: Dict[str, Any]
) -> None:
    clock = VirtualTime.of(mock_client, monkeypatch)
    for _ in range(4):
        mocked.add("GET", BASE + "/generations/g-9", match=api_matchers(), **failure)
    mocked.add("GET", BASE + "/generations/g-9", json=DONE, match=api_matchers())
    seen: List[Tuple[str, float]] = []

    generation = mock_client.wait_for_generation("g-9", timeout=600, on_poll=lambda s, e: seen.append((s, e)))

    assert generation == DONE["generations_by_pk"]
    assert clock.sleeps == pytest.approx([1.0, 1.5, 2.25, 3.375])  # on its schedule, as if each had answered
    assert seen == [("COMPLETE", pytest.approx(8.125))]  # only real answers are reported
    assert len(mocked.calls) == 5


@pytest.mark.parametrize("status, retry_after, timeout, sleeps", [
    (429, "120", 200, [120, 1.5]),  # over the retry rule's cap, it is the next interval; then 80 s left: too few
    (503, "0", 600, [1.0, 1.5]),  # it only lengthens a pause: a 503 saying 0 would otherwise be polled in a hot loop
], ids=["a 429's Retry-After is the next interval when it fits", "a shorter one does not shorten the interval"])
def test_a_retry_after_of_a_poll_lengthens_its_interval_only(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch,
    status: int, retry_after: str, timeout: float, sleeps: List[float],
) -> None:
    clock = VirtualTime.of(mock_client, monkeypatch)
    answer = {"status": status, "json": {"error": "slow down"}, "headers": {"Retry-After": retry_after}}
    for _ in range(2):
        mocked.add("GET", BASE + "/generations/g-9", match=api_matchers(), **answer)
    mocked.add("GET", BASE + "/generations/g-9", json=DONE, match=api_matchers())
    assert mock_client.wait_for_generation("g-9", timeout=timeout) == DONE["generations_by_pk"]
    assert clock.sleeps == sleeps


@pytest.mark.parametrize(
    "refusal",
    [{"status": 404, "json": {"error": "not found"}}, {"status": 401, "json": {"error": "invalid key"}},
     {"status": 403, "json": {"error": "forbidden"}}, {"status": 400, "json": {"error": "bad id"}},
     {"status": 200, "body": "<html>not json</html>"}],
    ids=["404", "401", "403", "400", "bad body"],
)
def test_a_poll_refused_ends_the_wait_at_once(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch, refusal: Dict[str, Any]
) -> None:
    clock = VirtualTime.of(mock_client, monkeypatch)
    mocked.add("GET", BASE + "/generations/g-9", match=api_matchers(), **refusal)
    with pytest.raises(LeonardoError) as info:
        mock_client.wait_for_generation("g-9", timeout=600)
    assert info.value.status_code == refusal["status"]
    assert clock.sleeps == [] and len(mocked.calls) == 1


def test_an_answer_without_the_generation_is_not_said_to_be_no_such_generation(
    mocked: responses.RequestsMock, mock_client: Client
) -> None:
    # An error in a 200 ("Check the body shape", API_FACTS 1.3) read as null: "no generation with id", untrue.
    mocked.add("GET", BASE + "/generations/g-9", json={"error": "upstream timeout"}, match=api_matchers())
    with pytest.raises(LeonardoError, match=r"^the API answered no generations_by_pk for generation 'g-9' \(upstream"):
        mock_client.wait_for_generation("g-9")


def test_a_poll_whose_connection_is_never_made_ends_the_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A wrong address or no network is said at once, as before anything was sent, not after the wait's timeout.
    with Client(api_key=API_KEY, base_url=refused_url() + "/v1", max_retries=0) as client:
        clock = VirtualTime.of(client, monkeypatch)
        with pytest.raises(LeonardoError, match="^connection failed: "):
            client.wait_for_generation("g-9", timeout=600)
    assert clock.sleeps == []


def test_polls_failing_past_the_deadline_say_so_and_why(
    mocked: responses.RequestsMock, mock_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = VirtualTime.of(mock_client, monkeypatch)
    pending = {"generations_by_pk": {"id": "g-9", "status": "PENDING", "generated_images": []}}
    mocked.add("GET", BASE + "/generations/g-9", json=pending, match=api_matchers())
    mocked.add("GET", BASE + "/generations/g-9", status=503, json={"error": "busy"}, match=api_matchers())  # on and on
    seen: List[str] = []
    with pytest.raises(LeonardoError) as info:
        mock_client.wait_for_generation("g-9", timeout=300, on_poll=lambda status, elapsed: seen.append(status))
    assert str(info.value) == (
        "generation g-9 still unknown after 300.0s (timeout 300s), its last poll failed: "
        f"HTTP 503: busy (GET {BASE}/generations/g-9)"
    )
    assert isinstance(info.value.__cause__, LeonardoError) and info.value.__cause__.status_code == 503
    assert sum(clock.sleeps) == pytest.approx(300.0) and len(mocked.calls) == len(clock.sleeps) + 1
    assert seen == ["PENDING"]
