#!/usr/bin/env python3
"""Benchmark: leonardo_client's overhead, measured against a bare ``requests.Session``.

Run by hand from the repository root (it is not a pytest test; timings in a test suite flake)::

    python tests/bench_client.py            # about a minute
    python tests/bench_client.py --quick    # a rough look in ~25 s (noisier: see the control lines)
    python tests/bench_client.py --rounds 60 --calls 100 --import-runs 40   # steadier numbers
    python tests/bench_client.py --skip import --skip download   # only some parts

It exits with status 0 when every target is met, 1 otherwise.

It makes a throwaway self-signed certificate with the ``openssl`` command line, starts a
small HTTPS/1.1 keep-alive server on 127.0.0.1 in a child process (so that its CPU time does
not share a GIL with the code being measured), and prints, each with its target and
PASS/MISS:

* per-call cost of ``get_generation_by_id`` and ``create_generation`` through ``Client``, as
  a ratio to a bare ``requests.Session`` sending the same request (same Authorization,
  Accept and User-Agent headers, same JSON body, same timeout) and parsing the JSON. Both
  trust the certificate through ``REQUESTS_CA_BUNDLE`` (set for this process and its
  children), so the Client is built exactly as a user builds it, with its own session.
  (``session.verify = path`` would not do: requests lets a ``REQUESTS_CA_BUNDLE`` or
  ``CURL_CA_BUNDLE`` in the environment override it.) Each round runs a block of calls per
  side, back to back in rotated order; the ratio judged is the median over the rounds of
  Client/bare, so that load from other work on the machine hits both sides alike. The ratio
  of the medians and this process's CPU time per call are shown too, and a second bare
  session is measured as a control: its ratio to the first is the noise;
* ``import leonardo_client`` time as a ratio to ``import requests``: each in a fresh
  interpreter, measured inside it around the import statement, many runs in rotated order,
  medians. The CPU time of the import is judged (on a shared machine wall time also holds
  however long the child waited for a core); wall time is shown, and ``import requests``
  measured a second time as a control. Byte-code caching is on for all (a temporary
  PYTHONPYCACHEPREFIX), as it is for an installed package, whatever
  PYTHONDONTWRITEBYTECODE says in this shell;
* peak memory growth while ``Client.download_image`` saves a 64 MiB file: the tracemalloc
  peak, and the ru_maxrss growth, each in a fresh interpreter;
* how many requests ``Client.wait_for_generation`` makes for a generation that completes
  4 seconds after it was created, and how late after completion it returns.

Nothing here talks to any host but 127.0.0.1. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socketserver
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_PREFIX = "/api/rest/v1"
API_KEY = "bench-key-0123456789"
DONE_ID = "bench-done"
BLOB_SIZE = 64 * 1024 * 1024
BLOB_PATH = "/files/blob-64m.bin"
COMPLETION_DELAY = 4.0
SERVER_MAX_LIFETIME = 900.0  # the server child exits on its own after this, whatever happens
IDLE_TIMEOUT = 60.0  # a keep-alive connection idle this long is closed by the server

TARGET_CALL_RATIO = 1.05
TARGET_IMPORT_RATIO = 1.10
TARGET_DOWNLOAD_GROWTH = 16 * 1024 * 1024
TARGET_WAIT_LATENESS = 2.0
TARGET_WAIT_POLLS = 12

# Modules that must not load with `import leonardo_client` (they load only when used).
MUST_NOT_IMPORT = ("leonardo_client.testing", "leonardo_client.__main__", "http.server", "argparse")


# =============================================================================================
# The server (runs in a child process: `bench_client.py --serve CERT KEY`)
# =============================================================================================

_DONE_BODY = json.dumps(
    {
        "generations_by_pk": {
            "id": DONE_ID,
            "status": "COMPLETE",
            "prompt": "a lighthouse at dusk",
            "modelId": "b24e16ff-06e3-43eb-8d33-4416c2d75876",
            "imageHeight": 768,
            "imageWidth": 1024,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "generated_images": [
                {
                    "id": "img-1",
                    "url": "https://cdn.example.invalid/img-1.jpg",
                    "nsfw": False,
                    "likeCount": 0,
                    "motionMP4URL": None,
                    "generated_image_variation_generics": [],
                }
            ],
        }
    }
).encode()


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.created: Dict[str, float] = {}  # generation id -> time.time() of creation
        self.gets: Dict[str, int] = {}  # generation id -> GET count (created ids only)
        self.connections = 0
        self.next_id = 0


class _BenchServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.state = _State()
        self.blob_chunk = memoryview(b"\x5a" * (1024 * 1024))
        super().__init__(("127.0.0.1", 0), _BenchHandler)


class _BenchHandler(socketserver.StreamRequestHandler):
    """A minimal HTTP/1.1 keep-alive handler: cheaper per request than http.server's parsing."""

    server: _BenchServer

    def setup(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        self.request = self.server.context.wrap_socket(self.request, server_side=True)
        with self.server.state.lock:
            self.server.state.connections += 1
        super().setup()

    def handle(self) -> None:
        for _ in range(10_000_000):  # requests per connection, bounded
            try:
                line = self.rfile.readline(65537)
            except (OSError, ValueError):
                return
            if not line:
                return
            parts = line.split()
            if len(parts) != 3:
                return
            method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
            length, close, auth = 0, False, ""
            for _ in range(100):  # header lines, bounded
                header = self.rfile.readline(65537)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
                elif name == "authorization":
                    auth = value.strip()
            body = self.rfile.read(length) if length else b""
            if not self._respond(method, target, body, auth):
                return
            if close:
                return

    def _send(self, status: str, body: bytes, content_type: str = "application/json") -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        self.wfile.write(head.encode("ascii") + body)

    def _respond(self, method: str, target: str, body: bytes, auth: str) -> bool:
        state = self.server.state
        path = target.split("?", 1)[0]
        if path == BLOB_PATH and method == "GET":
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {BLOB_SIZE}\r\n\r\n"
            self.wfile.write(head.encode("ascii"))
            chunk = self.server.blob_chunk
            for _ in range(BLOB_SIZE // len(chunk)):
                self.wfile.write(chunk)
            return True
        if path.startswith("/_stats/"):
            key = path[len("/_stats/") :]
            with state.lock:
                if key == "server":
                    info: Dict[str, Any] = {"connections": state.connections}
                else:
                    created = state.created.get(key)
                    info = {
                        "created": created,
                        "completes_at": None if created is None else created + COMPLETION_DELAY,
                        "gets": state.gets.get(key, 0),
                    }
            self._send("200 OK", json.dumps(info).encode())
            return True
        if not path.startswith(API_PREFIX + "/"):
            self._send("404 Not Found", b'{"error":"not found"}')
            return True
        if auth != f"Bearer {API_KEY}":
            self._send("401 Unauthorized", b'{"error":"Invalid authentication"}')
            return True
        route = path[len(API_PREFIX) :]
        if method == "POST" and route == "/generations":
            if not body.startswith(b"{"):
                self._send("400 Bad Request", b'{"error":"expected a JSON object"}')
                return True
            with state.lock:
                state.next_id += 1
                ident = f"gen-{state.next_id:08d}"
                state.created[ident] = time.time()
            self._send(
                "200 OK", b'{"sdGenerationJob":{"generationId":"%s","apiCreditCost":8}}' % ident.encode()
            )
            return True
        if method == "GET" and route.startswith("/generations/"):
            ident = route[len("/generations/") :]
            if ident == DONE_ID:
                self._send("200 OK", _DONE_BODY)
                return True
            with state.lock:
                created = state.created.get(ident)
                if created is not None:
                    state.gets[ident] = state.gets.get(ident, 0) + 1
            if created is None:
                self._send("200 OK", b'{"generations_by_pk":null}')
                return True
            done = time.time() >= created + COMPLETION_DELAY
            generation = {
                "id": ident,
                "status": "COMPLETE" if done else "PENDING",
                "generated_images": (
                    [{"id": ident + "-0", "url": "https://cdn.example.invalid/x.jpg", "nsfw": False}] if done else []
                ),
            }
            self._send("200 OK", json.dumps({"generations_by_pk": generation}).encode())
            return True
        self._send("404 Not Found", b'{"error":"not found"}')
        return True


def serve(cert: str, key: str) -> None:
    """Child-process entry: print the port, serve until stdin closes or the lifetime ends."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _BenchServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    deadline = time.monotonic() + SERVER_MAX_LIFETIME
    while time.monotonic() < deadline:  # the parent closes our stdin when it is done (or dies)
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not os.read(sys.stdin.fileno(), 1024):
            break
    server.shutdown()
    server.server_close()


# =============================================================================================
# Helpers for the measuring side
# =============================================================================================


def make_certificate(directory: str) -> Tuple[str, str]:
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", key, "-out", cert,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=60,
    )  # fmt: skip
    return cert, key


class ServerProcess:
    def __init__(self, cert: str, key: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", cert, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("the benchmark server did not start")
        self.port = int(line)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def median(values: List[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def child_env(pycache: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(code: str, env: Dict[str, str], timeout: float = 120.0) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE, timeout=timeout, check=True
    )
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def fmt_bytes(n: float) -> str:
    return f"{n / (1024 * 1024):.2f} MiB"


# =============================================================================================
# 1. Per-call overhead
# =============================================================================================


def bench_calls(base_url: str, rounds: int, calls: int) -> Tuple[bool, List[str]]:
    import requests
    from requests.__version__ import __version__ as requests_version

    import leonardo_client
    from leonardo_client import Client, CreateGenerationRequest
    from leonardo_client.payloads import to_payload

    client = Client(api_key=API_KEY, base_url=base_url)  # trusts the cert via REQUESTS_CA_BUNDLE
    bare = requests.Session()
    agent = f"leonardo-client/{leonardo_client.__version__} python-requests/{requests_version}"
    headers = {"Authorization": f"Bearer {API_KEY}", "Accept": "application/json", "User-Agent": agent}
    timeout = (10.0, 60.0)

    request = CreateGenerationRequest(
        prompt="a lighthouse at dusk, volumetric light",
        model_id="b24e16ff-06e3-43eb-8d33-4416c2d75876",
        width=1024,
        height=768,
        num_images=4,
        alchemy=True,
    )
    body = to_payload(request)
    get_url = f"{base_url}/generations/{DONE_ID}"
    post_url = f"{base_url}/generations"

    def bare_get() -> Any:
        response = bare.get(get_url, headers=headers, timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        return response.json()

    def bare_post() -> Any:
        response = bare.post(post_url, json=body, headers=headers, timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        return response.json()

    def client_get() -> Any:
        return client.get_generation_by_id(DONE_ID)

    def client_post() -> Any:
        return client.create_generation(request)  # the dataclass: its serialization is part of the cost

    # Same answers on both sides, or the comparison means nothing.
    assert client_get() == bare_get()
    assert set(client_post()) == set(bare_post()) == {"sdGenerationJob"}

    def per_call(fn: Callable[[], Any]) -> Tuple[float, float]:
        """Wall time and this thread's CPU time per call (the server is another process)."""
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        wall1, cpu1 = time.perf_counter(), time.thread_time()
        return (wall1 - wall0) / calls, (cpu1 - cpu0) / calls

    # A second bare session, measured as a side of its own: its ratio to the first is the noise.
    control = requests.Session()

    def control_get() -> Any:
        response = control.get(get_url, headers=headers, timeout=timeout)
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        return response.json()

    ops: List[Tuple[str, Dict[str, Callable[[], Any]]]] = [
        ("get_generation_by_id", {"client": client_get, "bare": bare_get, "control": control_get}),
        ("create_generation", {"client": client_post, "bare": bare_post}),
    ]
    for _, sides in ops:  # warm-up: connections open, caches filled, payloads imported
        for _ in range(max(20, calls // 4)):
            for fn in sides.values():
                fn()
    connections_before = _server_connections(bare, base_url)
    wall: Dict[str, Dict[str, List[float]]] = {name: {side: [] for side in sides} for name, sides in ops}
    cpu: Dict[str, Dict[str, List[float]]] = {name: {side: [] for side in sides} for name, sides in ops}
    for r in range(rounds):
        for name, sides in ops:
            order = list(sides)
            shift = r % len(order)  # rotate: each side runs in each position equally often
            for side in order[shift:] + order[:shift]:
                w, c = per_call(sides[side])
                wall[name][side].append(w)
                cpu[name][side].append(c)
    connections_opened = _server_connections(bare, base_url) - connections_before
    client.close()
    control.close()

    def paired(name: str, side: str) -> float:
        """Median over rounds of side/bare: each round's two blocks ran back to back."""
        return median([x / b for x, b in zip(wall[name][side], wall[name]["bare"])])

    ok, lines = True, []
    for name, sides in ops:
        ratio = paired(name, "client")
        ok = ok and ratio <= TARGET_CALL_RATIO
        c_med, b_med = median(wall[name]["client"]), median(wall[name]["bare"])
        c_cpu, b_cpu = median(cpu[name]["client"]), median(cpu[name]["bare"])
        lines.append(
            f"  {name + ':':<22} Client {c_med * 1e6:7.1f} us  bare Session {b_med * 1e6:7.1f} us  "
            f"ratio {ratio:.3f}  target <= {TARGET_CALL_RATIO:.2f}  {verdict(ratio <= TARGET_CALL_RATIO)}"
        )
        lines.append(
            f"  {'':<22} (ratio of the medians {c_med / b_med:.3f}; this process's CPU per call "
            f"{c_cpu * 1e6:.1f} vs {b_cpu * 1e6:.1f} us: {(c_cpu - b_cpu) * 1e6:+.1f} us, ratio {c_cpu / b_cpu:.3f})"
        )
        if "control" in sides:
            lines.append(
                f"  {'':<22} (control, a second bare Session: ratio {paired(name, 'control'):.3f}, "
                f"CPU ratio {median(cpu[name]['control']) / b_cpu:.3f}: the noise of this measurement)"
            )
    lines.append(
        f"  (ratio: median over {rounds} rounds of Client/bare, {calls} calls per side per round, "
        f"sides in rotated order; new TCP connections during the rounds: {connections_opened})"
    )
    bare.close()
    return ok, lines


def _server_connections(session: Any, base_url: str) -> int:
    root = base_url.split(API_PREFIX)[0]
    return int(session.get(f"{root}/_stats/server", timeout=10).json()["connections"])


# =============================================================================================
# 2. Import time
# =============================================================================================

_IMPORT_CODE = (
    "import time; c0 = time.process_time(); w0 = time.perf_counter(); {stmt}; "
    "w1 = time.perf_counter(); c1 = time.process_time(); "
    "import json; print(json.dumps([c1 - c0, w1 - w0]))"
)

_MODULES_CODE = """
import json, sys
import requests
base = set(sys.modules)
import leonardo_client
added = sorted(set(sys.modules) - base)
print(json.dumps({"added": added, "loaded": sorted(sys.modules)}))
"""


def bench_import(runs: int, pycache: str) -> Tuple[bool, List[str]]:
    """Import cost in fresh interpreters: CPU time judged, wall time and an A/A control shown.

    CPU time (process_time) of the import statement is the measure: on a shared 2-core machine
    wall time also holds however long the scheduler kept the child waiting. "requests again"
    is the same statement as "requests", measured as a separate side: its ratio is the noise.
    """
    env = child_env(pycache)
    statements = {
        "requests": "import requests",
        "leonardo_client": "import leonardo_client",
        "requests again": "import requests",
        "full": "from leonardo_client import Client, CreateGenerationRequest",
    }
    for stmt in statements.values():  # fills the byte-code cache for both sides
        run_child(_IMPORT_CODE.format(stmt=stmt), env)
    cpu: Dict[str, List[float]] = {key: [] for key in statements}
    wall: Dict[str, List[float]] = {key: [] for key in statements}
    keys = list(statements)
    for i in range(runs):
        shift = i % len(keys)  # rotate the order: each side runs in each position equally often
        for key in keys[shift:] + keys[:shift]:
            c, w = run_child(_IMPORT_CODE.format(stmt=statements[key]), env)
            cpu[key].append(c)
            wall[key].append(w)
    c_med = {key: median(values) for key, values in cpu.items()}
    w_med = {key: median(values) for key, values in wall.items()}
    ratio = c_med["leonardo_client"] / c_med["requests"]
    modules = run_child(_MODULES_CODE, env)
    heavy = [name for name in MUST_NOT_IMPORT if name in modules["loaded"]]
    ok = ratio <= TARGET_IMPORT_RATIO and not heavy

    def row(key: str, label: str) -> str:
        return (
            f"  {label:<24} CPU {c_med[key] * 1e3:6.1f} ms  ratio {c_med[key] / c_med['requests']:.3f}   "
            f"wall {w_med[key] * 1e3:6.1f} ms  ratio {w_med[key] / w_med['requests']:.3f}"
        )

    lines = [
        f"  (medians of {runs} fresh interpreters per statement, rotated order, byte-code cached)",
        row("requests", "import requests"),
        row("leonardo_client", "import leonardo_client")
        + f"   target CPU ratio <= {TARGET_IMPORT_RATIO:.2f}  {verdict(ratio <= TARGET_IMPORT_RATIO)}",
        row("requests again", "import requests (again)") + "   (control: the noise of this measurement)",
        row("full", "... and the dataclasses")
        + "   (info: `from leonardo_client import Client, CreateGenerationRequest`;"
        " the request dataclasses load on first use)",
        f"  modules leonardo_client adds to requests': {', '.join(modules['added'])}",
        f"  fake server / CLI / http.server / argparse not loaded: {verdict(not heavy)}"
        + (f" (loaded: {', '.join(heavy)})" if heavy else ""),
    ]
    if ratio > TARGET_IMPORT_RATIO:
        lines.append("  diagnose with: python -X importtime -c 'import leonardo_client' 2>&1 | sort -t'|' -k2 -n | tail")
    return ok, lines


# =============================================================================================
# 3. Download memory
# =============================================================================================

_DOWNLOAD_CODE = """
import json, os, resource, sys, tracemalloc
import requests
import leonardo_client
client = leonardo_client.Client(api_key={key!r}, base_url={base!r})
client.get_generation_by_id({done!r})  # TLS set-up done and its memory counted before measuring
mode, how = {mode!r}, {how!r}
before_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if mode == "tracemalloc":
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
if how == "client":
    client.download_image({url!r}, {path!r})
else:  # the reference: what holding the whole body in memory costs, as this measures it
    with open({path!r}, "wb") as out:
        out.write(requests.get({url!r}, timeout=60).content)
if mode == "tracemalloc":
    growth = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
else:
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss) * (1 if sys.platform == "darwin" else 1024)
size = os.path.getsize({path!r})
client.close()
print(json.dumps({{"growth": growth, "size": size}}))
"""


def bench_download(base_url: str, tmp: str, pycache: str) -> Tuple[bool, List[str]]:
    import leonardo_client

    if not hasattr(leonardo_client.Client, "download_image"):
        return True, ["  SKIP: Client.download_image does not exist yet"]
    env = child_env(pycache)
    root = base_url.split(API_PREFIX)[0]
    growth: Dict[str, float] = {}
    seconds: Dict[str, float] = {}
    for how in ("client", "reference"):
        for mode in ("rss", "tracemalloc"):
            path = os.path.join(tmp, f"download-{how}-{mode}.bin")
            code = _DOWNLOAD_CODE.format(
                key=API_KEY, base=base_url, done=DONE_ID, mode=mode, how=how, url=root + BLOB_PATH, path=path
            )
            started = time.perf_counter()
            out = run_child(code, env, timeout=300)
            seconds[how + mode] = time.perf_counter() - started
            if out["size"] != BLOB_SIZE:
                raise RuntimeError(f"{how} download wrote {out['size']} bytes, expected {BLOB_SIZE}")
            os.remove(path)
            growth[how + mode] = out["growth"]
    ok = max(growth["clientrss"], growth["clienttracemalloc"]) <= TARGET_DOWNLOAD_GROWTH
    target = f"target <= {fmt_bytes(TARGET_DOWNLOAD_GROWTH)}"
    return ok, [
        f"  tracemalloc peak        {fmt_bytes(growth['clienttracemalloc']):>10}  {target}  "
        f"{verdict(growth['clienttracemalloc'] <= TARGET_DOWNLOAD_GROWTH)}",
        f"  ru_maxrss growth        {fmt_bytes(growth['clientrss']):>10}  {target}  "
        f"{verdict(growth['clientrss'] <= TARGET_DOWNLOAD_GROWTH)}",
        f"  (64 MiB over TLS, each in a fresh interpreter, {seconds['clientrss']:.1f} s with start-up; "
        f"file size checked. Reference, requests.get(url).content held whole: "
        f"tracemalloc {fmt_bytes(growth['referencetracemalloc'])}, ru_maxrss {fmt_bytes(growth['referencerss'])})",
    ]


# =============================================================================================
# 4. wait_for_generation
# =============================================================================================


def bench_wait(base_url: str) -> Tuple[bool, List[str]]:
    import requests

    from leonardo_client import Client

    if not hasattr(Client, "wait_for_generation"):
        return True, ["  SKIP: Client.wait_for_generation does not exist yet"]
    session = requests.Session()
    with Client(api_key=API_KEY, base_url=base_url) as client:
        created = client.create_generation({"prompt": "a lighthouse at dusk"})
        ident = created["sdGenerationJob"]["generationId"]
        generation = client.wait_for_generation(ident, timeout=60)
        returned = time.time()
    root = base_url.split(API_PREFIX)[0]
    stats = session.get(f"{root}/_stats/{ident}", timeout=10).json()
    session.close()
    if generation.get("status") != "COMPLETE":
        raise RuntimeError(f"wait_for_generation returned {generation!r}")
    lateness = returned - stats["completes_at"]
    polls = stats["gets"]
    ok_late, ok_polls = lateness <= TARGET_WAIT_LATENESS, polls <= TARGET_WAIT_POLLS
    return ok_late and ok_polls, [
        f"  noticed {lateness:.2f} s after completion  target <= {TARGET_WAIT_LATENESS:.1f} s  {verdict(ok_late)}",
        f"  {polls} GET requests                  target <= {TARGET_WAIT_POLLS}      {verdict(ok_polls)}",
        f"  (generation completes {COMPLETION_DELAY:.0f} s after creation; default poll_interval)",
    ]


# =============================================================================================


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None, help="per-call rounds (default 30; --quick 8)")
    parser.add_argument("--calls", type=int, default=None, help="calls per side per round (default 80; --quick 60)")
    parser.add_argument("--import-runs", type=int, default=None, help="fresh interpreters per statement (default 20; --quick 6)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a rough look in ~25 s (noisier: see the control lines)")
    parser.add_argument("--skip", action="append", default=[], choices=["calls", "import", "download", "wait"])
    parser.add_argument("--serve", nargs=2, metavar=("CERT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    rounds = args.rounds or (8 if args.quick else 30)
    calls = args.calls or (60 if args.quick else 80)
    import_runs = args.import_runs or (6 if args.quick else 20)

    sys.path.insert(0, REPO)
    import requests
    import urllib3

    import leonardo_client

    print(
        f"leonardo_client {leonardo_client.__version__}, requests {getattr(requests, '__version__', '?')}, "
        f"urllib3 {getattr(urllib3, '__version__', '?')}, Python {sys.version.split()[0]} on {sys.platform}, "
        f"{os.cpu_count()} CPUs"
    )
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="leonardo-bench-")
    results: List[Tuple[str, bool, List[str]]] = []
    server = None
    try:
        cert, key = make_certificate(tmp)
        # Trusted through the environment (see the module docstring); children inherit it.
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = cert
        server = ServerProcess(cert, key)
        base_url = f"https://127.0.0.1:{server.port}{API_PREFIX}"
        print(f"server: https://127.0.0.1:{server.port} (child process; self-signed cert trusted via REQUESTS_CA_BUNDLE)")
        pycache = os.path.join(tmp, "pycache")
        if "calls" not in args.skip:
            results.append(("Per-call cost vs bare requests.Session", *bench_calls(base_url, rounds, calls)))
        if "import" not in args.skip:
            results.append(("Import time vs `import requests`", *bench_import(import_runs, pycache)))
        if "download" not in args.skip:
            results.append(("download_image of 64 MiB: memory growth", *bench_download(base_url, tmp, pycache)))
        if "wait" not in args.skip:
            results.append(("wait_for_generation, 4 s generation", *bench_wait(base_url)))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    for title, _, lines in results:
        print(title)
        for line in lines:
            print(line)
        print()
    missed = [title for title, ok, _ in results if not ok]
    print(f"{'ALL PASS' if not missed else 'MISSED: ' + '; '.join(missed)}  ({time.perf_counter() - started:.0f} s)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
