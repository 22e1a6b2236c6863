"""Connection reuse is real: counted by the server (FakeLeonardo.connections_opened), not assumed.

One Client keeps its connection alive across calls of every kind; downloads keep one of
their own; threads sharing one Client never open more than pool_maxsize connections, reuse
them from one burst to the next, and never make urllib3 log "Connection pool is full".
Everything runs against FakeLeonardo on 127.0.0.1 with no completion delay: bounded and fast.
"""

from __future__ import annotations

import os
from typing import Callable, List

import pytest
import requests

from leonardo_client import Client, CreateGenerationRequest
from leonardo_client.testing import FakeLeonardo

SEQUENTIAL_ROUNDS = 20  # of 5 calls each
THREADS = 8  # as run_threads in conftest.py
CALLS_PER_THREAD = 20
DEFAULT_POOL_MAXSIZE = 10


def calls_of_every_kind(client: Client, fake: FakeLeonardo, tag: str) -> int:
    """Create, get, list, wait for and delete one generation: 5 API requests."""
    job = client.create_generation(CreateGenerationRequest(prompt=f"reuse {tag}", num_images=1, width=512, height=512))
    ident = job["sdGenerationJob"]["generationId"]
    assert client.get_generation_by_id(ident)["generations_by_pk"]["id"] == ident
    assert client.get_generations_by_user_id(fake.user_id, limit=1)["generations"]
    assert client.wait_for_generation(ident, timeout=10)["status"] == "COMPLETE"  # complete at once: one GET
    assert client.delete_generation_by_id(ident) == {"delete_generations_by_pk": {"id": ident}}
    return 5


def test_sequential_calls_of_every_kind_use_one_connection(
    fake: FakeLeonardo, urllib3_warnings: Callable[[], List[str]]
) -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10)) as client:
        sent = sum(calls_of_every_kind(client, fake, str(n)) for n in range(SEQUENTIAL_ROUNDS))
    assert len(fake.requests) == sent == 5 * SEQUENTIAL_ROUNDS  # every call really went over the wire
    assert fake.connections_opened == 1
    assert urllib3_warnings() == []


def test_a_session_of_your_own_keeps_the_connection_alive_too(fake: FakeLeonardo) -> None:
    with requests.Session() as session:
        client = Client(api_key=fake.api_key, base_url=fake.base_url, session=session, timeout=(2, 10))
        for n in range(SEQUENTIAL_ROUNDS):
            calls_of_every_kind(client, fake, str(n))
        client.close()
    assert fake.connections_opened == 1


def test_downloads_reuse_one_connection_of_their_own(fake: FakeLeonardo, tmp_path: "os.PathLike[str]") -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10)) as client:
        calls_of_every_kind(client, fake, "before")
        for n in range(10):
            path = client.download_image(fake.blob_url(256 * 1024), os.path.join(tmp_path, f"{n}.bin"))
            assert os.path.getsize(path) == 256 * 1024  # read to the end, so the connection goes back to the pool
        calls_of_every_kind(client, fake, "after")
    # The API's pool and the download pool (image hosts, never sent the key) hold one each.
    assert fake.connections_opened == 2


@pytest.mark.parametrize("bursts", [1, 3])
def test_threads_sharing_one_client_stay_within_the_pool(
    fake: FakeLeonardo,
    urllib3_warnings: Callable[[], List[str]],
    run_threads: Callable[[Callable[[int], None]], List[BaseException]],
    bursts: int,
) -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10)) as client:  # pool_maxsize 10

        def work(n: int) -> None:
            for call in range(CALLS_PER_THREAD // 5):
                calls_of_every_kind(client, fake, f"{n}-{call}")

        for _ in range(bursts):
            assert run_threads(work) == []
        after_bursts = fake.connections_opened
        calls_of_every_kind(client, fake, "alone")  # a pooled connection is still there to reuse

    assert len(fake.requests) == bursts * THREADS * CALLS_PER_THREAD + 5
    # Never more connections than threads (nor than pool_maxsize), however many bursts:
    # later bursts take the connections the first one left in the pool.
    assert 1 <= after_bursts <= min(THREADS, DEFAULT_POOL_MAXSIZE)
    assert fake.connections_opened == after_bursts
    assert not [w for w in urllib3_warnings() if "Connection pool is full" in w]
    assert urllib3_warnings() == []
