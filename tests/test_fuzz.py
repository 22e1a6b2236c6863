"""Fuzz: random and hostile values for every public entry point of the library.

Seeded and bounded (a few hundred calls per target, a time budget per target), so a failure
reproduces: the assertion message names the call. Whatever the arguments, only ValueError,
TypeError or LeonardoError may escape, and a call refused with ValueError/TypeError sent
nothing: the client runs against ``responses`` with no URL registered, which records every
request that went out (and answers it with a connection error).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import random
import re
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
import responses

from leonardo_client import Client, LeonardoError, generation_id, payloads
from leonardo_client.webhooks import parse_webhook
from conftest import API_KEY, BASE

SEED = 20261123
CALLS = 300  # per target
BUDGET = 1.0  # seconds per target, whichever comes first
ALLOWED = (ValueError, TypeError, LeonardoError)


class HostileText:
    """An object whose every text conversion raises: the client must not format arbitrary objects."""

    def __str__(self) -> str:
        raise RuntimeError("str() of an argument")

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        raise RuntimeError("format() of an argument")


class WrongFspath:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __fspath__(self) -> Any:
        return self.value


def self_referential() -> List[Any]:
    holder: Dict[str, Any] = {"prompt": "p"}
    holder["self"] = holder
    loop: List[Any] = []
    loop.append(loop)
    return [holder, loop]


def deeply_nested(depth: int = 3000) -> Any:
    value: Any = "x"
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


def hostile_values() -> List[Any]:
    return [
        None, True, False, 0, -1, 1, 2**63, -(2**70), 10**400, 0.0, -0.5, 1e-9, 1e308,
        math.nan, math.inf, -math.inf,
        "", " ", "\t\n", "\x00", "a\x00b", "x\r\nX-Injected: 1", "a\udcff", b"a\xff".decode("utf-8", "surrogateescape"),
        ".", "..", " .. ", "x" * 5000, "\u202e\u2028", "0.5", "nan",
        "https://cdn.example.test/x.png", "http://user:pw@127.0.0.1:9/x.png", "ftp://example.test/x", "file:///etc/passwd",
        "data:image/png;base64,AAAA", "data:,", "http://[::1", "https://h:abc/",
        b"bytes", b"/tmp/x", bytearray(b"x"), [], {}, (), [None], [1, "a"], {"prompt": "p"}, {1: 2}, {"a": math.nan},
        {"status": "COMPLETE", "generated_images": [None, {"url": None}, {"id": 5}]},
        {"lcmGenerationJob": {"imageDataUrl": [5, None, "data:x", ["x"]]}},
        {"sdGenerationJob": {"generationId": ["x"]}}, {"generationId": ""},
        {"prompt": b"p"}, {"prompt": "p", "extra": {1, 2}},
        object(), HostileText(), WrongFspath(5), WrongFspath(b"/tmp/x"), WrongFspath("a\x00b"), WrongFspath(""),
        requests.Session, lambda *a: None, print, type, Client,
        *self_referential(), deeply_nested(),
    ]


# Values of the right shape for each parameter, so that a call gets past one check and meets the next.
PLAUSIBLE: Dict[str, List[Any]] = {
    "id": ["gen-1", {"sdGenerationJob": {"generationId": "gen-1"}}], "user_id": ["user-1"], "model_id": ["model-1"],
    "request": [{"prompt": "a cat"}, payloads.CreateGenerationRequest("a cat", width=512)],
    "limit": [10, None], "offset": [0, None], "timeout": [0.05, 1], "poll_interval": [0.01],
    "on_poll": [None, lambda status, elapsed: None], "url": ["https://cdn.example.test/x.png"], "path": ["x.png"],
    "result": [{"lcmGenerationJob": {"imageDataUrl": ["data:image/png;base64,AAAA"]}},
               {"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": "https://cdn.example.test/i.png"}]}],
    "folder": ["out"], "file": [b"\x89PNG"], "extension": ["png", None],
}


def pick(rng: random.Random, hostile: List[Any], plausible: List[Any]) -> Any:
    return rng.choice(hostile) if rng.random() < 0.5 else rng.choice(plausible)


def bounded_calls() -> Iterator[int]:
    """0 .. CALLS-1, cut short once the target has spent its time budget."""
    started = time.monotonic()
    for n in range(CALLS):
        if time.monotonic() - started > BUDGET:
            return
        yield n


def check(mocked: responses.RequestsMock, what: str, call: Callable[[], Any]) -> None:
    """Run ``call``: only the allowed errors escape, and a ValueError/TypeError sent nothing."""
    before = len(mocked.calls)
    try:
        call()
    except (ValueError, TypeError) as exc:
        if not isinstance(exc, LeonardoError):
            assert len(mocked.calls) == before, f"{what} sent a request, then raised {exc!r:.200}"
    except LeonardoError:
        pass
    except BaseException as exc:  # noqa: B902 - the point of the test
        pytest.fail(f"{what} raised {type(exc).__name__}: {str(exc)[:200]}")


def describe(value: Any) -> str:
    try:
        return repr(value)[:80]
    except BaseException:  # noqa: B902 - HostileText, a self-nested container too deep to repr
        return f"<{type(value).__name__}>"


@pytest.fixture
def hostile() -> List[Any]:
    return hostile_values()


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths the fuzz makes up land here


def test_client_options(mocked: responses.RequestsMock, hostile: List[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED)
    names = list(inspect.signature(Client).parameters)
    plausible: Dict[str, List[Any]] = {
        "api_key": [API_KEY], "base_url": [BASE, None], "timeout": [5, (1, 2)], "max_retries": [0, 2],
        "backoff_factor": [0, 0.5], "session": [None, requests.Session()], "pool_maxsize": [1, 10], "user_agent": ["app/1"],
    }
    for _ in bounded_calls():
        options = {name: pick(rng, hostile, plausible[name]) for name in rng.sample(names, rng.randint(1, len(names)))}
        options.setdefault("api_key", API_KEY)
        if rng.random() < 0.2:  # the same values from the environment
            monkeypatch.setenv("LEONARDO_API_KEY", rng.choice(["", "\x01", "k\n", "\u043a\u043b\u044e\u0447", "ok-key"]))
            monkeypatch.setenv("LEONARDO_BASE_URL", rng.choice(["", " \n", BASE + "?x#y", "http://u:p@h/", BASE]))
            options.pop(rng.choice(["api_key", "base_url"]), None)

        def construct() -> None:
            Client(**options).close()

        check(mocked, f"Client({ {k: describe(v) for k, v in options.items()} })", construct)
        monkeypatch.delenv("LEONARDO_API_KEY", raising=False)
        monkeypatch.delenv("LEONARDO_BASE_URL", raising=False)
    assert len(mocked.calls) == 0  # constructing never sends


@pytest.mark.parametrize("method", sorted(name for name, member in vars(Client).items()
                                          if callable(member) and not name.startswith("_")))
def test_client_methods(mocked: responses.RequestsMock, mock_client: Client, hostile: List[Any], method: str) -> None:
    rng = random.Random(f"{SEED}-{method}")
    if method.startswith("wait_for"):  # an answer ends a wait: a refused connection is waited out, to its timeout
        mocked.assert_all_requests_are_fired = False
        mocked.add(responses.GET, re.compile(".*"), json={})
    parameters = inspect.signature(getattr(mock_client, method)).parameters.values()
    required = sum(1 for p in parameters if p.default is p.empty)
    for _ in bounded_calls():
        given = list(parameters)[: rng.randint(required, len(parameters))]
        args = [pick(rng, hostile, PLAUSIBLE[p.name]) for p in given]
        check(mocked, f"client.{method}({', '.join(map(describe, args))})", lambda: getattr(mock_client, method)(*args))


REQUEST_CLASSES = [getattr(payloads, name) for name in payloads.__all__ if dataclasses.is_dataclass(getattr(payloads, name))]
SENDERS = {
    "CreateGenerationRequest": "create_generation", "CreateTextureGenerationRequest": "create_texture_generation",
    "CreateSvdMotionGenerationRequest": "create_svd_motion_generation", "CreateLcmGenerationRequest": "create_lcm_generation",
    "LcmInstantRefineRequest": "perform_instant_refine", "LcmInpaintingRequest": "perform_inpainting_lcm",
    "LcmUpscaleRequest": "perform_alchemy_upscale_lcm", "GenerationV2Request": "create_generation_v2",
}


@pytest.mark.parametrize("cls", REQUEST_CLASSES, ids=lambda cls: cls.__name__)
def test_dataclass_fields(mocked: responses.RequestsMock, mock_client: Client, hostile: List[Any], cls: type) -> None:
    rng = random.Random(f"{SEED}-{cls.__name__}")
    fields = dataclasses.fields(cls)
    required = {f.name: "data:image/png;base64,AAAA" if "data_url" in f.name else "a cat"
                for f in fields if f.default is dataclasses.MISSING}
    plausible = ["a cat", 512, 0.5, True, {"k": [1, "v"]}, [payloads.ControlnetInput("i", "UPLOADED", 1, weight=0.5)]]
    for _ in bounded_calls():
        values = dict(required)
        for f in rng.sample(fields, rng.randint(1, min(3, len(fields)))):  # a few fields at a time
            values[f.name] = pick(rng, hostile, plausible)
        request = cls(**values)
        text = describe(values)
        check(mocked, f"to_payload({cls.__name__}({text}))", lambda: payloads.to_payload(request))
        if cls.__name__ in SENDERS:
            check(mocked, f"{SENDERS[cls.__name__]}({cls.__name__}({text}))",
                  lambda: getattr(mock_client, SENDERS[cls.__name__])(request))


def test_generation_id_and_parse_webhook(mocked: responses.RequestsMock, hostile: List[Any]) -> None:
    rng = random.Random(f"{SEED}-functions")
    bodies = [b'{"type": "image_generation.complete", "data": {"object": {"images": []}}}', "[]", b"\xff\xfe", "{" * 5000]
    for _ in bounded_calls():
        value = rng.choice(hostile)
        check(mocked, f"generation_id({describe(value)})", lambda: generation_id(value))
        body, key = pick(rng, hostile, bodies), pick(rng, hostile, ["cb-key"])
        headers = pick(rng, hostile, [{"Authorization": "Bearer cb-key"}, {"authorization": rng.choice(hostile)}, {5: "x", HostileText(): "y"}])
        check(mocked, f"parse_webhook({describe(body)}, {describe(headers)}, {describe(key)})",
              lambda: parse_webhook(body, headers, key))


def test_batch_items_and_options(mocked: responses.RequestsMock, mock_client: Client, hostile: List[Any]) -> None:
    from leonardo_client.batch import make_item, read_items, run_batch

    rng = random.Random(f"{SEED}-batch")
    item = {"prompt": "a cat"}
    lines = ['{"prompt": "a cat", "seed": 1}', '{"prompt": "\\udc80"}', "[" * 5000, '{"prompt": "x", "w": 1e999}', "a cat"]
    plausible: Dict[str, List[Any]] = {
        "items": [[item], [item, {"prompt": "a dog", "extra": {"k": 1}}]], "out_dir": ["out"], "concurrency": [None, 2],
        "posts_per_minute": [100], "on_progress": [None, print], "retry_failed": [False], "resubmit_ambiguous": [False],
        "item_timeout": [60.0],
    }
    for n in bounded_calls():
        value, defaults = rng.choice(hostile), pick(rng, hostile, [None, {"width": 512}])
        check(mocked, f"make_item({describe(value)}, {describe(defaults)})", lambda: make_item(value, defaults))
        with open(f"items-{n}.jsonl", "w", encoding="utf-8", errors="surrogatepass") as out:
            out.write("\n".join(rng.choice(lines) for _ in range(3)))
        path = pick(rng, hostile, [f"items-{n}.jsonl"])
        check(mocked, f"read_items({describe(path)}, {describe(defaults)})", lambda: read_items(path, defaults))
        options = {name: pick(rng, hostile, plausible[name]) for name in rng.sample(list(plausible), rng.randint(1, 3))}
        items, out_dir = options.pop("items", [item]), options.pop("out_dir", f"out-{n}")
        shown = {name: describe(value) for name, value in options.items()}
        check(mocked, f"run_batch({describe(items)}, {describe(out_dir)}, {shown})",
              lambda: run_batch(mock_client, items, out_dir, **options))
