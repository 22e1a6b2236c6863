"""Every example runs offline (against FakeLeonardo), so none can rot unnoticed."""

from __future__ import annotations

import ast
import functools
import glob
import http.client
import importlib.util
import json
import os
import queue
import re
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import warnings
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests
import responses

from conftest import API_KEY, BASE, api_matchers, finished
from leonardo_client import DEFAULT_TIMEOUT, Client, LeonardoError, generation_id
from leonardo_client.batch import BatchInterrupted, BatchSummary, run_batch
from leonardo_client.errors import STOPPED_CREATING

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")

# run -> (example script, extra arguments, files expected under its working folder)
RUNS: Dict[str, Tuple[str, List[str], List[str]]] = {
    "batch_catalogue": ("batch_catalogue", ["--out", "cat"], ["cat/*.png"] * 6 + ["cat/index.html"]),
    "generate_and_save": ("generate_and_save", ["--num-images", "2"], ["images/*.png"] * 2),
    "image_to_motion": ("image_to_motion", [], ["videos/*.mp4"]),
    "v2_generation": ("v2_generation", ["--quantity", "2"], ["images/*.png"] * 2),
    "lcm_instant_refine": ("lcm_instant_refine", [], ["refined/lcm-*_0.jpg"]),
    "lcm_instant_refine_file": ("lcm_instant_refine", ["sample.jpg", "--out", "mine"], ["mine/lcm-*_0.jpg"]),
    "list_and_delete_dry": ("list_and_delete", ["--keep", "1"], []),
    "list_and_delete_yes": ("list_and_delete", ["--keep", "1", "--yes"], []),
    "list_and_delete_keep_all": ("list_and_delete", ["--keep", "9" * 23], []),  # made generations until killed
    "texture_model": ("texture_model", ["--out", "maps"], ["maps/*_albedo.png", "maps/*_normal.png"]),
    "upload_and_vary": ("upload_and_vary", [], ["varied/*.png"] * 2),
    "upload_and_vary_file": ("upload_and_vary", ["sample.png", "--out", "mine"], ["mine/*.png"] * 2),
    "webhook_receiver": ("webhook_receiver", [], []),
}

Result = Tuple[int, str, str, str]  # exit code, stdout, stderr, working folder


def example(name: str) -> Any:
    """An example's module, to call its main(argv) in this process."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def start_run(run: str, root: str, env: Dict[str, str]) -> Tuple["subprocess.Popen[str]", str]:
    """An example's offline run (RUNS) in its own folder under ``root``, with the files it reads."""
    script, args, _ = RUNS[run]
    cwd = os.path.join(root, run)
    os.makedirs(cwd)
    for name, head in (("sample.png", b"\x89PNG\r\n\x1a\n"), ("sample.jpg", b"\xff\xd8\xff\xe0")):
        with open(os.path.join(cwd, name), "wb") as f:
            f.write(head + b"\x00" * 32)
    process = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, script + ".py"), "--offline"] + args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, cwd


def finish(process: "subprocess.Popen[str]") -> Tuple[int, str, str]:
    run = finished(process)
    return run.returncode, run.stdout, run.stderr


@pytest.fixture(scope="module")
def results(all_runs: Any) -> Dict[str, Result]:
    """Every RUNS run: its exit code, stdout, stderr and working folder (started with the hostile ones)."""
    return all_runs[0]


@pytest.mark.parametrize("run", sorted(RUNS))
def test_example_runs_offline(results: Dict[str, Result], run: str) -> None:
    code, out, err, cwd = results[run]
    assert code == 0, err
    expected = RUNS[run][2]
    for pattern in set(expected):
        found = glob.glob(os.path.join(cwd, pattern))
        assert len(found) == expected.count(pattern), (pattern, os.listdir(cwd))
        assert all(os.path.getsize(path) > 0 for path in found)
    assert "Traceback" not in err


def test_the_webhook_receiver_got_and_checked_the_fakes_callback(results: Dict[str, Result]) -> None:
    out = results["webhook_receiver"][1]
    assert "'image_generation.complete': generation '" in out and "'COMPLETE': 'a lighthouse at dusk'" in out
    assert out.count("  image 'http://127.0.0.1:") == 1


