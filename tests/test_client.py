"""Client: the 13 endpoint methods on the wire, the constructor's options, and the client over
real sockets: the lifecycle of each kind of generation, keep-alive and threads.

On the wire: every HTTP exchange is mocked with ``responses`` and strict matchers. End to end:
FakeLeonardo on 127.0.0.1, which rejects unknown body keys, null for non-nullable fields and
wrong JSON types with a 400, so every request that succeeds there also proves its wire keys.
"""

from __future__ import annotations

import base64
import copy
import gc
import os
import pickle
import re
import signal
import struct
import threading
import time
import weakref
import zlib
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest
import requests
import urllib3

from leonardo_client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    Client,
    ControlnetInput,
    CreateGenerationRequest,
    CreateLcmGenerationRequest,
    CreateSvdMotionGenerationRequest,
    CreateTextureGenerationRequest,
    ElementInput,
    InitImageType,
    LcmInpaintingRequest,
    LcmInstantRefineRequest,
    LcmStyle,
    LcmUpscaleRequest,
    LeonardoError,
    PresetStyle,
    Scheduler,
    SdVersion,
    StrengthType,
    UserElementInput,
    generation_id,
    may_have_run,
)
from leonardo_client.testing import FakeLeonardo, RecordedRequest
import leonardo_client.client as client_module
from leonardo_client.errors import MAY_HAVE_BEEN_MADE, _KeyRedactingFilter
from conftest import AGENT, API_KEY, BASE, THREADS, api_matchers, endpoint_methods, parse_jpeg, refused_url

# --- the 13 endpoint methods -----------------------------------------------------------------

IMAGE = "data:image/jpeg;base64,/9j/AAAA"
MASK = "data:image/jpeg;base64,/9j/BBBB"

# (method name, positional args, keyword args, HTTP method, path + query as sent, JSON body or None)
CASES = [
    (
        "create_generation",
        (
            CreateGenerationRequest(
                prompt="a lighthouse at dusk",
                model_id="6bef9f1b-29cb-40c7-b9df-32b51c1f67d3",
                num_images=2,
                width=1024,
                height=768,
                alchemy=False,
                seed=0,
                negative_prompt=None,
                controlnets=[ControlnetInput("init-1", "UPLOADED", 67, weight=None, strength_type="High")],
                elements=[ElementInput("element-1")],
            ),
        ),
        {},
        "POST",
        "/generations",
        {
            "prompt": "a lighthouse at dusk",
            "modelId": "6bef9f1b-29cb-40c7-b9df-32b51c1f67d3",
            "num_images": 2,
            "width": 1024,
            "height": 768,
            "alchemy": False,
            "seed": 0,
            "controlnets": [
                {"initImageId": "init-1", "initImageType": "UPLOADED", "preprocessorId": 67, "strengthType": "High"}
            ],
            "elements": [{"akUUID": "element-1"}],
        },
    ),
    ("get_generation_by_id", ("gen-1",), {}, "GET", "/generations/gen-1", None),
    ("delete_generation_by_id", ("gen-1",), {}, "DELETE", "/generations/gen-1", None),
    ("get_generations_by_user_id", ("user-1",), {}, "GET", "/generations/user/user-1", None),
    (
        "get_generations_by_user_id",
        ("user-1",),
        {"limit": 5, "offset": 10},
        "GET",
        "/generations/user/user-1?limit=5&offset=10",
        None,
    ),
    ("get_generations_by_user_id", ("user-1",), {"offset": 0}, "GET", "/generations/user/user-1?offset=0", None),
    (
        "create_texture_generation",
        (CreateTextureGenerationRequest(prompt="rusty metal", model_asset_id="asset-1", preview=True),),
        {},
        "POST",
        "/generations-texture",
        {"prompt": "rusty metal", "modelAssetId": "asset-1", "preview": True},
    ),
    ("get_texture_generation_by_id", ("tex-1",), {}, "GET", "/generations-texture/tex-1", None),
    ("get_texture_generation_by_id", ("tex-1",), {"limit": 3}, "GET", "/generations-texture/tex-1?limit=3", None),
    ("delete_texture_generation_by_id", ("tex-1",), {}, "DELETE", "/generations-texture/tex-1", None),
    ("get_texture_generations_by_model_id", ("m-1",), {}, "GET", "/generations-texture/model/m-1", None),
    (
        "get_texture_generations_by_model_id",
        ("m-1",),
        {"limit": 1, "offset": 2},
        "GET",
        "/generations-texture/model/m-1?limit=1&offset=2",
        None,
    ),
    (
        "create_lcm_generation",
        (CreateLcmGenerationRequest(image_data_url=IMAGE, prompt="a cat", strength=0.5, steps=None),),
        {},
        "POST",
        "/generations-lcm",
        {"imageDataUrl": IMAGE, "prompt": "a cat", "strength": 0.5},
    ),
    (
        "create_svd_motion_generation",
        (CreateSvdMotionGenerationRequest(image_id="image-1", motion_strength=5, is_public=False),),
        {},
        "POST",
        "/generations-motion-svd",
        {"imageId": "image-1", "motionStrength": 5, "isPublic": False},
    ),
    (
        "perform_inpainting_lcm",
        (LcmInpaintingRequest(image_data_url=IMAGE, mask_data_url=MASK, prompt="a hat", style="ANIME"),),
        {},
        "POST",
        "/lcm-inpainting",
        {"imageDataUrl": IMAGE, "maskDataUrl": MASK, "prompt": "a hat", "style": "ANIME"},
    ),
    (
        "perform_instant_refine",
        (LcmInstantRefineRequest(image_data_url=IMAGE, prompt="sharper", guidance=7.5),),
        {},
        "POST",
        "/lcm-instant-refine",
        {"imageDataUrl": IMAGE, "prompt": "sharper", "guidance": 7.5},
    ),
    (
        "perform_alchemy_upscale_lcm",
        (LcmUpscaleRequest(image_data_url=IMAGE, prompt="bigger", refine_creative=True, refine_strength=0.6),),
        {},
        "POST",
        "/lcm-upscale",
        {"imageDataUrl": IMAGE, "prompt": "bigger", "refineCreative": True, "refineStrength": 0.6},
    ),
]


def _case_id(case: Any) -> str:
    return f"{case[0]}{'-' + '-'.join(sorted(case[2])) if case[2] else ''}"


# The endpoint methods of today's API, beyond the 13: test_v2.py's.
BEYOND_THE_13 = {"create_generation_v2", "get_models_v2", "get_user_info", "upload_init_image", "get_init_image_by_id",
                 "delete_init_image_by_id"}


def test_cases_cover_all_13_operations():
    assert len({case[0] for case in CASES}) == 13
    assert {case[0] for case in CASES} == set(endpoint_methods()) - BEYOND_THE_13


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_endpoint_on_the_wire(mocked, mock_client, case):
    name, args, kwargs, http_method, path, body = case
    reply = {"operation": name, "nested": {"items": [1, "two", None]}}
    path_only, _, query = path.partition("?")
    mocked.add(
        http_method,
        BASE + path_only,
        json=reply,
        match=api_matchers(body, query=dict(p.split("=") for p in query.split("&")) if query else None),
    )

    result = getattr(mock_client, name)(*args, **kwargs)

    assert result == reply
    assert len(mocked.calls) == 1
    sent = mocked.calls[0].request
    assert sent.method == http_method
    assert sent.url == BASE + path
    if body is None:
        assert sent.body is None


def test_a_204_returns_an_empty_dict_and_an_empty_200_is_an_error(mocked, mock_client):
    mocked.add("DELETE", BASE + "/generations/gen-1", status=204, body=b"", match=api_matchers())
    assert mock_client.delete_generation_by_id("gen-1") == {}
    mocked.add("POST", BASE + "/generations", status=200, body=b"", match=api_matchers({"prompt": "p"}))
    with pytest.raises(LeonardoError) as info:  # it was {}, and job["sdGenerationJob"] a KeyError
        mock_client.create_generation({"prompt": "p"})
    said = f"response body is not valid JSON; {MAY_HAVE_BEEN_MADE}"  # a create call: it may have run
    assert (info.value.status_code, info.value.message, info.value.body) == (200, said, "")


