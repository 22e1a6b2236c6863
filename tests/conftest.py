"""What the test files share: two worlds, each with its fixtures, plus the spec and thread helpers.

* Mocked HTTP (``responses``): ``mocked`` records and answers every exchange, ``mock_client``
  is a Client on :data:`BASE` whose HTTP goes there. Retries are off on it, so each mocked
  answer is seen once (test_retry.py turns them on for its own ``retrying_mock_client``).
* Real sockets on 127.0.0.1: ``fake`` is a FakeLeonardo, ``fake_client`` a Client bound to it,
  ``make_fake_client(**options)`` one with other options, ``fake_in_env`` one that a Client()
  with no arguments reaches through LEONARDO_API_KEY and LEONARDO_BASE_URL.

A file that needs a variant defines it under a name that says what differs.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import signal
import socket
import subprocess
import threading
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import responses
from responses import matchers

import leonardo_client
import leonardo_client.testing
from leonardo_client import Client
from leonardo_client.testing import FakeLeonardo
from leonardo_client.testing.spec import load_spec

API_KEY = "fake-test-key-not-real"
BASE = "https://leonardo.example.test/api/rest/v1"
V2_BASE = "https://leonardo.example.test/api/rest/v2"  # where the client sends v2 calls for BASE
TIMEOUT = (3.5, 7.25)  # not the default: proves the client's own timeout is what gets sent
AGENT = f"leonardo-client/{leonardo_client.__version__} python-requests/{requests.__version__}"


# Started as a background job of a script (or under some CI runners), pytest inherits SIGINT ignored: then the tests'
# Ctrl-Cs, sent to this process or to a child (which inherits it ignored), would stop nothing.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


TEST_TIME_LIMIT = 120.0  # seconds: the slowest test takes about 10 here (kill -9 at random, then a rerun)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test still running after TEST_TIME_LIMIT fails, by its name, where a regression (a wait that never ends)
    would hang the whole run until CI's own limit. SIGALRM: POSIX only; a test that sets its own alarm takes it
    over (and its end ends this one)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        pytest.fail(f"still running after {TEST_TIME_LIMIT:.0f} s: hung?")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session", autouse=True)
def children_block_buffered() -> Iterator[None]:
    """Every Python the tests start writes its stdout block-buffered, as into a user's pipe or file: this machine
    and many CI runners set PYTHONUNBUFFERED, under which no output is left to fail again at exit, and a closed
    pipe or full disk is never tested in that harder case. Session-wide, so the module-scoped fixtures that start
    children see it too; the children's environments are built from os.environ (a test that must read a child's
    line as it is printed sets PYTHONUNBUFFERED for that child itself)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONUNBUFFERED", raising=False)
        yield


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's LEONARDO_API_KEY or LEONARDO_BASE_URL, nor sends its loopback traffic through
    a proxy of the environment's (a CI's HTTP_PROXY: the tests' own requests.get() to a FakeLeonardo went to it).

    Autouse runs first, so a test or fixture that sets them (monkeypatch.setenv) still can;
    subprocess-based tests build their child's environment from os.environ without them anyway.
    """
    monkeypatch.delenv("LEONARDO_API_KEY", raising=False)
    monkeypatch.delenv("LEONARDO_BASE_URL", raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost,::1")


@pytest.fixture(autouse=True)
def fakes_stop_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """FakeLeonardos started in a test look for stop() every 2 ms, not every POLL (10 ms): with about 500 fakes
    started in the suite, each stop() that much sooner adds up. No test times the accept loop."""
    monkeypatch.setattr(leonardo_client.testing, "POLL", 0.002)


# --- the mocked world ---------------------------------------------------------------------------


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Every HTTP exchange mocked by ``responses``; each one added must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def mock_client(mocked: responses.RequestsMock) -> Iterator[Client]:
    """A Client on BASE (key API_KEY, timeout TIMEOUT, no retries) whose HTTP ``mocked`` answers."""
    with Client(api_key=API_KEY, base_url=BASE, timeout=TIMEOUT, max_retries=0) as client:
        yield client


def api_matchers(
    body: Any = None, *, timeout: Any = TIMEOUT, key: str = API_KEY, agent: str = AGENT, query: Optional[Dict[str, str]] = None
) -> List[Any]:
    """Strict matchers for an API call: its headers, timeout and exact query (none unless given),
    and its exact JSON body (given), else that it sends no body."""
    found = [
        matchers.header_matcher({"Authorization": f"Bearer {key}", "Accept": "application/json", "User-Agent": agent}),
        matchers.request_kwargs_matcher({"timeout": timeout}),
        matchers.query_param_matcher(query or {}),
    ]
    if body is None:
        return found + [_no_body]
    return found + [matchers.header_matcher({"Content-Type": "application/json"}), matchers.json_params_matcher(body, strict_match=True)]


def download_matchers(*, agent: Optional[str] = AGENT, timeout: Any = TIMEOUT, key: str = API_KEY) -> List[Any]:
    """Strict matchers for a request off the API (a file download, a redirect's hop to another
    origin, the S3 form): no Authorization, the key in no header, its User-Agent (None: requests'
    own, as on the S3 form, which gets none of the client's headers) and timeout."""
    agent = agent or requests.utils.default_user_agent()
    return [matchers.header_matcher({"User-Agent": agent}), matchers.request_kwargs_matcher({"timeout": timeout}), _keyless(key)]


def _no_body(request: requests.PreparedRequest) -> Tuple[bool, str]:
    return not request.body, f"a body was sent: {request.body!r:.200}"


def _keyless(key: str) -> Callable[[requests.PreparedRequest], Tuple[bool, str]]:
    def match(request: requests.PreparedRequest) -> Tuple[bool, str]:
        leaked = [name for name, value in request.headers.items() if name.lower() == "authorization" or key in str(value)]
        return not leaked, f"the key's headers went off the API: {leaked}"

    return match


# --- the real-socket world ----------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeLeonardo]:
    """FakeLeonardo on 127.0.0.1; generations complete at once."""
    with FakeLeonardo(completion_delay=0.0) as server:
        yield server


@pytest.fixture
def fake_in_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLeonardo]:
    """A fake the CLI and the examples reach online, through the environment, as they would the real API."""
    with FakeLeonardo() as server:
        monkeypatch.setenv("LEONARDO_API_KEY", server.api_key)
        monkeypatch.setenv("LEONARDO_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def make_fake_client(fake: FakeLeonardo) -> Callable[..., Client]:
    """make_fake_client(**options) -> a Client bound to ``fake``; options override the defaults.

    The caller closes it (``with make_fake_client(max_retries=2) as client:``).
    """

    def make(**kwargs: Any) -> Client:
        options: Dict[str, Any] = dict(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 5), backoff_factor=0.01)
        options.update(kwargs)
        return Client(**options)

    return make


