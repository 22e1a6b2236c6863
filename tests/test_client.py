"""Client: the 13 endpoint methods on the wire, and the constructor's options.

Every HTTP exchange is mocked with ``responses`` and strict matchers; nothing leaves the process.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
import requests
import responses
from responses import matchers

import leonardo_client
from leonardo_client import (
    DEFAULT_BASE_URL,
    Client,
    ControlnetInput,
    CreateGenerationRequest,
    CreateLcmGenerationRequest,
    CreateSvdMotionGenerationRequest,
    CreateTextureGenerationRequest,
    ElementInput,
    LcmInpaintingRequest,
    LcmInstantRefineRequest,
    LcmUpscaleRequest,
    LeonardoError,
)

API_KEY = "fake-test-key-not-real"
BASE = "https://leonardo.example.test/api/rest/v1"
TIMEOUT = (3.5, 7.25)  # not the default: proves the client's own timeout is what gets sent
AGENT = f"leonardo-client/{leonardo_client.__version__} python-requests/{requests.__version__}"


@pytest.fixture
def client():
    with Client(api_key=API_KEY, base_url=BASE, timeout=TIMEOUT) as c:
        yield c


def api_matchers(timeout: Any = TIMEOUT, key: str = API_KEY) -> List[Any]:
    return [
        matchers.header_matcher(
            {"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": AGENT}
        ),
        matchers.request_kwargs_matcher({"timeout": timeout}),
    ]


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
                model_id="model-1",
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
            "modelId": "model-1",
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


def test_cases_cover_all_13_operations():
    assert len({case[0] for case in CASES}) == 13


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_endpoint_on_the_wire(mocked, client, case):
    name, args, kwargs, http_method, path, body = case
    reply = {"operation": name, "nested": {"items": [1, "two", None]}}
    path_only, _, query = path.partition("?")
    mocked.add(
        http_method,
        BASE + path_only,
        json=reply,
        match=api_matchers()
        + [matchers.query_param_matcher(dict(p.split("=") for p in query.split("&")) if query else {})]
        + ([matchers.json_params_matcher(body)] if body is not None else []),
    )

    result = getattr(client, name)(*args, **kwargs)

    assert result == reply
    assert len(mocked.calls) == 1
    sent = mocked.calls[0].request
    assert sent.method == http_method
    assert sent.url == BASE + path
    if body is None:
        assert sent.body is None


@pytest.mark.parametrize(
    "name, args, path",
    [
        ("get_generation_by_id", ("a b/c?d#e",), "/generations/a%20b%2Fc%3Fd%23e"),
        ("delete_generation_by_id", ("ünï",), "/generations/%C3%BCn%C3%AF"),
        ("get_generations_by_user_id", ("u/1",), "/generations/user/u%2F1"),
        ("get_texture_generation_by_id", ("t%1",), "/generations-texture/t%251"),
        ("delete_texture_generation_by_id", ("t+1",), "/generations-texture/t%2B1"),
        ("get_texture_generations_by_model_id", ("m&1",), "/generations-texture/model/m%261"),
    ],
)
def test_ids_are_percent_encoded_as_one_segment(mocked, client, name, args, path):
    method = "DELETE" if name.startswith("delete") else "GET"
    mocked.add(method, BASE + path, json={"ok": True}, match=api_matchers())
    assert getattr(client, name)(*args) == {"ok": True}
    assert mocked.calls[0].request.url == BASE + path


@pytest.mark.parametrize("status", [200, 204])
def test_empty_body_returns_empty_dict(mocked, client, status):
    mocked.add("DELETE", BASE + "/generations/gen-1", status=status, body=b"")
    assert client.delete_generation_by_id("gen-1") == {}


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
def test_mapping_request_is_sent_as_given(mocked, client, name, path, _cls):
    # A field the dataclasses do not know yet, and an explicit null the caller chose to send.
    body = {"prompt": "as given", "someFutureField": {"deep": [1, 2]}, "explicitNull": None}
    mocked.add("POST", BASE + path, json={"ok": name}, match=api_matchers() + [matchers.json_params_matcher(body)])
    assert getattr(client, name)(body) == {"ok": name}


@pytest.mark.parametrize("name, path, cls", POST_METHODS)
@pytest.mark.parametrize("bad", ["prompt", None, ["prompt"], 42, "other-dataclass"])
def test_wrong_request_type_raises_type_error_and_sends_nothing(mocked, client, name, path, cls, bad):
    if bad == "other-dataclass":
        # The right shape for another operation is still the wrong type here.
        bad = LcmUpscaleRequest(IMAGE, "p") if cls is not LcmUpscaleRequest else LcmInstantRefineRequest(IMAGE, "p")
    with pytest.raises(TypeError, match=cls.__name__):
        getattr(client, name)(bad)
    assert len(mocked.calls) == 0


def test_required_field_set_to_none_raises_value_error_and_sends_nothing(mocked, client):
    with pytest.raises(ValueError, match="prompt"):
        client.create_generation(CreateGenerationRequest(prompt=None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="init_image_id"):
        client.create_generation(
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
def test_bad_paging_arguments_raise_before_sending(mocked, client, name, kwargs, error):
    with pytest.raises(error):
        getattr(client, name)("some-id", **kwargs)
    assert len(mocked.calls) == 0


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
    assert info.value.status_code is None


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
    assert Client(api_key=API_KEY, base_url="https://arg.example.test/v1").base_url == "https://arg.example.test/v1"


def test_calls_go_to_the_configured_base_url(mocked, monkeypatch):
    monkeypatch.setenv("LEONARDO_BASE_URL", "https://env.example.test/v9/")
    mocked.add("GET", "https://env.example.test/v9/generations/g", json={"from": "env"})
    assert Client(api_key=API_KEY).get_generation_by_id("g") == {"from": "env"}


def test_default_base_url_is_the_public_api(mocked):
    mocked.add("GET", "https://cloud.leonardo.ai/api/rest/v1/generations/g", json={"from": "default"})
    assert Client(api_key=API_KEY).get_generation_by_id("g") == {"from": "default"}


def test_default_timeout_is_sent_on_every_call(mocked):
    client = Client(api_key=API_KEY, base_url=BASE)
    assert client.timeout == (10, 60)
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(timeout=(10, 60)))
    mocked.add("POST", BASE + "/generations", json={}, match=api_matchers(timeout=(10, 60)))
    client.get_generation_by_id("g")
    client.create_generation(CreateGenerationRequest("p"))


@pytest.mark.parametrize("timeout", [5, 2.5, (1, 2), (0.5, 30.0)])
def test_valid_timeouts_are_passed_as_given(mocked, timeout):
    mocked.add("GET", BASE + "/generations/g", json={}, match=api_matchers(timeout=timeout))
    Client(api_key=API_KEY, base_url=BASE, timeout=timeout).get_generation_by_id("g")


@pytest.mark.parametrize(
    "timeout",
    [0, -1, None, "10", True, (5,), (1, 2, 3), (0, 5), (5, None), [10, 60], float("nan"), float("inf"), (1, float("inf"))],
)
def test_invalid_timeouts_are_refused(timeout):
    with pytest.raises(ValueError, match="timeout"):
        Client(api_key=API_KEY, base_url=BASE, timeout=timeout)


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_invalid_max_retries_refused(value):
    with pytest.raises(ValueError, match="max_retries"):
        Client(api_key=API_KEY, base_url=BASE, max_retries=value)


@pytest.mark.parametrize("value", [0, -1, 2.0, True])
def test_invalid_pool_maxsize_refused(value):
    with pytest.raises(ValueError, match="pool_maxsize"):
        Client(api_key=API_KEY, base_url=BASE, pool_maxsize=value)


def test_max_retries_zero_turns_retries_off():
    client = Client(api_key=API_KEY, base_url=BASE, max_retries=0)
    assert client.retry.total == 0
    with responses.RequestsMock() as mocked:
        mocked.add("GET", BASE + "/generations/g", status=503, json={"error": "busy"})
        with pytest.raises(LeonardoError) as info:
            client.get_generation_by_id("g")
        assert info.value.status_code == 503
        assert len(mocked.calls) == 1


def test_user_agent_is_appended(mocked):
    client = Client(api_key=API_KEY, base_url=BASE, user_agent="my-app/1.2")
    mocked.add(
        "GET",
        BASE + "/generations/g",
        json={},
        match=[matchers.header_matcher({"User-Agent": f"{AGENT} my-app/1.2"})],
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
    with Client(api_key=API_KEY, base_url=BASE, session=session):
        pass
    assert session.closed == 0


def test_own_session_is_closed_by_close_and_by_the_context_manager(monkeypatch):
    closed: List[str] = []
    client = Client(api_key=API_KEY, base_url=BASE)
    monkeypatch.setattr(client._session, "close", lambda: closed.append("close"))
    client.close()
    assert closed == ["close"]

    with Client(api_key=API_KEY, base_url=BASE) as managed:
        assert isinstance(managed, Client)
        monkeypatch.setattr(managed._session, "close", lambda: closed.append("exit"))
    assert closed == ["close", "exit"]

    with pytest.raises(RuntimeError):
        with Client(api_key=API_KEY, base_url=BASE) as managed:
            monkeypatch.setattr(managed._session, "close", lambda: closed.append("exit on error"))
            raise RuntimeError("boom")
    assert closed == ["close", "exit", "exit on error"]


def test_repr_shows_base_url_and_not_the_key():
    client = Client(api_key=API_KEY, base_url=BASE)
    assert repr(client) == f"Client(base_url={BASE!r})"
    assert API_KEY not in repr(client) and API_KEY not in str(client)


def test_client_is_reused_across_calls_with_one_session(mocked):
    session = RecordingSession()
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    for i in range(3):
        mocked.add("GET", BASE + f"/generations/g{i}", json={"i": i})
    results: List[Optional[Dict[str, Any]]] = [client.get_generation_by_id(f"g{i}") for i in range(3)]
    assert results == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert len(session.requests_seen) == 3