def test_the_webhook_receiver_refuses_what_it_cannot_bound_and_shows_any_event(capsys: pytest.CaptureFixture[str]) -> None:
    receiver = example("webhook_receiver")
    events: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    receiver.READ_TIMEOUT = 0.5
    server = receiver.Server(("127.0.0.1", 0), receiver.make_handler("cb-key-for-tests", events))
    # shutdown() waits for serve_forever's next look at its flag: 0.5 s apart by default
    threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()
    try:
        with socket.create_connection(server.server_address, timeout=5) as stalled:  # was held open for ever
            stalled.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            assert stalled.recv(1) == b""  # let go after READ_TIMEOUT
        # A length given but not one is a bad request (411 would ask for one); int() refuses 5,000 digits.
        lengths = (("abc", 400), ("-1", 400), (str(2 * receiver.MAX_BODY), 413), ("9" * 5000, 413), ("", 411))
        for length, status in lengths:
            connection = http.client.HTTPConnection(*server.server_address, timeout=10)
            connection.putrequest("POST", "/")
            if length:
                connection.putheader("Content-Length", length)  # was a traceback, or an unbounded read
            else:  # none: chunked
                connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            assert connection.getresponse().status == status
            connection.close()
        video = {"type": "video_generation.complete", "data": {"object": {"id": "g1\x1b[2J", "status": "COMPLETE",
                                                                          "images": True}}}
        connection = http.client.HTTPConnection(*server.server_address, timeout=10)
        connection.request("POST", "/", json.dumps(video), {"Authorization": "Bearer cb-key-for-tests"})
        assert connection.getresponse().status == 204
        connection.request("POST", "/", json.dumps(video), {"Authorization": "Bearer cb-key-mistyped"})
        refused = connection.getresponse()
        assert refused.status == 401 and refused.read() and capsys.readouterr().err == (  # was refused without a word
            "refused a callback from 127.0.0.1: webhook Authorization header does not carry the callback API key\n")
        connection.request("POST", "/", "{not json", {"Authorization": "Bearer cb-key-for-tests"})
        assert connection.getresponse().status == 400  # the key was right: the body is at fault, not a 401
        # An event of another shape: a KeyError, then a TypeError on its images, ended the receiver; an escape
        # sequence in it reached the terminal.
        receiver.show(events.get(timeout=10))
        assert capsys.readouterr().out == "'video_generation.complete': generation 'g1\\x1b[2J' 'COMPLETE': None\n"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(SystemExit) as usage:
        receiver.main(["--port", "70000"])  # was an OverflowError traceback from bind()
    assert usage.value.code == 2


@pytest.mark.parametrize("key, says", [("   ", "set LEONARDO_WEBHOOK_KEY"), ("cl\udce9", "LEONARDO_WEBHOOK_KEY holds")])
def test_the_webhook_receiver_refuses_an_unusable_key_before_it_listens(
    monkeypatch: pytest.MonkeyPatch, key: str, says: str
) -> None:
    # It said it was listening, then answered each callback with nothing (a TypeError) or with its own setup's 400.
    monkeypatch.setenv("LEONARDO_WEBHOOK_KEY", key)
    with pytest.raises(ValueError, match=says):
        example("webhook_receiver").main(["--port", "0"])


def test_image_to_motion_says_each_generation_id_as_it_starts(results: Dict[str, Result]) -> None:
    out = results["image_to_motion"][1]  # it said none: a run stopped midway left the user nothing to look up
    assert re.search(r"^image generation [0-9a-f-]{36} started", out, re.M)
    assert re.search(r"^video generation [0-9a-f-]{36} started", out, re.M)