@pytest.mark.parametrize(
    "answer, details",
    [({"user_details": [{"user": {"id": "u-1"}, "apiConcurrencySlots": 3}]},
      {"user": {"id": "u-1"}, "apiConcurrencySlots": 3}),
     ({"user_details": [{"user": "u-1", "apiConcurrencySlots": 3}]}, {"user": {}, "apiConcurrencySlots": 3}),
     ({"user_details": ["x"]}, {"user": {}}), ({"user_details": [None]}, {"user": {}}),
     ({"user_details": []}, {"user": {}}), ({"user_details": "x"}, {"user": {}}), ({}, {"user": {}})],
)
def test_user_details_always_holds_a_user_dict(answer, details):
    # The CLI's me/list and run_batch read details["user"].get(...): an entry not an object must not raise.
    assert client_module.user_details(answer) == details


POST_METHODS = [
    ("create_generation", "/generations", CreateGenerationRequest),
    ("create_texture_generation", "/generations-texture", CreateTextureGenerationRequest),
    ("create_lcm_generation", "/generations-lcm", CreateLcmGenerationRequest),
    ("create_svd_motion_generation", "/generations-motion-svd", CreateSvdMotionGenerationRequest),
    ("perform_inpainting_lcm", "/lcm-inpainting", LcmInpaintingRequest),
    ("perform_instant_refine", "/lcm-instant-refine", LcmInstantRefineRequest),
    ("perform_alchemy_upscale_lcm", "/lcm-upscale", LcmUpscaleRequest),
]


@pytest.mark.parametrize("name, path, _cls", POST_METHODS)
def test_mapping_request_is_sent_as_given(mocked, mock_client, name, path, _cls):
    # A field the dataclasses do not know yet, and an explicit null the caller chose to send.
    body = {"prompt": "as given", "someFutureField": {"deep": [1, 2]}, "explicitNull": None}
    mocked.add(
        "POST",
        BASE + path,
        json={"ok": name},
        match=api_matchers(body),  # Content-Type application/json, the body exactly as given
    )
    assert getattr(mock_client, name)(body) == {"ok": name}


@pytest.mark.parametrize("name, path, cls", POST_METHODS)
@pytest.mark.parametrize("bad", ["prompt", None, ["prompt"], 42, "other-dataclass"])
def test_wrong_request_type_raises_type_error_and_sends_nothing(mocked, mock_client, name, path, cls, bad):
    if bad == "other-dataclass":
        # The right shape for another operation is still the wrong type here.
        bad = LcmUpscaleRequest(IMAGE, "p") if cls is not LcmUpscaleRequest else LcmInstantRefineRequest(IMAGE, "p")
    with pytest.raises(TypeError, match=cls.__name__):
        getattr(mock_client, name)(bad)
    assert len(mocked.calls) == 0


def test_required_field_set_to_none_raises_value_error_and_sends_nothing(mocked, mock_client):
    with pytest.raises(ValueError, match=r"^CreateGenerationRequest\.prompt is required$"):
        mock_client.create_generation(CreateGenerationRequest(prompt=None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^CreateGenerationRequest\.controlnets\[0\]\.init_image_id is required$"):
        mock_client.create_generation(
            CreateGenerationRequest("p", controlnets=[ControlnetInput(None, "UPLOADED", 1)])  # type: ignore[arg-type]
        )
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"limit": "5"}, TypeError),
        ({"offset": 1.5}, TypeError),
        ({"limit": True}, TypeError),
        ({"limit": -1}, ValueError),
        ({"offset": -3}, ValueError),
    ],
)
@pytest.mark.parametrize(
    "name", ["get_generations_by_user_id", "get_texture_generation_by_id", "get_texture_generations_by_model_id"]
)
def test_bad_paging_arguments_raise_before_sending(mocked, mock_client, name, kwargs, error):
    with pytest.raises(error):
        getattr(mock_client, name)("some-id", **kwargs)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "call, answer",
    [
        (lambda client: client.get_generation_by_id(" " * 10000), None),
        (lambda client: Client(api_key=API_KEY, base_url="https://" + "a" * 10000 + ".com/v1"), None),
        (lambda client: Client(api_key=API_KEY, base_url="https://h:" + "9" * 10000 + "/v1"), None),  # urlsplit's text
        (lambda client: generation_id({f"k{n}": 0 for n in range(5000)}), None),
        (lambda client: client.wait_for_generation("n" * 10000), ("n" * 10000, None)),
        (lambda client: client.wait_for_generation("g"), ("g", {"id": "x" * 15000, "status": "PENDING"})),
    ],
    ids=["id", "base_url", "port", "create response keys", "unknown id", "another id answered"],
)
def test_a_message_quotes_a_long_value_cut_short(mocked, mock_client, call, answer):
    # Each message held the whole value: 10 to 40 KB.
    if answer:
        mocked.add("GET", f"{BASE}/generations/{answer[0]}", json={"generations_by_pk": answer[1]}, match=api_matchers())
    with pytest.raises((ValueError, LeonardoError)) as info:
        call(mock_client)
    assert len(info.value.message if isinstance(info.value, LeonardoError) else str(info.value)) < 250


# --- constructor ----------------------------------------------------------------------------
# Each test starts without LEONARDO_API_KEY / LEONARDO_BASE_URL (conftest.py's clean_env).


def test_api_key_argument_wins_over_environment(mocked, monkeypatch):
    monkeypatch.setenv("LEONARDO_API_KEY", "fake-env-key")
    client = Client(api_key="fake-arg-key", base_url=BASE)
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(key="fake-arg-key", timeout=(10, 60)))
    client.get_generation_by_id("g")


def test_api_key_from_environment(mocked, monkeypatch):
    monkeypatch.setenv("LEONARDO_API_KEY", "fake-env-key")
    client = Client(base_url=BASE)
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(key="fake-env-key", timeout=(10, 60)))
    client.get_generation_by_id("g")


@pytest.mark.parametrize("env", [None, "", "   "])
def test_no_api_key_at_all_is_a_leonardo_error_naming_the_variable(monkeypatch, env):
    if env is not None:
        monkeypatch.setenv("LEONARDO_API_KEY", env)
    with pytest.raises(LeonardoError, match="LEONARDO_API_KEY") as info:
        Client(base_url=BASE)
    # nothing was sent: a script whose try holds Client() and its create call is not told to look for a generation
    assert info.value.status_code is None and not may_have_run(info.value)


def test_api_key_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError):
        Client(api_key=12345, base_url=BASE)  # type: ignore[arg-type]


def test_surrounding_spaces_of_the_key_are_not_sent(mocked):
    client = Client(api_key="  fake-spaced-key ", base_url=BASE)
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(key="fake-spaced-key", timeout=(10, 60)))
    client.get_generation_by_id("g")


def test_base_url_from_argument_then_environment_then_default(monkeypatch):
    assert Client(api_key=API_KEY).base_url == DEFAULT_BASE_URL == "https://cloud.leonardo.ai/api/rest/v1"
    monkeypatch.setenv("LEONARDO_BASE_URL", "https://env.example.test/v9/")
    assert Client(api_key=API_KEY).base_url == "https://env.example.test/v9"
    for blank in ("", " \n"):  # as `LEONARDO_BASE_URL= python ...`, or a .env's line: unset, as a blank key is
        monkeypatch.setenv("LEONARDO_BASE_URL", blank)
        assert Client(api_key=API_KEY).base_url == DEFAULT_BASE_URL  # " \n" was refused as "''"
    monkeypatch.setenv("LEONARDO_BASE_URL", "https://env.example.test/v9/")
    assert Client(api_key=API_KEY, base_url="https://arg.example.test/v1").base_url == "https://arg.example.test/v1"


def test_an_empty_base_url_is_refused_not_taken_for_the_public_api():
    # Code meant for a local URL sent the key to the real API; an empty LEONARDO_BASE_URL still counts as unset.
    with pytest.raises(ValueError, match="^base_url '' is not an http"):
        Client(api_key=API_KEY, base_url="")


