"""The command line, in process through main(argv) and once through `python -m`."""

from __future__ import annotations

import argparse
import configparser
import functools
import io
import json
import shutil
import signal
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple

import pytest

from conftest import finished, raw_server
import leonardo_client.__main__ as cli
import leonardo_client.client
from leonardo_client.batch import BatchInterrupted, BatchItem, BatchProgress, BatchSummary
from leonardo_client import Client, generation_id
from leonardo_client.errors import MAY_HAVE_BEEN_MADE
from leonardo_client.testing import FakeLeonardo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def quick_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.0)


def polls_every(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The CLI's waits poll every ``seconds``, not after 1 s (the shipped poll_interval)."""
    quick = functools.partialmethod(Client.wait_for_generation, poll_interval=seconds)
    monkeypatch.setattr(Client, "wait_for_generation", quick)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's waits poll every 0.2 s: each then takes 0.2 s, not 1."""
    polls_every(monkeypatch, 0.2)


@pytest.fixture
def quick_batch_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's first poll round 0.05 s after it starts, not 0.25 s (batch.FIRST_POLL): its generations are done."""
    monkeypatch.setattr("leonardo_client.batch.FIRST_POLL", 0.05)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


OFFLINE_NOTICE = "leonardo-client: offline: the built-in fake API answers, and its images are placeholders"
MODEL_ID = "6bef9f1b-29cb-40c7-b9df-32b51c1f67d3"  # a v1 model id: a uuid


def test_generate_offline_saves_images_and_prints_paths(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object, quick_polls: None
) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.1)  # PENDING at the first check
    out = os.path.join(str(tmp_path), "images")
    assert cli.main(["--offline", "generate", "a lighthouse at dusk", "--num-images", "2", "--out", out]) == 0
    captured = capsys.readouterr()
    paths = captured.out.split()
    assert len(paths) == 2 and all(p.startswith(out) and p.endswith(".png") for p in paths)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in paths)
    notice, *progress = captured.err.splitlines()
    assert notice == OFFLINE_NOTICE
    assert "PENDING, 0.0s elapsed" in progress[0] and "COMPLETE" in progress[-1]
    assert "\r" not in captured.err  # not a terminal: plain lines


def test_offline_flag_also_after_the_command(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["generate", "x", "--offline", "--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == 1


def test_progress_redraws_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: object,
                                                 quick_polls: None) -> None:
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 0.1)
    monkeypatch.setenv("COLUMNS", "30")  # "generation <id>: " took 49 columns: the status was never shown
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["--offline", "generate", "x", "--out", str(tmp_path)]) == 0
    notice, text = terminal.getvalue().split("\n", 1)
    assert "placeholders" in notice
    assert text.endswith("\n") and text.count("\n") == 1
    first, *_, last = text[1:-1].split("\r")
    assert first.startswith("PENDING, 0.0s elapsed, gener") and last.startswith("COMPLETE, ")
    assert max(len(drawn) for drawn in text[1:-1].split("\r")) == 29


def test_generate_online_sends_the_options(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    args = ["generate", "a fox", "--model-id", MODEL_ID, "--width", "512", "--height", "640", "--timeout", "20"]
    assert cli.main(args + ["--out", str(tmp_path)]) == 0
    [create] = [r for r in fake_in_env.requests if r.method == "POST"]
    assert create.json == {"prompt": "a fox", "modelId": MODEL_ID, "num_images": 1, "width": 512, "height": 640}
    assert len(os.listdir(str(tmp_path))) == 1


def test_get_list_delete_online(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 0
    [generation_id] = fake_in_env.generation_ids()
    capsys.readouterr()

    assert cli.main(["get", generation_id]) == 0
    assert json.loads(capsys.readouterr().out)["generations_by_pk"]["id"] == generation_id

    assert cli.main(["list", fake_in_env.user_id, "--limit", "5", "--offset", "0"]) == 0
    assert [g["id"] for g in json.loads(capsys.readouterr().out)["generations"]] == [generation_id]
    assert fake_in_env.requests[-1].query == {"limit": "5", "offset": "0"}

    assert cli.main(["delete", generation_id]) == 0
    assert json.loads(capsys.readouterr().out) == {"delete_generations_by_pk": {"id": generation_id}}
    assert fake_in_env.generation_ids() == []


def test_list_without_a_user_id_lists_yours(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    for argv in (["list"], ["list", "me"]):
        assert cli.main(argv) == 0
        assert [g["id"] for g in json.loads(capsys.readouterr().out)["generations"]] == fake_in_env.generation_ids()
        assert [r.path for r in fake_in_env.requests[-2:]] == ["/me", f"/generations/user/{fake_in_env.user_id}"]


def test_me_prints_the_account(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str]) -> None:
    fake_in_env.concurrency_slots = 7
    assert cli.main(["me"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"user id: {fake_in_env.user_id}", "username: fake-user", "concurrency slots: 7"]
    assert "apiSubscriptionTokens: 100000" in lines
    assert "apiPlanTokenRenewalDate: -" in lines  # null in the answer: not Python's "None"


@pytest.mark.parametrize(
    "argv, path, body",
    [
        (["me"], "/me", {"user_details": [{"user": "someone"}]}),
        (["me"], "/me", {"user_details": []}),  # was all "-" and exit 0
        (["list"], "/me", {"user_details": [{"user": ["someone"]}]}),
        (["list"], "/me", {"user_details": [{"user": {"id": ".."}}]}),  # was exit 2, "invalid id"
        (["models"], "/api/rest/v2/models", {"productionApiAvailableModels": "flux-dev"}),
        (["models"], "/api/rest/v2/models", {"productionApiAvailableModels": ["flux-dev"]}),
    ],
)
def test_an_answer_of_the_wrong_shape_is_one_error_line(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], argv: List[str], path: str, body: Any
) -> None:
    fake_in_env.inject(status=200, path=path, body=body)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv, said", [
    (["me"], "GET /me answered without a user id: Service Error"),
    (["list"], "GET /me answered without a user id: Service Error"),
    (["batch"], "GET /me gave no apiConcurrencySlots (Service Error): give the concurrency explicitly"),
])
def test_an_error_in_a_200_of_get_me_is_said_with_the_api_s_text(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, argv: List[str], said: str
) -> None:
    # "Check the body shape" (API_FACTS 1.3): the API's text was dropped, the error said only what was missing.
    fake_in_env.inject(status=200, path="/me", body={"error": "Service Error", "path": "$", "code": "unexpected"})
    batch = [prompts_file(tmp_path, "a fox"), "--out", str(tmp_path / "out")] if argv == ["batch"] else []
    assert cli.main(argv + batch) == 1
    assert capsys.readouterr().err.startswith(f"leonardo-client: error: {said}")


def test_models_lists_the_names_generate_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--offline", "models"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 79 and ["phoenix-v1.0", "Phoenix 1.0"] in [row[:2] for row in rows]
    assert all(row[0] != "?" for row in rows)


def test_models_finds_the_name_by_the_answer_s_id_or_name_letters_and_digits_compared(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str]
) -> None:
    # The spec's own example answer ("GPT Image 1.5") is a hyphen off its request schema's title ("GPT Image-1.5"):
    # matched by title alone, the name generate --model takes was "?".
    models = [{"name": "GPT Image 1.5", "id": "GPT_IMAGE_1_5"}, {"name": "Renamed", "id": "PHOENIX_V1_0"}]
    fake_in_env.inject(status=200, path="/api/rest/v2/models", body={"productionApiAvailableModels": models})
    assert cli.main(["models"]) == 0
    assert capsys.readouterr().out == "gpt-image-1.5\tGPT Image 1.5\tGPT_IMAGE_1_5\nphoenix-v1.0\tRenamed\tPHOENIX_V1_0\n"


def test_a_model_name_that_is_no_str_is_shown_as_unknown(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str]
) -> None:
    models = {"productionApiAvailableModels": [{"name": ["Phoenix 1.0"], "id": "m"}]}
    fake_in_env.inject(status=200, path="/api/rest/v2/models", body=models)
    assert cli.main(["models"]) == 0  # was a TypeError (unhashable list): exit 2, bad usage
    assert capsys.readouterr().out == "?\t?\tm\n"


def test_generate_with_model_goes_through_v2(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    argv = ["generate", "a fox", "--model", "phoenix-v1.0", "--num-images", "2", "--width", "512", "--height", "512"]
    assert cli.main(argv + ["--out", str(tmp_path)]) == 0
    [create] = [r for r in fake_in_env.requests if r.method == "POST"]
    assert create.path == "/api/rest/v2/generations"
    assert create.json == {"model": "phoenix-v1.0", "parameters": {"prompt": "a fox", "width": 512, "height": 512, "quantity": 2}}
    assert len(capsys.readouterr().out.split()) == 2 == len(os.listdir(str(tmp_path)))


def test_generate_takes_a_size_of_0_where_the_model_does(fake_in_env: FakeLeonardo, tmp_path: object) -> None:
    # hailuo-2_3's schema offers 0x0; --width took 1 and up (exit 2), for v1's sake, whose sizes are checked anyway.
    argv = ["generate", "a fox", "--model", "hailuo-2_3", "--width", "0", "--height", "0", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    [create] = [r for r in fake_in_env.requests if r.method == "POST"]
    assert create.json == {"model": "hailuo-2_3", "parameters": {"prompt": "a fox", "width": 0, "height": 0, "quantity": 1}}


def test_model_and_model_id_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "x", "--model", "flux-dev", "--model-id", "m"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, text",
    [
        (["generate", "x", "--model", "ideogram-v3.0", "--init-image", "{png}"], "takes no image guidance"),
        (["generate", "x", "--model", "no-such-model", "--init-image", "{png}"], "not among the models"),
        (["generate", "x", "--model", "remove-bg", "--init-image", "{png}"], "model 'remove-bg' takes no prompt"),
        (["generate", "--model", "phoenix-v1.0"], "model 'phoenix-v1.0' needs a prompt"),
        (["generate", "--model", "rodin-v2", "--init-image", "{png}"], "needs output_format, which generate has no"),
        (["generate", "x", "--model", "rodin-v2"], "needs output_format, which generate has no"),  # said first
        # Options generate has, not given: they were sent, and refused by the API (after an upload).
        (["generate", "x", "--model", "hailuo-2_3"], "model 'hailuo-2_3' needs --width and --height"),
        (["generate", "--model", "remove-bg"], "model 'remove-bg' needs --init-image"),
        (["generate", "--model", "aurora-upscaler-creative", "--init-image", "{png}"], "needs --width and --height"),
        # The rest of a model's schema: sizes, quantity, parameters it takes at all (each was a 400, after an upload).
        # Each named by its flag, as on v1 and in batch (it was by its JSON path alone: "parameters.quantity").
        (["generate", "x", "--model", "veo-3.1-generate-001", "--num-images", "2", "--init-image", "{png}"],
         "error: --num-images 2: model 'veo-3.1-generate-001' does not take these options: parameters.quantity must "
         "be at most 1\n"),
        (["generate", "x", "--model", "phoenix-v1.0", "--width", "777"], "error: --width 777: model 'phoenix-v1.0' "
         "does not take these options: parameters.width must be a multiple of 8\n"),
        (["generate", "x", "--model", "kling-2.6", "--width", "1024", "--height", "1024"], "expected one of the values"),
        # Not what the flags are refused for (sizes phoenix-v1.0 takes): unnamed (was "--width 512 --height 512: ...").
        (["generate", "x" * 2001, "--model", "phoenix-v1.0", "--width", "512", "--height", "512"], "error: model "
         "'phoenix-v1.0' does not take these options: parameters.prompt must have a length at most 2000\n"),
        # Sizes a model's anyOf/oneOf of pairs needs, not given (was "parameters must match exactly one of ...").
        (["generate", "x", "--model", "happy-horse-1.1"], "model 'happy-horse-1.1' needs --width and --height, one of "
         "1280x720, 720x1280, 960x960, 1108x832, 832x1108, 1920x1080, 1080x1920, 1440x1440, 1662x1248, 1248x1662\n"),
        (["generate", "x", "--model", "hailuo-2_3-fast", "--init-image", "{png}"],
         "model 'hailuo-2_3-fast' needs --width and --height, one of 1376x768, 768x1376, 768x768, 1920x1080, "),
        # One size alone, where neither is taken too: each pair once (two lists of them).
        (["generate", "x", "--model", "kling-2.6", "--width", "1920"],
         "model 'kling-2.6' takes --width and --height together, one of 1920x1080, 1080x1920, 1440x1440, 0x0\n"),
        (["generate", "x", "--model", "music-v1", "--width", "512", "--height", "512"], 'field "width" not found'),
        (["generate", "--model", "phoenix-1.0"], "'phoenix-1.0' is not among the models this version knows"),
        (["generate", "x", "--init-image", "{missing}"], "cannot read"),
        (["generate", "x", "--init-image", "{file}"], "its name has no image extension the upload takes"),
        (["generate", "x", "--init-image", "{empty}"], "empty.png' is empty: nothing to upload"),
        (["generate", "x", "--out", "{file}"], "exists and is not a folder"),
        (["generate", "x", "--out", "{file}/sub"], "cannot write there"),
        (["generate", "x", "--out", "{deep}"], "too many folders to create"),  # a RecursionError in os.makedirs
        (["generate", " "], "the prompt is empty"),
        (["generate", "x", "--timeout", "1e10"], "must be from 0.001 to 604800\n"),  # the wait's bounds (was 604800.0)
        (["generate", "x", "--timeout", "0.0001"], "must be from 0.001 to 604800\n"),
        (["generate", "x", "--width", "4294967296"], "must be from 0 to 2147483647"),
        # v1's sizes, as a v2 model's are (each was a 400, after an upload).
        (["generate", "x", "--width", "7"], "--width 7: the v1 API takes a multiple of 8 from 32 to 1536"),
        (["generate", "x", "--height", "1544", "--init-image", "{png}"], "--height 1544: the v1 API takes"),
        (["generate", "x", "--num-images", "5", "--height", "512"], "--num-images 5: the v1 API makes at most 4 images at"),
        # A v1 prompt the API refuses (it was sent, a 400), and bytes not decoded (said of a class of the library).
        (["generate", "x" * 1501], "prompt of 1501 characters: the v1 API takes at most 1500"),
        (["generate", "caf\udce9"], "argument prompt: the prompt holds bytes that are not valid text"),
        # An empty option ("$MODEL" unset) was taken as none: a generation on the API's default model, billed.
        (["generate", "x", "--model", ""], "argument --model: must not be empty or blank"),
        (["generate", "x", "--model-id", " "], "argument --model-id: must not be empty or blank"),
        # Blank once decoded: sys.argv of LC_ALL=C without UTF-8 mode (U+3000, U+00A0 as escaped bytes) was sent.
        (["generate", "\udce3\udc80\udc80"], "argument prompt: the prompt is empty"),
        (["generate", "x", "--model", "\udcc2\udca0"], "argument --model: must not be empty or blank"),
        (["generate", "x", "--init-image", ""], "argument --init-image: must not be empty"),  # no image, billed
        (["generate", "x", "--model", "phoenix-v1.0", "--init-image", ""], "argument --init-image: must not be empty"),
        # A v1 model id is a uuid: a v2 model's name there was sent through v1 (and made by the fake, exit 0).
        (["generate", "x", "--model-id", "phoenix-v1.0", "--init-image", "{png}"],
         "error: --model-id 'phoenix-v1.0' is a v2 model name, not a v1 model id: give it as a model to --model\n"),
        (["generate", "x", "--model-id", "model-7"],  # both named Python methods (create_generation_v2) too
         "error: --model-id 'model-7' is not a v1 model id, a UUID (a v2 model name goes to --model)\n"),
    ],
)
def test_bad_generate_arguments_spend_nothing(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, argv: List[str], text: str
) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty.png").write_bytes(b"")
    names = {"png": str(tmp_path / "a.png"), "missing": str(tmp_path / "no.png"), "file": str(tmp_path / "afile"),
             "deep": str(tmp_path / ("e/" * 1000)), "empty": str(tmp_path / "empty.png")}
    argv = [arg.format(**names) for arg in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    assert text in capsys.readouterr().err
    assert [r for r in fake_in_env.requests if r.method == "POST"] == []
    assert not (tmp_path / "out").exists()  # an --init-image too: read before the folder is made


def test_generate_says_a_generation_made_whose_files_could_not_be_saved(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # It said only "HTTP 404 ... (download failed)": nothing told a script the generation was made and paid for,
    # and running generate again paid again. Then the line (~330 characters) was cut at 305 in its middle, inside
    # the cause: "HTTP 404: Not Found (do ... <the URL's tail>)". The cause is cut to fit, the advice kept whole.
    fake_in_env.completion_delay = 0
    fake_in_env.inject(status=404, path="/cdn/*", times=None)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path / "out")]) == 1
    [made] = fake_in_env.generation_ids()
    last = capsys.readouterr().err.splitlines()[-1]
    root = fake_in_env.base_url.split("/api/")[0]
    said, cause = last.split(f"(try 'leonardo-client get {made} --out DIR'): ")
    assert said == f"leonardo-client: error: generation {made} was made (and paid for), but saving its files failed "
    assert cause.startswith(f"HTTP 404: Not Found (download failed) (GET {root}/cdn/") and cause.endswith(".png)"), last


