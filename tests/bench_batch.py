"""Benchmark of the batch engine against FakeLeonardo (run by hand; about two minutes).

    python tests/bench_batch.py

Prints, each with its goal:
  1. throughput as a fraction of the bound min(slots / job time, POST rate), 200 items,
     5 slots, 0.5 s jobs (slot-bound);
  2. the same for a POST-rate-bound setting (the default 100 POSTs a minute, 10 slots),
     with the number of 429s the fake answered;
  3. API requests per generated image in run 1 (POST + polls + the share of /me and listing);
  4. the peak RSS of a 1,000-item batch (the command line in a subprocess).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

from leonardo_client import Client
from leonardo_client.batch import run_batch
from leonardo_client.testing import FakeLeonardo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def items(count: int) -> List[Dict[str, Any]]:
    return [{"prompt": f"a teapot, catalogue shot {n}", "width": 512, "height": 512, "num_images": 1} for n in range(count)]


def api_requests(fake: FakeLeonardo) -> List[Any]:
    return [r for r in fake.requests if r.kind != "cdn"]


def throughput(count: int, slots: int, job: float, fake_ppm: Any, batch_ppm: float) -> Tuple[float, float, int, int]:
    """(fraction of the bound, seconds, API requests, 429 answers) of one batch."""
    bound = min(slots / job, batch_ppm / 60.0)  # items a second
    with FakeLeonardo(completion_delay=job, concurrency_slots=slots, posts_per_minute=fake_ppm) as fake:
        with Client(api_key=fake.api_key, base_url=fake.base_url) as client, tempfile.TemporaryDirectory() as out:
            started = time.monotonic()
            summary = run_batch(client, items(count), out, posts_per_minute=batch_ppm)
            elapsed = time.monotonic() - started
        assert summary.ok, summary
        requests = api_requests(fake)
        posts = sum(1 for r in requests if r.method == "POST" and r.path.endswith("/generations"))
        rejected = posts - len(fake.generation_ids())  # POSTs that created nothing: 429s
    return (count / elapsed) / bound, elapsed, len(requests), rejected


def rss_of_a_big_batch(count: int) -> Tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``leonardo-client batch`` with ``count`` prompts."""
    with FakeLeonardo(completion_delay=(0.05, 0.3), concurrency_slots=50, seed=1) as fake:
        with tempfile.TemporaryDirectory() as root:
            prompts = os.path.join(root, "prompts.txt")
            with open(prompts, "w", encoding="utf-8") as f:
                f.writelines(f"a teapot, catalogue shot {n}\n" for n in range(count))
            env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
            env.update(LEONARDO_API_KEY=fake.api_key, LEONARDO_BASE_URL=fake.base_url, PYTHONPATH=REPO)
            argv = [sys.executable, "-m", "leonardo_client", "batch", prompts, "--out", os.path.join(root, "out")]
            started = time.monotonic()
            subprocess.run(argv + ["--posts-per-minute", "100000"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return peak / 1024.0, elapsed


def main() -> int:
    print("batch benchmark (FakeLeonardo on 127.0.0.1)")
    fraction, seconds, requests, rejected = throughput(200, 5, 0.5, None, 6000)
    print(f"1. slot-bound, 200 items, 5 slots, 0.5 s jobs:   {fraction:.3f} of the bound (goal >= 0.95), {seconds:.1f} s, ideal 20.0 s")
    per_image = requests / 200
    fraction2, seconds2, _, rejected2 = throughput(120, 10, 0.5, 100, 100)
    print(f"2. POST-bound, 120 items, 100 POSTs/min, 10 slots: {fraction2:.3f} of the bound (goal >= 0.95), {seconds2:.1f} s, ideal 72.0 s; {rejected2} 429s (goal 0)")
    print(f"3. API requests per generated image (run 1):     {per_image:.2f} (goal <= 3): {requests} requests for 200 images")
    peak, seconds3 = rss_of_a_big_batch(1000)
    print(f"4. peak RSS of a 1,000-item batch (the CLI):     {peak:.1f} MiB (goal <= 60 MiB), {seconds3:.1f} s")
    ok = fraction >= 0.95 and fraction2 >= 0.95 and rejected2 == 0 and per_image <= 3 and peak <= 60
    print("all goals met" if ok else "SOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