def test_spaces_and_line_breaks_around_the_base_url_are_stripped(mocked, monkeypatch):
    assert Client(api_key=API_KEY, base_url=f"  {BASE}/ \n").base_url == BASE
    monkeypatch.setenv("LEONARDO_BASE_URL", "https://env.example.test/v9\n")
    client = Client(api_key=API_KEY)
    mocked.add("GET", "https://env.example.test/v9/generations/g", json={}, match=api_matchers(timeout=DEFAULT_TIMEOUT))
    client.get_generation_by_id("g")
    assert repr(client) == "Client(base_url='https://env.example.test/v9')"  # one line


@pytest.mark.parametrize("suffix", ["?x=1", "?", "#frag", "/?x=1#y", "/a b", "/a\nb"])
@pytest.mark.parametrize("source", ["argument", "environment"])
def test_base_url_with_a_query_fragment_or_inner_space_is_refused(monkeypatch, suffix, source):
    # They would make URLs such as ".../v1?x=1/generations/g".
    if source == "environment":
        monkeypatch.setenv("LEONARDO_BASE_URL", BASE + suffix)
    with pytest.raises(ValueError, match="LEONARDO_BASE_URL" if source == "environment" else "base_url") as info:
        Client(api_key=API_KEY, base_url=BASE + suffix if source == "argument" else None)
    assert "query string or fragment" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "option, value",
    [("user_agent", 5), ("base_url", 5), ("base_url", 0), ("base_url", False), ("session", "x"), ("session", object())],
)
def test_options_of_the_wrong_type_are_type_errors(option, value):
    with pytest.raises(TypeError, match=f"{option} must be a ") as info:
        Client(api_key=API_KEY, **{option: value})
    assert "NoneType" not in str(info.value)


@pytest.mark.parametrize("timeout, said", [
    ([10, 60], "timeout must be a number or a (connect, read) pair as a tuple, not list"),  # a pair from JSON
    ("60", "timeout must be a number or a (connect, read) pair as a tuple, not str"),
    ((10, "60"), "timeout's read must be a number, not str"),
])
def test_a_timeout_refused_says_that_a_connect_read_pair_is_taken(timeout: Any, said: str) -> None:
    # Each said "timeout must be a number, not list": one number, to a caller holding the pair the docs offer.
    with pytest.raises(TypeError, match=f"^{re.escape(said)}$"):
        Client(api_key=API_KEY, base_url=BASE, timeout=timeout)


@pytest.mark.parametrize("value, error", [("0.5", TypeError), (None, TypeError), (True, TypeError),
                                          (float("nan"), ValueError), (float("inf"), ValueError), (-0.5, ValueError)])
def test_invalid_backoff_factor_is_refused_at_construction(value, error):
    # "0.5" used to fail only in the middle of a retry; nan slept 15-30 s between retries.
    with pytest.raises(error, match="backoff_factor"):
        Client(api_key=API_KEY, base_url=BASE, backoff_factor=value)


def test_a_closed_client_raises_a_leonardo_error_and_sends_nothing(mocked):
    for client in (Client(api_key=API_KEY, base_url=BASE), Client(api_key=API_KEY, base_url=BASE, session=requests.Session())):
        with client:
            pass
        with pytest.raises(LeonardoError, match="Client was closed"):
            client.get_generation_by_id("g")
        with pytest.raises(LeonardoError, match="Client was closed"):
            client.download_image("https://cdn.example.test/x.png", "x.png")
        client.close()  # closing twice is harmless
    assert len(mocked.calls) == 0


def test_a_closed_client_saves_no_result(mocked, tmp_path):
    # An LCM result's files (data URLs, no request) were written after close(); a generation's folder was made.
    client = Client(api_key=API_KEY, base_url=BASE)
    client.close()
    lcm = {"lcmGenerationJob": {"imageDataUrl": ["data:image/jpeg;base64,AAAA"], "requestTimestamp": "1"}}
    image = {"id": "i-1", "url": "https://cdn.example.test/x.png"}
    for result in (lcm, {"id": "g-1", "status": "COMPLETE", "generated_images": [image]}):
        with pytest.raises(LeonardoError, match="Client was closed"):
            client.save_results(result, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() and len(mocked.calls) == 0


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no setitimer here")
@pytest.mark.parametrize("session", [None, "yours"])
def test_close_in_a_signal_handler_that_interrupted_a_call_or_a_wait_returns(mocked, session):
    """A handler that calls close() (to end a long wait) may interrupt its thread inside a call's ``with _calls``,
    a wait's hold of the closed event's lock, or a Client being made (on a session of yours, close() puts its
    adapters back under the same lock): close() waited for ever on a lock its own thread held."""
    client = Client(api_key=API_KEY, base_url=BASE, session=requests.Session() if session else None)

    def stuck(*_: Any) -> None:
        raise TimeoutError("close() in a signal handler waited on a lock its own thread holds")

    handlers = signal.signal(signal.SIGALRM, stuck), signal.signal(signal.SIGUSR1, lambda *_: client.close())
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        with client._calls, getattr(client.retry.closed, "_cond"), client_module._MOUNTING:  # as the thread held them
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(500):  # the handler runs in this thread, at the next check (sleep is one)
                if client.closed:
                    break
                time.sleep(0.01)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handlers[0]), signal.signal(signal.SIGUSR1, handlers[1])
    assert client.closed
    with pytest.raises(LeonardoError, match="Client was closed"):
        client.get_user_info()
    assert len(mocked.calls) == 0


def test_a_close_landing_in_another_close_s_release_returns_at_once(mocked, monkeypatch):
    # A signal handler's close() while the first close() lets the pools go (urllib3's locks held): it waited on them.
    client = Client(api_key=API_KEY, base_url=BASE)
    held, release = threading.Lock(), client._session.close

    def closing() -> None:
        if not held.acquire(timeout=5):  # as a lock the interrupted release holds
            raise TimeoutError("the second close() went on to release again")
        try:
            client.close()  # the handler's
            release()
        finally:
            held.release()

    monkeypatch.setattr(client._session, "close", closing)
    client.close()
    assert client.closed