@pytest.mark.parametrize("reason", ["No space left on device", "Broken pipe", "I/O operation on closed file."])
def test_generate_says_a_generation_made_whose_paths_could_not_be_written(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    reason: str,
) -> None:
    # Saved, but stdout full (>/dev/full), a closed pipe, or closed by the program calling main() (was exit 2, "bad
    # usage"): it said only the write's error, so a script learned nothing of the generation made and paid for, and
    # ran generate again. Block-buffered, as a file or a pipe is: the write fails only as it is flushed.
    class Unwritable(io.StringIO):
        def flush(self) -> NoReturn:
            if reason.startswith("I/O"):
                raise ValueError(reason)
            raise OSError(28 if reason.startswith("No space") else 32, reason)

    fake_in_env.completion_delay = 0
    monkeypatch.setattr(sys, "stdout", Unwritable())
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)]) == 1
    [made] = fake_in_env.generation_ids()
    assert len(os.listdir(str(tmp_path))) == 1  # saved
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: error: generation {made} was made (and paid for), but writing its saved " \
        f"files' paths failed (try 'leonardo-client get {made} --out DIR'): {reason}"


def test_ctrl_c_while_generate_writes_its_paths_names_the_generation_saved(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    # A block-buffered stdout its reader stalls: the paths are written as it is flushed, and a Ctrl-C there said only
    # "interrupted", not the generation made, paid for and saved.
    class Stalled(io.StringIO):
        def flush(self) -> None:
            if self.getvalue() and not self.closed:  # once, as the paths wait to be written
                self.close()
                raise KeyboardInterrupt

    fake_in_env.completion_delay = 0
    monkeypatch.setattr(sys, "stdout", Stalled())
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)]) == 130
    [made] = fake_in_env.generation_ids()
    assert len(os.listdir(str(tmp_path))) == 1  # saved
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: interrupted; generation {made} was made and its files saved into {tmp_path}"


def images_fill_in_late(monkeypatch: pytest.MonkeyPatch, answers: float, how: str = "cut") -> List[int]:
    """The first ``answers`` COMPLETE answers of a GET by id hold only the first image (the others come later), as
    the API's may: the others not listed ("cut"), or listed without a URL ("nullurl"); "vanish": the second such
    answer is null (a lagging replica). Returned, the list of how many images each COMPLETE answer held."""
    held: List[int] = []

    def lagging(generation: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if generation["status"] == "COMPLETE":
            if how == "vanish" and held:
                return None
            if len(held) < answers:
                first, *others = generation["generated_images"]
                late = [dict(image, url=None) for image in others] if how == "nullurl" else []
                generation = dict(generation, generated_images=[first, *late])
            held.append(len(generation["generated_images"]))
        return generation

    answers_rewritten(monkeypatch, lagging)
    monkeypatch.setattr("leonardo_client.client.POLL_INTERVAL", 0.05)  # generate's asking again: not a second first
    return held


def answers_rewritten(monkeypatch: pytest.MonkeyPatch, change: Callable[[Dict[str, Any]], Any]) -> None:
    """A GET by id answers what ``change`` makes of the generation the fake answered (None: no such generation)."""
    real = Client.get_generation_by_id

    def rewritten(self: Client, id: str) -> Any:
        return {"generations_by_pk": change(real(self, id)["generations_by_pk"])}

    monkeypatch.setattr(Client, "get_generation_by_id", rewritten)


@pytest.mark.parametrize("model", [[], ["--model", "phoenix-v1.0"]])
def test_generate_waits_for_images_that_fill_in_after_complete(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    model: List[str],
) -> None:
    # Eventual-consistency hunt: COMPLETE with 1 of the 4 images asked, generate saved that one and exited 0.
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 30.0)
    held = images_fill_in_late(monkeypatch, answers=3)
    assert cli.main(["generate", "a fox", "--num-images", "4", *model, "--out", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.split()) == len(os.listdir(str(tmp_path))) == 4  # was 1 and 1
    assert held == [1, 1, 1, 4]


def test_progress_elapsed_counts_on_while_images_fill_in_after_complete(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    quick_polls: None,
) -> None:
    # Progress hunt: each wait asking again for the late images counted from 0, so the line went back in time
    # ("COMPLETE, 0.4s elapsed" then "COMPLETE, 0.0s elapsed"). COMPLETE only after 0.3 s: the first wait's last.
    fake_in_env.completion_delay = 0.3
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 30.0)
    held = images_fill_in_late(monkeypatch, answers=3)
    assert cli.main(["generate", "a fox", "--num-images", "4", "--out", str(tmp_path)]) == 0
    assert held == [1, 1, 1, 4]
    shown = re.findall(r"^(PENDING|COMPLETE), (\d+\.\d)s elapsed, generation ", capsys.readouterr().err, re.M)
    assert [status for status, _ in shown].count("COMPLETE") == len(held)  # the extra waits' answers shown too
    elapsed = [float(seconds) for _, seconds in shown]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 0.3, shown


@pytest.mark.parametrize("how, asked", [("cut", 4), ("nullurl", 4), ("vanish", 4), ("cut", 2)])  # 2: one short
def test_generate_says_when_fewer_images_than_asked_came_within_the_grace(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    how: str, asked: int,
) -> None:
    # The one image that came is saved: with the others listed without a URL, save_results refused them all; a null
    # answer while the others were waited for ended generate with "waiting for it failed", nothing saved.
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.3)
    held = images_fill_in_late(monkeypatch, answers=float("inf"), how=how)
    assert cli.main(["generate", "a fox", "--num-images", str(asked), "--out", str(tmp_path)]) == 1  # was 0
    [made] = fake_in_env.generation_ids()
    captured = capsys.readouterr()
    assert len(captured.out.split()) == len(os.listdir(str(tmp_path))) == 1 and len(held) >= 1 + (how != "vanish")
    assert captured.err.splitlines()[-1] == (f"leonardo-client: error: generation {made} was made (and paid for), but "
                                             f"only 1 of the {asked} images asked came "
                                             f"(try 'leonardo-client get {made} --out DIR')")


@pytest.mark.parametrize("later", ["PENDING", "without a url"])
def test_the_extra_wait_ends_with_its_grace_and_keeps_the_answer_with_the_most_files(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    later: str,
) -> None:
    # After a COMPLETE answer with 1 of the 2 images, later PENDING answers (a lagging replica) kept generate
    # waiting to --timeout, not the grace; a later one listing both without a URL replaced it and nothing was
    # saved (found by the review of get --out's partial images).
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.5)
    monkeypatch.setattr("leonardo_client.client.POLL_INTERVAL", 0.05)
    answered: List[int] = []

    def lagging(generation: Dict[str, Any]) -> Dict[str, Any]:
        first, second = generation["generated_images"]
        if answered and later == "PENDING":
            generation = dict(generation, status="PENDING", generated_images=[])
        else:
            generation = dict(generation, generated_images=[dict(first, url=None) if answered else first,
                                                            dict(second, url=None)])
        answered.append(1)
        return generation

    answers_rewritten(monkeypatch, lagging)
    started = time.monotonic()
    assert cli.main(["generate", "a fox", "--num-images", "2", "--timeout", "20", "--out", str(tmp_path)]) == 1
    assert time.monotonic() - started < 10 and len(answered) >= 2  # the grace (0.5 s) and a little, not 20 s
    [made] = fake_in_env.generation_ids()
    captured = capsys.readouterr()
    assert len(captured.out.split()) == len(os.listdir(str(tmp_path))) == 1
    assert captured.err.splitlines()[-1].endswith("only 1 of the 2 images asked came (try 'leonardo-client get "
                                                  f"{made} --out DIR')")


def test_the_extra_wait_for_late_images_ends_within_timeout_counted_from_the_start(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
) -> None:
    # README: asked again "within --timeout". COMPLETE after 0.7 s with 1 of the 2 images for ever: --timeout 1.2 ends
    # the wait near 1.2 s; counted from the COMPLETE answer (M03 survived), it could not end before 1.9 s.
    fake_in_env.completion_delay = 0.7
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 30.0)
    polls_every(monkeypatch, 0.1)
    images_fill_in_late(monkeypatch, answers=float("inf"))
    started = time.monotonic()
    assert cli.main(["generate", "a fox", "--num-images", "2", "--timeout", "1.2", "--out", str(tmp_path)]) == 1
    assert time.monotonic() - started < 1.8
    assert "but only 1 of the 2 images asked came" in capsys.readouterr().err.splitlines()[-1]


def test_get_out_of_a_generation_listing_images_none_with_a_url_yet_says_it_has_no_file_to_save(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
) -> None:
    # It said "saving its files failed: ... url is not a file URL: null", where nothing was downloaded (README: a
    # failed download); the README's word for it is "COMPLETE with no file to save" (found by a review).
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.3)
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox", "num_images": 2}))
    answers_rewritten(monkeypatch, lambda generation: dict(generation, generated_images=[
        dict(image, url=None) for image in generation["generated_images"]]))
    assert cli.main(["get", made, "--out", str(tmp_path / "out")]) == 1
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: error: generation {made} is COMPLETE with no file to save"
    assert not os.path.exists(str(tmp_path / "out"))


@pytest.mark.parametrize("command", ["generate", "get"])
def test_a_partial_generation_s_paths_into_a_closed_pipe_end_in_one_error_line(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    command: str,
) -> None:
    # The paths printed before the error stayed in stdout's buffer, first flushed as main() ended: a BrokenPipeError
    # traceback, then another as Python exited (exit 120). Found by the review of get --out's partial images.
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.3)
    args = ["generate", "a fox", "--num-images", "2"]
    if command == "get":
        with Client() as client:
            args = ["get", generation_id(client.create_generation({"prompt": "a fox", "num_images": 2}))]
    images_fill_in_late(monkeypatch, answers=float("inf"), how="nullurl")
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "w") as closed_pipe:  # block-buffered, as stdout into a user's pipe
        monkeypatch.setattr(sys, "stdout", closed_pipe)
        assert cli.main(args + ["--out", str(tmp_path)]) == 1
        closed_pipe.flush()  # nothing left in it to fail again as Python exits
    assert capsys.readouterr().err.splitlines()[-1].startswith("leonardo-client: error: generation ")
    assert len(os.listdir(str(tmp_path))) == 1


@pytest.mark.parametrize("answers", [3, float("inf")])
def test_get_out_waits_for_listed_images_without_a_url_then_saves_those_that_came(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    answers: float,
) -> None:
    # Simplification pass: with one of the 2 images listed still without a URL, get --out saved nothing ("... is not
    # a file URL: null", exit 1), where generate waits for the rest, saves those that came and says how many did.
    fake_in_env.completion_delay = 0
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 30.0 if answers == 3 else 0.3)
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox", "num_images": 2}))
    held = images_fill_in_late(monkeypatch, answers=answers, how="nullurl")
    assert cli.main(["get", made, "--out", str(tmp_path)]) == (0 if answers == 3 else 1)
    captured = capsys.readouterr()
    came = 2 if answers == 3 else 1
    assert len(captured.out.split()) == len(os.listdir(str(tmp_path))) == came and len(held) >= 2
    if answers != 3:
        assert captured.err.splitlines()[-1] == f"leonardo-client: error: generation {made}: " \
            "1 of the 2 images it lists had no file"


@pytest.mark.parametrize("case, cause", [
    ("null", "no generation with id '{id}' (the API answered generations_by_pk: null)"),  # a replica behind the create
    ("timeout", "still PENDING after 0."),  # the advice says the id
    ("refused", "HTTP 404: Not Found"),
])
def test_generate_says_a_generation_made_whose_wait_failed_and_how_to_save_it(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, case: str, cause: str
) -> None:
    # It said only the wait's error ("no generation with id ...": read as nothing made), and running generate again
    # paid again.
    fake_in_env.completion_delay = 30 if case == "timeout" else 0
    if case == "null":
        fake_in_env.inject(status=200, body={"generations_by_pk": None}, path="/generations/*", method="GET", times=1)
    if case == "refused":
        fake_in_env.inject(status=404, path="/generations/*", method="GET", times=1)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path), "--timeout", "0.3"]) == 1
    [made] = fake_in_env.generation_ids()
    captured = capsys.readouterr()
    assert captured.out == "" and os.listdir(str(tmp_path)) == []
    last = captured.err.splitlines()[-1]
    assert last.startswith(f"leonardo-client: error: generation {made} was made (and paid for), but waiting for it "
                           f"failed (try 'leonardo-client get {made} --out DIR'): " + cause.format(id=made)), last


def test_generate_says_why_the_last_poll_of_a_generation_made_failed(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # The cause was cut in its middle to fit the line ("... (timeout ... tions/<id>)"): why the last poll failed, which
    # README promises, was lost, and the id said 4 times. The advice says the id: the cause's id and URL are left out.
    monkeypatch.setattr(cli, "Client", functools.partial(Client, backoff_factor=0.01))  # retried, without backoff
    fake_in_env.completion_delay = 30
    busy = {"error": "Service temporarily unavailable"}
    fake_in_env.inject(status=503, path="/generations/*", method="GET", times=None, body=busy)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path), "--timeout", "0.3"]) == 1
    [made] = fake_in_env.generation_ids()
    last = capsys.readouterr().err.splitlines()[-1]
    said = f"leonardo-client: error: generation {made} was made (and paid for), but waiting for it failed (try " \
        f"'leonardo-client get {made} --out DIR'): "
    why = r"still unknown after [0-9.]+s \(timeout 0.3s\), its last poll failed: HTTP 503: Service temporarily " \
        r"unavailable \(after 3 retries\)"
    assert re.fullmatch(re.escape(said) + why, last), last


