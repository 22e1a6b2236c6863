"""The batch engine's logic against a small in-memory double of the five Client methods it uses.

Input parsing, the journal (resume, truncated line, changed input), reconciliation's decisions,
429 back-pressure, FAILED items, the gallery and the command line's exit codes. What needs real
sockets (faults after the POST ran, the crash test) is in test_batch_e2e.py.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import errno
import hashlib
import html
import json
import os
import pickle
import queue
import re
import signal
import stat
import threading
import time
import tracemalloc
import unicodedata
import warnings
from datetime import datetime, timedelta, timezone
from functools import partial
from html.parser import HTMLParser
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

import leonardo_client.__main__ as cli
import leonardo_client.client as client_module
from leonardo_client.client import _path
from leonardo_client.errors import never_sent
from leonardo_client import Client, LeonardoError, may_have_run
from leonardo_client import batch
from leonardo_client.batch import (
    BatchInputError,
    BatchInterrupted,
    BatchItem,
    BatchProgress,
    BatchSummary,
    make_item,
    read_items,
    run_batch,
)


class ApiDouble:
    """An honest in-memory account: generations complete ``delay`` seconds after their POST.

    ``before_post`` errors are raised instead of creating (one per POST, None for none); ``after_post`` errors are raised
    after the generation was created (the POST ran, its answer was lost). The listing comes
    in a scrambled order, as the API does not document one.
    """

    timeout = (0.2, 0.1)  # short: a create call that may have run is waited out this long (and LOOK_AGAIN)
    closed = False
    creating = threading.Lock()

    # delay: a moment, as long as the first poll round's FIRST_POLL in these tests (see quick_second_listing)
    def __init__(self, slots: int = 3, delay: float = 0.02, failing: Tuple[str, ...] = ()) -> None:
        self.slots, self.delay, self.failing = slots, delay, failing
        self.generations: Dict[str, Dict[str, Any]] = {}
        self.calls: List[str] = []
        self.before_post: List[Optional[Exception]] = []  # None: that POST goes through
        self.after_post: List[Exception] = []
        self.listing_error: Optional[Exception] = None

    def get_user_info(self) -> Dict[str, Any]:
        self.calls.append("me")
        return {"user_details": [{"user": {"id": "user-1"}, "apiConcurrencySlots": self.slots}]}

    def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
        gid = self._create(body, body.get("modelId"))
        return {"sdGenerationJob": {"generationId": gid, "cost": {"amount": "0.01", "unit": "DOLLARS"}}}

    def create_generation_v2(self, body: Dict[str, Any]) -> Dict[str, Any]:
        gid = self._create(body["parameters"], None)
        return {"generate": {"generationId": gid, "cost": {"amount": "2", "unit": "CREDITS"}}}

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        self.calls.append("POST")
        error = self.before_post.pop(0) if self.before_post else None
        if error is not None:
            raise error
        with self.creating:  # the batch's workers call at once: two answered one id (a flaky test, not the batch)
            gid = f"gen-{len(self.generations) + 1}"
            self.generations[gid] = {
                "id": gid,
                "createdAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "created": time.monotonic(),
                "prompt": params["prompt"],
                "modelId": model_id,
                "imageWidth": params.get("width", 1024),
                "imageHeight": params.get("height", 768),
                "seed": params.get("seed", 7),
                "n": params.get("num_images", params.get("quantity", 4)),  # the API's default (v1's, phoenix's)
            }
        if self.after_post:
            raise self.after_post.pop(0)
        return gid

    def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
        status = "PENDING"
        if time.monotonic() - g["created"] >= self.delay:
            status = "FAILED" if g["prompt"] in self.failing else "COMPLETE"
        images = [{"id": f"{g['id']}-{n}", "url": f"https://cdn.invalid/{g['id']}/{n}.png"} for n in range(g["n"])]
        view = {k: v for k, v in g.items() if k not in ("created", "n")}
        return dict(view, status=status, generated_images=images if status == "COMPLETE" else [])

    def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
        self.calls.append("GET")
        g = self.generations.get(gid)
        return {"generations_by_pk": self._view(g) if g else None}

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        self.calls.append("LIST")
        if self.listing_error is not None:
            raise self.listing_error
        scrambled = sorted(self.generations.values(), key=lambda g: hash(g["id"]) % 7)
        return {"generations": [self._view(g) for g in scrambled[offset : offset + limit]]}

    def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
        os.makedirs(folder, exist_ok=True)
        paths = []
        for image in result["generated_images"]:
            paths.append(os.path.join(folder, image["id"] + ".png"))
            with open(paths[-1], "wb") as out:
                out.write(b"\x89PNG fake " + image["id"].encode())
        return paths


@pytest.fixture(autouse=True)
def quick_second_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing that failed is read once more LISTING_AGAIN (5 s) later, and pauses submissions DEFAULT_PAUSE
    (2 s, doubling each time); the first poll round comes FIRST_POLL (0.25 s) after the start, and a failed download
    is tried again DOWNLOAD_AGAIN (2 s) times its tries later, an item whose create call may still run is looked
    for again LOOK_AGAIN (10 s) after its window: a moment here."""
    monkeypatch.setattr(batch, "LISTING_AGAIN", 0.05)
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", 0.05)
    monkeypatch.setattr(batch, "FIRST_POLL", 0.02)
    monkeypatch.setattr(batch, "DOWNLOAD_AGAIN", 0.05)
    monkeypatch.setattr(batch, "LOOK_AGAIN", 0.05)


SHIPPED_FIRST_POLL = batch.FIRST_POLL


@pytest.fixture
def shipped_first_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """FIRST_POLL as shipped, for a test whose timeline (a job's delay, a grace, a timeout, a storm) is set against
    the poll rounds: a first round sooner would let it pass without proving what it proves."""
    monkeypatch.setattr(batch, "FIRST_POLL", SHIPPED_FIRST_POLL)


SHIPPED_LOOK_AGAIN = batch.LOOK_AGAIN


SHIPPED_DEFAULT_PAUSE = batch.DEFAULT_PAUSE


def run(api: ApiDouble, items: Any, out: str, **options: Any) -> BatchSummary:
    """run_batch at a POST pace that does not slow the tests down."""
    options.setdefault("posts_per_minute", 60000)
    return run_batch(api, items, out, **options)  # type: ignore[arg-type]


def journal(out: Any) -> List[Dict[str, Any]]:
    with open(os.path.join(str(out), "journal.jsonl")) as f:
        return [json.loads(line) for line in f]


def named(path: Any) -> str:
    """``path`` as the batch's messages name a file or folder: quoted (shown_path)."""
    return batch.shown_path(str(path))


def journal_named(out: Any) -> str:
    """A pattern of out's journal as the batch's messages name it."""
    return re.escape(named(os.path.join(str(out), "journal.jsonl")))


def states(out: Any) -> Dict[int, str]:
    last: Dict[int, str] = {}
    for record in journal(out)[1:]:
        if "i" in record:  # not a note of the batch's ("v2_listed", "clock")
            last[record["i"]] = record["s"]
    return last


PROMPTS = [{"prompt": f"a lighthouse, study {n}", "width": 512, "height": 512, "num_images": 1} for n in range(6)]
# v1 model ids: uuids (one that is not is refused before sending)
MODEL_1, MODEL_A, MODEL_B = ("b24e16ff-06e3-43eb-8d33-4416c2d75876", "6bef9f1b-29cb-40c7-b9df-32b51c1f67d3",
                             "aa77f04e-3eec-4034-9c07-d0f619684628")


# --- input ------------------------------------------------------------------------------------


def test_text_file_skips_blanks_and_comments_and_applies_defaults(tmp_path: Any) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# my catalogue\na red chair\n\n  a blue sofa  \n", encoding="utf-8")
    items = read_items(str(path), {"width": 512, "model_id": MODEL_1, "num_images": 1})
    assert items == [
        BatchItem(prompt="a red chair", width=512, model_id=MODEL_1, num_images=1),
        BatchItem(prompt="a blue sofa", width=512, model_id=MODEL_1, num_images=1),
    ]


def test_a_bom_starting_a_line_is_blank_as_the_spaces_beside_it_are(tmp_path: Any) -> None:
    # Two BOM'd (Notepad) files joined with cat: the second's "# part 2" was billed as "\ufeff# part 2", and a JSON
    # line there was "not valid JSON", its BOM unseen.
    text = "\ufeff# part 1\na red fox\n\ufeff# part 2\n \ufeff an owl\n\ufeff\n"
    (tmp_path / "p.txt").write_text(text, encoding="utf-8")
    assert [item.prompt for item in read_items(str(tmp_path / "p.txt"))] == ["a red fox", "an owl"]
    (tmp_path / "p.jsonl").write_text('\ufeff{"prompt": "a red fox"}\n\ufeff{"prompt": "an owl"}\n', encoding="utf-8")
    assert [item.prompt for item in read_items(str(tmp_path / "p.jsonl"))] == ["a red fox", "an owl"]


def test_json_lines_fields_override_defaults_and_extras_pass_through(tmp_path: Any) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"prompt": "a chair", "model": "phoenix-v1.0", "name": "chair", "contrast": "HIGH"}\n'
        '{"prompt": "a lamp", "num_images": 2, "seed": 5, "negative_prompt": "blur"}\n',
        encoding="utf-8",
    )
    chair, lamp = read_items(str(path), {"model_id": MODEL_1, "width": 512, "alchemy": None})  # None: not given
    assert chair.request() == (
        "v2",
        {"model": "phoenix-v1.0", "parameters": {"prompt": "a chair", "width": 512, "contrast": "HIGH"}},
    )
    assert lamp.request() == (
        "v1",
        {"prompt": "a lamp", "modelId": MODEL_1, "width": 512, "num_images": 2, "seed": 5, "negative_prompt": "blur"},
    )


def test_a_v2_item_takes_what_v2_schemas_take_and_public_goes_in_the_envelope() -> None:
    # A size of 0 (hailuo-2_3's) and a seed of -1 (seedance's) were refused (>= 1, >= 0: v1's floors), and
    # "public" went into parameters, where no model takes it: the generation stayed private, said by no one.
    fields = {"prompt": "a kite", "model": "hailuo-2_3", "width": 0, "height": 0, "seed": -1, "public": True}
    item = make_item(dict(fields, num_images=1))  # hailuo-2_3 requires a quantity
    parameters = {"prompt": "a kite", "width": 0, "height": 0, "quantity": 1, "seed": -1}
    assert item.request() == ("v2", {"model": "hailuo-2_3", "public": True, "parameters": parameters})
    with pytest.raises(ValueError, match="^seed must be a whole number >= 0, got -1$"):
        make_item({"prompt": "a kite", "seed": -1})  # v1: as before


@pytest.mark.parametrize("extra", [{"modelId": MODEL_B}, {"num_images": None}, {"num_images": 4}])
def test_an_extra_key_never_overrides_a_field_on_v1_either(tmp_path: Any, extra: Dict[str, Any]) -> None:
    # On v1 it silently replaced the field (modelId m-B, num_images null); on v2 it was refused.
    item = BatchItem("a fox", model_id=MODEL_A, num_images=2, extra=extra)
    with pytest.raises(ValueError, match=r"extra sets '\w+' again: give each value once"):
        item.request()
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"prompt": "a fox", "model_id": MODEL_A, "modelId": MODEL_B}) + "\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="line 1: extra sets 'modelId' again"):
        read_items(str(path))


def test_a_v1_model_id_that_is_no_uuid_is_a_bad_line(tmp_path: Any) -> None:
    # Refused by the v1 body's own check (payloads): a v2 model's name was sent through v1, and billed.
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "a fox", "model_id": "phoenix-v1.0"}\n{"prompt": "a hare", "model_id": "m"}\n')
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    first, second = caught.value.errors
    assert first.startswith("line 1: CreateGenerationRequest.model_id 'phoenix-v1.0' is a v2 model name")
    assert second.startswith("line 2: CreateGenerationRequest.model_id 'm' is not a v1 model id, a UUID")


def test_an_ndjson_file_is_read_as_json_lines_whatever_its_first_line(tmp_path: Any) -> None:
    path = tmp_path / "items.ndjson"
    path.write_text('"a fox"\n{"prompt": "a hare"}\n', encoding="utf-8")  # not read as two prompts, quotes and all
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    assert [e.split(":")[0] for e in caught.value.errors] == ["line 1"]


def test_bad_lines_are_all_reported_with_their_numbers(tmp_path: Any) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"prompt": "ok"}\n{"prompt": ""}\n{not json}\n\n{"prompt": "x", "width": -8}\n'
        '{"prompt": "y", "model": "a", "model_id": "b"}\n["a list"]\n'
        '{"prompt": "\\udc80"}\n{"prompt": "z", "guidance_scale": 1e999}\n' + "[" * 100000 + "\n"
        '{"prompt": "a", "name": "\\udc80"}\n'  # the name is in no request, but names the files
        '{"prompt": "b", "num_images": 99999999999}\n'  # beyond the API's 32-bit Int
        '{"prompt": "c", "width": 7}\n{"prompt": "d", "model": "phoenix-v1.0", "width": 7}\n'  # v1's sizes, v2's own
        '{"prompt": "e", "num_images": 5}\n{"prompt": "f", "num_images": 8, "width": 768, "height": 768}\n',  # 4 at 1024
        encoding="utf-8",
    )
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    numbers = [e.split(":")[0] for e in caught.value.errors]
    assert numbers == [f"line {n}" for n in (2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)]
    assert "name holds bytes that are not valid text" in caught.value.errors[8]
    assert "width must be a whole number >= 1" in caught.value.errors[2]
    assert "not both" in caught.value.errors[3]
    # What the create call's serializer would refuse is refused here, before anything is sent (1e999 by the
    # JSON reader itself now, which takes no number a float cannot hold).
    assert "not valid text" in caught.value.errors[5] and "1e999 is too large a number" in caught.value.errors[6]
    assert "nested deeper than 200 levels" in caught.value.errors[7]  # refused before json could recurse
    assert "num_images must be from -2147483648 to 2147483647, got 99999999999" in caught.value.errors[9]
    with pytest.raises(ValueError, match="^width 7: the v1 API takes"):
        batch._checked(BatchItem("a fox", extra={"width": 7}))  # a size from extra, too
    assert "width 7: the v1 API takes a multiple of 8 from 32 to 1536" in caught.value.errors[10]  # was sent: its 400
    assert "model 'phoenix-v1.0' does not take these options: parameters.width must be at least 32" in caught.value.errors[11]
    assert "num_images 5: the v1 API makes at most 4 images at 1024x768" in caught.value.errors[12]  # its default size
    with pytest.raises(ValueError, match="^num_images 9: the v1 API makes at most 8 images at 512x512"):
        batch._checked(BatchItem("a fox", width=512, height=512, extra={"num_images": 9}))
    with pytest.raises(ValueError, match=r"^the v1 API does not take these options: expected an integer .* \(at num_images\)$"):
        batch._spec_checked(BatchItem("a fox", extra={"num_images": "5"}))  # not a number: sent, it was the API's 400


def test_a_body_the_bundled_spec_refuses_is_a_bad_line_and_nothing_is_sent(tmp_path: Any) -> None:
    # Each was sent and refused (a 400), and the summary advised --retry-failed: the same body, refused again.
    # generate checks its body against the same spec (payloads.check_request).
    lines = [{"prompt": "a fox"}, {"prompt": "a lamp", "model": "phoenix-v1.0", "width": 777, "height": 512},
             {"prompt": "a vase", "widht": 512}]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    assert caught.value.errors == [
        "line 2: model 'phoenix-v1.0' does not take these options: parameters.width must be a multiple of 8",
        "line 3: the v1 API does not take these options: Unexpected variable widht",
    ]
    api = ApiDouble()
    with pytest.raises(BatchInputError, match="^item 2: model 'phoenix-v1.0' does not take these options"):
        run(api, lines, str(tmp_path / "out"))
    assert api.calls == [] and not (tmp_path / "out").exists()


def test_bad_lines_are_said_the_first_ten_and_how_many_more(tmp_path: Any) -> None:
    path = tmp_path / "items.jsonl"
    for bad, more in ((10, []), (13, ["... and 3 more"])):
        path.write_text("{not json}\n" * bad, encoding="utf-8")
        with pytest.raises(BatchInputError) as caught:
            read_items(str(path))
        assert len(caught.value.errors) == bad  # all of them, for a program to read
        assert str(caught.value) == "; ".join(caught.value.errors[:10] + more)  # README: "the first ten, and how many"


@pytest.mark.parametrize("bad", [1, 13])
def test_a_batch_input_error_pickled_or_copied_is_the_same_error(bad: int) -> None:
    # Unpickled (from a process pool's worker) or copied, it was made again of its joined message: "l; i; n; e; ..."
    error = BatchInputError([f"line {n}: prompt must be a non-empty string" for n in range(1, bad + 1)])
    for again in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(again) is BatchInputError
        assert (str(again), again.args, again.errors) == (str(error), error.args, error.errors)


def test_a_v1_prompt_longer_than_the_api_takes_is_a_bad_line(tmp_path: Any) -> None:
    # It was sent, refused with the API's 400, and the summary advised --retry-failed, which failed the same way.
    longest, refused = "a" * 1500, "a" * 1501
    path = tmp_path / "items.jsonl"
    lines = [{"prompt": longest}, {"prompt": refused}, {"prompt": refused, "model": "phoenix-v1.0"}]  # v2: its own
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    limit = "the v1 API takes at most 1500 (a v2 model has its own limit)"
    assert caught.value.errors == [f"line 2: prompt of 1501 characters: {limit}"]
    api = ApiDouble()
    with pytest.raises(BatchInputError) as caught:
        run(api, [BatchItem(refused, model_id=MODEL_1)], str(tmp_path / "out"))
    assert caught.value.errors == [f"item 1: prompt of 1501 characters: {limit}"] and api.calls == []


def test_a_prompt_of_undecodable_bytes_is_named_as_the_input_names_it(tmp_path: Any) -> None:
    # It was "CreateGenerationRequest.prompt holds bytes ..." (GenerationV2Request's on v2): a class no batch names.
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "caf\\udce9"}\n{"prompt": "caf\\udce9", "model": "phoenix-v1.0"}\n', encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    undecodable = "prompt holds bytes that are not valid text (not UTF-8?): check its source"
    assert caught.value.errors == [f"line 1: {undecodable}", f"line 2: {undecodable}"]
    with pytest.raises(BatchInputError) as caught:
        run(ApiDouble(), [BatchItem("caf\udce9")], str(tmp_path / "out"))
    assert caught.value.errors == [f"item 1: {undecodable}"]


def test_file_and_folder_names_in_the_batch_s_errors_are_quoted_on_one_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # They were put in raw, where the package's other errors quote them (shown): a name holding a line break split
    # str(err) over two lines (the command line escapes it; a program's log does not).
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BatchInputError) as missing:
        read_items("prompts\nOLD.txt")
    assert str(missing.value) == "cannot read 'prompts\\nOLD.txt': No such file or directory"
    with pytest.raises(BatchInputError) as deep:  # a long one is cut in its middle: its name is what tells
        read_items("d" * 200 + "/prompts.txt")
    assert str(deep.value).endswith("dddd/prompts.txt': No such file or directory") and " ... " in str(deep.value)
    os.mkdir("photos\n2024")
    (tmp_path / "photos\n2024" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(BatchInputError) as foreign:
        run(ApiDouble(), PROMPTS[:1], "photos\n2024")
    assert str(foreign.value).startswith("'photos\\n2024' is not a batch's folder (it holds 'holiday.jpg' and no ")
    made = run(ApiDouble(), PROMPTS[:1], "b\n2")
    assert made.ok and str(made).splitlines()[0].endswith(" image in b\\n2")  # the summary's line: escaped too
    with pytest.raises(BatchInputError) as other:
        run(ApiDouble(), PROMPTS[1:2], "b\n2")
    assert str(other.value).startswith("'b\\n2' holds the journal of a different batch (")
    (tmp_path / "b\n2" / "journal.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(BatchInputError) as damaged:
        run(ApiDouble(), PROMPTS[:1], "b\n2")
    assert str(damaged.value).startswith("'b\\n2/journal.jsonl' is damaged: its first line is no header (")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_a_prompts_file_that_is_not_utf8_is_refused_by_its_line(tmp_path: Any, bom: bytes) -> None:
    # It gave the byte's offset ("in position 55873") where every other bad-line message gives the line.
    path = tmp_path / "p.txt"
    path.write_bytes(bom + "caf\u00e9\n".encode("utf-8") * 2999 + b"a \x93quoted\x94 lamp\n")  # Windows-1252
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    reason = "line 3000 is not UTF-8 text (byte 0x93): save it as UTF-8"
    assert caught.value.errors == [f"cannot read {named(path)}: {reason}"]


@pytest.mark.parametrize("data, line", [
    ("a red fox\nan owl\n".encode("utf-16-le"), 1),  # UTF-16 saved without a BOM (.NET's UnicodeEncoding(false))
    (b"a red fox\n" + "an owl\n".encode("utf-16-be"), 2),
], ids=["utf-16-le", "utf-16-be-from-line-2"])
def test_a_prompts_file_holding_a_nul_byte_is_refused_by_its_line(tmp_path: Any, data: bytes, line: int) -> None:
    # Every byte of it is UTF-8: each line was a NUL-riddled prompt, and the last "\x00" an item, all billed.
    path = tmp_path / "p.txt"
    path.write_bytes(data)
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    reason = f"line {line} holds a NUL byte (UTF-16?): save it as UTF-8"
    assert caught.value.errors == [f"cannot read {named(path)}: {reason}"]


@pytest.mark.parametrize(
    "name, text, document",
    [
        ("items.json", '[\n  {"prompt": "a walnut chair", "name": "chair"},\n  {"prompt": "a lamp"}\n]\n', "array"),
        ("prompts.json", '["a walnut chair", "a brass lamp"]\n', "array"),
        ("items.jsonl", '[{"prompt": "a walnut chair"}]\n', "array"),
        ("item.json", '{\n  "prompt": "a walnut chair",\n  "width": 512\n}\n', "object"),
        # Not one JSON document as they stand, and each line an item all the same: a comment, a trailing comma.
        ("items.txt", '# the catalogue\n[\n  {"prompt": "a walnut chair"}\n]\n', "array"),
        ("items.json", '[\n  "a walnut chair",\n  "a brass lamp",\n]\n', "array"),
        ("items.txt", '# c\n[{"prompt": "a red fox"},\n {"prompt": "a grey owl"}]\n', "array"),
        ("items.txt", '# c\n["a red fox",\n "a grey owl"]\n', "array"),
        ("items.txt", '# c\n[["a red fox"],\n ["a grey owl"]]\n', "array"),  # a list of lists
    ],
)
def test_a_prompts_file_that_is_one_json_document_is_refused(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], name: str, text: str, document: str
) -> None:
    # Each line was an item: "[", '{"prompt": "a walnut chair", "name": "chair"},' and "]" were sent and billed.
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    advice = "write JSON Lines (one object a line) or one prompt a line"
    lines = "(each of its lines would be read as an item)"
    assert str(caught.value) == f"{named(path)} is a JSON {document} {lines}: {advice}"
    assert cli.main(["--offline", "batch", str(path), "--out", str(tmp_path / "out")]) == 2
    assert advice in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, kind", [("products.csv", "CSV"), ("EXPORT.TSV", "TSV")])
def test_a_prompts_file_named_as_a_spreadsheet_export_is_refused(tmp_path: Any, name: str, kind: str) -> None:
    # Each row was a prompt, billed: the header "prompt,name,width" too, and '"a red fox, in snow",fox,768'.
    path = tmp_path / name
    path.write_bytes(b'\xef\xbb\xbfprompt,name,width\r\n"a red fox, in snow",fox,768\r\na brass lamp,lamp,512\r\n')
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    advice = "write JSON Lines (one object a line) or one prompt a line"
    lines = "(each of its lines would be read as an item)"
    assert str(caught.value) == f"{named(path)} is a {kind} file {lines}: {advice}"
    for unreadable in (tmp_path / ("missing" + name), tmp_path / ("folder" + name)):  # a path mistyped: said so
        (tmp_path / ("folder" + name)).mkdir(exist_ok=True)
        with pytest.raises(BatchInputError, match=f"^cannot read {re.escape(named(unreadable))}: "):
            read_items(str(unreadable))


def test_a_batch_journaled_before_the_spec_check_resumes_though_it_refuses_an_item(tmp_path: Any) -> None:
    # A batch begun by an earlier version (or with a spec that took the item): refused by this version's check, it
    # could no longer be resumed, its generations made and paid for not saved; with the item fixed, it was another
    # batch. What the API refused of it is journaled; the rest goes on.
    items = [PROMPTS[0], {"prompt": "a hare", "widht": 512}]
    with pytest.raises(BatchInputError, match="^item 2: the v1 API does not take these options: Unexpected variable"):
        run(ApiDouble(), items, str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()
    sent = [{"i": 0, "s": "submitting", "t": time.time() - 200, "rt": 0.3}]  # never made: sent again
    (tmp_path / "journal.jsonl").write_text(journal_text(items, sent), encoding="utf-8")
    assert run(ApiDouble(), items, str(tmp_path)).complete == 2  # the double takes any key
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    with pytest.raises(BatchInputError, match="^line 2: "):
        read_items(str(prompts))
    assert len(read_items(str(prompts), check_spec=False)) == 2


def test_a_whole_float_is_taken_where_the_spec_wants_an_int_as_the_api_reads_it(tmp_path: Any) -> None:
    # 30.0 (a spreadsheet's export) was refused as "not an integer", where the fake and the API take it.
    batch._spec_checked(BatchItem("a fox", extra={"num_inference_steps": 30.0}))
    batch._spec_checked(BatchItem("a fox", model="hailuo-2_3", width=1920, height=1080, num_images=1,
                                  extra={"duration": 6.0}))
    with pytest.raises(ValueError, match="The value 30.5 lies outside the bounds or is not an integer"):
        batch._spec_checked(BatchItem("a fox", extra={"num_inference_steps": 30.5}))


def test_a_v2_item_without_the_sizes_its_models_pairs_need_is_told_to_give_them() -> None:
    # happy-horse-1.1's oneOf of sizes has no branch for neither: was "parameters must match exactly one of ..."
    sizes = "1280x720, 720x1280, 960x960, 1108x832, 832x1108, 1920x1080, 1080x1920, 1440x1440, 1662x1248, 1248x1662"
    with pytest.raises(ValueError, match=f"^model 'happy-horse-1.1' needs width and height, one of {sizes}$"):
        batch._spec_checked(BatchItem("a fox", model="happy-horse-1.1", num_images=1))


def test_a_prompt_that_starts_like_json_is_still_a_prompt(tmp_path: Any) -> None:
    (tmp_path / "p.txt").write_text("[watercolor] a walnut chair\n{oil} a brass lamp\n", encoding="utf-8")
    prompts = ["[watercolor] a walnut chair", "{oil} a brass lamp"]
    assert [item.prompt for item in read_items(str(tmp_path / "p.txt"))] == prompts
    (tmp_path / "one.txt").write_text('{"prompt": "a walnut chair"}\n', encoding="utf-8")  # JSON Lines of one item
    assert [i.prompt for i in read_items(str(tmp_path / "one.txt"))] == ["a walnut chair"]


@pytest.mark.parametrize("extra", [None, "public", ["public", True], 5])
def test_a_batchitems_extra_that_is_no_mapping_is_a_type_error_naming_it(extra: Any) -> None:
    # It was "'NoneType' object is not iterable", "dictionary update sequence element #0 has length 1; 2 is required".
    with pytest.raises(TypeError) as caught:
        BatchItem("a chair", extra=extra)
    kind = type(extra).__name__
    assert str(caught.value) == f"BatchItem.extra must be a mapping (request keys to values), not {kind}"


def test_read_items_takes_a_path_and_a_mapping_of_defaults(tmp_path: Any) -> None:
    path = tmp_path / "p.txt"
    path.write_text("a fox\n", encoding="utf-8")
    with pytest.raises(TypeError, match="path must be a str"):
        read_items(0)  # type: ignore[arg-type]  # an int would be opened as a file descriptor
    with pytest.raises(TypeError, match="defaults must be a mapping"):
        read_items(str(path), defaults=["seed"])  # type: ignore[arg-type]


def test_lines_end_only_at_line_breaks_not_at_unicode_separators(tmp_path: Any) -> None:
    in_json, in_text = "\u2028\u2029\x85", "\u2028\u2029\x85\x0c\x1e"  # each ends a line for str.splitlines()
    (tmp_path / "items.jsonl").write_text('{"prompt": "one%stwo"}\r\n{"prompt": "three"}\n' % in_json, encoding="utf-8")
    (tmp_path / "prompts.txt").write_text("one%stwo\rthree\n" % in_text, encoding="utf-8")
    for name, separators in (("items.jsonl", in_json), ("prompts.txt", in_text)):
        items = read_items(str(tmp_path / name))
        assert [item.prompt for item in items] == ["one%stwo" % separators, "three"]


def test_a_prompts_file_is_read_up_to_a_bound(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MAX_INPUT", 100)  # 64 MiB: /dev/zero would otherwise fill the memory
    (tmp_path / "p.txt").write_text("a fox\n" * 16 + "a ow", encoding="utf-8")  # 100 characters: the bound itself
    assert len(read_items(str(tmp_path / "p.txt"))) == 17
    (tmp_path / "p.txt").write_text("a fox\n" * 17, encoding="utf-8")
    with pytest.raises(BatchInputError, match="p.txt' is over 0 MiB: split it"):
        read_items(str(tmp_path / "p.txt"))


def test_a_file_of_more_than_max_items_prompts_is_refused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MAX_ITEMS", 3)
    path = tmp_path / "p.txt"
    path.write_text("# three\na\n\nb\nc\n", encoding="utf-8")
    assert len(read_items(str(path))) == 3
    path.write_text("a\nb\nc\nd\n", encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        read_items(str(path))
    assert str(caught.value) == f"{named(path)} holds more than 3 prompts: split it into several batches"


def test_a_prompts_file_holds_at_most_100000_prompts() -> None:
    # Counted as the lines are read, before any item is built: the count alone, at the shipped MAX_ITEMS.
    assert len(list(batch._prompt_lines("# a comment\n" + "a fox\n" * 100_000, "p.txt"))) == 100_000
    with pytest.raises(BatchInputError, match=r"^'p\.txt' holds more than 100000 prompts: split it into several"):
        list(batch._prompt_lines("a fox\n" * 100_001, "p.txt"))


def test_blank_lines_cost_no_memory_beyond_the_text(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MAX_INPUT", 2 << 20)  # read() sets aside a buffer of MAX_INPUT bytes
    path = tmp_path / "p.jsonl"
    path.write_text("\n" * 1_000_000 + "  # a comment\n{oops}\n", encoding="utf-8")
    tracemalloc.start()
    try:
        with pytest.raises(BatchInputError, match="^line 1000002: not valid JSON"):
            read_items(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1_000_000  # a tuple and a label for each line was 130 bytes a line


@pytest.mark.parametrize("content", ["", "# only a comment\n\n"])
def test_an_empty_file_is_refused(tmp_path: Any, content: str) -> None:
    path = tmp_path / "p.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BatchInputError, match="holds no prompts"):
        read_items(str(path))


def test_a_batch_item_written_as_a_mapping_is_made_again_the_same() -> None:
    # Each of BatchItem's fields but extra is a key make_item takes as that field: a field the item mappings' list
    # left out would have gone to extra, sent in the request body as an unknown key.
    item = BatchItem("a fox", model_id=MODEL_A, width=512, height=512, num_images=2, seed=7, negative_prompt="rain",
                     name="fox")
    written = {key: value for key, value in dataclasses.asdict(item).items() if key != "extra"}
    assert make_item(written) == item


def test_python_items_are_checked_before_anything_is_sent(tmp_path: Any) -> None:
    api = ApiDouble()
    with pytest.raises(BatchInputError, match="item 2: prompt must be a non-empty string"):
        run(api, [{"prompt": "fine"}, {"prompt": 3}], str(tmp_path))  # type: ignore[arg-type]
    assert api.calls == []
    assert make_item({"prompt": "p", "guidance_scale": 7}).extra == {"guidance_scale": 7}
    with pytest.raises(BatchInputError, match="item 1: .*finite number"):
        run(api, [BatchItem("fine", extra={"strength": float("nan")})], str(tmp_path))
    # BatchItems are checked as mappings are (they were sent as they came: model_id dropped, width 0...).
    wrong = [BatchItem("a", model="m", model_id="n"), BatchItem("  "), BatchItem("a", width=0), BatchItem("a", name="")]
    with pytest.raises(BatchInputError) as caught:
        run(api, wrong, str(tmp_path))
    assert caught.value.errors == [
        "item 1: give model (v2) or model_id (v1), not both", "item 2: prompt must be a non-empty string",
        "item 3: width must be a whole number >= 1, got 0", "item 4: name must be a non-empty string",
    ]
    assert api.calls == []


def test_paths_may_be_path_objects_and_the_summary_holds_a_str(tmp_path: Any) -> None:
    (tmp_path / "p.txt").write_text("a fox\n", encoding="utf-8")
    items = read_items(tmp_path / "p.txt")
    summary = run(ApiDouble(), items, tmp_path / "out")
    assert summary.complete == 1 and summary.out_dir == str(tmp_path / "out")  # was the Path, typed str
    assert {items[0], BatchItem("a fox", extra={"x": 1})} and BatchItem("a fox", extra={"x": 1}) != items[0]  # hashable


def test_unusable_run_batch_arguments_are_refused_before_anything_is_written(tmp_path: Any) -> None:
    api, out = ApiDouble(), str(tmp_path / "out")
    with pytest.raises(TypeError, match="^items must be a list of BatchItems or mappings, not str$"):
        run(api, "a fox", out)  # was one item a character
    with pytest.raises(TypeError, match="^items must be a list of BatchItems or mappings, not bytes$"):
        run(api, b"a fox", out)  # not one item a byte, each refused
    with pytest.raises(TypeError, match="^client must be a Client, not NoneType$"):
        run(None, PROMPTS[:1], out)  # type: ignore[arg-type]  # was an AttributeError, the journal made
    instance = r"^client must be a Client instance \(Client\(...\)\), not the class ApiDouble$"
    with pytest.raises(TypeError, match=instance):
        run(ApiDouble, PROMPTS[:1], out)  # type: ignore[arg-type]  # was "missing ... 'self'", the journal made
    with pytest.raises(TypeError, match="^resubmit_ambiguous must be a bool, not str$"):
        run(api, PROMPTS[:1], out, resubmit_ambiguous="false")  # was true
    with pytest.raises(BatchInputError, match="^item 2: .*int key"):  # was a TypeError naming no item
        run(api, [{"prompt": "fine"}, {"prompt": "x", "extra_field": {1: 2}}], out)
    with pytest.raises(BatchInputError, match="^item 1: width must be a whole number >= 1, got 'w'$"):
        run(api, [{"prompt": "x", "width": "w"}], out)
    with pytest.raises(BatchInputError, match="^item 1: width must be .* got an int of about 5000 digits$"):
        run(api, [{"prompt": "x", "width": -10**5000}], out)  # Python writes out no int that long
    assert not os.path.exists(out) and api.calls == []


@pytest.mark.parametrize("slots, said", [({}, "no apiConcurrencySlots"), ({"apiConcurrencySlots": 0}, "apiConcurrencySlots 0")])
def test_an_account_without_apiconcurrencyslots_needs_the_concurrency_given(
    tmp_path: Any, slots: Dict[str, Any], said: str
) -> None:
    api = ApiDouble()
    api.get_user_info = lambda: {"user_details": [{"user": {"id": "user-1"}, **slots}]}  # type: ignore[method-assign]
    given = r"give the concurrency explicitly \(concurrency=, --concurrency\)"  # 0 was said to be none given
    with pytest.raises(LeonardoError, match=f"^GET /me gave {said}: {given}$"):
        run(api, PROMPTS[:2], str(tmp_path))
    assert "POST" not in api.calls
    assert run(api, PROMPTS[:2], str(tmp_path), concurrency=2).complete == 2  # in the same folder


def test_an_account_whose_user_is_not_an_object_still_runs(tmp_path: Any) -> None:
    api = ApiDouble(slots=2)
    api.get_user_info = lambda: {"user_details": [{"user": "user-1", "apiConcurrencySlots": 2}]}  # type: ignore[method-assign]
    assert run(api, PROMPTS[:2], str(tmp_path)).complete == 2  # was an AttributeError


# --- running, resuming ------------------------------------------------------------------------


def test_batch_runs_every_item_once_and_names_files_stably(tmp_path: Any) -> None:
    api = ApiDouble(slots=2)
    events: List[BatchProgress] = []
    items = PROMPTS + [{"prompt": "a chair", "model": "phoenix-v1.0", "num_images": 2, "name": "Chair / front"}]
    summary = run(api, items, str(tmp_path), on_progress=events.append)
    assert (summary.complete, summary.failed, summary.ambiguous, summary.pending) == (7, 0, 0, 0)
    assert api.calls.count("POST") == 7 and api.calls.count("me") == 1
    assert summary.images == summary.images_this_run == 8 and "this run: 7 items, 8 images in" in str(summary)
    assert dict(summary.credits) == {"DOLLARS": pytest.approx(0.06), "CREDITS": 2.0}
    assert sorted(os.listdir(tmp_path)) == [
        "0001-a-lighthouse-study-0.png", "0002-a-lighthouse-study-1.png", "0003-a-lighthouse-study-2.png",
        "0004-a-lighthouse-study-3.png", "0005-a-lighthouse-study-4.png", "0006-a-lighthouse-study-5.png",
        "0007-chair-front-1.png", "0007-chair-front-2.png", "index.html", "journal.jsonl",
    ]  # fmt: skip
    assert [s for s in (r["s"] for r in journal(tmp_path) if r.get("i") == 6)] == [
        "planned", "submitting", "submitted", "complete"
    ]  # fmt: skip
    assert events[0].event == "start" and events[-1].event == "done" and events[-1].complete == 7
    assert max(e.in_flight for e in events) <= 2 + 2  # slots + the queued buffer


def test_file_names_keep_latin_letters_without_their_accents(tmp_path: Any) -> None:
    # Only a-z and 0-9 were kept, the rest a dash: 0001-caf-and.png, 0002-z-rich-stra-e.png.
    items = [{"prompt": "a walnut chair", "name": "Caf\u00e9 \u00d1and\u00fa"}, {"prompt": "Z\u00fcrich Stra\u00dfe"},
             {"prompt": "\u0393\u03ac\u03c4\u03b1 \u732b"},  # other scripts: named from the position alone, as before
             {"prompt": "a lighthouse on a cliff at dusk, painted in oils"}]  # cut at 40 characters, on a dash
    assert run(ApiDouble(), [dict(item, num_images=1) for item in items], str(tmp_path)).ok
    assert sorted(name for name in os.listdir(tmp_path) if name[0].isdigit()) == [
        "0001-cafe-nandu.png", "0002-zurich-strasse.png", "0003-item.png",
        "0004-a-lighthouse-on-a-cliff-at-dusk-painted.png",  # not "...-painted-.png"
    ]  # fmt: skip


def test_files_named_before_names_kept_accented_letters_keep_their_names_on_a_rerun(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ApiDouble()
    items = [{"prompt": "a walnut chair", "name": "Caf\u00e9 \u00d1and\u00fa", "num_images": 1},
             {"prompt": "Z\u00fcrich Stra\u00dfe", "num_images": 1}]
    with monkeypatch.context() as old_code:
        old_code.setattr(batch, "_slug", lambda text: re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item")
        assert run(api, items, str(tmp_path)).ok
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name[0].isdigit()}
    assert sorted(before) == ["0001-caf-and.png", "0002-z-rich-stra-e.png"]
    calls = list(api.calls)
    assert run(api, items, str(tmp_path)).ok
    assert [call for call in api.calls[len(calls):] if call != "me"] == []  # nothing sent, polled nor downloaded
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name[0].isdigit()} == before
    parser = Links()
    parser.feed((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert sorted(set(parser.links)) == sorted(before)  # the gallery shows them under the names the journal gave


class SpecShapedApi(ApiDouble):
    """v2 creates answered as Leonardo's spec has it: the job is the response, its cost apiCreditCost."""

    def create_generation_v2(self, body: Dict[str, Any]) -> Dict[str, Any]:
        return {"generationId": self._create(body["parameters"], None), "apiCreditCost": 8}


def test_the_cost_is_read_from_the_job_in_either_v2_answer_shape(tmp_path: Any) -> None:
    items = [{"prompt": "a chair", "model": "phoenix-v1.0"}, {"prompt": "a desk", "model": "phoenix-v1.0"}]
    assert dict(run(SpecShapedApi(), items, str(tmp_path / "spec")).credits) == {"CREDITS": 16.0}
    assert dict(run(ApiDouble(), items, str(tmp_path / "recipes")).credits) == {"CREDITS": 4.0}
    assert batch._cost({"cost": {"amount": 5, "unit": None}}) == {"amount": "5", "unit": "CREDITS"}  # as apiCreditCost


def test_rerun_skips_complete_items_and_sends_nothing(tmp_path: Any) -> None:
    api = ApiDouble()
    run(api, PROMPTS, str(tmp_path))
    before = len(journal(tmp_path))
    summary = run(api, PROMPTS, str(tmp_path))
    assert summary.ok and summary.done_this_run == 0
    assert api.calls.count("POST") == len(PROMPTS)
    assert len(journal(tmp_path)) == before


def test_a_rerun_names_the_files_of_complete_items_gone_or_emptied_and_fetches_nothing(tmp_path: Any) -> None:
    # It said "3 of 3 complete ... 3 images", the gallery linking a file deleted. Fetching them again (4822f1d)
    # overwrote files still there and shifted images onto wrong names: a rerun only says so, and changes nothing.
    api, items = ApiDouble(), [dict(PROMPTS[0], num_images=2), PROMPTS[1], PROMPTS[2]]
    first = run(api, items, str(tmp_path))
    ids = {r["i"]: r["id"] for r in journal(tmp_path) if r.get("s") == "submitted"}  # by item
    odd = "0003-x\x1b]0;pwned\x07\nfake line.png"  # a name from an edited journal: ESC and a line break
    text = (tmp_path / "journal.jsonl").read_text(encoding="utf-8").replace("0003-a-lighthouse-study-2.png",
                                                                           json.dumps(odd)[1:-1])
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    os.remove(tmp_path / "0001-a-lighthouse-study-0-1.png")  # deleted
    (tmp_path / "0002-a-lighthouse-study-1.png").write_bytes(b"")  # emptied (a bad copy, a sync placeholder)
    (tmp_path / "0001-a-lighthouse-study-0-copy.png").write_bytes(b"")  # the user's own, named by no journal line
    kept = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name != "index.html"}
    for _ in range(2):  # said again by each rerun
        calls = len(api.calls)
        summary = run(api, items, str(tmp_path), retry_failed=True, resubmit_ambiguous=True)
        assert api.calls[calls:] == ["me"] and api.calls.count("POST") == 3  # nothing sent, polled nor fetched
        assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name != "index.html"} == kept
        assert (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text
        assert summary.ok and (summary.complete, summary.images, summary.done_this_run) == (3, 1, 0)  # files there
        assert dict(summary.credits) == dict(first.credits)
        gone = ("0001-a-lighthouse-study-0-1.png", "0002-a-lighthouse-study-1.png", odd)
        assert summary.gone == gone
        assert str(summary).splitlines()[-1] == (
            "files of complete items gone from the folder or empty: 0001-a-lighthouse-study-0-1.png, "
            "0002-a-lighthouse-study-1.png, 0003-x\\x1b]0;pwned\\x07\\nfake line.png; 'leonardo-client get "
            "<generation id> --out DIR' saves that generation's files again, free, named by ids (its item's card "
            "in index.html gives the id)"
        )
        parser = Links()
        parser.feed((tmp_path / "index.html").read_text(encoding="utf-8"))
        assert parser.links == ["0001-a-lighthouse-study-0-2.png"] * 2  # present only (a link and an image)
        page = " ".join("".join(parser.text).split())
        assert "3 files of complete items gone from the folder or empty: their cards say which" in page
        for name, gid in (("0001-a-lighthouse-study-0-1.png", ids[0]), ("0002-a-lighthouse-study-1.png", ids[1]),
                          ("0003-x\\x1b]0;pwned\\x07 fake line.png", ids[2])):
            assert (f"{name} gone from the folder or empty: 'leonardo-client get {gid} --out DIR' saves that "
                    "generation's files again, free, named by ids") in page
    more = dataclasses.replace(summary, gone=tuple(f"{n:04d}-x.png" for n in range(12)))
    assert str(more).splitlines()[-1].startswith("files of complete items gone from the folder or empty: 0000-x.png, "
                                                 "0001-x.png, 0002-x.png, 0003-x.png, 0004-x.png, 0005-x.png, "
                                                 "0006-x.png, 0007-x.png, 0008-x.png, 0009-x.png and 2 more; ")


def test_an_offline_batch_s_files_gone_are_not_said_to_be_fetched_again(tmp_path: Any) -> None:
    # It said "'leonardo-client get <id> --out DIR' saves its generation's files again": that id was the fake's,
    # which ended with its run (get --offline has a new one, without it).
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path), offline=True).ok
    os.remove(tmp_path / "0001-a-lighthouse-study-0.png")
    summary = run(ApiDouble(), PROMPTS[:1], str(tmp_path), offline=True)
    advice = "an --offline batch's files cannot be fetched again: run the batch again into a new --out"
    assert str(summary).splitlines()[-1] == (
        f"files of complete items gone from the folder or empty: 0001-a-lighthouse-study-0.png; {advice}")
    card = html.unescape((tmp_path / "index.html").read_text(encoding="utf-8").split("<article")[1])
    assert f"0001-a-lighthouse-study-0.png gone from the folder or empty: {advice}</div>" in card


def test_resume_waits_on_submitted_items_without_posting_them_again(tmp_path: Any) -> None:
    api = ApiDouble(delay=0.0)
    gid = api._create(dict(PROMPTS[0]), None)  # a run that crashed right after recording the id
    records = [{"i": 0, "s": "submitting", "t": time.time()}, {"i": 0, "s": "submitted", "id": gid}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.complete == 2
    assert api.calls.count("POST") == 2  # the setup's, and item 1's: item 0 was waited on
    assert [r for r in journal(tmp_path) if r.get("i") == 0][-1]["s"] == "complete"


def journal_text(items: List[Dict[str, Any]], records: List[Dict[str, Any]]) -> str:
    """A journal as run_batch writes it for ``items``, then ``records``."""
    from leonardo_client.batch import _as_items, _digests

    header = {"journal": 1, "input": _digests(_as_items(items, check_spec=False))[0], "items": len(items)}
    planned = [{"i": n, "s": "planned"} for n in range(len(items))]
    return "".join(json.dumps(r) + "\n" for r in [header] + planned + records)


@pytest.mark.parametrize("reason", [
    "could not read the account's generations: x", "reconciliation failed: HTTP 503", "2 generations match: gen-1, g",
    "some generations could not be compared: gen-1", "an ambiguous item with this prompt may own the generation",
    "no v2 generation seen in the account's listing yet", "it was sent later than now: the clock was set back since",
    "one of its prompt was made up to an hour before: our clock may be ahead (not known yet)",
])  # each reason reconciliation gave then
def test_a_batch_an_earlier_version_journaled_resumes(tmp_path: Any, reason: str) -> None:
    # Before 8fe3da4 a v2 item's public went in its parameters, and the batch's digest was of that body: the same
    # batch rerun was refused as "a different batch" (another folder would bill every item again).
    v2 = [{"prompt": "a kite", "model": "phoenix-v1.0", "public": False}]
    sent_then = [["v2", {"model": "phoenix-v1.0", "parameters": {"prompt": "a kite", "public": False}}], None]
    digest = hashlib.sha256(json.dumps([sent_then], sort_keys=True).encode("utf-8")).hexdigest()
    assert batch._digests(batch._as_items(v2))[0] == digest
    # Before ca5d991 an item reconciliation could not settle was journaled ambiguous without "recheck": it stayed so
    # on every rerun (the generation made), and --resubmit-ambiguous would pay for it again.
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox", "width": 768, "height": 768}, None)
    api.generations["gen-1"]["createdAt"] = _iso(sent + 0.2)
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 1.3},
               {"i": 0, "s": "ambiguous", "reason": reason}]  # the listing's answer unreadable, or failed
    items = [{"prompt": "a red fox", "width": 768, "height": 768}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, len(api.generations)) == (1, 1)  # its generation found in the listing, adopted


def test_a_v2_item_an_earlier_version_left_ambiguous_unlisted_is_sent_again_once_v2_is_listed(tmp_path: Any) -> None:
    # Left so before ca5d991, without "recheck" (its create call made nothing; a later one showed v2 listed): it
    # stayed ambiguous on every rerun. Rechecked, it is sent again only as the listing proves it never made.
    v2 = [dict(KITE, prompt=f"a kite {n}") for n in range(2)]
    api = ApiDouble()
    gid = api._create({"prompt": "a kite 1", "quantity": 1}, None)
    records = [{"i": 0, "s": "submitting", "t": time.time() - 200, "rt": 0.3},
               {"i": 0, "s": "ambiguous", "reason": "no v2 generation seen in the account's listing yet"},
               {"i": 1, "s": "submitting", "t": time.time() - 100, "rt": 0.3}, {"i": 1, "s": "submitted", "id": gid},
               {"v2_listed": True}, {"i": 1, "s": "complete", "files": ["0002-a-kite-1.png"]}]
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, records), encoding="utf-8")
    (tmp_path / "0002-a-kite-1.png").write_bytes(b"\x89PNG fake")
    assert run(api, v2, str(tmp_path)).ok and api.calls.count("POST") == 2  # the setup's, and item 0's, once
    assert any(r.get("reason", "").startswith("never created") for r in journal(tmp_path))  # proved so, then sent


def test_an_item_left_ambiguous_again_by_a_rerun_is_not_counted_as_done_by_it(tmp_path: Any) -> None:
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox", "width": 768, "height": 768}, None)  # another size: may be its, or not
    api.generations["gen-1"]["createdAt"] = _iso(sent + 0.2)
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 1.3},
               {"i": 0, "s": "ambiguous", "reason": "reconciliation failed: HTTP 503", "recheck": True}]
    items = [{"prompt": "a red fox", "width": 512, "height": 512}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run(api, items, str(tmp_path))
    assert (summary.ambiguous, summary.done_this_run, len(api.generations)) == (1, 0, 1)  # was done 1: not sent


def test_a_complete_record_read_twice_counts_its_images_once(tmp_path: Any) -> None:
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    text = (tmp_path / "journal.jsonl").read_text(encoding="utf-8")
    complete = [line for line in text.splitlines(keepends=True) if '"complete"' in line]
    (tmp_path / "journal.jsonl").write_text(text + "".join(complete), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.images == sum(len(json.loads(line)["files"]) for line in complete) > 0


def test_a_different_input_in_the_same_folder_is_refused(tmp_path: Any) -> None:
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    for other in (PROMPTS[:3], PROMPTS[1:3]):  # one more item; as many items, another prompt
        # "use another --out folder" spoke of the CLI's flag to run_batch's callers too
        different = "holds the journal of a different batch .*: use another folder \\(deleting"
        with pytest.raises(BatchInputError, match=different):
            run(api, other, str(tmp_path))
    assert api.calls.count("POST") == 2
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:3], str(tmp_path))
    assert "delete its journal.jsonl to start over" not in str(caught.value)  # that would bill the two again
    assert "deleting the journal would send that batch's items again, those already made too" in str(caught.value)


def test_the_same_items_in_another_order_are_refused_saying_so(tmp_path: Any) -> None:
    # Items from a set() come in another order in each process: refused as "a different batch", with no word why.
    api = ApiDouble()
    run(api, PROMPTS[:3], str(tmp_path))
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[2::-1], str(tmp_path))
    assert str(caught.value) == (
        f"{named(tmp_path)} holds the journal of these items in another order: give them in the order of its first run "
        "(a list, sorted or as written, not a set's order, which changes from run to run) to resume it"
    )
    with pytest.raises(BatchInputError, match="holds the journal of a different batch"):
        run(api, [PROMPTS[1], PROMPTS[0], PROMPTS[3]], str(tmp_path))  # as many items, one other
    assert api.calls.count("POST") == 3
    assert run(api, PROMPTS[:3], str(tmp_path)).ok and api.calls.count("POST") == 3  # in its order: resumed


def test_a_folder_of_other_files_is_refused_before_anything_is_written(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # A web site's index.html and a picture named like item 1's were written over, without a word.
    site = {"index.html": "<h1>my home page</h1>", "0001-a-lighthouse-study-0.png": "my own picture"}
    for name, text in site.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    api = ApiDouble()
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:1], str(tmp_path))
    assert str(caught.value) == (  # named like item 1's: a batch's whose journal is gone, or one of the user's
        f"{named(tmp_path)} holds '0001-a-lighthouse-study-0.png', named as this batch's files are, but no "
        "journal.jsonl "
        f"(deleted or renamed?): {batch.PUT_BACK}"
    )
    (tmp_path / "p.txt").write_text("a lighthouse, study 0\n", encoding="utf-8")
    assert cli.main(["--offline", "batch", str(tmp_path / "p.txt"), "--out", str(tmp_path)]) == 2
    assert "use a new or empty folder" in capsys.readouterr().err
    assert {name: (tmp_path / name).read_text(encoding="utf-8") for name in site} == site and api.calls == []
    assert sorted(os.listdir(tmp_path)) == ["0001-a-lighthouse-study-0.png", "index.html", "p.txt"]  # no journal
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / ".DS_Store").write_bytes(b"\0")  # a file manager's: the folder counts as empty
    assert run(api, PROMPTS[:1], str(hidden)).ok


def test_a_batch_s_folder_whose_journal_is_gone_is_refused_saying_to_put_it_back(tmp_path: Any) -> None:
    # Deleted or renamed, its images left: refused as "not a batch's folder ...: use a new or empty folder", and
    # following that advice sent (billed) every item again.
    api = ApiDouble()
    assert run(api, PROMPTS[:2], str(tmp_path)).ok
    os.rename(tmp_path / "journal.jsonl", tmp_path / "journal.jsonl.bak")
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:2], str(tmp_path))
    assert str(caught.value) == (
        f"{named(tmp_path)} holds '0001-a-lighthouse-study-0.png', named as this batch's files are, but no "
        "journal.jsonl "
        "(deleted or renamed?): put the batch's whole journal back to resume, or use a new or empty folder "
        f"({batch.DAMAGED})"
    )
    assert api.calls.count("POST") == 2 and "journal.jsonl" not in os.listdir(tmp_path)
    os.rename(tmp_path / "journal.jsonl.bak", tmp_path / "journal.jsonl")
    assert run(api, PROMPTS[:2], str(tmp_path)).ok and api.calls.count("POST") == 2  # put back: resumed
    other = tmp_path / "other"
    other.mkdir()
    (other / "0003-a-lighthouse-study-2.png").write_bytes(b"x")  # a number no item of these two has
    with pytest.raises(BatchInputError, match=r"is not a batch's folder \(it holds '0003-a-lighthouse-study-2.png' "):
        run(api, PROMPTS[:2], str(other))
    assert api.calls.count("POST") == 2


def test_a_rerun_with_another_accounts_key_is_refused_before_anything_is_sent(tmp_path: Any) -> None:
    # Its generations are not the other account's: one in flight read as deleted, a lost one as never made (billed twice).
    first = ApiDouble()
    run(first, PROMPTS[:2], str(tmp_path))
    assert [r for r in journal(tmp_path) if "user" in r] == [{"user": "user-1"}]  # journaled once
    other = ApiDouble()
    other.get_user_info = lambda: {"user_details": [{"user": {"id": "user-2"}, "apiConcurrencySlots": 3}]}  # type: ignore
    with pytest.raises(LeonardoError, match=r"^this folder's batch ran on another account \(user user-1; this API key"):
        run(other, PROMPTS[:2], str(tmp_path))
    assert other.calls == []  # nothing but GET /me, which the double does not count
    assert run(first, PROMPTS[:2], str(tmp_path)).ok and first.calls.count("POST") == 2  # its own key: resumed
    assert [r for r in journal(tmp_path) if "user" in r] == [{"user": "user-1"}]
    same = ApiDouble()  # its id in capitals is the same account's (a uuid in either case is the same id)
    same.get_user_info = lambda: {"user_details": [{"user": {"id": "USER-1"}, "apiConcurrencySlots": 3}]}  # type: ignore
    assert run(same, PROMPTS[:2], str(tmp_path)).ok


def test_an_offline_batch_stopped_with_items_in_flight_is_refused_at_once_on_a_rerun(tmp_path: Any) -> None:
    # Its fake API ended with the run, and every generation with it: a rerun waited on them about 70 s, then left
    # them ambiguous ("deleted?"), advising a look in a Leonardo library there is none of.
    stopped: List[BatchProgress] = []

    def ctrl_c(progress: BatchProgress) -> None:
        if progress.event == "submitted" and not stopped:
            stopped.append(progress)  # once: the other item's answer, come while stopping, was a second Ctrl-C
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted):
        run(ApiDouble(delay=60.0), PROMPTS[:2], str(tmp_path), on_progress=ctrl_c, offline=True)
    assert journal(tmp_path)[0]["offline"] is True and "submitted" in states(tmp_path).values()
    again = ApiDouble()  # the next run's fake
    with pytest.raises(BatchInputError, match=r"holds an --offline batch \(offline=True\) stopped with \d items? in "
                                              r"flight: .*: it cannot be resumed: use a new --out \(out_dir\)$"):
        run(again, PROMPTS[:2], str(tmp_path), offline=True)
    assert again.calls == []  # not even GET /me


def test_a_finished_offline_batch_reruns_as_any_finished_batch(tmp_path: Any) -> None:
    assert run(ApiDouble(), PROMPTS[:2], str(tmp_path), offline=True).ok
    again = ApiDouble()
    summary = run(again, PROMPTS[:2], str(tmp_path), offline=True)
    assert summary.ok and summary.done_this_run == 0 and again.calls == ["me"]  # nothing waited on, nothing sent


@pytest.mark.parametrize("offline, advice", [
    (False, "rerun the same command to resume"),
    (True, "an --offline batch cannot be resumed: use a new --out"),  # was "rerun...", a rerun it refuses
])
def test_a_summary_left_pending_says_what_its_gallery_says_of_a_rerun(tmp_path: Any, offline: bool, advice: str) -> None:
    summary = run(ApiDouble(delay=60.0), PROMPTS[:1], str(tmp_path), item_timeout=0.5, offline=offline)
    assert (summary.pending, summary.offline) == (1, offline)
    assert str(summary).splitlines()[-1] == f"pending items are still running or not yet downloaded: {advice}"
    assert f"stopped: {advice}" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_a_journal_is_resumed_only_on_the_kind_of_api_that_wrote_it(tmp_path: Any) -> None:
    # On the API, an offline batch's generations read as deleted (its placeholders kept), its lost ones as never made.
    run(ApiDouble(), PROMPTS[:1], str(tmp_path / "offline"), offline=True)
    run(ApiDouble(), PROMPTS[:1], str(tmp_path / "api"))
    assert "offline" not in journal(tmp_path / "api")[0]  # the header as before: one without the mark is not offline
    for folder, offline, said in [("offline", False, "an --offline batch"), ("api", True, "a batch run on the API")]:
        api = ApiDouble()
        with pytest.raises(BatchInputError, match=f"holds the journal of {said}"):
            run(api, PROMPTS[:1], str(tmp_path / folder), offline=offline)
        assert api.calls == []


@pytest.mark.parametrize(
    "notes", [[], [{"user": "user-9"}], [{"i": 0, "s": "planned"}, {"i": 1, "s": "planned"}]],
    ids=["header only", "and an account's note", "and its items planned"],  # as 99a120b to b3d4ccc, before GET /me
)
def test_a_journal_of_a_batch_that_sent_nothing_is_begun_again_for_other_items(
    tmp_path: Any, notes: List[Dict[str, Any]]
) -> None:
    # Stopped at GET /me (API unreachable, a wrong key), it sent nothing: its prompts, edited, were refused in that
    # folder as another batch, "deleting the journal would send that batch's items again, those already made too".
    header = json.loads(journal_text(PROMPTS[:2], []).splitlines()[0])
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [header] + notes), encoding="utf-8")
    api = ApiDouble()
    assert run(api, PROMPTS[2:5], str(tmp_path)).complete == 3 and api.calls.count("POST") == 3
    assert journal(tmp_path)[0]["items"] == 3  # this batch's header, in place of the other's
    assert run(ApiDouble(), PROMPTS[2:5], str(tmp_path)).complete == 3  # and it resumes as any
    with pytest.raises(BatchInputError, match="holds the journal of a different batch"):
        run(ApiDouble(), PROMPTS[:2], str(tmp_path))  # one that sent something stays refused
    # Begun again, it is a new batch: its items are checked against the spec (they were not: a journal was there).
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [header] + notes), encoding="utf-8")
    api = ApiDouble()
    with pytest.raises(BatchInputError, match="^item 1: the v1 API does not take these options: Unexpected variable"):
        run(api, [{"prompt": "a hare", "widht": 512}], str(tmp_path))
    assert api.calls == [] and not batch.journaled(str(tmp_path))
    (tmp_path / "journal.jsonl").write_text("", encoding="utf-8")  # emptied, or cut off before its header
    assert not batch.journaled(str(tmp_path))


def test_a_new_journal_says_its_format_and_one_of_the_earlier_format_resumes(tmp_path: Any) -> None:
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path / "new")).ok
    assert journal(tmp_path / "new")[0]["journal"] == 2  # 1 through five additions: a newer version could not tell
    api = ApiDouble()  # every earlier version's journal says 1, as journal_text writes it
    records = [{"i": 0, "s": "submitting", "t": time.time(), "rt": 0.3}, {"i": 0, "s": "submitted", "id": "gen-1"}]
    api._create(dict(PROMPTS[0]), None)
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and list(api.generations) == ["gen-1"]
    assert journal(tmp_path)[0]["journal"] == 1  # resumed as it is


@pytest.mark.parametrize("records", [[], [{"i": 0, "s": "submitting", "t": 1.0, "rt": 0.3}]],
                         ids=["no item sent", "an item sent"])
def test_a_journal_a_newer_version_wrote_is_refused_as_it_is(tmp_path: Any, records: List[Dict[str, Any]]) -> None:
    # Its version was never read: its records were taken for this version's, and one holding no item sent was begun
    # again (what this version takes for none, a newer one may have written of a create call sent).
    text = journal_text(PROMPTS[:2], records).replace('"journal": 1', f'"journal": {batch.JOURNAL_VERSION + 1}', 1)
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    api = ApiDouble()
    upgrade = "upgrade it to resume this batch (do not edit the journal)"
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:2], str(tmp_path))
    assert str(caught.value) == f"{named(tmp_path / 'journal.jsonl')} was written by a newer leonardo-client: {upgrade}"
    assert api.calls == [] and (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("version", ["true", '"3"', "null", "0", "-1", "[2]", "1" + "0" * 400])
def test_a_journal_whose_format_no_version_wrote_is_refused(tmp_path: Any, version: str) -> None:
    # They resumed as if of this version's format (a bool, a string, an int a float cannot hold passed the check).
    text = journal_text(PROMPTS[:1], [{"i": 0, "s": "submitting", "t": 1.0, "rt": 0.3}])
    text = text.replace('"journal": 1', f'"journal": {version}', 1)
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    said = "was written by a newer leonardo-client" if len(version) > 400 else "is damaged: its header's format"
    api = ApiDouble()
    with pytest.raises(BatchInputError, match=said):
        run(api, PROMPTS[:1], str(tmp_path))
    assert api.calls == [] and (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text


def test_a_journal_of_planned_items_and_a_line_of_no_known_kind_is_not_begun_again(tmp_path: Any) -> None:
    text = journal_text(PROMPTS[:2], [{"sent": 0}])  # a newer version's record of a create call, perhaps: kept
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    api = ApiDouble()
    with pytest.raises(BatchInputError, match="holds the journal of a different batch"):
        run(api, PROMPTS[2:5], str(tmp_path))
    assert api.calls == [] and (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text


def test_a_journal_cut_off_at_its_start_is_refused_as_damaged(tmp_path: Any) -> None:
    text = journal_text(PROMPTS[:2], [{"i": 0, "s": "submitting", "t": time.time()}])
    (tmp_path / "journal.jsonl").write_text(text.split("\n", 1)[1], encoding="utf-8")  # no header: truncated in a run
    with pytest.raises(BatchInputError) as caught:
        run(ApiDouble(), PROMPTS[:2], str(tmp_path))
    damaged = f"is damaged: its first line is no header ({batch.DAMAGED})"
    assert str(caught.value) == f"{named(tmp_path / 'journal.jsonl')} {damaged}"


def test_the_batch_s_notes_on_an_item_s_line_are_not_read_as_its_notes(tmp_path: Any) -> None:
    # A hand-edited "clock": null on an item's line stopped the rerun with a bare TypeError (abs(None)); a "user"
    # there was taken for the account the folder's batch ran on (found by the fuzzing hunt).
    notes = {"clock": None, "user": "user-2", "v2_listed": True}
    text = journal_text(PROMPTS[:2], []).replace('{"i": 1, "s": "planned"}', json.dumps({"i": 1, "s": "planned", **notes}))
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    assert run(ApiDouble(), PROMPTS[:2], str(tmp_path)).complete == 2  # user-1's key: not "another account"


def test_a_truncated_last_journal_line_is_tolerated_and_cut_off(tmp_path: Any) -> None:
    text = journal_text(PROMPTS[:2], []) + '{"i": 0, "s": "submi'
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    summary = run(ApiDouble(), PROMPTS[:2], str(tmp_path))
    assert summary.complete == 2
    assert all(isinstance(r, dict) for r in journal(tmp_path))  # every line parses again


@pytest.mark.parametrize("end", ["", "\n\n", "\r\n \t\r\n  "], ids=["its line break gone", "a blank line", "blanks"])
def test_a_whole_last_record_without_its_line_break_or_before_blank_lines_is_kept(tmp_path: Any, end: str) -> None:
    # A repair script's "\n".join(lines), or an editor's backspaces on a trailing blank line (refused: "damaged at line
    # N: repair or delete that line"), took the last record's line break: that record was cut off as a crash's torn
    # write, and a "submitting" whose POST ran was sent again: billed twice (hunt JR). A crash's write stopped just
    # short of it was never acted on (each record is synced first): kept, it is reconciled as any.
    api = ApiDouble()
    api._create(dict(PROMPTS[0]), None)  # its POST ran, its answer lost
    sent = [{"i": 0, "s": "submitting", "t": time.time(), "rt": 0.3, "r": "run-1"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], sent)[:-1] + end, encoding="utf-8")
    assert run(api, PROMPTS[:2], str(tmp_path)).complete == 2 and api.calls.count("POST") == 2  # the setup's, #2's
    lines = [line for line in (tmp_path / "journal.jsonl").read_text().splitlines() if line.strip()]
    assert [json.loads(line) for line in lines][3:5] == [sent[0], {"user": "user-1"}]  # the next one not glued on
    assert run(api, PROMPTS[:2], str(tmp_path)).ok and api.calls.count("POST") == 2


@pytest.mark.parametrize("last", [False, True], ids=["in the middle", "last, with its line break"])
def test_a_damaged_line_is_refused(tmp_path: Any, last: bool) -> None:
    # A whole last line that does not parse (a hand edit's trailing comma) was taken for a crash's torn write:
    # dropped and cut off the file without a word (found by the review of the simplification pass).
    text = journal_text(PROMPTS[:3], [])
    text = text + '{"i": 1, "s": "planned"},\n' if last else text.replace('{"i": 1, "s": "planned"}', '{"i": 1, "s"')
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(BatchInputError, match="is damaged at line"):
        run(ApiDouble(), PROMPTS[:3], str(tmp_path))
    assert (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text  # nothing cut off


@pytest.mark.parametrize("order", [[1, 0], [0, 1, 0], [0, 1, 2]],
                         ids=["its answer moved above its call", "its call copied after", "its plan copied after"])
def test_an_item_s_call_or_plan_after_its_answer_is_refused_as_damaged(tmp_path: Any, order: List[int]) -> None:
    # A line moved or copied by hand: the item was taken up as unanswered, its own generation claimed (by itself), so
    # not found: "#1: was never created; sending it again", billed twice (hunt JR). No version writes either.
    api = ApiDouble()
    api._create(dict(PROMPTS[0]), None)
    lines = [{"i": 0, "s": "submitting", "t": time.time() - 200, "rt": 0.3, "r": "run-1"},
             {"i": 0, "s": "submitted", "id": "gen-1"}, {"i": 0, "s": "planned"}]
    text = journal_text(PROMPTS[:2], [lines[n] for n in order])  # a header, 2 items planned, then these
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:2], str(tmp_path))
    assert str(caught.value) == (f"{named(tmp_path / 'journal.jsonl')} is damaged at line {3 + len(order)}: repair "
                                 f"or delete that line ({batch.DAMAGED})")
    assert api.calls.count("POST") == 1 and (tmp_path / "journal.jsonl").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("left", [b"", b'{"journal": 1, "inp'], ids=["emptied", "its header cut short"])
def test_a_journal_without_a_header_beside_files_is_refused_before_anything_is_sent(tmp_path: Any, left: bytes) -> None:
    # `jq -c . journal.jsonl > journal.jsonl` leaves it empty: every item was sent again, its files written over.
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    kept = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name != "journal.jsonl"}
    (tmp_path / "journal.jsonl").write_bytes(left)
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:2], str(tmp_path))
    assert str(caught.value) in {
        f"{named(tmp_path / 'journal.jsonl')} holds no header (emptied, or cut short?) though {named(tmp_path)} holds "
        "files "
        f"({name!r}...): put the batch's whole journal back to resume, or use a new or empty folder ({batch.DAMAGED})"
        for name in kept
    }  # whichever the folder lists first
    assert api.calls.count("POST") == 2
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path) if name != "journal.jsonl"} == kept
    new = tmp_path / "new"
    new.mkdir()
    (new / "journal.jsonl").write_bytes(left)  # a run killed before its header was written: nothing was sent
    (new / ".DS_Store").write_bytes(b"\0")  # hidden: does not count, as for a folder without a journal
    assert run(api, PROMPTS[:2], str(new)).ok and api.calls.count("POST") == 4


@pytest.mark.parametrize("kept", [1, 2], ids=["its header", "and the account's note"])
def test_a_journal_cut_to_no_item_s_record_beside_the_batch_s_page_is_refused(tmp_path: Any, kept: int) -> None:
    # Its items in flight, no file saved yet: taken for a batch stopped at GET /me, begun again, and every item sent
    # again, billed twice (hunt JR); one cut a few bytes shorter, with no header, was refused.
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    lines = (tmp_path / "journal.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "journal.jsonl").write_text("".join(lines[:kept]), encoding="utf-8")
    for name in os.listdir(tmp_path):
        if name.startswith("000"):
            os.remove(tmp_path / name)  # as if not downloaded yet: index.html is left
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:2], str(tmp_path))
    lacking = "no item's record (cut short? if no run ever sent an item, delete index.html and rerun)"
    assert str(caught.value) == (f"{named(tmp_path / 'journal.jsonl')} holds {lacking} though "
                                 f"{named(tmp_path)} holds files ('index.html'...): {batch.PUT_BACK}")
    assert api.calls.count("POST") == 2 and (tmp_path / "journal.jsonl").read_text() == "".join(lines[:kept])
    # A batch that sent nothing (its on_progress raised at "start") left its page; begun again, a rerun stopped at
    # GET /me left a journal of its header only: the page went first, so the next is begun again too.
    new, api = tmp_path / "new", ApiDouble()
    with pytest.raises(RuntimeError):
        run(api, PROMPTS[:2], str(new), on_progress=lambda p: (_ for _ in ()).throw(RuntimeError(p.event)))
    assert (new / "index.html").exists() and [r.get("s") for r in journal(new)][-2:] == ["planned", "planned"]
    down = ApiDouble()
    down.get_user_info = lambda: (_ for _ in ()).throw(LeonardoError("API down"))  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match="API down"):
        run(down, PROMPTS[2:4], str(new))  # its prompts edited since
    assert os.listdir(new) == ["journal.jsonl"] and len(journal(new)) == 1
    assert run(api, PROMPTS[2:4], str(new)).ok and api.calls.count("POST") == 2


def test_a_journal_that_lost_records_of_items_whose_files_are_there_is_refused(tmp_path: Any) -> None:
    # A copy cut short (a full stick): item 4's records after "planned" lost, it was sent again beside its image.
    api = ApiDouble()
    run(api, PROMPTS[:4], str(tmp_path))
    lines = (tmp_path / "journal.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if json.loads(line).get("i") == 3 and '"planned"' not in line)
    (tmp_path / "journal.jsonl").write_text("".join(lines[:cut]) + lines[cut][:9], encoding="utf-8")
    with pytest.raises(BatchInputError) as caught:
        run(api, PROMPTS[:4], str(tmp_path))
    assert str(caught.value) == (
        f"{named(tmp_path / 'journal.jsonl')} has lost records (a copy cut short, or an older one?): it shows item #4 "
        f"as never sent, but {named(tmp_path)} holds its file '0004-a-lighthouse-study-3.png': put the batch's whole "
        f"journal back to resume ({batch.DAMAGED})"
    )
    assert api.calls.count("POST") == 4


@pytest.mark.parametrize("journal_left", ["emptied", "whole"])
def test_an_unreadable_folder_is_one_error_naming_it_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, journal_left: str
) -> None:
    # Listed to judge a journal emptied (files beside it?) or one that lost records (an unsent item's files?).
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    if journal_left == "emptied":
        (tmp_path / "journal.jsonl").write_bytes(b"")

    def unreadable(out_dir: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(batch, "_first_shown", unreadable)
    monkeypatch.setattr(os, "listdir", unreadable)
    with pytest.raises(LeonardoError, match=f"^could not read {re.escape(named(tmp_path))}: Permission denied$"):
        run(api, PROMPTS[:2], str(tmp_path))
    assert api.calls.count("POST") == 2


def test_a_journal_saved_with_a_byte_order_mark_resumes(tmp_path: Any) -> None:
    # Saved by Notepad: "damaged at line 1", and once that line was deleted as advised, "no header".
    api = ApiDouble()
    run(api, PROMPTS[:2], str(tmp_path))
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b'{"i": 0, "s": "submi')  # and a line a crash cut short
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and summary.done_this_run == 0 and api.calls.count("POST") == 2
    assert all(json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines())  # the cut line gone



@pytest.mark.parametrize(
    "record", ['{"i": 3, "s": "planned"}', '{"i": "0", "s": "planned"}', '{"i": 0, "s": "lost"}', '{"i": 0, "s": "submitting"}',
               '{"i": 0, "s": "submitted", "id": null}', '{"note": 1}',
               '{"i": 0, "s": "complete", "files": 5}', '{"i": 0, "s": "complete", "files": [5]}',
               '{"i": 0, "s": "submitted", "id": "g", "cost": [1]}',
               '{"i": 0, "s": "submitted", "id": "g", "cost": {"unit": "CREDITS"}}', '{"clock": "x"}',
               '{"v2_listed": true, "clock": "x"}',
               # Each of these held the rerun silently for an hour: an id no GET can ask for, a read timeout of ages.
               '{"i": 0, "s": "submitted", "id": ""}', '{"i": 0, "s": "submitting", "t": 1, "rt": 1e300}',
               # An int beyond a float's range: math.isfinite() raised OverflowError, a traceback.
               '{"clock": 1%s}' % ("0" * 400), '{"i": 0, "s": "submitting", "t": 1%s}' % ("0" * 400),
               # A run's id not one the batch writes: a short str.
               '{"clock": 0, "r": 5}', '{"clock": 0, "r": "%s"}' % ("a" * 65),
               '{"i": 0, "s": "submitting", "t": 1, "r": null}'],
)
def test_a_record_of_no_item_of_the_batch_is_refused(tmp_path: Any, record: str) -> None:
    sent = [{"i": 0, "s": "submitting", "t": 1.0, "rt": 0.3}]  # else nothing was sent: begun again
    text = journal_text(PROMPTS[:3], sent).replace('{"i": 1, "s": "planned"}', record)
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    api = ApiDouble()
    newer = "written by a newer leonardo-client\\? upgrade it; else it is damaged: delete that line \\("
    with pytest.raises(BatchInputError, match=f"holds a record of no item of this batch \\(.*\\): {newer}"):
        run(api, PROMPTS[:3], str(tmp_path))
    assert api.calls == []


def test_a_header_of_these_items_digest_but_another_count_is_refused(tmp_path: Any) -> None:
    sent = [{"i": 0, "s": "submitting", "t": 1.0, "rt": 0.3}]  # one that sent nothing is begun again
    text = journal_text(PROMPTS[:3], sent).replace('"items": 3', '"items": 4', 1)  # edited: whose is it?
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    api = ApiDouble()
    with pytest.raises(BatchInputError, match="holds the journal of a different batch \\(4 items"):
        run(api, PROMPTS[:3], str(tmp_path))
    assert api.calls == []


class DiskFillingUp:
    """The journal's file on a disk that fills up in the middle of the first "submitting" record."""

    def __init__(self, file: Any) -> None:
        self.file, self.full = file, False

    def write(self, data: Any) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        if b'"submitting"' in bytes(data):
            self.full = True
            return int(self.file.write(bytes(data)[: len(data) // 2]))  # a short write, no error yet
        return int(self.file.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.file, name)


class DiskTakingNothing(DiskFillingUp):
    """The journal's file, whose write() of the first "submitting" record takes none of it, each time."""

    asked = 0

    def write(self, data: Any) -> int:
        if b'"submitting"' not in bytes(data):
            return int(self.file.write(data))
        self.asked += 1
        if self.asked == 100:
            raise OSError("asked 100 times")  # what ends a loop that would ask forever
        return 0


def wrap_journal_file(monkeypatch: pytest.MonkeyPatch, wrapper: Any) -> None:
    """The journal's file (the one opened "a+b") wrapped in ``wrapper``; other files as they are."""

    def journal_open(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = open(path, mode, *args, **kwargs)
        return wrapper(file) if mode == "a+b" else file

    monkeypatch.setattr(batch, "open", journal_open, raising=False)


def test_a_record_the_disk_took_only_part_of_stops_the_batch_before_its_post(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrap_journal_file(monkeypatch, DiskFillingUp)
    api = ApiDouble()
    with pytest.raises(LeonardoError, match=f"^could not write {journal_named(tmp_path)}: No space left on device$"):
        run(api, PROMPTS[:1], str(tmp_path))
    assert "POST" not in api.calls
    monkeypatch.undo()
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 1  # billed once


def test_what_a_failed_append_wrote_is_cut_off_so_the_next_record_starts_its_own_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrap_journal_file(monkeypatch, DiskFillingUp)
    journal_file = batch._Journal(str(tmp_path), "digest", 1)
    with pytest.raises(LeonardoError, match="No space left on device"):
        journal_file.append([{"i": 0, "s": "submitting", "t": 1.0}])
    journal_file._file.full = False  # another program freed some space
    journal_file.append([{"i": 0, "s": "planned"}])
    journal_file.close()
    assert [r.get("s") for r in journal(tmp_path)] == [None, "planned"]


class StoppedMidWrite(DiskFillingUp):
    """The journal's file, whose disk takes half of the first "submitting" record, then ``stop`` lands (a Ctrl-C)."""

    stop: BaseException = KeyboardInterrupt()

    def write(self, data: Any) -> int:
        if self.full:
            raise self.stop
        return super().write(data)


@pytest.mark.parametrize("stop, raised", [
    (KeyboardInterrupt(), KeyboardInterrupt),
    # A host's deadline, its SIGALRM handler's: was "could not write ...journal.jsonl", a full disk's error, which the
    # host's own "except TimeoutError" missed.
    (TimeoutError("host deadline reached"), TimeoutError),
    (InterruptedError(), InterruptedError),
    (OSError(errno.ETIMEDOUT, "Connection timed out"), LeonardoError),  # the file system's (NFS): a TimeoutError too
])
def test_what_an_append_stopped_by_ctrl_c_wrote_is_cut_off_too(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, stop: BaseException, raised: type
) -> None:
    # Only an OSError cut it off: the part line stayed, the next append (another thread's) was joined to it, and
    # the rerun refused the journal as damaged (found by the review of the journal's last-line rule).
    wrap_journal_file(monkeypatch, StoppedMidWrite)
    monkeypatch.setattr(StoppedMidWrite, "stop", stop)
    journal_file = batch._Journal(str(tmp_path), "digest", 1)
    with pytest.raises(BaseException) as caught:
        journal_file.append([{"i": 0, "s": "submitting", "t": 1.0}])
    assert type(caught.value) is raised and (raised is LeonardoError or caught.value is stop)  # as raised
    journal_file._file.full = False
    journal_file.append([{"i": 0, "s": "planned"}])
    journal_file.close()
    assert [r.get("s") for r in journal(tmp_path)] == [None, "planned"]


def test_a_host_s_deadline_met_while_journaling_comes_out_of_the_batch_as_raised(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class DeadlineAtSubmitted(DiskFillingUp):  # the main thread's record of a create call's answer: half written
        def write(self, data: Any) -> int:
            if b'"submitted"' in bytes(data):
                self.file.write(bytes(data)[: len(data) // 2])
                raise TimeoutError("host deadline reached")
            return int(self.file.write(data))

    wrap_journal_file(monkeypatch, DeadlineAtSubmitted)
    api = ApiDouble()
    with pytest.raises(TimeoutError, match="^host deadline reached$"):  # was LeonardoError("could not write ...")
        run(api, PROMPTS[:1], str(tmp_path))
    monkeypatch.undo()
    assert states(tmp_path) == {0: "submitting"}  # no part line: the rerun reconciles it
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 1  # adopted: billed once


def test_when_a_failed_append_cannot_be_cut_off_nothing_more_is_written(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrap_journal_file(monkeypatch, DiskFillingUp)
    journal_file = batch._Journal(str(tmp_path), "digest", 1)

    def cannot_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(batch.os, "ftruncate", cannot_truncate)
    with pytest.raises(LeonardoError, match="No space left on device"):
        journal_file.append([{"i": 0, "s": "submitting", "t": 1.0}])
    journal_file._file.full = False
    written = (tmp_path / "journal.jsonl").read_bytes()
    with pytest.raises(LeonardoError, match="a write cut short earlier could not be undone"):
        journal_file.append([{"i": 0, "s": "planned"}])
    journal_file.close()
    assert (tmp_path / "journal.jsonl").read_bytes() == written  # the part line stays last: dropped on reading


class DiskFull(DiskFillingUp):
    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_journal_whose_header_cannot_be_written_is_closed_so_a_retry_is_not_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrap_journal_file(monkeypatch, DiskFull)
    api = ApiDouble()
    with pytest.raises(LeonardoError, match="could not write .*No space left on device") as caught:
        run(api, PROMPTS[:1], str(tmp_path))
    monkeypatch.undo()  # space freed; the error is still held (by a REPL's sys.last_value, say)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok  # was "another batch is running": its journal stayed locked
    assert caught.value.message and api.calls.count("POST") == 1


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("answer_lost", [False, True])
# A GET's 403, with no code: the key too (a create call's: moderation); a 500 from the auth hook: a malformed key.
@pytest.mark.parametrize("status", [401, 403, 500])
def test_a_key_refused_while_polling_or_reconciling_stops_the_batch_for_a_rerun(
    tmp_path: Any, answer_lost: bool, status: int
) -> None:
    api = ApiDouble(delay=0.5)
    body = AUTH_HOOK_FAILED if status == 500 else None  # a 500 passed, as any 5xx does, until item_timeout
    said = "Invalid response from authorization hook" if body else "Authentication hook unauthorized this request"
    revoked = answered_with(status, body or {"error": said})
    working = (api.get_generation_by_id, api.get_generations_by_user_id)
    original_create = api._create

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise revoked

    def create(params: Dict[str, Any], model_id: Any) -> str:  # the key is revoked as the generation is made
        api.after_post = [LeonardoError("Internal Server Error", status_code=500)] if answer_lost else []
        api.get_generation_by_id = api.get_generations_by_user_id = refused  # type: ignore[method-assign]
        return original_create(params, model_id)

    api._create = create  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match=said):  # polls ignored it until item_timeout; a reconciliation
        run(api, PROMPTS[:1], str(tmp_path), item_timeout=5.0)  # left the item ambiguous ("--resubmit-ambiguous")
    assert states(tmp_path) == {0: "submitting" if answer_lost else "submitted"}
    api._create = original_create  # type: ignore[method-assign]
    api.get_generation_by_id, api.get_generations_by_user_id = working  # type: ignore[method-assign]
    assert run(api, PROMPTS[:1], str(tmp_path)).complete == 1 and api.calls.count("POST") == 1


def test_a_key_refused_to_a_poll_rounds_listing_stops_the_batch_at_once(tmp_path: Any) -> None:
    # Two in flight: each round reads the listing first. Its 401 was read as a listing not read, and the round asked
    # each generation by id instead: the refusal was said one request later, or never by a GET that still answered.
    api = ApiDouble(delay=0.5)
    said = "Authentication hook unauthorized this request"
    original_create = api._create

    def create(params: Dict[str, Any], model_id: Any) -> str:
        gid = original_create(params, model_id)
        if len(api.generations) == 2:  # the key is revoked for the listing only
            api.listing_error = answered_with(401, {"error": said})
        return gid

    api._create = create  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match=said) as caught:
        run(api, PROMPTS[:2], str(tmp_path), item_timeout=5.0)
    assert caught.value.status_code == 401 and states(tmp_path) == {0: "submitted", 1: "submitted"}
    assert api.calls[api.calls.index("LIST"):] == ["LIST"]  # no GET by id, nor another round, after the refusal


def test_a_journal_deleted_while_the_batch_runs_stops_it(tmp_path: Any) -> None:
    def delete_journal(progress: BatchProgress) -> None:
        if progress.event == "submitted":
            os.remove(tmp_path / "journal.jsonl")  # its lock goes with it

    with pytest.raises(LeonardoError, match=f"^could not write {journal_named(tmp_path)}: it was deleted while"):
        run(ApiDouble(delay=1.0), PROMPTS[:1], str(tmp_path), on_progress=delete_journal)


class HeldAfterTheFirst(ApiDouble):
    """Every generation but the first stays PENDING while ``held``; ``move`` (a function) runs in save_results,
    ``seen_complete`` (one) when a generation is first read COMPLETE."""

    held = True
    move: Optional[Callable[[], None]] = None
    seen_complete: Optional[Callable[[], None]] = None

    def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
        view = super()._view(g)
        view = dict(view, status="PENDING", generated_images=[]) if self.held and g["id"] != "gen-1" else view
        if view["status"] == "COMPLETE" and self.seen_complete is not None:
            self.seen_complete, seen = None, self.seen_complete
            seen()
        return view

    def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
        paths = super().save_results(result, folder)
        if self.move is not None:
            self.move()
        return paths


@pytest.mark.parametrize("when", ["before the first post", "between items", "before a download", "during a download"])
def test_a_folder_moved_while_the_batch_runs_stops_it_and_nothing_is_written_to_its_old_path(
    tmp_path: Any, when: str
) -> None:
    # Later files went to its old path, re-created, while the journal (which follows the folder) said them complete.
    old, new = tmp_path / "batch", tmp_path / "handed-over"
    api = HeldAfterTheFirst()
    events: List[str] = []

    def move() -> None:
        os.rename(old, new)

    def on_progress(progress: BatchProgress) -> None:
        events.append(progress.event)
        if (when, progress.event) in (("before the first post", "start"), ("between items", "complete")):
            move()

    api.move = move if when == "during a download" else None
    api.seen_complete = move if when == "before a download" else None
    with pytest.raises(LeonardoError) as caught:
        run(api, PROMPTS[:3], str(old), on_progress=on_progress)
    moved = "was moved, renamed or deleted while the batch ran: rerun it in its new place"
    assert str(caught.value) == f"{named(old)} {moved}"
    assert not old.exists()
    assert "waiting" not in events  # it stops at once: no "will try again" said of a download
    if when == "before the first post":
        assert "POST" not in api.calls  # the record of the first is refused: nothing is sent once it is moved
    api.held, api.move = False, None
    assert run(api, PROMPTS[:3], str(new)).ok
    files = [name for record in journal(new) for name in record.get("files", [])]
    assert len(files) == 3 and all((new / name).is_file() for name in files)
    assert api.calls.count("POST") == len(api.generations) == 3  # none sent twice


def test_a_journal_that_cannot_be_opened_is_named_and_nothing_is_sent(tmp_path: Any) -> None:
    (tmp_path / "journal.jsonl").mkdir()
    api = ApiDouble()
    with pytest.raises(LeonardoError, match=f"^could not open {journal_named(tmp_path)}: Is a directory$"):
        run(api, PROMPTS[:1], str(tmp_path))
    assert "POST" not in api.calls


def test_a_journal_that_can_be_written_but_not_read_is_named_and_nothing_is_sent(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mode 200: its reading let a bare PermissionError out of run_batch (hunt JR). Made so here as for a user other
    # than root: any opening of it but a write-only one is refused.
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], []), encoding="utf-8")
    path, os_open, builtin_open = str(tmp_path / "journal.jsonl"), os.open, open
    denied = PermissionError(errno.EACCES, "Permission denied")

    def opened(name: Any, flags: int, *args: Any) -> int:
        if name == path and not flags & os.O_WRONLY:
            raise denied
        return os_open(name, flags, *args)

    def opened_file(name: Any, mode: str = "r", **options: Any) -> Any:
        if name == path and ("r" in mode or "+" in mode):
            raise denied
        return builtin_open(name, mode, **options)

    monkeypatch.setattr(os, "open", opened)
    monkeypatch.setattr(batch, "open", opened_file, raising=False)  # the module's open(): the builtin till then
    api = ApiDouble()
    with pytest.raises(LeonardoError, match=f"^could not open {journal_named(tmp_path)}: Permission denied$"):
        run(api, PROMPTS[:1], str(tmp_path))
    assert "POST" not in api.calls


@pytest.mark.parametrize("kept", [0, 1], ids=["a torn last line", "its header only"])
def test_a_journal_that_cannot_be_cut_is_named_and_nothing_is_sent(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, kept: int
) -> None:
    # Append-only (chattr +a): cutting off a torn last line, or a journal begun again, let a bare PermissionError
    # out of run_batch, naming no file (review R27).
    text = journal_text(PROMPTS[:1], [])
    (tmp_path / "journal.jsonl").write_text(text.splitlines(keepends=True)[0] if kept else text + '{"i": 0', "utf-8")
    denied = PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "ftruncate", lambda fd, size: (_ for _ in ()).throw(denied))
    api = ApiDouble()
    with pytest.raises(LeonardoError, match=f"^could not write {journal_named(tmp_path)}: Operation not permitted$"):
        run(api, PROMPTS[:1], str(tmp_path))
    assert "POST" not in api.calls


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("read", [False, True], ids=["no reader", "a reader"])
def test_a_fifo_journal_is_refused_at_once_and_nothing_is_sent(tmp_path: Any, read: bool) -> None:
    fifo = str(tmp_path / "journal.jsonl")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK) if read else None  # novm: flags, not a union
    handler = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("run_batch blocked on the FIFO"))
    signal.alarm(5)
    api = ApiDouble()
    try:
        with pytest.raises(LeonardoError, match=f"^could not open {journal_named(tmp_path)}: not a regular file$"):
            run(api, PROMPTS[:1], str(tmp_path))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, handler)
        if reader is not None:
            os.close(reader)
    assert "POST" not in api.calls


def test_a_new_journal_is_named_durably_in_its_folder_before_the_first_post(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = ApiDouble()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            api.calls.append("folder synced")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    assert api.calls.index("folder synced") < api.calls.index("POST")
    api.calls.clear()
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    assert "folder synced" not in api.calls  # the journal was there already


def test_an_items_files_are_named_durably_in_out_dir_before_its_complete_record(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: List[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        if os.path.samestat(os.fstat(fd), os.stat(tmp_path)):
            events.append(f"out_dir synced with {sorted(tmp_path.glob('*.png'))}")
        elif os.path.samestat(os.fstat(fd), os.stat(tmp_path / "journal.jsonl")):
            events.append(journal(tmp_path)[-1].get("s", "a note"))

    monkeypatch.setattr(os, "fsync", fsync)
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok
    assert events[events.index("complete") - 1] == f"out_dir synced with {sorted(tmp_path.glob('*.png'))}"


def test_a_write_that_takes_nothing_stops_the_batch_instead_of_looping(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrap_journal_file(monkeypatch, DiskTakingNothing)
    api = ApiDouble()
    with pytest.raises(LeonardoError, match=f"^could not write {journal_named(tmp_path)}: nothing was written$"):
        run(api, PROMPTS[:1], str(tmp_path))
    assert "POST" not in api.calls


# --- failures and back-pressure ---------------------------------------------------------------


def test_failed_generations_are_recorded_and_the_batch_goes_on(tmp_path: Any) -> None:
    api = ApiDouble(failing=(PROMPTS[1]["prompt"],))
    summary = run(api, PROMPTS[:3], str(tmp_path))
    assert (summary.complete, summary.failed) == (2, 1) and not summary.ok
    assert "FAILED" in [r for r in journal(tmp_path) if r.get("i") == 1][-1]["reason"]
    assert dict(summary.credits) == {"DOLLARS": pytest.approx(0.02)}  # the failed one is refunded
    again = run(api, PROMPTS[:3], str(tmp_path))
    assert api.calls.count("POST") == 3 and again.failed == 1  # not retried unless asked
    api.failing = ()
    retried = run(api, PROMPTS[:3], str(tmp_path), retry_failed=True)
    assert retried.ok and api.calls.count("POST") == 4


@pytest.mark.parametrize(
    "error", [LeonardoError("invalid dimensions", status_code=400), ValueError("invalid dimensions")]
)  # a ValueError: a local check's, so no call was sent and there is nothing to reconcile
def test_a_refused_request_fails_that_item_only(tmp_path: Any, error: Exception) -> None:
    api = ApiDouble()
    api.before_post = [error]
    summary = run(api, PROMPTS[:3], str(tmp_path))
    assert (summary.complete, summary.failed) == (2, 1) and api.calls.count("POST") == 3
    assert [r["reason"] for r in journal(tmp_path) if r.get("s") == "failed"] == [f"refused: {error}"]


@pytest.mark.parametrize("refused", [True, False])
def test_the_summary_and_the_gallery_advise_retry_failed_only_for_items_that_could_be_made_if_sent_again(
    tmp_path: Any, refused: bool
) -> None:
    # A 4xx's item was advised "rerun with --retry-failed ... to send them again": the same body, refused again.
    api = ApiDouble(failing=() if refused else (PROMPTS[1]["prompt"],))  # else a generation FAILED at Leonardo
    api.before_post = [None, LeonardoError("invalid dimensions", status_code=400)] if refused else []
    retry = "rerun with --retry-failed (retry_failed=True) to send them again"
    fix = "items the API refused (see why in the gallery) would be refused again as they are: fix them, and run them " \
        "as a batch of their own in another folder"
    for summary in (run(api, PROMPTS[:2], str(tmp_path)), run(api, PROMPTS[:2], str(tmp_path))):  # and from the journal
        assert (summary.failed, summary.refused) == (1, int(refused))
        assert (retry in str(summary), fix in str(summary)) == (not refused, refused)
        # The summary sent one to the gallery ("see why in the gallery"), which said neither.
        header = html.unescape((tmp_path / "index.html").read_text(encoding="utf-8").split("</header>")[0])
        said = (f"Failed items (see why on their cards): {retry}." in header,
                "I" + fix[1:].replace("in the gallery", "on their cards") + "." in header)
        assert said == (not refused, refused), header


@pytest.mark.usefixtures("shipped_first_poll")  # the time asserted below counts its polls too
def test_429s_slow_the_batch_down_and_fail_no_item(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.2) for _ in range(5)]
    started = time.monotonic()
    summary = run(api, PROMPTS, str(tmp_path))
    assert summary.ok and summary.failed == 0
    assert api.calls.count("POST") == len(PROMPTS) + 5
    # Each Retry-After paused every submission (unpaused, the batch's poll rounds alone take about 0.5 s).
    assert time.monotonic() - started >= 5 * 0.2


def post_times(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """The times create calls are handed to the workers, as they are."""
    spawn, posted = batch._Engine.spawn, []

    def timed(engine: Any, kind: str, task: Any, done: Any) -> None:
        posted.extend([time.monotonic()] if kind == "post" else [])
        spawn(engine, kind, task, done)

    monkeypatch.setattr(batch._Engine, "spawn", timed)
    return posted


def test_a_429_spaces_the_next_posts_further_apart(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    posted = post_times(monkeypatch)
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.01)]
    assert run(api, PROMPTS[:2], str(tmp_path), posts_per_minute=120).ok and len(posted) == 3
    gap = 60.0 * batch.PACE_MARGIN / 120  # 0.5 s; 1.25 times that after the 429
    assert posted[1] - posted[0] >= 0.8 * 60.0 / 120  # a Retry-After shorter than the pace does not hurry it (0.01 s)
    assert posted[2] - posted[1] >= 1.2 * gap


def test_a_429_storm_slows_the_pace_once_not_for_each_call_it_refuses(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each call sent as a pause ended was refused too (an API refusing all, not the pace): the pace after it was
    # 1.25**5 times the gap (0.76 s) and took ~70 accepted calls to come back; now 1.25 times.
    posted = post_times(monkeypatch)
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.01) for _ in range(5)]
    assert run(api, PROMPTS[:2], str(tmp_path), posts_per_minute=240).ok and len(posted) == 7
    gap = 60.0 * batch.PACE_MARGIN / 240
    assert 1.2 * gap <= posted[6] - posted[5] < 2 * gap


def paces(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """How much the pace is slowed as each create call's answer leaves it."""
    slowdowns: List[float] = []
    posted = batch._Engine.posted

    def watched(engine: Any, *answer: Any) -> None:
        posted(engine, *answer)
        slowdowns.append(engine.slowdown)

    monkeypatch.setattr(batch._Engine, "posted", watched)
    return slowdowns


def test_the_pace_a_429_slowed_comes_back_as_create_calls_are_accepted_up_to_posts_per_minute(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # README: each create call accepted takes 2% off the slowing, till none is left: after a blip a long batch is not
    # left at a fraction of its pace for good, nor sped past posts_per_minute by the calls accepted after it.
    slowdowns = paces(monkeypatch)
    api = ApiDouble(slots=10)
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.01)]
    items = [dict(PROMPTS[0], prompt=f"a kite, study {n}") for n in range(14)]
    assert run(api, items, str(tmp_path)).ok
    assert max(slowdowns) == 1.25 and slowdowns[-1] == 1.0  # 13 accepted after it: 1.25 * 0.98 ** 13 is 0.96


class SlowAccepted(ApiDouble):
    """Its create calls that go through are answered ``answered_after`` seconds after the generation is made."""

    answered_after = 0.5

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        generation_id = super()._create(params, model_id)
        time.sleep(self.answered_after)
        return generation_id


def test_a_slow_answer_to_a_call_sent_before_a_429_does_not_make_the_next_429_slow_the_pace_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    slowdowns = paces(monkeypatch)
    api = SlowAccepted(slots=10)  # answered after the 429s to the calls sent after it
    api.before_post = [None, *(LeonardoError("Too many", status_code=429, retry_after=0.3) for _ in range(3))]
    assert run(api, PROMPTS[:3], str(tmp_path), posts_per_minute=240).ok
    assert max(slowdowns) == 1.25  # was 1.25 * 0.98 * 1.25 after the slow answer


def test_posts_are_never_closer_than_posts_per_minute_allows(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    posted = post_times(monkeypatch)
    assert run(ApiDouble(slots=10), PROMPTS[:2], str(tmp_path), posts_per_minute=30).ok and len(posted) == 2
    # A little under 30 a minute (2.02 s apart), never over. (PACE_MARGIN's 1% is not always told apart: the loop may wake
    # tens of ms late under load, more than 1% of a gap this test can afford to wait.)
    assert posted[1] - posted[0] >= 60.0 / 30


def test_posts_queued_behind_slow_downloads_are_still_paced_as_they_are_sent(tmp_path: Any) -> None:
    class SlowCdn(ApiDouble):  # every download ends at `until`: the 4 workers are all downloading till then
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            sent.append(time.monotonic())  # as the server sees the POST
            return super()._create(params, model_id)

        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            time.sleep(max(0.0, until - time.monotonic()))
            return super().save_results(result, folder)

    sent: List[float] = []
    until = time.monotonic() + 1.0
    items = [dict(PROMPTS[0], prompt=f"a kite, study {n}") for n in range(8)]
    assert run(SlowCdn(slots=2), items, str(tmp_path), posts_per_minute=600).ok and len(sent) == 8  # 0.1 s apart
    # Over two gaps: the pace is kept as a call is handed over, and a journal fsync (shared with the main thread's)
    # may stand between that and the send; queued ones went out as workers freed, three within 3 ms.
    assert min(sent[i + 2] - sent[i] for i in range(len(sent) - 2)) >= 0.1


def test_the_loop_sleeps_through_a_pause_with_nothing_running(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # With no generation running, the poll time stayed in the past: the loop woke every 10 ms.
    rounds: List[float] = []
    start_work = batch._Engine.start_work
    monkeypatch.setattr(batch._Engine, "start_work", lambda engine, now: (rounds.append(now), start_work(engine, now))[1])
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.5)]
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    paused = [now for now in rounds if now - rounds[0] < 0.45]  # during the pause after the 429 (45 wakes before)
    assert len(paused) < 10, len(paused)


def recorded_pauses(monkeypatch: pytest.MonkeyPatch, waited: bool = False) -> List[float]:
    """The pauses of submissions back_off sets, as it sets them; not waited out unless ``waited``."""
    pauses: List[float] = []
    back_off = batch._Engine.back_off

    def recorded(engine: Any, said: float, now: float, why: str) -> float:
        wait = back_off(engine, said, now, why)
        pauses.append(engine.post_at - now)
        if not waited:  # as if waited out: over
            engine.post_at = engine.paused_until = now
        return wait

    monkeypatch.setattr(batch._Engine, "back_off", recorded)
    return pauses


def test_a_429s_retry_after_pauses_submissions_at_most_max_pause(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = recorded_pauses(monkeypatch)
    events: List[BatchProgress] = []
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=1e9)]  # about 32 years
    assert run(api, PROMPTS[:1], str(tmp_path), on_progress=events.append).ok
    assert pauses == [pytest.approx(3600.0)] and api.calls.count("POST") == 2
    assert "rate limited: pausing submissions 3600.0s" in [e.message for e in events if e.event == "waiting"]


def test_an_accepted_post_brings_the_next_429s_pause_back_to_the_first(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = recorded_pauses(monkeypatch, waited=True)
    api = ApiDouble()  # one prompt: the second POST is answered before the third is sent
    refused = LeonardoError("Too many requests", status_code=429)  # no Retry-After: the pause is the engine's
    api.before_post = [refused, None, refused]
    assert run(api, [{"prompt": "a kite", "seed": n} for n in range(2)], str(tmp_path)).ok
    assert pauses == [pytest.approx(batch.DEFAULT_PAUSE)] * 2 and api.calls.count("POST") == 4  # not doubled


def test_the_pause_of_submissions_after_429s_doubles_from_2_s_up_to_a_minute(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", SHIPPED_DEFAULT_PAUSE)
    pauses = recorded_pauses(monkeypatch)
    api = ApiDouble()
    api.before_post = [LeonardoError("Too many requests", status_code=429) for _ in range(7)]  # no Retry-After
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 8
    assert pauses == pytest.approx([2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0])  # MAX_DOUBLED_PAUSE caps it


def test_answers_that_come_during_a_pause_double_the_next_one_once_and_keep_its_reason(tmp_path: Any) -> None:
    # Four create calls under way answered 500 in one blip made the next pause 2, 4, 8 then 16 s; and a 5xx's short
    # pause within a 429's minute said the 429's pause was the 5xx's.
    engine = batch._Engine(ApiDouble(), [BatchItem("a fox")], str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    first, now = engine.pause, time.monotonic()
    for n in range(4):
        engine.back_off(0.0, now + n * 0.001, "a create call failed and may have run")
    assert engine.pause == 2 * first and engine.paused_until == pytest.approx(now + 0.003 + 2 * first)
    engine.back_off(60.0, now, "rate limited: 429")
    engine.back_off(0.0, now + 0.01, "a create call failed and may have run")
    assert engine.paused_why == "rate limited: 429" and engine.pause == 2 * first
    engine.back_off(0.0, now + 0.02, batch.UNREADABLE, listing=True)  # read alone: no blip, an outage
    assert engine.pause == 4 * first  # so an outage's create calls, each left to reconcile, come ever further apart


def test_a_create_call_found_made_brings_the_next_pause_back_to_the_first(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gateway that answers 504 after the generation was made: each call paused submissions twice as long as the
    # last (2, 4 ... 60 s between create calls for good), though each was found made, as one accepted resets it.
    pauses = recorded_pauses(monkeypatch)
    api = ApiDouble()
    api.after_post = [LeonardoError("Gateway Timeout", status_code=504) for _ in range(4)]
    assert run(api, [{"prompt": "a kite", "seed": n} for n in range(4)], str(tmp_path)).ok
    assert pauses == [pytest.approx(batch.DEFAULT_PAUSE)] * 4 and len(api.generations) == 4  # was doubling


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_post_that_may_have_run_restarts_the_clock_of_the_stop_on_refusals(tmp_path: Any) -> None:
    # 429 (item 1), answer lost but created (item 1, adopted), 429 (item 2) 1.1 s after the first:
    # not "every create call refused for item_timeout": the batch stopped there, and said so.
    api = ApiDouble()
    refused = LeonardoError("Too many requests", status_code=429, retry_after=0.1)
    api.before_post = [refused, None, refused]
    api.after_post = [LeonardoError("timed out waiting for the API's response")]
    summary = run(api, PROMPTS[:2], str(tmp_path), posts_per_minute=120, item_timeout=0.9)
    assert summary.ok and api.calls.count("POST") == 4 and len(api.generations) == 2


# The other item's create call: none; answered at once, it completes during the pause; answered after item_timeout
# ran out in the pause: its answer, not the clock, decides, and it completes too.
@pytest.mark.parametrize("answered_after", [None, 0.0, 1.0])
def test_a_pause_longer_than_item_timeout_does_not_outlast_it(tmp_path: Any, answered_after: Optional[float]) -> None:
    # One 429 with "Retry-After: 3600" parked run_batch(item_timeout=10) for the hour: check_refusals ran only as a
    # create call came back, and none is sent during the pause. Here the pause is 6 s: the batch waited it out, sent
    # the item again and ended ok. An item submitted or completing during the pause restarts the clock, not stops it.
    # (Scaled: a pause of 3 s, item_timeout 0.6 s.)
    api, moved_on = SlowAccepted(delay=0.3), answered_after is not None  # the first completes after the second's 429
    api.answered_after = answered_after or 0.0
    refused = LeonardoError("Too many requests", status_code=429, retry_after=3.0)
    api.before_post = [None, refused] if moved_on else [refused]
    last = r"HTTP 429: Too many requests"
    with pytest.raises(LeonardoError, match=rf"no create call went through \(the last: {last}\); rerun to resume$"):
        run(api, PROMPTS[: 1 + moved_on], str(tmp_path), item_timeout=0.6)
    assert api.calls.count("POST") == 1 + moved_on  # the refused one was not sent again: the pause was not waited out
    assert sorted(states(tmp_path).values()) == (["complete", "planned"] if moved_on else ["planned"])


def test_a_short_retry_after_at_a_slow_pace_does_not_stop_the_batch_as_refused(tmp_path: Any) -> None:
    # The pace's next slot was taken for the pause's end: at posts_per_minute=1 with item_timeout=30, one 429 saying
    # "Retry-After: 5" stopped the batch 30 s later, "no create call went through", though only a Retry-After longer
    # than what is left of item_timeout does that: the next create call's answer decides. (Scaled: 1 s apart,
    # item_timeout 0.5 s, Retry-After 0.1 s.)
    api = ApiDouble()
    api.before_post = [None, LeonardoError("Too many requests", status_code=429, retry_after=0.1)]
    summary = run(api, PROMPTS[:2], str(tmp_path), posts_per_minute=60, item_timeout=0.5)
    assert summary.ok and api.calls.count("POST") == 3 and states(tmp_path) == {0: "complete", 1: "complete"}


@pytest.mark.parametrize("refusal", [
    LeonardoError("Too many requests", status_code=429),  # no Retry-After: the pause is the batch's own
    LeonardoError.not_sent("connection refused"),
])
def test_the_batch_s_own_pause_ends_by_item_timeout_so_a_create_call_s_answer_decides(
    tmp_path: Any, refusal: LeonardoError
) -> None:
    # Its pause doubled past the stop's deadline, and the batch stopped there, mid-pause, "in this run, for 60s no
    # create call went through", sending none after a 20 s outage (item_timeout=60: pauses of 2, 4 ... 32 s, then 60).
    # README: only a Retry-After longer than what is left of item_timeout is not waited out. (Scaled: pauses of 0.05,
    # 0.1 ... 0.8 s, five refusals in 0.75 s, item_timeout 1 s.)
    api = ApiDouble()
    api.before_post = [refusal] * 5
    summary = run(api, PROMPTS[:1], str(tmp_path), item_timeout=1.0)
    assert summary.ok and api.calls.count("POST") == 6 and states(tmp_path) == {0: "complete"}


def grown_pause(count: int) -> List[Optional[Exception]]:
    """429s of a short Retry-After: the first starts the stop's clock, each doubles the batch's own next pause."""
    return [LeonardoError("Too many requests", status_code=429, retry_after=0.01) for _ in range(count)]


class ListingFailsOnce(ApiDouble):
    """The reconciliation's first listing answers 503, without Retry-After."""

    failed = False

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        if not self.failed and limit == batch.LISTING_PAGE:
            self.failed = True
            self.calls.append("LIST")
            raise LeonardoError("Service Unavailable", status_code=503)
        return super().get_generations_by_user_id(user_id, limit, offset)


def test_while_the_clock_runs_the_own_pause_after_a_may_have_run_answer_is_cut_to_item_timeout(tmp_path: Any) -> None:
    # reconcile_later: the item to reconcile is what the stop watches; counted (reconcile_at) before back_off, the
    # pause grown by the 429s (3.2 s) is cut to what is left of item_timeout (1 s). Counted after, it outlasted the
    # deadline, and once the item was found never created the stop came mid-pause, no create call sent after it.
    api = ApiDouble()
    api.before_post = [*grown_pause(6), LeonardoError("Service Unavailable", status_code=503)]
    summary = run(api, PROMPTS[:1], str(tmp_path), item_timeout=1.0)
    assert summary.ok and len(api.generations) == 1 and states(tmp_path) == {0: "complete"}


def test_while_the_clock_runs_the_own_pause_after_a_listing_raised_is_cut_to_item_timeout(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # settle_now: the item to read again is counted before back_off, so the listing's own pause (6.4 s) is cut to
    # what is left of item_timeout; else the stop came at the deadline, before the listing was read again
    # (LISTING_AGAIN, 1 s here) and found the generation whose answer was lost.
    monkeypatch.setattr(batch, "LISTING_AGAIN", 1.0)
    api = ListingFailsOnce()
    api.before_post = grown_pause(6)
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    summary = run(api, PROMPTS[:1], str(tmp_path), item_timeout=0.5)
    assert summary.ok and len(api.generations) == 1 and api.calls.count("POST") == 7


def test_the_batch_s_own_pause_is_not_cut_to_item_timeout_before_its_clock_runs(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 5xx that may have run starts no stop's clock (only "found never created" does): its pauses double as ever;
    # cut to item_timeout, an outage of such answers drew a create call every item_timeout, each one more to settle.
    pauses = recorded_pauses(monkeypatch)
    api = ApiDouble()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)] * 4
    run(api, PROMPTS[:4], str(tmp_path), item_timeout=batch.DEFAULT_PAUSE * 3)
    assert pauses[:4] == [pytest.approx(batch.DEFAULT_PAUSE * 2**n) for n in range(4)]


class LongWindow(ApiDouble):
    """A create call's window of 2.7 s (connect + read timeouts + the reconciliation's margin, scaled)."""

    timeout = (1.35, 1.35)


@pytest.mark.parametrize("answer_lost", [False, True], ids=["accepted", "adopted"])
def test_a_call_found_never_created_after_a_later_one_went_through_is_no_refusal(
    tmp_path: Any, answer_lost: bool
) -> None:
    # At posts_per_minute=2 with item_timeout=15: #1 answered 503, #2 accepted (or made, its answer lost, adopted),
    # #3 answered "429, Retry-After: 1", then #1 found never created (its window passed) 19 s after the 429, before
    # the pace's next slot: the batch stopped, "for 19s no create call went through", though #2, sent after #1, had.
    # (Scaled: 1 s apart, a window of 2.7 s, item_timeout 0.5 s.)
    api = LongWindow()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503), None,
                       LeonardoError("Too many requests", status_code=429, retry_after=0.1)]
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)] if answer_lost else []
    summary = run(api, PROMPTS[:3], str(tmp_path), posts_per_minute=60, item_timeout=0.5)
    assert summary.ok and api.calls.count("POST") == 5 and len(api.generations) == 3


def test_a_call_adopted_from_a_run_whose_clock_ran_ahead_hides_no_later_refusal(tmp_path: Any) -> None:
    # The latest call made took an adopted call's journaled send time: one from a run whose clock ran an hour ahead
    # was in this run's future, and no call found never created after it was a refusal: an outage never stopped.
    items = [BatchItem("a fox"), BatchItem("a hare")]
    engine = batch._Engine(ApiDouble(), items, str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    ahead, lost = engine.items
    engine.queue = collections.deque()
    ahead.since = engine.wall_time() + 3600
    engine.went_through(ahead)
    lost.since = engine.wall_time() + 1  # sent a second later, in the outage
    engine.resend(lost)
    engine.journal.close()
    assert engine.refused_since is not None


def test_the_stop_on_refusals_says_its_time_is_this_run_s(tmp_path: Any) -> None:
    # Rerun on the same folder in the same 429 storm, the batch stopped again saying "for 1s no create call went
    # through": it counts from this run's first refusal, but the journal holds the refusals of the run before.
    for _ in range(2):
        api = ApiDouble()
        api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=0.1)] * 100
        stop = r"^in this run, for \d+s no create call went through \(the last: HTTP 429"
        with pytest.raises(LeonardoError, match=stop):
            run(api, PROMPTS[:1], str(tmp_path), item_timeout=0.3)
    refused = [r for r in journal(tmp_path) if r.get("reason", "").startswith("429")]
    assert len(refused) > api.calls.count("POST")  # the run before's refusals too


def test_a_listing_s_long_retry_after_does_not_outlast_item_timeout(tmp_path: Any) -> None:
    # The item's answer lost, the listing that would settle it said "Retry-After: 3600" (a 503): the batch paused
    # its submissions and the item's reconciliation that long, with no refusal counted: it sat out the hour.
    api = ApiDouble()
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    api.listing_error = LeonardoError("Service Unavailable", status_code=503, retry_after=2.0)  # scaled: 3600 s
    with pytest.raises(LeonardoError, match=r"no create call went through \(the last: HTTP 503: Service Unavailable"):
        run(api, PROMPTS[:1], str(tmp_path), item_timeout=0.6)
    assert api.calls.count("POST") == 1 and api.calls.count("LIST") == 1 and states(tmp_path) == {0: "submitting"}


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_client_closed_by_another_thread_stops_the_batch(tmp_path: Any) -> None:
    api = ApiDouble(delay=30.0)

    def close_it(progress: BatchProgress) -> None:
        if progress.event == "submitted":
            api.closed = True  # type: ignore[attr-defined]  # as Client.closed after close()

    with pytest.raises(LeonardoError, match="the Client was closed while the batch ran"):
        run(api, PROMPTS[:3], str(tmp_path), on_progress=close_it, item_timeout=5.0)  # ran on until item_timeout


def test_a_client_closed_by_another_thread_stops_a_paused_batch_within_a_second(tmp_path: Any) -> None:
    # README: a GUI's Stop raised from on_progress waits for the next event, which a 429's Retry-After holds off (up to
    # an hour); closing the Client from the GUI's thread instead stops the batch within about a second.
    api, closed_at = ApiDouble(), []
    api.before_post = [LeonardoError("Too many requests", status_code=429, retry_after=60.0)]

    def close_once_paused(progress: BatchProgress) -> None:
        if progress.message.startswith("rate limited: pausing") and not closed_at:
            closed_at.append(time.monotonic())
            threading.Timer(0.1, setattr, (api, "closed", True)).start()  # as Client.closed after close()

    with pytest.raises(LeonardoError, match="the Client was closed while the batch ran"):
        run(api, PROMPTS[:1], str(tmp_path), on_progress=close_once_paused)
    assert closed_at and time.monotonic() - closed_at[0] < 2.5  # the pause is a minute; the loop wakes each second
    assert api.calls.count("POST") == 1 and states(tmp_path) == {0: "planned"}


def test_a_create_call_queued_when_the_client_is_closed_is_not_sent_or_journaled(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was journaled as sent, then refused unsent by the closed Client, and so left ambiguous: a rerun
    # waited out the read timeout it might have run for, and the summary said it may have been created.
    second_queued, ran = threading.Event(), []

    class Held(ApiDouble):  # the first create call is answered once the second is queued
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            if body["prompt"] == PROMPTS[0]["prompt"]:
                second_queued.wait(5)
            return super().create_generation(body)

    spawn, api = batch._Engine.spawn, Held(delay=30.0)

    def after_the_close(send: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + 5
        while not api.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        ran.append(api.closed)
        return send()

    def queued(engine: Any, kind: str, task: Any, done: Any) -> None:
        if kind == "post" and engine.posts == 2:
            task = partial(after_the_close, task)
            second_queued.set()
        spawn(engine, kind, task, done)

    def close_it(progress: BatchProgress) -> None:
        if progress.event == "submitted":
            api.closed = True  # type: ignore[misc]  # as Client.closed after close()

    monkeypatch.setattr(batch._Engine, "spawn", queued)
    with pytest.raises(LeonardoError, match="the Client was closed while the batch ran"):
        run(api, PROMPTS[:2], str(tmp_path), on_progress=close_it)
    assert ran == [True]  # the second one's turn came after the close
    assert api.calls.count("POST") == 1 and states(tmp_path)[1] == "planned"  # a rerun sends it at once


def test_an_items_cost_is_kept_unless_it_was_refunded() -> None:
    item, cost = batch._Item(0, BatchItem("a fox")), {"amount": "2", "unit": "CREDITS"}
    for states_seen, spent in ((["failed"], {}), (["ambiguous"], {"CREDITS": 2.0})):
        item.apply({"i": 0, "s": "submitted", "id": "g", "cost": cost, "t": 1.0})
        for state in states_seen + ["planned"]:
            item.apply({"i": 0, "s": state})
        assert item.spent() == spent  # a paid ambiguous one planned again (--resubmit-ambiguous) was paid all the same
    item.apply({"i": 0, "s": "submitted", "id": "g2", "cost": {"amount": "3", "unit": "CREDITS"}, "t": 2.0})
    assert item.spent() == {"CREDITS": 5.0} and item.cost_unknown() == 0  # both generations (was 3: the first lost)
    assert "3 credits (and 2 credits before)" in batch._card(item)


def test_a_reason_shown_in_the_gallery_cannot_reverse_its_text() -> None:
    item = batch._Item(0, BatchItem("a fox"))
    item.apply({"i": 0, "s": "ambiguous", "reason": "generation x\u202edi no longer exists"})  # an id a server sent
    assert "generation x\\u202edi no longer" in batch._card(item)  # was shown reversed: "x id..."


def test_a_cost_shown_on_a_card_cannot_reverse_its_text() -> None:
    item = batch._Item(0, BatchItem("a fox"))
    item.apply({"i": 0, "s": "submitted", "id": "g", "cost": {"amount": "8", "unit": "\u202eCREDITS\nx"}, "t": 1.0})
    assert "<dt>cost</dt><dd>8 \\u202ecredits\\nx</dd>" in batch._card(item)  # as the header's: was shown reversed


def test_a_reason_journaled_with_an_earlier_state_is_not_kept_by_a_record_without_one() -> None:
    item = batch._Item(0, BatchItem("a fox"))
    for record in ({"s": "planned", "reason": "429, sent again later: HTTP 429"}, {"s": "submitting", "t": 1.0},
                   {"s": "submitted", "id": "g", "t": 1.0}, {"s": "complete", "files": ["0001-a-fox.png"]}):
        item.apply(dict(record, i=0))
    assert item.reason == "" and "429" not in batch._card(item)  # was still on the complete item's card


def test_the_longest_timeouts_a_client_takes_make_a_journal_record_the_batch_takes_back() -> None:
    from leonardo_client.client import MAX_SECONDS

    longest = {"i": 0, "s": "submitting", "t": 1.0, "rt": 2 * MAX_SECONDS}  # a connect and a read timeout
    assert batch._well_formed(longest, 1) and not batch._well_formed(dict(longest, rt=2 * MAX_SECONDS + 1), 1)


def test_an_error_raised_by_on_progress_journals_the_create_calls_under_way_first(tmp_path: Any) -> None:
    # It left them running, their ids never journaled: a rerun had to find them (their cost unknown).
    started = threading.Semaphore(0)

    class Slow(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            started.release()
            if body["prompt"] == PROMPTS[0]["prompt"]:  # answered once the other two are under way (and itself)
                for _ in range(3):
                    started.acquire(timeout=5)
                return super().create_generation(body)
            answer = super().create_generation(body)  # made; its answer comes late
            time.sleep(0.5)
            return answer

    def fail(progress: BatchProgress) -> None:
        if progress.event == "submitted":
            raise ValueError("a bug in the callback")

    api = Slow()
    with pytest.raises(ValueError, match="a bug in the callback"):  # the user's own error, not swallowed
        run(api, PROMPTS[:3], str(tmp_path), on_progress=fail)
    assert len(api.generations) == 3
    assert sorted(r["id"] for r in journal(tmp_path) if r.get("s") == "submitted") == sorted(api.generations)


@pytest.mark.parametrize("event", ["start", "done"])
def test_ctrl_c_at_the_start_event_is_an_interrupted_batch_and_stops_the_workers(tmp_path: Any, event: str) -> None:
    def interrupt(progress: BatchProgress) -> None:
        if progress.event == event:
            raise KeyboardInterrupt

    before = set(threading.enumerate())
    with pytest.raises(BatchInterrupted):  # was a raw KeyboardInterrupt (and at "start" the workers left running)
        run(ApiDouble(), PROMPTS[:3], str(tmp_path), on_progress=interrupt)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:  # others may end meanwhile
        time.sleep(0.02)
    assert set(threading.enumerate()) - before == set()



def test_a_worker_thread_that_cannot_start_stops_the_batch_with_nothing_sent(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_start, starts = threading.Thread.start, []

    def start(thread: threading.Thread) -> None:  # the third worker meets a limit on threads (ulimit -u, pids.max)
        starts.append(thread)
        if len(starts) == 3:
            raise RuntimeError("can't start new thread")
        real_start(thread)

    api, before = ApiDouble(), set(threading.enumerate())
    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(LeonardoError, match="can't start new thread") as raised:  # was the RuntimeError: a traceback
        run(api, PROMPTS[:2], str(tmp_path))
    assert "POST" not in api.calls and states(tmp_path) == {0: "planned", 1: "planned"}  # journaled as it is
    assert never_sent(raised.value) and not may_have_run(raised.value)  # it said a generation may have been made
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:  # the two started end
        time.sleep(0.02)
    assert set(threading.enumerate()) - before == set()
    assert run(api, PROMPTS[:2], str(tmp_path)).complete == 2 and api.calls.count("POST") == 2  # each sent once


def test_ctrl_c_while_reading_the_account_is_an_interrupted_batch(tmp_path: Any) -> None:
    api = ApiDouble()

    def interrupted() -> Dict[str, Any]:
        raise KeyboardInterrupt

    api.get_user_info = interrupted  # type: ignore[method-assign]
    with pytest.raises(BatchInterrupted) as stopped:  # was a bare KeyboardInterrupt, without a summary
        run(api, PROMPTS[:2], str(tmp_path))
    assert stopped.value.summary.pending == 2 and api.calls == []


def test_ctrl_c_while_the_first_gallery_is_written_is_an_interrupted_batch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:  # a 100,000-item page takes about a second
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "write_gallery", interrupted)
    with pytest.raises(BatchInterrupted) as stopped:  # was a bare KeyboardInterrupt, without a summary
        run(ApiDouble(), PROMPTS[:2], str(tmp_path))
    assert stopped.value.summary.pending == 2


def test_a_reopen_asked_of_a_run_the_account_refuses_is_not_journaled(tmp_path: Any) -> None:
    api = ApiDouble()
    api.after_post = [LeonardoError("Service Unavailable", status_code=503)]  # made, its answer lost
    api.listing_error = LeonardoError("Service Unavailable", status_code=503)
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1
    refused = ApiDouble()

    def unauthorized() -> Dict[str, Any]:
        raise LeonardoError("Unauthorized", status_code=401)

    refused.get_user_info = unauthorized  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match="Unauthorized"):
        run(refused, PROMPTS[:1], str(tmp_path), resubmit_ambiguous=True)
    assert states(tmp_path) == {0: "ambiguous"}  # was planned: the next run sent it again, made as it was
    api.listing_error = None
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 1  # adopted: billed once


def test_a_create_answer_whose_event_a_ctrl_c_took_off_the_queue_is_still_journaled(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Ctrl-C came as Queue.get returned the event: posted() never ran, the answer was lost, and the
    # stop waited out the create call's whole span for an item still marked as sending.
    class LosingQueue(queue.Queue):  # type: ignore[type-arg]
        def get(self, *args: Any, **kwargs: Any) -> Any:
            event = super().get(*args, **kwargs)
            if event[0] == "post":
                raise KeyboardInterrupt
            return event

    init = batch._Engine.__init__

    def losing_events(engine: Any, *args: Any) -> None:
        init(engine, *args)
        engine.events = LosingQueue()

    monkeypatch.setattr(batch._Engine, "__init__", losing_events)
    with pytest.raises(BatchInterrupted):
        run(ApiDouble(), PROMPTS[:1], str(tmp_path), concurrency=1)
    assert states(tmp_path) == {0: "submitted"}  # was "submitting": reconciled on the rerun, its cost unknown


class FirstCreateHeld(ApiDouble):
    """The first item's create call is made at once, its answer held till ``release`` (a slow network); the others are
    answered once it is made."""

    def __init__(self) -> None:
        super().__init__()
        self.made, self.release = threading.Event(), threading.Event()

    def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if body["prompt"] != PROMPTS[0]["prompt"]:
            self.made.wait(10)
            return super().create_generation(body)
        answer = super().create_generation(body)  # made (billed) now
        self.made.set()
        self.release.wait(10)  # the bound: a stop that waited for this answer ends then, and fails the test
        return answer


def test_a_create_call_unanswered_when_the_stop_gives_up_on_it_stays_submitting_and_is_adopted_not_sent_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stop waits create_span + 5 s for the create calls under way: here its clock runs 50 times as fast from
    # the stop on (0.1 s). The call not answered by then is left "submitting" (made, maybe billed), not journaled
    # planned or answered, and the rerun reconciles it: adopted, not sent again.
    api, real = FirstCreateHeld(), time.monotonic

    def stop_at_the_second_answer(progress: BatchProgress) -> None:
        if (progress.event, progress.index) == ("submitted", 1):
            raise KeyboardInterrupt
        if progress.event == "stopping":
            began = real()
            monkeypatch.setattr(time, "monotonic", lambda: began + 50 * (real() - began))

    try:
        with pytest.raises(BatchInterrupted):
            run(api, PROMPTS[:2], str(tmp_path), concurrency=2, on_progress=stop_at_the_second_answer)
        assert states(tmp_path) == {0: "submitting", 1: "submitted"}
    finally:
        api.release.set()
        monkeypatch.setattr(time, "monotonic", real)
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 2  # billed once each
    assert [r["i"] for r in journal(tmp_path) if r.get("adopted")] == [0]


def test_a_create_call_refused_by_a_client_closed_meanwhile_is_not_left_ambiguous(tmp_path: Any) -> None:
    # Closed by another thread after send() looked, before the call: refused unsent, it was reconciled
    # with the closed Client, whose listing failed too, and so journaled ambiguous.
    api = ApiDouble()
    closed = LeonardoError("this Client was closed; create a new one (or close it only when done)")

    def closing(body: Dict[str, Any]) -> Dict[str, Any]:
        api.closed, api.listing_error = True, closed  # type: ignore[misc]
        raise closed

    api.create_generation = closing  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match="^the Client was closed while the batch ran; rerun to resume$"):
        run(api, PROMPTS[:1], str(tmp_path), concurrency=1)
    assert states(tmp_path) == {0: "submitting"}  # a rerun reconciles it
    api.get_user_info = lambda: {"user_details": [{"user": {}, "apiConcurrencySlots": 1}]}  # type: ignore[method-assign]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], []), encoding="utf-8")
    api.closed = False  # type: ignore[misc]
    with pytest.raises(LeonardoError, match="^the Client was closed while the batch ran; rerun to resume$"):
        run(api, PROMPTS[:1], str(tmp_path), concurrency=1)  # no user id: the listing's reason was a str, raised


def test_an_on_progress_that_raises_at_stopping_does_not_stop_the_answers_being_journaled(tmp_path: Any) -> None:
    def progress(event: BatchProgress) -> None:
        if event.event == "submitted":
            raise KeyboardInterrupt
        if event.event == "stopping":
            raise BrokenPipeError(32, "Broken pipe")  # a printer whose pipe closed with the Ctrl-C

    api = UnderWayTogether()
    with pytest.raises(BatchInterrupted):  # was the BrokenPipeError, with the others' answers lost
        run(api, PROMPTS[:3], str(tmp_path), concurrency=3, on_progress=progress)
    assert len(api.generations) == 3
    assert sorted(r["id"] for r in journal(tmp_path) if r.get("s") == "submitted") == sorted(api.generations)


def test_a_host_s_chdir_while_the_batch_runs_moves_nothing(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # out_dir was kept relative: a host changing its working directory while the batch ran in a thread (a notebook's
    # %cd) stopped it with "mybatch was moved, renamed or deleted while the batch ran".
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)

    def host_moves_on(progress: BatchProgress) -> None:
        if progress.event == "start":
            os.chdir(tmp_path / "elsewhere")

    summary = run(ApiDouble(), PROMPTS[:2], "mybatch", on_progress=host_moves_on)
    assert summary.ok and summary.out_dir == "mybatch"  # as given
    assert states(tmp_path / "mybatch") == {0: "complete", 1: "complete"} and os.listdir(".") == []
    os.rmdir(tmp_path / "elsewhere")  # a working directory deleted: a relative out_dir cannot be found
    with pytest.raises(LeonardoError, match="^could not create folder 'mybatch': No such file or directory$"):
        run(ApiDouble(), PROMPTS[:2], "mybatch")


@pytest.mark.parametrize("where", ["a thread", "the main thread"])
def test_a_callback_that_stops_a_batch_in_a_thread_is_no_second_ctrl_c(tmp_path: Any, where: str) -> None:
    # A host stops a batch run in a thread (no Ctrl-C reaches one) by raising KeyboardInterrupt from on_progress, at
    # every event once its own flag is set: its raise at "stopping" was a second Ctrl-C, "quit at once": no
    # BatchInterrupted, and the answers under way were not journaled. On the main thread it still is one (a real
    # second Ctrl-C cannot be told from it there).
    def progress(event: BatchProgress) -> None:
        if event.event in ("submitted", "stopping"):
            raise KeyboardInterrupt

    api, outcome = UnderWayTogether(), []

    def go() -> None:
        try:
            run(api, PROMPTS[:3], str(tmp_path), concurrency=3, on_progress=progress)
        except BaseException as exc:
            outcome.append(exc)

    if where == "a thread":
        thread = threading.Thread(target=go)
        thread.start()
        thread.join(10)
    else:
        go()
    assert type(outcome[0]) is (BatchInterrupted if where == "a thread" else KeyboardInterrupt)
    if where == "a thread":  # the answers under way journaled
        assert sorted(r["id"] for r in journal(tmp_path) if r.get("s") == "submitted") == sorted(api.generations)


@pytest.mark.parametrize("full_for", ["the page", "the journal"])
def test_a_ctrl_c_on_a_disk_filled_meanwhile_is_still_an_interrupted_batch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, full_for: str
) -> None:
    # The stop's last page (or the record of an answer still under way) failing raised its LeonardoError from the
    # stop: not BatchInterrupted, and the CLI said an error (exit 1, SIGTERM's not 143) without "rerun".
    full, write = threading.Event(), batch.write_gallery

    class FullOnceStopped(DiskFillingUp):
        def write(self, data: Any) -> int:
            if full.is_set():
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.file.write(data))

    def page(*args: Any) -> None:
        if full.is_set():
            raise LeonardoError("could not write 'index.html': No space left on device")
        write(*args)

    if full_for == "the page":
        monkeypatch.setattr(batch, "write_gallery", page)
    else:
        wrap_journal_file(monkeypatch, FullOnceStopped)

    def progress(event: BatchProgress) -> None:
        if event.event == "submitted" and not full.is_set():  # once (twice: "quit at once"); the others under way
            full.set()
            raise KeyboardInterrupt

    api = UnderWayTogether()
    with pytest.raises(BatchInterrupted) as stopped:
        run(api, PROMPTS[:3], str(tmp_path), concurrency=3, on_progress=progress)
    assert stopped.value.summary.interrupted and len(api.generations) == 3
    full.clear()
    assert run(api, PROMPTS[:3], str(tmp_path)).ok and api.calls.count("POST") == 3  # each billed once


def test_a_ctrl_c_in_a_folder_moved_meanwhile_says_where_to_rerun_it(tmp_path: Any) -> None:
    # The stop's errors are not the stop's failure (above), but BatchInterrupted would say "rerun the same command":
    # here, a new batch in the old path, whose items would be sent again.
    old = tmp_path / "batch"

    def progress(event: BatchProgress) -> None:
        if event.event == "submitted" and old.exists():
            os.rename(old, tmp_path / "moved")
            raise KeyboardInterrupt

    with pytest.raises((LeonardoError, BatchInterrupted)) as caught:  # BatchInterrupted caught: not the session's stop
        run(UnderWayTogether(), PROMPTS[:3], str(old), concurrency=3, on_progress=progress)
    moved = "was moved, renamed or deleted while the batch ran: rerun it in its new place"
    assert str(caught.value) == f"{named(old)} {moved}"


def test_a_ctrl_c_after_the_journal_was_deleted_says_so_not_rerun(tmp_path: Any) -> None:
    # The drain's "could not write" was dropped with the disk-full ones: BatchInterrupted said "rerun the same
    # command", and the rerun was refused as "not a batch's folder".
    def progress(event: BatchProgress) -> None:
        if event.event == "submitted" and (tmp_path / "journal.jsonl").exists():
            os.remove(tmp_path / "journal.jsonl")
            raise KeyboardInterrupt

    with pytest.raises((LeonardoError, BatchInterrupted)) as caught:  # BatchInterrupted caught: not the session's stop
        run(UnderWayTogether(), PROMPTS[:3], str(tmp_path), concurrency=3, on_progress=progress)
    deleted = "it was deleted while the batch ran"
    assert str(caught.value) == f"could not write {named(tmp_path / 'journal.jsonl')}: {deleted}"


def test_a_ctrl_c_with_the_journal_s_file_unreadable_is_still_an_interrupted_batch(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looking for a deleted journal, the stop's last check raised the OSError (a stale NFS handle) itself.
    fstat, stale = os.fstat, threading.Event()

    def journal_fstat(fd: int) -> Any:
        if stale.is_set() and os.path.samestat(fstat(fd), os.stat(tmp_path / "journal.jsonl")):
            raise OSError(errno.ESTALE, "Stale file handle")
        return fstat(fd)

    def progress(event: BatchProgress) -> None:
        if event.event == "submitted" and not stale.is_set():
            stale.set()
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fstat", journal_fstat)
    with pytest.raises(BatchInterrupted):
        run(UnderWayTogether(), PROMPTS[:3], str(tmp_path), concurrency=3, on_progress=progress)


class UnderWayTogether(ApiDouble):
    """The first create call answers once three are sent, the others 0.2 s later: under way as it is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.under_way = threading.Barrier(3)

    def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
        self.under_way.wait(5)
        if body["prompt"] != PROMPTS[0]["prompt"]:
            time.sleep(0.2)
        return super().create_generation(body)


class FirstDownloadHeld(ApiDouble):
    """Its first download waits for ``release``, after saying it has begun."""

    def __init__(self) -> None:
        super().__init__(delay=0.0)
        self.begun, self.release = threading.Event(), threading.Event()

    def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
        if not self.begun.is_set():
            self.begun.set()
            self.release.wait(10)
        return super().save_results(result, folder)


def test_a_download_under_way_when_the_batch_stops_writes_nothing_and_a_rerun_in_the_process_resumes(
    tmp_path: Any,
) -> None:
    api = FirstDownloadHeld()
    stopped: List[BatchProgress] = []

    def interrupt(progress: BatchProgress) -> None:
        if api.begun.is_set() and progress.event != "stopping" and not stopped:  # another item's, while the first download is held
            stopped.append(progress)  # once: a second Ctrl-C (an event while stopping) would quit at once
            raise KeyboardInterrupt

    before = set(threading.enumerate())
    with pytest.raises(BatchInterrupted):
        run(api, PROMPTS[:3], str(tmp_path), on_progress=interrupt)
    files = sorted(name for name in os.listdir(tmp_path) if name != ".incoming")
    api.release.set()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(name for name in os.listdir(tmp_path) if name != ".incoming") == files  # the held download
    summary = run(api, PROMPTS[:3], str(tmp_path))
    assert summary.ok and summary.images == 3 and not os.path.exists(tmp_path / ".incoming")


DENIED = {"error": "Authentication hook unauthorized this request", "path": "$", "code": "access-denied"}
# Leonardo's answer, a 500, to a key that is not a UUID (API_FACTS 1.2): refused by its auth hook, nothing made.
AUTH_HOOK_FAILED = {"error": "Invalid response from authorization hook", "path": "$", "code": "unexpected"}


def answered_with(status: int, body: Dict[str, Any], key: str = "not-a-uuid") -> LeonardoError:
    """The LeonardoError the client builds for an answer of ``status`` and ``body`` to a call made with ``key``."""
    response = requests.Response()
    response.status_code, response.url, response._content = status, "https://api.example.test/v1", json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return LeonardoError.from_response(response, key=key)


@pytest.mark.parametrize("status, body", [(401, None), (403, DENIED), (500, AUTH_HOOK_FAILED)])
def test_a_rejected_key_stops_the_batch_with_the_error(tmp_path: Any, status: int, body: Any) -> None:
    # A malformed key's 500 was read as any 5xx: the item reconciled, left ambiguous, the batch paused, not stopped.
    api = ApiDouble()
    refused = answered_with(status, body or {"error": "invalid api key"})
    api.before_post = [refused]
    with pytest.raises(LeonardoError, match=re.escape(refused.message)):
        # A POST a second: at the default test pace (1 ms apart) the next ones were sent before the
        # 401's answer was handled (up to slots + 2 are in flight by design) whenever it took > 10 ms.
        run(api, PROMPTS, str(tmp_path), concurrency=1, posts_per_minute=60)
    assert api.calls.count("POST") == 1 and set(states(tmp_path).values()) == {"planned"}
    summary = run(api, PROMPTS, str(tmp_path), concurrency=1)  # a rerun (the key fixed) resumes: each made once
    assert summary.complete == len(PROMPTS) and api.calls.count("POST") == 1 + len(PROMPTS)


def test_a_429_answered_after_the_key_was_refused_does_not_replace_the_key_s_error(tmp_path: Any) -> None:
    # Three create calls under way: #1 refused with a 429, #2 with a 401, #3 with a 429 after item_timeout ran out.
    # The batch stops with the 401 (a rerun needs a good key), not "no create call went through ...; rerun to resume".
    rejected = answered_with(401, {"error": "invalid api key"})

    class Answers(ApiDouble):
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            self.calls.append("POST")
            n = int(params["prompt"].rsplit(" ", 1)[1])
            time.sleep((0.05, 0.1, 0.5)[n])
            raise rejected if n == 1 else LeonardoError("Too many requests", status_code=429, retry_after=5.0)

    with pytest.raises(LeonardoError, match=re.escape(rejected.message)):
        run(Answers(slots=10), PROMPTS[:3], str(tmp_path), item_timeout=0.3)


def test_the_auth_hooks_500_to_a_uuid_key_passes_and_the_item_is_sent_again(tmp_path: Any) -> None:
    # For a key of the right shape it is the hook failing (API_FACTS 1.2), nothing made: it stopped the batch.
    api = ApiDouble()
    api.before_post = [answered_with(500, AUTH_HOOK_FAILED, key="0f3c6a52-8a1e-4b7d-9c2f-5e6d7a8b9c0d")]
    summary = run(api, PROMPTS[:2], str(tmp_path), concurrency=1)
    assert summary.complete == 2 and api.calls.count("POST") == 3 and len(api.generations) == 2


def test_a_prompt_refused_by_moderation_fails_its_item_and_the_batch_goes_on(tmp_path: Any) -> None:
    # API_FACTS 1.2: moderation is a 403 with code "unexpected"; taken for a refused key, every rerun stopped there.
    api = ApiDouble()
    flagged = {"error": "Your prompt appears to contain inappropriate content: lighthouse", "path": "$", "code": "unexpected"}
    api.before_post = [None, LeonardoError(flagged["error"], status_code=403, body=flagged)]
    summary = run(api, PROMPTS[:4], str(tmp_path), concurrency=1)
    assert (summary.complete, summary.failed) == (3, 1) and api.calls.count("POST") == 4
    assert states(tmp_path) == {0: "complete", 1: "failed", 2: "complete", 3: "complete"}
    assert "inappropriate content" in [r for r in journal(tmp_path) if r.get("i") == 1][-1]["reason"]


# --- answers of another shape than the spec's ---------------------------------------------------


class Reshaped(ApiDouble):
    """The listing's and the GET's answers passed through ``listing`` and ``by_id``; the POSTs as the spec says.

    Ids are checked as the Client checks them (" " or ".." is a ValueError before anything is sent).
    """

    def __init__(self, listing: Any = None, by_id: Any = None) -> None:
        super().__init__()
        self.listing, self.by_id = listing or (lambda answer: answer), by_id or (lambda answer, gid: answer)
        self.saved: List[str] = []

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        _path("generations", "user", user_id)
        return self.listing(super().get_generations_by_user_id(user_id, limit, offset))  # type: ignore[no-any-return]

    def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
        return self.by_id(super().get_generation_by_id(_path("generations", gid) and gid), gid)  # type: ignore[no-any-return]

    def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
        self.saved.append(result["id"])
        return super().save_results(result, folder)


def entries(change: Any) -> Any:
    """A listing reshaper: ``change`` applied to a copy of each entry."""
    return lambda answer: {"generations": [change(dict(g)) for g in answer["generations"]]}


SEEDED = [{"prompt": "a red fox", "width": 1024, "height": 768, "seed": 7}]


def test_a_wall_clock_stepped_ahead_during_the_run_does_not_send_an_item_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, real_time, lost = ApiDouble(), time.time, []  # type: ignore[var-annotated]
    original_view, original_create = api._view, api._create

    def view(g: Dict[str, Any]) -> Dict[str, Any]:  # once one is seen COMPLETE (the clock learned), ours jumps 2 h
        shown = original_view(g)
        if shown["status"] == "COMPLETE":
            monkeypatch.setattr(time, "time", lambda: real_time() + 7200)
        return shown

    def create(params: Dict[str, Any], model_id: Any) -> str:  # #4, sent after the jump, is made, its answer lost
        if params["prompt"] == PROMPTS[3]["prompt"] and not lost:
            lost.append(True)
            api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
        return original_create(params, model_id)

    api._view, api._create = view, create  # type: ignore[method-assign]
    summary = run(api, PROMPTS[:4], str(tmp_path), concurrency=1)  # 1 in flight at most: #4 waits for a COMPLETE
    assert summary.complete == 4 and api.calls.count("POST") == 4  # #4 was filtered out as older: sent again
    assert '"adopted":true' in (tmp_path / "journal.jsonl").read_text(encoding="utf-8")


def test_a_generation_the_listing_does_not_show_is_asked_by_id_as_a_wait_asks(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gap grew by a 1.5 and up to a 12.0 of batch's own, copies of the client's backoff and cap.
    monkeypatch.setattr(client_module, "POLL_BACKOFF", 2.0)
    monkeypatch.setattr(client_module, "MAX_POLL_INTERVAL", 6.0)
    engine = batch._Engine(ApiDouble(), [BatchItem("a fox")], str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    engine.journal.close()
    engine.user_id = None  # no listing: every round asks by id the items due
    item = engine.items[0]
    item.generation_id = "0e5c3a52-9d5b-4c5e-8f57-1a2b3c4d5e6f"
    engine.members["planned"].discard(0)
    engine.members["submitted"].add(0)
    gaps, now = [], time.monotonic()
    for _ in range(6):
        now = max(now, item.check_at)
        engine.start_poll(now)
        gaps.append(item.check_at - now)
    assert gaps == pytest.approx([client_module.POLL_INTERVAL, 2.0, 4.0, 6.0, 6.0, 6.0])


@pytest.mark.skipif(not hasattr(time, "CLOCK_BOOTTIME"), reason="Linux's clock that counts time asleep")
def test_the_batch_clock_goes_on_while_the_machine_sleeps(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = batch._Engine(ApiDouble(), [BatchItem("a fox")], str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    engine.journal.close()
    before = engine.wall_time()
    frozen = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: frozen)  # as it stands still while a laptop sleeps (Linux, macOS)
    time.sleep(0.2)
    assert engine.wall_time() - before >= 0.15  # a rerun compares it with time.time(): it read as earlier


def seed_as_digits(g: Dict[str, Any]) -> Dict[str, Any]:
    return dict(g, seed=str(g["seed"]))


NEGATIVE_SEED = [  # seedance-1.0-pro requires a quantity
    {"prompt": "a red fox", "model": "seedance-1.0-pro", "width": 1024, "height": 768, "seed": -1, "num_images": 1}
]


@pytest.mark.parametrize(
    "change, items",
    [
        (seed_as_digits, SEEDED),
        (lambda g: dict(g, imageWidth=str(g["imageWidth"]), imageHeight=" 768 "), SEEDED),
        (seed_as_digits, NEGATIVE_SEED),  # "-1" (seedance's random seed) is a number too
        (lambda g: dict(g, imageWidth=1024.0, imageHeight=768.0), SEEDED),  # JSON's 1024.0: a float, the same number
    ],
)
def test_reconciliation_reads_numbers_written_as_digits_or_floats(tmp_path: Any, change: Any, items: Any) -> None:
    api = Reshaped(listing=entries(change))  # a bigint seed may come as "905778432"
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    assert run(api, items, str(tmp_path)).ok and api.calls.count("POST") == 1  # was sent again: billed twice


def test_a_value_the_item_leaves_to_the_api_is_not_compared(tmp_path: Any) -> None:
    api = Reshaped(listing=entries(lambda g: dict(g, seed="seven")))
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    assert run(api, [{"prompt": "a red fox"}], str(tmp_path)).ok and api.calls.count("POST") == 1  # adopted


@pytest.mark.parametrize(
    "listing",
    [
        lambda answer: {},  # an empty body
        lambda answer: {"generations": None},
        lambda answer: {"generations": {"0": answer["generations"]}},
        lambda answer: {"generations": [str(g["id"]) for g in answer["generations"]]},
        entries(lambda g: dict(g, id=None)),  # the spec's uuid is nullable
        entries(lambda g: dict(g, createdAt=1733356800)),
        entries(lambda g: dict(g, seed="seven")),
    ],
)
def test_a_listing_of_another_shape_proves_nothing(tmp_path: Any, listing: Any) -> None:
    api = Reshaped(listing=listing)
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    summary = run(api, SEEDED, str(tmp_path))
    assert (summary.ambiguous, api.calls.count("POST")) == (1, 1)  # was "never created": sent again


def test_an_entry_without_an_id_does_not_end_the_paging() -> None:
    now = datetime.now(timezone.utc).isoformat()
    first = [{"id": None, "createdAt": now}] + [{"id": f"other-{n}", "createdAt": now} for n in range(49)]
    listing = first + [{"id": "ours", "createdAt": now}]  # the first page, then ours

    class Pages:
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            return {"generations": listing[offset : offset + limit]}

    listed, complete = batch._list_since(Pages(), "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert "ours" in [g["id"] for g in listed] and complete == "1 of its entries could not be read"


@pytest.mark.parametrize("odd", [{}, {"generations_by_pk": []}])
def test_a_get_of_another_shape_is_asked_again_not_taken_for_gone(tmp_path: Any, odd: Dict[str, Any]) -> None:
    answers = [odd] * 3
    api = Reshaped(by_id=lambda answer, gid: answers.pop() if answers else answer)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok  # was failed: "the generation no longer exists"


def test_a_get_about_another_generation_is_not_taken(tmp_path: Any) -> None:
    image = {"id": "img-0", "url": "https://cdn.invalid/gen-0/0.png"}
    other = [{"generations_by_pk": {"id": "gen-0", "status": "COMPLETE", "generated_images": [image]}}]
    api = Reshaped(by_id=lambda answer, gid: other.pop() if other else answer)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.saved == ["gen-1"]  # was gen-0's images


def in_capitals(generation: Dict[str, Any]) -> Dict[str, Any]:
    return dict(generation, id=generation["id"].upper())


class MadeTogether(Reshaped):
    """Its generations are all made at the first one's time: none is COMPLETE while it is polled alone (by GET)."""

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        gid = super()._create(params, model_id)
        self.generations[gid]["created"] = self.generations["gen-1"]["created"]
        return gid


@pytest.mark.parametrize("listed", [False, True])
def test_an_answer_spelling_the_id_in_capitals_is_taken(tmp_path: Any, listed: bool) -> None:
    # A uuid in either case is the same id (the client's wait takes it so): the batch asked again until item_timeout,
    # the generation COMPLETE all along. Listed: two in flight, the listing is read; the GETs say PENDING.
    if listed:
        pending = lambda answer, gid: {"generations_by_pk": dict(answer["generations_by_pk"], status="PENDING")}
        api: Reshaped = MadeTogether(listing=entries(in_capitals), by_id=pending)
    else:
        api = Reshaped(by_id=lambda answer, gid: {"generations_by_pk": in_capitals(answer["generations_by_pk"])})
    summary = run(api, PROMPTS[: 2 if listed else 1], str(tmp_path), item_timeout=5.0)
    assert summary.ok and sorted(api.saved) == ["GEN-1", "GEN-2"][: 2 if listed else 1]  # was 0 complete, pending


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_create_answer_with_another_items_id_is_ambiguous(tmp_path: Any) -> None:
    class SameId(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            answer = super().create_generation(body)
            answer["sdGenerationJob"]["generationId"] = "gen-1"
            return answer

    summary = run(SameId(), PROMPTS[:2], str(tmp_path), concurrency=1, item_timeout=5.0)
    assert (summary.complete, summary.ambiguous) == (1, 1)  # the first was left waiting, the second had its images


def test_a_create_answer_with_another_items_id_in_capitals_is_ambiguous(tmp_path: Any) -> None:
    class SecondNamesTheFirst(ApiDouble):  # a GET finds a generation by its id in either case, and answers it so
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            answer = super().create_generation(body)
            if len(self.generations) == 2:
                answer["sdGenerationJob"]["generationId"] = "GEN-1"
            return answer

        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            return {"generations_by_pk": dict(super().get_generation_by_id(gid.lower())["generations_by_pk"], id=gid)}

    summary = run(SecondNamesTheFirst(), PROMPTS[:2], str(tmp_path), concurrency=1, item_timeout=5.0)
    assert (summary.complete, summary.ambiguous) == (1, 1)  # was 2 complete: the second saved the first's images


@pytest.mark.parametrize("made", [True, False])
def test_a_create_answer_without_a_generation_id_is_reconciled(tmp_path: Any, made: bool) -> None:
    # Every job key is nullable, and a 200 may hold an error (API_FACTS 1.3): whether it made one, the listing tells.
    class NoJobOnce(ApiDouble):
        answered = False

        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            if self.answered:
                return super().create_generation(body)
            self.answered = True
            super().create_generation(body) if made else self.calls.append("POST")
            return {"sdGenerationJob": None, "errors": [{"message": "Not enough tokens"}]}

    api, events = NoJobOnce(), []
    summary = run(api, PROMPTS[:2], str(tmp_path), concurrency=1, on_progress=lambda p: events.append(p.message))
    assert summary.ok and len(api.generations) == 2  # was left ambiguous for good, rerun or not
    assert api.calls.count("POST") == (2 if made else 3)  # adopted, or sent again once found never created
    said, pause = [m for m in events if "no generation id in the response: Not enough tokens" in m], batch.DEFAULT_PAUSE
    assert said and said[0].endswith(f"; reconciling with the account's generations; pausing submissions {pause:.1f}s")


def test_a_create_call_answered_500_pauses_submissions(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # It did not: in an outage the batch sent at its pace till a reconciliation's listing failed, and each create call
    # sent meanwhile was left ambiguous for the run. One call at a time: the next is sent after the 500 is read.
    monkeypatch.setattr(batch, "MAX_POSTS_AT_ONCE", 1)
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", 0.3)  # the bug's gap is the pace's: a millisecond or two
    sent: List[float] = []

    class Timed(ApiDouble):
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            sent.append(time.monotonic())
            return super()._create(params, model_id)

    api, events = Timed(), []
    api.before_post = [LeonardoError("Internal Server Error", status_code=500)]  # not made: sent again
    summary = run(api, PROMPTS[:2], str(tmp_path), on_progress=lambda p: events.append(p.message))
    assert summary.ok and api.calls.count("POST") == 3
    assert sent[1] - sent[0] >= 0.5 * batch.DEFAULT_PAUSE  # was a millisecond or two: the pace's gap
    said = "#1: HTTP 500: Internal Server Error; reconciling with the account's generations; pausing submissions"
    assert f"{said} {batch.DEFAULT_PAUSE:.1f}s" in events


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_poll_round_whose_listing_or_get_failed_is_asked_again(tmp_path: Any) -> None:
    api = ApiDouble()
    api.listing_error = LeonardoError("Internal Server Error", status_code=500)  # every poll round: GETs instead
    # Popped from the end: a RuntimeError (another client's bug, not a LeonardoError) ends its round, then a 503
    unavailable = [LeonardoError("Service Unavailable", status_code=503), RuntimeError("not a LeonardoError")]
    get = api.get_generation_by_id

    def flaky_get(gid: str) -> Dict[str, Any]:
        if unavailable:
            raise unavailable.pop()
        return get(gid)

    api.get_generation_by_id = flaky_get  # type: ignore[method-assign]
    summary = run(api, PROMPTS[:3], str(tmp_path), item_timeout=5.0)
    assert (summary.complete, api.calls.count("POST"), unavailable) == (3, 3, [])


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize(
    "listing", [lambda answer: {"generations": answer["generations"] + ["junk"]}, lambda answer: {"generations": 7}]
)
def test_a_poll_listing_of_another_shape_falls_back_to_gets(tmp_path: Any, listing: Any) -> None:
    api = Reshaped(listing=listing)
    assert run(api, PROMPTS[:3], str(tmp_path), item_timeout=3.0).ok  # every poll round failed: left pending


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("retry_after, listing_limited, storm", [
    (0.25, True, 0.5), (None, True, 0.5),
    (0.5, False, 1.0),  # not halved: its GETs by id, refused in the storm, are asked again 1 s, 1.5 s... apart
])  # fmt: skip
def test_a_429_on_a_poll_ends_its_round_and_holds_the_next_back(
    tmp_path: Any, retry_after: Optional[float], listing_limited: bool, storm: float
) -> None:
    # The account's rate limit spent (another program on it): each round fell back to a GET per generation, each
    # 429 ignored. Now a round's first 429 ends it, and the next waits its Retry-After (else 0.05 s, doubling).
    began = [0.0]
    refused: List[str] = []  # the calls answered 429
    events: List[str] = []
    api = Reshaped() if listing_limited else Reshaped(listing=lambda answer: {"generations": 7})  # GETs instead

    def rate_limited(call: Callable[..., Dict[str, Any]]) -> Callable[..., Dict[str, Any]]:
        def answer(*args: Any, **kwargs: Any) -> Dict[str, Any]:
            began[0] = began[0] or time.monotonic()  # from the first poll's call
            if time.monotonic() - began[0] < storm:
                refused.append(call.__name__)
                raise LeonardoError("HTTP 429: Too Many Requests", status_code=429, retry_after=retry_after)
            return call(*args, **kwargs)

        return answer

    api.get_generation_by_id = rate_limited(api.get_generation_by_id)  # type: ignore[method-assign]
    if listing_limited:
        api.get_generations_by_user_id = rate_limited(api.get_generations_by_user_id)  # type: ignore[method-assign]
    summary = run(api, PROMPTS, str(tmp_path), concurrency=6, on_progress=lambda p: events.append(p.message))
    assert summary.ok and api.calls.count("POST") == len(PROMPTS)
    # One 429 a round, the rounds at least the pause apart (0.05 * (2 ** 6 - 1) s > storm); it was 6 GETs a round.
    assert len(refused) <= (storm / retry_after + 1 if retry_after else 6), refused
    assert any(m.startswith("rate limited while polling: next poll in ") for m in events)


def test_a_polls_429_keeps_the_next_rounds_away_for_its_retry_after(tmp_path: Any) -> None:
    gets: List[float] = []  # when each GET by id came (one item in flight: no listing)

    class RateLimited(ApiDouble):
        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            gets.append(time.monotonic())
            if len(gets) == 1:
                raise LeonardoError("HTTP 429: Too Many Requests", status_code=429, retry_after=0.6)
            return super().get_generation_by_id(gid)

    assert run(RateLimited(delay=0.5), PROMPTS[:1], str(tmp_path)).ok  # done by the time the 429's wait is over
    # The rounds' own schedule (FIRST_POLL 0.02 s here, growing 1.5 times) asked again 0.02, 0.05, 0.1, 0.16 and
    # 0.26 s after the 429, each GET spending more of the rate limit the account's other programs share.
    assert [round(t - gets[0], 2) for t in gets[1:] if t - gets[0] < 0.3] == []


def test_a_listing_that_says_complete_with_no_image_is_asked_by_id(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listing served behind the GET by id (its images not joined in yet) was believed for the grace: both items left
    # ambiguous, "COMPLETE with no image", paid for, though a GET by id, the documented poll, had them all along.
    monkeypatch.setattr(batch, "EMPTY_GRACE", 5.0)  # not the shipped minute: without the fix, it fails sooner
    api = Reshaped(listing=entries(lambda g: dict(g, status="COMPLETE", generated_images=[])))
    api.delay = 0.3
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert (summary.complete, summary.ambiguous, summary.images) == (2, 0, 2) and "LIST" in api.calls


def test_a_polls_429_holds_the_next_round_back_its_retry_after(tmp_path: Any) -> None:
    items = batch._as_items(PROMPTS[:1])
    engine = batch._Engine(ApiDouble(), items, str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        before = time.monotonic()
        engine.hold_polls(LeonardoError("HTTP 429: Too Many Requests", status_code=429, retry_after=20.0))
        assert engine.poll_at >= before + 20.0  # not the next poll gap's time, a fraction of a second away
    finally:
        engine.journal.close()


def test_a_polls_429_holds_the_next_round_back_a_minute_at_most_else_doubling_from_2_s(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", SHIPPED_DEFAULT_PAUSE)
    events: List[BatchProgress] = []
    items = batch._as_items(PROMPTS[:1])
    engine = batch._Engine(ApiDouble(), items, str(tmp_path), 60000, events.append, 60.0)  # type: ignore[arg-type]
    try:
        def limited(retry_after: Optional[float]) -> LeonardoError:
            return LeonardoError("HTTP 429: Too Many Requests", status_code=429, retry_after=retry_after)

        engine.hold_polls(limited(3600.0))  # an hour asked for: a minute
        engine.hold_polls(None)  # a round that went through: the pause starts again from 2 s
        for _ in range(7):
            engine.hold_polls(limited(None))
    finally:
        engine.journal.close()
    waits = [e.message.replace("rate limited while polling: next poll in ", "") for e in events]
    assert waits == ["60.0s", "2.0s", "4.0s", "8.0s", "16.0s", "32.0s", "60.0s", "60.0s"]


@pytest.mark.parametrize("job_time, gap", [(0.3, 0.1), (12.0, 2.0), (600.0, 5.0)])
def test_poll_rounds_come_at_a_sixth_of_the_job_time_from_0_1_to_5_s(
    tmp_path: Any, job_time: float, gap: float
) -> None:
    items = batch._as_items(PROMPTS[:1])
    engine = batch._Engine(ApiDouble(), items, str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        engine.job_times.append(job_time)
        engine.polled(({}, None), None)  # a round that found nothing new
    finally:
        engine.journal.close()
    assert engine.poll_gap == pytest.approx(gap)


def test_poll_rounds_grow_to_5_s_apart_before_a_job_time_is_seen(tmp_path: Any) -> None:
    items = batch._as_items(PROMPTS[:1])
    engine = batch._Engine(ApiDouble(), items, str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        for _ in range(30):
            engine.polled(({}, None), None)
    finally:
        engine.journal.close()
    assert engine.poll_gap == 5.0


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_user_id_no_path_can_hold_is_not_used(tmp_path: Any) -> None:
    api = Reshaped()
    api.get_user_info = lambda: {"user_details": [{"user": {"id": " "}, "apiConcurrencySlots": 3}]}  # type: ignore[method-assign]
    assert run(api, PROMPTS[:3], str(tmp_path), item_timeout=3.0).ok  # every listing failed: left pending


def test_a_seed_json_cannot_carry_is_not_journaled(tmp_path: Any) -> None:
    # Written as "seed": Infinity, it was a line the journal's reader refuses: the rerun found the journal damaged.
    class HugeSeed(ApiDouble):
        def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
            return dict(super()._view(g), seed=float("inf"))

    assert run(HugeSeed(), PROMPTS[:2], str(tmp_path)).ok
    assert [r for r in journal(tmp_path) if r.get("s") == "complete" and "seed" in r] == []
    assert run(HugeSeed(), PROMPTS[:2], str(tmp_path)).ok


@pytest.mark.parametrize("cost", [{"amount": "NaN"}, {"amount": "two"}, None])  # None: the job tells no cost
def test_a_cost_that_is_no_number_is_left_out_of_the_total(tmp_path: Any, cost: Optional[Dict[str, str]]) -> None:
    class OddCost(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            answer = super().create_generation(body)
            if len(self.generations) == 1:
                answer["sdGenerationJob"]["cost"] = dict(answer["sdGenerationJob"]["cost"], **cost) if cost else None
            return answer

    summary = run(OddCost(), PROMPTS[:3], str(tmp_path))
    assert dict(summary.credits) == {"DOLLARS": pytest.approx(0.02)}  # was {}
    assert summary.cost_unknown == 1


# --- reconciliation ---------------------------------------------------------------------------


def test_a_post_that_ran_but_lost_its_answer_is_adopted_not_sent_again(tmp_path: Any) -> None:
    api = ApiDouble()
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    summary = run(api, PROMPTS, str(tmp_path))
    assert summary.ok and api.calls.count("POST") == len(PROMPTS)
    adopted = [r for r in journal(tmp_path) if r.get("adopted")]
    assert len(adopted) == 1 and adopted[0]["id"] == "gen-1"
    # Its cost was in the lost answer: the total says so instead of counting it as nothing.
    assert summary.cost_unknown == 1 and dict(summary.credits) == {"DOLLARS": pytest.approx(0.01 * (len(PROMPTS) - 1))}
    assert "spent: 0.0{} dollars, 1 generation of unknown cost;".format(len(PROMPTS) - 1) in str(summary)


def test_a_post_that_never_ran_is_sent_again_after_the_read_timeout(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # no cause: may have run
    started = time.monotonic()
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 3 and len(api.generations) == 2
    assert time.monotonic() - started > sum(api.timeout)  # not re-sent before its window (connect and read timeouts) passed
    assert any("never created" in r.get("reason", "") for r in journal(tmp_path))


def test_the_read_timeout_is_the_clients_as_it_is_now(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not

    def slower_answers(progress: BatchProgress) -> None:
        if progress.event == "start":
            api.timeout = (0.2, 0.6)  # set while the batch runs: a POST may now run 0.8 s at the server

    started = time.monotonic()
    assert run(api, PROMPTS[:1], str(tmp_path), on_progress=slower_answers).ok
    assert time.monotonic() - started > 0.75 and api.calls.count("POST") == 2  # not re-sent after the old 0.3 s


def test_a_read_timeout_lowered_after_a_post_still_covers_that_post(tmp_path: Any) -> None:
    api = ApiDouble()
    api.timeout = (0.2, 0.6)
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not

    def faster_answers(progress: BatchProgress) -> None:
        if progress.event == "waiting":
            api.timeout = (0.2, 0.1)  # the POST already sent may still run 0.8 s at the server

    started = time.monotonic()
    assert run(api, PROMPTS[:1], str(tmp_path), on_progress=faster_answers).ok
    assert time.monotonic() - started > 0.75 and api.calls.count("POST") == 2


def test_a_rerun_waits_out_the_read_timeout_the_post_was_sent_under(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("invalid dimensions", status_code=400)]
    run(api, PROMPTS[:1], str(tmp_path))  # the item failed; as if a crash came while its POST ran:
    with open(os.path.join(str(tmp_path), "journal.jsonl"), "a") as f:
        f.write(json.dumps({"i": 0, "s": "submitting", "t": time.time(), "rt": 0.8}) + "\n")
    started = time.monotonic()
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok  # the rerun's timeout is 0.3 s (0.2 + 0.1)
    assert time.monotonic() - started > 0.75  # not sent again while that POST could still run
    sent = [r for r in journal(tmp_path) if r.get("s") == "submitting"][-1]
    assert sent["rt"] == sum(ApiDouble.timeout)  # what each create call is journaled with: connect and read


def test_a_post_under_one_timeout_for_both_is_journaled_with_twice_it(tmp_path: Any) -> None:
    api = ApiDouble()
    api.timeout = 0.4  # type: ignore[assignment]  # a Client's one number: the connect and the read timeout each
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    assert [r["rt"] for r in journal(tmp_path) if r.get("s") == "submitting"] == [0.8]


def test_a_rerun_waits_out_its_clients_timeout_for_a_post_journaled_without_its_own(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("invalid dimensions", status_code=400)]
    run(api, PROMPTS[:1], str(tmp_path))  # the item failed; as if a crash came while its POST ran, journaled
    with open(os.path.join(str(tmp_path), "journal.jsonl"), "a") as f:  # by a version that wrote no "rt"
        f.write(json.dumps({"i": 0, "s": "submitting", "t": time.time()}) + "\n")
    rerun = ApiDouble()
    rerun.timeout = (0.2, 0.6)
    started = time.monotonic()
    assert run(rerun, PROMPTS[:1], str(tmp_path)).ok
    assert time.monotonic() - started > 0.75  # not sent again while that POST could still run


@pytest.mark.parametrize("made, sent_as", [
    ("as the rerun starts", {}), ("100 s after its time", {}),
    ("as the rerun starts", {"rt": 0.3}),  # 99a120b to b88d34d: its POST retried after a 429, up to 180 s later
])
def test_a_post_an_older_version_journaled_as_queued_is_waited_out_from_the_rerun_s_start(
    tmp_path: Any, made: str, sent_as: Dict[str, Any]
) -> None:
    # Before 99a120b "submitting" was journaled as the create call was queued (no "rt"), not as it went: one sent 200 s
    # later, behind downloads, was made as the rerun started, which counted its window from "t" and sent it again.
    class MadeLate(ApiDouble):  # the old run's call reaches the server just after the rerun's first listing
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            answer = super().get_generations_by_user_id(user_id, limit, offset)
            if not self.generations:
                self._create(dict(PROMPTS[0]), None)
            return answer

    api, queued = MadeLate(), time.time() - 200
    api.timeout = (0.2, 1.0)  # a window the rerun's first listing surely comes within, loaded machine or not
    if made != "as the rerun starts":  # made long before the rerun: still read back for, from "t"
        api._create(dict(PROMPTS[0]), None)
        api.generations["gen-1"]["createdAt"] = _iso(queued + 100)
    records = [{"i": 0, "s": "submitting", "t": queued, **sent_as}]  # an older version's: no run's id
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    assert list(api.generations) == ["gen-1"] and api.calls.count("POST") == 1  # adopted: not sent again


def test_an_item_whose_window_passed_while_the_listing_was_read_is_looked_for_again_look_again_later(
    tmp_path: Any,
) -> None:
    class SlowFirstListing(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            started = time.monotonic()
            if not listed:  # asked for inside the POST's window, answered past it and past LOOK_AGAIN
                time.sleep(sum(self.timeout) + batch.LOOK_AGAIN + 0.1)
            answer = super().get_generations_by_user_id(user_id, limit, offset)
            listed.append((started, time.monotonic()))
            return answer

    listed: List[Tuple[float, float]] = []
    api = SlowFirstListing()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 2
    assert listed[1][0] - listed[0][1] >= batch.LOOK_AGAIN  # was at once: the wait left was below 0


def test_one_reconciliation_reads_the_listing_at_a_time(tmp_path: Any) -> None:
    class SlowListing(ApiDouble):
        reading = most = 0

        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            if body["prompt"] == PROMPTS[1]["prompt"]:  # its answer lost while the first's listing is read
                time.sleep(0.1)
            return super().create_generation(body)

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            with lock:
                self.reading += 1
                self.most = max(self.most, self.reading)
            time.sleep(0.3)
            with lock:
                self.reading -= 1
            return super().get_generations_by_user_id(user_id, limit, offset)

    lock, api = threading.Lock(), SlowListing()
    api.before_post = [LeonardoError("timed out waiting for the API's response")] * 2  # may have run; did not
    assert run(api, PROMPTS[:2], str(tmp_path)).ok and api.calls.count("POST") == 4
    assert api.most == 1  # the second waits for the first's reconciliation to end


def test_a_post_sent_later_than_now_is_ambiguous_not_waited_on(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("invalid dimensions", status_code=400)]
    run(api, PROMPTS[:1], str(tmp_path))
    with open(os.path.join(str(tmp_path), "journal.jsonl"), "a") as f:  # the clock was set back since
        f.write(json.dumps({"i": 0, "s": "submitting", "t": time.time() + 120, "rt": 0.3}) + "\n")
    started = time.monotonic()
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ambiguous == 1
    assert time.monotonic() - started < 60  # it waited until the clock came back to that time


@pytest.mark.parametrize("ahead", [True, False])
def test_an_earlier_runs_ambiguous_item_holds_its_prompt_back_its_window_from_this_runs_start_at_most(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, ahead: bool
) -> None:
    # Its "submitting" journaled by a clock an hour ahead, set back since: item 1 was held back until that hour
    # had passed, with nothing in flight. Its create call came before this run began: its window is counted from then.
    for name in ("CLOCK_SKEW", "LOCK_MARGIN"):
        monkeypatch.setattr(batch, name, 0.2)
    started = time.time()
    sent = started + 3600 if ahead else started - 0.5  # else just before this run: its 1.3 s window not past
    items = [{"prompt": "a cat"}] * 2
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 1.3}, {"i": 0, "s": "ambiguous", "reason": "a 500"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    events: List[BatchProgress] = []
    api = ApiDouble()
    summary = run_bounded(api, items, str(tmp_path), on_progress=events.append)
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)
    [at] = [r["t"] for r in journal(tmp_path) if r.get("i") == 1 and r["s"] == "submitting"]
    assert at >= min(sent, started) + 1.3  # never while item 0's create call may still make a match
    assert [p.index for p in events if "held back" in p.message] == [1]


def test_an_earlier_runs_post_journaled_a_little_ahead_is_looked_for_again_its_window_after_this_runs_start(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "LOOK_AGAIN", 0.2)
    crashed = [{"i": 0, "s": "submitting", "t": time.time() + 30, "rt": 0.3}]  # ahead, but within CLOCK_SKEW of now
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], crashed), encoding="utf-8")
    api, started = ApiDouble(), time.monotonic()
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 1  # never created: sent again
    assert time.monotonic() - started < 10  # it waited 30 s more, until the clock came back to that time


def test_an_earlier_runs_post_journaled_ahead_of_this_runs_start_is_not_read_back_by_this_runs_clock(
    tmp_path: Any,
) -> None:
    # Journaled 50 s ahead (within CLOCK_SKEW of now) by a clock set back since; its call ran 250 s before that time.
    # Item 1 taught this run's clock (~0): item 0's listing was read back to its time less CLOCK_SKEW only, its
    # generation missed, and it was sent again.
    api, sent = ApiDouble(), time.time() + 50
    api._create(dict(PROMPTS[0]), None)
    api.generations["gen-1"]["createdAt"], api.calls = _iso(sent - 250), []
    crashed = [{"i": 0, "s": "submitting", "t": sent, "rt": 0.5}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], crashed), encoding="utf-8")
    summary = run_bounded(api, PROMPTS[:2], str(tmp_path))
    records = journal(tmp_path)
    settled = min(n for n, r in enumerate(records) if r.get("i") == 0 and ("reason" in r or r["s"] == "submitted"))
    assert any("clock" in r for r in records[:settled])  # item 1 showed the clock before item 0 was settled
    made = [g["prompt"] for g in api.generations.values()]
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)  # item 1's only
    assert sorted(made) == sorted(p["prompt"] for p in PROMPTS[:2])  # no second generation of item 0's prompt


def test_an_earlier_runs_post_journaled_ahead_of_this_runs_start_is_read_back_by_its_own_runs_clock(
    tmp_path: Any,
) -> None:
    # As above, but item 0's run had learned its own clock, 300 s ahead of Leonardo's: its "submitting" time and that
    # bound are of one clock (whatever the machine's did since), so its listing reads back far enough, and adopts.
    api, sent = ApiDouble(), time.time() + 50
    api._create(dict(PROMPTS[0]), None)
    api.generations["gen-1"]["createdAt"], api.calls = _iso(sent - 250), []
    crashed = [{"clock": -300.0, "r": "A"}, {"i": 0, "s": "submitting", "t": sent, "rt": 0.5, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], crashed), encoding="utf-8")
    summary = run_bounded(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 1  # item 1's only
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 0 and r.get("s") == "submitted"] == ["gen-1"]


def test_an_earlier_runs_item_sent_again_is_held_to_its_own_send_time() -> None:
    item = batch._Item(0, BatchItem("a cat"))
    item.apply({"i": 0, "s": "submitting", "t": 5000.0, "rt": 0.3, "r": "earlier"})
    item.sent_before = 1000.0  # as plan() sets it: this run began at 1000 by its clock, the journal's was ahead
    assert item.sent_by == 1000.0
    item.apply({"i": 0, "s": "submitting", "t": 2000.0, "rt": 0.3, "r": "earlier"})  # sent again in this run: its window from then
    assert item.sent_by == 2000.0


def test_a_post_is_journaled_with_the_time_it_is_sent(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spawn = batch._Engine.spawn

    def queued(engine: Any, kind: str, task: Any, done: Any) -> None:  # a POST waits behind downloads
        def later() -> Any:
            time.sleep(0.5)
            api.timeout = (1.0, 5.0)  # and the client's timeout is raised meanwhile
            return task()

        spawn(engine, kind, later if kind == "post" else task, done)

    class Timed(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            self.sent_at = time.time()
            return super().create_generation(body)

    monkeypatch.setattr(batch._Engine, "spawn", queued)
    api = Timed()
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    [submitting] = [r for r in journal(tmp_path) if r.get("s") == "submitting"]
    # The journal keeps milliseconds, rounded (up, at times); it kept the time the POST was queued: 0.5 s early.
    assert -0.001 <= api.sent_at - submitting["t"] < 0.4
    assert submitting["rt"] == 6.0  # the span it was sent under; it kept the one it was queued under, 0.3 s


def test_a_timeout_raised_while_the_post_is_journaled_is_journaled_too(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    append, api = batch._Journal.append, ApiDouble()

    def raised_meanwhile(journal: Any, records: List[Dict[str, Any]]) -> None:
        append(journal, records)
        if records[0].get("s") == "submitting" and api.timeout == ApiDouble.timeout:  # another thread, during the fsync
            api.timeout = (1.0, 5.0)

    monkeypatch.setattr(batch._Journal, "append", raised_meanwhile)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and api.calls.count("POST") == 1
    spans = [r["rt"] for r in journal(tmp_path) if r.get("s") == "submitting"]
    assert spans == [sum(ApiDouble.timeout), 6.0]  # the span it went under


def test_ctrl_c_sends_no_create_call_still_queued(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # POST 1 is answered (then Ctrl-C), POST 2 is under way, POST 3 waits behind downloads until Ctrl-C:
    # it comes up while the batch waits for POST 2's answer, and must not be sent.
    spawn, all_queued, stopped = batch._Engine.spawn, threading.Event(), []

    def until(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 5
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    class Slow(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            if body["prompt"] == PROMPTS[1]["prompt"]:
                time.sleep(0.4)  # under way when Ctrl-C comes (at POST 1's answer, a moment after it was sent)
            return super().create_generation(body)

    def first(send: Callable[[], Any]) -> Any:  # sent once all three are queued
        all_queued.wait(5)
        return send()

    def third(engine: Any, send: Callable[[], Any]) -> Any:  # comes up once Ctrl-C is being handled
        until(lambda: engine.stopping)
        return send()

    def queued(engine: Any, kind: str, task: Any, done: Any) -> None:
        if kind == "post" and engine.posts == 1:
            task = partial(first, task)
        elif kind == "post" and engine.posts == 3:
            task = partial(third, engine, task)
            all_queued.set()
        spawn(engine, kind, task, done)

    def interrupt(progress: BatchProgress) -> None:
        if progress.event == "submitted" and not stopped:
            stopped.append(progress)  # once: a second Ctrl-C would quit at once
            raise KeyboardInterrupt

    monkeypatch.setattr(batch._Engine, "spawn", queued)
    api = Slow()
    with pytest.raises(BatchInterrupted) as info:
        run(api, PROMPTS[:3], str(tmp_path), on_progress=interrupt)
    assert api.calls.count("POST") == 2 and info.value.summary.interrupted
    assert sorted(states(tmp_path).values()) == ["planned", "submitted", "submitted"]  # POST 2's answer journaled


def test_a_listing_whose_pages_are_capped_is_read_to_its_end() -> None:
    now = datetime.now(timezone.utc).isoformat()
    listing = [{"id": f"g-{n}", "createdAt": now} for n in range(30)]  # all newer than the item: no early end

    class Capped:  # the API documents no maximum limit: this server gives 10 at most
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            return {"generations": listing[offset : offset + min(limit, 10)]}

    listed, complete = batch._list_since(Capped(), "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete is True and [g["id"] for g in listed] == [f"g-{n}" for n in range(30)]  # was: g-0..g-9, "all"


def test_a_page_of_entries_all_read_before_proves_no_end() -> None:
    now = time.time()
    listing = [{"id": f"g-{n}", "createdAt": _iso(now - n)} for n in range(30)]  # newest first, all since oldest

    class Growing:  # 5 generations made between the first two pages push the first page's down
        asked: List[int] = []

        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            self.asked.append(offset)
            if len(self.asked) == 2:
                listing[:0] = [{"id": f"new-{n}", "createdAt": _iso(now + 5 - n)} for n in range(5)]
            return {"generations": listing[offset : offset + min(limit, 10)]}

    listed, complete = batch._list_since(Growing(), "u", now - 120)  # type: ignore[arg-type]
    assert complete is True and {f"g-{n}" for n in range(30)} <= {g["id"] for g in listed}  # was "all" at g-9


def test_a_deletion_between_listing_pages_hides_nothing() -> None:
    now = datetime.now(timezone.utc).isoformat()
    listing = [{"id": f"g-{n}", "createdAt": now} for n in range(60)]  # newest first; g-50 opens page 2

    class Deleting:
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            page = listing[offset : offset + limit]
            if offset == 0:
                del listing[10]  # deleted by someone while the pages are read
            return {"generations": page}

    listed, complete = batch._list_since(Deleting(), "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete is True and "g-50" in [g["id"] for g in listed]


def test_a_listing_that_moves_past_a_page_s_overlap_is_read_again_from_the_top() -> None:
    now = datetime.now(timezone.utc).isoformat()

    class Deleting:  # 10 deleted after each read of the first page: the next page starts past what slid up
        def __init__(self, times: int) -> None:
            self.listing = [{"id": f"g-{n}", "createdAt": now} for n in range(200)]
            self.times, self.asked = times, []  # type: int, List[int]

        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            self.asked.append(offset)
            page = self.listing[offset : offset + limit]
            if offset == 0 and self.times:
                self.times -= 1
                del self.listing[:10]
            return {"generations": page}

    once = Deleting(times=1)
    listed, complete = batch._list_since(once, "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete is True and {g["id"] for g in listed} == {f"g-{n}" for n in range(200)}  # was: g-50..g-54 unread
    assert once.asked[:3] == [0, 45, 0]
    class Growing(Deleting):  # 60 made at the top after each of 2 pages: the last page's end is pushed past the next
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            self.asked.append(offset)
            page, fresh = self.listing[offset : offset + limit], len(self.asked) * 100
            if len(self.asked) <= 2:
                self.listing[:0] = [{"id": f"n-{fresh + n}", "createdAt": now} for n in range(60)]
            return {"generations": page}

    growing = Growing(times=0)
    listed, complete = batch._list_since(growing, "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete is True and 0 not in growing.asked[1:]  # not read again: growth hides nothing
    assert {f"g-{n}" for n in range(200)} <= {g["id"] for g in listed}
    always = Deleting(times=10)
    listed, complete = batch._list_since(always, "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete == "the listing kept moving while it was read (generations deleted?)"
    assert always.asked == [0, 45] * (batch.LISTING_RESTARTS + 1)


def test_each_read_from_the_top_has_its_own_page_budget() -> None:
    now = datetime.now(timezone.utc).isoformat()
    listing = [{"id": f"g-{n}", "createdAt": now} for n in range(8000)]  # 178 pages of 45 new: under 200

    class DeletingLate:  # 10 deleted once, at the 100th page: the second read needs 178 pages again
        asked = 0

        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            self.asked += 1
            page = listing[offset : offset + limit]
            if self.asked == 100:
                del listing[:10]
            return {"generations": page}

    listed, complete = batch._list_since(DeletingLate(), "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert complete is True and len(listed) == 8000  # was: "more than ... generations since then" (one budget)


def test_entries_without_an_id_at_a_page_s_end_are_no_move_of_the_listing() -> None:
    now = datetime.now(timezone.utc).isoformat()
    listing = [{"id": f"g-{n}", "createdAt": now} for n in range(120)]
    for n in range(45, 50):  # page 1's last five: the next page's overlap
        listing[n] = {"createdAt": now}

    class Still:
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            return {"generations": listing[offset : offset + limit]}

    listed, complete = batch._list_since(Still(), "user-1", time.time() - 60)  # type: ignore[arg-type]
    assert "g-60" in {g["id"] for g in listed} and str(complete).endswith("of its entries could not be read")


@pytest.mark.parametrize("grown", [0, 20])  # 20: made at the top after the first page, which the next reads more of
def test_an_entry_without_an_id_read_again_in_a_page_s_overlap_is_counted_once(tmp_path: Any, grown: int) -> None:
    now = datetime.now(timezone.utc).isoformat()
    others = [{"id": f"g-{n}", "createdAt": now, "prompt": "another"} for n in range(120)]
    for n in range(45, 50):  # page 1's last five: the next page reads them again
        others[n] = {"createdAt": now, "prompt": "another"}

    class Others(ApiDouble):  # the account's other generations: ours never made (a 503)
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.calls.append("LIST")
            page = others[offset : offset + limit]
            if offset == 0:
                others[:0] = [{"id": f"new-{n}", "createdAt": now, "prompt": "another"} for n in range(grown)]
            return {"generations": page}

    api = Others()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)]
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1
    said = "could not read the account's generations: 5 of its entries could not be read"
    assert journal(tmp_path)[-1]["reason"] == said  # was: 10 of them, each read twice


def test_an_entry_without_an_id_just_past_the_overlap_is_counted_when_the_page_before_s_last_is_deleted(
    tmp_path: Any,
) -> None:
    # Skipping what the page before "ended with", found by the last id both pages show, skipped the entry that
    # moved up into the overlap when that page's last entry was deleted meanwhile: 0 unread, our item taken for
    # never made and sent again, billed twice (found by the review of the overlap count).
    now = datetime.now(timezone.utc).isoformat()

    class Others(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.calls.append("LIST")
            if offset == 0:  # each read from the top, on the listing as it was
                self.listing = [{"id": f"g-{n}", "createdAt": now, "prompt": "another"} for n in range(120)]
                self.listing[50] = {"createdAt": now, "prompt": PROMPTS[0]["prompt"]}  # ours? no id to tell
            page = self.listing[offset : offset + limit]
            if offset == 0:
                del self.listing[49]  # deleted (the web app) just after page 1 was read
            return {"generations": page}

    api = Others()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)]
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1 and api.calls.count("POST") == 1
    assert journal(tmp_path)[-1]["reason"].endswith(": 1 of its entries could not be read")


def test_entries_alike_without_an_id_are_each_counted_not_taken_for_a_longer_overlap() -> None:
    # Matched by what they show, 300 alike were taken for one page read again and again: "50 of its entries" (found
    # by a review). Beyond the overlap asked for, only an id shows that the page before's entries came again.
    now = datetime.now(timezone.utc).isoformat()
    listing = [{"createdAt": now, "prompt": "another"}] * 300

    class Listing:
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            return {"generations": listing[offset : offset + limit]}

    assert batch._list_pass(Listing(), "user-1", 0.0, {}) == "300 of its entries could not be read"  # type: ignore


def test_a_gallery_that_cannot_be_written_is_a_leonardo_error(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch._files.os, "replace", full)  # the first file written is the gallery
    with pytest.raises(LeonardoError, match="could not write .*index.html'?: No space left on device"):
        run(ApiDouble(), PROMPTS[:1], str(tmp_path))  # the CLI said "cannot write the output"


# The second sent within the clock's skew of the first, or later, made while the first's call could still run.
@pytest.mark.parametrize("later, made", [(0.5, 0.2), (batch.CLOCK_SKEW + 0.5, 1.0)])
def test_an_item_does_not_adopt_what_an_ambiguous_item_with_its_prompt_may_own(
    tmp_path: Any, later: float, made: float
) -> None:
    # As a crash may leave it: the second sent while the first's window was open (an older version let it).
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox", "width": 768, "height": 768}, None)
    api.generations["gen-1"]["createdAt"] = _iso(sent + made)  # made by the first's call, or the second's
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 1.3},
               {"i": 0, "s": "ambiguous", "reason": "could not read the account's generations: x", "recheck": True},
               {"i": 1, "s": "submitting", "t": sent + later, "rt": 1.3}]
    items = [{"prompt": "a red fox", "width": 768, "height": 768}, {"prompt": "a red fox"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run(api, items, str(tmp_path))
    assert (summary.ambiguous, len(api.generations)) == (2, 1)  # the second took the first's generation
    assert "an ambiguous item with this prompt" in [r for r in journal(tmp_path) if r.get("i") == 1][-1]["reason"]


# A v2 item the listing shows with its prompt as sent (prompt_enhance OFF): once the listing is known to show v2, its
# silence proves the item never made a generation (with the model's default, AUTO, it proves nothing).
KITE = {"model": "phoenix-v1.0", "num_images": 1, "prompt_enhance": "OFF"}


def test_a_v2_item_is_not_resent_before_the_listing_is_known_to_show_v2(tmp_path: Any) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not
    started = time.monotonic()
    summary = run(api, [dict(KITE, prompt="a kite")], str(tmp_path))
    assert (summary.complete, summary.ambiguous) == (0, 1) and api.generations == {}
    assert "no v2 generation seen" in [r for r in journal(tmp_path) if r.get("s") == "ambiguous"][0]["reason"]
    assert time.monotonic() - started > sum(api.timeout)  # judged only once the POST cannot still be running


# The second: a model whose schema takes no prompt_enhance (none documented) was left ambiguous, as if at AUTO.
@pytest.mark.parametrize("params", [KITE, {"model": "kling-3.0", "quantity": 1}])
def test_a_v2_item_is_resent_once_ours_were_seen_in_the_listing(tmp_path: Any, params: Dict[str, Any]) -> None:
    api = ApiDouble()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # the first, before the others ran
    v2 = [dict(params, prompt=f"a kite {n}") for n in range(3)]
    summary = run(api, v2, str(tmp_path))
    assert summary.ok and len(api.generations) == 3 and api.calls.count("POST") == 4
    assert {"v2_listed": params["model"]} in journal(tmp_path)


class ListsNoClip(ApiDouble):
    """Its listing shows no generation of prompt "a clip" (kling-3.0's, below): whether the v1 listing holds v2
    generations is not documented, and a video model's may be stored apart from an image model's (hunt LG)."""

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        shown = super().get_generations_by_user_id(user_id, 10 ** 6)["generations"]
        return {"generations": [g for g in shown if g["prompt"] != "a clip"][offset : offset + limit]}


# One model's generations seen listed was taken to prove that the listing shows every v2 model's: the kling item whose
# answer was lost, never listed, was sent again on that silence (billed twice; in LG's run, six times).
def test_a_v2_item_is_not_resent_on_silence_once_only_another_model_s_were_seen_listed(tmp_path: Any) -> None:
    api = ListsNoClip(delay=1.5)  # the kite still runs as the clip is looked for: it cannot show kling is listed
    api.after_post = [LeonardoError("timed out waiting for the API's response")]  # it made "a clip"
    items = [{"model": "kling-3.0", "quantity": 1, "prompt": "a clip"}, dict(KITE, prompt="a kite")]
    started = time.monotonic()
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, len(api.generations)) == (1, 1, 2)  # was (2, 0, 3)
    assert time.monotonic() - started < batch.V2_WAIT / 6  # left so at once: it did not wait for the kite
    assert "no v2 generation seen of its model" in [r for r in journal(tmp_path) if r.get("i") == 0][-1]["reason"]
    assert [r for r in journal(tmp_path) if "v2_listed" in r] == [{"v2_listed": "phoenix-v1.0"}]


def test_a_v2_item_is_resent_on_silence_once_its_model_s_were_seen_listed_beside_another_s(tmp_path: Any) -> None:
    api = ListsNoClip()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # here it made nothing
    items = [dict(KITE, prompt="a kite 0"), {"model": "kling-3.0", "quantity": 1, "prompt": "a clip"},
             dict(KITE, prompt="a kite 1")]
    summary = run(api, items, str(tmp_path))
    assert summary.ok and len(api.generations) == 3 and api.calls.count("POST") == 4


def test_a_v2_item_crashed_before_its_post_waits_for_another_to_show_the_listing_holds_v2(tmp_path: Any) -> None:
    api = ApiDouble()
    v2 = [dict(KITE, prompt=f"a kite {n}") for n in range(2)]
    crashed = [{"i": 0, "s": "submitting", "t": time.time() - 200}]  # the POST never left
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, crashed), encoding="utf-8")
    started = time.monotonic()
    summary = run(api, v2, str(tmp_path))
    assert summary.ok and len(api.generations) == 2 and api.calls.count("POST") == 2
    assert {"v2_listed": "phoenix-v1.0"} in journal(tmp_path)
    assert time.monotonic() - started < batch.V2_WAIT / 6  # a poll's listing showed item 1: not the fallback's wait
    # Two crashed so, and no other v2 item to show it: neither waits on the other, both are left ambiguous.
    out = tmp_path / "both"
    out.mkdir()
    both = [{"i": n, "s": "submitting", "t": time.time() - 200} for n in range(2)]
    (out / "journal.jsonl").write_text(journal_text(v2, both), encoding="utf-8")
    assert run(ApiDouble(), v2, str(out)).ambiguous == 2


class ListingRefusedAWhile(ApiDouble):
    """The reconciliation's listing answers 429 (Retry-After 0.5 s) for 0.4 s from its first; till then a poll's shows
    none of ours, so that one read after it shows the listing holds v2. The fourth create call's answer is lost."""

    refused_at, unrefused = 0.0, 0  # unrefused: how many reconciliation listings are read before the first 429

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        gid = super()._create(params, model_id)
        if gid == "gen-4":
            raise LeonardoError("Bad gateway", status_code=502)
        return gid

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        now = time.monotonic()
        self.unrefused -= limit == batch.LISTING_PAGE
        if limit == batch.LISTING_PAGE and self.unrefused < 0 and now - (self.refused_at or now) < 0.4:
            self.refused_at = self.refused_at or now
            self.calls.append("LIST")
            raise LeonardoError("Too many requests", status_code=429, retry_after=0.5)
        if not self.refused_at:
            return {"generations": []}
        return super().get_generations_by_user_id(user_id, limit, offset)


# A poll's listing showing v2 pulled forward the reconciliation of every v2 item in reconcile_at: one to be read
# again after a 429 was, inside its Retry-After, refused again and left ambiguous (the end-of-batch look found it).
# The first: one whose answer was lost (it made gen-4); the second: one waiting for the listing to show v2 (its call
# made nothing), its look refused.
@pytest.mark.parametrize("count, unrefused, lost", [(4, 0, None), (2, 2, "timed out waiting for the API's response")])
def test_a_listing_that_raised_is_read_again_after_its_retry_after_though_v2_is_listed_meanwhile(
    tmp_path: Any, monkeypatch: Any, count: int, unrefused: int, lost: Optional[str]
) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)
    api = ListingRefusedAWhile(slots=4, delay=1.5)
    api.unrefused, api.before_post = unrefused, [LeonardoError(lost) if lost else None]
    summary = run(api, [dict(KITE, prompt=f"a kite {n}") for n in range(count)], str(tmp_path), concurrency=4)
    assert summary.ok and api.calls.count("POST") == count + bool(lost) and {"v2_listed": KITE["model"]} in journal(tmp_path)
    assert "ambiguous" not in [r.get("s") for r in journal(tmp_path)]


def test_the_listing_showing_v2_leaves_a_v1_item_waiting_out_its_window(tmp_path: Any) -> None:
    # #1 (v1) answered 503, made nothing, waits out its create call's window (2.7 s) before it is looked for again;
    # meanwhile a poll's listing shows the v2 items. Pulled forward too, it was looked for again at once, still inside
    # its window: its "may still be running" line said twice, one more listing read.
    api = LongWindow(delay=1.5)
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)]
    said: List[str] = []

    def seen(progress: BatchProgress) -> None:
        if progress.index == 0 and "may still be running" in progress.message:
            said.append(progress.message)

    items = [PROMPTS[0], dict(KITE, prompt="a kite 1"), dict(KITE, prompt="a kite 2")]
    summary = run(api, items, str(tmp_path), posts_per_minute=120, on_progress=seen)
    assert summary.ok and {"v2_listed": "phoenix-v1.0"} in journal(tmp_path) and len(said) == 1, said


class Rewriting(ApiDouble):
    """Keeps, lists and answers by id each prompt as ``rewrite`` makes it of its create call's parameters (prompt
    enhancement, a server's normalizing); the create call of prompt ``lost`` makes its generation, then answers 500."""

    def __init__(self, rewrite: Callable[[Dict[str, Any]], str], lost: Optional[str]) -> None:
        super().__init__()
        self.rewrite, self.lost = rewrite, lost

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        generation_id = super()._create(dict(params, prompt=self.rewrite(params)), model_id)
        if params["prompt"] == self.lost:
            self.lost = None  # once: sent again, it is answered
            raise LeonardoError("Internal Server Error", status_code=500)
        return generation_id


def enhanced(params: Dict[str, Any]) -> str:
    """The prompt as prompt enhancement makes it, unless the create call turns it OFF (v2; v1 items here ask for it)."""
    return params["prompt"] if params.get("prompt_enhance") == "OFF" else "Highly detailed: " + params["prompt"]


@pytest.mark.parametrize(
    "items, complete",
    [
        ([{"prompt": "a kite 0", "model": "phoenix-v1.0", "num_images": 1}]  # prompt_enhance left to the model
         + [dict(KITE, prompt=f"a kite {n}") for n in (1, 2)], 2),  # ...these two show the listing holds v2
        ([dict(KITE, prompt=f"a kite {n}") for n in range(3)], 3),  # OFF, listed as sent: adopted
        ([dict(PROMPTS[0], prompt="a kite 0", enhancePrompt=True)], 0),  # v1, enhancement asked
        ([{"prompt": "a kite 0", "model": "kite-v9", "num_images": 1}], 0),  # a model the bundled spec does not know
    ],
)
def test_a_lost_answer_is_not_sent_again_when_its_prompt_may_be_listed_enhanced(
    tmp_path: Any, monkeypatch: Any, items: Any, complete: int
) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)  # a moment, should the first wait for the others to show v2
    api = Rewriting(enhanced, lost="a kite 0")
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, len(api.generations), api.calls.count("POST")) == (complete, len(items), len(items))
    reasons = [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"]
    assert reasons == [batch.REWRITTEN] * (len(items) - complete)  # was "never created": sent again, billed twice


def test_a_prompt_enhance_asked_of_a_model_whose_schema_lists_none_is_taken_as_asked(
    tmp_path: Any, monkeypatch: Any
) -> None:
    # kling-3.0's parameters are open: "ON" passes the spec check and is sent. It was ignored for a model whose schema
    # lists no prompt_enhance, so its lost answer, listed enhanced, was sent again (review R10: billed twice).
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)
    items = [{"prompt": f"a kite {n}", "model": "kling-3.0", "num_images": 1} for n in range(3)]
    items[0]["prompt_enhance"] = "ON"
    api = Rewriting(lambda params: enhanced(params) if params.get("prompt_enhance") == "ON" else params["prompt"],
                    lost="a kite 0")
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, len(api.generations), api.calls.count("POST")) == (2, 3, 3)
    assert [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"] == [batch.REWRITTEN]


def test_a_lost_answer_is_not_sent_again_once_ours_were_seen_with_a_prompt_other_than_sent(tmp_path: Any) -> None:
    items = [dict(p, prompt=f"café  crème {n}") for n, p in enumerate(PROMPTS[:3])]  # two spaces: nothing predicts

    def collapsed(params: Dict[str, Any]) -> str:  # no enhancement asked: the server's own
        return " ".join(params["prompt"].split())

    api = Rewriting(collapsed, lost=items[2]["prompt"])
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (2, 1, 3)  # was sent again
    assert [r for r in journal(tmp_path) if "prompts_rewritten" in r] == [{"prompts_rewritten": True}]  # once
    assert [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"] == [batch.REWRITTEN]
    out = tmp_path / "polled"  # learned from a GET by id too (one item: no listing read)
    assert run(Rewriting(collapsed, lost=None), items[:1], str(out)).ok and {"prompts_rewritten": True} in journal(out)


def test_a_prompt_shown_enhanced_as_its_item_predicts_does_not_keep_the_others_from_being_sent_again(
    tmp_path: Any,
) -> None:
    items = [{"prompt": "a kite", "model": "phoenix-v1.0", "num_images": 1}, PROMPTS[0]]  # prompt_enhance: AUTO
    api = Rewriting(lambda params: enhanced(params) if params["prompt"] == "a kite" else params["prompt"], lost=None)
    api.before_post = [None, LeonardoError("timed out waiting for the API's response")]  # the v1 one: never made
    summary = run(api, items, str(tmp_path), concurrency=1)  # the kite is seen enhanced before the other is judged
    assert (summary.complete, len(api.generations), api.calls.count("POST")) == (2, 2, 3)  # was left ambiguous
    assert not [r for r in journal(tmp_path) if "prompts_rewritten" in r]


@pytest.mark.parametrize("prompt", ["a lantern {} ", " a lantern {}", "a lantern\r\n{}", "café {}"])
def test_a_lost_answer_is_not_sent_again_when_its_prompt_may_be_listed_trimmed_or_normalized(
    tmp_path: Any, prompt: str
) -> None:
    items = [dict(p, prompt=unicodedata.normalize("NFD", prompt.format(n))) for n, p in enumerate(PROMPTS[:2])]

    def normalized(params: Dict[str, Any]) -> str:
        return unicodedata.normalize("NFC", params["prompt"].strip().replace("\r\n", "\n"))

    api = Rewriting(normalized, lost=items[0]["prompt"])
    summary = run(api, items, str(tmp_path), concurrency=1)  # the first is judged before any other is seen
    assert (summary.complete, len(api.generations), api.calls.count("POST")) == (1, 2, 2)  # was sent again
    assert [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"] == [batch.REWRITTEN]


def test_the_note_that_prompts_are_shown_rewritten_is_kept_for_a_rerun(tmp_path: Any) -> None:
    records = [{"prompts_rewritten": True}, {"i": 0, "s": "submitting", "t": time.time() - 200}]  # an earlier run's
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    api = ApiDouble()
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1 and api.calls.count("POST") == 0


@pytest.mark.parametrize("created", [True, False])
def test_a_rerun_reconciles_an_item_left_ambiguous_by_a_listing_that_failed(tmp_path: Any, created: bool) -> None:
    api = ApiDouble()
    lost = LeonardoError("Internal Server Error", status_code=500)
    (api.after_post if created else api.before_post).append(lost)  # its POST ran, or not, and lost its answer
    api.listing_error = LeonardoError("Bad Gateway", status_code=502)
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1
    assert run(api, PROMPTS[:1], str(tmp_path)).ambiguous == 1  # still unreadable: the same verdict
    assert [r["s"] for r in journal(tmp_path) if r.get("i") == 0].count("ambiguous") == 1  # journaled once
    api.listing_error = None
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and len(api.generations) == 1  # adopted, or sent again: billed once either way
    assert api.calls.count("POST") == (1 if created else 2)


@pytest.mark.parametrize("created", [True, False])
def test_an_item_left_ambiguous_by_a_listing_that_failed_is_looked_for_once_more_when_the_batch_is_done(
    tmp_path: Any, created: bool
) -> None:
    # An outage of the create calls and the listing: the run ended "1 ambiguous; rerun to settle", though the
    # listing worked again well before the other item was complete.
    api = ApiDouble()
    lost = LeonardoError("Internal Server Error", status_code=500)
    (api.after_post if created else api.before_post).append(lost)
    api.listing_error = LeonardoError("Bad Gateway", status_code=502)
    events: List[BatchProgress] = []

    def progress(event: BatchProgress) -> None:
        events.append(event)
        if event.event == "ambiguous":  # read twice, unread: the outage ends
            api.listing_error = None

    summary = run(api, PROMPTS[:2], str(tmp_path), on_progress=progress)
    assert summary.ok and summary.done_this_run == 2 and len(api.generations) == 2  # billed once: adopted, or resent
    assert api.calls.count("POST") == (2 if created else 3)
    assert [e.event for e in events if e.index == 0 and e.event != "waiting"] == [
        "ambiguous", "adopted" if created else "resent", *([] if created else ["submitted"]), "complete"]
    assert [r["s"] for r in journal(tmp_path) if r.get("i") == 0].count("ambiguous") == 1


@pytest.mark.parametrize("retry_after, waited, item_timeout", [(None, 0.8, 0.5), (2.0, 1.0, 10.0)])
def test_an_item_a_listing_keeps_failing_for_is_looked_for_once_more_after_the_pause_then_left_to_a_rerun(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, retry_after: Optional[float], waited: float, item_timeout: float
) -> None:
    # Its one more look waits out the pause the last failure set (doubled from 0.2 s: 0.8 s; item_timeout passing
    # meanwhile: no create call is left to send, so no stop on refusals), up to MAX_DOUBLED_PAUSE (a Retry-After of
    # 2 s: 1 s). Unread again, the batch ends.
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", 0.2)
    monkeypatch.setattr(batch, "MAX_DOUBLED_PAUSE", 1.0)
    listed: List[float] = []

    class Unread(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            listed.append(time.monotonic())
            return super().get_generations_by_user_id(user_id, limit, offset)

    api = Unread()
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    api.listing_error = LeonardoError("Service Unavailable", status_code=503, retry_after=retry_after)
    summary = run_bounded(api, PROMPTS[:1], str(tmp_path), item_timeout=item_timeout)
    assert (summary.ambiguous, summary.done_this_run) == (1, 1)
    assert len(listed) == 3 and waited <= listed[2] - listed[1] < 2.0  # read, read again, once more after the pause
    assert [r["s"] for r in journal(tmp_path) if r.get("i") == 0] == ["planned", "submitting", "ambiguous"]  # once


def unread_once(monkeypatch: pytest.MonkeyPatch, pause: float) -> ApiDouble:
    """An ApiDouble whose one create call is answered 500 (never made) and whose listing answers 502."""
    monkeypatch.setattr(batch, "LISTING_AGAIN", 0.2)
    monkeypatch.setattr(batch, "DEFAULT_PAUSE", pause)
    api = ApiDouble()
    api.before_post = [LeonardoError("Internal Server Error", status_code=500)]
    api.listing_error = LeonardoError("Bad Gateway", status_code=502)
    return api


def test_a_batch_waiting_for_its_once_more_look_stops_within_a_second_of_a_close(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, closed = unread_once(monkeypatch, pause=30.0), []  # the look waits out a pause: the loop still wakes

    def close_at_look(event: BatchProgress) -> None:
        if event.message.startswith("looking once more"):
            threading.Timer(0.2, lambda: (closed.append(time.monotonic()), setattr(api, "closed", True))).start()

    with pytest.raises(LeonardoError, match="the Client was closed while the batch ran; rerun to resume"):
        run(api, PROMPTS[:1], str(tmp_path), on_progress=close_at_look)
    assert closed and time.monotonic() - closed[0] < 2.0 and api.calls.count("POST") == 1


def test_a_batch_left_only_downloading_in_a_long_pause_is_not_stopped_as_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One item left ambiguous by the listing that failed twice, submissions paused past item_timeout by its second
    # failure, the other item's files still downloading: no create call is left to send, so no stop on refusals (see
    # watch_refusals). The once-more look comes when the other is complete, and leaves the first to a rerun.
    api = unread_once(monkeypatch, pause=0.25)  # the pauses double: 0.25, 0.5, then 1 s
    api.before_post.insert(0, None)  # the other, sent first, is made
    save = api.save_results
    api.save_results = lambda result, folder: (time.sleep(0.9), save(result, folder))[1]  # type: ignore[method-assign]
    summary = run(api, PROMPTS[:2], str(tmp_path), item_timeout=0.4)
    assert (summary.complete, summary.ambiguous) == (1, 1)


@pytest.mark.parametrize("made, seen", [(False, "resent"), (True, "adopted")])
def test_an_item_a_once_more_look_sends_again_or_adopts_is_not_done_in_the_count_of_a_run_stopped_before_it_settles(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, made: bool, seen: str
) -> None:
    api = unread_once(monkeypatch, pause=0.1)
    if made:  # the 500 came after the generation was made: the look finds it
        api.before_post, api.after_post = [], api.before_post

    def stop_as_seen(event: BatchProgress) -> None:
        api.listing_error = None if event.event == "ambiguous" else api.listing_error  # the outage ends
        if event.event == seen:
            raise KeyboardInterrupt  # a host's Stop

    with pytest.raises(BatchInterrupted) as stopped:
        run(api, PROMPTS[:1], str(tmp_path), on_progress=stop_as_seen)
    assert (stopped.value.summary.pending, stopped.value.summary.done_this_run) == (1, 0)  # was (1, 1)


@pytest.mark.parametrize("error, said", [
    (LeonardoError("download failed: connection failed: reset"), "download failed: connection failed: reset"),
    (OSError(28, "No space left on device"), "download failed (No space left on device)"),  # was "[Errno 28] No..."
    (IsADirectoryError(21, "Is a directory", "a", None, "b"), "download failed ('a' -> 'b': Is a directory)"),
])
def test_a_failed_download_is_tried_again(tmp_path: Any, error: Exception, said: str) -> None:
    class FirstDownloadFails(ApiDouble):
        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            tried.append(time.monotonic())
            if "failed once" not in self.calls:
                self.calls.append("failed once")
                raise error
            return super().save_results(result, folder)

    events: List[BatchProgress] = []
    tried: List[float] = []
    assert run(FirstDownloadFails(), PROMPTS[:1], str(tmp_path), on_progress=events.append).ok
    # The client's error says "download failed" itself: it read "download failed (download failed: ...)".
    assert f"#1: {said}; will try again" in [e.message for e in events]
    assert tried[1] - tried[0] >= batch.DOWNLOAD_AGAIN  # DOWNLOAD_AGAIN times the tries so far later: not at once


def test_a_download_that_keeps_failing_says_why_on_its_card_and_not_that_it_will_try_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ImageHostDown(ApiDouble):
        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            raise LeonardoError("download failed: HTTP 500: Internal Server Error")

    monkeypatch.setattr(batch, "DOWNLOAD_TRIES", 2)  # one retry, DOWNLOAD_AGAIN later
    events: List[BatchProgress] = []
    summary = run(ImageHostDown(), PROMPTS[:1], str(tmp_path), on_progress=events.append)
    assert summary.pending == 1 and states(tmp_path)[0] == "submitted"
    said = [e.message for e in events if "download failed" in e.message]
    assert said == ["#1: download failed: HTTP 500: Internal Server Error; will try again",
                    "#1: download failed: HTTP 500: Internal Server Error; a rerun tries again"]  # was "will try again"
    card = (tmp_path / "index.html").read_text(encoding="utf-8").split("<article")[1]
    assert '<div class="reason">download failed: HTTP 500: Internal Server Error; a rerun tries again</div>' in card


@pytest.mark.parametrize("url", ["ftp://cdn.invalid/gen-1/0.png", 12])
def test_a_result_save_results_would_refuse_is_ambiguous_at_once(tmp_path: Any, url: Any) -> None:
    class Unusable(ApiDouble):
        def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
            view = super()._view(g)
            return dict(view, generated_images=[dict(image, url=url) for image in view["generated_images"]])

        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            raise AssertionError("a download that no retry can make was tried")

    api = Unusable()
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.ambiguous, summary.pending, summary.ok, api.calls.count("POST")) == (1, 0, False, 1)  # paid once
    [reason] = [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"]
    shown = "'ftp://cdn.invalid/gen-1/0.png'" if isinstance(url, str) else "a number"  # JSON's name, not "int"
    what = f"the result's generated_images[0].url is not a file URL: {shown}"
    assert reason == f"generation gen-1 cannot be saved: {what} (paid for: look in your library)"
    # The summary's advice named --resubmit-ambiguous as if nothing were made: followed, it billed this one twice.
    assert '"paid for"' in str(summary) and "billing again any that was made" in str(summary)


def test_a_generation_not_readable_yet_or_complete_without_images_is_asked_again(tmp_path: Any) -> None:
    class Late(ApiDouble):  # the first two GETs say there is no such generation, the third that it has no images
        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            answer = super().get_generation_by_id(gid)
            gets = self.calls.count("GET")
            if gets <= 2:
                return {"generations_by_pk": None}
            return {"generations_by_pk": dict(answer["generations_by_pk"], generated_images=[])} if gets == 3 else answer

    api = Late(delay=0.0)
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and summary.images == 1 and api.calls.count("GET") >= 4


def test_a_generation_not_readable_for_its_first_polls_is_waited_on_not_taken_for_deleted(tmp_path: Any) -> None:
    # A replica behind the create call: three nulls (the first rounds, under a second) left it "deleted?", though it
    # went on, was paid for, and was never saved.
    nulls = [{"generations_by_pk": None}] * 5
    api = Reshaped(by_id=lambda answer, gid: nulls.pop() if nulls else answer)
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.complete, summary.ambiguous, summary.images, nulls) == (1, 0, 1, [])


@pytest.mark.parametrize("between", ["PENDING", None])  # None: the generation, its images, without a status key
def test_no_such_generation_answers_with_answers_showing_it_between_do_not_add_up(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, between: Optional[str]
) -> None:
    # A replica lagging now and then: nulls counted over the generation's life, each followed by PENDING, left it
    # "deleted?" at the third, though it never was. One without a status is the generation too (its id is ours):
    # not another answer (the nulls would add up), nor a finished one (saved before the status says so).
    monkeypatch.setattr(batch, "MISSING_GRACE", 0.3)  # less than the nulls span: the answers between keep it waited on
    monkeypatch.setattr(batch, "FIRST_POLL", 0.1)  # a round each 0.1 s: the nulls span 0.8 s, each 0.2 s after the last
    monkeypatch.setattr(batch, "POLL_GROWTH", 1.0)
    gets = [0]

    def now_and_then(answer: Dict[str, Any], gid: str) -> Dict[str, Any]:
        gets[0] += 1
        if gets[0] % 2:
            return {"generations_by_pk": None}
        generation = answer["generations_by_pk"]
        if between is None:
            shown = {k: v for k, v in generation.items() if k != "status"}
        else:
            shown = dict(generation, status=between, generated_images=[])
        return answer if gets[0] > 8 else {"generations_by_pk": shown}

    api = Reshaped(by_id=now_and_then)
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.complete, summary.ambiguous, summary.images) == (1, 0, 1) and gets[0] >= 10  # 5 nulls answered


@pytest.mark.parametrize("item_timeout", [3600.0, 0.2])  # a shorter one still watches it the grace out (a rerun did so)
def test_a_generation_deleted_before_it_was_saved_is_ambiguous_and_its_cost_kept(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, item_timeout: float
) -> None:
    monkeypatch.setattr(batch, "MISSING_GRACE", 0.5)  # answered "no such generation" that long: taken for deleted

    class Deleted(ApiDouble):
        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            self.calls.append("GET")
            return {"generations_by_pk": None}

    api = Deleted(delay=60.0)
    summary = run_bounded(api, PROMPTS[:1], str(tmp_path), item_timeout=item_timeout)  # else an hour if it breaks
    assert (summary.ambiguous, summary.failed, summary.credits) == (1, 0, {"DOLLARS": 0.01})  # was failed, "refunded"
    assert journal(tmp_path)[-1]["reason"] == "generation gen-1 no longer exists: deleted?"


def test_two_items_with_one_prompt_are_never_unanswered_at_once(tmp_path: Any) -> None:
    class SlowAnswers(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            self.calls.append(f"sent {time.monotonic()}")
            time.sleep(0.2)
            answer = super().create_generation(body)
            self.calls.append(f"answered {time.monotonic()}")
            return answer

    api = SlowAnswers()
    assert run(api, [{"prompt": "a kite", "seed": n} for n in range(2)], str(tmp_path)).ok
    times = [(c.split()[0], float(c.split()[1])) for c in api.calls if c.split()[0] in ("sent", "answered")]
    assert [event for event, _ in sorted(times, key=lambda t: t[1])] == ["sent", "answered", "sent", "answered"]


def test_no_more_than_four_create_calls_wait_for_their_answer_at_once(tmp_path: Any) -> None:
    class SlowAnswers(ApiDouble):  # 10 slots: room for 15 in flight, but 4 unanswered calls at most
        waiting = most = 0

        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            with lock:
                self.waiting += 1
                self.most = max(self.most, self.waiting)
            time.sleep(0.2)
            with lock:
                self.waiting -= 1
            return super().create_generation(body)

    lock, api = threading.Lock(), SlowAnswers(slots=10)
    assert run(api, [{"prompt": f"a kite, study {n}"} for n in range(8)], str(tmp_path)).ok
    assert 1 <= api.most <= batch.MAX_POSTS_AT_ONCE == 4


def test_an_item_held_back_by_its_prompt_keeps_its_place_in_the_queue(tmp_path: Any) -> None:
    class SlowKite(ApiDouble):  # the first kite's call is answered late: the second waits meanwhile
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            if body["prompt"] == "a kite" and body.get("seed") == 0:
                time.sleep(0.1)
            return super().create_generation(body)

    api = SlowKite(slots=1, delay=0.5)  # 3 in flight: kite 0, fox and owl; kite 1 is sent when one completes
    items = [{"prompt": "a kite", "seed": 0}, {"prompt": "a kite", "seed": 1}, {"prompt": "a red fox"},
             {"prompt": "an owl"}, {"prompt": "a bee"}]
    assert run(api, items, str(tmp_path)).ok
    sent = [r["i"] for r in journal(tmp_path) if r.get("s") == "submitting"]
    assert sent.index(1) < sent.index(4)  # was sent last: put back behind the items after it


@pytest.mark.parametrize("other, outcome", [
    ({"modelId": "another-model"}, "sent again"),
    # The size shown may be the output's (upscaled), the seed one drawn for -1 (seedance: random), ignored by the
    # model or rounded past 2**53: it proves nothing, so the item is left to the user (was sent again: billed twice).
    ({"seed": 8}, "ambiguous"), ({"imageWidth": 768}, "ambiguous"), ({"imageWidth": "768"}, "ambiguous"), ({"prompt": None}, "ambiguous"),
    ({"modelId": None}, "adopted"), ({"modelId": MODEL_1.upper()}, "adopted"),  # not shown; the same uuid in capitals
])  # fmt: skip
def test_a_generation_of_the_prompt_with_another_size_seed_or_model_is_not_adopted(
    tmp_path: Any, other: Dict[str, Any], outcome: str
) -> None:
    api = ApiDouble()
    made = (datetime.now(timezone.utc) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # after the POST
    api.generations["theirs"] = dict(dict(id="theirs", createdAt=made, created=time.monotonic(), prompt="a red fox",
                                          modelId=MODEL_1, imageWidth=512, imageHeight=512, seed=7, n=4), **other)
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not
    item = {"prompt": "a red fox", "model_id": MODEL_1, "width": 512, "height": 512, "seed": 7}
    summary = run(api, [item], str(tmp_path))
    adopted = [r["id"] for r in journal(tmp_path) if r.get("s") == "submitted"] == ["theirs"]
    sent_again, ambiguous = summary.ok and api.calls.count("POST") == 2, (summary.ambiguous, api.calls.count("POST")) == (1, 1)
    assert {"sent again": sent_again, "ambiguous": ambiguous, "adopted": adopted} == {
        "sent again": outcome == "sent again", "ambiguous": outcome == "ambiguous", "adopted": outcome == "adopted"}


def test_a_generation_made_while_the_listing_is_read_is_not_taken_for_none(tmp_path: Any) -> None:
    class LateServer(ApiDouble):  # newest first; makes the lost call's generation late (in its read timeout)
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            if offset and "late" not in self.generations:  # after page 0 was read, then a slow page
                now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                self.generations["late"] = dict(self.generations["gen-1"], id="late", prompt="a walnut chair",
                                                created=time.monotonic(), createdAt=now)
                time.sleep(sum(self.timeout))  # the listing ends past the call's window
            newest = sorted(self.generations.values(), key=lambda g: -g["created"])
            return {"generations": [self._view(g) for g in newest[offset : offset + limit]]}

    api = LateServer()
    for n in range(3):
        api._create({"prompt": f"another {n}"}, None)
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # sent; made later, see above
    summary = run(api, [{"prompt": "a walnut chair"}], str(tmp_path))
    made = [g for g in api.generations.values() if g["prompt"] == "a walnut chair"]
    assert summary.ok and len(made) == 1  # was 2: the window had passed when the listing ended, not when it began


def test_a_listing_a_few_seconds_behind_does_not_send_an_item_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SHIPPED_LOOK_AGAIN == 10.0  # the README's "the listing shows a generation within 10 s"
    # A lag of 2 s within the shipped 10 s, scaled a tenth: 0.8 s within 1 s. Not 0.2 s: the window (0.3 s) is not
    # scaled, and the bug's 0.5 s, a tenth, looked again 0.35 s after the POST, well within 0.8 s.
    monkeypatch.setattr(batch, "LOOK_AGAIN", SHIPPED_LOOK_AGAIN / 10)
    lag = 0.8

    class LaggingListing(ApiDouble):  # a replica: it shows a generation ``lag`` seconds after it was made
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            listed = super().get_generations_by_user_id(user_id, limit, offset)["generations"]
            return {"generations": [g for g in listed if time.monotonic() - self.generations[g["id"]]["created"] > lag]}

    api = LaggingListing()
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]  # made, its answer lost
    summary = run(api, PROMPTS[:1], str(tmp_path))
    # Looked for again 0.5 s after its window (0.3 s), it read as never created, and was billed twice.
    assert summary.ok and len(api.generations) == 1 and api.calls.count("POST") == 1


def test_a_listing_that_cannot_be_read_again_leaves_each_generation_to_its_own_gets_by_id(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each round asked every generation in flight by id (a 400, a body of another shape): with 20 in flight and a
    # round a second, past the account's 2000 requests a minute (found by the chaos soak).
    monkeypatch.setattr(batch, "FIRST_POLL", 0.02)  # about 8 rounds before each item's second GET, 1 s after its first
    api = ApiDouble(slots=4, delay=0.5)  # complete by that second GET
    api.listing_error = LeonardoError("HTTP 400: Bad Request", status_code=400)
    assert run(api, PROMPTS[:4], str(tmp_path)).ok and api.calls.count("LIST") >= 3
    assert api.calls.count("GET") <= 4 * 5  # as a wait asks: at once, then 1 s, 1.5 s... apart (it was about 40)


# The second asks for prompt enhancement and is listed as sent: left ambiguous before LOOK_AGAIN, it was never adopted.
# The third's "submitting" is this version's ("r"): an older version's is queued, its window counted from this run's
# start, so only there does LOOK_AGAIN's margin decide (without it: sent again at once, billed twice).
@pytest.mark.parametrize("item, run_id", [(PROMPTS[0], {}), (dict(PROMPTS[0], enhancePrompt=True), {}),
                                          (PROMPTS[0], {"r": "earlier"})])
def test_a_rerun_just_past_a_create_calls_window_looks_again_before_sending_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, item: Dict[str, Any], run_id: Dict[str, str]
) -> None:
    # A run killed while its create call ran (journaled "submitting", the generation made), rerun a moment after the
    # call's window: the listing, a second behind, did not show it yet, and it was sent again at once, billed twice.
    monkeypatch.setattr(batch, "LOOK_AGAIN", 1.0)

    class LaggingListing(ApiDouble):  # shows a generation half a second after it was made: within LOOK_AGAIN
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            listed = super().get_generations_by_user_id(user_id, limit, offset)["generations"]
            return {"generations": [g for g in listed if time.monotonic() - self.generations[g["id"]]["created"] > 0.5]}

    api = LaggingListing()
    sent = time.time() - 0.5  # its window (0.3 s) passed, its LOOK_AGAIN not: looked for again 0.8 s from now
    api._create(dict(item), None)  # what that call made
    text = journal_text([item], [{"i": 0, "s": "submitting", "t": sent, "rt": 0.3, **run_id}])
    (tmp_path / "journal.jsonl").write_text(text, encoding="utf-8")
    assert run(api, [item], str(tmp_path)).ok and list(api.generations) == ["gen-1"]


def test_an_item_whose_create_call_may_still_run_says_what_it_waits_for_and_how_long(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rerun after a Ctrl-C during create calls said its start, then nothing for over a minute: each item (its slot,
    # and so the unsent items) held until its call's window and LOOK_AGAIN were over. Said once per item: one
    # looked for again just at that bound read it as not past (the times are rounded), and was held LOOK_AGAIN more.
    monkeypatch.setattr(batch, "LOOK_AGAIN", 0.2)
    events: List[BatchProgress] = []
    sent = time.time()  # journaled in milliseconds, as the batch writes its times
    records = [{"i": n, "s": "submitting", "t": round(sent - 0.04 * n, 3), "rt": 0.3, "r": "earlier"} for n in range(6)]  # none made
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS, records), encoding="utf-8")
    assert run(ApiDouble(), PROMPTS, str(tmp_path), on_progress=events.append).ok
    said = sorted((p.index, p.message) for p in events if p.event == "waiting")
    assert [index for index, _ in said] == list(range(6)), said  # once each, not at every wake of the loop
    for n, (_, message) in enumerate(said):
        found = re.fullmatch(rf"#{n + 1}: its create call may still be running at the server: looking for its "
                             r"generation again in (\d+\.\d)s \(its slot held till then\)", message)
        assert found and 0.2 <= float(found.group(1)) <= 0.6 - 0.04 * n, said  # its window (0.3 s) left, LOOK_AGAIN
    assert max(i for i, p in enumerate(events) if p.event == "waiting") < [p.event for p in events].index("resent")


def test_a_clock_a_little_behind_leonardos_still_adopts(tmp_path: Any) -> None:
    class ServerBehind(ApiDouble):  # Leonardo's clock 30 s behind ours: within the minute allowed
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            try:
                return super()._create(params, model_id)
            finally:
                for generation in self.generations.values():
                    behind = datetime.now(timezone.utc) - timedelta(seconds=30)
                    generation["createdAt"] = behind.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    api = ServerBehind()
    api.after_post = [LeonardoError("Bad Gateway", status_code=502)]  # made, its answer lost, the clock not known
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 1  # adopted


def test_a_created_at_with_a_zone_offset_is_the_instant_it_names(tmp_path: Any) -> None:
    assert batch._timestamp("2024-01-01T07:00:00-05:00") == batch._timestamp("2024-01-01T12:00:00Z")

    class OffsetZone(ApiDouble):  # the same instant written at -05:00: read as UTC, it would be 5 h before the item
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            try:
                return super()._create(params, model_id)
            finally:
                for generation in self.generations.values():
                    created = datetime.now(timezone(timedelta(hours=-5)))
                    generation["createdAt"] = created.strftime("%Y-%m-%dT%H:%M:%S.%f-05:00")

    api = OffsetZone()
    api.after_post = [LeonardoError("Bad Gateway", status_code=502)]  # made, its answer lost
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 1  # adopted, not sent again


@pytest.mark.parametrize("lost", [False, True])  # polled as its own; reconciled after its answer was lost
def test_a_created_at_in_the_form_but_no_real_time_is_not_understood(tmp_path: Any, lost: bool) -> None:
    class NoSuchDay(ApiDouble):
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            try:
                return super()._create(params, model_id)
            finally:
                for generation in self.generations.values():
                    generation["createdAt"] = "2024-02-30T00:00:00Z"  # no 30 February: strptime refuses it

    api = NoSuchDay()
    api.after_post = [LeonardoError("Bad Gateway", status_code=502)] if lost else []
    summary = run(api, PROMPTS[:1], str(tmp_path))  # not a bare ValueError from the main thread
    assert api.calls.count("POST") == 1  # never sent twice
    assert (summary.ambiguous, summary.ok) == ((1, False) if lost else (0, True))  # a time not read cannot prove it
    reasons = [r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"]
    assert reasons == (["some generations could not be compared: gen-1"] if lost else [])  # not a ValueError of the reading
    assert not [r for r in journal(tmp_path) if "clock" in r]  # and teaches no clock


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"])
def test_a_created_at_a_lifetime_away_from_the_answer_teaches_no_clock(tmp_path: Any, created: str) -> None:
    class FarOff(ApiDouble):
        def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
            return dict(super()._view(g), createdAt=created)

    assert run(FarOff(), PROMPTS[:1], str(tmp_path)).ok
    assert not [r for r in journal(tmp_path) if "clock" in r]  # it would end the day's reach, or read back to 1970


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("ahead", [False, True])
def test_a_journaled_clock_a_lifetime_off_is_not_taken_up(tmp_path: Any, ahead: bool) -> None:
    api = ApiDouble()
    if ahead:  # 9999's: taken up, it would end the day of reach, and this item's generation would be missed
        made, clock = _iso(time.time() - 200 - 1800), 253402300799.0 - time.time()  # ours 30 min ahead of Leonardo's
    else:  # 1970's: taken up, it would read back to 1970, and a generation of two days ago would be adopted
        made, clock = _iso(time.time() - 2 * 86400), -1796467788.81
    api.generations["theirs"] = dict(id="theirs", createdAt=made, created=time.monotonic(), prompt="a red fox",
                                     modelId=None, imageWidth=1024, imageHeight=768, seed=7, n=1)
    records = [{"clock": clock}, {"i": 0, "s": "submitting", "t": time.time() - 200}]  # an older version's note
    (tmp_path / "journal.jsonl").write_text(journal_text([{"prompt": "a red fox"}], records), encoding="utf-8")
    summary = run(api, [{"prompt": "a red fox"}], str(tmp_path))
    if ahead:  # made up to a day before: it may be this item's, so it is not sent again
        assert (summary.ambiguous, api.calls.count("POST")) == (1, 0)
    else:  # made two days before: not this item's, which was never created
        assert summary.ok and api.calls.count("POST") == 1
        assert [r["id"] for r in journal(tmp_path) if r.get("s") == "submitted"] != ["theirs"]


def test_a_journaled_clock_of_a_server_ahead_does_not_move_the_reach_later(tmp_path: Any) -> None:
    # The journal learned the server's clock 119 s ahead of ours; the clocks agree now. Item 0's create answer was
    # lost in a crash, its generation made as it was sent: read from since + 119 s - CLOCK_SKEW, it was sent again.
    api, sent = ApiDouble(), time.time() - 100
    api.generations["gen-1"] = dict(id="gen-1", createdAt=_iso(sent + 0.1), created=time.monotonic() - 100,
                                    prompt=PROMPTS[0]["prompt"], imageWidth=512, imageHeight=512, n=1)
    records = [{"clock": 119.0}, {"i": 0, "s": "submitting", "t": sent, "rt": 0.3}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 0  # adopted
    assert [r["id"] for r in journal(tmp_path) if r.get("s") == "submitted"] == ["gen-1"]


def test_a_listing_that_ran_out_of_pages_in_the_day_read_before_the_clock_was_known_is_read_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # #1's create call failed before a generation showed the clock: its listing read back a day, and ran out of pages
    # in someone else's generations of two hours before. The clock learned meanwhile, from #2, #1 was left ambiguous
    # all the same ("more than 135 generations since then"), though it needs none of them: a rerun settled it.
    monkeypatch.setattr(batch, "LISTING_MAX_PAGES", 3)

    class Busy(ApiDouble):  # newest first; the first listing, #1's, is read once #2 has shown the clock
        waited = False

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            for _ in range(0 if self.waited else 1000):
                if '"clock"' in (tmp_path / "journal.jsonl").read_text(encoding="utf-8"):
                    break
                time.sleep(0.01)
            self.waited = True
            self.calls.append("LIST")
            newest = sorted(self.generations.values(), key=lambda g: str(g["createdAt"]), reverse=True)
            return {"generations": [self._view(g) for g in newest[offset : offset + limit]]}

    api = Busy()
    for n in range(300):
        api.generations[f"theirs-{n}"] = dict(id=f"theirs-{n}", createdAt=_iso(time.time() - 7200 - n), n=1,
                                              created=time.monotonic(), prompt="someone else's", modelId=None)
    api.before_post = [LeonardoError("Internal Server Error", status_code=500)]  # #1 never created
    summary = run(api, PROMPTS[:3], str(tmp_path), concurrency=2)  # #2 runs while #1 is reconciled
    assert summary.ok and api.calls.count("POST") == 4  # was ambiguous: #1 not sent again


class BusyAccount(ApiDouble):
    """300 generations of someone else's two hours ago, listed newest first; ``pages``: reconciliation's pages read
    (a poll's listing asks fewer). With ``clock_first``, the first of them waits until the journal holds a clock."""

    def __init__(self, out: Any, clock_first: bool) -> None:
        super().__init__(slots=6)
        self.journal, self.waiting, self.pages = out / "journal.jsonl", clock_first, 0
        for n in range(300):
            self.generations[f"theirs-{n}"] = dict(id=f"theirs-{n}", createdAt=_iso(time.time() - 7200 - n), n=1,
                                                   created=time.monotonic(), prompt="someone else's", modelId=None)

    def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
        self.calls.append("LIST")
        self.pages += limit == batch.LISTING_PAGE
        for _ in range(1000 if self.waiting and limit == batch.LISTING_PAGE else 0):
            if '"clock"' in self.journal.read_text(encoding="utf-8"):
                break
            time.sleep(0.01)
        self.waiting = self.waiting and limit != batch.LISTING_PAGE
        newest = sorted(self.generations.values(), key=lambda g: str(g["createdAt"]), reverse=True)
        return {"generations": [self._view(g) for g in newest[offset : offset + limit]]}


def test_items_whose_listing_ran_out_of_pages_before_the_clock_was_known_are_read_again_together(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rerun: three create calls cut off, none answered, before any showed the clock, reconciled in one listing a day
    # back; it ran out of pages as #4, answered in their run and still in flight, taught that run's clock. Each is
    # read again, in one listing, once.
    monkeypatch.setattr(batch, "LISTING_MAX_PAGES", 3)
    api, sent = BusyAccount(tmp_path, clock_first=True), time.time() - 30
    api._create(dict(PROMPTS[0]), None)  # #1's call ran; #2's and #3's did not
    api._create(dict(PROMPTS[3]), None)  # #4's, answered
    api.generations["gen-301"]["createdAt"] = api.generations["gen-302"]["createdAt"] = _iso(sent + 0.1)
    records = [*({"i": n, "s": "submitting", "t": sent - n, "rt": 0.3, "r": "A"} for n in range(4)),
               {"i": 3, "s": "submitted", "id": "gen-302", "t": sent + 0.2}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:4], records), encoding="utf-8")
    api.calls = []
    summary = run(api, PROMPTS[:4], str(tmp_path))
    made = sorted(g["prompt"] for g in api.generations.values() if g["prompt"] != "someone else's")
    assert summary.ok and made == sorted(p["prompt"] for p in PROMPTS[:4])  # #1 adopted, #2 and #3 sent again
    assert api.calls.count("POST") == 2 and api.pages <= 2 * batch.LISTING_MAX_PAGES  # two listings, not one each


def test_items_whose_listing_ran_out_of_pages_with_the_clock_known_are_left_ambiguous_in_one_listing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sent three hours ago, the clock known: 135 generations back reach two hours only. Their reach never grows, so a
    # second listing would run out of pages the same: each was read again, one fewer a time, 3 x 3 pages (945c776).
    monkeypatch.setattr(batch, "LISTING_MAX_PAGES", 3)
    api, sent = BusyAccount(tmp_path, clock_first=False), time.time() - 3 * 3600
    records = [{"clock": 0.0, "r": "A"}, *({"i": n, "s": "submitting", "t": sent - n, "rt": 0.3, "r": "A"}
                                           for n in range(3))]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:3], records), encoding="utf-8")
    summary = run(api, PROMPTS[:3], str(tmp_path))
    assert (summary.ambiguous, api.calls.count("POST"), api.pages) == (3, 0, batch.LISTING_MAX_PAGES)
    reasons = {r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous"}
    assert reasons == {f"{batch.UNREADABLE}: more than 135 generations since then"}


def test_items_reconciled_together_read_the_listing_back_to_the_oldest_one_s_reach(tmp_path: Any) -> None:
    # A rerun, the clock known: #1 was sent an hour ago and made (its answer lost), #2 100 s ago and never made; 120
    # of another program's since, listed newest first. Read back only to #2's reach, #1's was not seen: sent again.
    api, now = BusyAccount(tmp_path, clock_first=False), time.time()
    made = api._create(dict(PROMPTS[0]), None)
    api.generations[made]["createdAt"] = _iso(now - 3590)
    for n in range(120):
        api.generations[api._create({"prompt": f"another program's {n}"}, None)]["createdAt"] = _iso(now - 3000 + n)
    records = [{"clock": 0.0, "r": "A"}, {"i": 0, "s": "submitting", "t": now - 3600, "rt": 0.3, "r": "A"},
               {"i": 1, "s": "submitting", "t": now - 100, "rt": 0.3, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    api.calls = []
    assert run(api, PROMPTS[:2], str(tmp_path)).ok and api.calls.count("POST") == 1  # #2's only (was 2)
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 0 and r.get("s") == "submitted"] == [made]


class NoImages(ApiDouble):
    """Its generations COMPLETE with no image to download (none listed, or none with a url) until ``images_at``."""

    def __init__(self, images_at: float = float("inf"), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images_at = images_at

    def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
        view = super()._view(g)
        if time.monotonic() - g["created"] >= self.images_at:
            return view
        without_url = [] if g["id"] == "gen-1" else [{"id": image["id"]} for image in view["generated_images"]]
        return dict(view, generated_images=without_url)


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("grace, item_timeout", [(0.2, 30.0), (1.0, 0.6)])  # item_timeout passes during the grace
def test_a_generation_complete_with_no_image_is_ambiguous_after_the_grace(
    tmp_path: Any, monkeypatch: Any, grace: float, item_timeout: float
) -> None:
    monkeypatch.setattr(batch, "EMPTY_GRACE", grace)
    api = NoImages(delay=0.0)
    started = time.monotonic()
    summary = run(api, PROMPTS[:2], str(tmp_path), item_timeout=item_timeout)  # gen-1: none listed, gen-2: no url
    assert summary.ambiguous == 2 and time.monotonic() - started < 10  # settled in this run, not left pending
    assert summary.credits == {"DOLLARS": pytest.approx(0.02)}  # paid for: Leonardo refunds only FAILED ones
    reasons = sorted(r["reason"] for r in journal(tmp_path) if r.get("s") == "ambiguous")
    assert reasons == [f"generation gen-{n} is COMPLETE with no image (paid for: look in your library)" for n in (1, 2)]
    assert api.calls.count("GET") + api.calls.count("LIST") >= 2  # asked again first
    assert run(api, PROMPTS[:2], str(tmp_path), retry_failed=True).ambiguous == 2  # not sent again, nor rechecked
    assert api.calls.count("POST") == 2


@pytest.mark.parametrize("delay, images_at, grace", [(0.75, 1.25, 1.0), (0.15, 0.9, 2.5)])
def test_images_that_come_within_the_grace_are_saved(
    tmp_path: Any, monkeypatch: Any, delay: float, images_at: float, grace: float
) -> None:
    # The grace runs from the first answer COMPLETE with none: not from the POST, nor ended by a second one.
    # The rounds at half the shipped FIRST_POLL, the times halved with them: seen COMPLETE at 1.14 s, past a grace
    # from the POST; or at 0.25 s, with empty answers after.
    monkeypatch.setattr(batch, "FIRST_POLL", SHIPPED_FIRST_POLL / 2)
    monkeypatch.setattr(batch, "EMPTY_GRACE", grace)
    summary = run(NoImages(images_at=images_at, delay=delay), PROMPTS[:1], str(tmp_path), item_timeout=30)
    assert (summary.complete, summary.ambiguous) == (1, 0)


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_video_only_at_motionmp4url_is_saved(tmp_path: Any, monkeypatch: Any) -> None:
    class VideosOnly(ApiDouble):  # the spec makes url optional: a video model's may be only at motionMP4URL
        def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
            view = super()._view(g)
            videos = [{"id": image["id"], "motionMP4URL": image["url"]} for image in view["generated_images"]]
            return dict(view, generated_images=videos)

    monkeypatch.setattr(batch, "EMPTY_GRACE", 0.5)
    summary = run(VideosOnly(delay=0.0), PROMPTS[:1], str(tmp_path), item_timeout=30)
    assert (summary.complete, summary.ambiguous) == (1, 0)  # was ambiguous, "COMPLETE with no image"


class FillsInLate(ApiDouble):
    """Its generations COMPLETE with only their first image to download until ``images_at`` s after: the others left
    out, or listed with a null url (``null_urls``); in every answer, or in the listing only (``by_id`` False)."""

    def __init__(self, images_at: float = float("inf"), null_urls: bool = False, by_id: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.images_at, self.null_urls, self.by_id = images_at, null_urls, by_id

    def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
        view = super()._view(g)
        if time.monotonic() - g["created"] >= self.images_at:
            return view
        first, others = view["generated_images"][:1], view["generated_images"][1:]
        return dict(view, generated_images=first + ([dict(i, url=None) for i in others] if self.null_urls else []))

    def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
        if self.by_id:
            return super().get_generation_by_id(gid)
        self.calls.append("GET")
        return {"generations_by_pk": ApiDouble._view(self, self.generations[gid])}


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("item, null_urls", [
    ({"num_images": 4}, False), ({"num_images": 4}, True),
    ({}, False), ({"model": "phoenix-v1.0"}, False),  # the spec's default: 4 on v1, 4 for phoenix
    ({"model": "phoenix-v1.0", "num_images": 2}, True),  # v2: quantity
])  # fmt: skip
def test_images_that_fill_in_after_complete_are_waited_for(
    tmp_path: Any, monkeypatch: Any, item: Dict[str, Any], null_urls: bool
) -> None:
    # Eventual-consistency hunt: a COMPLETE answer with 1 of the 4 images asked (or 3 without a url) was saved at
    # once and journaled complete; a rerun never fetched the rest.
    monkeypatch.setattr(batch, "EMPTY_GRACE", 5.0)
    items = [dict(item, prompt=f"a kite, study {n}") for n in range(2)]
    summary = run(FillsInLate(images_at=0.6, null_urls=null_urls, delay=0.0), items, str(tmp_path), item_timeout=30)
    asked = item.get("num_images", 4)
    assert (summary.complete, summary.images) == (2, 2 * asked)  # was (2, 2)
    assert [r.get("reason") for r in journal(tmp_path) if r.get("s") == "complete"] == [None, None]


def test_a_listing_showing_fewer_images_than_asked_is_asked_by_id(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(batch, "EMPTY_GRACE", 5.0)
    api = FillsInLate(by_id=False, delay=0.0)  # the listing never fills in; a GET by id has all 4
    summary = run(api, PROMPTS[:2] + [{"prompt": "a kite", "num_images": 4}], str(tmp_path), item_timeout=30)
    assert (summary.complete, summary.images) == (3, 6) and "LIST" in api.calls  # was (3, 3)


def test_a_get_by_id_without_a_status_keeps_the_listing_s_complete(tmp_path: Any, monkeypatch: Any) -> None:
    # A listing COMPLETE short of images, asked by id: an answer without `status` (all 4 images) took the listing's
    # status away, so those images were not saved and each such answer began the grace again.
    class StatusUnsaid(FillsInLate):  # until one is saved: so while both are in flight, and the listing is read
        saves = 0

        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            generation = super().get_generation_by_id(gid)["generations_by_pk"]
            unsaid = {k: v for k, v in generation.items() if k != "status"}
            return {"generations_by_pk": generation if self.saves else unsaid}

        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            self.saves += 1
            return super().save_results(result, folder)

    monkeypatch.setattr(batch, "EMPTY_GRACE", 5.0)
    api = StatusUnsaid(by_id=False, delay=0.0)  # the listing never fills in
    items = [{"prompt": f"a kite, study {n}", "num_images": 4} for n in range(2)]
    summary = run_bounded(api, items, str(tmp_path), item_timeout=30)
    assert (summary.complete, summary.images) == (2, 8) and "LIST" in api.calls  # was still running after 20 s
    assert [r.get("reason") for r in journal(tmp_path) if r.get("s") == "complete"] == [None, None]


def test_a_get_by_id_without_images_keeps_the_listing_s_images(tmp_path: Any) -> None:
    # A listing COMPLETE with 1 of the 4 images asked, asked by id: an answer without `generated_images` wiped the
    # listing's image, so a round that ended the grace so left the paid item ambiguous ("COMPLETE with no image").
    class ImagesUnsaid(FillsInLate):
        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            generation = super().get_generation_by_id(gid)["generations_by_pk"]
            return {"generations_by_pk": {k: v for k, v in generation.items() if k != "generated_images"}}

    api = ImagesUnsaid(by_id=False, delay=0.0)
    items = batch._as_items([{"prompt": f"a kite, study {n}", "num_images": 4} for n in range(2)])
    engine = batch._Engine(api, items, str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        engine.user_id = "user-1"
        ids = [api._create({"prompt": item.prompt, "num_images": 4}, None) for item in items]
        for item, gid in zip(engine.items, ids):
            engine.record(item, "submitted", id=gid)
        found, _ = engine.poll(ids, ids, True)  # both due by id
        assert api.calls.count("GET") == 2 and [len(found[gid]["generated_images"]) for gid in ids] == [1, 1]  # [0, 0]
        assert engine.shortfall(ids[0], found[ids[0]]) == "is COMPLETE with only 1 of the 4 images asked"
    finally:
        engine.journal.close()


def test_a_polled_generation_without_images_and_nothing_under_it_has_none() -> None:
    assert batch._slim({"id": "g", "status": "COMPLETE"}) == {
        "id": "g", "status": "COMPLETE", "generated_images": [], "without_url": 0}
    listed = batch._slim({"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": None}]})
    assert batch._slim({"id": "g", "generated_images": None}, dict(listed, listed=True)) == dict(listed, listed=True)


@pytest.mark.parametrize("null_urls, said", [
    (False, "only 1 of the 4 images asked"), (True, "only 1 of the 4 images asked, 3 image(s) without a URL"),
])  # fmt: skip
def test_a_generation_still_short_of_images_after_the_grace_is_saved_as_it_is_and_says_so(
    tmp_path: Any, monkeypatch: Any, null_urls: bool, said: str
) -> None:
    monkeypatch.setattr(batch, "EMPTY_GRACE", 0.25)
    api, events = FillsInLate(null_urls=null_urls, delay=0.0), []  # type: List[BatchProgress]
    summary = run(api, [{"prompt": "a kite", "num_images": 4}], str(tmp_path), on_progress=events.append)
    reason = f"generation gen-1 is COMPLETE with {said}: saved as it is (look in your library)"
    assert (summary.complete, summary.images) == (1, 1)  # paid for: what came is kept, not left ambiguous
    assert [r.get("reason") for r in journal(tmp_path) if r.get("s") == "complete"] == [reason]  # was [None]
    assert [e.message for e in events if e.event == "complete"] == [f"#1 complete: 0001-a-kite.png ({reason})"]
    assert reason in (tmp_path / "index.html").read_text(encoding="utf-8")  # on its card
    assert run(api, [{"prompt": "a kite", "num_images": 4}], str(tmp_path)).complete == 1
    assert api.calls.count("POST") == 1


def test_a_generation_whose_count_asked_is_not_known_is_saved_as_it_answers(tmp_path: Any) -> None:
    # A v2 model the bundled spec does not know, no quantity given: no count to hold it to (a minute's grace would
    # leave a reason on it).
    api = FillsInLate(delay=0.0)
    summary = run(api, [{"prompt": "a kite", "model": "a-model-this-version-does-not-know"}], str(tmp_path))
    assert (summary.complete, summary.images) == (1, 1)
    assert [r.get("reason") for r in journal(tmp_path) if r.get("s") == "complete"] == [None]


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("images", [5, 2.5, True])
def test_one_generation_whose_images_are_not_a_list_holds_up_no_other(
    tmp_path: Any, monkeypatch: Any, images: Any
) -> None:
    class OneOdd(ApiDouble):
        def _view(self, g: Dict[str, Any]) -> Dict[str, Any]:
            view = super()._view(g)
            return dict(view, generated_images=images) if g["id"] == "gen-1" and view["status"] == "COMPLETE" else view

    monkeypatch.setattr(batch, "EMPTY_GRACE", 0.2)
    summary = run(OneOdd(delay=0.0), PROMPTS[:3], str(tmp_path), item_timeout=30)
    assert (summary.complete, summary.ambiguous) == (2, 1)  # the round's other generations were still read


def test_apiconcurrencyslots_beyond_any_plan_is_taken_as_the_most_a_batch_fills(tmp_path: Any) -> None:
    api = ApiDouble(slots=10 ** 400)  # math.ceil(slots / 2) would overflow a float
    assert run(api, PROMPTS[:2], str(tmp_path)).ok


# The note names the model whose generations were seen listed; an older version's (true) names none: it proves nothing,
# as another model's does not (it was taken to prove the listing shows every v2 model's: a resend on silence).
@pytest.mark.parametrize("seen, posts", [("phoenix-v1.0", 1), (True, 0), ("kling-3.0", 0)])
def test_the_note_that_the_listing_shows_a_v2_model_is_kept_for_a_rerun(tmp_path: Any, seen: Any, posts: int) -> None:
    v2 = [dict(KITE, prompt="a kite")]
    records = [{"v2_listed": seen}, {"i": 0, "s": "submitting", "t": time.time() - 200}]  # an earlier run's note
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, records), encoding="utf-8")
    api = ApiDouble()
    summary = run(api, v2, str(tmp_path))  # with the note: its silence proved it was never made
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (posts, 1 - posts, posts)


def test_a_create_call_goes_out_only_once_its_record_is_fsynced(tmp_path: Any, monkeypatch: Any) -> None:
    synced: List[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        real(fd)
        synced.append((tmp_path / "journal.jsonl").read_text(encoding="utf-8"))

    monkeypatch.setattr(batch.os, "fsync", fsync)
    api = ApiDouble()
    ordered: List[bool] = []
    create = api.create_generation
    api.create_generation = lambda body: (ordered.append(any('"submitting"' in text for text in synced)), create(body))[1]  # type: ignore[method-assign]
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and ordered == [True]


def run_bounded(api: ApiDouble, items: Any, out: str, **options: Any) -> BatchSummary:
    """run(), failing the test instead of hanging it if the batch does not end within 20 s."""
    result: List[BatchSummary] = []
    thread = threading.Thread(target=lambda: result.append(run(api, items, out, **options)), daemon=True)
    thread.start()
    thread.join(20)
    assert result, f"run_batch still running after 20 s; calls: {collections.Counter(api.calls)}"
    return result[0]


def test_a_v2_item_does_not_wait_for_one_its_own_prompt_keeps_from_being_sent(tmp_path: Any) -> None:
    v2 = [dict(KITE, prompt="a kite", seed=n) for n in range(2)]
    crashed = [{"i": 0, "s": "submitting", "t": time.time() - 200, "rt": 0.3, "r": "earlier"}]  # the POST never left
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, crashed), encoding="utf-8")
    summary = run_bounded(ApiDouble(), v2, str(tmp_path))
    assert (summary.complete, summary.ambiguous) == (1, 1)  # item 1 was sent once item 0 stopped holding the prompt


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_v2_item_does_not_wait_for_one_left_in_flight_past_item_timeout(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)  # it looks again soon, and keeps waiting while item 1 runs
    class NoV2Listed(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.calls.append("LIST")
            return {"generations": []}

    api = NoV2Listed(delay=10_000)  # item 1's generation never completes
    api.generations["gen-9"] = dict(id="gen-9", createdAt="2020-01-01T00:00:00Z", created=time.monotonic(),
                                    prompt="a kite 1", modelId=None, imageWidth=1, imageHeight=1, seed=1, n=1)
    v2 = [dict(KITE, prompt=f"a kite {n}") for n in range(2)]
    records = [{"i": 0, "s": "submitting", "t": time.time() - 200}, {"i": 1, "s": "submitted", "id": "gen-9"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, records), encoding="utf-8")
    summary = run_bounded(api, v2, str(tmp_path), item_timeout=0.5)
    assert (summary.ambiguous, summary.pending) == (1, 1)


def test_a_v2_item_does_not_wait_for_one_its_own_slot_keeps_from_being_sent(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)  # it would look again soon, for ever
    api = ApiDouble()
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # may have run; here it did not
    v2 = [dict(KITE, prompt=f"a kite {n}") for n in range(3)]
    summary = run_bounded(api, v2, str(tmp_path), concurrency=1)  # it holds the only slot while it waits
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (2, 1, 3)
    assert "no v2 generation seen" in [r for r in journal(tmp_path) if r.get("s") == "ambiguous"][0]["reason"]


def test_a_v2_item_waits_for_one_still_looked_for_which_may_show_the_listing_holds_v2(
    tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)
    monkeypatch.setattr(batch, "LOOK_AGAIN", 0.5)  # the listing lags 0.3 s behind

    class LaggingListing(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            listed = super().get_generations_by_user_id(user_id, limit, offset)["generations"]
            return {"generations": [g for g in listed if time.monotonic() - self.generations[g["id"]]["created"] > 0.3]}

    api = LaggingListing()
    v2 = [dict(KITE, prompt=f"a kite {n}") for n in range(3)]
    api._create(dict(v2[1]), None)  # the second's call made it; the first's POST never left
    crashed = [{"i": 0, "s": "submitting", "t": time.time() - 200}, {"i": 1, "s": "submitting", "t": time.time()}]
    (tmp_path / "journal.jsonl").write_text(journal_text(v2, crashed), encoding="utf-8")
    summary = run_bounded(api, v2, str(tmp_path), concurrency=2)  # the second's slot is not held for good
    assert summary.ok and len(api.generations) == 3 and api.calls.count("POST") == 3  # the first was left ambiguous
    assert {"i": 1, "s": "submitted", "id": "gen-1", "adopted": True} in journal(tmp_path)


def test_a_v2_item_waits_for_a_running_one_whose_polls_read_the_listing_which_may_show_v2(
    tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(batch, "V2_WAIT", 10.0)

    class LaggingListing(ApiDouble):  # shows a generation 0.7 s after it was made: not yet when the first is judged
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            listed = super().get_generations_by_user_id(user_id, limit, offset)["generations"]
            return {"generations": [g for g in listed if time.monotonic() - self.generations[g["id"]]["created"] > 0.7]}

    api = LaggingListing(delay=1.0)  # the second runs 1 s, alone in flight: listed from 0.7 s, before it ends
    api.before_post = [LeonardoError("timed out waiting for the API's response")]  # the first may have run; did not
    started = time.time()
    summary = run(api, [dict(KITE, prompt=f"a kite {n}") for n in range(2)], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 3, journal(tmp_path)  # was left ambiguous: no v2 seen yet
    sent = [r["t"] for r in journal(tmp_path) if r.get("i") == 0 and r.get("s") == "submitting"]
    # Sent again about 1 s in: a poll read the listing (not a GET by id, for the one in flight) and saw the second.
    assert len(sent) == 2 and sent[1] - started < batch.V2_WAIT / 2  # not the fallback's wait


def test_a_rechecked_item_holds_its_prompt_while_it_is_reconciled(tmp_path: Any) -> None:
    class SlowAnswers(ApiDouble):
        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            created = super()._create(params, model_id)
            time.sleep(0.4)  # made at once, answered later: a listing read meanwhile shows it
            return created

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            time.sleep(0.15)  # read once item 1's create call (had it been sent) has made its generation
            return super().get_generations_by_user_id(user_id, limit, offset)

    items = [{"prompt": "a kite", "width": 512, "height": 512}] * 2
    records = [{"i": 0, "s": "submitting", "t": time.time() - 200, "rt": 1.3},
               {"i": 0, "s": "ambiguous", "reason": "could not read the account's generations: x", "recheck": True}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    api = SlowAnswers()
    api.timeout = (1.0, 0.3)  # a create call answered 0.4 s late: within the client's timeout, as it must be
    summary = run_bounded(api, items, str(tmp_path))
    assert summary.ok and len(api.generations) == 2  # item 0 did not adopt item 1's generation


@pytest.mark.parametrize("failures", [1, 2])
def test_an_item_waits_while_an_ambiguous_one_of_its_prompt_may_still_make_a_match(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, failures: int
) -> None:
    class ListingFails(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.calls.append("LIST")
            if self.calls.count("LIST") <= failures:
                raise LeonardoError("Service Unavailable", status_code=503)
            return super().get_generations_by_user_id(user_id, limit, offset)

    for name in ("CLOCK_SKEW", "LOCK_MARGIN"):  # the wait: these and the 1.3 s window of a POST
        monkeypatch.setattr(batch, name, 0.2)
    api = ListingFails()
    api.timeout = (1.0, 0.3)  # that window: the waits above are set against it
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)] * 2  # both made, both answers lost
    items = [{"prompt": "a walnut chair"}] * 2
    events: List[BatchProgress] = []
    first = run_bounded(api, items, str(tmp_path), on_progress=events.append)
    # 1: the listing read again a moment later, no item left ambiguous (the second was held back). 2: the first left
    # ambiguous (was (0, 2): the second, sent at once, shared its window), then adopted its generation as the batch
    # was done (was (1, 1) till a rerun).
    assert first.ok and len(api.generations) == 2
    if failures == 2:
        assert [(p.event, p.index) for p in events if "held back" in p.message] == [("waiting", 1)]  # said once


def test_an_item_is_held_lock_margin_past_an_ambiguous_ones_window(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Item 0 was left ambiguous 0.4 s ago (its window 0.3 s); item 1, of its prompt, has its create answer lost. Sent
    # before item 0's window is CLOCK_SKEW + LOCK_MARGIN past, item 0 "may own" its generation: ambiguous for good.
    # Item 0's "submitting" is an older version's (no "r"): its window counts from this run's start, 0.4 s later.
    # LOCK_MARGIN outlasts the run loop's 1 s tick: at 1 s (and the bound from ``since``), one held without it passed.
    monkeypatch.setattr(batch, "CLOCK_SKEW", 0.2)
    monkeypatch.setattr(batch, "LOCK_MARGIN", 2.0)
    items, since = [{"prompt": "a red chair"}] * 2, time.time() - 0.4
    records = [{"i": 0, "s": "submitting", "t": since, "rt": 0.3}, {"i": 0, "s": "ambiguous", "reason": "x"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    api = ApiDouble()
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    summary = run_bounded(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)  # item 1 adopted
    sent = [r["t"] for r in journal(tmp_path) if r.get("i") == 1 and r.get("s") == "submitting"]
    assert sent and sent[0] >= since + 0.4 + 0.3 + 2.2 - 0.05  # held: window + CLOCK_SKEW + LOCK_MARGIN from the start


def test_an_ambiguous_item_whose_generation_is_known_holds_back_no_other(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch, "MISSING_GRACE", 0.5)  # gen-1 taken for deleted soon (see below)
    class Api(ApiDouble):
        fail_listing_once = False

        def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
            if params.get("seed") == 9:  # the second: made, its answer lost, the listing read for it fails once
                self.after_post, self.fail_listing_once = [LeonardoError("Internal Server Error", status_code=500)], True
            return super()._create(params, model_id)

        def get_generation_by_id(self, gid: str) -> Dict[str, Any]:
            return {"generations_by_pk": None} if gid == "gen-1" else super().get_generation_by_id(gid)

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            if self.fail_listing_once:
                self.fail_listing_once = False
                raise LeonardoError("Bad Gateway", status_code=502)
            page = super().get_generations_by_user_id(user_id, limit, offset)["generations"]
            return {"generations": [g for g in page if g["id"] != "gen-1"]}  # the first's: deleted in the web app

    api = Api()
    items = [{"prompt": "a lamp"}, {"prompt": "a lamp", "seed": 9}]
    run_bounded(api, items, str(tmp_path))  # the first answered gen-1, then "no longer exists": ambiguous
    again = run_bounded(api, items, str(tmp_path))
    assert (again.complete, again.ambiguous, len(api.generations)) == (1, 1, 2)  # was (0, 2): "may own"
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 1 and r.get("s") == "submitted"] == ["gen-2"]


def test_an_item_adopts_its_match_beside_an_ambiguous_one_of_its_prompt_known_to_have_made_another(
    tmp_path: Any,
) -> None:
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox"}, None)
    api.generations["gen-1"]["createdAt"] = _iso(sent + 0.7)  # in the first's window too, but it made gone-1
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 1.3},
               {"i": 0, "s": "submitted", "id": "gone-1", "t": sent + 0.1},
               {"i": 0, "s": "ambiguous", "reason": "its generation no longer exists"},
               {"i": 1, "s": "submitting", "t": sent + 0.5, "rt": 1.3}]
    items = [{"prompt": "a red fox"}] * 2
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, len(api.generations)) == (1, 1, 1)  # was (0, 2, 1): "may own"


def foxes_reconciled(
    tmp_path: Any, made: float, sends: List[Tuple[float, bool]]
) -> Tuple[ApiDouble, BatchSummary, List[BatchProgress], List[Dict[str, Any]]]:
    """A run of items of one prompt, each journaled sent ``sends[n][0]`` s after the first (200 s ago) and, if
    ``sends[n][1]``, left ambiguous by a listing unread; one generation of that prompt made ``made`` s after the first.
    The double, the summary, the events and this run's item records."""
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox"}, None)
    api.generations["gen-1"]["createdAt"] = _iso(sent + made)
    unread = {"s": "ambiguous", "reason": f"{batch.UNREADABLE}: HTTP 503", "recheck": True}
    records: List[Dict[str, Any]] = []
    for n, (after, ambiguous) in enumerate(sends):
        records += [{"i": n, "s": "submitting", "t": sent + after, "rt": 1.3, "r": "earlier"}]
        records += [dict(unread, i=n)] if ambiguous else []
    items = [{"prompt": "a red fox"}] * len(sends)
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    events: List[BatchProgress] = []
    summary = run_bounded(api, items, str(tmp_path), on_progress=events.append)
    return api, summary, events, [r for r in journal(tmp_path)[1 + len(items) + len(records):] if "i" in r]


def test_an_item_blocked_by_a_sibling_that_adopts_in_the_same_reconciliation_is_judged_again(tmp_path: Any) -> None:
    # The first's create call made nothing; the second's, sent after the first's window (and CLOCK_SKEW), made gen-1.
    api, summary, events, this_run = foxes_reconciled(tmp_path, 100.5, [(0, True), (100, True)])
    # Was (1, 1, 1): the first left ambiguous ("may own") as it was judged before the second adopted gen-1.
    assert (summary.complete, summary.ambiguous, len(api.generations)) == (2, 0, 2)
    assert summary.done_this_run == 2 and not [e for e in events if e.event == "ambiguous"]
    assert [(r["i"], r["s"]) for r in this_run if r["s"] != "complete"] == [
        (1, "submitted"), (0, "planned"), (0, "submitting"), (0, "submitted")]  # judged once: nothing else journaled


def test_an_item_put_off_in_a_reconciliation_still_counts_as_ambiguous_for_those_judged_after_it(tmp_path: Any) -> None:
    # #2 ("submitting", never judged yet) is put off behind ambiguous #1; gen-1, made in #3's call, is after #2's
    # earliest too (and #2's window reaches #3's): #3 may not adopt it while #2 may own it, as before #2 was put off.
    api, summary, events, this_run = foxes_reconciled(tmp_path, 90.5, [(0, True), (30, False), (90, True)])
    assert (summary.ambiguous, len(api.generations)) == (3, 1)  # nothing sent again: not adopted by #3 either
    assert summary.done_this_run == 1 and sorted(e.index for e in events if e.event == "ambiguous") == [0, 1, 2]
    may_own = "an ambiguous item with this prompt may own the generation that matches"
    assert sorted((r["i"], r["reason"]) for r in this_run) == [(n, may_own) for n in range(3)]


def test_an_item_put_off_in_a_reconciliation_holds_back_no_v2_item_of_its_prompt(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # #1 (made gen-1) is put off behind ambiguous #3; v2 #2 was never created and waits for a v2 generation to show
    # in the listing. #4, v2 of #1's prompt, is still to be sent: it may show one. A put-off #1 counted as waiting
    # held #4 back from that count, so #2 was left ambiguous ("no v2 generation seen") where it was sent again.
    monkeypatch.setattr(batch, "V2_WAIT", 0.2)
    api, sent = ApiDouble(), time.time() - 200
    api._create({"prompt": "a red fox"}, None)
    api.generations["gen-1"]["createdAt"] = _iso(sent + 30.5)
    records = [{"i": 2, "s": "submitting", "t": sent, "rt": 1.3, "r": "earlier"},
               {"i": 2, "s": "ambiguous", "reason": f"{batch.UNREADABLE}: HTTP 503", "recheck": True},
               {"i": 0, "s": "submitting", "t": sent + 30, "rt": 1.3, "r": "earlier"},
               {"i": 1, "s": "submitting", "t": sent + 10, "rt": 1.3, "r": "earlier"}]
    items = [{"prompt": "a red fox"}, dict(KITE, prompt="a kite"), {"prompt": "a red fox"},
             dict(KITE, prompt="a red fox")]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run_bounded(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, len(api.generations)) == (2, 2, 3)  # #2 and #4 made; was (1, 3, 2)
    settled = {r["i"]: r["s"] for r in journal(tmp_path) if "i" in r}
    assert [settled[i] for i in range(4)] == ["ambiguous", "complete", "ambiguous", "complete"]


class NameResolution(NewConnectionError):
    """As urllib3 2's NameResolutionError: a DNS failure, the connection never made."""


def unresolved() -> LeonardoError:
    cause = requests.ConnectionError(MaxRetryError(None, "/generations", NameResolution(None, "Failed to resolve")))
    error = LeonardoError.from_transport(cause, "POST", "https://cloud.leonardo.ai/api/rest/v1/generations")
    error.__cause__ = cause
    return error


def refused() -> LeonardoError:
    with Client(api_key="k", base_url="http://127.0.0.1:9/api/rest/v1", max_retries=0) as closed:
        with pytest.raises(LeonardoError) as info:
            closed.create_generation({"prompt": "x"})
    return info.value


@pytest.mark.parametrize("never_made", [refused, unresolved])  # a DNS failure was taken for a POST that may have run
def test_a_connection_never_made_is_sent_again_at_once(tmp_path: Any, never_made: Callable[[], LeonardoError]) -> None:
    api = ApiDouble()
    api.before_post = [never_made()]
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 3 and len(api.generations) == 2
    reasons = [r.get("reason", "") for r in journal(tmp_path)]
    assert any(r.startswith("not sent, sent again later: connection failed") for r in reasons)
    assert not any("never created" in r for r in reasons)  # re-sent without reconciling


@pytest.mark.parametrize("never_made", [refused, unresolved])
def test_connections_never_made_pause_submissions_and_stop_the_batch_after_item_timeout(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, never_made: Callable[[], LeonardoError]
) -> None:
    # README: each create call "its connection never made" counts toward the stop after item_timeout, and pauses
    # submissions as a failure does: a network or DNS down for good is not tried for ever, nor at the POST pace (30
    # calls in a few ms here). (Scaled: pauses of 0.05 s doubling to 0.1 s at most, item_timeout 0.5 s: about 6 calls.)
    monkeypatch.setattr(batch, "MAX_DOUBLED_PAUSE", 0.1)
    api = ApiDouble()
    api.before_post = [never_made() for _ in range(30)]
    with pytest.raises(LeonardoError, match=r"no create call went through \(the last: connection failed"):
        run(api, PROMPTS[:2], str(tmp_path), item_timeout=0.5)
    assert api.calls.count("POST") <= 10 and api.generations == {}


class ServerClockBehind(ApiDouble):
    """The server's clock 5 minutes behind ours; the answer to the create call for ``lost`` is
    lost once, after the generation was made."""

    def __init__(self, lost: str = "", behind: float = 300.0) -> None:
        super().__init__()
        self.lost, self.behind = lost, behind

    def _create(self, params: Dict[str, Any], model_id: Optional[str]) -> str:
        gid = super()._create(params, model_id)
        created = datetime.now(timezone.utc) - timedelta(seconds=self.behind)
        self.generations[gid]["createdAt"] = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if params["prompt"] == self.lost:
            self.lost = ""
            raise LeonardoError("Bad Gateway", status_code=502)
        return gid


def test_a_clock_ahead_of_the_servers_is_learned_from_the_batchs_generations_and_nothing_is_billed_twice(
    tmp_path: Any,
) -> None:
    api = ServerClockBehind(lost=PROMPTS[1]["prompt"])
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and len(api.generations) == 2 and api.calls.count("POST") == 2  # adopted, not sent again
    clocks = [r["clock"] for r in journal(tmp_path) if "clock" in r]
    assert clocks and -301 < clocks[-1] < -299  # how far behind the server's clock may be, for a rerun


def test_a_rerun_reconciles_with_the_clock_the_journal_learned(tmp_path: Any) -> None:
    api = ServerClockBehind()
    sent = time.time() - 10  # longer ago than the create call could run
    api._create(dict(PROMPTS[0]), None)  # made; the answer never journaled
    records = [{"clock": -300.5, "r": "A"}, {"i": 0, "s": "submitting", "t": sent, "rt": 1.3, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 1 and len(api.generations) == 1  # adopted


def test_a_rerun_takes_the_smallest_clock_bound_the_journal_holds(tmp_path: Any) -> None:
    # Run A learned its clock 300 s ahead of Leonardo's and died with item 0's answer lost; run B, its clock right,
    # journaled its own bound (0) after it and stopped before item 0 was settled. Taken as the last note, B's bound
    # read item 0's listing back to its time less CLOCK_SKEW only: its generation missed, it was sent again.
    api, sent = ServerClockBehind(), time.time() - 10
    api._create(dict(PROMPTS[0]), None)  # made 300 s before its "submitting" time, by Leonardo's clock
    api.calls = []
    records = [{"clock": -300.5, "r": "A"}, {"i": 0, "s": "submitting", "t": sent, "rt": 1.3, "r": "A"},
               {"clock": 0.0, "r": "B"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 0 and len(api.generations) == 1  # adopted


def test_a_journaled_clock_lets_a_rerun_send_again_an_item_of_an_earlier_run_never_created(tmp_path: Any) -> None:
    # The journal knows the clocks agree; the earlier run stopped 3 h ago before item 0's create call left. The account
    # holds a generation of its prompt made 5 h ago (another batch's): outside the item's window, so it was never
    # created and is sent again (without the journal's clock, a day back counts: it was left ambiguous).
    api = ApiDouble()
    made = (datetime.now(timezone.utc) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api.generations["old"] = dict(id="old", createdAt=made, created=time.monotonic() - 18000,
                                  prompt=PROMPTS[0]["prompt"], n=1)
    records = [{"clock": 0.0, "r": "A"}, {"i": 0, "s": "submitting", "t": time.time() - 10800, "rt": 1.3, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 0, 1), journal(tmp_path)[-3:]


def test_a_clock_set_ahead_since_an_earlier_run_is_learned_again(tmp_path: Any) -> None:
    # The journal's bound came from a run whose clock was right; this run's is 5 minutes ahead.
    api = ServerClockBehind(lost=PROMPTS[1]["prompt"])
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], [{"clock": 0.0, "r": "A"}]), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and len(api.generations) == 2 and api.calls.count("POST") == 2  # adopted, not sent again


def test_the_listing_read_to_reconcile_teaches_the_clock_from_older_entries(tmp_path: Any) -> None:
    # A rerun reconciles first: item 0's generation, answered before the crash, is older than the reach item 1's
    # bound (0, its run's) allows; it still shows a clock (of item 0's run), and the smallest bound serves every run.
    api = ServerClockBehind()
    sent = time.time() - 10
    own, lost = (api._create(dict(p), None) for p in PROMPTS[:2])  # both made 5 minutes "ago"
    records = [{"clock": 0.0, "r": "A"}, {"i": 0, "s": "submitting", "t": sent, "r": "B"},
               {"i": 0, "s": "submitted", "id": own, "t": sent},
               {"i": 1, "s": "submitting", "t": sent, "rt": 1.3, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 2 and len(api.generations) == 2  # item 1 adopted
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 1 and r.get("s") == "submitted"] == [lost]


def test_a_clock_learned_while_reconciling_reads_the_listing_again_from_further_back(tmp_path: Any) -> None:
    # A rerun; the journal's clock bound (0) is item 1's run's, item 0's run's clock was 290 s ahead. The listing,
    # newest first, stops at a page older than the bound: item 0's generation there shows the smaller bound,
    # and item 1's, made before 49 of another program's, is on the page after: it was sent again.
    class NewestFirst(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.calls.append("LIST")
            ordered = sorted(self.generations.values(), key=lambda g: str(g["createdAt"]), reverse=True)
            return {"generations": [self._view(g) for g in ordered[offset : offset + limit]]}

    api, now = NewestFirst(), time.time()
    own, lost = (api._create(dict(p), None) for p in PROMPTS[:2])
    others = [api._create({"prompt": f"another program's {n}"}, None) for n in range(49)]
    for gid, age in [(own, 295), (lost, 297)] + [(other, 296) for other in others]:
        api.generations[gid]["createdAt"] = _iso(now - age)
    records = [{"clock": 0.0, "r": "A"}, {"i": 0, "s": "submitting", "t": now - 6, "r": "B"},
               {"i": 0, "s": "submitted", "id": own, "t": now - 5},
               {"i": 1, "s": "submitting", "t": now - 10, "rt": 1.3, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and len(api.generations) == 51  # item 1 adopted, not sent again
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 1 and r.get("s") == "submitted"] == [lost]


@pytest.mark.parametrize("behind", [300.0, 23 * 3600.0])  # README: our clock up to a day ahead (was an hour)
def test_before_the_clock_is_known_a_generation_a_day_back_leaves_the_item_ambiguous(tmp_path: Any, behind: float) -> None:
    # One item, the machine's clock ahead, its create answer lost: nothing has shown the clock yet.
    api = ServerClockBehind(lost=PROMPTS[0]["prompt"], behind=behind)
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.ambiguous, len(api.generations), api.calls.count("POST")) == (1, 1, 1)  # not sent again
    assert summary.done_this_run == 1  # settled in this run (was 0: ambiguous ones were not counted)
    assert "our clock may be ahead" in journal(tmp_path)[-1]["reason"]


def test_a_clock_set_ahead_between_runs_is_not_taken_as_the_one_the_journal_learned(tmp_path: Any) -> None:
    # The first run learned the clocks agreed; the machine's clock was set 5 minutes ahead before this one,
    # whose only item's create answer is lost: nothing of this run has shown the clock yet.
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], [{"clock": 0.0, "r": "A"}]), encoding="utf-8")
    api = ServerClockBehind(lost=PROMPTS[0]["prompt"])
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.ambiguous, len(api.generations), api.calls.count("POST")) == (1, 1, 1)  # was sent again
    assert "our clock may be ahead" in journal(tmp_path)[-1]["reason"]


def test_a_generation_of_an_earlier_run_does_not_show_the_clock_of_this_one(tmp_path: Any) -> None:
    # As above, and item 0, sent in the earlier run (an hour ago by its clock, right then), is still in flight: its
    # generation shows the journal's clock again. Taken as this run's (our clock set an hour ahead since), item 1's
    # lost answer was reconciled with it: its generation, made "an hour before" it was sent, was sent again.
    api, sent = ServerClockBehind(lost=PROMPTS[1]["prompt"], behind=3600.0), time.time() - 3620
    api.generations["old"] = dict(id="old", createdAt=_iso(sent + 0.1), created=time.monotonic() - 20,
                                  prompt=PROMPTS[0]["prompt"], n=1)
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 0.3, "r": "A"},
               {"i": 0, "s": "submitted", "id": "old", "t": sent + 0.2}, {"clock": 0.0, "r": "A"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)  # item 1 not sent again
    assert "our clock may be ahead" in journal(tmp_path)[-1]["reason"]


@pytest.mark.parametrize("sent_by", ["A", None], ids=["an earlier run", "an older version"])
@pytest.mark.parametrize("note", [{"clock": 0.0, "r": "B"}, {"clock": 0.0}, None],
                         ids=["journaled", "journaled by an older version", "learned in this run"])
def test_a_clock_measured_in_one_run_is_not_taken_for_anothers(tmp_path: Any, sent_by: Any, note: Any) -> None:
    # Run A, the machine's clock 10 minutes ahead, journaled item 0's "submitting" and died before its answer: its
    # generation was made 600 s before that time by Leonardo's clock. The clocks agree now, as a note of another run
    # says, or item 1 shows: taken for item 0's run's, its listing read back to its time less CLOCK_SKEW only,
    # missed its generation, and it was sent again (billed twice). An older version's item (no run's id): the same,
    # even with an older version's note (no run's id either: of some run, not known to be the item's).
    api, sent = BusyAccount(tmp_path, clock_first=note is None), time.time() - 700
    made = api._create(dict(PROMPTS[0]), None)
    api.generations[made]["createdAt"], api.calls = _iso(sent - 600), []
    records = [{"i": 0, "s": "submitting", "t": sent, "rt": 0.3, **({"r": sent_by} if sent_by else {})}]
    records += [note] if note else []
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert any("clock" in r for r in journal(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)  # item 1's only
    assert "our clock may be ahead" in [r for r in journal(tmp_path) if r.get("i") == 0][-1]["reason"]


def test_the_answer_a_retried_item_had_in_an_earlier_run_does_not_show_this_runs_clock(tmp_path: Any) -> None:
    # Item 0's generation FAILED an hour ago, in a run whose clock was right; this run's is 10 minutes ahead. Sent again
    # (--retry-failed), its answer lost: the old generation against the old answer's time was taken for this run's
    # clock, and the new one, made 600 s before its "submitting" time by Leonardo's clock, missed: sent again.
    api, then = ServerClockBehind(lost=PROMPTS[0]["prompt"], behind=600.0), time.time() - 3600
    api.generations["old-0"] = dict(id="old-0", createdAt=_iso(then + 0.5), created=time.monotonic(),
                                    prompt=PROMPTS[0]["prompt"], n=1)
    records = [{"i": 0, "s": "submitting", "t": then, "r": "A"}, {"i": 0, "s": "submitted", "id": "old-0", "t": then},
               {"i": 0, "s": "failed", "reason": "generation old-0 FAILED"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:1], records), encoding="utf-8")
    summary = run(api, PROMPTS[:1], str(tmp_path), retry_failed=True)
    assert (summary.ambiguous, api.calls.count("POST")) == (1, 1)  # not sent again
    assert "our clock may be ahead" in journal(tmp_path)[-1]["reason"]


def test_the_generation_a_retried_item_had_before_teaches_nothing_of_the_clock(tmp_path: Any) -> None:
    # --retry-failed: item 0's FAILED generation of 2 minutes ago is still listed beside its new one. Measured
    # against the new answer, it read as a server clock 2 minutes behind ours, journaled for every later run,
    # and reconciliation then reached that much further back (to adopt another batch's generation).
    api = ApiDouble()
    made = (datetime.now(timezone.utc) - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    api.generations["old-0"] = dict(id="old-0", createdAt=made, created=time.monotonic(), prompt=PROMPTS[0]["prompt"], n=1)
    sent = time.time() - 121
    records = [{"i": 0, "s": "submitting", "t": sent}, {"i": 0, "s": "submitted", "id": "old-0", "t": sent + 1},
               {"i": 0, "s": "failed", "reason": "generation old-0 FAILED"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    api.before_post = [None, LeonardoError("Internal Server Error", status_code=500)]  # reconciled: the listing read
    summary = run(api, PROMPTS[:2], str(tmp_path), retry_failed=True)
    assert summary.ok and api.calls.count("POST") == 3
    clocks = [r["clock"] for r in journal(tmp_path) if "clock" in r]
    assert clocks and all(abs(clock) < 5 for clock in clocks), clocks  # ApiDouble's clock is ours


def test_an_adopted_generation_teaches_nothing_of_the_clock(tmp_path: Any) -> None:
    # The batch crashed 3 h ago right after item 0's POST; its generation is adopted now, 3 h after it was
    # made. Taken as a clock bound, that would reach 3 h back and adopt another batch's old fox for item 1:
    # with the clock unknown, that fox of its prompt leaves item 1 ambiguous (our clock may be a day ahead).
    api = ApiDouble()
    hours_ago = {"gen-0": (PROMPTS[0]["prompt"], 10800), "old-fox": (PROMPTS[1]["prompt"], 7200)}
    for gid, (prompt, age) in hours_ago.items():
        made = (datetime.now(timezone.utc) - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        api.generations[gid] = dict(id=gid, createdAt=made, created=time.monotonic() - age, prompt=prompt, n=1)
    records = [{"i": 0, "s": "submitting", "t": time.time() - 10800, "rt": 1.3}]
    (tmp_path / "journal.jsonl").write_text(journal_text(PROMPTS[:2], records), encoding="utf-8")
    api.before_post = [LeonardoError("Bad Gateway", status_code=502)]  # item 1's first POST made nothing
    summary = run(api, PROMPTS[:2], str(tmp_path))
    ids = {r["i"]: r["id"] for r in journal(tmp_path) if r.get("s") == "submitted"}
    assert ids == {0: "gen-0"} and (summary.complete, summary.ambiguous) == (1, 1)  # the old fox not adopted
    assert not [r for r in journal(tmp_path) if "clock" in r]  # none learned: item 1 made none


def test_identical_items_are_matched_one_to_one(tmp_path: Any) -> None:
    api = ApiDouble()
    same = [{"prompt": "the same chair", "width": 512, "height": 512}] * 4
    api.after_post = [LeonardoError("Bad Gateway", status_code=502), LeonardoError("Bad Gateway", status_code=502)]
    summary = run(api, same, str(tmp_path))
    assert summary.ok and len(api.generations) == 4 and api.calls.count("POST") == 4
    ids = [r["id"] for r in journal(tmp_path)[1:] if r.get("s") == "submitted"]
    assert sorted(ids) == ["gen-1", "gen-2", "gen-3", "gen-4"]  # each adopted once


def test_an_item_never_adopts_the_generation_of_another_with_its_prompt(tmp_path: Any) -> None:
    class LateAnswers(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            answer = super().create_generation(body)
            if body.get("width") == 768:
                time.sleep(0.6)  # created at once, answered after the first item's reconciliation
            return answer

    api = LateAnswers()
    api.timeout = (0.5, 0.15)  # a create call answered 0.6 s late: within the client's timeout, as it must be
    api.before_post = [LeonardoError("Internal Server Error", status_code=500)]  # the first POST created nothing
    items = [{"prompt": "a red fox"}, {"prompt": "a red fox", "width": 768, "height": 768}]
    summary = run(api, items, str(tmp_path))
    assert summary.ok and len(api.generations) == 2
    # The first gives no size, so the listing cannot tell its generation from the second's: with
    # both unanswered at once, it adopted the 768 x 768 one, and both items got the same images.
    final = {r["i"]: r["id"] for r in journal(tmp_path)[1:] if r.get("s") == "submitted"}
    assert [api.generations[final[i]]["imageWidth"] for i in (0, 1)] == [1024, 768]


def test_an_item_never_adopts_another_items_generation_listed_in_capitals(tmp_path: Any) -> None:
    # Compared case-sensitively, the listing's GEN-1 was no item's: the second item, its create call answered 500
    # and never run, adopted it, and was "complete" with the first's images, never generated.
    api = Reshaped(listing=entries(in_capitals))
    api.before_post = [None, LeonardoError("Internal Server Error", status_code=500)]
    summary = run(api, [{"prompt": "the same chair"}] * 2, str(tmp_path))
    assert summary.ok and len(api.generations) == 2 and api.calls.count("POST") == 3
    final = {r["i"]: r["id"] for r in journal(tmp_path)[1:] if r.get("s") == "submitted"}
    assert final == {0: "gen-1", 1: "gen-2"}


def test_the_listing_is_read_to_its_end_unless_it_comes_newest_first() -> None:
    now = time.time()

    class OldestFirst:
        listed = [{"id": f"old-{n}", "createdAt": _iso(now - 3600 + n)} for n in range(60)]
        listed.append({"id": "new", "createdAt": _iso(now)})

        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            return {"generations": self.listed[offset : offset + limit]}

    found, complete = batch._list_since(OldestFirst(), "u", now - 120)  # type: ignore[arg-type]
    assert ("new" in [g["id"] for g in found], complete) == (True, True)  # a first page all older proved nothing
    assert len(found) == 61  # the older ones read are given too: the batch's own show the server's clock
    OldestFirst.listed.reverse()
    assert batch._list_since(OldestFirst(), "u", now - 120)[0][0] == {"id": "new", "createdAt": _iso(now)}


def test_the_listing_is_read_at_most_listing_max_pages_back() -> None:
    now = _iso(time.time())

    class Endless:  # every entry newer than the item: the paging would go on for ever
        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            return {"generations": [{"id": f"g-{offset + n}", "createdAt": now} for n in range(limit)]}

    listed, complete = batch._list_since(Endless(), "u", time.time() - 60)  # type: ignore[arg-type]
    assert (len(listed), complete) == (9005, "more than 9000 generations since then")


def test_the_listings_order_is_judged_on_dated_entries_and_needs_a_decrease() -> None:
    now = time.time()

    class Listing:
        def __init__(self, listed: List[Dict[str, Any]]) -> None:
            self.listed, self.pages = listed, 0

        def get_generations_by_user_id(self, user_id: str, limit: int, offset: int) -> Dict[str, Any]:
            self.pages += 1
            return {"generations": self.listed[offset : offset + limit]}

    dated = [{"id": f"old-{n}", "createdAt": _iso(now - 3600 - n)} for n in range(150)]  # newest first
    undated = Listing(dated[:3] + [{"id": "no-date"}] + dated[3:])
    assert batch._list_since(undated, "u", now - 120)[1] is True and undated.pages == 2  # not all 4 pages
    same_time = Listing([{"id": f"old-{n}", "createdAt": _iso(now - 3600)} for n in range(50)] + [{"id": "new", "createdAt": _iso(now)}])
    assert [g["id"] for g in batch._list_since(same_time, "u", now - 120)[0]][-1] == "new"  # equal is no order
    ties = Listing([{"id": f"old-{n}", "createdAt": _iso(now - 3600 - n // 2)} for n in range(150)])  # in twos
    assert batch._list_since(ties, "u", now - 120)[1] is True and ties.pages == 1  # newest first still: not 4 pages


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_two_candidates_make_the_item_ambiguous(tmp_path: Any) -> None:
    api = ApiDouble()
    items = [{"prompt": "a chair", "width": 512, "height": 512}]
    api._create({"prompt": "a chair", "width": 512, "height": 512}, None)  # made elsewhere, just now
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]
    summary = run(api, items, str(tmp_path))
    assert summary.ambiguous == 1 and len(api.generations) == 2
    assert "2 generations match" in journal(tmp_path)[-1]["reason"]
    again = run(api, items, str(tmp_path))
    assert again.ambiguous == 1 and len(api.generations) == 2  # left for the user
    resent = run(api, items, str(tmp_path), resubmit_ambiguous=True)
    assert resent.ok and len(api.generations) == 3


def test_an_item_left_ambiguous_by_look_alikes_is_settled_by_a_rerun_once_they_are_gone(tmp_path: Any) -> None:
    api = ApiDouble()
    items = [{"prompt": "a chair", "width": 512, "height": 512}]
    mine = api._create(dict(items[0]), None)  # the user's, made in the web app just now
    api.after_post = [LeonardoError("Internal Server Error", status_code=500)]  # made, its answer lost
    assert run(api, items, str(tmp_path)).ambiguous == 1
    assert journal(tmp_path)[-1].get("recheck") is True  # reconciled again by a rerun
    del api.generations[mine]  # the user deletes theirs
    assert run(api, items, str(tmp_path)).complete == 1 and len(api.generations) == 1  # adopted (was left so)


def test_a_listing_that_failed_is_read_once_more_for_each_item_it_failed_for(tmp_path: Any) -> None:
    # Decided for the group due together: an item whose first listing failed, due with one read once more
    # already, was left ambiguous after that single failure (a passing 503).
    api = ApiDouble()
    engine = batch._Engine(api, batch._as_items(PROMPTS[:2]), str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        again, fresh = engine.items
        again.read_again, engine.reconcile_at = True, {}
        unavailable = LeonardoError("Service Unavailable", status_code=503)
        assert engine.settle_now([again, fresh], unavailable) == [again]  # settled: it was read once more
        assert fresh.read_again and list(engine.reconcile_at) == [fresh.index]  # read once more, later
        assert engine.settle_now([again, fresh], True) == [again, fresh]
    finally:
        engine.journal.close()


def test_a_polls_listing_asks_for_ten_at_least_and_when_it_fails_each_generation_by_id(tmp_path: Any) -> None:
    class Limits(ApiDouble):
        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            limits.append(limit)
            return super().get_generations_by_user_id(user_id, limit, offset)

    limits: List[int] = []
    api = Limits()
    ids = [api._create({"prompt": f"a kite {n}"}, None) for n in range(2)]
    items = batch._as_items(PROMPTS[:2])
    engine = batch._Engine(api, items, str(tmp_path), 60000, None, 60.0)  # type: ignore[arg-type]
    try:
        engine.user_id = "user-1"
        assert sorted(engine.poll(ids, [], True)[0]) == ids and limits == [10]  # not 4: others' come first
        api.listing_error = LeonardoError("Service Unavailable", status_code=503)
        found, limited = engine.poll(ids, [], True)  # none due by id: the listing was to tell of both
        assert sorted(found) == ids and limited is None and api.calls.count("GET") == 2
    finally:
        engine.journal.close()


def test_a_listing_that_fails_again_later_is_read_once_more_again(tmp_path: Any) -> None:
    class Flaky(ApiDouble):  # the 1st and 3rd listings fail (a passing 503); the 2nd finds the item's POST too recent
        listings = 0

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            self.listings += offset == 0
            if self.listings in (1, 3):
                self.calls.append("LIST")
                raise LeonardoError("Service Unavailable", status_code=503)
            return super().get_generations_by_user_id(user_id, limit, offset)

    api = Flaky()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)]  # not made
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 2
    # Read once more after the 3rd listing too: it was left ambiguous (the once-more was spent), and sent again only
    # by the look when the batch was otherwise done (see look_again).
    assert "ambiguous" not in [r["s"] for r in journal(tmp_path) if r.get("i") == 0]


@pytest.mark.usefixtures("shipped_first_poll")
@pytest.mark.parametrize("longest_pause", [batch.MAX_DOUBLED_PAUSE, 0.1])  # 0.1: each pause ends within item_timeout
def test_an_outage_pauses_submissions_and_stops_the_batch_after_item_timeout(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, longest_pause: float
) -> None:
    # Create calls answered 503 and the listing unreadable: each item sent was left ambiguous, which counted as moving
    # on, so the whole queue went into the outage at the POST pace (68 items a minute), and the batch never stopped.
    # An item left ambiguous so moves nothing on, whether or not a pause holds past item_timeout (an hour by default).
    monkeypatch.setattr(batch, "MAX_DOUBLED_PAUSE", longest_pause)
    api = ApiDouble()
    api.before_post = [LeonardoError("Service Unavailable", status_code=503)] * 20  # none made
    api.listing_error = LeonardoError("Service Unavailable", status_code=503)
    items = [{"prompt": f"a kite, study {n}", "width": 512, "height": 512} for n in range(20)]
    events: List[BatchProgress] = []
    # The last refusal said is the listing's 503 as it paused submissions, or, when item_timeout ran out later, the
    # reason an item was left ambiguous for it: which one comes last is a matter of timing.
    last = "(could not read the account's generations: )?HTTP 503: Service Unavailable"
    with pytest.raises(LeonardoError, match=rf"no create call went through \(the last: {last}\); rerun to resume$"):
        run(api, items, str(tmp_path), item_timeout=0.5, on_progress=events.append)
    assert api.calls.count("POST") <= 8  # paused after each failed listing, twice as long each time
    assert any("could not read the account's generations: pausing submissions" in e.message for e in events)


def test_a_listing_refused_with_retry_after_is_read_again_no_sooner(tmp_path: Any) -> None:
    # It was read again LISTING_AGAIN (5 s) later whatever its Retry-After said: refused again, the item was left
    # ambiguous, and its prompt held back, for a generation the account had.
    class RateLimited(ApiDouble):
        refused_until = 0.0

        def get_generations_by_user_id(self, user_id: str, limit: int = 10, offset: int = 0) -> Dict[str, Any]:
            if not self.refused_until:
                self.refused_until = time.monotonic() + 0.5
            if time.monotonic() < self.refused_until:
                self.calls.append("LIST")
                raise LeonardoError("Too Many Requests", status_code=429, retry_after=0.5)
            return super().get_generations_by_user_id(user_id, limit, offset)

    api = RateLimited()
    api.after_post = [LeonardoError("Service Unavailable", status_code=503)]  # made: the listing shows it
    summary = run(api, PROMPTS[:1], str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 0, 1)


@pytest.mark.parametrize("user, why", [({"id": "user-1"}, "Service Unavailable"), ({}, "GET /me gave no user id")])
def test_an_unreadable_listing_makes_the_item_ambiguous(tmp_path: Any, user: Dict[str, Any], why: str) -> None:
    api = ApiDouble()
    api.get_user_info = lambda: {"user_details": [{"user": user, "apiConcurrencySlots": 3}]}  # type: ignore[method-assign]
    api.after_post = [LeonardoError("Service Unavailable", status_code=503)]
    api.listing_error = LeonardoError("Service Unavailable", status_code=503)
    summary = run(api, PROMPTS[:2], str(tmp_path), concurrency=1)
    assert (summary.complete, summary.ambiguous) == (1, 1) and api.calls.count("POST") == 2
    assert any(r.get("reason", "").startswith("could not read the account's generations: ") and why in r["reason"]
               for r in journal(tmp_path))


def test_a_crash_after_submitting_is_reconciled_on_rerun(tmp_path: Any) -> None:
    api = ApiDouble(delay=0.0)
    sent = time.time() - 1.0
    gid = api._create(dict(PROMPTS[0]), None)
    lost = {"i": 1, "s": "submitting", "t": sent}  # crashed before its POST left
    (tmp_path / "journal.jsonl").write_text(
        journal_text(PROMPTS[:2], [{"i": 0, "s": "submitting", "t": sent}, lost]), encoding="utf-8"
    )
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ok and api.calls.count("POST") == 1 + 1  # the setup's, and item 1's re-send
    assert [r["id"] for r in journal(tmp_path)[1:] if r.get("s") == "submitted"][0] == gid


def test_an_ambiguous_item_of_long_ago_does_not_hold_back_a_match(tmp_path: Any) -> None:
    api = ApiDouble(delay=0.0)
    items = [{"prompt": "a red fox", "width": 768, "height": 768}, {"prompt": "a red fox"}]
    gid = api._create({"prompt": "a red fox"}, None)  # item 1's, its answer lost in a crash
    now = time.time()
    records = [{"i": 0, "s": "submitting", "t": now - 3600, "rt": 0.3, "r": "earlier"}, {"i": 0, "s": "ambiguous", "reason": "x"},
               {"i": 1, "s": "submitting", "t": now - 1.0, "rt": 0.3, "r": "earlier"}]
    (tmp_path / "journal.jsonl").write_text(journal_text(items, records), encoding="utf-8")
    summary = run(api, items, str(tmp_path))
    assert (summary.complete, summary.ambiguous, api.calls.count("POST")) == (1, 1, 1)  # adopted, not sent
    assert [r["id"] for r in journal(tmp_path) if r.get("i") == 1 and r["s"] == "submitted"] == [gid]


# --- gallery, progress, command line ----------------------------------------------------------


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []
        self.text: List[str] = []
        self.external: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)
        if tag in ("script", "link"):
            self.external.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_gallery_links_only_existing_files_and_escapes_every_prompt_and_name(tmp_path: Any) -> None:
    api = ApiDouble(failing=("<b>bold</b> & failing",))
    items = [
        {"prompt": '<script>alert("x")</script> a "quoted" lamp'},
        {"prompt": "<b>bold</b> & failing"},
        {"prompt": "a plain chair", "name": '../../etc/passwd <img src=x onerror="alert(1)">'},
    ]
    run(api, items, str(tmp_path))
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    parser = Links()
    parser.feed(page)
    assert parser.links and all(os.path.isfile(tmp_path / link) for link in parser.links)
    assert all("/" not in link for link in parser.links)  # relative, inside out_dir
    assert parser.external == []  # no script, no stylesheet link: inline CSS only
    assert "<script>" not in page and "<b>" not in page and "<img src=x" not in page
    text = "".join(parser.text)
    for item in items:
        assert item["prompt"] in text and item.get("name", "") in text  # shown, as text
    assert "FAILED" in text and "0.01 dollars (refunded)" in text  # a failed card says so
    assert "\u00b7 finished, updated" in text and page.count('dir="auto"') == len(items)  # right-to-left too


def test_the_gallery_is_ascii_so_a_charset_a_web_server_declares_cannot_garble_it(tmp_path: Any) -> None:
    # Written as UTF-8 behind <meta charset>: served with "charset=iso-8859-1" (Apache's AddDefaultCharset), the
    # header wins: an accented letter read as two ("Caf\u00c3\u00a9"), every Japanese or Arabic prompt mojibake.
    cat, greek = "\u732b\u306e\u5199\u771f \U0001f431", "\u0393\u03ac\u03c4\u03b1"
    controls = "price \x80 5 brand\x99\x00\x1b\x7f"
    items = [{"prompt": "Caf\u00e9 cr\u00e8me"}, {"prompt": cat, "name": greek}, {"prompt": controls}]
    run(ApiDouble(), items, str(tmp_path))
    page = (tmp_path / "index.html").read_bytes()
    assert page.decode("ascii")  # non-ASCII text as character references: the same page in any ASCII-based charset
    parser = Links()
    parser.feed(page.decode("latin-1"))  # as that server makes a browser read it
    text = "".join(parser.text)
    assert all(item["prompt"] in text for item in items[:2]) and f"#2 {greek}" in text
    # &#128; would read as a euro sign, &#153; as a trademark sign; a NUL is dropped, ESC and DEL show nothing
    assert "price \\x80 5 brand\\x99\\x00\\x1b\\x7f" in text
    assert "\u00b7 finished, updated" in text
    assert all(os.path.isfile(tmp_path / link) for link in parser.links)  # file names: ASCII already


def test_a_card_shows_images_plays_videos_and_links_other_files() -> None:
    item = batch._Item(0, batch.make_item({"prompt": "a fox"}), state="complete")
    item.files = ["0001-a-fox-1.jpeg", "0001-a-fox-2.mp4", "0001-a-fox-3.glb", "0001-a-fox-4.mp3"]
    card = batch._card(item)
    assert '<img src="0001-a-fox-1.jpeg"' in card and '<video src="0001-a-fox-2.mp4"' in card
    assert '<a class="file" href="0001-a-fox-3.glb">0001-a-fox-3.glb</a>' in card  # not a broken image
    assert '<a class="file" href="0001-a-fox-4.mp3">' in card


def test_a_card_is_headed_by_its_number_name_and_state_and_read_before_its_thumbnails() -> None:
    # Its heading was the whole prompt (1,500 characters in a screen reader's list of headings), read after the
    # thumbnails, each named by the prompt's first 100 characters: four links heard as the prompt, then the card.
    item = batch._Item(6, batch.make_item({"prompt": "a red fox " * 150, "name": "\u202eFox"}), state="complete")
    item.files = ["0007-fox-1.png", "0007-fox-2.mp4"]
    card = batch._card(item)
    # bdi: the name's right-to-left override cannot reverse the state after it
    assert card.split("<h2>")[1].split("</h2>")[0] == '#7 <bdi>\u202eFox</bdi> <span class="status">complete</span>'
    assert card.index("</h2>") < card.index('<p class="prompt"') < card.index("<a href=")
    assert re.findall(r'(?:alt|aria-label)="([^"]*)"', card) == ["image 1", "video 2"]
    assert "order:-1" in batch._CSS.split(".thumbs{")[1].split("}")[0]  # still shown above the prompt


def test_a_card_holds_its_prompt_once_and_a_long_one_scrolls_in_its_box() -> None:
    # It was also the title of the prompt cut at 6 lines (the only way to read the rest, a tooltip), and before
    # that each thumbnail's alt: a page of 20,000 items weighed 32 MB, a third of it copies of prompts.
    prompt = "a red fox in the snow, " * 60
    item = batch._Item(0, batch.make_item({"prompt": prompt}), state="complete")
    item.files = ["0001-fox-1.png", "0001-fox-2.png"]
    assert html.unescape(batch._card(item)).count(prompt) == 1
    assert "overflow:auto" in batch._CSS.split(".prompt{")[1].split("}")[0]  # shown whole, not cut


def test_the_gallery_lays_out_only_the_cards_on_screen() -> None:
    # Every card was laid out as the page loaded: 20,000 items took 37 s to load in Chromium, 17 s with this.
    rule = batch._CSS.split(".card{")[1].split("}")[0]
    assert "content-visibility:auto" in rule and "contain-intrinsic-size:auto " in rule  # its size, once seen, kept


def test_a_card_links_to_files_whatever_their_names() -> None:
    # Names as an older or hand-edited journal may hold them: "50% #1?.png" linked to "50% " with a query and a
    # fragment, "a:b.mp4" to a URL of scheme "a", "../x.glb" outside the folder.
    item = batch._Item(0, batch.make_item({"prompt": "a fox"}), state="complete")
    item.files = ["50% #1?.png", "caf\u00e9 a:b.mp4", "../x.glb", "\udcff.png", "\ud800.png"]
    parser = Links()
    parser.feed(batch._card(item))  # it raised UnicodeEncodeError for a lone surrogate: every rerun stopped there
    assert parser.links[5:] == ["%FF.png"] * 2 + ["%5Cud800.png"] * 2  # the undecodable byte on disk; no such file
    del parser.links[5:]
    assert len(parser.links) == 5  # the image's and the video's twice (link and source)
    for link in parser.links:
        parts = urlsplit(link)
        assert (parts.scheme, parts.query, parts.fragment) == ("", "", "") and "/" not in link
        assert unquote(parts.path) in item.files
    assert "../x.glb" in parser.text  # its name shown as it is


def test_ctrl_c_during_a_download_leaves_nothing_of_it_in_the_folder(tmp_path: Any) -> None:
    release = threading.Event()

    class Downloading(ApiDouble):
        def save_results(self, result: Dict[str, Any], folder: str) -> List[str]:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, "half.png"), "wb") as half:
                half.write(b"\x89PNG half")
            signal.raise_signal(signal.SIGINT)  # to the main thread: Ctrl-C
            release.wait(5)
            return super().save_results(result, folder)

    try:
        with pytest.raises(BatchInterrupted):
            run(Downloading(), PROMPTS[:1], str(tmp_path))
        assert not (tmp_path / ".incoming").exists()  # was left, with the half file (the CLI then exits)
    finally:
        release.set()


def test_a_gallery_half_written_by_a_killed_run_is_removed_by_the_next(tmp_path: Any) -> None:
    (tmp_path / ".index.html.0a1b2c3d.part").write_text("<html><body>half", encoding="utf-8")  # SIGKILL mid-write
    (tmp_path / ".notes.txt.0a1b2c3d.part").write_text("not the batch's", encoding="utf-8")
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".notes.txt.0a1b2c3d.part"]


def test_a_gallery_an_older_version_half_wrote_is_removed_by_the_next_run(tmp_path: Any) -> None:
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok
    for name in ("index.html.30536.part", "index.html.part", "index.html.old.part"):  # f8f536b's (its pid), 99a120b's
        (tmp_path / name).write_text("<html><body>half", encoding="utf-8")
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok
    assert sorted(p.name for p in tmp_path.glob("index*")) == ["index.html", "index.html.old.part"]  # not the batch's


def test_a_killed_run_s_partial_downloads_filling_the_disk_do_not_block_the_rerun(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first page was written before they were removed: "could not write index.html: No space left" on every
    # rerun, until the user found the hidden .incoming and deleted it by hand.
    api = ApiDouble()
    assert run(api, PROMPTS[:1], str(tmp_path)).ok
    part = tmp_path / ".incoming" / "0a1b2c3d" / "0" / ".gen_img.mp4.deadbeef.part"  # SIGKILL mid-download
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1024)  # as big as the room that was left
    write = batch.write_gallery

    def page(*args: Any) -> None:
        if part.exists():
            raise LeonardoError("could not write 'index.html': No space left on device")
        write(*args)

    monkeypatch.setattr(batch, "write_gallery", page)
    assert run(api, PROMPTS[:1], str(tmp_path)).ok and not (tmp_path / ".incoming").exists()


def test_a_killed_run_s_partial_downloads_filling_the_disk_do_not_block_a_retry_of_the_failed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failed items reopened were journaled before the leftovers were removed: "could not write journal.jsonl".
    api = ApiDouble()
    api.before_post = [LeonardoError("refused", status_code=400, body={"error": "refused"})]
    assert run(api, PROMPTS[:1], str(tmp_path)).failed == 1
    part = tmp_path / ".incoming" / "0a1b2c3d" / "0" / ".gen_img.mp4.deadbeef.part"  # SIGKILL mid-download
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1024)

    class FullWhileItLasts:
        def __init__(self, file: Any) -> None:
            self.file = file

        def write(self, data: Any) -> int:
            if part.exists():
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.file.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.file, name)

    wrap_journal_file(monkeypatch, FullWhileItLasts)
    assert run(api, PROMPTS[:1], str(tmp_path), retry_failed=True).ok and not (tmp_path / ".incoming").exists()


def test_leftovers_are_not_cleared_from_another_folder_put_in_place_of_the_batch_s(tmp_path: Any) -> None:
    # Cleared before the first page (which checks the folder), they must still be the batch's own.
    old, api = tmp_path / "batch", ApiDouble()
    assert run(api, PROMPTS[:1], str(old)).ok
    me = api.get_user_info

    def moved_meanwhile() -> Dict[str, Any]:
        os.rename(old, tmp_path / "moved")
        (old / ".incoming" / "another-run").mkdir(parents=True)  # a batch started there meanwhile
        return me()

    api.get_user_info = moved_meanwhile  # type: ignore[method-assign]
    with pytest.raises(LeonardoError, match="was moved, renamed or deleted while the batch ran"):
        run(api, PROMPTS[:1], str(old))
    assert (old / ".incoming" / "another-run").is_dir()


@pytest.mark.parametrize("offline, advice", [(False, "rerun the same command to resume"),
                                             (True, "an --offline batch cannot be resumed: use a new --out")])
def test_the_gallery_of_a_stopped_batch_says_so_not_finished(tmp_path: Any, offline: bool, advice: str) -> None:
    # Offline, it said to rerun it, where the command's last line said it could not be, and the rerun was refused.
    stopped: List[BatchProgress] = []

    def interrupt(progress: BatchProgress) -> None:
        if progress.event == "submitted" and not stopped:
            stopped.append(progress)  # once: the other POST's answer, journaled while stopping, is a
            raise KeyboardInterrupt  # "submitted" too, and a second Ctrl-C would quit at once

    with pytest.raises(BatchInterrupted):
        run(ApiDouble(), PROMPTS[:2], str(tmp_path), on_progress=interrupt, offline=offline)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "2 pending &middot; 0 images" in page and f"stopped: {advice}" in page
    assert "finished" not in page


@pytest.mark.parametrize("offline, advice", [(False, "rerun the same command to resume"),
                                             (True, "an --offline batch cannot be resumed: use a new --out")])
def test_a_running_gallery_does_not_reload_itself_and_says_to_reload_it(
    tmp_path: Any, offline: bool, advice: str
) -> None:
    # It reloaded itself every 5 s: a screen reader started again from the top each time, and a page of 20,000
    # items took longer than that to load (40 s in Chromium): the browser never stopped loading it.
    running: List[str] = []

    def read_page(progress: BatchProgress) -> None:
        if progress.event == "start":  # the page is written before the batch starts
            running.append((tmp_path / "index.html").read_text(encoding="utf-8"))

    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path), on_progress=read_page, offline=offline).ok
    assert "http-equiv" not in running[0].lower()  # was <meta http-equiv="refresh" content="5">
    assert "running, updated" in running[0] and "It does not reload itself: reload it to see the latest." in running[0]
    # Offline, a page left running (the batch killed) said to rerun the same command, a rerun it refuses.
    assert f"went off); {advice}. It does not reload itself" in running[0]


@pytest.mark.parametrize("stop", ["a callback's error", "a callback's error, then a full disk", "a 401 at GET /me",
                                  "a second Ctrl-C"])
def test_the_gallery_of_a_batch_that_raised_is_not_left_running(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    api = ApiDouble()
    if stop == "a second Ctrl-C":  # the first at "submitted", the second as the create calls under way are awaited
        def interrupt(progress: BatchProgress) -> None:
            if progress.event == "submitted":
                raise KeyboardInterrupt

        def second_ctrl_c(engine: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(batch._Engine, "drain_posts", second_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            run(api, PROMPTS[:2], str(tmp_path), on_progress=interrupt)
        page = (tmp_path / "index.html").read_text(encoding="utf-8")
    elif stop == "a 401 at GET /me":
        run(api, PROMPTS[:2], str(tmp_path / "b"))  # a page from a run that ended

        def unauthorized() -> Dict[str, Any]:
            raise LeonardoError("Unauthorized", status_code=401)

        api.get_user_info = unauthorized  # type: ignore[method-assign]
        with pytest.raises(LeonardoError):
            run(api, PROMPTS[:2], str(tmp_path / "b"), retry_failed=True)
        page = (tmp_path / "b" / "index.html").read_text(encoding="utf-8")
    else:
        def fail(progress: BatchProgress) -> None:
            if progress.event == "submitted":
                raise ValueError("a bug in the callback")

        def journal_full(engine: Any) -> None:
            raise LeonardoError("could not write journal.jsonl: No space left on device")

        if stop == "a callback's error, then a full disk":  # the page was skipped with the drain's record
            monkeypatch.setattr(batch._Engine, "drain_posts", journal_full)
        with pytest.raises(ValueError):
            run(api, PROMPTS[:2], str(tmp_path), on_progress=fail)
        page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "running" not in page  # it was "running" (and, then, reloading every 5 s)


def test_the_gallery_is_rewritten_when_an_item_changed_not_on_every_pass(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100,000 items make a page of 87 MB: rewritten every second whether or not anything changed.
    writes: List[bool] = []
    write = batch.write_gallery
    monkeypatch.setattr(batch, "GALLERY_EVERY", 0.0)  # time is not what limits it here
    monkeypatch.setattr(batch, "write_gallery", lambda *args: (writes.append(args[3]), write(*args))[1])  # final
    assert run(ApiDouble(delay=0.6), PROMPTS[:1], str(tmp_path)).ok  # about 5 state changes, polled for 0.6 s
    assert 1 <= writes.count(False) <= 6 and writes.count(True) == 1, writes


def test_a_running_gallery_is_rewritten_every_heartbeat_and_shows_a_pause_of_submissions(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rewritten only when an item changed, a live batch waiting on slow jobs read as one killed long ago.
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "time", lambda: 1.7e9 + clock[0])
    engine = batch._Engine(ApiDouble(), [BatchItem("a fox")], str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    engine.journal.close()

    def header_after(seconds: float) -> str:
        clock[0] += seconds
        engine.gallery(final=False)
        return (tmp_path / "index.html").read_text(encoding="utf-8").split("</header>")[0]

    def local(seconds: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(1.7e9 + seconds))

    assert f"running, updated {local(1000)}" in header_after(0)
    assert f"updated {local(1000)}" in header_after(batch.GALLERY_HEARTBEAT - 1)  # nothing changed: not yet
    header = header_after(2)
    assert f"running, updated {local(1000 + batch.GALLERY_HEARTBEAT + 1)}" in header  # was left at 1000, for ever
    assert "this page is rewritten at least every 30 s: if it still says running and was updated more than two " \
        "minutes ago, the batch is no longer running" in header and "rerun the same command to resume" in header
    engine.back_off(600.0, clock[0], "rate limited: 429")
    paused = f"submissions paused until {local(clock[0] + 600)} (rate limited: 429)"
    assert paused in header_after(1)
    assert "paused" not in header_after(600)  # said as soon as it ended
    engine.staging = str(tmp_path / "staging")  # as run() sets it
    engine.gallery(final=True)
    assert "at least every" not in (tmp_path / "index.html").read_text(encoding="utf-8")  # a page that ended


def test_the_gallery_gives_its_times_with_their_utc_offset(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # "updated 2026-12-06 19:07:33", the machine's local time: read in another zone, whether the batch was
    # updated more than two minutes ago (is still running) could not be told.
    monkeypatch.setenv("TZ", "JST-9")  # nine hours east of UTC, without daylight saving
    time.tzset()
    try:
        assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok
    finally:
        monkeypatch.undo()
        time.tzset()
    header = (tmp_path / "index.html").read_text(encoding="utf-8").split("</header>")[0]
    assert re.search(r"finished, updated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0900</p>", header), header


def test_a_card_says_a_cost_unknown_of_an_item_made_and_dash_of_one_not_made() -> None:
    item = batch._Item(0, BatchItem("a fox"))
    for record, cost in [
        ({"s": "submitted", "id": "g", "adopted": True}, "unknown"),  # was "-", as a refused one
        ({"s": "complete", "files": ["0001-a-fox.png"]}, "unknown"),
        ({"s": "submitted", "id": "g", "cost": {"amount": "2", "unit": "CREDITS"}}, "2 credits"),
        ({"s": "planned"}, "- (and 2 credits before)"),
        ({"s": "failed", "reason": "refused: HTTP 400: bad size"}, "- (and 2 credits before)"),
        ({"s": "planned"}, "- (and 2 credits before)"),
        ({"s": "submitting", "t": 1.0}, "- (and 2 credits before)"),
        ({"s": "ambiguous", "reason": "2 generations match"}, "- (and 2 credits before)"),  # not known to be made
        ({"s": "planned"}, "- (and 2 credits before)"),  # was "1 generation of unknown cost before"
        ({"s": "submitting", "t": 1.5}, "- (and 2 credits before)"),
        ({"s": "submitted", "id": "g2", "adopted": True}, "unknown (and 2 credits before)"),
        # Made, then left ambiguous ("paid for": it cannot be saved): was "-", as one never made.
        ({"s": "ambiguous", "reason": "COMPLETE with no image (paid for)"}, "unknown (and 2 credits before)"),
        # Sent again (--resubmit-ambiguous): the generation of unknown cost was counted nowhere any more.
        ({"s": "planned"}, "- (and 2 credits, 1 generation of unknown cost before)"),
        ({"s": "submitted", "id": "g3", "cost": {"amount": "2", "unit": "CREDITS"}},
         "2 credits (and 2 credits, 1 generation of unknown cost before)"),
    ]:
        item.apply(dict(record, i=0))
        assert f"<dt>cost</dt><dd>{cost}</dd>" in html.unescape(batch._card(item)), record
    assert item.cost_unknown() == 1 and item.spent() == {"CREDITS": 4.0}


def test_the_totals_keep_a_generation_of_unknown_cost_sent_again(tmp_path: Any) -> None:
    engine = batch._Engine(ApiDouble(), [BatchItem("a fox")], str(tmp_path), 100, None, 60.0)  # type: ignore[arg-type]
    engine.journal.close()
    item = engine.items[0]
    for record in ({"s": "submitting", "t": 1.0}, {"s": "submitted", "id": "g", "adopted": True},
                   {"s": "ambiguous", "reason": "paid for"}, {"s": "planned"}, {"s": "submitting", "t": 2.0},
                   {"s": "submitted", "id": "g2", "cost": {"amount": "2", "unit": "CREDITS"}}):
        engine.set_state(item, dict(record, i=0))
    summary = engine.summary(interrupted=False)
    assert (summary.cost_unknown, dict(summary.credits)) == (1, {"CREDITS": 2.0})  # was (0, ...): the first dropped


def test_the_gallery_says_once_what_an_ambiguous_item_is_as_the_summary_does(tmp_path: Any) -> None:
    api = ApiDouble()
    api.after_post = [LeonardoError("Service Unavailable", status_code=503)]  # made, its answer lost
    api.listing_error = LeonardoError("Service Unavailable", status_code=503)
    summary = run(api, PROMPTS[:2], str(tmp_path))
    assert summary.ambiguous == 1
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    header, cards = page.split("</header>")
    advice = batch.ambiguous_advice("their cards and your Leonardo library")
    flag = "--resubmit-ambiguous (resubmit_ambiguous=True)"  # the command's and run_batch's: a summary says both
    assert f"{flag}, which sends each one again, billing again any that was made" in advice
    assert advice[1:] in html.unescape(header) and "resubmit" not in cards  # was only a raw reason on the card
    assert batch.ambiguous_advice("index.html and your Leonardo library") in str(summary)  # the same words
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path / "b")).ok
    assert "resubmit" not in (tmp_path / "b" / "index.html").read_text(encoding="utf-8")  # none ambiguous: not said


def test_a_video_tile_shows_its_first_frame_and_says_video_and_a_prompt_keeps_its_lines() -> None:
    item = batch._Item(0, batch.make_item({"prompt": "a fox"}), state="complete")
    item.files = ["0001-a-fox.mp4"]
    card = batch._card(item)
    assert '<video src="0001-a-fox.mp4" preload="metadata"' in card  # without it, a blank tile until played
    assert '<span class="kind">video</span></a>' in card
    assert "white-space:pre-line" in batch._CSS.split(".prompt{")[1].split("}")[0]  # its newlines were spaces


def test_a_cost_a_failed_item_had_is_not_counted_when_it_is_retried(tmp_path: Any) -> None:
    api = ApiDouble(failing=(PROMPTS[0]["prompt"],))
    assert run(api, PROMPTS[:1], str(tmp_path)).failed == 1

    def interrupt(progress: BatchProgress) -> None:
        if progress.event == "start":
            raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as stopped:
        run(api, PROMPTS[:1], str(tmp_path), retry_failed=True, on_progress=interrupt)
    assert dict(stopped.value.summary.credits) == {}  # refunded, and not yet sent again: was 0.01 dollars
    card = (tmp_path / "index.html").read_text(encoding="utf-8").split("<article")[1].split("</article>")[0]
    assert "<dt>cost</dt><dd>-</dd>" in card  # was "0.01 dollars", without "(refunded)"


def test_a_cost_unit_no_text_encoding_can_write_does_not_stop_the_batch(tmp_path: Any) -> None:
    class OddUnit(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
            answer = super().create_generation(body)
            answer["sdGenerationJob"]["cost"]["unit"] = "DOLLARS\udc80"  # a lone surrogate, as JSON may escape one
            return answer

    assert run(OddUnit(), PROMPTS[:2], str(tmp_path)).ok  # was a UnicodeEncodeError writing the gallery, every rerun
    assert run(OddUnit(), PROMPTS[:2], str(tmp_path)).ok
    assert "dollars\\udc80" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_cli_reports_bad_lines_and_exits_2_before_sending(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"prompt": "ok"}\n{"prompt": "bad", "seed": "x"}\n', encoding="utf-8")
    code = cli.main(["batch", str(path), "--out", str(tmp_path / "out"), "--offline", "--concurrency", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "line 2: seed must be a whole number >= 0" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, error",
    [
        ({"item_timeout": -1}, ValueError),
        ({"item_timeout": "60"}, TypeError),
        ({"concurrency": "3"}, TypeError),
        ({"concurrency": 0}, ValueError),
        ({"posts_per_minute": float("nan")}, ValueError),
        ({"posts_per_minute": True}, TypeError),
        ({"on_progress": 5}, TypeError),
        ({"out": None}, TypeError),
        ({"out": ""}, ValueError),
    ],
)
def test_unusable_options_are_refused_before_anything_is_sent(tmp_path: Any, options: Dict[str, Any], error: type) -> None:
    api, out = ApiDouble(), options.pop("out", str(tmp_path / "out"))
    with pytest.raises(error):
        run(api, PROMPTS[:1], out, **options)
    assert api.calls == []
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    (tmp_path / "p.txt").write_text("a fox\n", encoding="utf-8")  # a missing prompts file is a usage error too
    assert cli.main(["batch", str(tmp_path / "p.txt")]) == 2
    said = "leonardo-client batch: error: the following arguments are required: --out\n"
    assert capsys.readouterr().err.endswith(said)
    assert cli.main(["batch", "p.txt", "--out", "o", "--model", "a", "--model-id", "b"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_refuses_an_out_that_is_a_file_as_usage_before_sending(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.txt").write_text("a fox\n", encoding="utf-8")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    assert cli.main(["--offline", "batch", str(tmp_path / "p.txt"), "--out", str(tmp_path / "afile")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err  # was exit 1, "could not create folder"


def test_a_second_run_on_the_same_folder_is_refused_while_one_runs(tmp_path: Any) -> None:
    from leonardo_client.batch import _as_items, _digests, _Journal

    items = _as_items(PROMPTS[:1])
    first = _Journal(str(tmp_path), _digests(items)[0], 1)
    journal = tmp_path / "journal.jsonl"
    try:
        with open(journal, "ab") as live:
            live.write(b'{"i":0,"s":"subm')  # the running batch's record, half written
        written = journal.read_bytes()
        for other in (PROMPTS[:1], PROMPTS[:2]):  # the same batch, and a different one
            with pytest.raises(BatchInputError, match="another batch is running"):
                run(ApiDouble(), other, str(tmp_path))
        assert journal.read_bytes() == written  # the refused runs cut nothing off the live journal
    finally:
        first.close()
    assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_process_forked_while_a_batch_runs_neither_holds_its_folder_nor_writes_its_journal(tmp_path: Any) -> None:
    # A fork-start process pool fed from on_progress inherited the journal's descriptor, and so its lock: every rerun
    # of the folder was refused "another batch is running" until those processes ended.
    from leonardo_client.batch import _as_items, _digests, _Journal

    first = _Journal(str(tmp_path), _digests(_as_items(PROMPTS[:1]))[0], 1)
    written = (tmp_path / "journal.jsonl").read_bytes()
    said, go_on = os.pipe(), os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12: forking a process with threads
        child = os.fork()
    if child == 0:  # the child: says how its write went, lives on until told, then out (no pytest teardown here)
        code = b"1"
        try:
            first.append([{"i": 0, "s": "planned"}])
        except LeonardoError as exc:
            code = b"0" if "only that one writes its journal" in str(exc) else b"2"
        finally:
            os.write(said[1], code)
            os.read(go_on[0], 1)
            os._exit(0)
    try:
        assert os.read(said[0], 1) == b"0"  # 1: it wrote into the parent's journal
        assert (tmp_path / "journal.jsonl").read_bytes() == written
        first.close()
        assert run(ApiDouble(), PROMPTS[:1], str(tmp_path)).ok  # the child still lives
    finally:
        os.write(go_on[1], b"x")
        os.waitpid(child, 0)
        for fd in (*said, *go_on):
            os.close(fd)


@pytest.mark.usefixtures("shipped_first_poll")
def test_a_generation_past_item_timeout_is_left_in_flight_for_the_rerun(tmp_path: Any) -> None:
    api = ApiDouble(slots=1, delay=3600.0)
    summary = run(api, PROMPTS[:5], str(tmp_path), item_timeout=0.3)
    assert (summary.complete, summary.failed, summary.pending) == (0, 0, 5)  # all sent; none given up as failed
    assert api.calls.count("POST") == 5 and set(states(tmp_path).values()) == {"submitted"}
    api.delay = 0.0
    again = run(api, PROMPTS[:5], str(tmp_path))
    assert again.ok and api.calls.count("POST") == 5  # waited on, never sent again


def test_a_small_buffer_of_posts_is_sent_beyond_the_accounts_slots(tmp_path: Any) -> None:
    class Counted(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:  # none completes: the ones made still run
            in_flight.append(sum(time.monotonic() - g["created"] < 0.3 for g in self.generations.values()))
            return super().create_generation(body)

    in_flight: List[int] = []
    summary = run(Counted(slots=1, delay=3600.0), PROMPTS[:3], str(tmp_path), item_timeout=0.6)
    assert summary.pending == 3 and in_flight == [0, 1, 2]  # 1 slot + 2 the account queues; was one at a time


def test_a_concurrency_given_is_the_most_in_flight_with_no_queue_added(tmp_path: Any) -> None:
    class Counted(ApiDouble):
        def create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:  # running: made, not complete yet
            running.append(sum(time.monotonic() - g["created"] < self.delay for g in self.generations.values()))
            answer = super().create_generation(body)
            time.sleep(0.1)  # made, not yet answered: in flight too
            return answer

    running: List[int] = []
    events: List[BatchProgress] = []
    summary = run(Counted(slots=10, delay=0.1), PROMPTS[:3], str(tmp_path), concurrency=1, on_progress=events.append)
    assert summary.complete == 3 and running == [0, 0, 0]  # one at a time; was [0, 1, 2] (1 + a queue of 2), and so
    # with only the running ones counted (the next sent while the last was unanswered)
    assert max(e.in_flight for e in events) == 1
