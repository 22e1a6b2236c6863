"""The batch engine end to end: a real Client against FakeLeonardo over sockets on 127.0.0.1.

What needs the wire: a create call that ran at the server and then answered 500, stalled past
the read timeout or dropped the connection (reconciled, never sent twice), 429 storms, v2
items, the account's slots, and the command line in a subprocess (Ctrl-C). The decisions
themselves are tested against a double in test_batch.py; the SIGKILL test is test_batch_crash.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from leonardo_client import Client, LeonardoError, batch
from leonardo_client.batch import run_batch
from leonardo_client.errors import MAY_HAVE_BEEN_MADE
from leonardo_client.testing import FakeLeonardo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITEMS = [{"prompt": f"a paper lantern, study {n}", "width": 512, "height": 512, "num_images": 1} for n in range(6)]
FAST = 60000  # posts a minute: pacing out of the way unless a test is about it


@pytest.fixture
def account_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLeonardo]:
    """A FakeLeonardo playing an account: 3 concurrency slots, jobs of 0.05 to 0.2 s (the batch's first poll of a job
    after 0.1 s, not 0.25 s)."""
    monkeypatch.setattr(batch, "FIRST_POLL", 0.1)
    with FakeLeonardo(completion_delay=(0.05, 0.2), concurrency_slots=3, seed=3) as server:
        yield server


@pytest.fixture
def account_client(account_fake: FakeLeonardo) -> Iterator[Client]:
    """A Client bound to account_fake, with a 1 s read timeout."""
    with Client(api_key=account_fake.api_key, base_url=account_fake.base_url, timeout=(2, 1), backoff_factor=0.01) as c:
        yield c


def posts(fake: FakeLeonardo) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith("/generations"))


def records(out: Any) -> List[Dict[str, Any]]:
    with open(os.path.join(str(out), "journal.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f][1:]


def submitted_at(out: Any) -> List[Tuple[int, float]]:
    """(item, time) of each create call journaled as it was sent, in the journal's order."""
    return [(r["i"], r["t"]) for r in records(out) if r.get("s") == "submitting"]


@pytest.mark.parametrize("pool, workers", [(None, 10), (2, 4)])
def test_a_batch_starts_no_more_threads_than_its_client_keeps_connections(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, pool: Any, workers: int
) -> None:
    # On an account of many slots, 16 workers shared a Client of 10 connections (its default): urllib3 warned
    # "Connection pool is full, discarding connection" to a host that logs, with the README's own example. 4 at least.
    start, started = batch._Engine.start_workers, []

    def counted(threads: List[Any]) -> None:
        started.append(len(threads))
        start(threads)

    monkeypatch.setattr(batch._Engine, "start_workers", staticmethod(counted))
    options = {} if pool is None else {"pool_maxsize": pool}
    with FakeLeonardo(concurrency_slots=40) as fake:
        with Client(api_key=fake.api_key, base_url=fake.base_url, **options) as client:
            assert run_batch(client, ITEMS[:1], str(tmp_path), posts_per_minute=FAST).ok
    assert started == [workers]


def test_a_batch_fills_the_accounts_slots_and_saves_every_image(account_fake: FakeLeonardo, account_client: Client, tmp_path: Any) -> None:
    items = ITEMS + [{"prompt": "a paper lantern, v2", "model": "phoenix-v1.0", "width": 512, "height": 512, "num_images": 1}]
    summary = run_batch(account_client, items, str(tmp_path), posts_per_minute=FAST)
    assert summary.ok and summary.images == 7
    assert posts(account_fake) == 7 and len(account_fake.generation_ids()) == 7
    pngs = sorted(p for p in os.listdir(tmp_path) if p.endswith(".png"))
    assert len(pngs) == 7 and all((tmp_path / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert summary.credits  # from the create responses' cost


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},  # answered 500 after it ran
        {"drop": True},  # connection dropped after it ran
        {"delay": 1.6},  # stalled past the client's 1 s read timeout after it ran
    ],
    ids=["500", "dropped", "read-timeout"],
)
def test_a_create_call_that_ran_but_failed_is_adopted_not_sent_again(
    account_fake: FakeLeonardo, account_client: Client, tmp_path: Any, fault: Dict[str, Any]
) -> None:
    account_fake.inject(path="/generations", method="POST", after=True, **fault)
    said: List[str] = []
    summary = run_batch(account_client, ITEMS, str(tmp_path), posts_per_minute=FAST,
                        on_progress=lambda progress: said.append(progress.message))
    assert summary.ok and summary.ambiguous == 0
    # The client's advice to look for it before sending again is what the batch does itself: not said beside it.
    [waiting] = [message for message in said if "reconciling with the account's generations" in message]
    assert MAY_HAVE_BEEN_MADE not in waiting and "may have been made" not in waiting, waiting
    assert posts(account_fake) == len(ITEMS) and len(account_fake.generation_ids()) == len(ITEMS)  # no second POST
    adopted = [r for r in records(tmp_path) if r.get("adopted")]
    assert len(adopted) == 1 and adopted[0]["id"] in account_fake.generation_ids()