@pytest.mark.parametrize("offline", [False, True])
def test_generate_gives_no_save_hint_for_a_failed_generation_or_offline(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    offline: bool,
) -> None:
    # FAILED is refunded (API_FACTS_MORE) and has no files; under --offline nothing outlives the command.
    fake_in_env.fail_new_generations = True
    monkeypatch.setattr(cli, "OFFLINE_COMPLETION_DELAY", 30.0)
    offline_args = ["--offline", "--timeout", "0.3"] if offline else []
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)] + offline_args) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert re.fullmatch(r"leonardo-client: error: generation \S+ " + ("still PENDING after .*" if offline else
                        "FAILED.*"), last) and "paid for" not in last and "--out DIR" not in last, last


def test_get_out_saves_the_files_generate_could_not_without_paying_again(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # No command saved a generation that exists: its images were to be fetched by hand from get's JSON.
    out = tmp_path / "out"
    fake_in_env.inject(status=404, path="/cdn/*", times=None)
    assert cli.main(["generate", "a fox", "--num-images", "2", "--out", str(out)]) == 1
    [made] = fake_in_env.generation_ids()
    fake_in_env.clear_faults()
    capsys.readouterr()
    for _ in range(2):  # saved again into the same folder: the same files, replaced
        assert cli.main(["get", made, "--out", str(out)]) == 0
        captured = capsys.readouterr()
        paths = captured.out.splitlines()
        assert len(paths) == 2 and all(os.path.isfile(path) and made in path for path in paths)
        assert sorted(os.listdir(str(out))) == sorted(os.path.basename(path) for path in paths)
        assert captured.err.splitlines()[-1].startswith("COMPLETE, ") and made in captured.err
    assert len(create_calls(fake_in_env)) == 1


def test_get_out_waits_for_a_pending_generation_as_generate_does(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_in_env.completion_delay = 0.3  # PENDING at the first check, COMPLETE at the next (0.6 s on)
    polls_every(monkeypatch, 0.6)
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox", "num_images": 1}))
    assert cli.main(["get", made, "--out", str(tmp_path / "new")]) == 0  # the folder created, as generate's
    captured = capsys.readouterr()
    [path] = captured.out.splitlines()
    assert os.listdir(str(tmp_path / "new")) == [os.path.basename(path)]
    first, *_, last = captured.err.splitlines()
    assert first.startswith("PENDING, 0.") and first.endswith(f"s elapsed, generation {made}")
    assert last.startswith("COMPLETE, ")


@pytest.mark.parametrize("command", ["generate", "get"])
def test_ctrl_c_while_waiting_names_the_generation_that_goes_on_and_how_to_save_it(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    command: str,
) -> None:
    # It said only "interrupted": the paid generation's id was on a progress line, if the terminal kept it.
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox", "num_images": 1}))

    def ctrl_c(client: Client, id: str, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "wait_for_generation", ctrl_c)
    args = ["generate", "a fox"] if command == "generate" else ["get", made]
    assert cli.main(args + ["--out", str(tmp_path)]) == 130
    [said] = capsys.readouterr().err.splitlines()
    made = fake_in_env.generation_ids()[-1]  # generate's own
    assert said == f"leonardo-client: interrupted; generation {made} goes on: 'leonardo-client get {made} --out DIR' " \
        "saves its files"


@pytest.mark.parametrize("case, said", [
    ("failed", "error: generation {id} FAILED"),
    ("pending", "error: generation {id} still PENDING after "),
    ("download", "error: generation {id}: saving its files failed: HTTP 404: Not Found"),  # get's own: no "try get"
    ("unknown", "error: no generation with id 'no-such-id'"),
], ids=["failed", "pending", "download", "unknown"])
def test_get_out_that_cannot_save_is_one_line_and_exit_1(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, case: str, said: str
) -> None:
    fake_in_env.fail_new_generations = case == "failed"
    fake_in_env.completion_delay = 30 if case == "pending" else 0
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox"})) if case != "unknown" else "no-such-id"
    if case == "download":
        fake_in_env.inject(status=404, path="/cdn/*", times=None)
    assert cli.main(["get", made, "--out", str(tmp_path), "--timeout", "0.3"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and os.listdir(str(tmp_path)) == []
    last = captured.err.splitlines()[-1]
    assert last.startswith("leonardo-client: " + said.format(id=made)) and "Traceback" not in captured.err, last


@pytest.mark.parametrize("command", ["generate", "get"])
def test_an_out_replaced_by_a_file_while_waiting_is_a_failed_save_not_a_usage_error(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    # save_results' ValueError ("exists and is not a folder") was taken for a usage error: exit 2, and generate's
    # line named neither the generation made and paid for nor how to save its files.
    fake_in_env.completion_delay = 0
    out, wait = tmp_path / "shots", Client.wait_for_generation

    def replaced_meanwhile(client: Client, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        answer = wait(client, *args, **kwargs)
        shutil.rmtree(str(out), ignore_errors=True)  # generate's, made before its create call; get makes none yet
        out.write_text("a script's file of that name")
        return answer

    monkeypatch.setattr(Client, "wait_for_generation", replaced_meanwhile)
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox"})) if command == "get" else ""
    assert cli.main((["generate", "a fox"] if command == "generate" else ["get", made]) + ["--out", str(out)]) == 1
    made = fake_in_env.generation_ids()[-1]
    said = capsys.readouterr().err.splitlines()[-1]
    cause = f"{cli.shown(str(out))} exists and is not a folder"
    if command == "generate":
        assert said == f"leonardo-client: error: generation {made} was made (and paid for), but saving its files " \
            f"failed (try 'leonardo-client get {made} --out DIR'): {cause}"
    else:
        assert said == f"leonardo-client: error: generation {made}: saving its files failed: {cause}"


@pytest.mark.parametrize("case", ["unknown", "failed"])
def test_get_out_makes_no_folder_when_there_is_nothing_to_save(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, case: str
) -> None:
    # Made before the lookup, as generate's is before its create call: an unknown id left it there, empty.
    fake_in_env.fail_new_generations = True
    with Client() as client:
        made = generation_id(client.create_generation({"prompt": "a fox"})) if case == "failed" else "no-such-id"
    assert cli.main(["get", made, "--out", str(tmp_path / "new" / "deeper")]) == 1
    assert capsys.readouterr().out == "" and os.listdir(str(tmp_path)) == []


def test_get_out_of_a_generation_complete_with_no_image_makes_no_folder(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # save_results made it before finding nothing to save: exit 1, and new/ left there, empty.
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.0)  # not asked again for a minute
    with Client() as client:
        generation = client.wait_for_generation(generation_id(client.create_generation({"prompt": "a fox"})))
    answer = {"generations_by_pk": dict(generation, generated_images=[])}
    fake_in_env.inject(status=200, body=answer, path="/generations/*", method="GET", times=None)
    assert cli.main(["get", generation["id"], "--out", str(tmp_path / "new")]) == 1
    assert capsys.readouterr().err.endswith("is COMPLETE with no file to save\n") and os.listdir(str(tmp_path)) == []


def test_generate_makes_its_folder_before_the_create_call(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # Unlike get's: one it cannot make or write to must be refused before the generation is paid for.
    fake_in_env.inject(status=400, body={"error": "invalid dimensions"}, method="POST")
    assert cli.main(["generate", "x", "--out", str(tmp_path / "new")]) == 1
    assert os.listdir(str(tmp_path)) == ["new"] and len(create_calls(fake_in_env)) == 1


def test_get_out_into_a_file_is_a_usage_error_before_anything_is_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    (tmp_path / "afile").write_text("x")
    assert cli.main(["get", "g-1", "--out", str(tmp_path / "afile")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and fake_in_env.requests == []


@pytest.mark.parametrize("case, out, reason", [
    ("in a file", "afile/sub", "Not a directory"),
    ("a dangling link", "dangling", "File exists"),
    ("under a dangling link", "dangling/sub", "No such file or directory"),
    ("a part made, then a file", "missing/../afile/sub", "Not a directory"),  # missing/ is made, then unmade
    ("a name too long", "x" * 300 + "/sub", "File name too long"),
    pytest.param("an unwritable parent", "locked/new/deeper", "Permission denied", marks=pytest.mark.skipif(
        os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")),
])
def test_get_out_that_cannot_be_made_is_a_usage_error_before_anything_is_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, case: str, out: str, reason: str
) -> None:
    # Checked only if it existed (91e6744): the generation was looked up and waited for, then exit 1 or 2 not
    # naming --out. Refused as generate's is, but not made: saving makes it.
    (tmp_path / "afile").write_text("x")
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "dangling"))
    (tmp_path / "locked").mkdir(mode=0o500)
    assert cli.main(["get", "g-1", "--out", str(tmp_path / out)]) == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: error: --out {cli.shown(str(tmp_path / out))}: cannot write there ({reason})"
    assert fake_in_env.requests == [] and sorted(os.listdir(str(tmp_path))) == ["afile", "dangling", "locked"]
    assert os.listdir(str(tmp_path / "locked")) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the open files in /proc")
def test_main_without_stdout_leaves_no_file_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each error opened /dev/null to put in place of a stdout that was not there (main() kept callable by a
    # program, found by a review): one more open file a call.
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main(["me"]) == 1
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert cli.main(["me"]) == 1
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("argv, out", [(["generate", "a fox"], ""), (["get", "g-1"], "new/deeper")],
                         ids=["generate", "get"])
def test_out_where_no_file_can_be_made_is_a_usage_error_before_anything_is_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    argv: List[str], out: str,
) -> None:
    # A folder this user may not write into (get's: to be made in one): without the check, found only when saving
    # failed, after the generation was made and paid for. Refused by the file system here, as get's parametrized
    # "unwritable parent" above is skipped as root (who may write anywhere); no test noticed the check gone (the
    # review of the simplification). The folders get made to check are unmade.
    def refused(**_: Any) -> NoReturn:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refused)
    folder = str(tmp_path.joinpath(out))  # "": tmp_path itself
    assert cli.main(argv + ["--out", folder]) == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: error: --out {cli.shown(folder)}: cannot write there (Permission denied)"
    assert fake_in_env.requests == [] and os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_out_on_a_full_disk_is_a_usage_error_before_anything_is_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    command: str,
) -> None:
    # The check made an empty file, which a full file system still takes: the generation was made and paid for, then
    # saving it failed. The check writes a byte, as the file system refuses it when full (a tmpfs, by hand).
    class FullDisk(io.BytesIO):
        def write(self, data: Any) -> NoReturn:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", lambda **_: FullDisk())
    folder = str(tmp_path / "out")
    argv = ["generate", "a fox"] if command == "generate" else ["batch", prompts_file(tmp_path, "a fox")]
    assert cli.main(argv + ["--out", folder]) == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said == f"leonardo-client: error: --out {cli.shown(folder)}: cannot write there (No space left on device)"
    assert fake_in_env.requests == [] and not os.path.exists(folder)


def test_get_timeout_without_out_is_a_usage_error_before_anything_is_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was taken and ignored: get waits only to save (--out); without it, one lookup, printed as JSON.
    assert cli.main(["get", "g-1", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: leonardo-client get [-h]") and fake_in_env.requests == []
    assert err.endswith("leonardo-client get: error: argument --timeout: not allowed without argument --out\n")


def test_a_number_flag_quotes_no_long_argument_whole() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"^not a whole number: '9{76}\.\.\.$"):
        cli._positive_int("9" * 5000 + "x")  # the message quoted all 5,001 characters


@pytest.mark.parametrize("argv", [["--offline", "get", "no-such-id"], ["--offline", "delete", "no-such-id"]])
def test_unknown_id_is_an_api_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: List[str]
) -> None:
    # A bad LEONARDO_BASE_URL left in the environment, which --offline does not use, changes nothing (the hint to a
    # 404 reads it as the Client would: its ValueError, uncaught there, would be a traceback, not the error's line).
    monkeypatch.setenv("LEONARDO_BASE_URL", "ftp://wrong.example")
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    notice, error = captured.err.splitlines()  # every offline command says it is offline
    assert notice == OFFLINE_NOTICE
    assert error == "leonardo-client: error: no generation with id 'no-such-id'" + (
        " (nothing deleted now: gone already, or never there)" if argv[1] == "delete" else ""  # a lost answer's retry
    )


@pytest.mark.parametrize("argv, path, key", [
    (["get", "g-1"], "/generations/*", "generations_by_pk"),  # said "no generation with id 'g-1'": untrue
    (["delete", "g-1"], "/generations/*", "delete_generations_by_pk"),  # and "nothing deleted"
    (["list", "u-1"], "/generations/user/*", "generations"),  # printed as the listing, exit 0
    (["models"], "/api/rest/v2/models", "productionApiAvailableModels"),  # printed nothing, exit 0
])
def test_an_answer_without_what_was_asked_for_says_so(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], argv: List[str], path: str, key: str
) -> None:
    fake_in_env.inject(status=200, body={"error": "upstream timeout"}, path=path, times=None)
    assert cli.main(argv) == 1
    assert capsys.readouterr() == ("", f"leonardo-client: error: the API answered no {key} (upstream timeout)\n")


def test_api_errors_exit_1_with_one_line_and_no_key(fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    wrong_key = "0f3c6a52-8e1d-4b7a-9c2e-5d4f6a7b8c9d"  # a UUID: one that is not gets a 500 (the test below)
    monkeypatch.setenv("LEONARDO_API_KEY", wrong_key)
    assert cli.main(["get", "abc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("leonardo-client: error: HTTP 401") and err.count("\n") == 1
    assert wrong_key not in err and "Traceback" not in err


def test_a_malformed_key_is_said_to_be_one_and_nothing_made(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # The commonest key mistake, a character missing: Leonardo answers the auth hook's 500 (API_FACTS 1.2), before
    # any action. generate read it as any 5xx ("it may have been made (and billed)"), and nothing said the key.
    key = fake_in_env.api_key[:-1]
    monkeypatch.setenv("LEONARDO_API_KEY", key)
    # The retries' backoffs (1.5 to 3 s in all) cut 50 times: the retries are counted, not timed.
    shipped_retry = leonardo_client.client.default_retry
    monkeypatch.setattr(leonardo_client.client, "default_retry",
                        lambda retries, backoff: shipped_retry(retries, backoff / 50))
    said = ("HTTP 500: Invalid response from authorization hook: the API key is probably malformed (a Leonardo key is "
            "a UUID): check it")
    assert cli.main(["generate", "a fox", "--out", str(tmp_path / "fox")]) == 1
    assert capsys.readouterr().err == f"leonardo-client: error: {said} (POST {fake_in_env.base_url}/generations)\n"
    assert cli.main(["batch", prompts_file(tmp_path, "a fox"), "--out", str(tmp_path / "batch")]) == 1
    err = capsys.readouterr().err  # its account could not be read: GET /me, retried as any 500
    assert err.startswith(f"leonardo-client: error: {said} (after 3 retries)") and key not in err
    assert fake_in_env.generation_ids() == []


def test_server_refusing_the_request_exits_1(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    fake_in_env.inject(status=400, body={"error": "invalid dimensions"}, method="POST")
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 1
    assert "HTTP 400: invalid dimensions" in capsys.readouterr().err


GENERATION = "0b6c2f4e-1d3a-4e5f-8a9b-7c6d5e4f3a2b"
CREATED = json.dumps({"sdGenerationJob": {"generationId": GENERATION}})


@pytest.mark.parametrize("argv, answers", [
    (["me"], []),
    (["generate", "x", "--out"], [f"HTTP/1.1 200 OK\r\nContent-Length: {len(CREATED)}\r\n\r\n{CREATED}"]),  # its wait's
])
def test_an_api_error_s_line_ends_with_its_request_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, argv: List[str],
    answers: List[str],
) -> None:
    # README: quote request_id to Leonardo's support; the CLI printed str(err), which has none (generate's: the error
    # it wraps, its wait's). A server's text: escaped, cut.
    request_id = "7f3e-\x1b]0;x" + "a" * 100
    refused = f"HTTP/1.1 400 Bad Request\r\nx-amzn-RequestId: {request_id}\r\nContent-Length: 15\r\n\r\n"
    with raw_server(*[answer.encode() for answer in answers], refused.encode() + b'{"error":"bad"}') as url:
        monkeypatch.setenv("LEONARDO_API_KEY", "d3adb33f-1234-4abc-8def-0123456789ab")
        monkeypatch.setenv("LEONARDO_BASE_URL", url + "/v1")
        assert cli.main(argv + [str(tmp_path)] if answers else argv) == 1
    said = "7f3e-\\x1b]0;x" + "a" * 67 + "..."  # 80 characters, then escaped
    err = capsys.readouterr().err
    assert err.startswith("leonardo-client: error: ") and err.endswith(f"[request id: {said}]\n") and "bad" in err, err
    assert err.count("\n") == 1


def test_failed_generation_exits_1(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    fake_in_env.fail_new_generations = True
    assert cli.main(["generate", "x", "--out", str(tmp_path)]) == 1
    assert "FAILED" in capsys.readouterr().err
    assert os.listdir(str(tmp_path)) == []


def test_wait_timeout_exits_1(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    fake_in_env.completion_delay = 30
    assert cli.main(["generate", "x", "--timeout", "0.3", "--out", str(tmp_path)]) == 1
    assert "still PENDING" in capsys.readouterr().err


def test_no_api_key_names_the_variable_and_offline(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["get", "abc"]) == 1
    assert capsys.readouterr().err == (
        "leonardo-client: error: no API key: set LEONARDO_API_KEY, or try --offline (a built-in fake API, no key)\n"
    )


@pytest.mark.parametrize("command", [["generate", "a fox"], ["batch", "{prompts}"], ["get", "g-1"]])
def test_no_api_key_leaves_no_out_folder(capsys: pytest.CaptureFixture[str], tmp_path: Any, command: List[str]) -> None:
    # --out was checked by making it, before the no-key error: batch and generate left an empty folder.
    argv = [arg.format(prompts=prompts_file(tmp_path, "a fox")) for arg in command]
    assert cli.main([*argv, "--out", str(tmp_path / "out" / "deeper")]) == 1
    assert "error: no API key" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["generate"],
        ["generate", "x", "--num-images", "0"],
        ["generate", "x", "--width", "wide"],
        ["generate", "x", "--timeout", "-1"],
        ["generate", "x", "--timeout", "nan"],
        ["list", "u", "--limit", "-1"],
        ["frobnicate"],
        ["--offline", "get", ".."],  # refused by the client before anything is sent
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: List[str]) -> None:
    assert cli.main(argv) == 2
    assert "error:" in capsys.readouterr().err


def test_a_read_timeout_beyond_a_week_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    # 1e300 was an OverflowError mid-run. A prompts file that exists: a missing one is a usage error of its own.
    (tmp_path / "prompts.txt").write_text("a fox\n", encoding="utf-8")
    argv = ["batch", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "o"), "--read-timeout", "1e300"]
    assert cli.main(argv) == 2
    said = "leonardo-client batch: error: argument --read-timeout: must be from 0.001 to 604800\n"
    assert capsys.readouterr().err.endswith(said)
    assert os.listdir(str(tmp_path)) == ["prompts.txt"]


@pytest.mark.parametrize("name", ["guide", ".png"])  # a dot-file has no extension: ".png" was told to "end in" .png
def test_an_upload_named_for_no_image_type_says_what_the_command_line_can_do(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, name: str
) -> None:
    (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    assert cli.main(["upload", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"{name}': its name has no image extension the upload takes (.png, .jpg, .jpeg, .webp)\n")
    assert "extension=" not in err  # the library's advice: the command line has no such option
    assert fake_in_env.requests == []


def test_running_out_of_memory_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def too_big(file: Any, extension: Any) -> Any:  # as reading a 50 GB image would
        raise MemoryError

    monkeypatch.setattr("leonardo_client._files.read_upload", too_big)
    assert cli.main(["--offline", "upload", "huge.png"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "leonardo-client: error: out of memory"


class WriteOnly:  # what a program calling main() may set sys.stderr to (into its logging): no isatty
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("stderr", [None, WriteOnly()])
def test_a_stderr_python_started_without_is_no_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, stderr: Any
) -> None:
    monkeypatch.setattr(sys, "stderr", stderr)  # None as `2>&-` leaves it: only the messages are lost (stdout: below)
    assert cli.main(["--offline", "generate", "x", "--out", str(tmp_path)]) == 0
    assert len(os.listdir(str(tmp_path))) == 1


@pytest.mark.parametrize("argv", [["generate", "x", "--num-images", "0"], ["generate"]])
def test_a_usage_error_without_stderr_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: List[str]
) -> None:
    monkeypatch.setattr(sys, "stderr", None)  # `2>&-`
    assert cli.main(argv) == 2
    assert capsys.readouterr().out == ""  # argparse printed the usage on stdout, the output


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_a_usage_error_into_a_full_stderr_is_still_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3.8's argparse lets the write's OSError out of parse_args (3.9+ drops it): exit 1, as another file's failure.
    def as_3_8_writes(parser: Any, message: str, file: Any = None) -> None:
        if message:
            (file or sys.stderr).write(message)

    monkeypatch.setattr(argparse.ArgumentParser, "_print_message", as_3_8_writes)
    monkeypatch.setattr(sys, "stderr", FullDisk())  # 2>/dev/full
    assert cli.main(["--no-such-flag"]) == 2


def test_what_the_output_cannot_encode_is_escaped_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # as PYTHONIOENCODING=ascii
    monkeypatch.setattr(sys, "stdout", stdout)
    assert cli.main(["--offline", "generate", "x", "--out", str(tmp_path / "caf\xe9")]) == 0
    stdout.flush()
    assert b"caf\\xe9" + os.sep.encode() in stdout.buffer.getvalue()  # type: ignore[attr-defined]
    assert stdout.errors == "strict"  # as it was, once main() returns
    c_locale = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="surrogateescape")  # LANG=C: bytes pass
    monkeypatch.setattr(sys, "stdout", c_locale)
    assert cli.main(["--offline", "generate", "x", "--out", str(tmp_path / "img\udcff\xe9")]) == 0
    c_locale.flush()
    assert b"img\xff\\xe9" + os.sep.encode() in c_locale.buffer.getvalue()  # type: ignore[attr-defined]
    assert c_locale.errors == "surrogateescape"


def test_the_escape_handler_gives_a_decoder_its_error_back() -> None:
    with pytest.raises(UnicodeDecodeError):  # it escapes what is written; registered by name, a decoder may name it
        b"caf\xe9".decode("ascii", cli.ESCAPE)


def test_no_stdout_or_stderr_at_all_is_still_one_exit_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stderr", None)

    def disk_full(client: Any, args: Any) -> int:
        raise OSError(28, "No space left on device")

    def interrupted(*args: Any, **kwargs: Any) -> None:
        summary = BatchSummary(1, 0, 0, 0, 1, 0, {}, 1.0, 0, 0, True, str(tmp_path))
        raise BatchInterrupted(summary)

    monkeypatch.setitem(cli.COMMANDS, "me", disk_full)
    assert cli.main(["--offline", "me"]) == 1  # was an AttributeError on sys.stdout.fileno()
    (tmp_path / "p.txt").write_text("a fox\n", encoding="utf-8")
    monkeypatch.setattr(cli, "run_batch", interrupted)
    real_stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", real_stdout)
    assert cli.main(["--offline", "batch", str(tmp_path / "p.txt"), "--out", str(tmp_path / "o")]) == 130
    assert real_stdout.getvalue() == ""  # the summary was printed to stdout when stderr was None


def test_ctrl_c_while_the_arguments_are_parsed_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["me"]) == 130
    assert capsys.readouterr().err == "leonardo-client: interrupted\n"


def test_help_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for needed in ("LEONARDO_API_KEY", "--offline", "examples:", "generate", "get", "list", "delete", "spends credits"):
        assert needed in text
    assert cli.main(["generate", "--help"]) == 0
    assert "--num-images" in capsys.readouterr().out
    assert cli.main(["get", "--help"]) == 0
    assert "--out DIR" in capsys.readouterr().out
    assert cli.main(["upload", "--help"]) == 0
    assert re.search(r"^  path +the image to upload$", capsys.readouterr().out, re.M)  # it had no help text


def test_generate_help_gives_the_multiple_of_8_as_v1_s_rule_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "--help"]) == 0
    said = " ".join(capsys.readouterr().out.split())  # it said "a multiple of 8", and flux-pro-2.0 takes 1001
    for side in ("width", "height"):
        assert f"{side} in pixels: on v1 a multiple of 8 from 32 to 1536; with --model, what that model takes" in said


def test_help_and_defaults_are_the_library_s_own(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # they were copies (300, 100, 60, 70) that a change to the library's constants would have left saying the old
    monkeypatch.setattr(cli, "WAIT_TIMEOUT", 250.0)
    monkeypatch.setattr(cli, "DEFAULT_POSTS_PER_MINUTE", 90)
    monkeypatch.setattr(cli, "DEFAULT_TIMEOUT", (5.0, 45.5))
    monkeypatch.setattr(cli, "LOOK_AGAIN", 4.0)
    for command, said in (
        ("generate", "wait at most (250)"),
        ("get", "with --out: wait at most (250)"),
        ("batch", "create calls a minute (90)"),
        ("batch", "one API answer (default: 45.5)"),
        ("batch", "plus the connect timeout and 4 s (54.5 s by default)"),
        ("batch", "one whose prompt may be listed rewritten (prompt enhancement) is left ambiguous"),
    ):
        assert cli.main([command, "--help"]) == 0
        assert said in " ".join(capsys.readouterr().out.split()), command
    assert cli.build_parser().parse_args(["generate", "a cat"]).timeout == 250.0
    assert cli.build_parser().parse_args(["batch", "p.txt", "--out", "o"]).posts_per_minute == 90


def test_every_help_fits_an_80_column_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # the top level's own wrapping ran to 84: the terminal wrapped 6 lines again
    [commands] = [action for action in cli.build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    for command in [[]] + [[name] for name in commands.choices]:
        assert cli.main(command + ["--help"]) == 0
        wide = [line for line in capsys.readouterr().out.splitlines() if len(line) > 80]
        assert wide == [], command


def test_help_gives_every_exit_status_main_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "1 API, download or output error" in said and "1 API, download or output error" in (cli.main.__doc__ or "")


def test_help_says_how_a_stop_ends_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    # Both said "130 interrupted": after Ctrl-C the command kills itself by SIGINT, so a program running it never
    # sees 130 (subprocess: returncode -2); a shell shows 130. SIGTERM's 143 and SIGHUP's 129 are exit statuses.
    for command in ([], ["batch"]):
        assert cli.main(command + ["--help"]) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "130 interrupted" not in said and "130 Ctrl-C" not in said, command
        if os.name == "posix":  # what entry() does there (test_ctrl_c_sigterm_or_sighup_during_the_wait_...)
            ctrl_c = "Ctrl-C ends it by SIGINT (a shell shows 130; a program sees it killed), SIGTERM 143, SIGHUP 129"
            assert ctrl_c in said, command


def console_script() -> str:
    """What the installed ``leonardo-client`` runs: the function setup.cfg names, called as pip's script calls it."""
    config = configparser.ConfigParser()
    config.read(os.path.join(REPO, "setup.cfg"))
    [script] = config["options.entry_points"]["console_scripts"].strip().splitlines()
    name, target = (part.strip() for part in script.split("="))
    module, function = target.split(":")
    assert name == "leonardo-client" and module == "leonardo_client.__main__"
    return f"from {module} import {function}; sys.exit({function}())"


def test_python_dash_m_usage_error_exits_2() -> None:
    # `python -m leonardo_client --offline generate ...` itself runs in test_readme.py (README's command).
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    bad = subprocess.run(
        [sys.executable, "-m", "leonardo_client", "generate"], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 2 and bad.stderr.startswith("usage: leonardo-client generate [-h]")  # not the top's
    assert bad.stderr.endswith("leonardo-client generate: error: the following arguments are required: prompt\n")


def test_running_the_package_folder_as_a_script_says_how_to_run_it() -> None:
    # `python leonardo_client` (the folder) ran __main__.py without its package: an ImportError traceback.
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "leonardo_client"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "leonardo-client: run it as 'python -m leonardo_client' or 'leonardo-client'\n"


# `python -m leonardo_client` as it runs (its entry()), its --offline generations complete at once, as quick_offline
# has them in process: for tests of the process, not of the wait (the shipped 1.5 s and polls took 2.5 s a run).
QUICK_OFFLINE_CLI = ("-c", "import sys, leonardo_client.__main__ as cli; cli.OFFLINE_COMPLETION_DELAY = 0.0; "
                           "sys.exit(cli.entry())")


@pytest.mark.skipif(os.name != "posix", reason="sys.argv is decoded from bytes on POSIX only")
def test_a_utf_8_prompt_under_an_ascii_locale_is_taken_as_batch_takes_it(tmp_path: Any) -> None:
    # LC_ALL=C without UTF-8 mode decodes sys.argv as ASCII: "café" was refused as "not UTF-8?", batch's file read.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEONARDO_", "LC_", "PYTHONUTF8"))}
    env.update(PYTHONPATH=REPO, LC_ALL="C", LANG="C")
    command = [sys.executable, "-X", "utf8=0", *QUICK_OFFLINE_CLI, "--offline", "generate"]
    done = subprocess.run(command + ["café".encode(), "--out", str(tmp_path)], capture_output=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert [os.path.dirname(path) for path in done.stdout.decode().splitlines()] == [str(tmp_path)]
    done = subprocess.run(command + [b"caf\xe9", "--out", str(tmp_path)], capture_output=True, timeout=60, env=env)
    assert done.returncode == 2 and b"the prompt holds bytes that are not valid text" in done.stderr  # not UTF-8


# --- a person at the command line never sees a traceback: closed pipes, full disks, Ctrl-C ------


def default_stop_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP at their defaults in the child: else it inherits them ignored when pytest was
    started under nohup or with ``&`` in a script, leaves them so (as it should) and is not stopped by them."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def run_cli(
    args: List[str], stdout: Any, interrupt_after: str = "", signum: int = signal.SIGINT,
    launch: Tuple[str, ...] = ("-m", "leonardo_client"),
) -> "subprocess.CompletedProcess[str]":
    """Run the CLI in a subprocess; with ``interrupt_after``, send ``signum`` once stderr shows that text."""
    process = start_cli(args, stdout, launch)
    lines = []
    if interrupt_after:
        assert process.stderr is not None
        for line in process.stderr:  # bounded: the child exits within the test's timeout
            lines.append(line)
            if interrupt_after in line:
                process.send_signal(signum)
                break
    return finish_cli(process, lines)


def start_cli(
    args: List[str], stdout: Any, launch: Tuple[str, ...] = ("-m", "leonardo_client"), unbuffered: str = ""
) -> "subprocess.Popen[str]":
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env.update(PYTHONPATH=REPO, PYTHONUNBUFFERED=unbuffered)  # "": block-buffered (see children_block_buffered)
    process = subprocess.Popen(
        [sys.executable, *launch, "--offline"] + args,
        stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_stop_signals,
    )
    if stdout == subprocess.PIPE:
        assert process.stdout is not None
        process.stdout.close()  # nobody reads: the child's writes fail with EPIPE
    return process


def finish_cli(process: "subprocess.Popen[str]", lines: List[str]) -> "subprocess.CompletedProcess[str]":
    """The run of ``process``, its stderr the ``lines`` already read from it and the rest."""
    run = finished(process)
    return subprocess.CompletedProcess(process.args, process.returncode, "", "".join(lines) + run.stderr)


OUTPUT_COMMANDS = [["list"], ["me"], ["models"]]
HELP_COMMANDS = [["--help"], ["--version"], ["batch", "--help"]]


@pytest.fixture(scope="module")
def unwritable_stdout_runs() -> Dict[Tuple[str, Tuple[str, ...]], "subprocess.CompletedProcess[str]"]:
    """(where, args) -> the run, of the output commands into a closed pipe or a full disk and the help ones into a
    full disk (PYTHONUNBUFFERED=1 too): started at once (each is mostly Python starting), then collected."""
    runs = [("closed pipe", args) for args in OUTPUT_COMMANDS]
    runs += [("full disk", args) for args in OUTPUT_COMMANDS + HELP_COMMANDS]
    runs += [("full disk, unbuffered", args) for args in HELP_COMMANDS]
    full_disk = "/dev/full" if os.path.exists("/dev/full") else os.devnull  # without one, its tests are skipped
    with open(full_disk, "w") as full:
        running = {(where, tuple(args)): start_cli(args, subprocess.PIPE if where == "closed pipe" else full,
                                                   unbuffered="1" if where.endswith("unbuffered") else "")
                   for where, args in runs}
        return {key: finish_cli(process, []) for key, process in running.items()}


@pytest.mark.parametrize("args", OUTPUT_COMMANDS)
@pytest.mark.parametrize("where", ["closed pipe", "full disk"])
def test_a_closed_or_full_stdout_is_one_line_and_exit_1(
    unwritable_stdout_runs: Any, args: List[str], where: str
) -> None:
    if where == "full disk" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    done = unwritable_stdout_runs[where, tuple(args)]
    reason = "Broken pipe" if where == "closed pipe" else "No space left on device"
    error = f"leonardo-client: error: cannot write the output: {reason}"
    assert (done.returncode, done.stderr.splitlines()) == (1, [OFFLINE_NOTICE, error])


@pytest.mark.parametrize("args", HELP_COMMANDS)
@pytest.mark.parametrize("where", ["full disk", "full disk, unbuffered"])  # unbuffered (Docker, CI): the write fails
def test_help_into_a_full_disk_is_an_error_not_a_silent_0(
    unwritable_stdout_runs: Any, args: List[str], where: str
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    done = unwritable_stdout_runs[where, tuple(args)]  # argparse drops a failed write of its own, and exits 0
    assert (done.returncode, done.stderr) == (1, "leonardo-client: error: cannot write the output: No space left on device\n")


def test_a_closed_stdout_is_refused_before_anything_is_sent(tmp_path: Any) -> None:
    # Python started with fd 1 closed has no sys.stdout: print() does nothing, and the output was lost, exit 0.
    command = f'exec "{sys.executable}" -m leonardo_client --offline generate x --out "{tmp_path}" >&-'
    env = dict(os.environ, PYTHONPATH=REPO)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60, env=env)
    assert (done.returncode, done.stderr) == (1, "leonardo-client: error: cannot write the output: stdout is closed\n")
    assert os.listdir(tmp_path) == []  # nothing generated, nothing spent


def test_generate_into_a_closed_pipe_ends_in_one_error_line(tmp_path: Any) -> None:
    done = run_cli(["generate", "x", "--out", str(tmp_path)], subprocess.PIPE, launch=QUICK_OFFLINE_CLI)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "leonardo-client: error: cannot write the output: Broken pipe"
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.mark.parametrize("where", ["closed pipe", "full disk"])
def test_an_unwritable_stdout_leaves_no_output_to_fail_again_at_exit(tmp_path: Any, where: str) -> None:
    # Block-buffered, as Python's stdout into a pipe or a file is unless PYTHONUNBUFFERED is set (as on some CI
    # runners and this suite's machines: each write goes out at once, nothing is kept): what the failed flush kept
    # was flushed again as Python exited, "Exception ignored ... BrokenPipeError" (OSError) after the error line,
    # and the exit status was 120. (conftest's children_block_buffered keeps PYTHONUNBUFFERED from the child.)
    if where == "full disk" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full" if where == "full disk" else os.devnull, "w") as full_disk:
        stdout = full_disk if where == "full disk" else subprocess.PIPE
        done = run_cli(["generate", "x", "--out", str(tmp_path)], stdout, launch=QUICK_OFFLINE_CLI)
    reason = "Broken pipe" if where == "closed pipe" else "No space left on device"
    error = f"leonardo-client: error: cannot write the output: {reason}"
    assert (done.returncode, done.stderr.splitlines()[-1]) == (1, error)
    assert "Exception ignored" not in done.stderr


def test_the_cli_runs_with_its_stdout_block_buffered_as_in_a_users_pipe() -> None:
    # PYTHONUNBUFFERED (set on this machine and many CI runners) was passed on: every write went out at once, so
    # the closed-pipe and full-disk tests never had output left to fail again at exit, the case a user's pipe has.
    probe = ("-c", "import sys; sys.stderr.write(type(sys.stdout.buffer).__name__)")  # FileIO when unbuffered
    with open(os.devnull, "w") as nowhere:
        done = finish_cli(start_cli([], nowhere, launch=probe), [])
    assert (done.returncode, done.stderr) == (0, "BufferedWriter")


def test_an_oserror_not_from_writing_the_output_is_not_called_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreadable(client: Any, args: Any) -> int:  # a file the command reads, not stdout
        raise NotADirectoryError(20, "Not a directory", "/lc.zip/leonardo_client/testing/openapi.json")

    monkeypatch.setitem(cli.COMMANDS, "me", unreadable)
    assert cli.main(["--offline", "me"]) == 1
    said = capsys.readouterr().err.splitlines()[-1]  # was "cannot write the output: Not a directory"
    assert said == "leonardo-client: error: '/lc.zip/leonardo_client/testing/openapi.json': Not a directory"


@pytest.mark.parametrize("failing, what", [(1, "the built-in fake API"), (3, "the batch's")])
def test_a_thread_that_cannot_start_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, failing: int, what: str
) -> None:
    # A limit on threads (ulimit -u, a container's pids limit): its RuntimeError was a traceback.
    real_start, starts = threading.Thread.start, []

    def start(thread: threading.Thread) -> None:  # started by the command: the fake's thread first, then the batch's
        if threading.current_thread() is threading.main_thread():
            starts.append(thread)
            if len(starts) == failing:
                raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    (tmp_path / "p.txt").write_text("a fox\n", encoding="utf-8")
    assert cli.main(["--offline", "batch", str(tmp_path / "p.txt"), "--out", str(tmp_path / "out")]) == 1
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.startswith(f"leonardo-client: error: {what}") and said.endswith("can't start new thread"), said


def test_the_built_in_fake_that_cannot_start_says_why_without_the_errno(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def start(fake: FakeLeonardo) -> FakeLeonardo:
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr(FakeLeonardo, "start", start)
    assert cli.main(["--offline", "me"]) == 1
    said = capsys.readouterr().err.splitlines()[-1]  # was "...: [Errno 99] Cannot assign requested address"
    assert said == "leonardo-client: error: the built-in fake API cannot start: Cannot assign requested address"


@pytest.mark.parametrize("base_url, command, hinted", [("/", "me", True), ("", "me", False), ("/api/v1", "models", True)])
def test_a_404_from_a_base_url_without_the_api_path_says_to_check_it(
    fake_in_env: FakeLeonardo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], base_url: str,
    command: str, hinted: bool
) -> None:
    # LEONARDO_BASE_URL without /api/rest/v1 said only "HTTP 404: Not Found (GET http://127.0.0.1:PORT/me)"; on a v2
    # call (models, generate --model), sent under .../v2, too.
    if base_url:
        monkeypatch.setenv("LEONARDO_BASE_URL", fake_in_env.root_url + base_url)
    else:  # the API's own 404, through its right address: said as it is
        fake_in_env.inject(status=404, path="/me")
    assert cli.main([command]) == 1
    said = capsys.readouterr().err
    hint = ": is LEONARDO_BASE_URL right? The API's address ends in /api/rest/v1 (https://cloud.leonardo.ai/api/rest/v1)"
    assert said.startswith("leonardo-client: error: HTTP 404: ") and said.endswith(f"/{command})" + hint * hinted + "\n")


# Ctrl-C ends it by SIGINT (a shell shows 130), so that bash ends a loop running it; the others exit 143 and 129.
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_ctrl_c_sigterm_or_sighup_during_the_wait_exits_with_one_line(tmp_path: Any, signum: int, status: int) -> None:
    # SIGTERM and SIGHUP ended the process at once (a download's temporary file left, no last line).
    done = run_cli(["generate", "x", "--out", str(tmp_path)], subprocess.DEVNULL, "PENDING", signum)
    assert done.returncode == status
    assert done.stderr.splitlines()[-1] == "leonardo-client: interrupted"
    assert "Traceback" not in done.stderr


def test_a_sighup_ignored_as_under_nohup_stays_ignored_and_the_command_finishes(tmp_path: Any) -> None:
    # Only a stop signal at its default is taken over: `nohup leonardo-client generate ... &` goes on as its terminal
    # closes (as one a shell's `&` left Ctrl-C ignored in). The generation stays PENDING 0.5 s: signalled mid-wait.
    nohup = ("-c", "import signal, sys, leonardo_client.__main__ as cli; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
             "cli.OFFLINE_COMPLETION_DELAY = 0.5; sys.exit(cli.entry())")
    done = run_cli(["generate", "x", "--out", str(tmp_path)], subprocess.DEVNULL, "PENDING", signal.SIGHUP, nohup)
    assert done.returncode == 0 and "interrupted" not in done.stderr, done.stderr
    assert [name[-4:] for name in os.listdir(tmp_path)] == [".png"]  # saved, no temporary file left


def run_cli_stopped_once(
    fake: FakeLeonardo, args: List[str], ready: Callable[[], Any], signum: int = signal.SIGINT
) -> "subprocess.CompletedProcess[str]":
    """Run the CLI against ``fake`` (through the environment fake_in_env set) and send ``signum`` once ``ready()``
    is true of it: an answer it holds (inject(delay=..., after=True)) keeps the command in that call till then."""
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, "-m", "leonardo_client"] + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_stop_signals)
    deadline = time.monotonic() + 60  # a bound, not a timing: the held call comes within seconds
    while not ready():
        assert process.poll() is None and time.monotonic() < deadline, "the command never reached the held call"
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "", err)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, -signal.SIGINT), (signal.SIGTERM, 143)])
def test_a_stop_during_the_create_call_says_the_generation_may_have_been_made(
    fake_in_env: FakeLeonardo, tmp_path: Any, signum: int, status: int
) -> None:
    # It said a bare "interrupted": the create call may have run (on the real API, billed), and a rerun paid twice.
    fake_in_env.inject(path="/generations", method="POST", delay=600, after=True)  # made, its answer held
    argv = ["generate", "a fox", "--out", str(tmp_path)]
    done = run_cli_stopped_once(fake_in_env, argv, fake_in_env.generation_ids, signum)
    assert done.returncode == status  # as a stop anywhere else
    where = "'leonardo-client list' shows your latest generations"
    said = f"leonardo-client: interrupted; the create call was under way: {MAY_HAVE_BEEN_MADE} ({where})"
    assert done.stderr.splitlines() == [said]


@pytest.mark.parametrize("command", ["generate", "get"])
def test_a_stop_during_the_download_names_the_generation_and_how_to_save_it(
    fake_in_env: FakeLeonardo, tmp_path: Any, command: str
) -> None:
    # It said a bare "interrupted", the generation COMPLETE and paid for; a stop in the wait names it already.
    if command == "get":
        with Client() as client:
            client.create_generation({"prompt": "a fox", "num_images": 1})
    fake_in_env.inject(path="/cdn/*", method="GET", delay=600, after=True)  # its file's answer held

    def downloading() -> bool:
        return any(request.path.startswith("/cdn/") for request in fake_in_env.requests)

    argv = ["generate", "a fox"] if command == "generate" else ["get", fake_in_env.generation_ids()[0]]
    done = run_cli_stopped_once(fake_in_env, argv + ["--out", str(tmp_path / "out")], downloading)
    [made] = fake_in_env.generation_ids()
    assert done.returncode == -signal.SIGINT
    saves = f"'leonardo-client get {made} --out DIR' saves its files"
    assert done.stderr.splitlines()[-1] == f"leonardo-client: interrupted; generation {made} goes on: {saves}"
    assert os.listdir(str(tmp_path / "out")) == []  # no partial file left


@pytest.mark.parametrize("call", ["create_generation", "save_results"])
def test_a_stop_offline_names_nothing_to_look_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, call: str
) -> None:
    def ctrl_c(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, call, ctrl_c)
    assert cli.main(["--offline", "generate", "a fox", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "leonardo-client: interrupted"  # nothing outlives the command


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash's rule for loops")
def test_ctrl_c_ends_a_bash_loop_running_the_command(tmp_path: Any) -> None:
    # It exited 130, which bash takes for a command that handled Ctrl-C itself: the loop went on, and the
    # prompts after the first were made (and billed). bash ends a loop only after a command killed by SIGINT.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    loop = 'for p in a b c; do "$0" -m leonardo_client --offline generate "$p" --out o; echo "after $p: $?"; done'
    process = subprocess.Popen(["bash", "-c", loop, sys.executable], cwd=str(tmp_path), env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_stop_signals,
                               start_new_session=True)  # a process group of its own, as a terminal's job
    assert process.stderr is not None
    for line in process.stderr:  # bounded: the first generation ends within seconds
        if "PENDING" in line:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole job
            break
    out, _ = process.communicate(timeout=60)
    assert "after b" not in out and "after c" not in out, out


def test_sigterm_stops_a_batch_as_ctrl_c_does(tmp_path: Any) -> None:
    out = tmp_path / "out"
    argv = ["batch", prompts_file(tmp_path, "a fox", "a hare"), "--out", str(out), "--posts-per-minute", "6000"]
    done = run_cli(argv, subprocess.DEVNULL, "#2 submitted", signal.SIGTERM)  # not 0.6 s after #1: the default pace
    assert done.returncode == 143, done.stderr
    assert done.stderr.splitlines()[-1].startswith("leonardo-client: interrupted; ") and "Traceback" not in done.stderr
    assert "refresh" not in (out / "index.html").read_text(encoding="utf-8")  # the gallery says it stopped


def test_a_stop_signal_sent_twice_at_once_is_one_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # timeout(1) signals the command, then its process group: the second came during the stop, as "Ctrl-C again
    # to quit at once", and the create calls under way were not waited for (left unjournaled).
    # The handler's clock is the test's: on a busy machine, a stall between the two kills outlasted the window.
    now = [100.0]
    monkeypatch.setattr(cli, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0])}))
    interrupts = cli._Interrupts()
    with interrupts:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # ended by the handler's KeyboardInterrupt
        now[0] += cli.REPEATED_SIGNAL * 0.9
        os.kill(os.getpid(), signal.SIGINT)  # the same stop, a moment later: no second KeyboardInterrupt
        time.sleep(0.05)  # handled by now, if it is
        now[0] += cli.REPEATED_SIGNAL * 0.2  # past the window of the first
        with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after that is one again: "again to quit at once"
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    assert interrupts.status == 130 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# The CLI, saying "ready" on stdout once its stop signals are handled (then --offline's notice goes to stderr).
READY_ONCE_HANDLED = """
import os, sys, leonardo_client.__main__ as cli
enter = cli._Interrupts.__enter__
cli._Interrupts.__enter__ = lambda self: (enter(self), os.write(1, b"ready"))[0]
sys.exit(cli.entry())
"""