def test_lcm_strength_out_of_its_range_is_a_usage_error(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        example("lcm_instant_refine").main(["--offline", "--strength", "5", "--out", str(tmp_path)])  # was sent as it came
    assert usage.value.code == 2
    assert capsys.readouterr().err.endswith("error: argument --strength: not between 0.1 and 1: '5'\n")


def test_texture_models_deprecation_is_one_line(results: Dict[str, Result]) -> None:
    err = results["texture_model"][2]  # was two, the second the example's source line
    assert err.startswith("warning: the texture endpoints left Leonardo's public API spec") and err.count("\n") == 1


def test_list_and_delete_is_a_dry_run_unless_told(results: Dict[str, Result]) -> None:
    dry = results["list_and_delete_dry"][1]
    assert "3 generations" in dry and dry.count("would delete") == 2 and "deleted" not in dry
    assert "--yes" in dry
    real = results["list_and_delete_yes"][1]
    assert real.count("deleted") == 2 and "would delete" not in real


def test_every_example_is_covered_and_documented() -> None:
    scripts = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
    assert scripts == sorted({script for script, _, _ in RUNS.values()})
    for name in scripts:
        with open(os.path.join(EXAMPLES, name + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        doc = ast.get_docstring(tree) or ""
        assert "Spends credits: " in doc.splitlines()[2], name  # said at the top
        assert "LEONARDO_API_KEY" in doc and "--offline" in doc, name
        assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), name
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= set(sys.stdlib_module_names if hasattr(sys, "stdlib_module_names") else imported) | {
            "leonardo_client",
            "__future__",
        }, name


def test_examples_want_a_key_or_arguments_when_online() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "generate_and_save.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no API key") and "Traceback" not in done.stderr


# Examples that wait for a generation (Ctrl-C lands in the wait), and all of them for the outputs.
WAITING = ["generate_and_save", "image_to_motion", "v2_generation", "texture_model", "upload_and_vary", "webhook_receiver"]
HOSTILE = [(name, "closed pipe") for name in sorted({s for s, _, _ in RUNS.values()})]
HOSTILE += [(name, "full disk") for name in sorted({s for s, _, _ in RUNS.values()})]
HOSTILE += [(name, "closed stdout") for name in sorted({s for s, _, _ in RUNS.values()})]  # >&-: refused first
HOSTILE += [(name, "Ctrl-C") for name in WAITING]


@pytest.fixture(scope="module")
def hostile_results(all_runs: Any) -> Dict[Tuple[str, str], Tuple[int, str]]:
    """Every example under a stdout closed meanwhile or from the start, a full stdout (/dev/full) and,
    if it waits, a Ctrl-C: its exit code and stderr."""
    return all_runs[1]


@pytest.fixture(scope="module")
def all_runs() -> Iterator[Tuple[Dict[str, Result], Dict[Tuple[str, str], Tuple[int, str]]]]:
    """(results, hostile_results). The RUNS and the hostile runs but the Ctrl-C ones start at once (they mostly
    sleep while polling: started apart, each set waited for its slowest, batch_catalogue's), then the Ctrl-C ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    full_disk = "/dev/full" if os.path.exists("/dev/full") else os.devnull  # without one, its tests are skipped
    with tempfile.TemporaryDirectory() as root, open(full_disk, "w") as full:
        offline = {run: start_run(run, root, env) for run in RUNS}
        hostile = {(name, where): start_hostile(name, where, env, full, root) for name, where in HOSTILE
                   if where != "Ctrl-C"}
        results = {run: finish(process) + (cwd,) for run, (process, cwd) in offline.items()}
        hostile_results = {key: finish(process)[::2] for key, process in hostile.items()}  # exit code, stderr
        # The Ctrl-C ones last, on a machine no longer busy with 40 others: each is interrupted in a wait of
        # about a second, which a busy machine could see end first.
        ctrl_c = {(name, where): start_hostile(name, where, env, full, root) for name, where in HOSTILE
                  if where == "Ctrl-C"}
        # Each one's Ctrl-C as soon as it says it waits: read in turn, the last would be read after its wait.
        interrupters = [threading.Thread(target=interrupt_when_waiting, args=(p,)) for p in ctrl_c.values()]
        for thread in interrupters:
            thread.start()
        for thread in interrupters:
            thread.join(60)
        hostile_results.update({key: finish(process)[::2] for key, process in ctrl_c.items()})
        yield results, hostile_results


def start_hostile(name: str, where: str, env: Dict[str, str], full: Any, root: str) -> "subprocess.Popen[str]":
    # The retired-endpoint example's DeprecationWarning is wanted, but not counted here; -X dev shows
    # a ResourceWarning for what is left open (the webhook receiver's listening socket was). ImportWarning:
    # the six that urllib3 1.26.0-1.26.4 bundles prints three on Python 3.10 and 3.11 (not the examples').
    script = os.path.join(EXAMPLES, name + ".py")
    command = [sys.executable, "-X", "dev", "-W", "ignore::DeprecationWarning", "-W", "ignore::ImportWarning", script,
               "--offline"]
    stdout = {"full disk": full, "closed stdout": None}.get(where, subprocess.PIPE)
    close = (lambda: os.close(1)) if where == "closed stdout" else None  # Python starts without one
    # Ctrl-C: its line is read as it is printed (a pipe is block-buffered without PYTHONUNBUFFERED).
    unbuffered = dict(env, PYTHONUNBUFFERED="1") if where == "Ctrl-C" else env
    process = subprocess.Popen(
        command, cwd=tempfile.mkdtemp(dir=root), env=unbuffered, stdout=stdout, stderr=subprocess.PIPE, text=True,
        preexec_fn=close,
    )
    if where == "closed pipe":
        assert process.stdout is not None
        process.stdout.close()
    return process


def interrupt_when_waiting(process: "subprocess.Popen[str]") -> None:
    """Ctrl-C once the example prints the line it prints as it starts to wait (each ends "...")."""
    assert process.stdout is not None
    for line in process.stdout:  # upload_and_vary prints a line before, as it uploads
        if line.rstrip().endswith("..."):
            break
    process.send_signal(signal.SIGINT)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
@pytest.mark.parametrize("name, where", HOSTILE, ids=[f"{n}-{w}" for n, w in HOSTILE])
def test_examples_end_in_one_line_and_the_right_exit_code(hostile_results: Any, name: str, where: str) -> None:
    code, err = hostile_results[name, where]
    expected = {
        "closed pipe": (1, "error: Broken pipe"),  # was "error: [Errno 32] Broken pipe", as each below
        "full disk": (1, "error: No space left on device"),
        "closed stdout": (1, "error: stdout is closed"),
        "Ctrl-C": (130, "interrupted"),
    }[where]
    if where == "Ctrl-C":  # one landing mid-way through a response's set-up in http.client or urllib3 can leave
        err = re.sub(UNCLOSED_SOCKET, "", err)  # its socket to the collector (-X dev says so): about 1 run in 70
        err = re.sub(HALF_MADE_RESPONSE, "", err)  # or its half-made HTTPResponse, whose close() then fails
    assert (code, err) == (expected[0], expected[1] + "\n")


UNCLOSED_SOCKET = r".*ResourceWarning: unclosed <socket\.socket [^\n]*\n(  [^\n]*\n)?(ResourceWarning: Enable [^\n]*\n)?"
HALF_MADE_RESPONSE = (
    r"Exception ignored in: <http\.client\.HTTPResponse [^\n]*\n(?:[ T][^\n]*\n)*"
    r"AttributeError: 'HTTPResponse' object has no attribute 'fp'\n"
)


def test_a_missing_image_file_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    command = [sys.executable, os.path.join(EXAMPLES, "lcm_instant_refine.py"), "nope.jpg", "--offline"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd=tempfile.gettempdir())
    assert (done.returncode, done.stderr) == (1, "error: 'nope.jpg': No such file or directory\n")


# Examples that spend credits and save into --out, with the arguments they need online.
SAVING = {
    "generate_and_save": [],
    "v2_generation": [],
    "image_to_motion": [],
    "texture_model": ["asset-id"],
    "upload_and_vary": ["sample.png"],
    "lcm_instant_refine": ["sample.jpg"],
}


@pytest.mark.parametrize("folder, said", [
    (os.path.join("afile", "out"), "'afile/out': Not a directory"),  # was "[Errno 20] Not a directory: 'afile/out'"
    ("afile", "'afile': File exists"),  # was "[Errno 17] File exists: 'afile'"
])  # fmt: skip
def test_a_bad_out_folder_is_said_before_anything_is_sent(tmp_path: Any, folder: str, said: str) -> None:
    """They spent credits (lcm's result, inline in the answer, was then lost) before finding --out unwritable."""
    (tmp_path / "afile").write_bytes(b"")
    (tmp_path / "sample.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (tmp_path / "sample.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 32)
    from leonardo_client.testing import FakeLeonardo

    with FakeLeonardo() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
        env.update(PYTHONPATH=REPO, LEONARDO_API_KEY=fake.api_key, LEONARDO_BASE_URL=fake.base_url)
        running = {
            name: subprocess.Popen(
                [sys.executable, "-W", "ignore::DeprecationWarning", os.path.join(EXAMPLES, name + ".py")]
                + args + ["--out", folder],
                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for name, args in SAVING.items()
        }
        done = {name: (process.communicate(timeout=60), process.returncode) for name, process in running.items()}
        assert fake.requests == []
    for name, ((out, err), code) in done.items():
        assert (code, out, err) == (1, "", f"error: {said}\n"), name


# Answers Leonardo's spec allows that FakeLeonardo never sends, played as its faults. An example's main()
# lets a LeonardoError out: its __main__ prints that as one line (any other exception was a traceback).


@pytest.mark.parametrize("name, argv, path, job", [("generate_and_save", [], "/generations", "sdGenerationJob"),
                                                  ("texture_model", ["asset-1"], "/generations-texture", "textureGenerationJob")])
def test_a_create_answer_with_a_null_job_is_an_error(fake_in_env: Any, tmp_path: Any, name: str, argv: List[str], path: str,
                                                   job: str) -> None:
    fake_in_env.inject(status=200, method="POST", path=path, body={job: None})
    with pytest.raises(LeonardoError, match="^no generation id in the response"):  # was a TypeError
        example(name).main(argv + ["--out", str(tmp_path)])


def test_image_to_motion_says_when_its_image_generation_holds_no_image(fake_in_env: Any, tmp_path: Any,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.0)  # not asked again for a minute: so it stays
    nothing = {"generations_by_pk": {"status": "COMPLETE", "generated_images": []}}
    fake_in_env.inject(status=200, method="GET", path="/generations/*", body=nothing)
    assert example("image_to_motion").main(["--out", str(tmp_path)]) == 1  # was an IndexError
    assert re.search(r"^error: generation \S+ holds no image to animate$", capsys.readouterr().err, re.M)
    assert [r.path for r in fake_in_env.requests if r.method == "POST"] == ["/generations"]  # no video asked for


def test_list_and_delete_pages_by_what_it_got_and_skips_what_it_cannot_delete(
        mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A server that caps its pages at 3 (the API documents no maximum limit): each page starts where the last
    one ended, up to an empty one (here without "generations"); an entry that is not an object, or has no id,
    is skipped (they were an AttributeError and a TypeError); one listed twice (pushed down by a new one) is
    counted and deleted once; a delete the API answers null was not done."""
    monkeypatch.setenv("LEONARDO_API_KEY", API_KEY)
    monkeypatch.setenv("LEONARDO_BASE_URL", BASE)
    made = [{"id": f"gen-{n}", "createdAt": f"2024-01-0{n}T00:00:00.000Z", "prompt": f"fox {n}"} for n in range(1, 6)]
    listed = [made[4], None, {"id": None, "createdAt": "2024-01-09T00:00:00.000Z"}, made[3], "gen-x", made[3]]
    listed += made[2::-1]
    offsets: List[int] = []

    def page(request: requests.PreparedRequest) -> Tuple[int, Dict[str, str], str]:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url or "").query))
        offsets.append(int(query["offset"]))
        got = listed[offsets[-1] : offsets[-1] + min(int(query["limit"]), 3)]
        return 200, {}, json.dumps({"generations": got} if got else {})

    list_and_delete = example("list_and_delete")
    for offset in (0, 3, 6, 9):
        query = {"limit": str(list_and_delete.PAGE), "offset": str(offset)}
        sent = api_matchers(timeout=DEFAULT_TIMEOUT, query=query)
        mocked.add_callback("GET", f"{BASE}/generations/user/u1", callback=page, match=sent)
    for generation in made[:4]:
        gone = {"id": generation["id"]} if generation is not made[0] else None  # gen-1: deleted meanwhile
        sent = api_matchers(timeout=DEFAULT_TIMEOUT)
        mocked.delete(f"{BASE}/generations/{generation['id']}", json={"delete_generations_by_pk": gone}, match=sent)
    assert list_and_delete.main(["u1", "--keep", "1", "--yes"]) == 0
    assert offsets == [0, 3, 6, 9]  # was [0, 50]: 3 of the 9 seen
    said = ["deleted"] * 3 + ["not found (deleted meanwhile?)"]  # was 6 generations, gen-4 deleted twice
    assert capsys.readouterr().out == "5 generations, keeping the newest 1\n" + "".join(
        f"{what} {g['id']}  {g['createdAt']}  {g['prompt']!r}\n" for what, g in zip(said, made[3::-1]))


@pytest.mark.parametrize("created", [{"apiCreditCost": None}, {"generate": {"cost": {"unit": "CREDITS"}}}])
def test_v2_generation_says_when_the_cost_is_unknown(fake_in_env: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                                     created: Dict[str, Any]) -> None:
    with Client() as client:  # the spec's v2 answer, and its recipes' without an amount
        made = generation_id(client.create_generation({"prompt": "a fox"}))
    (created.get("generate") or created)["generationId"] = made
    fake_in_env.inject(status=200, method="POST", path="/api/rest/v2/generations", body=created)
    assert example("v2_generation").main(["--out", str(tmp_path)]) == 0  # was "(None credits)", or a KeyError
    assert f"generation {made} started (cost unknown), waiting...\n" in capsys.readouterr().out


# Found by the examples hunt: what the examples print is what their users follow.


def test_batch_catalogue_retries_failed_items_as_its_summary_says(fake_in_env: Any, tmp_path: Any,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """It had no --retry-failed, which its summary named: a usage error, and its failed items never sent again."""
    # Generations FAILED at Leonardo: a refused create call (a 4xx) is advised to be fixed instead.
    fake_in_env.fail_new_generations = True
    catalogue = example("batch_catalogue")
    # Paced at the default 100 a minute, its 6 create calls took 3 s; the pace is not what is tested.
    monkeypatch.setattr(catalogue, "run_batch", functools.partial(run_batch, posts_per_minute=6000))
    argv = ["--out", str(tmp_path / "cat")]
    assert catalogue.main(argv) == 1
    assert "rerun with --retry-failed (retry_failed=True) to send them again" in capsys.readouterr().out
    fake_in_env.fail_new_generations = False
    assert catalogue.main(argv + ["--retry-failed"]) == 0
    assert sum(r.method == "POST" and r.path == "/generations" for r in fake_in_env.requests) == 12  # 6, 6 again


def test_batch_catalogue_passes_its_flags_and_says_after_ctrl_c_that_a_rerun_resumes(
        fake_in_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    summary = BatchSummary(total=6, complete=3, failed=1, ambiguous=1, pending=1, images=3, credits={}, wall_time=1.0,
                           done_this_run=3, images_this_run=3, interrupted=True, out_dir=str(tmp_path))
    options: List[Dict[str, Any]] = []

    def interrupted(client: Any, items: Any, out_dir: str, **given: Any) -> None:
        options.append(given)
        raise BatchInterrupted(summary)

    catalogue = example("batch_catalogue")
    monkeypatch.setattr(catalogue, "run_batch", interrupted)
    flags = ["--retry-failed", "--resubmit-ambiguous"]
    assert catalogue.main(["--out", str(tmp_path)] + flags) == 130  # was a usage error
    assert (options[0]["retry_failed"], options[0]["resubmit_ambiguous"]) == (True, True)
    out, err = capsys.readouterr()
    assert out == f"{summary}\n" and "--resubmit-ambiguous (resubmit_ambiguous=True)" in out
    assert err == "interrupted: rerun the same command to resume\n"  # was "interrupted", the same as before a batch


def test_batch_catalogue_offline_marks_its_journal_and_says_after_ctrl_c_that_it_cannot_be_resumed(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # It did not pass offline=True: its journal was a batch's on the API, and a rerun --offline waited on the
    # generations of a fake gone with its run, then left them ambiguous, where its stderr said it could not resume.
    catalogue = example("batch_catalogue")
    monkeypatch.setattr(catalogue, "run_batch", functools.partial(run_batch, posts_per_minute=6000))
    argv = ["--offline", "--out", str(tmp_path)]
    assert catalogue.main(argv) == 0
    with open(os.path.join(str(tmp_path), "journal.jsonl"), encoding="utf-8") as journal:
        assert json.loads(journal.readline()).get("offline") is True
    summary = BatchSummary(total=6, complete=5, failed=0, ambiguous=0, pending=1, images=5, credits={}, wall_time=1.0,
                           done_this_run=5, images_this_run=5, interrupted=True, out_dir=str(tmp_path), offline=True)

    def interrupted(client: Any, items: Any, out_dir: str, **given: Any) -> None:
        raise BatchInterrupted(summary)

    monkeypatch.setattr(catalogue, "run_batch", interrupted)
    capsys.readouterr()
    assert catalogue.main(argv) == 130
    assert capsys.readouterr().err == "interrupted: an --offline batch cannot be resumed: use a new --out\n"


SAMPLES = {"sample.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "sample.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 32}


@pytest.mark.parametrize("name, argv", [("upload_and_vary", ["sample.png"]), ("image_to_motion", [])])
def test_a_refused_second_create_leaves_the_first_generation_saved_and_named(
        fake_in_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        name: str, argv: List[str]) -> None:
    """upload_and_vary made both before waiting on either; image_to_motion saved its image only with the video:
    the first generation, paid for, was lost (its id not even said) when the second was refused."""
    monkeypatch.chdir(tmp_path)
    for sample, data in SAMPLES.items():
        (tmp_path / sample).write_bytes(data)
    refused = {"error": "phoenix is not supported within the Production API", "path": "$", "code": "unexpected"}
    fake_in_env.inject(status=400, method="POST", path="/api/rest/v2/generations", body=refused)
    with pytest.raises(LeonardoError, match="not supported within the Production API"):
        example(name).main(argv + ["--out", "out"])
    [made] = fake_in_env.generation_ids()
    assert f"generation {made} started" in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob(f"{made}*.png"))) == 1


CREATES = [
    ("generate_and_save", [], "/generations"),
    ("v2_generation", [], "/api/rest/v2/generations"),
    ("image_to_motion", [], "/api/rest/v2/generations"),  # the video's, after the image was made
    ("lcm_instant_refine", ["sample.jpg"], "/lcm-instant-refine"),
    ("upload_and_vary", ["sample.png"], "/generations"),
    ("texture_model", ["asset-1"], "/generations-texture"),
]


CREATE_FAULTS = {"5xx": (dict(status=503, after=True), True), "no answer": (dict(drop=True, after=True), True),
                 "no id": (dict(status=200, body={}, after=True), True), "refused": (dict(status=400), False)}


@pytest.mark.parametrize("name, argv, path, fault, said", [
    pytest.param(name, argv, path, fault, said, id=f"{kind}-{name}")
    for kind, (fault, said) in CREATE_FAULTS.items() for name, argv, path in CREATES
    if (kind, name) != ("no id", "lcm_instant_refine")  # an LCM answer has no id to lack: it holds its images
])
def test_a_create_call_that_may_have_run_says_so(fake_in_env: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                 name: str, argv: List[str], path: str, fault: Dict[str, Any],
                                                 said: bool) -> None:
    """A bare error after a create that ran: the natural next step, running the example again, paid twice."""
    monkeypatch.chdir(tmp_path)
    for sample, data in SAMPLES.items():
        (tmp_path / sample).write_bytes(data)
    fake_in_env.inject(method="POST", path=path, **fault)
    with pytest.raises(LeonardoError) as failed:
        example(name).main(argv + ["--out", "out"])
    assert ("; it may have " in str(failed.value)) is said, str(failed.value)
    assert str(failed.value).count("may have been made") == said  # the client's words, said once


@pytest.mark.parametrize("name, argv, path", CREATES, ids=[name for name, _, _ in CREATES])
def test_a_ctrl_c_during_a_create_call_says_it_may_have_been_made(
        fake_in_env: Any, mocked: responses.RequestsMock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], name: str, argv: List[str], path: str) -> None:
    """The client's note on the KeyboardInterrupt was dropped: the example said only "interrupted" (and before
    Python 3.11 there was no note), so a user ran it again and paid twice."""
    monkeypatch.chdir(tmp_path)
    for sample, data in SAMPLES.items():
        (tmp_path / sample).write_bytes(data)
    monkeypatch.setattr(sys, "argv", [name] + argv + ["--out", "out"])
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # texture_model's __main__ sets it

    def ctrl_c(request: requests.PreparedRequest) -> Any:
        raise KeyboardInterrupt

    url = (fake_in_env.root_url if path.startswith("/api/") else fake_in_env.base_url) + path
    sent = api_matchers(timeout=DEFAULT_TIMEOUT, key=fake_in_env.api_key)[:-1]  # its body: the example's own
    mocked.add_callback("POST", url, callback=ctrl_c, match=sent)
    mocked.add_passthru(fake_in_env.root_url)  # the calls before it (an upload, image_to_motion's image)
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(os.path.join(EXAMPLES, name + ".py"), run_name="__main__")
    assert (stopped.value.code, capsys.readouterr().err) == (130, f"interrupted; {STOPPED_CREATING}\n")