def test_429_storms_fail_no_item(account_fake: FakeLeonardo, tmp_path: Any) -> None:
    retry_after = 0.2
    account_fake.inject(status=429, retry_after=retry_after, path="/generations", method="POST", times=3)
    with Client(api_key=account_fake.api_key, base_url=account_fake.base_url) as client:  # it would retry a 429
        summary = run_batch(client, ITEMS, str(tmp_path), posts_per_minute=FAST)
    assert summary.ok and summary.failed == 0
    assert len(account_fake.generation_ids()) == len(ITEMS) and posts(account_fake) == len(ITEMS) + 3
    # Every 429 reached the batch, and each attempt was journaled with its own time: a retry inside the
    # client, after its Retry-After, could reach the server later than a rerun's reconciliation assumes.
    pauses = [r for r in records(tmp_path) if r.get("reason", "").startswith("429")]
    assert len(pauses) == 3 and len(submitted_at(tmp_path)) == len(ITEMS) + 3
    # Retry-After honoured: each re-send comes that long after the attempt refused (the whole batch takes about as
    # long as a short Retry-After even unpaused, so its elapsed time would prove nothing).
    sent: Dict[int, List[float]] = {}
    for index, at in submitted_at(tmp_path):
        sent.setdefault(index, []).append(at)
    gaps = [later - earlier for times in sent.values() for earlier, later in zip(times, times[1:])]
    assert len(gaps) == 3 and min(gaps) >= retry_after - 0.002, gaps  # the journal's times are rounded to ms


def test_a_batch_whose_create_calls_never_go_through_stops_and_a_rerun_resumes(
    account_fake: FakeLeonardo, tmp_path: Any
) -> None:
    # Every POST refused: after item_timeout the batch stops (it paused and retried forever), nothing spent.
    account_fake.inject(status=429, retry_after=0.4, path="/generations", method="POST", times=None)
    with Client(api_key=account_fake.api_key, base_url=account_fake.base_url, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError, match=r"for \d+s no create call went through \(the last: HTTP 429"):
            run_batch(client, ITEMS, str(tmp_path), posts_per_minute=FAST, item_timeout=0.4)
        assert time.monotonic() - started < 10 and account_fake.generation_ids() == []
        account_fake.clear_faults()
        assert run_batch(client, ITEMS, str(tmp_path), posts_per_minute=FAST).ok
    assert len(account_fake.generation_ids()) == len(ITEMS)