def full_pipe() -> Tuple[int, int]:
    """A pipe's read end and write end, full and blocking as a command gets it: its reader paused."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 4096)
    except BlockingIOError:
        os.set_blocking(write_end, True)
    return read_end, write_end


def test_a_sigterm_with_stderr_a_full_pipe_ends_the_command_143() -> None:
    # Its reader paused (`timeout 3 leonardo-client --offline me 2>pipe`): the stop's KeyboardInterrupt came out of
    # the blocked write, then "interrupted" waited on the same full pipe for ever. Found by hunt K.
    read_end, write_end = full_pipe()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    process = subprocess.Popen([sys.executable, "-c", READY_ONCE_HANDLED, "--offline", "me"], stdout=subprocess.PIPE,
                               stderr=write_end, env=dict(env, PYTHONPATH=REPO), preexec_fn=default_stop_signals)
    try:
        assert process.stdout is not None and process.stdout.read(5) == b"ready"  # bounded: or it ended (b"")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 143
        assert os.get_blocking(write_end)  # blocking again: its file is shared (here with the test; a shell's tty)
    finally:
        process.kill()
        process.communicate()
        os.close(read_end)
        os.close(write_end)


@pytest.mark.skipif(not os.path.exists("/proc/self/wchan"), reason="tells when the command waits on its stdout")
@pytest.mark.parametrize("command, unbuffered", [("generate", ""), ("generate", "1"), ("me", "")])
def test_a_stop_with_stdout_a_full_pipe_says_its_line_and_ends(
    fake_in_env: FakeLeonardo, tmp_path: Any, command: str, unbuffered: str
) -> None:
    # Review R8: stdout's reader paused, a Ctrl-C's flush of it waited on the full pipe for ever, its line unsaid, and
    # a second one waited again as main() ended: only SIGKILL ended it. generate's line names the generation saved,
    # PYTHONUNBUFFERED=1 (Docker, CI) too: its paths then wait as they are printed.
    fake_in_env.completion_delay = 0
    read_end, write_end = full_pipe()
    argv = ["generate", "a fox", "--out", str(tmp_path)] if command == "generate" else [command]
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED=unbuffered)  # "": buffered
    with subprocess.Popen([sys.executable, "-m", "leonardo_client"] + argv, stdout=write_end, stderr=subprocess.PIPE,
                          text=True, env=env, preexec_fn=default_stop_signals) as process:
        try:
            deadline = time.monotonic() + 60  # a bound, not a timing
            while "pipe" not in Path(f"/proc/{process.pid}/wchan").read_text():  # writing into the full pipe
                assert process.poll() is None and time.monotonic() < deadline, "it never wrote its output"
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)  # once
            done = finished(process, timeout=5)
            assert os.get_blocking(write_end)  # blocking again: the pipe is shared (a shell's)
        finally:
            process.kill()
            os.close(read_end)
            os.close(write_end)
    said = "leonardo-client: interrupted" + "".join(  # generate's, the only one made
        f"; generation {made} was made and its files saved into {tmp_path}" for made in fake_in_env.generation_ids()
    )
    assert (done.returncode, done.stderr.splitlines()[-1:]) == (-signal.SIGINT, [said])


def test_a_stop_leaves_stdout_blocking_when_stderr_is_its_pipe_and_restores_a_pipe_whatever_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Review R3: with 2>&1 stdout's pipe became non-blocking too (one open pipe), and a full moment dropped its lines;
    # and a failure to open /dev/null left stderr non-blocking, its duplicate leaked.
    probe = "import os, sys, leonardo_client.__main__ as cli; print(cli._unblocked(sys.stderr, 1), os.get_blocking(1))"
    shared = subprocess.run([sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=REPO), timeout=60, universal_newlines=True)
    assert shared.stdout.split() == ["None", "True"]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    opened = len(os.listdir("/proc/self/fd"))
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a: (_ for _ in ()).throw(OSError(24, "Too many open files"))
                        if path == os.devnull else real_open(path, *a))
    try:
        cli._blocking_again(write_end, sys.stderr)
        assert os.get_blocking(write_end) and len(os.listdir("/proc/self/fd")) == opened
    finally:
        os.close(read_end)
        os.close(write_end)


# Raises KeyboardInterrupt when `module` is imported, as a Ctrl-C in the CLI's first ~0.2 s would.
INTERRUPT_AT = """
import runpy, sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
"""
INTERRUPTED_IMPORT = INTERRUPT_AT + """
sys.argv[0] = {argv0!r}
if sys.argv[0] == "-m":  # as "python -m leonardo_client" has them while it finds the module (orig_argv: 3.10+)
    sys.orig_argv = [sys.executable, "-m", "leonardo_client"]
{start}
"""
AS_THE_CLI = 'runpy.run_module("leonardo_client", run_name="__main__")'  # python -m, or the script's import


@pytest.mark.parametrize("module", ["requests", "leonardo_client.batch"])  # the package's imports, then the CLI's
@pytest.mark.parametrize("argv0", ["/venv/bin/leonardo-client", "-m"])
def test_ctrl_c_while_the_cli_imports_is_one_line_and_130(argv0: str, module: str) -> None:
    code = INTERRUPTED_IMPORT.format(argv0=argv0, module=module, start=AS_THE_CLI)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert (done.returncode, done.stderr) == (130, "leonardo-client: interrupted\n")


def test_ctrl_c_while_the_cli_imports_with_no_stderr_is_130_and_quiet() -> None:
    # As under pythonw or `2>&-`: writing the line to a sys.stderr of None would be an AttributeError (exit 1).
    start = "sys.stderr = None\n" + AS_THE_CLI
    code = INTERRUPTED_IMPORT.format(argv0="-m", module="leonardo_client.batch", start=start)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert (done.returncode, done.stderr) == (130, "")


@pytest.mark.parametrize("start", ["console script", "-m"])
def test_ctrl_c_once_the_command_is_done_ends_it_without_a_traceback(start: str) -> None:
    # A Ctrl-C during the interpreter's shutdown hit urllib3's pool finalizers or threading._shutdown:
    # "Exception ignored in ... KeyboardInterrupt" (14 runs in 20 when sent as the last line appeared).
    late_ctrl_c = "import atexit, os, runpy, signal, sys; atexit.register(os.kill, os.getpid(), signal.SIGINT)\n"
    code = late_ctrl_c + (console_script() if start == "console script" else AS_THE_CLI)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    done = subprocess.run([sys.executable, "-c", code, "--offline", "me"], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)
    assert (done.returncode, done.stderr) == (-signal.SIGINT, OFFLINE_NOTICE + "\n")  # the shell shows 130
    assert done.stdout.startswith("user id: ")


def test_main_runs_in_a_thread_of_a_program(capsys: pytest.CaptureFixture[str]) -> None:
    statuses: List[int] = []  # signal handlers can be set only on the main thread: none is set from another
    thread = threading.Thread(target=lambda: statuses.append(cli.main(["--offline", "me"])))
    thread.start()
    thread.join(30)
    assert statuses == [0] and capsys.readouterr().out.startswith("user id: ")


def test_a_ctrl_c_main_lets_through_is_still_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt  # a second Ctrl-C while main() handles the first, or one as it returns

    monkeypatch.setattr(cli, "main", interrupted)
    killed: List[Tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: killed.append((pid, signum)))
    previous = signal.getsignal(signal.SIGINT)
    try:
        assert cli.entry() == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert killed == [(os.getpid(), signal.SIGINT)]  # it ends by the signal: bash ends a loop only so


def test_ctrl_c_while_the_client_closes_is_not_lost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    close = cli.Client.close

    def close_as_urllib3_does(client: Any) -> None:  # its pools' sockets are closed by a weakref finalizer
        close(client)
        weakref.finalize(type("Pool", (), {})(), os.kill, os.getpid(), signal.SIGINT)  # Ctrl-C, right then

    monkeypatch.setattr(cli.Client, "close", close_as_urllib3_does)
    # Raised in the finalizer, it was printed ("Exception ignored ... KeyboardInterrupt") and lost: exit 0.
    assert cli.main(["--offline", "me"]) == 130
    assert capsys.readouterr().err.splitlines() == [OFFLINE_NOTICE, "leonardo-client: interrupted"]


class Finalized:
    """An object whose finalizer fails: Python prints "Exception ignored in ..." and a traceback."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_ctrl_c_landing_in_a_finalizer_is_not_printed_and_a_bug_in_one_still_is(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)  # the hook set before main(): Python's, pytest's

    def command(client: Any, args: Any) -> int:
        Finalized(ValueError("a bug"))
        Finalized(KeyboardInterrupt())  # a Ctrl-C (or SIGTERM) landing in a finalizer: it printed a traceback
        return 0

    monkeypatch.setitem(cli.COMMANDS, "me", command)
    assert cli.main(["--offline", "me"]) == 130  # not printed, but not lost: the command ends as stopped
    assert [type(unraisable.exc_value) for unraisable in seen] == [ValueError]
    assert sys.unraisablehook == seen.append  # put back: a program's own finalizers are its own