@pytest.fixture
def fake_client(make_fake_client: Callable[..., Client]) -> Iterator[Client]:
    """A Client bound to ``fake`` with make_fake_client's defaults, closed after the test."""
    with make_fake_client() as client:
        yield client


def refused_url() -> str:
    """http://127.0.0.1:<port> where nothing listens: the port was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % probe.getsockname()[1]


def new_generation(client: Client) -> str:
    """Create a one-image generation and return its id."""
    return str(client.create_generation({"prompt": "p", "num_images": 1})["sdGenerationJob"]["generationId"])


# --- the spec and the endpoint docstrings -------------------------------------------------------


def openapi_spec() -> Dict[str, Any]:
    """The OpenAPI spec bundled with FakeLeonardo: what the fake routes and validates by, and the
    reference the dataclasses and docstrings are checked against."""
    return load_spec()


def resolve(schema: Dict[str, Any]) -> Dict[str, Any]:
    """Follow a local ``$ref`` (``#/components/schemas/...``) to the schema it names."""
    for _ in range(10):
        if "$ref" not in schema:
            return schema
        node: Any = openapi_spec()
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    raise AssertionError("reference loop in the spec")


# The first line of an endpoint method's docstring: "VERB /path -> key: what it does." The older
# form "VERB /path: what it does." is still recognised (without a key) so that the endpoint
# methods can be found either way; test_packaging.py demands the full form.
ENDPOINT_DOC = re.compile(r"^(GET|POST|DELETE) (/[\w{}/-]*)(?: -> (\w+))?: (\S.*)$")


def endpoint_doc(name: str) -> Optional["re.Match[str]"]:
    """The match of ENDPOINT_DOC on the first docstring line of Client.<name>, or None."""
    doc = getattr(Client, name).__doc__ or ""
    return ENDPOINT_DOC.match(doc.strip().splitlines()[0].strip()) if doc.strip() else None


def endpoint_root(template: str) -> str:
    """Where an endpoint path of a docstring starts on BASE: v2 paths (/v2/...) at the API's root."""
    return V2_BASE[: -len("/v2")] if template.startswith("/v2/") else BASE


# Made-up values for the endpoint methods' required parameters (and the extension a bytes upload needs).
ARGUMENTS: Dict[str, Any] = {"request": {"prompt": "p"}, "file": b"\x89PNG\r\n\x1a\n", "extension": "png"}


def call_endpoint(client: Client, name: str) -> Any:
    """Call client.<name> with made-up arguments (an id is "<parameter>-1"); legacy warnings silenced."""
    parameters = list(inspect.signature(getattr(Client, name)).parameters.values())[1:]
    arguments = [ARGUMENTS.get(p.name, f"{p.name}-1") for p in parameters if p.default is p.empty or p.name in ARGUMENTS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the retired methods say so on every call
        return getattr(client, name)(*arguments)


def endpoint_methods() -> List[str]:
    """The public Client methods whose docstring starts with an endpoint line."""
    return sorted(
        name
        for name, member in vars(Client).items()
        if callable(member) and not name.startswith("_") and endpoint_doc(name)
    )


# --- threads ------------------------------------------------------------------------------------

THREADS = 8  # workers of run_threads
THREADS_JOIN_TIMEOUT = 30.0  # seconds for all of them together; the work takes well under 2 s


@pytest.fixture
def run_threads() -> Callable[[Callable[[int], None]], List[BaseException]]:
    """run_threads(work) runs work(n) in THREADS threads released together; returns what they raised."""

    def run(work: Callable[[int], None]) -> List[BaseException]:
        errors: List[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(THREADS)

        def target(n: int) -> None:
            try:
                barrier.wait(timeout=10)
                work(n)
            except BaseException as exc:  # noqa: B902 - handed to the test thread
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=target, args=(n,), name=f"worker-{n}", daemon=True) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(THREADS_JOIN_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
        return errors

    return run


@pytest.fixture
def urllib3_warnings(caplog: pytest.LogCaptureFixture) -> Callable[[], List[str]]:
    """urllib3_warnings() -> the WARNING-or-worse messages urllib3 logged so far in this test."""
    caplog.set_level(logging.WARNING, logger="urllib3")
    return lambda: [
        r.getMessage() for r in caplog.records if r.name.startswith("urllib3") and r.levelno >= logging.WARNING
    ]


def inject_slow_answer(fake: FakeLeonardo, delay: float, **match: Any) -> None:
    """Make the matching requests (``path=``, ``method=``, ``times=``) be answered normally,
    but only after ``delay`` seconds: a slow server (the operation runs, a POST creates).

    The one place that says how FakeLeonardo spells "slow but normal": ``passthrough=True``
    where its inject() has that parameter, else a delay with the default status.
    """
    if "passthrough" in inspect.signature(fake.inject).parameters:
        match["passthrough"] = True
    fake.inject(delay=delay, **match)


@contextlib.contextmanager
def raw_server(*answers: bytes, linger: float = 0.0) -> Iterator[str]:
    """http://127.0.0.1:<port> of a server sending each of ``answers`` as it is to one request, then
    closing (after ``linger`` seconds: a server that stalls; cut short once the ``with`` block is left)."""
    left = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(len(answers))
        server.settimeout(5)

        def answer_each() -> None:
            for answer in answers:
                connection, _ = server.accept()
                with connection:
                    connection.recv(65536)
                    connection.sendall(answer)
                    left.wait(linger)

        thread = threading.Thread(target=answer_each, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.getsockname()[1]}"
        finally:
            left.set()
        thread.join(5 + linger * len(answers))


# --- media ----------------------------------------------------------------------------------------


def finished(process: "subprocess.Popen[str]", timeout: float = 60) -> "subprocess.CompletedProcess[str]":
    """``process`` run to its end, its output read; killed if it runs longer than ``timeout`` seconds."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate(timeout=10)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def parse_jpeg(data: bytes) -> Tuple[int, int, List[int]]:
    """Check a baseline JPEG: its segments, and its scan decoded with its own Huffman tables, every block
    of every component, to the last bit. Returns (width, height, the first block's DC of each component)."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    pos, tables, frame = 2, {}, b""
    while data[pos + 1] != 0xDA:  # segments up to the start of scan
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        body = data[pos + 4 : pos + 2 + length]
        if marker == 0xC4:  # a Huffman table: code lengths, then the symbols in code order
            codes, code, symbols = {}, 0, iter(body[17:])
            for size, count in enumerate(body[1:17], 1):
                for _ in range(count):
                    codes[format(code, "0%db" % size)] = next(symbols)
                    code += 1
                code <<= 1
            tables[body[0] >> 4] = codes
        frame = body if marker == 0xC0 else frame
        pos += 2 + length
    assert frame[0] == 8 and frame[5] == 3, "baseline, 8 bits, 3 components"
    height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
    scan = data[pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big") : -2]
    assert re.search(b"\xff[^\x00]", scan) is None, "an unstuffed 0xFF in the scan"
    bits = "".join(format(byte, "08b") for byte in scan.replace(b"\xff\x00", b"\xff"))
    at, dc = 0, [0, 0, 0]
    first: List[int] = []

    def symbol(codes: Dict[str, int]) -> int:
        nonlocal at
        end = next((end for end in range(at + 1, min(at + 17, len(bits) + 1)) if bits[at:end] in codes), None)
        assert end is not None, f"no Huffman code at bit {at} of {len(bits)}"
        found, at = codes[bits[at:end]], end
        return found

    def value(size: int) -> int:
        nonlocal at
        raw, at = bits[at : at + size], at + size
        return 0 if not size else int(raw, 2) if raw[0] == "1" else int(raw, 2) - (1 << size) + 1

    for block in range(((width + 7) // 8) * ((height + 7) // 8) * 3):  # 1x1 sampling: Y, Cb, Cr in turn
        dc[block % 3] += value(symbol(tables[0]))
        if block < 3:
            first.append(dc[block])
        filled = 1
        while filled < 64:
            run_size = symbol(tables[1])
            if run_size == 0:  # end of block
                break
            filled += (run_size >> 4) + 1
            value(run_size & 0x0F)
    assert set(bits[at:]) <= {"1"} and len(bits) - at < 8, "only padding after the last block"
    return width, height, first