def test_a_batch_whose_create_calls_all_fail_at_the_server_stops_too(
    account_fake: FakeLeonardo, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 500 may have run: each was reconciled, found never created, and sent again, for ever.
    monkeypatch.setattr(batch, "LOOK_AGAIN", 0.1)  # each is looked for again that long after its window, not 10 s
    account_fake.inject(status=500, path="/generations", method="POST", times=None)
    with Client(api_key=account_fake.api_key, base_url=account_fake.base_url, timeout=(0.3, 0.3)) as client:
        started = time.monotonic()
        with pytest.raises(LeonardoError, match=r"no create call went through \(the last: #\d failed and was never"):
            # item_timeout: a round, window (0.6 s) and LOOK_AGAIN: the stop comes at the second "never created"
            run_batch(client, ITEMS[:2], str(tmp_path), posts_per_minute=FAST, item_timeout=0.7)
        assert time.monotonic() - started < 15 and account_fake.generation_ids() == []


def test_posts_are_paced_to_posts_per_minute(tmp_path: Any) -> None:
    with FakeLeonardo(posts_per_minute=3, concurrency_slots=10) as limited:  # a fourth POST would get 429
        with Client(api_key=limited.api_key, base_url=limited.base_url, timeout=(2, 5), max_retries=0) as c:
            summary = run_batch(c, ITEMS[:3], str(tmp_path), posts_per_minute=120)
            assert summary.ok and posts(limited) == 3  # paced: none refused
    sent = [at for _, at in submitted_at(tmp_path)]
    gaps = [later - earlier for earlier, later in zip(sent, sent[1:])]
    assert len(gaps) == 2 and min(gaps) >= 0.5 - 0.002, gaps  # half a second apart (the journal rounds to ms)


def test_failed_generations_are_recorded_and_the_rest_complete(tmp_path: Any) -> None:
    with FakeLeonardo(fail_rate=0.5, seed=11) as flaky:
        with Client(api_key=flaky.api_key, base_url=flaky.base_url, timeout=(2, 5)) as c:
            summary = run_batch(c, ITEMS, str(tmp_path), posts_per_minute=FAST)
        assert 0 < summary.failed < len(ITEMS) and summary.complete + summary.failed == len(ITEMS)
        failed = [r for r in records(tmp_path) if r.get("s") == "failed"]
        assert all("FAILED" in r["reason"] for r in failed)


def cli(out: Any, prompts: Any, fake: FakeLeonardo, *extra: str) -> "subprocess.Popen[str]":
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEONARDO_", "PYTEST_"))}
    env.update(LEONARDO_API_KEY=fake.api_key, LEONARDO_BASE_URL=fake.base_url, PYTHONPATH=REPO)
    argv = [sys.executable, "-m", "leonardo_client", "batch", str(prompts), "--out", str(out), "--read-timeout", "1"]
    return subprocess.Popen(
        argv + list(extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(out.parent)
    )


def test_ctrl_c_journals_what_is_in_flight_exits_130_and_the_rerun_resumes(tmp_path: Any) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"a kite, study {n}\n" for n in range(8)), encoding="utf-8")
    out = tmp_path / "out"
    with FakeLeonardo(completion_delay=1.0, concurrency_slots=2) as fake:
        pace = ("--posts-per-minute", "6000")  # the rerun's too: at the default's 0.6 s a POST, it took 2 s longer
        process = cli(out, prompts, fake, *pace)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(g for g in fake.generation_ids()):
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        assert process.returncode == -signal.SIGINT, err  # ended by the signal: the shell shows 130
        assert "leonardo-client: interrupted; rerun the same command to resume" in err and "Traceback" not in err
        submitted = {r["id"] for r in records(out) if r.get("s") == "submitted"}
        assert submitted and submitted == set(fake.generation_ids())  # every POST that left is journaled
        fake.completion_delay = 0.05  # the rerun's jobs: quick (those in flight keep their second)
        rerun = cli(out, prompts, fake, *pace)  # the same command
        stdout, err = rerun.communicate(timeout=30)
        assert rerun.returncode == 0, err
        assert "8 of 8 complete" in stdout
        assert len(fake.generation_ids()) == 8 and posts(fake) == 8


def test_a_second_ctrl_c_exits_at_once(tmp_path: Any) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a kite\n", encoding="utf-8")
    out = tmp_path / "out"
    with FakeLeonardo() as fake:
        fake.inject(path="/generations", method="POST", delay=8.0)  # a create call that hangs
        process = cli(out, prompts, fake, "--read-timeout", "10")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(r.method == "POST" for r in fake.requests):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        # The second only once the first was taken: sent while the child had not run yet (a busy machine), the
        # two were one stop, which waited out the 8 s POST. Then past REPEATED_SIGNAL (0.1 s), a second stop.
        said = stopping_line(process)
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        assert process.returncode == -signal.SIGINT and time.monotonic() - started < 3.0  # the shell shows 130
        assert "Traceback" not in said + err


def stopping_line(process: "subprocess.Popen[str]") -> str:
    """The child's stderr up to its "Ctrl-C again to quit at once" line: it has taken the first Ctrl-C."""
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # bounded: the child says it, or exits
        lines.append(line)
        if "Ctrl-C again" in line:
            break
    return "".join(lines)