def test_a_stop_landing_in_a_finalizer_still_ends_the_command_as_stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python drops a KeyboardInterrupt raised in a finalizer: the command ran on to exit 0, the stop lost. (A batch
    # stopped says its own line by raising the stop, so no command returns 130 for _run to map any more.)
    def command(client: Any, args: Any) -> int:
        stop = signal.getsignal(signal.SIGTERM)  # the command's, as a SIGTERM landing in the finalizer runs it
        weakref.finalize(type("Pool", (), {})(), stop, signal.SIGTERM, None)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "me", command)
    assert cli.main(["--offline", "me"]) == 143  # SIGTERM's status, not Ctrl-C's
    assert capsys.readouterr().err.splitlines() == [OFFLINE_NOTICE, "leonardo-client: interrupted"]


# A Ctrl-C landing in http.client's HTTPResponse.__init__: the half-made response's close() fails when it is
# collected ("no attribute 'fp'"), printed under -X dev (PYTHONDEVMODE=1); Python drops it otherwise.
HALF_MADE_RESPONSE = """
import http.client, runpy, sys
def interrupted(response, *args, **kwargs):
    raise KeyboardInterrupt
http.client.HTTPResponse.__init__ = interrupted
sys.argv[0] = "-m"
{start}
"""


def test_a_ctrl_c_that_leaves_a_half_made_response_is_one_line_under_x_dev() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    code = HALF_MADE_RESPONSE.format(start=AS_THE_CLI)
    done = subprocess.run([sys.executable, "-X", "dev", "-c", code, "--offline", "me"], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=env)
    assert (done.returncode, done.stderr) == (-signal.SIGINT, OFFLINE_NOTICE + "\nleonardo-client: interrupted\n")


