"""Fixtures shared by the test files.

A test file that needs something else defines a fixture of the same name; pytest uses the
file's own over the one here (test_retry.py's ordered ``mocked``, test_e2e_lifecycle.py's
slower ``fake``, test_cli.py's ``fake`` reached through the environment, the ``client``
fixtures of the files that mock with ``responses``, ...).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Dict, Iterator, List

import pytest
import responses

from leonardo_client import Client
from leonardo_client.testing import FakeLeonardo


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's LEONARDO_API_KEY or LEONARDO_BASE_URL.

    Autouse runs first, so a test or fixture that sets them (monkeypatch.setenv) still can;
    subprocess-based tests build their child's environment from os.environ without them anyway.
    """
    monkeypatch.delenv("LEONARDO_API_KEY", raising=False)
    monkeypatch.delenv("LEONARDO_BASE_URL", raising=False)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    """Every HTTP exchange mocked by ``responses``; each one added must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def fake() -> Iterator[FakeLeonardo]:
    """FakeLeonardo on 127.0.0.1; generations complete at once."""
    with FakeLeonardo(completion_delay=0.0) as server:
        yield server


@pytest.fixture
def make_client(fake: FakeLeonardo) -> Callable[..., Client]:
    """make_client(**options) -> a Client bound to ``fake``; options override the defaults.

    The caller closes it (``with make_client(max_retries=2) as client:``).
    """

    def make(**kwargs: Any) -> Client:
        options: Dict[str, Any] = dict(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 5), backoff_factor=0.01)
        options.update(kwargs)
        return Client(**options)

    return make


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Iterator[Client]:
    """A Client bound to ``fake`` with make_client's defaults, closed after the test."""
    with make_client() as c:
        yield c


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