def test_close_during_a_retry_wait_ends_it_and_sends_nothing_more(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.inject(status=429, retry_after=30, path="/generations", method="POST")  # the wait ran on for 30 s
    outcome: List[Any] = []
    call = threading.Thread(target=lambda: outcome.append(_raised(fake_client.create_generation, {"prompt": "x"})))
    call.start()
    deadline = time.monotonic() + 5
    while not fake.requests and time.monotonic() < deadline:  # the first POST answered 429
        time.sleep(0.01)
    time.sleep(0.1)
    fake_client.close()  # while it waits out the Retry-After
    call.join(5)
    assert outcome and isinstance(outcome[0], LeonardoError) and "the Client was closed" in str(outcome[0])
    assert [r.method for r in fake.requests] == ["POST"] and fake.generation_ids() == []  # it was sent, not billed
    # A POST is retried only when its try made nothing: it said "it may have been made (and billed)", status None.
    error = outcome[0]
    assert (error.status_code, error.retry_after, may_have_run(error)) == (429, 30.0, False)  # the 429's
    assert MAY_HAVE_BEEN_MADE not in str(error)


def test_close_in_a_429_wait_after_a_try_that_ran_still_may_have_run(fake: FakeLeonardo, fake_client: Client) -> None:
    # A DELETE that ran (answered 503), then a 429, then close(): the 429 was the error's status, read as a refusal.
    generation = fake_client.wait_for_generation(fake_client.create_generation({"prompt": "x"}))["id"]
    fake.inject(status=503, after=True, path="/generations/*", method="DELETE")
    fake.inject(status=429, retry_after=30, path="/generations/*", method="DELETE")
    closer = threading.Timer(1.0, fake_client.close)  # the first retry is at once, the second waits out the 429
    closer.start()
    with pytest.raises(LeonardoError, match="the Client was closed") as caught:
        fake_client.delete_generation_by_id(generation)
    closer.join()
    assert fake.generation_ids() == [] and (caught.value.status_code, may_have_run(caught.value)) == (None, True)


def test_close_during_the_backoff_after_a_connection_never_made_says_nothing_was_made() -> None:
    # Connections refused (retried: none reached the server), then close() in the 15-30 s backoff: it said "it may
    # have been made (and billed)".
    client = Client(api_key=API_KEY, base_url=refused_url() + "/api/rest/v1", backoff_factor=30)
    closer = threading.Timer(0.3, client.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(LeonardoError, match="the Client was closed") as caught:
        client.create_generation({"prompt": "x"})
    assert time.monotonic() - started < 10  # not the backoff
    closer.join()
    assert (caught.value.status_code, may_have_run(caught.value)) == (None, False)
    assert MAY_HAVE_BEEN_MADE not in str(caught.value)


def test_close_after_a_get_s_resend_was_decided_sends_it_no_more(
    fake: FakeLeonardo, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A GET whose body broke off, then close() (another thread's) once the backoff before sending it again ended.
    decide = client_module.resend_after_body

    def then_closed(*args: Any) -> Any:
        state = decide(*args)
        fake_client.close()
        return state

    monkeypatch.setattr(client_module, "resend_after_body", then_closed)
    fake.inject(truncate=True, times=1, path="/me")
    with pytest.raises(LeonardoError, match="this Client was closed"):
        fake_client.get_user_info()
    assert [r.path for r in fake.requests] == ["/me"]  # it was sent again on a closed client


def test_close_while_threads_call_leaves_no_connection_open(fake: FakeLeonardo) -> None:
    # A call under way when close() ran opened a pool again, and nothing closed it: sockets in CLOSE_WAIT.
    for _ in range(5):
        client = Client(api_key=fake.api_key, base_url=fake.base_url, pool_maxsize=2)
        deadline = time.monotonic() + 5

        def call_until_closed() -> None:
            while not client.closed and time.monotonic() < deadline:
                _raised(client.get_user_info)

        callers = [threading.Thread(target=call_until_closed) for _ in range(12)]
        for caller in callers:
            caller.start()
        time.sleep(0.1)
        client.close()
        for caller in callers:
            caller.join(10)
        pools = [adapter.poolmanager.pools for adapter in client._session.adapters.values()]
        assert [len(p) for p in pools] == [0] * len(pools)


def test_close_closes_a_pool_a_retried_call_keeps_alive(fake: FakeLeonardo) -> None:
    # urllib3 2's clear() leaves a pool's sockets to its finalizer, and a retried call's traceback (a cycle back to
    # the pool) kept the pool alive: its connection stayed open, after close(), until a garbage collection.
    gc.disable()
    try:
        client = Client(api_key=fake.api_key, base_url=fake.base_url, backoff_factor=0.01)
        fake.inject(path="/me", drop=True, times=1)
        client.get_user_info()  # dropped, then retried
        managers = [adapter.poolmanager for adapter in set(client._session.adapters.values())]
        pools = [weakref.ref(manager.pools[key]) for manager in managers for key in manager.pools.keys()]
        assert pools
        client.close()
        assert all(pool() is None or pool().pool is None for pool in pools)  # each gone, or closed
    finally:
        gc.enable()


def _raised(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:
        return exc


def test_calls_go_to_the_configured_base_url(mocked, monkeypatch):
    monkeypatch.setenv("LEONARDO_BASE_URL", "https://env.example.test/v9/")
    mocked.add("GET", "https://env.example.test/v9/generations/g", json={"from": "env"}, match=api_matchers(timeout=DEFAULT_TIMEOUT))
    assert Client(api_key=API_KEY).get_generation_by_id("g") == {"from": "env"}


def test_default_base_url_is_the_public_api(mocked):
    mocked.add(
        "GET", "https://cloud.leonardo.ai/api/rest/v1/generations/g", json={"from": "default"}, match=api_matchers(timeout=DEFAULT_TIMEOUT)
    )
    assert Client(api_key=API_KEY).get_generation_by_id("g") == {"from": "default"}


def test_default_timeout_is_sent_on_every_call(mocked):
    client = Client(api_key=API_KEY, base_url=BASE)
    assert client.timeout == (10, 60)
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(timeout=(10, 60)))
    mocked.add("POST", BASE + "/generations", json={}, match=api_matchers({"prompt": "p"}, timeout=(10, 60)))
    client.get_generation_by_id("g")
    client.create_generation(CreateGenerationRequest("p"))


@pytest.mark.parametrize("timeout", [5, 2.5, (1, 2), (0.5, 30.0)])
def test_valid_timeouts_are_passed_as_given(mocked, timeout):
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(timeout=timeout))
    Client(api_key=API_KEY, base_url=BASE, timeout=timeout).get_generation_by_id("g")


# A value of the wrong type is a TypeError, a number out of range a ValueError.
@pytest.mark.parametrize(
    "timeout, error",
    [(0, ValueError), (-1, ValueError), ((5,), ValueError), ((1, 2, 3), ValueError), ((0, 5), ValueError),
     (float("nan"), ValueError), (float("inf"), ValueError), ((1, float("inf")), ValueError), (1e12, ValueError),
     (None, TypeError), ("10", TypeError), (True, TypeError), ((5, None), TypeError), ([10, 60], TypeError)],
)
def test_invalid_timeouts_are_refused(timeout, error):
    with pytest.raises(error, match="timeout"):
        Client(api_key=API_KEY, base_url=BASE, timeout=timeout)
    client = Client(api_key=API_KEY, base_url=BASE)
    with pytest.raises(error, match="timeout"):
        client.timeout = timeout  # as the CLI's --read-timeout sets it: checked there, not at the next call
    assert client.timeout == (10, 60)


@pytest.mark.parametrize("value, error", [(-1, ValueError), (10**6, ValueError), (1.5, TypeError), ("3", TypeError),
                                          (True, TypeError), (None, TypeError)])
def test_invalid_max_retries_refused(value, error):
    with pytest.raises(error, match="max_retries"):
        Client(api_key=API_KEY, base_url=BASE, max_retries=value)


@pytest.mark.parametrize("value, error", [(0, ValueError), (-1, ValueError), (10**6, ValueError), (2.0, TypeError),
                                          (True, TypeError)])
def test_invalid_pool_maxsize_refused(value, error):
    # An absurd pool: urllib3 would fill a queue of that many slots at construction.
    with pytest.raises(error, match="pool_maxsize"):
        Client(api_key=API_KEY, base_url=BASE, pool_maxsize=value)


def test_user_agent_is_appended(mocked):
    client = Client(api_key=API_KEY, base_url=BASE, user_agent="my-app/1.2")
    mocked.add(
        "GET",
        BASE + "/generations/g",
        json={},
        match=api_matchers(timeout=DEFAULT_TIMEOUT, agent=f"{AGENT} my-app/1.2"),
    )
    client.get_generation_by_id("g")


class RecordingSession(requests.Session):
    """A caller's own session that remembers what went through it and whether it was closed."""

    def __init__(self) -> None:
        super().__init__()
        self.requests_seen: List[str] = []
        self.closed = 0

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests_seen.append(f"{method} {url}")
        return super().request(method, url, *args, **kwargs)

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_given_session_is_used_and_not_closed(mocked):
    session = RecordingSession()
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    mocked.add("GET", BASE + "/generations/g", json={"via": "session"}, match=api_matchers(timeout=(10, 60)))
    assert client.get_generation_by_id("g") == {"via": "session"}
    assert session.requests_seen == ["GET " + BASE + "/generations/g"]
    # The retry adapter is mounted on the caller's session for the API only.
    assert session.get_adapter(BASE + "/generations/g").max_retries is client.retry
    client.close()
    assert list(session.adapters) == ["https://", "http://"]  # its own again: the closed rule refused its requests
    mine = requests.adapters.HTTPAdapter()
    session.mount(BASE + "/", mine)  # the caller's own adapter for the API root
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    assert session.get_adapter(BASE + "/me") is not mine
    client.close()
    assert session.get_adapter(BASE + "/me") is mine  # put back (it was dropped)
    with Client(api_key=API_KEY, base_url=BASE, session=session):
        pass
    assert session.closed == 0


def test_a_session_serves_one_open_client_at_a_time():
    session = requests.Session()
    first = Client(api_key=API_KEY, base_url=BASE, session=session, max_retries=3)
    with pytest.raises(ValueError, match="that session already serves an open Client"):
        Client(api_key=API_KEY, base_url=BASE, session=session, max_retries=0)
    assert session.get_adapter(BASE + "/me").max_retries is first.retry  # its rule kept
    Client(api_key=API_KEY, base_url="http://127.0.0.1:9/api/rest/v1", session=session).close()  # another API root
    with pytest.raises(ValueError, match="already serves an open Client"):  # the same root, in other letters
        Client(api_key=API_KEY, base_url=BASE.replace("https://leonardo", "HTTPS://LEONARDO"), session=session)
    first.close()
    second = Client(api_key=API_KEY, base_url=BASE, session=session)
    del second  # never closed: once collected, it holds the session no more
    gc.collect()
    Client(api_key=API_KEY, base_url=BASE, session=session).close()


def test_a_client_made_on_a_session_while_another_closes_puts_back_the_sessions_own_adapter():
    session, mine = requests.Session(), requests.adapters.HTTPAdapter()
    session.mount(BASE + "/", mine)
    first = Client(api_key=API_KEY, base_url=BASE, session=session)
    first.retry.closed.set()  # its close() under way in another thread, its adapter not yet taken off
    second = Client(api_key=API_KEY, base_url=BASE, session=session)
    first.close()
    second.close()
    assert session.get_adapter(BASE + "/me") is mine  # was the first Client's, whose closed rule refused every retry


def test_a_call_under_way_at_close_goes_through_the_clients_rule_not_your_sessions(mocked):
    # close() from another thread as the call was about to be sent: your session's adapter, put back at
    # once, sent it, under your retry rule (which may send a create call again) and without the POST rule.
    session, mine = requests.Session(), requests.adapters.HTTPAdapter(max_retries=2)
    session.mount(BASE + "/", mine)
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    send, used = session.send, []

    def closing_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        client.close()
        used.append(session.get_adapter(str(request.url)))
        return send(request, **kwargs)

    session.send = closing_send  # type: ignore[method-assign]
    mocked.add("GET", BASE + "/me", json={"user_details": []}, match=api_matchers(timeout=DEFAULT_TIMEOUT))
    assert client.get_user_info() == {"user_details": []}  # started before close(): it ends
    assert used and used[0] is not mine and used[0].max_retries is client.retry
    assert session.get_adapter(BASE + "/me") is mine  # put back as the call ended
    with pytest.raises(LeonardoError, match="closed"):
        client.get_user_info()


def test_own_session_is_closed_by_close_and_by_the_context_manager(monkeypatch):
    closed: List[str] = []
    real_close = requests.Session.close

    def recording_close(session: requests.Session) -> None:
        closed.append(label)
        real_close(session)

    monkeypatch.setattr(requests.Session, "close", recording_close)
    label = "close"
    client = Client(api_key=API_KEY, base_url=BASE)
    client.close()
    assert closed == ["close"]

    label = "exit"
    with Client(api_key=API_KEY, base_url=BASE) as managed:
        assert isinstance(managed, Client)
        assert closed == ["close"]
    assert closed == ["close", "exit"]

    label = "exit on error"
    with pytest.raises(RuntimeError):
        with Client(api_key=API_KEY, base_url=BASE):
            raise RuntimeError("boom")
    assert closed == ["close", "exit", "exit on error"]


def test_repr_shows_base_url_and_not_the_key():
    client = Client(api_key=API_KEY, base_url=BASE)
    assert repr(client) == f"Client(base_url={BASE!r})"
    assert API_KEY not in repr(client) and API_KEY not in str(client) and API_KEY not in repr(client.retry)


def test_a_client_is_neither_copied_nor_pickled_and_says_what_to_do(fake: FakeLeonardo, fake_client: Client) -> None:
    # A copy shared the session and the closed state (closing it closed this one); pickle and deepcopy failed on a
    # lock ("cannot pickle '_thread.RLock' object"), not saying what to do (a spawn pool's worker given a Client).
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps, partial(pickle.dumps, protocol=0)):
        with pytest.raises(TypeError, match="^a Client cannot be copied or pickled .*: create one in each process"):
            attempt(fake_client)
    assert fake_client.get_user_info() and not fake_client.closed


def test_client_is_reused_across_calls_with_one_session(mocked):
    session = RecordingSession()
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    for i in range(3):
        mocked.add("GET", BASE + f"/generations/g{i}", json={"i": i}, match=api_matchers(timeout=DEFAULT_TIMEOUT))
    results: List[Optional[Dict[str, Any]]] = [client.get_generation_by_id(f"g{i}") for i in range(3)]
    assert results == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert len(session.requests_seen) == 3


# === end to end: the lifecycle of each kind of generation, against FakeLeonardo ===

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POLL_DEADLINE = 5.0  # seconds; the fake completes after completion_delay (0.2 s here)
COMPLETION_DELAY = 0.2
MODEL_ID = "b24e16ff-06e3-43eb-8d33-4416c2d75876"
MODEL_ASSET_ID = "3d-asset-0001"


# -- helpers ----------------------------------------------------------------------------


def poll(fetch: Callable[[], Dict[str, Any]], key: str) -> List[Dict[str, Any]]:
    """Call fetch() until body[key].status is no longer PENDING; return every body[key] seen.

    Bounded: fails the test after POLL_DEADLINE seconds.
    """
    seen: List[Dict[str, Any]] = []
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        found = fetch()[key]
        assert found is not None, "the fake lost the job"
        seen.append(found)
        if found["status"] != "PENDING":
            return seen
        assert time.monotonic() < deadline, "still PENDING after %ss" % POLL_DEADLINE
        time.sleep(0.05)


def png_size(data: bytes) -> Tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    # The IHDR chunk's CRC proves the bytes are a real PNG header, not just a signature.
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == crc
    return int(width), int(height)


def tiny_png_data_url() -> str:
    """A valid 1x1 RGB PNG as a data URL (an input image for the LCM operations)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30"))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fetch_file(url: str) -> requests.Response:
    """Fetch a CDN URL of the fake with plain requests (no key, bounded)."""
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response


def api_calls(fake: FakeLeonardo, method: str, prefix: str) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


def hold_the_slot(fake: FakeLeonardo, client: Client) -> str:
    """Fill the fake's one slot for 60 s: a job created next waits PENDING, however slow the machine, until the
    generation returned (its id) is deleted; then it runs COMPLETION_DELAY."""
    fake.concurrency_slots, fake.completion_delay = 1, 60.0
    holder = client.create_generation({"prompt": "holds the slot"})["sdGenerationJob"]["generationId"]
    fake.completion_delay = COMPLETION_DELAY  # for the jobs created from now on
    return str(holder)


def full_request() -> CreateGenerationRequest:
    """A CreateGenerationRequest using many fields, camelCase and snake_case, and nested inputs."""
    return CreateGenerationRequest(
        prompt="a lighthouse at dusk, oil painting",
        negative_prompt="blurry",
        model_id=MODEL_ID,
        width=512,
        height=768,
        num_images=2,
        num_inference_steps=20,
        guidance_scale=7.5,
        seed=12345,
        preset_style=PresetStyle.CINEMATIC,
        scheduler=Scheduler.EULER_DISCRETE,
        sd_version=SdVersion.SDXL_1_0,
        alchemy=False,
        photo_real=False,
        prompt_magic=False,
        public=False,
        tiling=False,
        high_contrast=True,
        image_prompts=["img-prompt-1"],
        image_prompt_weight=0.4,
        init_strength=0.3,
        elements=[ElementInput(ak_uuid="element-ak-0001", weight=0.5), ElementInput(ak_uuid="element-ak-0002")],
        controlnets=[
            ControlnetInput(
                init_image_id="init-image-0001",
                init_image_type=InitImageType.UPLOADED,
                preprocessor_id=67,
                weight=0.6,
                strength_type=StrengthType.MID,
            )
        ],
        user_elements=[UserElementInput(user_lora_id=42, weight=0.8)],
    )


# -- image generations --------------------------------------------------------------------


def test_image_generation_lifecycle(fake: FakeLeonardo, fake_client: Client) -> None:
    holder = hold_the_slot(fake, fake_client)
    job = fake_client.create_generation(full_request())
    generation_id = job["sdGenerationJob"]["generationId"]
    assert isinstance(generation_id, str) and generation_id

    # The wire body: every key the spec's, None fields omitted, nested inputs renamed.
    sent = api_calls(fake, "POST", "/generations")[-1].json
    assert sent["prompt"] == "a lighthouse at dusk, oil painting"
    assert sent["negative_prompt"] == "blurry" and sent["modelId"] == MODEL_ID
    assert sent["sd_version"] == "SDXL_1_0" and sent["presetStyle"] == "CINEMATIC"
    assert sent["elements"] == [{"akUUID": "element-ak-0001", "weight": 0.5}, {"akUUID": "element-ak-0002"}]
    assert sent["controlnets"] == [
        {"initImageId": "init-image-0001", "initImageType": "UPLOADED", "preprocessorId": 67, "weight": 0.6,
         "strengthType": "Mid"}
    ]
    assert sent["userElements"] == [{"userLoraId": 42, "weight": 0.8}]
    assert None not in sent.values()
    assert "photo_real" not in sent and "photoReal" in sent

    # Poll with a bounded loop: PENDING first, then COMPLETE (COMPLETION_DELAY after its slot is free).
    pending = fake_client.get_generation_by_id(generation_id)["generations_by_pk"]
    assert pending["status"] == "PENDING" and pending["generated_images"] == []
    fake_client.delete_generation_by_id(holder)
    seen = poll(lambda: fake_client.get_generation_by_id(generation_id), "generations_by_pk")
    done = seen[-1]
    assert done["status"] == "COMPLETE"
    assert done["id"] == generation_id
    assert done["prompt"] == "a lighthouse at dusk, oil painting"
    assert (done["imageWidth"], done["imageHeight"], done["seed"]) == (512, 768, 12345)
    assert [e["lora"]["akUUID"] for e in done["generation_elements"]] == ["element-ak-0001", "element-ak-0002"]
    images = done["generated_images"]
    assert len(images) == 2
    assert len({image["id"] for image in images}) == 2
    for image in images:
        assert image["url"].startswith(fake.root_url + "/cdn/users/")
        assert generation_id in image["url"]
        response = fetch_file(image["url"])
        assert response.headers["Content-Type"] == "image/png"
        assert png_size(response.content) == (171, 256)  # 512x768 scaled to 256 on the long side
        assert "Authorization" not in api_calls(fake, "GET", "/cdn/")[-1].headers

    # Delete; then the API answers null for get and for a second delete (not a 404).
    assert fake_client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": {"id": generation_id}}
    assert fake_client.get_generation_by_id(generation_id) == {"generations_by_pk": None}
    assert fake_client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": None}
    assert generation_id not in fake.generation_ids()

    # A plain mapping is sent as given, keys the dataclass does not name included, and accepted.
    mapping = {"prompt": "as given", "modelId": MODEL_ID, "num_images": 1, "enhancePrompt": False,
               "elements": [{"akUUID": "element-ak-0003", "weight": 1}]}
    mapped_id = fake_client.create_generation(mapping)["sdGenerationJob"]["generationId"]
    assert api_calls(fake, "POST", "/generations")[-1].json == mapping
    assert api_calls(fake, "POST", "/generations")[-1].headers["Content-Type"] == "application/json"
    assert fake_client.get_generation_by_id(mapped_id)["generations_by_pk"]["modelId"] == MODEL_ID

    # Every API call carried the key and asked for JSON.
    for recorded in fake.requests:
        if not recorded.path.startswith("/cdn/"):
            assert recorded.headers["Authorization"] == "Bearer " + fake.api_key
            assert recorded.headers["Accept"] == "application/json"
            assert recorded.headers["User-Agent"].startswith("leonardo-client/")


def test_list_generations_by_user_paginates_newest_first(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 0.0
    ids = [
        fake_client.create_generation(CreateGenerationRequest(prompt="picture %d" % n, num_images=1, width=512, height=512))[
            "sdGenerationJob"
        ]["generationId"]
        for n in range(5)
    ]
    newest_first = ids[::-1]

    everything = fake_client.get_generations_by_user_id(fake.user_id)["generations"]
    assert [g["id"] for g in everything] == newest_first  # API default limit is 10
    assert api_calls(fake, "GET", "/generations/user/")[-1].query == {}  # nothing sent when not given

    pages = []
    for offset in range(0, 6, 2):
        page = fake_client.get_generations_by_user_id(fake.user_id, limit=2, offset=offset)["generations"]
        assert api_calls(fake, "GET", "/generations/user/")[-1].query == {"limit": "2", "offset": str(offset)}
        pages.append([g["id"] for g in page])
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert fake_client.get_generations_by_user_id(fake.user_id, limit=2, offset=10) == {"generations": []}
    assert [g["id"] for g in fake_client.get_generations_by_user_id(fake.user_id, limit=0)["generations"]] == []

    first = everything[-1]
    assert first["status"] == "COMPLETE" and first["prompt"] == "picture 0"
    assert len(first["generated_images"]) == 1

    # Another user's list is empty; the id is sent percent-encoded as one path segment.
    assert fake_client.get_generations_by_user_id("someone/else") == {"generations": []}
    assert api_calls(fake, "GET", "/generations/user/")[-1].path == "/generations/user/someone%2Felse"

    fake_client.delete_generation_by_id(ids[2])
    assert [g["id"] for g in fake_client.get_generations_by_user_id(fake.user_id, limit=10)["generations"]] == [
        ids[4], ids[3], ids[1], ids[0]
    ]


# -- motion (SVD) -----------------------------------------------------------------------------


def test_motion_svd_lifecycle(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.completion_delay = 0.0
    source_id = fake_client.create_generation({"prompt": "a waterfall", "num_images": 1, "width": 512, "height": 512})[
        "sdGenerationJob"
    ]["generationId"]
    image = fake_client.get_generation_by_id(source_id)["generations_by_pk"]["generated_images"][0]

    fake.completion_delay = COMPLETION_DELAY
    job = fake_client.create_svd_motion_generation(
        CreateSvdMotionGenerationRequest(image_id=image["id"], motion_strength=5, is_public=False)
    )
    motion_id = job["motionSvdGenerationJob"]["generationId"]
    assert motion_id != source_id
    assert api_calls(fake, "POST", "/generations-motion-svd")[-1].json == {
        "imageId": image["id"], "motionStrength": 5, "isPublic": False
    }

    seen = poll(lambda: fake_client.get_generation_by_id(motion_id), "generations_by_pk")
    assert seen[-1]["status"] == "COMPLETE"
    (video,) = seen[-1]["generated_images"]
    assert video["motion"] is True and video["motionStrength"] == 5
    assert video["motionMP4URL"].startswith(fake.root_url + "/cdn/") and video["motionMP4URL"].endswith(".mp4")
    response = fetch_file(video["motionMP4URL"])
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    assert fetch_file(video["url"]).content[:8] == PNG_SIGNATURE  # the still

    # The motion generation is listed with the others and deleted the same way.
    listed = fake_client.get_generations_by_user_id(fake.user_id, limit=1)["generations"]
    assert listed[0]["id"] == motion_id
    assert fake_client.delete_generation_by_id(motion_id)["delete_generations_by_pk"] == {"id": motion_id}

    # A generation id where an image id is expected: the API's "Service Error", as LeonardoError.
    with pytest.raises(LeonardoError) as caught:
        fake_client.create_svd_motion_generation(CreateSvdMotionGenerationRequest(image_id=source_id))
    assert caught.value.status_code == 400 and caught.value.message == "Service Error"


# -- texture (legacy) -------------------------------------------------------------------------


def test_texture_generation_lifecycle(fake: FakeLeonardo, fake_client: Client) -> None:
    holder = hold_the_slot(fake, fake_client)
    job = fake_client.create_texture_generation(
        CreateTextureGenerationRequest(
            prompt="weathered bronze",
            model_asset_id=MODEL_ASSET_ID,
            negative_prompt="rust",
            seed=7,
            preview=False,
            front_rotation_offset=0,
            preview_direction="front",
            sd_version="v1_5",
        )
    )
    texture_id = job["textureGenerationJob"]["id"]
    sent = api_calls(fake, "POST", "/generations-texture")[-1].json
    assert sent["modelAssetId"] == MODEL_ASSET_ID and sent["negative_prompt"] == "rust"
    assert sent["front_rotation_offset"] == 0

    pending = fake_client.get_texture_generation_by_id(texture_id)["model_asset_texture_generations_by_pk"]
    assert pending["status"] == "PENDING" and pending["model_asset_texture_images"] == []
    fake_client.delete_generation_by_id(holder)
    seen = poll(lambda: fake_client.get_texture_generation_by_id(texture_id), "model_asset_texture_generations_by_pk")
    done = seen[-1]
    assert done["status"] == "COMPLETE" and done["id"] == texture_id and done["seed"] == 7
    textures = done["model_asset_texture_images"]
    assert sorted(t["type"] for t in textures) == ["ALBEDO", "DISPLACEMENT", "NORMAL", "ROUGHNESS"]
    for texture in textures:
        assert png_size(fetch_file(texture["url"]).content) == (128, 128)

    # limit/offset on get_texture_generation_by_id go in the query string.
    fake_client.get_texture_generation_by_id(texture_id, limit=5, offset=0)
    assert api_calls(fake, "GET", "/generations-texture/")[-1].query == {"limit": "5", "offset": "0"}

    # List by model id, newest first, paginated.
    fake.completion_delay = 0.0
    more = [
        fake_client.create_texture_generation({"prompt": "texture %d" % n, "modelAssetId": MODEL_ASSET_ID})[
            "textureGenerationJob"
        ]["id"]
        for n in range(2)
    ]
    fake_client.create_texture_generation({"prompt": "elsewhere", "modelAssetId": "another-asset"})
    newest_first = [more[1], more[0], texture_id]
    listed = fake_client.get_texture_generations_by_model_id(MODEL_ASSET_ID)["model_asset_texture_generations"]
    assert [t["id"] for t in listed] == newest_first
    page1 = fake_client.get_texture_generations_by_model_id(MODEL_ASSET_ID, limit=2, offset=0)
    assert api_calls(fake, "GET", "/generations-texture/model/")[-1].query == {"limit": "2", "offset": "0"}
    page2 = fake_client.get_texture_generations_by_model_id(MODEL_ASSET_ID, limit=2, offset=2)
    assert [t["id"] for t in page1["model_asset_texture_generations"]] == newest_first[:2]
    assert [t["id"] for t in page2["model_asset_texture_generations"]] == newest_first[2:]
    assert fake_client.get_texture_generations_by_model_id("no-such-asset") == {"model_asset_texture_generations": []}

    # Delete; then null for get and for a second delete.
    assert fake_client.delete_texture_generation_by_id(texture_id) == {
        "delete_model_asset_texture_generations_by_pk": {"id": texture_id}
    }
    assert fake_client.get_texture_generation_by_id(texture_id) == {"model_asset_texture_generations_by_pk": None}
    assert fake_client.delete_texture_generation_by_id(texture_id) == {"delete_model_asset_texture_generations_by_pk": None}
    listed = fake_client.get_texture_generations_by_model_id(MODEL_ASSET_ID)["model_asset_texture_generations"]
    assert [t["id"] for t in listed] == newest_first[:2]


# -- the four synchronous LCM operations ----------------------------------------------------


def _lcm_size(result: Dict[str, Any]) -> Tuple[int, int]:
    (data_url,) = result["lcmGenerationJob"]["imageDataUrl"]
    header, _, data = data_url.partition(",")
    assert header == "data:image/jpeg;base64"
    return parse_jpeg(base64.b64decode(data, validate=True))[:2]


def test_lcm_operations(fake: FakeLeonardo, fake_client: Client) -> None:
    image = tiny_png_data_url()
    generated = fake_client.create_lcm_generation(
        CreateLcmGenerationRequest(
            image_data_url=image, prompt="a cat", request_timestamp="1700000000000", guidance=7.0, strength=0.65,
            style=LcmStyle.ANIME, steps=8, width=512, height=640, seed=1,
        )
    )
    assert _lcm_size((generated)) == (205, 256)  # 512x640 scaled to 256 on the long side
    assert generated["lcmGenerationJob"]["requestTimestamp"] == "1700000000000"
    sent = api_calls(fake, "POST", "/generations-lcm")[-1].json
    assert sent == {
        "imageDataUrl": image, "prompt": "a cat", "requestTimestamp": "1700000000000", "guidance": 7.0,
        "strength": 0.65, "style": "ANIME", "steps": 8, "width": 512, "height": 640, "seed": 1,
    }

    refined = fake_client.perform_instant_refine(LcmInstantRefineRequest(image_data_url=image, prompt="a cat, refined"))
    assert _lcm_size((refined)) == (256, 256)  # API default 512x512

    inpainted = fake_client.perform_inpainting_lcm(
        LcmInpaintingRequest(image_data_url=image, mask_data_url=image, prompt="a hat", width=1024, height=1024)
    )
    assert _lcm_size((inpainted)) == (256, 256)
    assert api_calls(fake, "POST", "/lcm-inpainting")[-1].json["maskDataUrl"] == image

    upscaled = fake_client.perform_alchemy_upscale_lcm(
        LcmUpscaleRequest(image_data_url=image, prompt="a cat", refine_creative=True, refine_strength=0.5)
    )
    _lcm_size((upscaled))
    job = upscaled["lcmGenerationJob"]
    assert len(job["generationId"]) == 1 and len(job["variationId"]) == 1 and job["generatedImageId"]
    assert api_calls(fake, "POST", "/lcm-upscale")[-1].json["refineCreative"] is True

    # Synchronous: four POSTs and nothing else.
    assert [r.method for r in fake.requests] == ["POST"] * 4

    # An input that is not a data URL: the API's 400, as LeonardoError.
    with pytest.raises(LeonardoError) as caught:
        fake_client.create_lcm_generation(CreateLcmGenerationRequest(image_data_url="https://example.invalid/x.png",
                                                                prompt="p"))
    assert caught.value.status_code == 400
    assert "data URL" in caught.value.message
    assert caught.value.body["code"] == "bad-request"


# === end to end: keep-alive and threads, counted by the server (FakeLeonardo.connections_opened) ===

ROUNDS = 8  # of calls_of_every_kind, one after another
CALLS_PER_THREAD = 25
DEFAULT_POOL_MAXSIZE = 10


def calls_of_every_kind(client: Client, fake: FakeLeonardo, tag: str) -> int:
    """Create, get, list, list textures, an error answer, wait for and delete: 7 API requests."""
    job = client.create_generation(CreateGenerationRequest(prompt=f"reuse {tag}", num_images=1, width=512, height=512))
    ident = job["sdGenerationJob"]["generationId"]
    assert client.get_generation_by_id(ident)["generations_by_pk"]["id"] == ident
    assert client.get_generations_by_user_id(fake.user_id, limit=1)["generations"]
    client.get_texture_generations_by_model_id("asset", limit=1, offset=0)
    with pytest.raises(LeonardoError):  # an error answer keeps the connection too
        client.create_generation({"prompt": "x", "bogusKey": 1})
    assert client.wait_for_generation(ident, timeout=10)["status"] == "COMPLETE"  # complete at once: one GET
    assert client.delete_generation_by_id(ident) == {"delete_generations_by_pk": {"id": ident}}
    return 7


def test_sequential_calls_of_every_kind_use_one_connection(
    fake: FakeLeonardo, fake_client: Client, urllib3_warnings: Callable[[], List[str]]
) -> None:
    sent = sum(calls_of_every_kind(fake_client, fake, str(n)) for n in range(ROUNDS))
    assert len(fake.requests) == sent == 7 * ROUNDS  # every call really went over the wire
    assert fake.connections_opened == 1
    assert urllib3_warnings() == []


def exit_status(child: int) -> int:
    """The wait status of a forked child, within 20 s (else killed, and the test fails)."""
    for _ in range(400):
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(child, 9)
    os.waitpid(child, 0)
    pytest.fail("the forked process hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
@pytest.mark.parametrize("session", ["the client's", "yours", "yours, with your adapter"])
def test_a_forked_process_opens_its_own_connection(fake: FakeLeonardo, session: str) -> None:
    yours = requests.Session() if session != "the client's" else None
    fake_client = Client(api_key=fake.api_key, base_url=fake.base_url, session=yours, timeout=(2, 10))
    if yours is not None and session.endswith("your adapter"):  # the README's policy of your own
        yours.mount(fake_client.base_url + "/", requests.adapters.HTTPAdapter(max_retries=2))
    fake_client.get_user_info()  # a connection pooled before the fork
    child = os.fork()
    if child == 0:  # the child: two calls, then out at once (no pytest teardown here)
        try:
            fake_client.get_user_info()
            fake_client.get_user_info()  # on the child's new connection: only the first call lets go of the pools
        finally:
            os._exit(0)
    assert exit_status(child) == 0
    fake_client.get_user_info()
    fake_client.close()
    # Shared, the parent's connection would carry both processes' requests and mix their answers.
    assert (len(fake.requests), fake.connections_opened) == (4, 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_the_threads_of_a_forked_process_never_send_on_the_parents_connections(
    fake: FakeLeonardo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first call noted the new process, then let go of the parent's pools: a second thread arriving
    # between the two sent on a connection the parent also used, and the processes got each other's answers.
    connect, request = urllib3.connection.HTTPConnection.connect, urllib3.connection.HTTPConnection.request
    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", lambda conn: (connect(conn), setattr(
        conn, "opened_by", os.getpid()))[0])
    sent_on: List[int] = []
    monkeypatch.setattr(urllib3.connection.HTTPConnection, "request", lambda conn, *args, **kwargs: (request(
        conn, *args, **kwargs), sent_on.append(getattr(conn, "opened_by", 0)))[0])  # connected by request(), if new
    fake_client = Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10))
    fake_client.get_user_info()  # a connection pooled before the fork
    child = os.fork()
    if child == 0:  # the child: out at once (no pytest teardown here)
        code = 1
        try:
            sent_on.clear()  # the parent's
            close = fake_client._session.close
            fake_client._session.close = lambda: (time.sleep(0.3), close())[1]  # type: ignore[method-assign]
            threads = [threading.Thread(target=fake_client.get_user_info) for _ in range(2)]
            for thread in threads:  # the second one comes while the first lets go of the parent's pools
                thread.start()
                time.sleep(0.1)
            for thread in threads:
                thread.join(10)
            code = 0 if sent_on == [os.getpid()] * 2 else 2
        finally:
            os._exit(code)
    assert exit_status(child) == 0  # 2: a request of the child went on the parent's connection
    fake_client.close()


class NoPools(requests.adapters.BaseAdapter):
    """An adapter with no urllib3 pool manager, as requests-file's or requests-unixsocket's."""

    def close(self) -> None:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_process_forked_while_another_thread_held_a_lock_of_the_client_does_not_hang(fake: FakeLeonardo) -> None:
    # A lock held at the fork is held for ever in the child: its first call (the Client's count of calls,
    # urllib3's pools, the cookie jar, the closed event's, held a moment by every wait and by close()) or a new
    # Client (the mounting lock, the log filter's) hung there.
    fake_client = Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10))
    fake_client._session.mount("file://", NoPools())  # passed over by the new locks (an error: those after it held)
    fake_client.get_user_info()  # a connection pooled before the fork
    pools = fake_client._session.adapters[fake.base_url + "/"].poolmanager.pools
    locks = [fake_client._calls, client_module._MOUNTING, _KeyRedactingFilter.lock, fake_client._session.cookies._cookies_lock,
             pools.lock, *(pool.pool.mutex for pool in pools._container.values()), fake_client.retry.closed._cond]
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait(20)
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    child = os.fork()
    if child == 0:  # the child: out at once (no pytest teardown here)
        code = 1
        try:
            fake_client.get_user_info()
            with fake_client.retry.closed._cond:  # new, reentrant: as a wait a signal handler's close() interrupted
                fake_client.close()
            with client_module._MOUNTING:
                Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10), session=requests.Session()).close()
            code = 0
        finally:
            os._exit(code)
    release.set()
    holder.join()
    assert exit_status(child) == 0, "the forked process's calls failed"
    fake_client.close()
    assert fake.connections_opened == 2  # the child's own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_forked_child_of_a_client_closed_mid_call_lets_go_of_the_parents_pools(fake: FakeLeonardo) -> None:
    # Closed while a call was under way, the parent's pools wait for that call to end: it never does in the child,
    # whose close() (closed already) returned at once and kept its copies of the parent's connections open.
    fake_client = Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10))
    fake_client.get_user_info()
    pools = fake_client._session.adapters[fake.base_url + "/"].poolmanager.pools
    with fake_client._calls:
        fake_client._in_flight += 1  # as another thread's call
    fake_client.close()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            fake_client.close()
            code = 0 if len(pools) == 0 else 3
        finally:
            os._exit(code)
    assert exit_status(child) == 0, "the forked process kept the parent's pools"
    assert len(pools) == 1  # the parent's wait for its call
    with fake_client._calls:
        fake_client._in_flight -= 1
    fake_client._release()


def test_a_session_of_your_own_keeps_the_connection_alive_too(fake: FakeLeonardo) -> None:
    with requests.Session() as session:
        client = Client(api_key=fake.api_key, base_url=fake.base_url, session=session, timeout=(2, 10))
        for n in range(ROUNDS):
            calls_of_every_kind(client, fake, str(n))
        client.close()
    assert fake.connections_opened == 1


def mixed_calls(client: Client, fake: FakeLeonardo, created: Dict[str, List[str]], burst: int) -> Callable[[int], None]:
    """25 calls per thread: create, get, list, and a delete of its own generation now and then."""

    def work(n: int) -> None:
        mine: List[str] = []
        for call in range(CALLS_PER_THREAD):
            step = call % 5
            if step == 0:
                job = client.create_generation(
                    CreateGenerationRequest(prompt="thread %d call %d" % (n, call), num_images=1, width=512, height=512)
                )
                mine.append(job["sdGenerationJob"]["generationId"])
            elif step in (1, 3):
                found = client.get_generation_by_id(mine[-1])["generations_by_pk"]
                assert found["id"] == mine[-1] and found["prompt"].startswith("thread %d " % n)
            elif step == 2:
                listed = client.get_generations_by_user_id(fake.user_id, limit=5, offset=0)["generations"]
                assert 1 <= len(listed) <= 5
            elif len(mine) % 2 == 0:
                gone = mine.pop()
                assert client.delete_generation_by_id(gone) == {"delete_generations_by_pk": {"id": gone}}
            else:
                client.get_texture_generations_by_model_id("asset-%d" % n, limit=1)
        created["%d-%d" % (burst, n)] = mine

    return work


@pytest.mark.parametrize("pool_maxsize", [THREADS, None])  # None: the default (10)
def test_threads_share_one_client_within_the_pool(
    fake: FakeLeonardo,
    urllib3_warnings: Callable[[], List[str]],
    run_threads: Callable[[Callable[[int], None]], List[BaseException]],
    pool_maxsize: Optional[int],
) -> None:
    """8 threads, two bursts: no call fails or is doubled, no "Connection pool is full" warning, and
    never more connections than threads or pool_maxsize: later bursts reuse the pooled ones."""
    options: Dict[str, Any] = dict(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10))
    if pool_maxsize is not None:
        options["pool_maxsize"] = pool_maxsize
    created: Dict[str, List[str]] = {}
    with Client(**options) as client:
        for burst in range(2):
            assert run_threads(mixed_calls(client, fake, created, burst)) == []
        after_bursts = fake.connections_opened
        calls_of_every_kind(client, fake, "alone")  # a pooled connection is still there to reuse
    assert len(fake.requests) == 2 * THREADS * CALLS_PER_THREAD + 7
    assert 1 <= after_bursts <= min(THREADS, pool_maxsize or DEFAULT_POOL_MAXSIZE)
    assert fake.connections_opened == after_bursts
    assert not [w for w in urllib3_warnings() if "Connection pool is full" in w]
    assert urllib3_warnings() == []
    # Every thread's surviving generations exist, and nothing else does: no call was doubled.
    survivors: Set[str] = {gid for ids in created.values() for gid in ids}
    assert len(created) == 2 * THREADS
    assert set(fake.generation_ids()) == survivors
    creates = sum(1 for r in fake.requests if r.method == "POST" and r.path == "/generations")
    assert creates == 2 * THREADS * CALLS_PER_THREAD // 5 + 2  # + the create and the refused one of "alone"