def test_ctrl_c_while_a_program_imports_the_library_is_its_own() -> None:
    code = INTERRUPTED_IMPORT.format(argv0="my_script.py", module="requests", start="import leonardo_client")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr


@pytest.mark.parametrize("start", [["-m", "leonardo_client"], ["-m", "leonardo_client.__main__"],
                                   ["-mleonardo_client.__main__"]])  # fmt: skip
def test_ctrl_c_while_python_m_imports_the_cli_is_one_line_and_130(tmp_path: Any, start: List[str]) -> None:
    # orig_argv (3.10+) names the module run: leonardo_client.__main__ was not taken for the command's (a traceback).
    (tmp_path / "sitecustomize.py").write_text(INTERRUPT_AT.format(module="leonardo_client.client"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, *start, "me"], capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert (done.returncode, done.stderr) == (130, "leonardo-client: interrupted\n")


# Once, a signal (SIGTERM unless said) in the making of the first of the fake's classes: in the code a dataclass
# makes its methods with (exec), or in a field's __set_name__.
STOP_IN_THE_FAKE_S_CLASSES = """
import builtins, dataclasses, signal, sys
set_name, stopped = dataclasses.Field.__set_name__, []
def stop(module):
    if stopped or not module.startswith("leonardo_client.testing"):
        return False
    stopped.append(sys.stderr.write("stopped\\n"))
    return True
def exec(source, globals, *rest):
    if {where!r} == "exec" and stop(globals.get("__name__", "")):
        source = "import signal; signal.raise_signal(signal.{signal})\\n" + source
    return builtins.exec(source, globals, *rest)
def stopping(field, owner, name):
    if {where!r} == "__set_name__" and stop(owner.__module__):
        signal.raise_signal(signal.{signal})
    return set_name(field, owner, name)
dataclasses.exec, dataclasses.Field.__set_name__ = exec, stopping
"""


@pytest.mark.parametrize("where", ["exec", "__set_name__"])
@pytest.mark.parametrize("command", [["--offline", "me"], ["models"]])  # _connect's import, _bundled_spec's
def test_a_sigterm_while_the_fake_is_imported_is_143_not_a_sigint_or_a_traceback(
    tmp_path: Any, where: str, command: List[str]
) -> None:
    # In exec, Python ended the process by SIGINT once main() had returned 143 (the shell: 130); in __set_name__,
    # 3.8-3.11 raise it as a RuntimeError: a traceback, exit 1. The imports hold the signals now.
    done = stopped_in_the_fake_s_classes(tmp_path, where, "SIGTERM", command)
    assert (done.returncode, done.stderr) == (143, "stopped\nleonardo-client: interrupted\n")  # nothing sent


@pytest.mark.parametrize("where", ["exec", "__set_name__"])
def test_a_ctrl_c_while_a_batch_s_items_are_checked_by_the_spec_is_an_interrupt_not_a_traceback(
    tmp_path: Any, where: str
) -> None:
    # read_items checks a new batch's items by the bundled spec, importing it as the arguments are read.
    (tmp_path / "p.txt").write_text("a fox\n")
    done = stopped_in_the_fake_s_classes(tmp_path, where, "SIGINT", ["batch", str(tmp_path / "p.txt"), "--out",
                                                                      str(tmp_path / "out")])
    assert (done.returncode, done.stderr) == (-signal.SIGINT, "stopped\nleonardo-client: interrupted\n")  # a Ctrl-C's


def stopped_in_the_fake_s_classes(tmp_path: Any, where: str, stop: str, command: List[str]) -> Any:
    (tmp_path / "sitecustomize.py").write_text(STOP_IN_THE_FAKE_S_CLASSES.format(where=where, signal=stop))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env.update(LEONARDO_API_KEY="00000000-0000-4000-8000-000000000000", LEONARDO_BASE_URL="http://127.0.0.1:9/api")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "leonardo_client", *command], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env, preexec_fn=default_stop_signals)


