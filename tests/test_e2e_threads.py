"""End to end: one Client shared by 8 threads, against FakeLeonardo over real sockets.

No call fails, no "Connection pool is full" warning is logged, and the connections opened
never exceed pool_maxsize; retries under concurrency still send each POST once.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Set

import pytest

from leonardo_client import Client, CreateGenerationRequest
from leonardo_client.testing import FakeLeonardo

THREADS = 8  # as run_threads in conftest.py
CALLS_PER_THREAD = 25





def mixed_calls(client: Client, fake: FakeLeonardo, created: Dict[int, List[str]]) -> Callable[[int], None]:
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
        created[n] = mine

    return work


@pytest.mark.parametrize("pool_maxsize", [THREADS, None])  # None: the default (10)
def test_eight_threads_share_one_client(
    fake: FakeLeonardo,
    urllib3_warnings: Callable[[], List[str]],
    run_threads: Callable[[Callable[[int], None]], List[BaseException]],
    pool_maxsize: Optional[int],
) -> None:
    options: Dict[str, Any] = dict(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 10))
    if pool_maxsize is not None:
        options["pool_maxsize"] = pool_maxsize
    created: Dict[int, List[str]] = {}
    with Client(**options) as client:
        errors = run_threads(mixed_calls(client, fake, created))
    assert errors == []
    assert urllib3_warnings() == []
    assert len(fake.requests) == THREADS * CALLS_PER_THREAD
    assert 1 <= fake.connections_opened <= (pool_maxsize or 10)
    assert fake.connections_opened <= THREADS
    # Every thread's surviving generations exist, and nothing else does: no call was doubled.
    survivors: Set[str] = {gid for ids in created.values() for gid in ids}
    assert len(created) == THREADS
    assert set(fake.generation_ids()) == survivors
    assert sum(1 for r in fake.requests if r.method == "POST") == THREADS * CALLS_PER_THREAD // 5


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
