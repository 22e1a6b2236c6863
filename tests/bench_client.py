#!/usr/bin/env python3
"""Benchmark, run by hand (timed tests flake): ``python tests/bench_client.py [--quick] [--skip PART]``.

About 30 s (--quick: 20 s, noisier); FakeLeonardo serves on 127.0.0.1, child processes are measured.
Printed, each with its target (exit 1 if one is missed): Client's CPU time per call over a bare Session's
sending the same request (median over rounds of the ratio; a second bare Session is the control, its ratio
the noise), the CPU time of ``import leonardo_client`` over ``import requests`` (``import requests`` again is
the control), the memory growth of a 64 MiB download_image, wait_for_generation's polls and lateness.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import requests
import urllib3

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # this checkout's leonardo_client, installed or not
import leonardo_client  # noqa: E402
from leonardo_client import Client, CreateGenerationRequest  # noqa: E402
from leonardo_client.payloads import to_payload  # noqa: E402
from leonardo_client.testing import FakeLeonardo  # noqa: E402

KEY = "bench-key-0123456789"
TARGET = {"call": 1.05, "import": 1.20, "memory": 16 * 2**20, "late": 2.0, "polls": 12}
VERDICT = {True: "PASS", False: "MISS"}
MUST_NOT_IMPORT = ("leonardo_client.testing", "leonardo_client.__main__", "http.server", "argparse")
IMPORT = "from time import process_time as c, perf_counter as w; a, b = c(), w(); import {}; print([c() - a, w() - b])"
DOWNLOAD = """
import json, os, resource, sys, tracemalloc, requests, leonardo_client
client = leonardo_client.Client(api_key={key!r}, base_url={base!r})
client.get_generation_by_id("warm-up"); rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # connection made
if {trace}: tracemalloc.start()
if {how!r} == "client": client.download_image({url!r}, {path!r})
else: open({path!r}, "wb").write(requests.get({url!r}, timeout=60).content)  # the reference: held whole
rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * (1 if sys.platform == "darwin" else 1024)
print(json.dumps([tracemalloc.get_traced_memory()[1] if {trace} else rss, os.path.getsize({path!r})]))
"""
Result = Tuple[bool, List[str]]
Seen = Dict[str, List[Sequence[float]]]


def run_child(env: Dict[str, str], *argv: str) -> Any:  # what a child Python printed last, as JSON
    out = subprocess.run([sys.executable, *argv], env=env, cwd=REPO, stdout=subprocess.PIPE, timeout=300, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def rotated(sides: Dict[str, Any], rounds: int, measure: Callable[[Any], Sequence[float]]) -> Seen:
    seen: Seen = {side: [] for side in sides}
    for r in range(rounds):  # every side once a round, in rotated order: each side in each position alike
        for side in list(sides)[r % len(sides):] + list(sides)[: r % len(sides)]:
            seen[side].append(measure(sides[side]))
    return seen


def medians(seen: Seen, index: int) -> Dict[str, float]:
    return {side: statistics.median(v[index] for v in values) for side, values in seen.items()}


def measure_calls(base: str, rounds: int, calls: int) -> int:  # the child's: {operation: {side: [[wall, CPU]...]}}
    client, bare, control = Client(api_key=KEY, base_url=base), requests.Session(), requests.Session()
    agent = f"leonardo-client/{leonardo_client.__version__} python-requests/{requests.__version__}"
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json", "User-Agent": agent}
    request = CreateGenerationRequest(prompt="a lighthouse at dusk, volumetric light", width=1024, height=768,
                                      model_id="b24e16ff-06e3-43eb-8d33-4416c2d75876", num_images=4, alchemy=True)
    done = client.create_generation(request)["sdGenerationJob"]["generationId"]  # COMPLETE at once (delay 0)

    def send(session: requests.Session, method: str, path: str, **kwargs: Any) -> Any:
        return session.request(method, base + path, headers=headers, timeout=(10.0, 60.0), **kwargs).json()

    def per_call(call: Callable[[], Any]) -> Tuple[float, float]:  # wall and this thread's CPU time, per call
        c, w = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            call()
        return (time.perf_counter() - w) / calls, (time.thread_time() - c) / calls

    ops: Dict[str, Dict[str, Callable[[], Any]]] = {
        "get_generation_by_id": {"client": lambda: client.get_generation_by_id(done),
                                 "bare": lambda: send(bare, "GET", "/generations/" + done),
                                 "control": lambda: send(control, "GET", "/generations/" + done)},
        "create_generation": {"client": lambda: client.create_generation(request),  # serializing is part of it
                              "bare": lambda: send(bare, "POST", "/generations", json=to_payload(request))},
    }
    get, post = ops["get_generation_by_id"], ops["create_generation"]
    assert get["client"]() == get["bare"]() and set(post["client"]()) == set(post["bare"]()) == {"sdGenerationJob"}
    for fn in [fn for sides in ops.values() for fn in sides.values()] * max(20, calls // 4):
        fn()  # warm-up: connections open, caches filled
    print(json.dumps({name: rotated(sides, rounds, per_call) for name, sides in ops.items()}))
    return 0


def bench_calls(fake: FakeLeonardo, env: Dict[str, str], rounds: int, calls: int) -> Result:
    ok, lines = True, []
    for name, by in run_child(env, __file__, "--measure-calls", fake.base_url, str(rounds), str(calls)).items():
        def paired(side: str, i: int) -> float:  # median over the rounds of side/bare: each pair ran back to back
            return float(statistics.median(x[i] / b[i] for x, b in zip(by[side], by["bare"])))
        ratio, wall, cpu = paired("client", 1), medians(by, 0), medians(by, 1)
        ok = ok and ratio <= TARGET["call"]
        lines += [f"  {name + ':':<22} CPU per call: Client {cpu['client'] * 1e6:7.1f} us  bare Session {cpu['bare'] * 1e6:7.1f} us  "
                  f"ratio {ratio:.3f}  target <= {TARGET['call']:.2f}  {VERDICT[ratio <= TARGET['call']]}",
                  f"  {'':<22} (wall per call {wall['client'] * 1e6:.1f} vs {wall['bare'] * 1e6:.1f} us, ratio {paired('client', 0):.3f}; "
                  f"the client's extra CPU {(cpu['client'] - cpu['bare']) * 1e6:+.1f} us a call)"]
        lines += [f"  {'':<22} (control, a second bare Session: CPU ratio {paired('control', 1):.3f}, wall ratio "
                  f"{paired('control', 0):.3f}: the noise of this measurement)"] if "control" in by else []
    return ok, lines + [f"  (ratios: medians over {rounds} rounds of Client/bare, {calls} calls per side per round, sides in "
                        f"rotated order; TCP connections opened: {fake.connections_opened}, one per session is 3)"]


def bench_import(runs: int, env: Dict[str, str]) -> Result:
    sides = {"import requests": "requests", "import leonardo_client": "leonardo_client",
             "import requests (again)": "requests"}
    run_child(env, "-c", IMPORT.format("leonardo_client"))  # fills the byte-code cache (of requests too)
    seen = rotated(sides, runs, lambda module: run_child(env, "-c", IMPORT.format(module)))
    cpu, wall = medians(seen, 0), medians(seen, 1)
    ok = cpu["import leonardo_client"] / cpu["import requests"] <= TARGET["import"]
    notes = ["", f"target CPU ratio <= {TARGET['import']:.2f}  {VERDICT[ok]}", "(control: the noise of this measurement)"]
    added, loaded = run_child(env, "-c", "import json, sys, requests; before = set(sys.modules); import leonardo_client; "
                              "print(json.dumps([sorted(set(sys.modules) - before), sorted(sys.modules)]))")
    heavy = [name for name in MUST_NOT_IMPORT if name in loaded]
    return ok and not heavy, [f"  (medians of {runs} fresh interpreters per statement, rotated order, byte-code cached)"] + [
        f"  {side:<24} CPU {cpu[side] * 1e3:6.1f} ms  ratio {cpu[side] / cpu['import requests']:.3f}   "
        f"wall {wall[side] * 1e3:6.1f} ms  ratio {wall[side] / wall['import requests']:.3f}   {note}".rstrip()
        for side, note in zip(sides, notes)] + [
        f"  modules leonardo_client adds to requests': {', '.join(added)}",
        f"  fake server / CLI / http.server / argparse not loaded: {VERDICT[not heavy]} {' '.join(heavy)}".rstrip()]


def bench_download(fake: FakeLeonardo, env: Dict[str, str], tmp: str) -> Result:
    size, path, grew = 64 * 2**20, os.path.join(tmp, "download.bin"), {}  # (how, tracemalloc?) -> (bytes, seconds)
    for how, trace in [("client", True), ("client", False), ("reference", True), ("reference", False)]:
        started, code = time.perf_counter(), DOWNLOAD.format(key=KEY, base=fake.base_url, how=how, url=fake.blob_url(size),
                                                             path=path, trace=trace)
        growth, written = run_child(env, "-c", code)
        assert written == size, f"{how} download wrote {written} bytes, expected {size}"
        grew[how, trace] = (f"{growth / 2**20:.2f} MiB", time.perf_counter() - started, growth <= TARGET["memory"])
    target, client = f"target <= {TARGET['memory'] / 2**20:.2f} MiB", grew["client", False]
    return grew["client", True][2] and client[2], [
        f"  tracemalloc peak        {grew['client', True][0]:>10}  {target}  {VERDICT[grew['client', True][2]]}",
        f"  ru_maxrss growth        {client[0]:>10}  {target}  {VERDICT[client[2]]}",
        f"  (64 MiB over loopback HTTP, each in a fresh interpreter, {client[1]:.1f} s with start-up; file size checked. "
        f"Reference, requests.get(url).content held whole: tracemalloc {grew['reference', True][0]}, "
        f"ru_maxrss {grew['reference', False][0]})"]


def bench_wait(fake: FakeLeonardo) -> Result:
    fake.completion_delay = 4.0
    with Client(api_key=KEY, base_url=fake.base_url) as client:
        created = time.time()  # before the POST: the generation is COMPLETE at most 4 s after this
        ident = client.create_generation({"prompt": "a lighthouse at dusk"})["sdGenerationJob"]["generationId"]
        assert client.wait_for_generation(ident, timeout=60)["status"] == "COMPLETE"
        late = time.time() - created - 4.0
    polls = sum(1 for r in fake.requests if r.method == "GET" and r.path == "/generations/" + ident)
    return late <= TARGET["late"] and polls <= TARGET["polls"], [
        f"  noticed {late:.2f} s after completion  target <= {TARGET['late']:.1f} s  {VERDICT[late <= TARGET['late']]}",
        f"  {polls} GET requests                  target <= {TARGET['polls']}      {VERDICT[polls <= TARGET['polls']]}",
        "  (generation completes 4 s after creation; default poll_interval)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a rough look (noisier: see the controls)")
    parser.add_argument("--skip", action="append", default=[], choices=["calls", "import", "download", "wait"])
    parser.add_argument("--measure-calls", nargs=3, help=argparse.SUPPRESS)  # BASE_URL ROUNDS CALLS: the child's part
    args = parser.parse_args()
    if args.measure_calls:
        return measure_calls(args.measure_calls[0], int(args.measure_calls[1]), int(args.measure_calls[2]))
    print(f"leonardo_client {leonardo_client.__version__}, requests {requests.__version__}, "
          f"urllib3 {getattr(urllib3, '__version__', '?')}, Python {sys.version.split()[0]} on {sys.platform}, "
          f"{os.cpu_count()} CPUs; server: FakeLeonardo on 127.0.0.1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leonardo-bench-") as tmp, FakeLeonardo(api_key=KEY) as fake:
        env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"),
                   PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code cached, as for an installed package
        benches: List[Tuple[str, str, Callable[[], Result]]] = [
            ("calls", "Per-call cost vs bare requests.Session",
             lambda: bench_calls(fake, env, 8 if args.quick else 30, 60 if args.quick else 80)),
            ("import", "Import time vs `import requests`", lambda: bench_import(6 if args.quick else 20, env)),
            ("download", "download_image of 64 MiB: memory growth", lambda: bench_download(fake, env, tmp)),
            ("wait", "wait_for_generation, 4 s generation", lambda: bench_wait(fake))]
        results = [(title, *bench()) for name, title, bench in benches if name not in args.skip]
    for title, _, lines in results:
        print(f"\n{title}\n" + "\n".join(lines))
    missed = [title for title, ok, _ in results if not ok]
    print(f"\n{'ALL PASS' if not missed else 'MISSED: ' + '; '.join(missed)}  ({time.perf_counter() - started:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