def test_ctrl_c_while_another_python_m_program_imports_the_library_is_its_own(tmp_path: Any) -> None:
    # argv[0] is "-m" while any "python -m" finds its module: such a program exited "leonardo-client: interrupted".
    (tmp_path / "otherapp").mkdir()
    caught = "try:\n    import leonardo_client\nexcept KeyboardInterrupt:\n    sys.exit('otherapp: interrupted')\n"
    (tmp_path / "otherapp" / "__init__.py").write_text(INTERRUPT_AT.format(module="leonardo_client.client") + caught)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "otherapp"], capture_output=True, text=True, timeout=60, cwd=REPO,
                          env=env)
    # Only orig_argv (3.10+) names the module; before it, any "python -m" is taken for the command line's.
    said = (1, "otherapp: interrupted\n") if sys.version_info >= (3, 10) else (130, "leonardo-client: interrupted\n")
    assert (done.returncode, done.stderr) == said


def test_init_image_is_uploaded_then_used_on_v1_and_v2(fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from leonardo_client.testing.media import render_png

    guide = tmp_path / "guide.png"
    guide.write_bytes(render_png("guide", 32, 32))
    assert cli.main(["upload", str(guide)]) == 0
    uploaded = capsys.readouterr().out.strip()
    assert cli.main(["generate", "x", "--init-image", str(guide), "--out", str(tmp_path / "v1")]) == 0
    assert cli.main(["generate", "x", "--model", "hailuo-2_3", "--width", "1376", "--height", "768",
                     "--init-image", str(guide), "--out", str(tmp_path / "v2")]) == 0
    creates = ("/generations", "/api/rest/v2/generations")
    v1, v2 = [r.json for r in fake_in_env.requests if r.method == "POST" and r.path in creates]
    first_id = v1["init_image_id"]  # each generate uploads its own
    assert v1 == {"prompt": "x", "num_images": 1, "init_image_id": first_id} and first_id != uploaded
    [frame] = v2["parameters"]["guidances"]["start_frame"]  # hailuo's image guidance: no image_to_image there
    assert frame["image"]["type"] == "UPLOADED" and frame["image"]["id"] not in (uploaded, first_id)
    assert len([r for r in fake_in_env.requests if r.path.startswith("/s3/")]) == 3
    assert len(os.listdir(str(tmp_path / "v2"))) == 1 and os.listdir(str(tmp_path / "v2"))[0].endswith(".mp4")


def test_an_init_image_on_an_image_to_image_model_is_sent_with_the_strength_it_requires(
    fake_in_env: FakeLeonardo, tmp_path: Any
) -> None:
    from leonardo_client.testing.media import render_png

    guide = tmp_path / "guide.png"
    guide.write_bytes(render_png("guide", 32, 32))
    assert cli.main(["generate", "x", "--model", "phoenix-v1.0", "--init-image", str(guide), "--out", str(tmp_path / "out")]) == 0
    [create] = [r.json for r in fake_in_env.requests if r.path == "/api/rest/v2/generations"]
    [reference] = create["parameters"]["guidances"]["image_to_image"]
    assert reference["strength"] == "MID" and reference["image"]["type"] == "UPLOADED"


def test_a_model_that_takes_no_prompt_is_run_without_one(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from leonardo_client.testing.media import render_png

    photo = tmp_path / "photo.png"
    photo.write_bytes(render_png("photo", 32, 32))
    assert cli.main(["generate", "--model", "remove-bg", "--init-image", str(photo), "--out", str(tmp_path / "out")]) == 0
    [create] = [r for r in fake_in_env.requests if r.path == "/api/rest/v2/generations"]
    assert "prompt" not in create.json["parameters"] and len(os.listdir(str(tmp_path / "out"))) == 1


# --- progress on stderr ----------------------------------------------------------------------------


def progress(event: str, message: str = "", **counts: Any) -> BatchProgress:
    fields: Dict[str, Any] = dict(total=10, complete=0, failed=0, ambiguous=0, in_flight=0, images=0, credits={})
    fields.update(counts)
    return BatchProgress(event=event, index=None, message=message, elapsed=60.0, done_this_run=4, **fields)


def test_batch_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("COLUMNS", "200")
    printer = cli._BatchPrinter()
    printer(progress("start", "10 items"))
    printer(progress("failed", "#3 failed: the generation FAILED", complete=3, failed=1, in_flight=2))
    printer(progress("done", "done", complete=4, failed=1, credits={"CREDITS": 8, "DOLLARS": 0.09}, cost_unknown=2))
    monkeypatch.setenv("COLUMNS", "80")  # the bar made the line 100 columns: "spent" was always cut
    printer(progress("done", "done", complete=4, failed=1, credits={"CREDITS": 8}))
    monkeypatch.setenv("COLUMNS", "40")  # a line wider than the terminal would wrap, and \r redraw only its end
    printer(progress("start", "10 items"))
    printer.close()
    shown = terminal.getvalue()
    assert "#3 failed: the generation FAILED\n" in shown  # events worth keeping get their own line
    assert "\r[#########...............] 4/10 done, 2 in flight, 1 failed, ETA 1m30s, spent 0, 4.0/min" in shown
    assert ", spent 8 credits + 0.09 dollars + 2 generations of unknown cost, 4.0/min\r" in shown
    assert "\r5/10 done, 0 in flight, 1 failed, ETA 1m15s, spent 8 credits, 4.0/min" in shown  # no bar: no room
    assert shown.rsplit("\r", 1)[1].rstrip() == "0/10 done, 0 in flight, 0 failed, ETA 2"  # 39 columns
    plain = io.StringIO()
    monkeypatch.setattr("sys.stderr", plain)
    printer = cli._BatchPrinter()
    printer(progress("complete", "#4 complete: 0004-a.png", complete=4, failed=1, credits={"CREDITS": 2.5}))
    assert plain.getvalue() == "[5/10] #4 complete: 0004-a.png\n"  # failed items are done too


def test_the_bar_is_drawn_at_most_every_tenth_of_a_second_but_for_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal, now = Terminal(), [100.0]
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(cli, "time", type("Clock", (), {"monotonic": staticmethod(lambda: now[0])}))
    printer = cli._BatchPrinter()
    for complete, moment in [(1, 100.0), (2, 100.05), (3, 100.2), (4, 100.21)]:
        now[0] = moment
        printer(progress("complete", complete=complete))
    printer(progress("done", complete=5))
    assert re.findall(r"(\d+)/10 done", terminal.getvalue()) == ["1", "3", "5"]


def test_the_bar_fits_the_terminal_stderr_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 50, 0, 0))  # a 50-column terminal
    monkeypatch.delenv("COLUMNS", raising=False)  # and stdout a file: its width (80) was taken
    with open(slave, "w", closefd=False) as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        assert cli._columns() == 50
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))  # one that does not know its size
        monkeypatch.setattr(sys, "__stdout__", terminal)  # stdout too: Python 3.8's shutil then says 0 as well
        assert cli._columns() == 80  # as COLUMNS is unset (it gave 0, and lines were cut to 20 characters)
    os.close(master)
    os.close(slave)


def test_server_text_on_stdout_cannot_drive_the_terminal(fake_in_env: FakeLeonardo, capsys: Any) -> None:
    user = {"id": "u", "username": "\x1b]0;owned\x07"}
    fake_in_env.inject(status=200, path="/me", body={"user_details": [{"user": user}]})
    assert cli.main(["me"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["user id: u", "username: \\x1b]0;owned\\x07"]


def test_server_text_on_stderr_cannot_drive_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # A status with ESC sequences and a BEL reached the terminal raw: it could clear it, retitle it...
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    line = cli._StatusLine()
    line.show("g: \x1b[2J\x1b]0;owned\x07WAITING")
    line.show("g: OK")  # padded over the longer line as shown, escapes and all
    line.say("\x1b[31m")
    assert terminal.getvalue() == (
        "\rg: \\x1b[2J\\x1b]0;owned\\x07WAITING" + "\rg: OK" + " " * 28 + "\r     \r\\x1b[31m\n"
    )


def test_a_status_line_never_reaches_the_last_column(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("COLUMNS", "10")  # lines were cut to 20 characters at the least: they wrapped
    line = cli._StatusLine()
    line.show("PENDING, 1.0s elapsed")
    line.show("\x1b[2J WAITING")  # cut as shown: escaped first
    line.close()
    assert terminal.getvalue() == "\rPENDING, \r\\x1b[2J W\n"


def test_a_status_line_pads_no_wider_than_a_terminal_narrowed_since(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setenv("COLUMNS", "30")
    line = cli._StatusLine()
    line.show("x" * 40)
    monkeypatch.setenv("COLUMNS", "10")  # padded to the 29 columns of the last line, it wrapped
    line.show("ok")
    assert terminal.getvalue() == "\r" + "x" * 29 + "\rok" + " " * 7


# --- batch: exit status, reruns, options reaching run_batch, what is printed where ------------------


def prompts_file(tmp_path: Any, *prompts: str) -> str:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(prompt + "\n" for prompt in prompts), encoding="utf-8")
    return str(path)


def test_a_batch_flag_the_v1_api_refuses_is_said_once_by_its_name(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was every line's error ("line 1: width 7: ...; line 2: ...; ... and 20 more"), the flag never named.
    argv = ["--offline", "batch", prompts_file(tmp_path, *["a fox"] * 30), "--out", str(tmp_path / "out"), "--width", "7"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "leonardo-client: error: --width 7: the v1 API takes a multiple of 8 from 32 to 1536 (a v2 model " \
        "has its own sizes)" and not (tmp_path / "out").exists()


def test_an_offline_batchs_fake_keeps_no_record_of_its_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str], quick_batch_polls: None
) -> None:
    # Its record of every request, which nothing reads, grew ~26 KB an item: 2.6 GB for 100,000 prompts.
    fakes: List[FakeLeonardo] = []

    def made(**settings: Any) -> FakeLeonardo:  # the fake the CLI starts, kept here to look at
        fakes.append(FakeLeonardo(**settings))
        return fakes[-1]

    monkeypatch.setattr("leonardo_client.testing.FakeLeonardo", made)
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "a hare", "a whale"), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    saved = [name for name in os.listdir(tmp_path / "out") if name.endswith(".png")]
    assert len(saved) == 3 and len(fakes[0].requests) == 0


def test_a_batch_num_images_the_v1_api_refuses_is_said_once_by_its_name(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # batch and generate check the v1 flags through one helper: this is the flag only generate's tests reached
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "a hare"), "--out", str(tmp_path / "out")]
    assert cli.main(argv + ["--num-images", "5", "--height", "512"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "leonardo-client: error: --num-images 5: the v1 API makes at most 4 images at 1024x512 (8, and 4 " \
        "over 768)" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, said", [
    *[([flag, value], f"leonardo-client batch: error: argument {flag}: {error}") for flag, value, error in [
        ("--negative-prompt", "", "must not be empty or blank"),
        ("--model", "", "must not be empty or blank"),
        ("--model-id", " ", "must not be empty or blank"),
        ("--negative-prompt", "blur\udcff", "the value holds bytes that are not valid text (not UTF-8?): check its "
         "source"),
    ]],
    # It was sent: every item refused (a 400), and the corrected command refused in that folder as another batch.
    # generate refuses the same before sending anything. (A --model this version does not know is sent, as
    # generate's with a prompt: it may be newer than the bundled spec.)
    (["--model", "phoenix-v1.0", "--width", "777"], "leonardo-client: error: --model 'phoenix-v1.0' --width 777: model "
     "'phoenix-v1.0' does not take these options: parameters.width must be a multiple of 8"),
])
def test_a_bad_batch_flag_is_said_once_by_its_name(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], flags: List[str], said: str
) -> None:
    # A bad text flag was every line's error ("line 1: negative_prompt must be a non-empty string; line 2: ..."), the
    # flag unnamed.
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "a whale"), "--out", str(tmp_path / "out")]
    assert cli.main(argv + flags) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == said
    assert "line 1" not in err and not (tmp_path / "out").exists()


def test_a_batch_line_bad_on_its_own_is_listed_with_the_flags_bad_for_every_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The flags are said once by their names only when they are every line's whole problem: not to hide line 2's own.
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "x" * 2001), "--out", str(tmp_path / "out")]
    assert cli.main(argv + ["--model", "phoenix-v1.0", "--width", "777"]) == 2
    refused = "model 'phoenix-v1.0' does not take these options: parameters"
    assert capsys.readouterr().err.splitlines()[-1] == f"leonardo-client: error: line 1: {refused}.width must be a " \
        f"multiple of 8; line 2: {refused}.prompt must have a length at most 2000"


@pytest.mark.parametrize("lines, said", [
    # Every line kling-2.6's (it takes 1920x1080), line 2's prompt too long: no item goes to v1.
    (['{"prompt": "a fox", "model": "kling-2.6"}', '{"prompt": "%s", "model": "kling-2.6"}' % ("x" * 5000)],
     "line 2: model 'kling-2.6' does not take these options: parameters.prompt must have a length at most 2500"),
    # Line 1 refused by --width, line 2 (its own width) by a key of its own: each said by its line.
    (['{"prompt": "a fox"}', '{"prompt": "a hare", "width": 512, "widht": 512}'],
     "line 1: width 1920: the v1 API takes a multiple of 8 from 32 to 1536 (a v2 model has its own sizes); line 2: "
     "the v1 API does not take these options: Unexpected variable widht"),
])
def test_a_batch_s_v1_flags_are_named_only_when_every_bad_line_fails_by_them(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], lines: List[str], said: str
) -> None:
    # Without --model any bad line had the v1 flags checked: "--width 1920: the v1 API takes ...", its own error hidden.
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    argv = ["--offline", "batch", str(prompts), "--out", str(tmp_path / "out"), "--width", "1920", "--height", "1080"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "leonardo-client: error: " + said


def test_a_batch_flag_refused_by_the_lines_own_model_is_said_by_each_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # README: lines naming a model of their own are listed, each with its model's reason (not v1's, which none is).
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "a fox", "model": "phoenix-v1.0"}\n{"prompt": "a hare", "model": "phoenix-v1.0"}\n')
    assert cli.main(["--offline", "batch", str(prompts), "--out", str(tmp_path / "out"), "--width", "7"]) == 2
    said = "model 'phoenix-v1.0' does not take these options: parameters.width must be at least 32"
    assert capsys.readouterr().err.splitlines()[-1] == f"leonardo-client: error: line 1: {said}; line 2: {said}"


def test_a_batch_model_id_that_is_no_uuid_is_said_once_by_its_name(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "a hare"), "--out", str(tmp_path / "out")]
    assert cli.main(argv + ["--model-id", "phoenix-v1.0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("leonardo-client: error: --model-id 'phoenix-v1.0' is a v2 model name, not a v1 model id")
    assert not (tmp_path / "out").exists()


def test_a_model_this_version_does_not_know_is_sent_for_the_api_to_judge(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # It may be newer than the bundled spec; the fake, as the API, refuses one it does not know (a 400, not charged).
    assert cli.main(["--offline", "generate", "a fox", "--model", "phoenix-9.9"]) == 1
    assert "HTTP 400: expected one of the values" in capsys.readouterr().err
    out = str(tmp_path / "out")
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a fox"), "--model", "phoenix-9.9", "--out", out]) == 1
    assert "items the API refused (see why in the gallery) would be refused again" in capsys.readouterr().out


def test_a_rerun_takes_a_journaled_batch_s_items_as_they_were_taken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    # Begun by an earlier version, whose check took the item: refused now, the batch could not be resumed.
    prompts, out = tmp_path / "p.jsonl", tmp_path / "out"
    prompts.write_text('{"prompt": "a hare", "widht": 512}\n', encoding="utf-8")
    monkeypatch.setenv("LEONARDO_API_KEY", "a-key")
    assert cli.main(["batch", str(prompts), "--out", str(out)]) == 2  # a new batch: refused, nothing sent
    assert "line 1: the v1 API does not take these options" in capsys.readouterr().err
    out.mkdir()
    # A journal holding an item: run_batch judges whether it is this batch's.
    (out / "journal.jsonl").write_text('{"journal": 1}\n{"i": 0, "s": "failed"}\n', encoding="utf-8")
    taken: List[Any] = []
    monkeypatch.setattr(cli, "run_batch", lambda client, items, out_dir, **_: taken.append(items) or summary_of(1, 1, out_dir))
    assert cli.main(["batch", str(prompts), "--out", str(out)]) == 0
    assert [item.extra for item in taken[0]] == [{"widht": 512}]


def create_calls(fake: FakeLeonardo) -> List[Any]:
    return [r for r in fake.requests if r.method == "POST" and r.path in ("/generations", "/api/rest/v2/generations")]


def summary_of(total: int, complete: int, out_dir: str, **counts: Any) -> BatchSummary:
    fields: Dict[str, Any] = dict(failed=0, ambiguous=0, pending=0, interrupted=False)
    fields.update(counts)
    return BatchSummary(
        total=total, complete=complete, images=complete, credits={}, wall_time=1.0, done_this_run=complete,
        images_this_run=complete, out_dir=out_dir, **fields,
    )


@pytest.fixture
def batch_calls(monkeypatch: pytest.MonkeyPatch) -> List[Dict[str, Any]]:
    """cli.run_batch replaced: each call's client timeout, items, out_dir and options, answered all complete."""
    calls: List[Dict[str, Any]] = []

    def run_batch(client: Any, items: Any, out_dir: str, **options: Any) -> BatchSummary:
        assert callable(options.pop("on_progress"))
        calls.append(dict(timeout=client.timeout, items=list(items), out_dir=out_dir, options=options))
        return summary_of(len(items), len(items), out_dir)

    monkeypatch.setattr(cli, "run_batch", run_batch)
    return calls


def test_batch_with_failed_items_exits_1(fake_in_env: FakeLeonardo, capsys: Any, tmp_path: Any,
                                         quick_batch_polls: None) -> None:
    fake_in_env.fail_new_generations = True
    argv = ["batch", prompts_file(tmp_path, "a fox", "a hare"), "--out", str(tmp_path / "out")]
    assert cli.main(argv + ["--posts-per-minute", "6000"]) == 1  # not 0.6 s apart, as at the default pace
    assert capsys.readouterr().out.startswith("0 of 2 complete, 2 failed, 0 ambiguous, 0 pending")


@pytest.mark.parametrize("counts", [dict(failed=1), dict(ambiguous=1), dict(pending=1)])
def test_batch_exits_1_unless_every_item_is_complete(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, counts: Dict[str, int]
) -> None:
    monkeypatch.setattr(cli, "run_batch", lambda client, items, out, **_: summary_of(2, 1, out, **counts))
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a", "b"), "--out", str(tmp_path / "o")]) == 1


def failed_batch(fake: FakeLeonardo, tmp_path: Any) -> List[str]:
    """The argv of a one-prompt batch whose first run has just failed (and journaled) its item."""
    argv = ["batch", prompts_file(tmp_path, "a fox"), "--out", str(tmp_path / "out")]
    fake.fail_new_generations = True
    assert cli.main(argv) == 1
    fake.fail_new_generations = False
    assert len(create_calls(fake)) == 1
    return argv


def test_batch_rerun_leaves_failed_items_alone(fake_in_env: FakeLeonardo, tmp_path: Any,
                                               quick_batch_polls: None) -> None:
    argv = failed_batch(fake_in_env, tmp_path)
    assert cli.main(argv) == 1
    assert len(create_calls(fake_in_env)) == 1  # nothing sent again: a rerun resumes, it does not retry


def test_batch_rerun_with_retry_failed_sends_them_again(fake_in_env: FakeLeonardo, tmp_path: Any,
                                                        quick_batch_polls: None) -> None:
    argv = failed_batch(fake_in_env, tmp_path)
    assert cli.main(argv + ["--retry-failed"]) == 0
    assert len(create_calls(fake_in_env)) == 2


@pytest.mark.parametrize(
    "extra, options",
    [
        ([], dict(concurrency=None, posts_per_minute=100, retry_failed=False, resubmit_ambiguous=False, offline=True)),
        (
            ["--concurrency", "3", "--posts-per-minute", "7", "--retry-failed", "--resubmit-ambiguous"],
            dict(concurrency=3, posts_per_minute=7, retry_failed=True, resubmit_ambiguous=True, offline=True),
        ),
    ],
)
def test_batch_run_options_reach_run_batch(
    batch_calls: List[Dict[str, Any]], tmp_path: Any, extra: List[str], options: Dict[str, Any]
) -> None:
    out = str(tmp_path / "out")
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a fox"), "--out", out] + extra) == 0
    [call] = batch_calls
    assert (call["out_dir"], call["options"]) == (out, options)


@pytest.mark.parametrize("extra, timeout", [([], (10.0, 60.0)), (["--read-timeout", "7.5"], (10.0, 7.5))])
def test_batch_read_timeout_is_the_clients_read_timeout(
    batch_calls: List[Dict[str, Any]], tmp_path: Any, extra: List[str], timeout: Any
) -> None:
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a fox"), "--out", str(tmp_path / "o")] + extra) == 0
    assert batch_calls[0]["timeout"] == timeout  # the connect timeout stays the client's


@pytest.mark.parametrize("model", [["--model", "phoenix-v1.0"], ["--model-id", MODEL_ID]])
def test_batch_defaults_reach_every_item(batch_calls: List[Dict[str, Any]], tmp_path: Any, model: List[str]) -> None:
    defaults = ["--width", "512", "--height", "640", "--num-images", "3", "--negative-prompt", "blurry"]
    argv = ["--offline", "batch", prompts_file(tmp_path, "a fox", "a hare"), "--out", str(tmp_path / "o")]
    assert cli.main(argv + model + defaults) == 0
    fields = dict(width=512, height=640, num_images=3, negative_prompt="blurry")
    fields[model[0][2:].replace("-", "_")] = model[1]
    assert batch_calls[0]["items"] == [BatchItem("a fox", **fields), BatchItem("a hare", **fields)]


@pytest.mark.parametrize(
    "offline, resume",
    [
        ([], "leonardo-client: interrupted; rerun the same command to resume"),  # as a second Ctrl-C says it
        # The offline fake ends with the run: a rerun failed every item, "the generation no longer exists".
        (["--offline"], "leonardo-client: interrupted; an --offline batch cannot be resumed: use a new --out"),
    ],
)
def test_an_interrupted_batch_prints_its_summary_on_stderr_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, offline: List[str], resume: str
) -> None:
    summary = summary_of(2, 1, str(tmp_path / "o"), pending=1, interrupted=True)

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise BatchInterrupted(summary)

    monkeypatch.setattr(cli, "run_batch", interrupted)
    monkeypatch.setenv("LEONARDO_API_KEY", "a-key")  # nothing is sent: run_batch is replaced
    assert cli.main(offline + ["batch", prompts_file(tmp_path, "a", "b"), "--out", str(tmp_path / "o")]) == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-3:] == str(summary).splitlines() + [resume]


@pytest.mark.parametrize("offline", [[], ["--offline"]])
def test_a_batch_stopped_twice_still_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any, offline: List[str]
) -> None:
    # A second Ctrl-C ("again to quit at once") ends run_batch with a KeyboardInterrupt, no summary: it said only
    # "interrupted", where one Ctrl-C said how to go on.
    def quit_at_once(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_batch", quit_at_once)
    monkeypatch.setenv("LEONARDO_API_KEY", "a-key")  # nothing is sent: run_batch is replaced
    assert cli.main(offline + ["batch", prompts_file(tmp_path, "a", "b"), "--out", str(tmp_path / "o")]) == 130
    resume = "an --offline batch cannot be resumed: use a new --out" if offline else "rerun the same command to resume"
    assert capsys.readouterr().err.splitlines()[-1] == f"leonardo-client: interrupted; {resume}"


def test_a_finished_batch_prints_its_summary_then_the_gallery_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, quick_batch_polls: None
) -> None:
    out = str(tmp_path / "out")
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a fox"), "--out", out]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 of 1 complete, 0 failed, 0 ambiguous, 0 pending; 1 image in ")
    assert "; this run: 1 item, 1 image in " in lines[1]
    assert lines[-1] == os.path.join(out, "index.html") and os.path.isfile(lines[-1])


def test_a_batch_summary_escapes_the_cost_unit_the_api_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    quick_batch_polls: None,
) -> None:
    # The create answer's cost unit went raw into the summary's "spent:" line on stdout: ESC ] 0 retitled the
    # terminal, a line break forged a line (README: a server's text has its control characters escaped).
    unit = "DOLLARS\x1b]0;pwned\x07\nall good"
    cost = {"amount": "0.5", "unit": unit}
    monkeypatch.setattr("leonardo_client.testing.api._created", lambda key, **job: {key: dict(job, cost=cost)})
    assert cli.main(["batch", prompts_file(tmp_path, "a fox"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "spent: 0.5 dollars\\x1b]0;pwned\\x07\\nall good; this run: 1 item" in out and "\x1b" not in out


WIDTH_7 = "--width 7: the v1 API takes a multiple of 8 from 32 to 1536 (a v2 model has its own sizes)"


@pytest.mark.parametrize("argv, error", [
    (["batch", "{prompts}", "--out", "{out}", "--width", "7"], WIDTH_7),
    (["batch", "{missing}", "--out", "{out}"], "cannot read {missing!r}: No such file or directory"),
    (["batch", "{prompts}", "--out", "{prompts}"], "--out {shown} exists and is not a folder"),
    (["generate", "a fox", "--out", "{out}", "--width", "7"], WIDTH_7),
])  # fmt: skip
def test_an_offline_usage_error_is_the_only_thing_said(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], argv: List[str], error: str
) -> None:
    # batch said "offline: the built-in fake API answers..." before it, as generate never did.
    prompts, out = prompts_file(tmp_path, "a fox"), str(tmp_path / "o")
    names = {"prompts": prompts, "shown": repr(prompts), "missing": str(tmp_path / "no.txt"), "out": out}
    assert cli.main(["--offline"] + [arg.format(**names) for arg in argv]) == 2
    assert capsys.readouterr().err.splitlines() == [f"leonardo-client: error: {error.format(**names)}"]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag, value", [("--concurrency", "5000"), ("--posts-per-minute", "200000")])
def test_batch_options_run_batch_would_refuse_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, flag: str, value: str
) -> None:
    out = tmp_path / "out"
    assert cli.main(["--offline", "batch", prompts_file(tmp_path, "a fox"), "--out", str(out), flag, value]) == 2
    assert f"argument {flag}: must be from" in capsys.readouterr().err and not out.exists()  # before anything


@pytest.mark.parametrize("fault, hint", [({"status": 500, "after": True}, True), ({"drop": True, "after": True}, True),
                                         ({"status": 200, "body": {"sdGenerationJob": None}}, True),  # no id
                                         ({"status": 200, "body": {"generations_by_pk": None}}, True),  # odd: the API's
                                         ({"status": 400}, False), ({"status": 403}, False)])
def test_generate_says_when_a_failed_create_call_may_have_made_the_generation(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, fault: Dict[str, Any], hint: bool
) -> None:
    # A 5xx or a dropped answer after the server acted read as "nothing happened": the user's natural retry billed
    # a second generation. A refusal (4xx) made none: no hint.
    fake_in_env.inject(path="/generations", method="POST", times=3, **fault)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("may have been made") == hint and (f"; {MAY_HAVE_BEEN_MADE}" in err) == hint, err  # said once
    assert len(err.splitlines()) == 1


def test_generate_gives_no_hint_when_the_create_call_was_never_sent(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "Client", functools.partial(Client, backoff_factor=0.01))  # retried, without 2 s of backoff
    fake_in_env.stop()  # a connection never made: nothing can have been made
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("leonardo-client: error: connection failed: ") and "may have been made" not in err


def test_generate_complete_with_no_images_is_an_error(
    fake_in_env: FakeLeonardo, capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("leonardo_client.client.EMPTY_GRACE", 0.0)  # not asked again for a minute: so it stays
    nothing = {"generations_by_pk": {"status": "COMPLETE", "generated_images": []}}
    fake_in_env.inject(status=200, body=nothing, path="/generations/*", method="GET", times=None)
    assert cli.main(["generate", "a fox", "--out", str(tmp_path)]) == 1  # 0 would say it was made
    captured = capsys.readouterr()
    assert captured.out == "" and os.listdir(str(tmp_path)) == []
    said = r"generation (\S+) was made \(and paid for\), but is COMPLETE with no file to save"
    hint = r" \(try 'leonardo-client get \1 --out DIR'\)$"  # it is paid for: get saves its files once they come
    assert re.search(r"^leonardo-client: error: " + said + hint, captured.err, re.M), captured.err
