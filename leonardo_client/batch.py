"""run_batch(): many generations under the account's limits, journaled, resumable, never billed twice.

Every state change of every item is journaled (fsynced) before it is acted on: planned ->
submitting (time, request) -> submitted (id, cost) -> complete (files) | failed (reason), or
ambiguous. An item left in "submitting" (a crash, a 5xx, a read timeout, a dropped connection)
is reconciled against the account's generation listing instead of being sent again.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import html
import json
import math
import os
import queue
import re
import shutil
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import lru_cache, partial
from typing import (
    Any, Callable, Dict, Iterable, Iterator, List, Mapping, NoReturn, Optional, Sequence, Set, Tuple, Union
)
from urllib.parse import quote

from . import _files, client as _client
from ._retry import posts_not_retried
from .client import EMPTY_GRACE  # a generation COMPLETE with no images is asked again that long, as a wait does
from .errors import MAY_HAVE_BEEN_MADE, LeonardoError, error_text, key_malformed, message_from, never_sent, parse_json
from .errors import printable
from .payloads import (
    CreateGenerationRequest, GenerationV2Request, check_number, check_request, check_text, check_type,
    check_v1_prompt, check_v1_size, cut, id_key, is_id, merge_once, shown, shown_path, to_payload,
)

__all__ = [
    "BatchItem", "BatchProgress", "BatchSummary", "BatchInputError", "BatchInterrupted",
    "read_items", "run_batch",
]

JOURNAL = "journal.jsonl"
GALLERY = "index.html"
INCOMING = ".incoming"
FILE_MANAGER_FILES = ("Thumbs.db", "desktop.ini")  # Windows', in a folder only looked at (macOS's .DS_Store is hidden)
DAMAGED = "without the journal, every item would be sent again, those already made too"
PUT_BACK = f"put the batch's whole journal back to resume, or use a new or empty folder ({DAMAGED})"
BOM = b"\xef\xbb\xbf"  # what an editor (Notepad...) may put before a journal it saved, as before a prompts file
# The journal's format, in its header (every earlier version wrote 1, through five additions: it resumes too). One
# higher, a newer version's, is refused: its records may say what this version cannot read (a create call sent).
JOURNAL_VERSION = 2
# A generation's createdAt comes from the server's clock, the recorded time from ours.
CLOCK_SKEW = 60.0
LISTING_AGAIN = 5.0  # seconds before a listing call that raised (a LeonardoError) is read once more for its items
LOCK_MARGIN = 10.0  # seconds an item waits beyond an ambiguous one's window of its prompt: see start_posts
# A createdAt further from the answer's time than a day is not taken as the clock; until the batch's own
# generations show the clock, reconciliation reads that much further back (README: up to a day ahead).
MAX_CLOCK_OFFSET = 86400.0
LISTING_PAGE = 50  # generations per listing request (the API documents no maximum)
LISTING_OVERLAP = 5  # each page starts this many before the last one's end: a deletion meanwhile shifts it
LISTING_RESTARTS = 3  # times a listing that moved past a page's overlap while read is read from the top again
LISTING_MAX_PAGES = 200  # reconciliation reads at most 9,000 generations back (200 full pages of 45 new) a pass
FIRST_POLL = 0.25  # seconds; until a job time has been observed, each poll round's gap is POLL_GROWTH times the last
POLL_GROWTH = 1.5  # the rounds' own schedule (from FIRST_POLL up to MAX_POLL), not a wait's (client.POLL_BACKOFF)
MAX_POLL = 5.0
MIN_POLL = 0.1
# Seconds of "no such generation" answers, none showing it in between, before a generation is taken for deleted: an
# id just created, or read from a lagging replica, may not be readable yet. As long as a COMPLETE with no images is
# waited on (EMPTY_GRACE), for the same reason: the API's answer may lag the generation.
MISSING_GRACE = 60.0
V2_WAIT = 60.0  # a v2 item waiting to learn whether the listing holds its model is reconciled again after this at most
PACE_MARGIN = 1.01  # POSTs a little under posts_per_minute, so jitter cannot trip the server's window
DEFAULT_PAUSE = 2.0  # seconds to back off after a 429 without Retry-After (doubles, up to MAX_DOUBLED_PAUSE)
MAX_DOUBLED_PAUSE = 60.0
MAX_PAUSE = 3600.0  # the longest a 429's Retry-After pauses submissions (a server may ask for years)
# The longest a 429 on a poll holds the next round back: a round is one request most of the time, and one a minute
# asks little of the account's limit, while a longer hold would leave finished generations unread for as long.
MAX_POLL_PAUSE = 60.0
DOWNLOAD_TRIES = 3
# Seconds after a create call's window (at least) its item is looked for again in the listing: a listing behind by up
# to this much (a replica) still shows a generation made in the call's last moment. Only an item whose create answer
# was lost waits it, holding its slot and its prompt.
LOOK_AGAIN = 10.0
# Seconds past a bound a reconciliation is set for: the times it compares are rounded to the millisecond (wall_time),
# and one due just at LOOK_AGAIN's end read as not past it held the item LOOK_AGAIN more.
PAST_BOUND = 0.05
DOWNLOAD_AGAIN = 2.0  # seconds before a failed download is tried again, times the tries so far
MAX_POSTS_AT_ONCE = 4  # create calls waiting for their answer at the same time
MAX_WORKERS = 16  # threads making the batch's calls (fewer: see _worker_count)
MAX_CONCURRENCY = 1000  # slots, far beyond any plan's
MIN_POSTS_PER_MINUTE, MAX_POSTS_PER_MINUTE = 0.01, 100_000
DEFAULT_POSTS_PER_MINUTE = 100
MAX_INPUT = 64 << 20  # characters of a prompts file (a 1,000-item one is about 100 KiB)
MAX_ITEMS = 100_000  # prompts in a prompts file
VIDEOS = tuple(extension for mime, extension in _files.EXTENSIONS.items() if mime.startswith("video/"))
OTHER_FILES = (".bin", *(e for mime, e in _files.EXTENSIONS.items() if not mime.startswith(("image/", "video/"))))
GALLERY_EVERY = 1.0  # seconds between rewrites of index.html while the batch runs
# Seconds: while the batch runs, index.html is rewritten at least this often, changed or not (the run loop wakes at
# least every second: see start_work), so that a page left "running" by a batch killed shows it by its time.
GALLERY_HEARTBEAT = 30.0
STATES = ("planned", "submitting", "submitted", "complete", "failed", "ambiguous")
UNREADABLE = "could not read the account's generations"  # why an item was left ambiguous: a rerun looks again
REFUSED = "refused: "  # starts the reason of an item the API refused (a 4xx): sent again as it is, refused again;
# also of one whose create call raised no LeonardoError (the Client's ValueError before sending, another client's)
# The reasons reconciliation left an item ambiguous with, before "recheck" was journaled (ca5d991): reconciled again,
# as one journaled with it (which sends it again only once the listing proves it never made).
UNSETTLED = re.compile("|".join([
    UNREADABLE, "reconciliation failed: ", "[0-9]+ generations match: ", "some generations could not be compared",
    "an ambiguous item with this prompt may own", "no v2 generation seen", "it was sent later than now",
    "one of its prompt was made up to an hour before",
]))
# Why an item whose generation no listing shows is left ambiguous, not sent again: see _Engine.rewrites.
REWRITTEN = "its prompt may be shown rewritten (prompt enhancement, the server's normalizing): no match proves nothing"


@dataclass(frozen=True)
class BatchItem:
    """One generation: ``model`` a v2 model name, ``model_id`` a v1 model id, neither the v1 default.

    ``extra`` goes into the request body (v1) or its ``parameters`` (v2; ``public`` at the top, as on v1);
    ``name`` names the files.
    """

    prompt: str
    model: Optional[str] = None
    model_id: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    num_images: Optional[int] = None
    seed: Optional[int] = None
    negative_prompt: Optional[str] = None
    name: Optional[str] = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)  # a dict: no hash

    def __post_init__(self) -> None:  # else None or "public" failed later, in dict()'s words
        if not isinstance(self.extra, Mapping):
            kind = type(self.extra).__name__
            raise TypeError(f"BatchItem.extra must be a mapping (request keys to values), not {kind}")

    def request(self) -> Tuple[str, Dict[str, Any]]:
        """("v1" or "v2", the JSON body) of this item's create call, through the request dataclasses."""
        shared = {key: getattr(self, key) for key in ("width", "height", "seed", "negative_prompt")}
        if self.model is not None:
            extra = dict(self.extra)
            public = extra.pop("public", None)  # the envelope's, as on v1 the body's: no model's parameters take it
            options = dict(shared, public=public, quantity=self.num_images, extra=extra)
            return "v2", to_payload(GenerationV2Request(self.model, self.prompt, **options))
        v1 = CreateGenerationRequest(self.prompt, model_id=self.model_id, num_images=self.num_images, **shared)
        body = to_payload(v1)
        merge_once(body, to_payload(self.extra), "extra")  # extra keys are wire keys, sent as given, as on v2
        return "v1", body


ITEM_FIELDS = tuple(f.name for f in fields(BatchItem) if f.name != "extra")  # an item mapping's other keys: extra


class BatchInputError(ValueError):
    """The batch's input is unusable; ``errors`` lists each problem ("line 3: ...")."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        more = [f"... and {len(self.errors) - 10} more"] if len(self.errors) > 10 else []
        super().__init__("; ".join(self.errors[:10] + more))

    def __reduce__(self) -> Tuple[Any, ...]:
        # Made again (pickle, copy) of its errors, not of args: its joined message would be read as the list.
        return type(self), (self.errors,), self.__dict__


def make_item(fields: Mapping[str, Any], defaults: Optional[Mapping[str, Any]] = None) -> BatchItem:
    """A BatchItem from a mapping over ``defaults`` (its own model or model_id overrides both).

    Other keys go to ``extra``. Raises ValueError saying what is wrong.
    """
    if not isinstance(fields, Mapping):
        raise ValueError(f"expected an object with a prompt, got {type(fields).__name__}")
    if not isinstance(defaults, (Mapping, type(None))):
        raise TypeError(f"defaults must be a mapping, not {type(defaults).__name__}")
    merged = {k: v for k, v in (defaults or {}).items() if v is not None}
    if "model" in fields or "model_id" in fields:
        merged.pop("model", None)
        merged.pop("model_id", None)
    merged.update(fields)
    named: Dict[str, Any] = {k: merged.get(k) for k in ITEM_FIELDS}
    return _checked(BatchItem(**named, extra={k: v for k, v in merged.items() if k not in ITEM_FIELDS}))


def _checked(item: BatchItem) -> BatchItem:
    """``item``, once its fields are checked and the serializer has made its create call's body (no NaN...)."""
    if not isinstance(item.prompt, str) or not check_text(item.prompt, "prompt").strip():  # as the input names it
        raise ValueError("prompt must be a non-empty string")
    for key in ("model", "model_id", "negative_prompt", "name"):
        value = getattr(item, key)
        if value is not None and not (isinstance(value, str) and check_text(value, key).strip()):
            raise ValueError(f"{key} must be a non-empty string")
    if item.model is not None and item.model_id is not None:
        raise ValueError("give model (v2) or model_id (v1), not both")
    # A v2 model's schema may take a size of 0 (hailuo-2_3: the frame's own) and a seed of -1 (seedance: random).
    floors = (0, 0, 1, -1) if item.model is not None else (1, 1, 1, 0)
    for key, least in zip(("width", "height", "num_images", "seed"), floors):
        value = getattr(item, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ValueError(f"{key} must be a whole number >= {least}, got {shown(value)}")
    try:
        api, body = item.request()
    except TypeError as exc:  # what the serializer cannot take (a dict's int key): named with the item, as the rest
        raise ValueError(str(exc)) from None
    if api == "v1":  # from extra too
        check_v1_size(body.get("width"), body.get("height"), body.get("num_images"))
        check_v1_prompt(body["prompt"])
    return item


def _spec_checked(item: BatchItem) -> BatchItem:
    """``item``, once the bundled spec takes its body, as generate checks its own: the rest the API would refuse (a key
    misspelt, a v2 model's sizes). A new batch's only (see journaled)."""
    check_request(*item.request())
    return item


def journaled(out_dir: str) -> bool:
    """Whether ``out_dir``'s journal holds an item: a rerun's items are not checked against the bundled spec, as they
    were taken when it began (by an earlier version, perhaps), and what the API refused of them is journaled. Read
    unlocked: the locked read judges the rest (a journal of no item is begun again, for items checked here)."""
    try:  # a FIFO put there would wait for a writer: refused at once (the run says why it cannot use it)
        with open(_files.open_regular(os.path.join(out_dir, JOURNAL), os.O_RDONLY), "rb") as journal:
            lines = journal.read().splitlines()[1:]  # after the header
    except OSError:  # none, or unusable: its items checked
        return False
    records = []
    for line in lines:
        with contextlib.suppress(ValueError):  # a torn or damaged line: the run refuses it, or cuts it off
            records.append(parse_json(line.decode("utf-8")))
    return _may_have_sent(records)


def _may_have_sent(records: Iterable[Any]) -> bool:
    """Whether a journal's records (after its header) may tell of a create call sent: any but an item's "planned" and
    the account's note, which come before any (an item's "submitting" is journaled before its call). A journal of
    none is begun again for the items given: 99a120b to b3d4ccc planned every item before GET /me (a wrong key)."""
    return not all(isinstance(r, dict) and ("i" in r and r.get("s") == "planned" or list(r) == ["user"])
                   for r in records)


def read_items(
    path: _files.PathLike, defaults: Optional[Mapping[str, Any]] = None, *, check_spec: bool = True
) -> List[BatchItem]:
    """The items of the prompts file ``path``: one prompt a line, or JSON Lines (``.jsonl``, ``.ndjson``, or a first
    line starting with ``{``); blank lines and ``#`` comments are skipped. ``defaults``: a mapping (else TypeError)
    under every line, whose own model or model_id replaces both; ``check_spec``: each body checked against the
    bundled spec too (a new batch's; not a rerun's: see journaled).

    Raises BatchInputError: unreadable, no items, or bad lines (each listed with its number).
    """
    path = _files.check_path(path, "path")  # an int would be opened as a file descriptor
    try:  # a byte that is not UTF-8 kept as a surrogate, to be found by its line (a decoding error gives no line)
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as source:
            table = {".csv": "a CSV file", ".tsv": "a TSV file"}.get(os.path.splitext(path)[1].lower())
            if table:  # a spreadsheet's export: its header row too would be a prompt, commas and all
                raise _not_lines(path, table)
            text = source.read(MAX_INPUT + 1)
    except OSError as exc:
        raise BatchInputError([f"cannot read {shown_path(path)}: {exc.strerror or exc}"]) from None
    undecodable = _UNDECODABLE.search(text)
    if undecodable:
        line, byte = text.count("\n", 0, undecodable.start()) + 1, ord(undecodable.group()) & 0xFF
        reason = f"is not UTF-8 text (byte {byte:#04x})" if byte else "holds a NUL byte (UTF-16?)"
        raise BatchInputError([f"cannot read {shown_path(path)}: line {line} {reason}: save it as UTF-8"])
    if len(text) > MAX_INPUT:
        raise BatchInputError([f"{shown_path(path)} is over {MAX_INPUT >> 20} MiB: split it into several batches"])
    first = next(_prompt_lines(text, path), ("", ""))[1]
    document = _json_document(text, first)
    if document:
        raise _not_lines(path, document)
    json_lines = path.lower().endswith((".jsonl", ".ndjson")) or first.startswith("{")

    def parse(line: str) -> BatchItem:
        try:
            item = make_item(parse_json(line) if json_lines else {"prompt": line}, defaults)
            return _spec_checked(item) if check_spec else item
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None

    return _collect(_prompt_lines(text, path), parse, f"{shown_path(path)} holds no prompts")


def _not_lines(path: str, what: str) -> BatchInputError:
    """The refusal of a prompts file that is ``what`` ("a JSON array", "a CSV file"): not one item a line."""
    advice = "write JSON Lines (one object a line) or one prompt a line"
    return BatchInputError([f"{shown_path(path)} is {what} (each of its lines would be read as an item): {advice}"])


def _json_document(text: str, first: str) -> str:
    """"a JSON array" or "a JSON object" when the whole of ``text`` is one, or its first prompt line opens one;
    else "" (a JSON Lines file's first line is an object of its own: it is not read whole)."""
    if first == "[" or first.startswith(('["', "[{", "[[")):  # never a prompt: an array behind a comment, or not
        return "a JSON array"  # JSON as it stands (a trailing comma)
    if not first.startswith(("[", "{")):  # a prompt that merely starts with "[" does not parse as a whole
        return ""
    with contextlib.suppress(ValueError):
        if isinstance(parse_json(first), dict):
            return ""
    try:
        document = parse_json(text)
    except ValueError:  # a JSONDecodeError too
        return ""
    return "a JSON array" if isinstance(document, list) else "a JSON object" if isinstance(document, dict) else ""


# What errors="surrogateescape" makes of a byte it cannot decode; and a NUL, valid UTF-8 but no text's (UTF-16's
# high bytes, a BOM-less file read as UTF-8: each line a NUL-riddled prompt, billed).
_UNDECODABLE = re.compile("[\x00\udc80-\udcff]")

# A line from its first non-blank character (\S: what str.strip() keeps) to its end. Only "\n"
# ends it, not U+2028, U+0085... (str.splitlines()): JSON strings may hold those. A BOM is blank here
# (two BOM'd files joined: its "# comment" was billed, its JSON "not valid").
_PROMPT_LINE = re.compile(r"[^\s\ufeff][^\n]*")


def _prompt_lines(text: str, path: str) -> Iterator[Tuple[str, str]]:
    """("line N", the line stripped) of each line of ``text`` that is neither blank nor a ``#`` comment.

    Nothing is built for a skipped line. Raises BatchInputError past MAX_ITEMS prompts.
    """
    number, counted_to, count = 1, 0, 0
    for match in _PROMPT_LINE.finditer(text):
        number += text.count("\n", counted_to, match.start())
        counted_to = match.start()
        line = match.group().rstrip()
        if line.startswith("#"):
            continue
        count += 1
        if count > MAX_ITEMS:
            too_many = f"holds more than {MAX_ITEMS} prompts: split it into several batches"
            raise BatchInputError([f"{shown_path(path)} {too_many}"])
        yield f"line {number}", line


def _as_items(items: Iterable[Union[BatchItem, Mapping[str, Any]]], check_spec: bool = True) -> List[BatchItem]:
    if isinstance(items, (str, bytes, Mapping)) or not hasattr(items, "__iter__"):  # a str: one item a character
        raise TypeError(f"items must be a list of BatchItems or mappings, not {type(items).__name__}")
    labelled = [(f"item {n}", item) for n, item in enumerate(items, 1)]

    def convert(entry: Any) -> BatchItem:
        item = _checked(entry) if isinstance(entry, BatchItem) else make_item(entry)
        return _spec_checked(item) if check_spec else item

    return _collect(labelled, convert, "no items")


def _collect(
    labelled: Iterable[Tuple[str, Any]], convert: Callable[[Any], BatchItem], empty: str
) -> List[BatchItem]:
    """Every entry converted, or BatchInputError listing every one that could not be (or ``empty``)."""
    items, errors = [], []
    for label, entry in labelled:
        try:
            items.append(convert(entry))
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
    if errors or not items:
        raise BatchInputError(errors or [empty])
    return items


def _digests(items: Sequence[BatchItem]) -> Tuple[str, str]:
    """(The items' digest, which the journal's header holds; that of the same items in any order, which tells
    a rerun of them in another order from a different batch: a set's order changes from one run to the next.)"""
    entries = [json.dumps([_as_digested(*item.request()), item.name], sort_keys=True, default=str) for item in items]
    in_order = "[" + ", ".join(entries) + "]"  # what json.dumps writes of the list: earlier journals' digest
    return _sha256(in_order), _sha256("\n".join(sorted(entries)))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _as_digested(api: str, body: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """A create call's body as the digest takes it: a v2 body's public inside its parameters, where it was sent
    before 8fe3da4 (the journal of a batch started then holds that digest: it resumes)."""
    if api == "v2" and "public" in body:
        body = dict(body, parameters=dict(body["parameters"], public=body["public"]))
        del body["public"]
    return api, body


@dataclass(frozen=True)
class BatchProgress:
    """What ``on_progress`` receives after every event: start, submitted, adopted, resent, complete,
    failed, ambiguous, waiting (e.g. a 429), stopping (Ctrl-C) or done; ``index``: the item's, if any.
    """

    event: str
    index: Optional[int]
    message: str
    total: int
    complete: int
    failed: int
    ambiguous: int
    in_flight: int
    images: int
    credits: Mapping[str, float]
    elapsed: float
    done_this_run: int
    cost_unknown: int = 0  # generations made (paid for) whose cost is not known: see BatchSummary


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of run_batch. Counts are for the whole batch, earlier runs included."""

    total: int
    complete: int
    failed: int
    ambiguous: int
    pending: int  # not finished: still running at the API, never sent, or not downloaded
    images: int
    credits: Mapping[str, float]  # spent, by unit, from the create responses' cost
    wall_time: float  # this run
    done_this_run: int
    images_this_run: int
    interrupted: bool
    out_dir: str
    cost_unknown: int = 0  # generations paid for, not in credits: adopted (their answer was lost), or it gave no cost
    refused: int = 0  # of the failed, those refused (a 4xx to the create call, or not a LeonardoError: see REFUSED)
    offline: bool = False  # run against the built-in fake (run_batch's offline): it cannot be resumed
    gone: Tuple[str, ...] = ()  # complete items' files (as journaled) gone from out_dir or empty: not in images

    @property
    def ok(self) -> bool:
        """Every item is complete."""
        return self.complete == self.total

    @property
    def images_per_minute(self) -> float:
        """Images saved a minute in this run (images_this_run over wall_time); 0.0 for a run of no time."""
        return 60.0 * self.images_this_run / self.wall_time if self.wall_time > 0 else 0.0

    def _counted(self) -> str:
        """"3 of 5 complete, 1 failed, 0 ambiguous, 1 pending": the first words of this summary and of the gallery's."""
        return (f"{self.complete} of {self.total} complete, {self.failed} failed, {self.ambiguous} ambiguous, "
                f"{self.pending} pending")

    def _advice(self, where: str, check: str) -> List[str]:
        """What to do with failed (see ``where``) and ambiguous (see ``check``) items: for the summary, the gallery."""
        advice = [failed_advice(where, refused=False)] if self.failed > self.refused else []
        advice += [failed_advice(where, refused=True)] if self.refused else []
        return advice + ([ambiguous_advice(check)] if self.ambiguous else [])

    def __str__(self) -> str:
        lines = [
            f"{self._counted()}; {_count(self.images, 'image')} in {printable(self.out_dir)}",
            f"spent: {credits_text(self.credits, 'none recorded', unknown=self.cost_unknown)}; "
            f"this run: {_count(self.done_this_run, 'item')}, "
            f"{_count(self.images_this_run, 'image')} in {self.wall_time:.1f}s "
            f"({self.images_per_minute:.1f} images/min)",
        ]
        lines += self._advice("in the gallery", f"{GALLERY} and your Leonardo library")
        if self.pending and not self.interrupted:
            lines.append(f"pending items are still running or not yet downloaded: {resume_advice(self.offline)}")
        if self.gone:  # reported only: nothing fetched again (a generation may give other files than those named)
            more = f" and {len(self.gone) - 10} more" if len(self.gone) > 10 else ""
            names = ", ".join(map(printable, self.gone[:10])) + more
            where = "" if self.offline else f" (its item's card in {GALLERY} gives the id)"
            lines.append(f"files of complete items gone from the folder or empty: {names}; "
                         f"{gone_advice(self.offline, '<generation id>')}{where}")
        return "\n".join(lines)


def failed_advice(where: str, refused: bool) -> str:
    """What to do with failed items, for the summary and the gallery (``where``: where to see why): FAILED at
    Leonardo (refunded), sent again it may be made; ``refused`` by the API (a 4xx, not charged), the same body sent
    again is refused again. The command's flag, and run_batch's argument: the summary is printed by both."""
    if refused:
        return (f"items the API refused (see why {where}) would be refused again as they are: fix them, and run them "
                "as a batch of their own in another folder")
    return f"failed items (see why {where}): rerun with --retry-failed (retry_failed=True) to send them again"


def gone_advice(offline: bool, generation: str) -> str:
    """How to get again the files of a complete item gone, for the summary and the item's card: ``generation``, its
    generation's id; not an --offline batch's, whose fake API ended with its run."""
    if offline:
        return "an --offline batch's files cannot be fetched again: run the batch again into a new --out"
    return f"'leonardo-client get {generation} --out DIR' saves that generation's files again, free, named by ids"


def ambiguous_advice(check: str) -> str:
    """What ambiguous items are and what to do of them, for the summary and the gallery: ``check``, where to look."""
    return (
        f"ambiguous items may not have been created, or were and could not be saved (\"paid for\"): a rerun "
        f"looks again where it can; check {check} before --resubmit-ambiguous (resubmit_ambiguous=True), "
        "which sends each one again, billing again any that was made"
    )


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the batch after journaling what was in flight; ``summary`` says where it stands."""

    def __init__(self, summary: BatchSummary) -> None:
        super().__init__("batch interrupted")
        self.summary = summary


def credits_text(credits: Mapping[str, float], nothing: str, separator: str = ", ", unknown: int = 0) -> str:
    """"2 credits, 0.06 dollars": each unit's amount, without trailing zeros; ``nothing`` if none;
    then how many generations' cost is unknown, if any ("3 generations of unknown cost"). A unit is the create
    answer's, escaped (printable): the summary goes to stdout, where a program prints it too."""
    amounts = [f"{v:.4f}".rstrip("0").rstrip(".") + " " + printable(u.lower()) for u, v in sorted(credits.items())]
    if unknown:
        amounts.append(f"{_count(unknown, 'generation')} of unknown cost")
    return separator.join(amounts) or nothing


class _Journal:
    """out_dir/journal.jsonl: a header line, then one line per state change or note, fsynced as written."""

    def __init__(
        self, out_dir: str, digest: str, total: int, any_order: str = "", offline: bool = False, given: str = ""
    ) -> None:
        self.path, self.offline = os.path.join(out_dir, JOURNAL), offline
        self.given = given or out_dir  # out_dir as given (run_batch makes it absolute): how messages name it
        self._writing = threading.Lock()
        self._stopped = ""  # why nothing more is written, if so
        try:
            self.folder, self.folder_stat = out_dir, os.stat(out_dir)  # see check_folder
            # Read through it too: a journal that can be written but not read (mode 200) is refused here.
            fd = _files.open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)  # novm: flags, not a union
            self._file = open(fd, "a+b", buffering=0)  # unbuffered: each write() is one system call
        except OSError as exc:
            raise LeonardoError(f"could not open {self.said_path}: {exc.strerror or exc}") from exc
        _client.fork_aware(self)
        try:
            self._lock()  # before reading: a running batch's journal is neither cut nor judged
            self.records = self._read()
            header = self.records.pop(0) if self.records else None
            mark = {"offline": True} if offline else {}
            fresh = {"journal": JOURNAL_VERSION, "input": digest, "items": total, "any_order": any_order, **mark}
            if header is None:  # a new journal: no records either
                self._refuse_files_beside(out_dir)
                self._begin(out_dir, fresh)
            elif "journal" not in header:  # cut off at its start (truncated while running?)
                raise BatchInputError([f"{self.said_path} is damaged: its first line is no header ({DAMAGED})"])
            elif header["journal"] not in range(1, JOURNAL_VERSION + 1) or isinstance(header["journal"], bool):
                self._refuse_format(header["journal"])
            elif not _may_have_sent(self.records):  # nothing of that batch was sent (it stopped at GET /me?)
                header = None
                self._begin_again(out_dir, fresh)
            elif (header.get("input"), header.get("items")) != (digest, total):
                self._refuse_other_input(header, digest, total, any_order)
            self._refuse_unknown(total)
            if header is not None:
                self._refuse_offline_mix(header)
        except BaseException:  # closed, so unlocked: a retry in this process is not refused as a second batch
            self._file.close()
            raise

    @property
    def said(self) -> str:
        """The folder as messages name it: as given, quoted."""
        return shown_path(self.given)

    @property
    def said_path(self) -> str:
        """The journal as messages name it: in the folder as given, quoted."""
        return shown_path(os.path.join(self.given, JOURNAL))

    def _refuse_format(self, version: Any) -> NoReturn:
        """Refuse a journal of a format this version does not write: a newer version's, or a header damaged."""
        if type(version) in (int, float) and version > JOURNAL_VERSION:
            upgrade = "upgrade it to resume this batch (do not edit the journal)"
            raise BatchInputError([f"{self.said_path} was written by a newer leonardo-client: {upgrade}"])
        raise BatchInputError([f"{self.said_path} is damaged: its header's format {shown(version)} is none a version "
                               f"wrote ({DAMAGED})"])

    def _refuse_unknown(self, total: int) -> None:
        """Refuse a journal holding a record this version does not write: a newer version's (one that did not raise
        JOURNAL_VERSION, as none did through five additions), or a line damaged; then one out of its place."""
        unusable = next((cut(json.dumps(r)) for r in self.records if not _well_formed(r, total)), None)
        if unusable is not None:
            newer = "written by a newer leonardo-client? upgrade it; else it is damaged: delete that line"
            raise BatchInputError([f"{self.said_path} holds a record of no item of this batch ({unusable}): {newer} "
                                   f"({DAMAGED})"])
        self._refuse_out_of_order()

    @classmethod
    def of_items(cls, out_dir: str, items: Sequence[BatchItem], offline: bool, given: str = "") -> "_Journal":
        digest, any_order = _digests(items)
        return cls(out_dir, digest, len(items), any_order, offline, given)

    def _begin(self, out_dir: str, header: Dict[str, Any]) -> None:
        """A new journal: its header, written and named durably."""
        self.append([header])
        # The new file's name (and a new folder's): the file's own fsync may not keep them through a power cut.
        for folder in (out_dir, os.path.dirname(os.path.abspath(out_dir))):
            _sync_folder(folder)

    def _begin_again(self, out_dir: str, header: Dict[str, Any]) -> None:
        """A journal of a batch that sent nothing, begun again for these items (edited since, perhaps), in this mode;
        but one of no item's record beside files is refused: a run writes them (index.html first) once it has planned
        its items, so those records were lost. Its page goes first: a rerun stopped before it plans (at GET /me) would
        leave it beside a journal of no item's record."""
        if not any("i" in record for record in self.records):
            # (an earlier version begun again kept the page: beside a rerun stopped at GET /me, it is no sign of loss)
            self._refuse_files_beside(out_dir, f"no item's record (cut short? if no run ever sent an item, delete "
                                               f"{GALLERY} and rerun)")
        with contextlib.suppress(OSError):
            os.remove(os.path.join(out_dir, GALLERY))
        self._cut(0)
        self.records = []
        self._begin(out_dir, header)

    def _refuse_offline_mix(self, header: Dict[str, Any]) -> None:
        """Refuse a journal whose generations this run cannot find: an offline batch's (its fake API ended with its
        run, and what it made with it) rerun on the API, or offline with items in flight; a batch's on the API (a
        header without the mark: an earlier version's offline one too) rerun offline."""
        if header.get("offline") is True and not self.offline:
            raise BatchInputError([f"{self.said} holds the journal of an --offline batch (offline=True), its images "
                                   "the built-in fake API's placeholders: use a new --out (out_dir) for a batch on the "
                                   "API"])
        if header.get("offline") is not True and self.offline:  # an earlier version's offline one was not marked
            raise BatchInputError([f"{self.said} holds the journal of a batch run on the API (or --offline by an "
                                   "earlier version, which did not say so), whose generations the built-in fake API "
                                   "cannot know: rerun it without --offline (offline=True), or use a new --out "
                                   "(out_dir)"])
        states = {record["i"]: record["s"] for record in self.records if "i" in record}  # each item's last
        in_flight = sum(state in ("submitting", "submitted") for state in states.values())
        if self.offline and in_flight:
            raise BatchInputError([
                f"{self.said} holds an --offline batch (offline=True) stopped with {_count(in_flight, 'item')} in "
                "flight: the built-in fake API is new each run, and their generations ended with the last one: it "
                "cannot be resumed: use a new --out (out_dir)"
            ])  # fmt: skip

    def _refuse_other_input(self, header: Dict[str, Any], digest: str, total: int, any_order: str) -> None:
        if any_order and header.get("any_order") == any_order:  # kept refused: the journal's indexes are positions
            raise BatchInputError([
                f"{self.said} holds the journal of these items in another order: give them in the order of its first "
                "run (a list, sorted or as written, not a set's order, which changes from run to run) to resume it"
            ])  # fmt: skip
        theirs = f"{header.get('items')} items, input {str(header.get('input'))[:12]}"
        raise BatchInputError([
            f"{self.said} holds the journal of a different batch ({theirs}, this one: {total} items, input "
            f"{digest[:12]}): use another folder (deleting the journal would send that batch's items "
            "again, those already made too)"
        ])  # fmt: skip

    def _refuse_files_beside(self, out_dir: str, lacking: str = "no header (emptied, or cut short?)") -> None:
        """A journal without a header beside files: emptied (``jq . journal.jsonl > journal.jsonl``) or cut short,
        as the batch writes its header before anything else (or see _begin_again). Beside none, a run killed before it
        wrote its header."""
        with _listing(self.said):
            found = _first_shown(out_dir)
        if found is not None:
            raise BatchInputError([
                f"{self.said_path} holds {lacking} though {self.said} holds files "
                f"({shown(found)}...): {PUT_BACK}"
            ])  # fmt: skip

    def check_folder(self) -> None:
        """Raise _FolderMoved if out_dir is no longer the folder the batch started in: what is written to its
        path would re-create it there, while the journal (an open file) went with the folder; or if the journal was
        deleted: nothing can resume the batch."""
        try:
            moved = not os.path.samestat(os.stat(self.folder), self.folder_stat)
        except OSError:
            moved = True
        if moved:
            raise _FolderMoved(f"{self.said} was moved, renamed or deleted while the batch ran: rerun it in its new "
                               "place")
        try:
            deleted = os.fstat(self._file.fileno()).st_nlink == 0
        except (OSError, ValueError):  # unreadable (a stale NFS handle: the next append says so), or closed
            deleted = False
        if deleted:  # its lock went with it: a second run could start on the folder
            raise _FolderMoved(f"could not write {self.said_path}: it was deleted while the batch ran")

    def _lock(self) -> None:
        """Refuse a second run on the same folder: it would send the same items."""
        try:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm: flags, not a union
        except ImportError:  # Windows: no advisory lock
            pass
        except OSError:
            raise BatchInputError([f"another batch is running in {self.said} (its journal is locked)"]) from None

    def _read(self) -> List[Dict[str, Any]]:
        self._file.seek(0)
        data = self._file.readall()
        records: List[Dict[str, Any]] = []
        self.numbers: List[int] = []  # each record's line
        good = len(BOM) if data.startswith(BOM) else 0  # kept: a torn last line is cut off after it
        lines = data[good:].splitlines(keepends=True)
        for number, line in enumerate(lines, 1):
            if line.isspace():  # a blank line (an editor's, `echo >>`): no torn write makes one
                good += len(line)
                continue
            try:
                record = parse_json(line.decode("utf-8"))
                if not isinstance(record, dict) or number < len(lines) and not line.endswith(b"\n"):
                    raise ValueError("incomplete line")
            except ValueError:
                if number < len(lines) or line.endswith(b"\n"):  # whole: not a crash's, a bad edit
                    raise self._damaged(number)
                break  # the last line, cut short by a crash: dropped, and cut off the file
            records.append(record)
            self.numbers.append(number)
            good += len(line)
        if good < len(data):
            self._cut(good)
        elif records and not data.endswith(b"\n"):  # a whole last record whose line break an edit took (one torn
            # cannot parse: its brace is last; one a crash left so was never acted on): kept, the next one on a line
            self._write(b"\n")
        return records

    def _damaged(self, number: int) -> BatchInputError:
        damaged = f"{self.said_path} is damaged at line {number}: repair or delete that line"
        return BatchInputError([f"{damaged} ({DAMAGED})"])

    def _refuse_out_of_order(self) -> None:
        """Refuse an item's "planned" or "submitting" after its "submitted" or "complete" with none between: no
        version writes one (only a "planned" sends an item again); a line moved or copied by hand. Taken up, the item
        was unanswered while its own generation was claimed: not found, and sent again."""
        last: Dict[int, str] = {}
        for number, record in zip(self.numbers[1:], self.records):  # after the header's
            if "i" in record:
                if record["s"] in ("planned", "submitting") and last.get(record["i"]) in ("submitted", "complete"):
                    raise self._damaged(number)
                last[record["i"]] = record["s"]

    def append(self, records: Iterable[Dict[str, Any]]) -> None:
        self._write(b"".join(json.dumps(r, separators=(",", ":")).encode("utf-8") + b"\n" for r in records))

    def _write(self, chunk: bytes) -> None:
        data = memoryview(chunk)
        with self._writing:  # the main thread, and workers journaling the time a POST is sent
            end: Optional[int] = None
            try:
                if self._stopped:
                    raise OSError(self._stopped)
                self.check_folder()
                end = os.fstat(self._file.fileno()).st_size
                while data:  # one write, unless the disk takes only part (then the rest, or ENOSPC)
                    written = self._file.write(data)
                    if not written:  # never for a regular file, but asking again would loop forever
                        raise OSError("nothing was written")
                    data = data[written:]
                os.fsync(self._file.fileno())
            except BaseException as exc:  # nothing is acted on that the journal does not hold whole (a Ctrl-C too)
                self._undo(end)
                # A signal handler's TimeoutError or InterruptedError (a host's deadline: no errno) is no disk's.
                host = isinstance(exc, (TimeoutError, InterruptedError)) and exc.errno is None
                if isinstance(exc, OSError) and not host:
                    raise self._not_written(exc) from exc
                raise

    def _not_written(self, exc: OSError) -> LeonardoError:
        return LeonardoError(f"could not write {self.said_path}: {error_text(exc)}")  # error_text: none names a file

    def _cut(self, size: int) -> None:
        """Cut the journal to ``size`` bytes (LeonardoError if it cannot be: an append-only file, chattr +a)."""
        try:
            os.ftruncate(self._file.fileno(), size)
        except OSError as exc:
            raise self._not_written(exc) from exc

    def _undo(self, end: Optional[int]) -> None:
        """Cut off what a failed append wrote: a later record (the disk has room again) would be
        joined to that part line, and the journal refused on the rerun."""
        try:
            if end is not None:
                os.ftruncate(self._file.fileno(), end)
        except OSError:  # nothing more is written, so the part line stays the last, dropped on reading
            self._stopped = "a write cut short earlier could not be undone"

    def close(self) -> None:
        self._file.close()

    def _forked(self) -> None:
        """In a process forked while the journal is open (a fork-start process pool fed from on_progress): its copy
        of the descriptor closed, else the lock on it held the folder until that process ended (a rerun refused as
        another batch running); not unlocked, which would unlock the parent's. Nothing is written from here."""
        self._writing = threading.Lock()  # a parent's thread may have held it at the fork
        self._stopped = "this process was forked from the batch's: only that one writes its journal"
        self._file.close()


def _missing(path: str) -> bool:
    """Whether ``path`` is no file of some bytes: gone, emptied, or something else so named."""
    try:
        return not os.path.isfile(path) or os.path.getsize(path) == 0
    except OSError:  # gone meanwhile
        return True


def _sync_folder(path: str) -> None:
    with contextlib.suppress(OSError):  # Windows opens no folder (NTFS journals its names)
        folder = os.open(path, os.O_RDONLY)
        try:
            os.fsync(folder)  # OSError: a file system that cannot sync a folder
        finally:
            os.close(folder)


def _well_formed(record: Mapping[str, Any], total: int) -> bool:
    """A record as _Engine writes it: an item's state change (index, state, its data), or a note."""
    if "i" not in record:  # a note: {"v2_listed": model}, {"prompts_rewritten": true}, {"clock": seconds, "r": run}
        note, run = list(record), record.get("r", "")  # or {"user": the account's id}
        clock = note in (["clock"], ["clock", "r"]) and _is_number(record["clock"]) and _is_run(run)
        listed = note == ["v2_listed"] and isinstance(record["v2_listed"], str)  # true: an older version's, of no model
        flag = listed or record in ({"v2_listed": True}, {"prompts_rewritten": True})
        return flag or clock or note == ["user"] and is_id(record["user"])
    index, state = record["i"], record.get("s")
    if type(index) is not int or not 0 <= index < total or state not in STATES:
        return False
    if state == "submitting":  # rt: how long it may run at the server, which reconciliation waits out
        span = record.get("rt", 0.0)  # a connect and a read timeout, each at most MAX_SECONDS
        valid = _is_number(record.get("t")) and _is_run(record.get("r", ""))
        return valid and _is_number(span) and 0 <= span <= 2 * _client.MAX_SECONDS
    if state == "complete":
        files = record.get("files", [])
        return isinstance(files, list) and all(isinstance(name, str) for name in files)
    if state == "submitted":  # its cost as _cost() writes it, if any
        cost = record.get("cost", {"amount": "", "unit": ""})
        texts = isinstance(cost, dict) and all(isinstance(cost.get(key), str) for key in ("amount", "unit"))
        return is_id(record.get("id")) and texts and _is_number(record.get("t", 0.0))  # "" could be polled for no one
    return True


def _is_run(value: Any) -> bool:
    """A run's id as _Engine writes it (see clock_known)."""
    return isinstance(value, str) and len(value) <= 64


def _is_number(value: Any) -> bool:
    """A finite number a float holds (comparisons of an int with a float are exact; NaN fails both)."""
    limit = sys.float_info.max  # not math.isfinite(): an int past it raised OverflowError
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -limit <= value <= limit


@dataclass
class _Item:
    """One item's state: what the journal says, and the scheduler's notes on it."""

    index: int
    item: BatchItem
    state: str = "planned"
    generation_id: Optional[str] = None
    cost: Optional[Dict[str, Any]] = None
    since: float = 0.0  # wall-clock time of the last "submitting": when its POST was sent
    sent_before: float = math.inf  # an earlier run's "submitting": this run's start, which its POST preceded (see plan)
    run: Optional[str] = None  # the id of the run that sent it (its last "submitting"): None, an older version's
    # Its "submitting" has no "r": an older version's, whose POST may have gone later than journaled (journaled as it
    # was queued before 99a120b; retried after a 429 until b88d34d).
    queued: bool = False
    span: float = 0.0  # the longest that POST could run, as its client was set (journaled as "rt")
    answered: float = 0.0  # wall-clock time its create answer was recorded (not adopted): made before then
    known: bool = False  # its last create call's generation is known (answered, or adopted): it made no other
    read_again: bool = False  # a listing that failed was read again for it in this run (see settle_now)
    counted: bool = False  # in done_this_run: settled in this run, once (a second look may unsettle it: record)
    files: List[str] = field(default_factory=list)
    seed: Optional[int] = None
    reason: str = ""
    recheck: bool = False  # ambiguous after a reconciliation: a rerun reconciles it again
    told_held: bool = False  # said to wait behind an ambiguous item of its prompt (start_posts): said once
    check_at: float = 0.0  # monotonic: next GET by id, when the listing does not show it
    check_gap: float = _client.POLL_INTERVAL  # seconds to its next GET by id: grows as a wait's (start_poll)
    first_seen: Optional[float] = None  # monotonic: when this run first saw it submitted
    missing_since: Optional[float] = None  # monotonic: the first "no such generation" since an answer showed it
    empty_since: Optional[float] = None  # monotonic: when first seen COMPLETE short of images (see _Engine.shortfall)
    shortfall: str = ""  # why the files it is about to save are fewer than asked: journaled with them
    gone: List[str] = field(default_factory=list)  # complete: its journaled files not in out_dir or empty (see plan)
    busy: bool = False  # a download runs for it
    sending: bool = False  # its create call is under way (a worker took it before Ctrl-C)
    answer: Optional[Tuple[Any, Optional[BaseException]]] = None  # that call's outcome, left by the worker
    download_tries: int = 0
    download_at: float = 0.0
    paid: Dict[str, float] = field(default_factory=dict)  # by unit: its earlier generations (sent again on purpose)
    paid_unknown: int = 0  # its earlier generations made whose cost is not known

    def apply(self, record: Mapping[str, Any]) -> None:
        if record["s"] == "planned":  # sent again: a failed one was refunded, an ambiguous one made was paid for
            self.paid, self.paid_unknown, self.cost = self.spent(), self.cost_unknown(), None
        self.state = record["s"]
        self.known = self.state == "submitted" or self.known and self.state not in ("planned", "submitting")
        if self.state == "submitting":  # answered: an earlier call's, on its run's clock perhaps (see learn_from)
            self.since, self.span, self.sent_before = float(record["t"]), float(record.get("rt", 0.0)), math.inf
            self.run, self.answered, self.queued = record.get("r"), 0.0, "r" not in record
        elif self.state == "submitted":
            self.generation_id = str(record["id"])
            self.cost = record.get("cost")
            self.answered = float(record.get("t", 0.0))
        elif self.state == "complete":
            self.files = list(record.get("files") or [])
            self.seed = record.get("seed")
        self.reason = str(record.get("reason") or "")
        unsettled = "recheck" not in record and UNSETTLED.match(self.reason) is not None  # before ca5d991
        self.recheck = self.state == "ambiguous" and (record.get("recheck") is True or unsettled)

    @property
    def sent_by(self) -> float:
        """The latest its POST may have been sent, on this run's clock: one queued, as late as its run could have
        (before this one began); its window counts from then, while reconciliation reads back from ``since`` still."""
        return self.sent_before if self.queued else min(self.since, self.sent_before)

    def cost_unknown(self) -> int:
        """Its generations paid for whose cost no answer told (adopted, or an answer without a usable one)."""
        return self.paid_unknown + self.cost_unknown_now()

    def cost_unknown_now(self) -> int:
        """1 if its generation was made (paid for) and no answer told its cost, else 0."""
        made = self.state in ("submitted", "complete") or self.state == "ambiguous" and self.known
        return int(made and not self.cost_now()[0])

    def spent(self) -> Dict[str, float]:
        """What this item has cost, by unit: its generation's, and those of the earlier ones."""
        unit, amount = self.cost_now()
        return {**self.paid, unit: self.paid.get(unit, 0.0) + amount} if unit else self.paid

    def cost_now(self) -> Tuple[str, float]:
        """(unit, amount) its generation has cost; Leonardo refunds failed generations."""
        if not self.cost or self.state == "failed":
            return "", 0.0
        try:
            amount = float(self.cost["amount"])
        except (KeyError, TypeError, ValueError):
            return "", 0.0
        return (str(self.cost["unit"]), amount) if math.isfinite(amount) else ("", 0.0)  # "NaN" would spoil the sum


def run_batch(
    client: "_client.Client", items: Iterable[Union[BatchItem, Mapping[str, Any]]], out_dir: _files.PathLike, *,
    concurrency: Optional[int] = None, posts_per_minute: float = DEFAULT_POSTS_PER_MINUTE,
    on_progress: Optional[Callable[[BatchProgress], object]] = None, retry_failed: bool = False,
    resubmit_ambiguous: bool = False, item_timeout: float = 3600.0, offline: bool = False,
) -> BatchSummary:
    """Run many generations with ``client``, journaled in ``out_dir`` so a rerun resumes; returns a BatchSummary.

    ``items``: BatchItems, or mappings of their fields as a JSON Lines prompts file's lines are (other keys go to
    ``extra``); the same items and ``out_dir`` again resume. ``concurrency``: at most that many generations in flight;
    None fills the account's ``apiConcurrencySlots`` (GET /me) plus a small queue (half as many again, at least 2).
    ``posts_per_minute`` (100, the API's default limit): create calls paced evenly, about 1% under it.
    ``on_progress``: called in the caller's thread with a BatchProgress after each event; what it raises ends the batch.
    ``retry_failed``: failed items sent again. ``resubmit_ambiguous``: ambiguous items sent again, the one option
    that can bill twice (one may have been made). ``item_timeout``: a generation still running after it is left in
    flight for a rerun (never sent again), and the batch stops when no create call has gone through (429s, no
    connection, 5xx never created) for as long. ``offline``: ``client`` answers from a fake API that ends with this
    run (the command's --offline): the journal says so, and a rerun that could not find its generations is refused.

    Raises:
        BatchInputError: bad items, or ``out_dir`` holds the journal of a different batch (or of one, see
            ``offline``, whose generations this run cannot find).
        BatchInterrupted: Ctrl-C; what was in flight is journaled (a KeyboardInterrupt).
        LeonardoError: the account could not be read, the API refused the key, no create call went through for
            ``item_timeout``, its threads could not start (nothing sent), ``out_dir`` could not be created, the
            Client was closed while the batch ran, or ``out_dir``'s journal is another account's.
        ValueError, TypeError: an unusable argument, before anything is sent or written.
    """
    given = _files.check_path(out_dir, "out_dir")
    out_dir = _absolute(given)
    batch_items = _as_items(items, check_spec=not journaled(out_dir))
    _check_options(client, concurrency, posts_per_minute, item_timeout, on_progress, retry_failed, resubmit_ambiguous)
    check_type("offline", offline, bool)
    _check_out_dir(out_dir, len(batch_items), given)
    _files.make_folder(out_dir)
    engine = _Engine(client, batch_items, out_dir, posts_per_minute, on_progress, item_timeout, offline, given)
    with contextlib.closing(engine.journal):  # open (and locked) from here
        return engine.run(concurrency, retry_failed, resubmit_ambiguous)


def _absolute(given: str) -> str:
    """``given`` made absolute, once: a host's chdir() while the batch runs (a notebook's %cd) moves nothing."""
    try:
        return os.path.abspath(given)
    except OSError as exc:  # relative, in a working directory deleted: as make_folder said it before
        raise LeonardoError(f"could not create folder {shown_path(given)}: {exc.strerror or exc}") from exc


def _in_flight_limit(slots: int, given: bool) -> int:
    """A concurrency given is the cap: on an account of more slots all that are sent run at once, and a user
    lowering it leaves the rest to other programs. The account's own slots get a small queue (half as many again,
    at least 2), held at the API, so that a slot never idles while the batch has not yet seen a completion."""
    return slots if given else slots + max(2, math.ceil(slots / 2))


def _worker_count(client: Any, slots: int) -> int:
    """The threads that make the batch's calls: no more than ``client`` keeps connections (its pool_maxsize), as
    urllib3 warns of each one more ("Connection pool is full") to a program that logs; slots + 2 at most, 4 at least."""
    pool = getattr(getattr(client, "_adapter", None), "_pool_maxsize", None)  # None: a client of another kind
    return max(4, min(MAX_WORKERS, slots + 2, pool if isinstance(pool, int) else MAX_WORKERS))


def _check_options(
    client: Any, concurrency: Any, posts_per_minute: Any, item_timeout: Any, on_progress: Any,
    retry_failed: Any, resubmit_ambiguous: Any,
) -> None:
    """run_batch's options, checked as Client checks its own: before anything is sent or written."""
    if isinstance(client, type):  # its methods are there, unbound: it failed at GET /me, the journal written
        raise TypeError(f"client must be a Client instance (Client(...)), not the class {client.__name__}")
    if not callable(getattr(client, "create_generation", None)):
        raise TypeError(f"client must be a Client, not {type(client).__name__}")
    if concurrency is not None:
        check_number("concurrency", concurrency, 1, MAX_CONCURRENCY, integer=True)
    check_number("posts_per_minute", posts_per_minute, MIN_POSTS_PER_MINUTE, MAX_POSTS_PER_MINUTE)
    check_number("item_timeout", item_timeout, _client.MIN_SECONDS, _client.MAX_SECONDS)
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be a function (BatchProgress), not {type(on_progress).__name__}")
    check_type("retry_failed", retry_failed, bool)
    check_type("resubmit_ambiguous", resubmit_ambiguous, bool)  # "false" would be true: it may bill twice


def _check_out_dir(out_dir: str, total: int, given: str) -> None:
    """Refuse a folder that holds files but no journal: the batch would write over its index.html and any
    file named like an item's; one named as this batch's items' files are, as a batch's folder whose journal is gone.
    A batch's own folder holds its journal: nothing is written there before it.
    Hidden entries do not count (.DS_Store...): the batch writes over no hidden file but its own leftovers."""
    if os.path.lexists(os.path.join(out_dir, JOURNAL)):
        return
    try:
        found = _first_shown(out_dir)
        names = sorted(os.listdir(out_dir)) if found is not None else []
    except OSError:  # none yet (made next), or not a folder (make_folder says so)
        return
    numbers = set(_numbers(total))
    ours = next((name for name in names if name[: name.find("-") + 1] in numbers), None)
    if ours is not None:  # following "use a new or empty folder" sent every item again, those made too
        raise BatchInputError([f"{shown_path(given)} holds {shown(ours)}, named as this batch's files are, but no "
                               f"{JOURNAL} (deleted or renamed?): {PUT_BACK}"])
    if found is not None:
        raise BatchInputError([
            f"{shown_path(given)} is not a batch's folder (it holds {shown(found)} and no {JOURNAL}): the batch would "
            f"write over files there ({GALLERY}, any named like its items'): use a new or empty folder"
        ])  # fmt: skip


def _numbers(total: int) -> List[str]:
    """"0001-", "0002-"...: how the files of a batch of ``total`` items are named, item by item (see _Engine.stems)."""
    width = max(4, len(str(total)))
    return [f"{n:0{width}d}-" for n in range(1, total + 1)]


@contextlib.contextmanager
def _listing(said: str) -> Iterator[None]:
    """Around a listing of out_dir (``said``: as messages name it) that the batch cannot go on without: its OSError is
    a LeonardoError."""
    try:
        yield
    except OSError as exc:
        raise LeonardoError(f"could not read {said}: {exc.strerror or exc}") from exc


def _first_shown(out_dir: str) -> Optional[str]:
    """The name of a file or folder in out_dir other than its journal and hidden entries, or None."""
    with os.scandir(out_dir) as entries:
        hidden = (JOURNAL, *FILE_MANAGER_FILES)
        return next((e.name for e in entries if not e.name.startswith(".") and e.name not in hidden), None)


class _FolderMoved(LeonardoError):
    """out_dir is no longer the folder the batch started in: the batch stops, writing nothing more."""


class _NotJournaled(LeonardoError):
    """The journal could not take a POST's record: the POST was not sent, and the batch stops."""


class _Stopped(Exception):
    """A create call still queued at Ctrl-C (not sent), or a download finished after run_batch ended (not kept)."""


# What a worker thread hands the main thread: (kind, done, result, error); done(result, error) runs there.
_Done = Callable[[Any, Optional[BaseException]], None]


class _Engine:
    """The scheduler. Worker threads make the HTTP calls and write only an item's ``sending``, ``since``,
    ``span`` and ``answer`` (in send()), ``listing_read`` (in poll(): rounds never overlap) and the journal (which
    locks); the main thread decides everything else."""

    interrupted = False  # Ctrl-C came: the run is stopping
    paused_until, paused_why = 0.0, ""  # monotonic: when the last pause of submissions ends (back_off), and why
    gallery_pause = 0.0  # the end of the pause the page shows, 0.0 for none
    listing_read = True  # whether the last poll round's listing was read (see poll)
    last_refusal: object = None  # the last refusal (see check_refusals), a listing's error too: the stop says it
    fatal: Optional[BaseException] = None  # what stops the run (see loop)
    paced_since_429 = True  # a create call sent after the last 429 went through: a 429 now refuses the pace (posted)
    last_429 = 0.0  # wall-clock time the last 429 was acted on (see went_through)
    made_since = 0.0  # wall-clock time the latest create call that went through was sent (see resend)
    looked_again = False  # the items a listing that raised left ambiguous were looked for once more (look_again)
    v2_listed: Set[str]  # the v2 models the listing was seen to show a generation of (see note_v2_listed)
    v2_waiting: Set[int]  # the items waiting in look_again_for_v2, till their state changes

    def __init__(
        self,
        client: "_client.Client",
        items: List[BatchItem],
        out_dir: str,
        posts_per_minute: float,
        on_progress: Optional[Callable[[BatchProgress], object]],
        item_timeout: float,
        offline: bool = False,
        given: str = "",
    ) -> None:
        self.client, self.out_dir, self.on_progress, self.item_timeout = client, out_dir, on_progress, item_timeout
        self.items = [_Item(n, item) for n, item in enumerate(items)]
        self.stems = [number + _slug(item.name or item.prompt) for number, item in zip(_numbers(len(items)), items)]
        self.journal = _Journal.of_items(out_dir, items, offline, given)
        self.post_gap = 60.0 * PACE_MARGIN / posts_per_minute
        self.tasks: "queue.Queue[Optional[Tuple[str, Callable[[], Any], _Done]]]" = queue.Queue()
        self.events: "queue.Queue[Tuple[str, _Done, Any, Optional[BaseException]]]" = queue.Queue()
        self.started = self.post_at = self.next_wake = time.monotonic()
        self.epoch = time.time() - _awake_or_asleep()  # see wall_time
        self.run_from, self.run_id = self.wall_time(), os.urandom(8).hex()  # see plan, and clock_known
        self.poll_at, self.poll_gap = self.started + FIRST_POLL, FIRST_POLL
        self.slowdown = 1.0  # grows once per run of 429s (see paced_since_429), shrinks back with each accepted POST
        self.pause = self.poll_pause = DEFAULT_PAUSE  # next hold after a 429 without Retry-After: submissions, polls
        self.job_times: "collections.deque[float]" = collections.deque(maxlen=20)  # times from POST to COMPLETE
        self.busy = self.posts = self.done_this_run = self.images_this_run = self.images = self.cost_unknown = 0
        self.polling = self.v2_wanted = self.prompts_rewritten = False  # look_again_for_v2, rewrites
        self.v2_listed, self.v2_waiting = set(), set()
        self.being_reconciled: List[int] = []  # the items of the reconciliation under way: one at a time
        self.refused_since: Optional[float] = None  # monotonic: the first refusal since progress (see check_refusals)
        self.stopping, self.send_lock = False, threading.Lock()  # Ctrl-C, or the end: no create call starts after it
        self.gallery_at, self.gallery_every, self.gallery_stale = 0.0, GALLERY_EVERY, True
        # Kept up to date by set_state(), so that no step walks every item.
        self.members: Dict[str, Set[int]] = {state: set() for state in STATES}
        self.members["planned"].update(range(len(items)))
        self.spent: Dict[str, float] = {}
        self.by_generation: Dict[str, int] = {}  # every generation id recorded, to its item
        self.finished: Dict[int, Dict[str, Any]] = {}  # complete at the API, not yet downloaded
        self.clock: Optional[float] = None  # at most the server's clock less ours (a lower bound): see learn_from
        self.measured: Set[Optional[str]] = set()  # the runs whose clock a generation they sent has shown

    @property
    def create_span(self) -> float:
        """The longest a create call may run, as the client is set now (it may be set while the batch
        runs): one attempt, never retried (posts_not_retried), connecting then reading under its timeout."""
        timeout = self.client.timeout
        return float(sum(timeout) if isinstance(timeout, tuple) else 2 * timeout)

    def window(self, item: _Item) -> float:
        """How long after its "submitting" time the item's create call may still run at the server: the
        span it was sent under (journaled, so a rerun knows it too), or the client's if longer."""
        return max(self.create_span, item.span)

    def set_state(self, item: _Item, record: Mapping[str, Any]) -> None:
        self.gallery_stale = True
        self.tally(item, -1)
        item.apply(record)
        self.tally(item, 1)
        if item.state == "submitted":
            self.by_generation[id_key(item.generation_id)] = item.index

    def tally(self, item: _Item, sign: int) -> None:
        """Count ``item``, as its state stands, into (1) or out of (-1) the totals."""
        for unit, amount in item.spent().items():
            self.spent[unit] = self.spent.get(unit, 0.0) + sign * amount
        self.cost_unknown += sign * item.cost_unknown()
        self.images += sign * len(item.files) if item.state == "complete" else 0
        (self.members[item.state].add if sign > 0 else self.members[item.state].discard)(item.index)

    def record(self, item: _Item, state: str, **fields: Any) -> None:
        record = {"i": item.index, "s": state, **{k: v for k, v in fields.items() if v is not None}}
        self.journal.append([record])
        self.set_state(item, record)
        self.v2_waiting.discard(item.index)
        if state in ("planned", "submitted"):  # sent again or adopted (a second look): not settled in this run yet
            self.done_this_run -= item.counted
            item.counted = False
        if state == "planned":
            self.queue.appendleft(item.index)  # back in line, first
        elif self.refused_since is not None and time.monotonic() + self.item_timeout < self.paused_until:
            # Moved on, while a pause holds the create calls past item_timeout (see watch_refusals); a shorter one's
            # next answer decides, as without it: a may-have-run call's pause cannot make the stop come sooner.
            self.refused_since = time.monotonic()
        else:
            self.refused_since = None  # the batch moves on: see check_refusals

    def settled(self, item: _Item) -> None:
        """Count ``item`` done in this run, once (record uncounts one a second look sends again or adopts)."""
        self.done_this_run += not item.counted
        item.counted = True

    def fail(self, item: _Item, reason: str, said: str) -> None:
        """Journal ``item`` failed for ``reason``; its progress event says ``said``."""
        self.record(item, "failed", reason=reason)
        self.settled(item)
        self.emit("failed", item, f"#{item.index + 1} failed: {said}")

    def note_v2_listed(self, model: str) -> None:
        """The listing shows ``model``'s generations (v2): from now on its silence about one of that model is proof,
        so that model's items waiting to be reconciled are reconciled now (see look_again_for_v2). Another model's
        silence still proves nothing: the v1 listing's holding of v2 generations is not documented, and an image
        model's and a video model's may be stored apart."""
        if model not in self.v2_listed:
            self.journal.append([{"v2_listed": model}])
            self.v2_listed.add(model)
            for index in self.v2_waiting & self.reconcile_at.keys():
                item = self.items[index]  # a listing that raised is read again no sooner (settle_now)
                if item.item.model == model and not item.read_again:
                    self.reconcile_at[index] = time.monotonic()

    def learn_from(self, generations: Iterable[Mapping[str, Any]], listing: bool) -> None:
        """What the batch's own generations, listed or fetched, tell: which v2 models' the listing
        shows, and how far the server's clock may be behind ours (each one a create call answered was
        made before we recorded its id; journaled, so that a rerun knows it before it reconciles).
        The smallest bound seen is kept, to within 1 s (one from a run already measured, only if more than 1 s
        smaller): a clock set ahead since, in this run or between runs, shows as a smaller one. An adopted one
        tells nothing: it may have been made long before it was found."""
        for generation in generations:
            key = id_key(generation.get("id"))
            index = self.by_generation.get(key)
            if index is None:  # not ours
                continue
            item = self.items[index]
            if (listing or generation.get("listed")) and item.item.model is not None:
                self.note_v2_listed(item.item.model)
            prompt = generation.get("prompt")  # shown other than sent: news, unless its item predicts it (see rewrites)
            if isinstance(prompt, str) and prompt != item.item.prompt and not self.rewrites(item):
                self.journal.append([{"prompts_rewritten": True}])
                self.prompts_rewritten = True
            # Adopted (nothing to parse), or an earlier one of a retried item (answered before).
            if not item.answered or id_key(item.generation_id) != key:
                continue
            created = _timestamp(generation.get("createdAt"))
            if created is None or abs(created - item.answered) > MAX_CLOCK_OFFSET:  # 1970 or 9999: a time not read
                continue
            bound = round(created - item.answered, 3)  # of the clock of item's run, which journaled both times
            if self.clock is None or bound < self.clock - 1.0 or item.run not in self.measured:
                self.clock = bound if self.clock is None else min(self.clock, bound)
                self.measured.add(item.run)
                self.journal.append([{"clock": bound} if item.run is None else {"clock": bound, "r": item.run}])

    def wall_time(self) -> float:
        """The wall clock's time when the run started, plus the time gone since: a clock stepped
        during the run (NTP, a user) moves none of the times the batch compares."""
        return round(self.epoch + _awake_or_asleep(), 3)

    def earliest(self, since: float) -> float:
        """The earliest createdAt (the server's clock) of the generation of a create call sent at ``since``."""
        return since + min(0.0, self.clock or 0.0) - CLOCK_SKEW

    def reach(self, item: _Item) -> float:
        """How far back reconciliation reads for item: until the clock is known for it (clock_known), a
        day further, so that a generation there leaves item ambiguous rather than resent."""
        return self.earliest(item.since) - (0.0 if self.clock_known(item) else MAX_CLOCK_OFFSET)

    def clock_known(self, item: _Item) -> bool:
        """Whether the server's clock is known for item's "submitting" time: once a generation sent by the
        same run has shown it (the bound is of that run's clock; the machine's may have been set before or since,
        in another run); never for one an older version sent (no run's id)."""
        return self.clock is not None and item.run is not None and item.run in self.measured

    def counts(self) -> Dict[str, Any]:
        """What BatchProgress and BatchSummary have in common."""
        counts: Dict[str, Any] = {state: len(self.members[state]) for state in ("complete", "failed", "ambiguous")}
        spent = {unit: amount for unit, amount in self.spent.items() if unit and amount > 1e-12}
        return dict(counts, total=len(self.items), images=self.images, credits=spent, done_this_run=self.done_this_run,
                    cost_unknown=self.cost_unknown)

    def emit(self, event: str, item: Optional[_Item], message: str) -> None:
        if self.on_progress is not None:
            in_flight = len(self.members["submitting"]) + len(self.members["submitted"]) - len(self.finished)
            progress = dict(self.counts(), in_flight=in_flight, elapsed=time.monotonic() - self.started)
            try:
                self.on_progress(BatchProgress(event, None if item is None else item.index, message, **progress))
            except (Exception, KeyboardInterrupt) as exc:
                # Once stopping, it is dropped: what is in flight is journaled first (a closed pipe...). Not a
                # KeyboardInterrupt on the main thread: a second Ctrl-C there, which no other thread gets (a host
                # stops a batch run in a thread by raising one from on_progress, which may raise it again).
                main = threading.current_thread() is threading.main_thread()
                if not self.interrupted or isinstance(exc, KeyboardInterrupt) and main:
                    raise
                self.on_progress = None

    def summary(self, interrupted: bool) -> BatchSummary:
        return BatchSummary(
            pending=sum(len(self.members[state]) for state in ("planned", "submitting", "submitted")),
            refused=sum(self.items[index].reason.startswith(REFUSED) for index in self.members["failed"]),
            wall_time=time.monotonic() - self.started,
            images_this_run=self.images_this_run,
            interrupted=interrupted,
            out_dir=self.journal.given,
            offline=self.journal.offline,
            gone=tuple(name for item in self.items for name in item.gone),
            **self.counts(),
        )

    def plan(self, retry_failed: bool, resubmit_ambiguous: bool) -> List[Dict[str, Any]]:
        """The journal's state taken up; returned, the records that plan items anew (every item of a new
        journal, else the failed or ambiguous ones asked for), which run() journals once the account is checked."""
        for record in self.journal.records:  # each item's state, and what the batch has learned
            if "i" in record:  # an item's line: any other key (a hand-edited "clock") is not the batch's note
                self.set_state(self.items[record["i"]], record)
                continue
            if isinstance(record.get("v2_listed"), str):  # an older version's true names no model: it proves nothing
                self.v2_listed.add(record["v2_listed"])
            self.prompts_rewritten = self.prompts_rewritten or bool(record.get("prompts_rewritten"))
            if abs(record.get("clock", math.inf)) <= MAX_CLOCK_OFFSET:  # one beyond (an older version's) is no clock
                self.clock = record["clock"] if self.clock is None else min(self.clock, record["clock"])
                self.measured.add(record.get("r"))  # None: an older version's note, of no run known
        for item in self.items:  # its create call came after its "submitting" (see send), read before run_from was
            item.sent_before = self.run_from  # taken: its time may be ahead, journaled by a clock set back since
            if item.state == "complete":  # its files gone or emptied: said, not linked nor counted; nothing else
                item.gone = [name for name in item.files if _missing(os.path.join(self.out_dir, name))]
                item.files = [name for name in item.files if name not in item.gone]
                self.images -= len(item.gone)
        reopen = (["failed"] if retry_failed else []) + (["ambiguous"] if resubmit_ambiguous else [])
        fresh = sorted(i for state in reopen for i in self.members[state])
        if not self.journal.records:  # a new journal: every item
            fresh = list(range(len(self.items)))
        return [{"i": i, "s": "planned"} for i in fresh]

    def refuse_lost_records(self) -> None:
        """Refuse a journal that lost records (a copy cut short, not a crash's last line): it shows an item as never
        sent whose files are in out_dir, where only a download after its "submitted" record puts them."""
        sent = {record["i"] for record in self.journal.records if "i" in record and record["s"] != "planned"}
        unsent = {number: n for n, number in enumerate(_numbers(len(self.items))) if n not in sent}  # "0004-": n
        with _listing(self.journal.said):
            names = sorted(os.listdir(self.out_dir))
        for name in names:
            index = unsent.get(name[: name.find("-") + 1])
            if index is not None:
                raise BatchInputError([
                    f"{self.journal.said_path} has lost records (a copy cut short, or an older one?): it shows item "
                    f"#{index + 1} as never sent, but {self.journal.said} holds its file {shown(name)}: put the "
                    f"batch's whole journal back to resume ({DAMAGED})"
                ])  # fmt: skip

    def queue_planned(self, records: List[Dict[str, Any]]) -> None:
        """The items planned anew journaled (see plan), then every planned item in line."""
        if records:
            self.journal.append(records)
        for record in records:
            self.set_state(self.items[record["i"]], record)
        self.queue = collections.deque(sorted(self.members["planned"]))

    def run(self, concurrency: Optional[int], retry_failed: bool, resubmit_ambiguous: bool) -> BatchSummary:
        try:  # nothing is sent before the workers start: a Ctrl-C here has nothing in flight to record
            planned = self.plan(retry_failed, resubmit_ambiguous)
            self.refuse_lost_records()
            self.clear_leftovers()  # first: a killed run's partial downloads may be what fills the disk
            slots = self.account(concurrency)  # refused (a 401, another account): nothing journaled, the page kept
            self.queue_planned(planned)
            self.gallery(final=False)
        except KeyboardInterrupt:
            raise BatchInterrupted(self.summary(interrupted=True)) from None
        self.in_flight_limit = _in_flight_limit(slots, given=concurrency is not None)
        # Items whose POST may have run: when to reconcile them (an earlier run's ambiguous ones again).
        rechecked = [i for i in self.members["ambiguous"] if self.items[i].recheck]
        self.reconcile_at: Dict[int, float] = dict.fromkeys([*self.members["submitting"], *rechecked], 0.0)
        # Downloads land here first. Its own per run: a run stopped in this process may still finish one.
        self.staging = os.path.join(self.out_dir, INCOMING, self.run_id)
        self.workers = _worker_count(self.client, slots)  # daemon threads: a second Ctrl-C ends the process at once
        workers = [threading.Thread(target=self.work, daemon=True) for _ in range(self.workers)]
        try:  # the workers are stopped however this ends, Ctrl-C or a callback's error at "start" included
            self.start_workers(workers)
            complete = len(self.members["complete"])
            self.emit("start", None, f"{len(self.items)} items, {slots} slots, {complete} already complete")
            self.loop()
            self.gallery(final=True)
            if self.fatal is not None:
                raise self.fatal
            self.emit("done", None, "done")  # a Ctrl-C in its callback is BatchInterrupted too
            return self.summary(interrupted=False)
        except KeyboardInterrupt:
            raise BatchInterrupted(self.stop()) from None
        except BaseException:  # on_progress raised (or this engine): the create calls under way are journaled first
            self.on_progress = None  # what raised is not called again
            self.stop_sending()
            with contextlib.suppress(Exception):
                self.drain_posts()
            with contextlib.suppress(Exception):
                self.gallery(final=True)  # not left "running", whatever the drain met
            raise
        finally:
            self.stop_workers(len(workers))

    @staticmethod
    def start_workers(workers: List[threading.Thread]) -> None:
        """Start the workers, before the loop gives them a task: one that cannot start has sent nothing."""
        for worker in workers:
            try:
                worker.start()
            except RuntimeError as exc:  # a limit on threads (ulimit -u, a container's pids limit)
                raise LeonardoError.not_sent(f"the batch's threads cannot start (nothing was sent): {exc}") from None

    def stop(self) -> BatchSummary:
        """After a Ctrl-C: nothing more is sent, the answers of the create calls under way are journaled."""
        self.stop_sending()
        self.interrupted = True  # from here on, an on_progress that raises is dropped (see emit)
        self.emit("stopping", None, "stopping: recording what is in flight (Ctrl-C again to quit at once)")
        try:  # a full disk (the journal, the page) does not make the stop an error: a rerun reconciles what it lost
            with contextlib.suppress(LeonardoError):
                self.drain_posts()  # a second Ctrl-C ends this at once...
        finally:
            with contextlib.suppress(Exception):
                self.gallery(final=True)  # ...the page not left saying "running"
        self.journal.check_folder()  # moved, its journal deleted: not a stop to rerun here (sent again)
        return self.summary(interrupted=True)

    def stop_sending(self) -> None:
        with self.send_lock:  # a worker checks it under this lock before it journals a create call
            self.stopping = True

    def stop_workers(self, count: int) -> None:
        """Nothing starts after run_batch ends: calls still queued are dropped, a download under way keeps nothing."""
        self.stop_sending()
        with self.tasks.mutex:
            self.tasks.queue.clear()
        for _ in range(count):
            self.tasks.put(None)

    def work(self) -> None:
        """A worker thread: runs tasks and hands each outcome to the main thread, which decides."""
        for kind, task, done in iter(self.tasks.get, None):
            try:
                self.events.put((kind, done, task(), None))
            except Exception as exc:
                self.events.put((kind, done, None, exc))

    def spawn(self, kind: str, task: Callable[[], Any], done: _Done) -> None:
        """Hand ``task`` to the workers. Create calls and downloads are handed out only while one is free: a create
        call waiting in line behind downloads would go out with those after it, off the pace (start_posts)."""
        self.busy += 1
        self.tasks.put((kind, task, done))

    def loop(self) -> None:
        while True:
            now = time.monotonic()
            if self.client.closed and self.fatal is None:  # by another thread
                self.fatal = LeonardoError("the Client was closed while the batch ran; rerun to resume")
            self.start_work(now)
            if self.busy == 0 and (self.fatal is not None or not self.open_work(now)):
                return
            self.gallery(final=False)
            try:  # one worker's outcome, if one comes before the next wake, acted on
                _, done, result, error = self.events.get(timeout=max(0.01, self.next_wake - now))
            except queue.Empty:
                continue
            self.busy -= 1
            done(result, error)

    def drain_posts(self) -> None:
        """Journal the answers of the create calls under way (a lost one is reconciled on the rerun), read
        off the items: the Ctrl-C may have come as this thread took one's event off the queue."""
        deadline = time.monotonic() + self.create_span + 5.0
        sending = [self.items[i] for i in sorted(self.members["submitting"]) if self.items[i].sending]
        while any(item.answer is None for item in sending) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self.events.get(timeout=0.2)  # wakes as a worker hands an outcome over
        for item in sending:
            if item.answer is not None:
                self.posted(item, *item.answer)

    def account(self, concurrency: Optional[int]) -> int:
        """The slots to fill; GET /me also gives the user id the listing needs."""
        answer = self.client.get_user_info()
        details = _client.user_details(answer)
        user_id = details["user"].get("id")
        self.user_id: Optional[str] = user_id if is_id(user_id) else None
        journaled = [record["user"] for record in self.journal.records if "user" in record and "i" not in record]
        if self.user_id is not None and journaled and id_key(journaled[0]) != id_key(self.user_id):
            # Its generations are not this account's: those in flight would read as deleted, lost ones as never made.
            raise LeonardoError(
                f"this folder's batch ran on another account (user {journaled[0]}; this API key is user "
                f"{self.user_id}'s): rerun it with that account's key, or use another folder"
            )
        if self.user_id is not None and not journaled:
            self.journal.append([{"user": self.user_id}])
        if concurrency is not None:
            return concurrency
        slots = details.get("apiConcurrencySlots")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            said = "no apiConcurrencySlots" if slots is None else f"apiConcurrencySlots {shown(slots)}"
            error = message_from(answer)  # an error in a 200: the API's text
            said += f" ({error})" if error else ""
            raise LeonardoError(f"GET /me gave {said}: give the concurrency explicitly (concurrency=, --concurrency)")
        return min(slots, MAX_CONCURRENCY)

    def running(self, now: float) -> List[_Item]:
        """Submitted, not seen complete, and within item_timeout (one past it is left for a rerun), or
        last seen COMPLETE with no image, or said by the API not to exist (the poll after EMPTY_GRACE, or
        MISSING_GRACE, settles it in this run; twice that bounds it if no answer comes)."""
        items = [self.items[i] for i in self.members["submitted"] if i not in self.finished]
        for item in items:
            item.first_seen = now if item.first_seen is None else item.first_seen
        return [
            item for item in items
            if now - (item.first_seen or now) < self.item_timeout
            or (item.empty_since is not None and now - item.empty_since < 2 * EMPTY_GRACE)
            or (item.missing_since is not None and now - item.missing_since < 2 * MISSING_GRACE)
        ]

    def open_work(self, now: float) -> bool:
        if self.members["planned"] or self.reconcile_at or self.running(now):
            return True
        return any(self.items[i].download_tries < DOWNLOAD_TRIES for i in self.finished) or self.look_again(now)

    def look_again(self, now: float) -> bool:
        """When the batch would be done, the items a listing that raised twice left ambiguous (read_again) are
        reconciled once more, together, as a rerun would (an outage may have passed since), once the pause of
        submissions has ended (a minute at most: a longer one is a Retry-After's, and one listing call sooner can only
        fail); once a run: left ambiguous again, they are the rerun's. No create call is left to send: the
        stop on refusals (see check_refusals) has nothing to watch until one is."""
        unread = [] if self.looked_again else sorted(i for i in self.members["ambiguous"] if self.items[i].read_again)
        self.looked_again = True
        if unread:
            at = max(now, min(self.paused_until, now + MAX_DOUBLED_PAUSE))
            self.next_wake = min(self.next_wake, at)  # the loop still wakes each second: a close() is seen
            self.reconcile_at.update(dict.fromkeys(unread, at))
            self.refused_since = None
            self.emit("waiting", None, f"looking once more for {_count(len(unread), 'item')} left ambiguous: "
                      f"{UNREADABLE}")
        return bool(unread)

    def start_work(self, now: float) -> None:
        """Start what is due (reconciliations, POSTs, downloads, a poll round); set next_wake."""
        self.next_wake = now + 1.0
        self.start_reconciling(now)
        self.watch_refusals(now)
        if self.fatal is not None:
            return
        self.start_posts(now)
        for index, generation in self.finished.items():
            item = self.items[index]
            if item.busy or item.download_tries >= DOWNLOAD_TRIES or self.busy >= self.workers:
                continue
            if now < item.download_at:  # a retry, due then
                self.next_wake = min(self.next_wake, item.download_at)
                continue
            item.busy = True
            self.spawn("download", partial(self.download, item, generation), partial(self.downloaded, item))
        if not self.polling and now >= self.poll_at:
            self.start_poll(now)
        if not self.polling and self.running(now):  # else poll_at may be past: the loop would spin
            self.next_wake = min(self.next_wake, self.poll_at)

    def start_posts(self, now: float) -> None:
        """POST planned items while there is room, at the pace; never two with one prompt unanswered at
        once: the listing cannot always tell their generations apart (a v2 model, a size left out)."""
        if not self.queue or self.busy >= self.workers:  # most of a batch's life; or no worker free (see spawn)
            return
        in_flight = len(self.members["submitting"]) + len(self.running(now))
        # The prompts of items whose create call may have run unanswered: sent, or being reconciled (ambiguous too);
        # and of ambiguous ones whose call may yet make what one sent now would match (each would leave the other
        # ambiguous for good: see reconciled).
        waiting = [self.items[i] for i in (*self.members["submitting"], *self.reconcile_at, *self.being_reconciled)]
        locked = {item.item.prompt for item in waiting}
        # LOCK_MARGIN: the clock bound (see earliest) may be lower by the time the item is reconciled.
        sent_now, ambiguous = self.wall_time() - LOCK_MARGIN, [self.items[i] for i in self.members["ambiguous"]]
        held = {a.item.prompt: a for a in ambiguous if self._may_share(a, a, since=sent_now)}  # (a, as if sent now)
        locked |= set(held)
        skipped = []
        while self.queue and in_flight < self.in_flight_limit and self.posts < MAX_POSTS_AT_ONCE:
            if now < self.post_at:
                self.next_wake = min(self.next_wake, self.post_at)
                break
            item = self.items[self.queue.popleft()]
            if item.item.prompt in locked:
                if item.item.prompt in held and not item.told_held:  # a wait of over a minute: said, once
                    item.told_held = True
                    by = held[item.item.prompt].index + 1
                    self.emit("waiting", item, f"#{item.index + 1} held back while ambiguous #{by}, of its prompt, "
                              "may still be created")
                skipped.append(item.index)
                continue
            self.post_at = max(now, self.post_at) + self.post_gap * self.slowdown
            api, body = item.item.request()
            record = {"i": item.index, "s": "submitting", "t": self.wall_time(), "rt": self.create_span,
                      "r": self.run_id}
            self.set_state(item, record)  # journaled by send(), as the POST goes
            locked.add(item.item.prompt)
            in_flight += 1
            self.posts += 1
            create = self.client.create_generation_v2 if api == "v2" else self.client.create_generation
            self.spawn("post", partial(self.send, item, create, dict(record, request=body)), partial(self.posted, item))
        self.queue.extendleft(reversed(skipped))

    def send(self, item: _Item, create: Callable[[Any], Any], record: Dict[str, Any]) -> Any:
        """A worker's create call, journaled first with the time it is sent and the span it is sent under (the
        client's timeout may be set while the journal syncs): reconciliation counts its span from then. The client
        does not retry it (a retry could reach the server after that span): a 429 or a connection never made comes
        back here, and the item is sent again, journaled again."""
        with self.send_lock:
            if self.stopping or self.client.closed:  # closed by another thread: refused unsent, so not journaled
                raise _Stopped()
            item.sending, item.answer = True, None
        try:
            span = -1.0
            while self.create_span > span:  # again if the client's timeout was raised while the journal synced
                span = self.create_span
                record["t"], record["rt"] = item.since, item.span = self.wall_time(), span
                try:
                    self.journal.append([record])
                except LeonardoError as exc:
                    raise _NotJournaled(exc.message) from exc
            with posts_not_retried():
                item.answer = (create(record["request"]), None)
        except Exception as exc:
            item.answer = (None, exc)
            raise
        return item.answer[0]

    def posted(self, item: _Item, response: Any, error: Optional[BaseException]) -> None:
        self.posts -= 1
        item.sending = False
        now = time.monotonic()
        status = getattr(error, "status_code", None)
        if error is None:
            self.accepted(item, response, now)
        elif isinstance(error, _Stopped):
            self.set_state(item, {"i": item.index, "s": "planned"})  # as the journal still has it
        elif isinstance(error, _NotJournaled):
            self.fatal = error  # nothing is sent that the journal does not hold
        elif status == 429:
            if self.paced_since_429:  # else a probe after its pause, refused as the calls before it: no faster pace
                self.slowdown = min(4.0, self.slowdown * 1.25)
            self.paced_since_429, self.last_429 = False, self.wall_time()
            self.record(item, "planned", reason=f"429, sent again later: {error}")
            wait = self.back_off(min(MAX_PAUSE, getattr(error, "retry_after", None) or 0.0), now, "rate limited: 429")
            self.emit("waiting", item, f"rate limited: pausing submissions {wait:.1f}s")
            self.check_refusals(error, now)
        elif _key_refused(error, create=True):
            self.record(item, "planned", reason=str(error))
            self.fatal = error
        elif status is not None and 400 <= status < 500 or not isinstance(error, LeonardoError):
            self.fail(item, f"{REFUSED}{error}", str(error))
        elif never_sent(error):
            self.record(item, "planned", reason=f"not sent, sent again later: {error}")
            self.back_off(0.0, now, "a create call could not be sent")
            self.emit("waiting", item, f"#{item.index + 1} not sent ({error}); trying again")
            self.check_refusals(error, now)
        else:  # a 5xx, read timeout or dropped connection: the POST may have run
            self.reconcile_later(item, error, now, "a create call failed and may have run")

    def reconcile_later(self, item: _Item, error: BaseException, now: float, why: str) -> None:
        """Reconcile ``item`` now, and pause submissions (``why``), as after a failure: the next create calls may
        well be answered so too, and each sent in an outage would be one more item left ambiguous."""
        self.reconcile_at[item.index] = now
        self.back_off(0.0, now, why)
        said = str(error).replace(f"; {MAY_HAVE_BEEN_MADE}", "")  # the client's advice to look for it: done here
        self.emit("waiting", item, f"#{item.index + 1}: {said}; reconciling with the account's generations; "
                  f"pausing submissions {self.paused_until - now:.1f}s")

    def check_refusals(self, error: object, now: float) -> None:
        """Stop the batch (a rerun resumes) when for item_timeout every create call was refused, not sent
        or never created, or waited on a listing that raised, and no item moved on (see record, leave_ambiguous)."""
        self.refused_since = now if self.refused_since is None else self.refused_since
        self.last_refusal = error
        since = now - self.refused_since
        if since >= self.item_timeout and self.fatal is None:
            # This run's time: a rerun counts again from its own first refusal, not from the run before's.
            message = f"in this run, for {since:.0f}s no create call went through (the last: {error}); rerun to resume"
            self.fatal = LeonardoError(message)

    def watch_refusals(self, now: float) -> None:
        """check_refusals runs as a create call comes back, and none is sent while a pause holds them back: when
        item_timeout runs out before the pause does, the loop wakes for it (the answer of one under way decides)."""
        if self.refused_since is None or self.posts or not (self.queue or self.reconcile_at):
            return
        deadline = self.refused_since + self.item_timeout
        if deadline >= self.paused_until:  # the pause ends first: as before, the next refusal (or progress) decides
            return
        if now >= deadline:
            self.check_refusals(self.last_refusal, now)
        else:
            self.next_wake = min(self.next_wake, deadline)

    def back_off(self, said: float, now: float, why: str, listing: bool = False) -> float:
        """Send nothing for the seconds a Retry-After ``said``, or else for the batch's own pause, which ends by the
        stop on refusals' deadline while its clock runs and it watches the pause (a create call to send or an item to
        reconcile: see watch_refusals), so that a create call's answer decides; return the wait (the gallery says until
        when, and ``why``, if this pause ends last). The next own pause is twice as long: after a create call's answer,
        only if no pause holds (the others under way as it began, up to MAX_POSTS_AT_ONCE, are one blip); after a
        ``listing`` read, always."""
        wait = said or self.pause
        if not said and self.refused_since is not None and (self.members["planned"] or self.reconcile_at):
            left = self.refused_since + self.item_timeout - now
            if left > 0:  # past the deadline, the stop comes at once (watch_refusals): no more create calls first
                wait = min(wait, left)
        if now >= self.paused_until or listing:
            self.pause = min(MAX_DOUBLED_PAUSE, self.pause * 2)
        if now + wait >= self.paused_until:
            self.paused_why = why
        self.paused_until = max(self.paused_until, now + wait)  # the pause's own end; the pace's next slot is apart
        self.post_at = max(self.post_at, now + wait)
        return wait

    def accepted(self, item: _Item, response: Any, now: float) -> None:
        try:
            job, id_field = _client.create_job(response)
        except LeonardoError as exc:  # a 2xx without an id (a null job, an error in a 200): the listing tells
            self.reconcile_later(item, exc, now, "a create call was answered without a generation")
            return
        self.slowdown = max(1.0, self.slowdown * 0.98)
        self.went_through(item)
        generation_id = str(job[id_field])
        owner = self.by_generation.get(id_key(generation_id))
        if owner is not None:  # its images would be the other item's: the listing cannot tell more
            reason = f"the API answered the generation id of item #{owner + 1}: {generation_id}"
            self.leave_ambiguous(item, reason, recheck=False)
            return
        self.record(item, "submitted", id=generation_id, cost=_cost(job), t=self.wall_time())
        item.check_at = now + FIRST_POLL
        item.first_seen = now
        self.emit("submitted", item, f"#{item.index + 1} submitted: {generation_id}")

    def start_reconciling(self, now: float) -> None:
        if not self.reconcile_at or self.being_reconciled:  # one at a time: its answer wakes the loop
            return
        self.next_wake = min(self.next_wake, min(self.reconcile_at.values()))
        due = [self.items[i] for i, at in self.reconcile_at.items() if at <= now]
        if not due:
            return
        for item in due:
            del self.reconcile_at[item.index]
        self.being_reconciled = [item.index for item in due]
        reaches = {item.index: self.reach(item) for item in due}  # a reach grown by the end: see reconciled
        listing = partial(_list_since, self.client, self.user_id, min(reaches.values()))
        # The time first: a generation made later may sit on a page read before it came, so only one made
        # before the first page was asked for is surely in the listing.
        self.spawn("reconcile", lambda: (self.wall_time(), *listing()), partial(self.reconciled, reaches))

    def reconciled(self, reaches: Dict[int, float], result: Any, error: Optional[BaseException]) -> None:
        """Per item (see in_turn): adopt its one match, wait, send it again, or leave it ambiguous."""
        self.being_reconciled, oldest = [], min(reaches.values())
        read_at, listed, complete = result if error is None else (0.0, [], error)  # complete: True, or why not
        due, put_off = self.settle_now([self.items[i] for i in reaches], complete), []  # type: List[_Item], List[_Item]
        self.learn_from(listed, listing=True)
        for item in self.in_turn(due, listed, put_off):
            found, sure = self.candidates(item, listed)
            if found and self.owned_elsewhere(item, put_off):  # only at a second look: see in_turn
                reason = "an ambiguous item with this prompt may own the generation that matches"
            elif len(found) == 1 and sure:
                self.adopt(item, found[0])
                continue
            elif found:
                what = f"{len(found)} generations match" if sure else "some generations could not be compared"
                reason = f"{what}: " + ", ".join(str(g["id"]) for g in found)
            elif isinstance(complete, str) and self.reach(item) > reaches[item.index]:  # the clock learned meanwhile:
                self.reconcile_at[item.index] = time.monotonic()  # the day read back for it used up the pages
                continue
            elif complete is not True:
                reason = f"{UNREADABLE}: {complete}"
            elif self.reach(item) < oldest:  # the clock just learned: it may have been made before that
                self.reconcile_at[item.index] = time.monotonic()
                continue
            elif item.since > read_at + CLOCK_SKEW:
                reason = "it was sent later than now: the clock was set back since"
            elif read_at - item.sent_by <= self.window(item) + LOOK_AGAIN:  # may still run, or not be listed yet
                self.look_again_later(item)
                continue
            elif self.rewrites(item):  # its generation may be listed, under another prompt
                reason = REWRITTEN
            elif item.item.model is not None and item.item.model not in self.v2_listed:  # its silence: no proof yet
                self.look_again_for_v2(item, put_off)  # or left ambiguous
                continue
            elif not self.clock_known(item) and self.candidates(item, listed, self.reach(item))[0]:
                reason = "one of its prompt was made up to a day before: our clock may be ahead (not known yet)"
            else:
                self.resend(item)
                continue
            self.leave_ambiguous(item, reason, recheck=True, stalled=isinstance(complete, LeonardoError))

    def in_turn(self, due: List[_Item], listed: List[Dict[str, Any]], put_off: List[_Item]) -> Iterator[_Item]:
        """``due``'s items in order, each as the one before is judged; but one whose match an ambiguous item of its
        prompt may own (owned_elsewhere) is put off, into ``put_off``, and comes once more after the rest. Meanwhile
        it counts as ambiguous (it would have been left so), and then it is judged as a rerun would judge it: a
        sibling that adopted a match meanwhile is ambiguous no more, and that generation is claimed."""
        for item in due:
            if self.owned_elsewhere(item, put_off) and self.candidates(item, listed)[0]:
                put_off.append(item)
            else:
                yield item
        while put_off:
            yield put_off.pop(0)

    def look_again_later(self, item: _Item) -> None:
        """Reconcile ``item`` again once its create call cannot still be running, and the listing shows what it made
        (LOOK_AGAIN); until then it holds its slot and its prompt, up to minutes: said, once for this hold."""
        wait = max(LOOK_AGAIN, item.sent_by + self.window(item) + LOOK_AGAIN - self.wall_time()) + PAST_BOUND
        self.reconcile_at[item.index] = time.monotonic() + wait
        self.emit("waiting", item, f"#{item.index + 1}: its create call may still be running at the server: looking "
                  f"for its generation again in {wait:.1f}s (its slot held till then)")

    def settle_now(self, due: List[_Item], complete: Any) -> List[_Item]:
        """The items to settle now: none (an empty list, not None) when the key was refused or the Client closed
        (the batch stops; a rerun reconciles them). Of a listing call that raised (a LeonardoError), those it was
        read once more for already: the others are, after LISTING_AGAIN s or its Retry-After (a passing 503 would
        leave them ambiguous, and their prompts held back); it pauses submissions: in an outage, each create call
        sent would be one more item left ambiguous. One read but incomplete (a str: why) settles all of them now."""
        if _key_refused(complete):
            self.fatal = complete
            return []
        if complete is not True and self.client.closed:  # the loop stops the batch
            return []
        if not isinstance(complete, LeonardoError):
            for item in due:  # read: a later failure is read once more too
                item.read_again = False
            return due
        said = min(MAX_PAUSE, complete.retry_after or 0.0)  # a 429's (or 503's) Retry-After: read again no sooner
        settle = [item for item in due if item.read_again]
        for item in due:
            if not item.read_again:
                item.read_again = True
                self.reconcile_at[item.index] = time.monotonic() + max(LISTING_AGAIN, said)
        wait = self.back_off(said, time.monotonic(), UNREADABLE, listing=True)
        self.check_refusals(complete, time.monotonic())  # nothing goes through while it pauses them: see watch_refusals
        self.emit("waiting", due[0], f"{UNREADABLE}: pausing submissions {wait:.1f}s")
        return settle

    def leave_ambiguous(self, item: _Item, reason: str, recheck: bool, stalled: bool = False) -> None:
        """Left to the user; ``recheck``: a rerun reconciles it again (the same verdict is not journaled again);
        ``stalled``: because the API failed to answer, so the batch did not move on (see check_refusals)."""
        since = self.refused_since
        if item.state != "ambiguous":  # settled in this run, as complete and failed ones are
            self.settled(item)
        if (item.state, item.reason) != ("ambiguous", reason):
            self.record(item, "ambiguous", reason=reason, recheck=recheck or None)
        self.emit("ambiguous", item, f"#{item.index + 1} ambiguous: {reason}")
        if stalled:
            self.refused_since = since
            self.check_refusals(reason, time.monotonic())

    def look_again_for_v2(self, item: _Item, put_off: List[_Item]) -> None:
        """Reconcile ``item`` again later if the listing may yet be seen to hold its v2 model's generations (not
        documented: until one of ours of that model is seen in it, its silence proves nothing): another item of its
        model is to be sent, being sent or in flight; else leave it ambiguous. One to be sent only if a slot is left
        it: the v2 items waiting so hold theirs (with concurrency 1, this one would hold the only one for ever); one
        still looked for does not, as it may yet be found, which shows the listing holds its model, or be settled.
        One ``put_off`` is ambiguous here."""
        sending = [i for i in self.members["submitting"] if self.items[i].sending]
        submitting = self.members["submitting"] - {i.index for i in put_off}  # see in_turn
        waiting = [i for i in (*submitting, *self.reconcile_at, item.index) if i not in sending]
        blocked = {self.items[i].item.prompt for i in waiting}  # by an item that waits too: never sent meanwhile
        holding = submitting & {*self.v2_waiting, item.index}
        planned = [i for i in self.members["planned"] if self.items[i].item.prompt not in blocked]
        planned = planned if len(holding) < self.in_flight_limit else []
        running = [i.index for i in self.running(time.monotonic())]
        if not any(self.items[i].item.model == item.item.model for i in (*planned, *sending, *running)):
            self.leave_ambiguous(item, "no v2 generation seen of its model in the account's listing yet", recheck=True)
            return
        self.reconcile_at[item.index] = time.monotonic() + V2_WAIT
        self.v2_waiting.add(item.index)
        self.v2_wanted = True  # polls read the listing, even for one generation: it may show one

    def rewrites(self, item: _Item) -> bool:
        """Whether the listing may show ``item``'s prompt other than as sent (not documented either way), so that no
        match proves nothing: it may be enhanced (see _enhanced), or trimmed or normalized (spaces at either end, a
        carriage return, not NFC), or one of ours that none predicted was seen so (see learn_from)."""
        prompt = item.item.prompt
        normal = prompt == prompt.strip() and "\r" not in prompt and unicodedata.is_normalized("NFC", prompt)
        return self.prompts_rewritten or _enhanced(item.item) or not normal

    def resend(self, item: _Item) -> None:
        """Its create call was never acted on: back in line; a refusal (see check_refusals) only if it was sent after
        the latest create call that went through: of one sent before, the verdict says nothing of the API now."""
        self.record(item, "planned", reason="never created (not in the account's generations); sent again")
        self.emit("resent", item, f"#{item.index + 1}: was never created; sending it again")
        if item.since > self.made_since:
            self.check_refusals(f"#{item.index + 1} failed and was never created", time.monotonic())

    def went_through(self, item: _Item) -> None:
        """``item``'s create call was made (answered, or adopted: its answer may not be, a gateway's 504): the next
        pause is the first again; if it was sent after the last 429, the pace works again (see posted); one sent
        before it, answered slowly, says nothing of the calls the 429s refused since."""
        sent = min(item.since, self.wall_time())  # an earlier run's call, adopted, may be on a clock ahead of ours
        self.pause, self.made_since = DEFAULT_PAUSE, max(self.made_since, sent)  # see resend
        self.paced_since_429 = self.paced_since_429 or sent > self.last_429

    def adopt(self, item: _Item, generation: Mapping[str, Any]) -> None:
        self.went_through(item)
        self.record(item, "submitted", id=str(generation["id"]), adopted=True)  # no "t": see learn_from
        item.check_at = time.monotonic()
        self.emit("adopted", item, f"#{item.index + 1}: found its generation {item.generation_id}; not sent again")

    def candidates(
        self, item: _Item, listed: List[Dict[str, Any]], after: Optional[float] = None
    ) -> Tuple[List[Dict[str, Any]], bool]:
        """The generations no other item claims that are, or may be, ``item``'s (made after ``after``,
        else its earliest time); and whether each one surely is."""
        unclaimed = [g for g in listed if id_key(g.get("id")) not in self.by_generation]
        after = self.earliest(item.since) if after is None else after
        verdicts = [(g, _matches(item.item, g, after)) for g in unclaimed]
        return [g for g, verdict in verdicts if verdict is not False], None not in (v for _, v in verdicts)

    def _may_share(self, ambiguous: _Item, item: _Item, since: Optional[float] = None) -> bool:
        """Whether a generation ``ambiguous`` may have made could match ``item``'s, sent at ``since`` (else
        when it was): same prompt, and made after the time ``item`` matches from (``ambiguous``'s POST ran
        at most its window)."""
        after = self.earliest(item.since if since is None else since)
        same = ambiguous.item.prompt == item.item.prompt and not ambiguous.known  # one it is known to have made: no
        return same and ambiguous.sent_by + self.window(ambiguous) >= after

    def owned_elsewhere(self, item: _Item, put_off: List[_Item]) -> bool:
        """Whether an ambiguous item of ``item``'s prompt may own a generation that matches it, one put off and
        not judged yet (see in_turn) counted as one."""
        others = self.members["ambiguous"].union(i.index for i in put_off) - {item.index}
        return any(self._may_share(self.items[i], item) for i in others)

    def start_poll(self, now: float) -> None:
        """One round: the listing for all in flight, a GET by id for those due and not listed."""
        watched = self.running(now)
        if not watched:
            return
        self.polling = True
        use_listing = self.user_id is not None and (len(watched) >= 2 or self.v2_wanted)
        by_id = []
        for item in watched:
            if item.check_at <= now or not use_listing:
                by_id.append(str(item.generation_id))
                item.check_at = now + item.check_gap
                item.check_gap = min(_client.MAX_POLL_INTERVAL, item.check_gap * _client.POLL_BACKOFF)
        ids = [str(i.generation_id) for i in watched]
        self.spawn("poll", partial(self.poll, ids, by_id, use_listing), self.polled)
        self.poll_at = now + self.poll_gap

    def poll(
        self, ids: List[str], by_id: List[str], use_listing: bool
    ) -> Tuple[Dict[str, Dict[str, Any]], Optional[LeonardoError]]:
        """(The generations read, the 429 that ended the round early or None): no more calls once the
        account's rate limit, shared with its other programs, is spent (see hold_polls)."""
        found: Dict[str, Dict[str, Any]] = {}  # by the id as the batch holds it
        if use_listing:
            read, limited = self.poll_listing(ids, found)
            if limited is not None:
                return found, limited
            # Unread: a GET for each this round instead, once; not every round (a large batch would spend the
            # account's requests a minute). Rounds never overlap: the next one reads listing_read.
            by_id = by_id if read or not self.listing_read else ids
            self.listing_read = read
        for generation_id in by_id:
            if generation_id in found and not self.shortfall(generation_id, found[generation_id]):  # else it may lag
                continue
            try:
                answer = self.client.get_generation_by_id(generation_id)
            except LeonardoError as exc:
                if _key_refused(exc):
                    raise
                if exc.status_code == 429:
                    return found, exc
                continue  # a transient failure: the next round tries again
            generation = answer.get("generations_by_pk", ())
            if generation is None:  # the API says there is none (a listing that shows it says more)
                found.setdefault(generation_id, {"status": "MISSING"})
            elif isinstance(generation, dict) and id_key(generation.get("id", generation_id)) == id_key(generation_id):
                found[generation_id] = _slim(generation, found.get(generation_id))  # kept: listed=True
            # else an answer of another shape, or about another generation: asked again next round
        return found, None

    def poll_listing(self, ids: List[str], found: Dict[str, Dict[str, Any]]) -> Tuple[bool, Optional[LeonardoError]]:
        """One page of the account's listing into ``found``: (whether it was read, the 429 that refused it)."""
        wanted = {id_key(generation_id): generation_id for generation_id in ids}
        listed = _listing_page(self.client, str(self.user_id), offset=0, limit=min(100, max(10, 2 * len(ids))))
        if isinstance(listed, LeonardoError) and _key_refused(listed):
            raise listed
        if not isinstance(listed, list):  # not read: a 429 ends the round (not a GET for each one instead)
            return False, listed if isinstance(listed, LeonardoError) and listed.status_code == 429 else None
        for generation in listed:
            if isinstance(generation, dict) and id_key(generation.get("id")) in wanted:
                found[wanted[id_key(generation["id"])]] = dict(_slim(generation), listed=True)
        return True, None

    def polled(self, result: Any, error: Optional[BaseException]) -> None:
        self.polling = False
        if error is not None:  # a refused key ends the batch; anything else, the next round asks again
            if _key_refused(error):
                self.fatal = error
            return
        found, rate_limited = result
        self.hold_polls(rate_limited)
        self.learn_from(found.values(), listing=False)
        for generation_id, generation in found.items():
            item = self.items[self.by_generation[id_key(generation_id)]]
            status = generation.get("status")
            if item.state != "submitted" or item.index in self.finished:
                continue
            if status != "MISSING":
                item.missing_since = None
            if status == "COMPLETE":
                self.seen_complete(item, generation_id, generation)
                continue
            item.empty_since = None  # (gone back from COMPLETE: item_timeout bounds it again)
            if status == "FAILED":
                reason = "the generation FAILED (Leonardo refunds it)"
                self.fail(item, reason, reason)
            elif status == "MISSING":  # taken for deleted (the web app?) after MISSING_GRACE: paid for, not "failed"
                item.missing_since = time.monotonic() if item.missing_since is None else item.missing_since
                if time.monotonic() - item.missing_since >= MISSING_GRACE:
                    self.leave_ambiguous(item, f"generation {generation_id} no longer exists: deleted?", recheck=False)
        if self.job_times:  # a sixth of the typical job time seen
            typical = sorted(self.job_times)[len(self.job_times) // 2]
            self.poll_gap = min(MAX_POLL, max(MIN_POLL, typical / 6))
        else:
            self.poll_gap = min(MAX_POLL, self.poll_gap * POLL_GROWTH)

    def hold_polls(self, rate_limited: Optional[LeonardoError]) -> None:
        """After a round a 429 ended, the next waits for its Retry-After, else for a pause that doubles
        (each at most MAX_POLL_PAUSE); a round without one sets that pause back."""
        if rate_limited is None:
            self.poll_pause = DEFAULT_PAUSE
            return
        wait = min(MAX_POLL_PAUSE, rate_limited.retry_after or self.poll_pause)
        self.poll_pause = min(MAX_POLL_PAUSE, self.poll_pause * 2)
        self.poll_at = max(self.poll_at, time.monotonic() + wait)
        self.emit("waiting", None, f"rate limited while polling: next poll in {wait:.1f}s")

    def shortfall(self, generation_id: str, generation: Mapping[str, Any]) -> str:
        """What a COMPLETE generation of ours (slimmed) lacks, "" if nothing: any image to download, a URL for some
        it lists, or the images its item asked (if known). Not COMPLETE, or not filled in yet: the API may lag."""
        if generation.get("status") != "COMPLETE":
            return ""
        usable, without_url = len(generation.get("generated_images") or ()), generation.get("without_url") or 0
        if not usable:
            return "is COMPLETE with no image"
        asked = _images_asked(self.items[self.by_generation[id_key(generation_id)]].item)  # from its body: only now
        lacks = [f"only {usable} of the {asked} images asked"] if asked is not None and usable < asked else []
        lacks += [f"{without_url} image(s) without a URL"] if without_url else []
        return "is COMPLETE with " + ", ".join(lacks) if lacks else ""

    def seen_complete(self, item: _Item, generation_id: str, generation: Dict[str, Any]) -> None:
        """Its files downloaded next; short of images (none to download, fewer than asked, some without a URL),
        asked again for EMPTY_GRACE (they may come after), then saved as they are, that said with them. Paid for,
        not refunded, so ambiguous (not failed) when none came or save_results would refuse them (an ftp url...:
        no retry helps)."""
        try:
            files, problem = _files.result_files(generation), ""
        except LeonardoError as unusable:
            files, problem = [], f"cannot be saved: {unusable.message}"
        short = "" if problem else self.shortfall(generation_id, generation)
        if short:
            item.empty_since = time.monotonic() if item.empty_since is None else item.empty_since
            if time.monotonic() - item.empty_since < EMPTY_GRACE:
                return
        if files:
            said = f"generation {generation_id} {short}: saved as it is (look in your library)"
            item.shortfall = said if short else ""
            self.finished[item.index] = generation
            self.job_times.append((item.empty_since or time.monotonic()) - (item.first_seen or self.started))
            return
        reason = f"generation {generation_id} {problem or short} (paid for: look in your library)"
        self.leave_ambiguous(item, reason, recheck=False)

    def download(self, item: _Item, generation: Dict[str, Any]) -> Tuple[List[str], Any]:
        staging = os.path.join(self.staging, str(item.index))
        self.journal.check_folder()  # before save_results makes the staging folder: it would re-create out_dir
        shutil.rmtree(staging, ignore_errors=True)
        paths = self.client.save_results(generation, staging)
        if self.stopping:
            self.clear_staging()
            raise _Stopped()
        self.journal.check_folder()  # moved while it downloaded: the files went with it, to be fetched again
        names = []
        for number, path in enumerate(paths, 1):
            name = self.stems[item.index] + ("" if len(paths) == 1 else f"-{number}") + os.path.splitext(path)[1]
            os.replace(path, os.path.join(self.out_dir, name))
            names.append(name)
        _sync_folder(self.out_dir)  # their names, before the journal says "complete" (save_results synced the bytes)
        shutil.rmtree(staging, ignore_errors=True)
        return names, _listed_number(generation.get("seed"))  # journaled: a number JSON can carry, or nothing

    def downloaded(self, item: _Item, result: Any, error: Optional[BaseException]) -> None:
        item.busy = False
        if isinstance(error, _FolderMoved):
            self.fatal = error
            return
        if error is not None:
            item.download_tries += 1
            item.download_at = time.monotonic() + DOWNLOAD_AGAIN * item.download_tries
            # (the client's LeonardoError says "download failed" itself)
            said = error if isinstance(error, LeonardoError) else f"download failed ({error_text(error)})"
            again = "will try again" if item.download_tries < DOWNLOAD_TRIES else "a rerun tries again"
            item.reason, self.gallery_stale = f"{said}; {again}", True  # on its card (not journaled)
            self.emit("waiting", item, f"#{item.index + 1}: {item.reason}")
            return
        files, seed = result
        self.record(item, "complete", files=files, seed=seed, reason=item.shortfall or None)
        self.finished.pop(item.index, None)
        self.settled(item)
        self.images_this_run += len(files)
        short = f" ({item.shortfall})" if item.shortfall else ""
        self.emit("complete", item, f"#{item.index + 1} complete: {', '.join(files)}{short}")

    def clear_leftovers(self) -> None:
        """What a run killed in this folder left: the downloads it had under way, a gallery half written."""
        self.journal.check_folder()  # not another's, put in its place since the journal was opened
        shutil.rmtree(os.path.join(self.out_dir, INCOMING), ignore_errors=True)
        _files.remove_temporaries(os.path.join(self.out_dir, GALLERY))
        with _listing(self.journal.said):
            names = os.listdir(self.out_dir)
        for name in names:  # older versions' pages half written: index.html.<pid>.part, then index.html.part
            if re.fullmatch(re.escape(GALLERY) + r"(\.[0-9]+)?\.part", name):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(self.out_dir, name))

    def clear_staging(self) -> None:
        """What this run was downloading is not kept (the run ends, or ended: a rerun downloads it again)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(self.out_dir, INCOMING))  # unless another run in this process uses it

    def gallery(self, final: bool) -> None:
        """Rewrite index.html: at the end; else at most every gallery_every seconds, when an item changed or a pause
        of submissions began or ended, and at least every GALLERY_HEARTBEAT (its time shows the batch alive)."""
        now = time.monotonic()
        pause = self.paused_until if not final and now < self.paused_until else 0.0
        changed = self.gallery_stale or pause != self.gallery_pause
        since = now - self.gallery_at
        if not final and (since < self.gallery_every or not changed and since < GALLERY_HEARTBEAT):
            return
        self.gallery_at, self.gallery_stale, self.gallery_pause = now, False, pause
        self.journal.check_folder()
        if final:
            self.clear_staging()
        paused = f"submissions paused until {_local_time(time.time() + pause - now)} ({self.paused_why})"
        summary = self.summary(interrupted=False)
        write_gallery(self.out_dir, self.items, summary, final, paused if pause else "", self.journal.offline)
        # A page of 100,000 items takes about a second: the scheduler spends at most a tenth of its time on it.
        self.gallery_every = max(GALLERY_EVERY, 10 * (time.monotonic() - now))


def _list_since(client: "_client.Client", user_id: Optional[str], oldest: float) -> Tuple[List[Dict[str, Any]], Any]:
    """(The account's generations read, True when every one created after ``oldest`` was), or (those
    read, why not all). A listing that moved past a page's overlap while read is read from the top again."""
    if user_id is None:
        return [], "GET /me gave no user id"
    seen: Dict[str, Dict[str, Any]] = {}
    for _ in range(LISTING_RESTARTS + 1):
        complete = _list_pass(client, user_id, oldest, seen)
        if complete is not None:
            return list(seen.values()), complete
    return list(seen.values()), "the listing kept moving while it was read (generations deleted?)"


def _list_pass(client: "_client.Client", user_id: str, oldest: float, seen: Dict[str, Dict[str, Any]]) -> Any:
    """One read of the listing from its top into ``seen``: True when all made since ``oldest`` was read, or why
    not; None when it moved up past a page's overlap meanwhile (deletions, a lagging replica), so that what slid
    between two pages went unread (growth only shows entries read before again).

    All is read at the listing's end (an empty page: a short one may be the server's cap on a page), or at
    a whole page older than ``oldest`` if everything read so far came newest first (the order is not
    documented: otherwise the paging goes on). An answer or an entry of another shape (no list, not an
    object, no usable id) is not all read.
    """
    unread, newest_first, decreasing, last = 0, True, False, math.inf  # the order, judged on dated entries
    offset, tail, read, previous = 0, set(), set(), []  # type: Tuple[int, Set[str], Set[str], List[Any]]
    for _ in range(LISTING_MAX_PAGES):
        entries = _listing_page(client, user_id, offset=offset, limit=LISTING_PAGE)
        if not isinstance(entries, list):
            return entries
        listed = _listed_ids(entries)
        if tail and not listed & read:  # (a tail of entries without ids proves nothing)
            return None
        read |= listed  # (in this pass)
        again = _read_again(previous, entries)  # an entry without an id among them was counted on the last page
        fresh = [(n, g) for n, g in enumerate(entries) if not _listed_ids([g]) & seen.keys()]
        times = [_timestamp(g.get("createdAt")) if isinstance(g, dict) else None for _, g in fresh]
        for (n, entry), created in zip(fresh, times):
            if isinstance(entry, dict) and is_id(entry.get("id")):  # an older one too: ours show the server's clock
                seen[id_key(entry["id"])] = entry
            elif n >= again and (created is None or created >= oldest):
                unread += 1
            if created is not None:
                newest_first, decreasing = newest_first and created <= last, decreasing or created < last < math.inf
                last = created
        all_older = bool(times) and all(t is not None and t < oldest for t in times)  # none new: the listing moved
        if not entries or (newest_first and decreasing and all_older):
            return True if not unread else f"{unread} of its entries could not be read"
        overlap = min(LISTING_OVERLAP, len(entries) // 2)  # the next page starts that many before this one's end
        offset, tail = offset + len(entries) - overlap, _listed_ids(entries[len(entries) - overlap :])
        previous = entries
    return f"more than {offset} generations since then"


def _read_again(previous: List[Any], entries: List[Any]) -> int:
    """How many of a page's first entries the page before ended with: the longest end of that page this one
    starts with (as the listing has grown or shrunk since). Any doubt counts them again: counted low, an entry
    not read could pass for none, and an item whose create call may have run be sent again."""
    ours, theirs = [_entry_mark(g) for g in entries], [_entry_mark(g) for g in previous]
    asked = min(LISTING_OVERLAP, len(previous) // 2)  # more only as an id shows it (entries alike are not one)
    for k in range(min(len(ours), len(theirs)), 0, -1):
        if ours[:k] == theirs[len(theirs) - k :] and (k <= asked or any(mark[0] == "id" for mark in ours[:k])):
            return k
    return 0


def _entry_mark(entry: Any) -> Any:
    """What tells a listed entry from another: its id if usable, else all it shows."""
    return ("id", id_key(entry["id"])) if isinstance(entry, dict) and is_id(entry.get("id")) else ("entry", entry)


def _listing_page(
    client: "_client.Client", user_id: str, *, offset: int, limit: int
) -> Union[List[Any], LeonardoError, str]:
    """A page of the account's generations (reconciliation's, or a poll round's), or why it could not be read."""
    try:
        page = client.get_generations_by_user_id(user_id, limit=limit, offset=offset)
    except LeonardoError as exc:
        return exc
    entries = page.get("generations")
    return entries if isinstance(entries, list) else "the listing answered no list of generations"


def _listed_ids(entries: List[Any]) -> Set[str]:
    return {id_key(g["id"]) for g in entries if isinstance(g, dict) and is_id(g.get("id"))}


def _matches(item: BatchItem, generation: Mapping[str, Any], after: float) -> Optional[bool]:
    """Whether ``generation`` is the one ``item`` made; None when it cannot tell (a prompt, time or
    number not shown or in a form not understood, a size or seed other than asked: its silence, an
    upscaled size or a seed drawn for -1, ignored by the model or rounded must not send the item again)."""
    prompt, model_id = generation.get("prompt"), generation.get("modelId")
    if isinstance(prompt, str) and prompt != item.prompt:  # first: reading the time is what costs (strptime)
        return False
    created = _timestamp(generation.get("createdAt"))
    if created is not None and created < after:
        return False
    if item.model_id is not None and isinstance(model_id, str) and model_id.lower() != item.model_id.lower():
        return False  # a uuid, in any case; a v2 model's name does not appear in the listing: prompt and size decide
    sure = created is not None and isinstance(prompt, str)
    for key, value in (("imageWidth", item.width), ("imageHeight", item.height), ("seed", item.seed)):
        if value is None or generation.get(key) is None:
            continue  # the item leaves it to the API, or the listing does not show it
        sure = sure and _listed_number(generation[key]) == value
    return True if sure else None


def _listed_number(value: Any) -> Union[int, float, None]:
    """A number the listing wrote as one, or as digits (a bigint seed may come as "905778432"); else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,30}\s*", value):
        return int(value)
    return value if isinstance(value, float) and math.isfinite(value) else None


_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?$")


def _timestamp(text: Any) -> Optional[float]:
    """Epoch seconds of an ISO 8601 time as the API writes it (no zone means UTC); None if not one."""
    match = _TIMESTAMP.match(str(text or "").strip())
    if not match:
        return None
    date, clock, fraction, zone = match.groups()
    zone = "+0000" if zone in (None, "Z") else zone.replace(":", "")
    try:
        moment = datetime.strptime(f"{date} {clock} {zone}", "%Y-%m-%d %H:%M:%S %z")
    except ValueError:  # the form, but no real time: 2024-02-30, 25:00:00, +99:00
        return None
    return moment.timestamp() + float(fraction or 0)


def _cost(job: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """What a created job costs: its ``cost{amount,unit}``, else its ``apiCreditCost`` (credits)."""
    cost = job.get("cost")
    if isinstance(cost, Mapping) and cost.get("amount") is not None:
        return {"amount": str(cost["amount"]), "unit": str(cost.get("unit") or "CREDITS")}
    if job.get("apiCreditCost") is not None:
        return {"amount": str(job["apiCreditCost"]), "unit": "CREDITS"}
    return None


def _slim(generation: Mapping[str, Any], under: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """What the engine keeps of a polled generation (memory stays flat on long batches): its images with a file to
    download, and how many it lists without one; merged over ``under`` (the listing's entry for a GET by id's
    answer), else over no images. A key it does not give, or no image list, keeps what is under it (an answer
    without a status says nothing of its status)."""
    kept = dict(under or {"generated_images": [], "without_url": 0})
    shown = ("id", "status", "seed", "createdAt", "prompt")  # the prompt: see learn_from
    kept.update({k: generation[k] for k in shown if generation.get(k) is not None})
    listed = generation.get("generated_images")
    if isinstance(listed, list):
        images = [{k: image.get(k) for k in ("id", "url", "motionMP4URL") if image.get(k)} for image in listed
                  if _files.has_file(image)]  # fmt: skip
        kept.update(generated_images=images, without_url=len(listed) - len(images))
    return kept


def _images_asked(item: BatchItem) -> Optional[int]:
    """How many images item's create call asks for: its num_images (v1) or quantity (v2), else the bundled spec's
    default (v1's, the v2 model's); None when neither says (a v2 model the spec does not know)."""
    api, body = item.request()
    given = body.get("num_images") if api == "v1" else (body.get("parameters") or {}).get("quantity")
    asked = _images_by_default().get(item.model) if given is None else given
    return asked if type(asked) is int and asked >= 1 else None


def _enhanced(item: BatchItem) -> bool:
    """Whether ``item``'s prompt may be enhanced, so listed other than as sent: a v2 model's ``prompt_enhance`` not
    "OFF" (most default to AUTO, which may change), unless the bundled spec knows the model and it takes none (Veo,
    Kling, Hailuo, upscalers, audio...); v1's ``enhancePrompt``."""
    api, body = item.request()
    if api == "v2":  # asked: the API may take it from a model whose schema lists none (an open one)
        asked = body["parameters"].get("prompt_enhance")
        return asked != "OFF" if asked is not None else item.model not in _models_without_enhancement()
    return body.get("enhancePrompt") not in (None, False)


@lru_cache(maxsize=1)
def _models_without_enhancement() -> Set[Optional[str]]:
    """The v2 models whose schema in the bundled spec takes no ``prompt_enhance``: no rewrite is documented."""
    from .testing.spec import bundled_spec

    models = bundled_spec().models().items()
    listed = {m: schema.get("properties", {}).get("parameters", {}).get("properties") for m, schema in models}
    return {m for m, names in listed.items() if isinstance(names, dict) and "prompt_enhance" not in names}


@lru_cache(maxsize=1)
def _images_by_default() -> Dict[Optional[str], Any]:
    """The images a create call that does not say how many makes, by the bundled spec: v1's (None), each v2 model's."""
    from .testing.spec import bundled_spec  # the spec FakeLeonardo serves and generate checks against

    spec = bundled_spec()
    v1 = spec.resolve((spec.operation("create_generation").body or {})["properties"]["num_images"]).get("default")
    defaults: Dict[Optional[str], Any] = {None: v1}
    for model, schema in spec.models().items():
        parameters = schema.get("properties", {}).get("parameters", {}).get("properties", {})
        defaults[model] = parameters.get("quantity", {}).get("default")
    return defaults


def _awake_or_asleep() -> float:
    """Seconds on a clock that never steps and goes on while the machine sleeps (Linux's boot time,
    macOS's monotonic), else time.monotonic(): which stops then on Linux and macOS, so that the times
    journaled after a laptop slept would read as earlier than they were, to a rerun too."""
    return time.clock_gettime(_SLEEP_COUNTING) if _SLEEP_COUNTING is not None else time.monotonic()


_SLEEP_COUNTING: Optional[int] = getattr(time, {"linux": "CLOCK_BOOTTIME", "darwin": "CLOCK_MONOTONIC"}.get(
    sys.platform, ""), None)  # the clock of _awake_or_asleep, where the system has one


def _key_refused(error: Any, create: bool = False) -> bool:
    """A 401 or 403: the key was refused (revoked?), so every later call would be too; so was a malformed one
    (its 500: key_malformed). Not a create call's 403 without Hasura's ``access-denied`` code: Leonardo refuses
    a prompt its moderation flags with a 403 (that item fails; a key refused would be again at the next poll)."""
    if not isinstance(error, LeonardoError) or error.status_code not in (401, 403):
        return key_malformed(error)
    code = error.body.get("code") if isinstance(error.body, dict) else None
    return error.status_code == 401 or not create or code == "access-denied"


def _local_time(seconds: float) -> str:
    """An epoch time as the gallery shows it: this machine's local date and time, and its UTC offset (the page
    may be read in another zone)."""
    return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


# Latin letters NFKD does not split into a letter and its accents.
_LETTERS = str.maketrans({"\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o", "\u0142": "l", "\u0111": "d"})


def _slug(text: str) -> str:
    """A file name's part from a name or prompt: Latin letters without their accents ("Caf\u00e9" -> "cafe"), digits,
    and a dash for anything else. An item complete keeps the names its journal gave (a rerun reads them there)."""
    letters = unicodedata.normalize("NFKD", text.lower().translate(_LETTERS))
    ascii_text = "".join(char for char in letters if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:40].rstrip("-") or "item"


# The header's word on a page that says "running": whether the batch still is, and resume_advice's ({advice}). It
# does not reload itself: a reload every few seconds sent a screen reader back to the top, and a page of 20,000 items
# took longer than that to load.
_RUNNING_NOTE = (
    f"While the batch runs, this page is rewritten at least every {GALLERY_HEARTBEAT:.0f} s: if it still says "
    "running and was updated more than two minutes ago, the batch is no longer running (killed, or its machine "
    "went off); {advice}. It does not reload itself: reload it to see the latest."
)

# content-visibility: cards off screen are laid out only when scrolled to (20,000 items: 37 s to load, then 17).
_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
header{padding:16px 24px;background:#1f2430;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9cbd3;font-size:14px}
header p+p{margin-top:4px;font-size:13px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:16px;padding:24px;
align-items:start}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);overflow:hidden;
border-top:4px solid var(--state,#666);display:flex;flex-direction:column;
content-visibility:auto;contain-intrinsic-size:auto 420px}
.complete{--state:#1e7a44}.failed{--state:#c0392b}.ambiguous{--state:#8a5a00}
.submitted,.submitting{--state:#2a62b0}
.thumbs{order:-1;display:grid;grid-template-columns:repeat(auto-fit,minmax(100px,1fr));gap:2px;background:#eee}
.thumbs a{position:relative}
.thumbs a:focus-visible{outline:none}
.thumbs a:focus-visible::after{content:"";position:absolute;inset:0;
box-shadow:inset 0 0 0 3px #fff,inset 0 0 0 6px #1f2430}
.thumbs img,.thumbs video{width:100%;aspect-ratio:1;object-fit:cover;display:block}
.kind{position:absolute;left:4px;top:4px;padding:0 6px;border-radius:8px;font-size:11px;color:#fff;
background:rgba(0,0,0,.65)}
.empty,.file{height:120px;display:flex;align-items:center;justify-content:center;color:#555;background:#eee}
.file{color:#333;padding:4px;overflow-wrap:anywhere}
.info{padding:10px 12px;font-size:13px}
h2{margin:0 0 6px;font-size:13px;color:#555;overflow-wrap:anywhere}
.prompt{margin:0 0 8px;font-size:14px;line-height:1.35;overflow-wrap:anywhere;white-space:pre-line;
max-height:8.1em;overflow:auto}
dl{margin:0;display:grid;grid-template-columns:auto 1fr;gap:2px 8px;color:#555}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:normal;color:#fff;
background:var(--state,#666)}
.reason{color:#a3342b;margin-top:6px;overflow-wrap:anywhere}
"""


def _thumbs(item: _Item) -> str:
    """An item's thumbnails, each a link to its file; a video's labelled so (its first frame may not show). Named
    "image 1", "video 2": the card's heading and prompt, read before them, say whose they are."""
    e = html.escape
    thumbs = []
    for number, name in enumerate(item.files, 1):
        link = _href(name)
        if name.lower().endswith(VIDEOS):  # preload: without it, browsers show no frame of a video not played
            video = f'<video src="{link}" preload="metadata" muted loop playsinline></video>'
            thumbs.append(f'<a href="{link}" aria-label="video {number}">{video}<span class="kind">video</span></a>')
        elif name.lower().endswith(OTHER_FILES):  # a 3D model, a sound: a link to it
            thumbs.append(f'<a class="file" href="{link}">{e(name)}</a>')
        else:
            thumbs.append(f'<a href="{link}"><img src="{link}" alt="image {number}" loading="lazy"></a>')
    return "".join(thumbs) or f'<div class="empty" aria-hidden="true">{e(item.state)}</div>'  # said by the heading


def _href(name: str) -> str:
    """A file's name as a relative link, each of its bytes on disk percent-encoded: a name from an older or edited
    journal may hold "#", "?", "%" or ":", or (undecodable bytes) a lone surrogate."""
    try:
        return quote(os.fsencode(name), safe="")
    except UnicodeEncodeError:  # no file can be so named here: the page is written all the same
        return quote(name, safe="", errors="backslashreplace")


def _card(item: _Item, offline: bool = False) -> str:
    """One item of the gallery: a heading (its number, name and state), the prompt (escaped), details, then the
    thumbnails linking to the files (shown first, CSS order): a screen reader tells what they are before them."""
    e, spec = html.escape, item.item
    seed = item.seed if item.seed is not None else spec.seed
    before = item.paid or item.paid_unknown  # its earlier generations, sent again on purpose
    if item.cost:
        cost = printable(f"{item.cost['amount']} {str(item.cost.get('unit', '')).lower()}")  # the server's text
    else:  # made (paid for), by an answer lost (adopted) or without a cost; or not made, or refunded
        cost = "unknown" if item.cost_unknown_now() else "-"
    rows = {
        "model": spec.model or spec.model_id or "default (v1)",
        "size": f"{spec.width or '?'} x {spec.height or '?'}" if spec.width or spec.height else "default",
        "seed": "-" if seed is None else str(seed),
        "cost": cost + (" (refunded)" if item.cost and item.state == "failed" else "")
        + (f" (and {credits_text(item.paid, '', unknown=item.paid_unknown)} before)" if before else ""),
    }
    details = "".join(f"<dt>{k}</dt><dd>{e(v)}</dd>" for k, v in rows.items())
    # submitted: a download that failed; complete: saved short of images (see seen_complete)
    shown = item.state in ("failed", "ambiguous", "submitted", "complete") and item.reason
    reason = f'<div class="reason">{e(printable(item.reason))}</div>' if shown else ""  # it may quote a server's id
    if item.gone:  # not linked: see _Engine.plan
        advice = gone_advice(offline, str(item.generation_id))
        reason += f'<div class="reason">{e(", ".join(item.gone))} gone from the folder or empty: {e(advice)}</div>'
    name = f" <bdi>{e(spec.name)}</bdi>" if spec.name else ""  # bdi: a right-to-left name cannot move the state
    return (
        f'<article class="card {e(item.state)}"><div class="info">'
        f'<h2>#{item.index + 1}{name} <span class="status">{e(item.state)}</span></h2>'
        f'<p class="prompt" dir="auto">{e(spec.prompt)}</p>'
        f'<dl>{details}</dl>{reason}</div><div class="thumbs">{_thumbs(item)}</div></article>'
    )


# Control characters HTML cannot show as they are (a NUL is dropped, &#128; read as a euro sign): shown escaped.
_CONTROLS_SHOWN = {
    code: f"\\x{code:02x}" for code in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0))
}


def _count(number: int, noun: str) -> str:
    """"1 image", "2 images"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def resume_advice(offline: bool) -> str:
    """What to do with a batch stopped: run it again; not an --offline one, whose fake API ended with its run (and
    with it what was in flight: one with nothing in flight would rerun, but use a new folder is always right)."""
    return "an --offline batch cannot be resumed: use a new --out" if offline else "rerun the same command to resume"


def write_gallery(
    out_dir: str, items: Sequence[_Item], summary: BatchSummary, final: bool, paused: str, offline: bool = False
) -> None:
    """out_dir/index.html: one card per item, self-contained (inline CSS, relative links); ``paused``: a pause of
    submissions under way, as the header says it; ``offline``: run against the built-in fake (resume_advice)."""
    e = html.escape
    spent = credits_text(summary.credits, "-", unknown=summary.cost_unknown)
    state = "running" if not final else f"stopped: {resume_advice(offline)}" if summary.pending else "finished"
    title = f"Batch: {_count(summary.total, 'item')}"
    headline = (
        f"{summary._counted()} &middot; {_count(summary.images, 'image')} &middot; "
        f"spent {e(spent)} &middot; {state}, updated {e(_local_time(time.time()))}"
        + (f" &middot; {e(paused)}" if paused else "")
    )
    advice = summary._advice("on their cards", "their cards and your Leonardo library")
    notes = [] if final else [_RUNNING_NOTE.format(advice=resume_advice(offline))]
    notes += [text[:1].upper() + text[1:] + "." for text in advice]
    if summary.gone:
        notes.append(f"{_count(len(summary.gone), 'file')} of complete items gone from the folder or empty: "
                     "their cards say which, and how to get them again.")
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head>\n"
        f"<body><header><h1>{title}</h1><p>{headline}</p>" + "".join(f"<p>{e(n)}</p>" for n in notes)
        + "</header>\n<main>\n" + "\n".join(_card(item, offline) for item in items) + "\n</main></body></html>\n"
    )
    # A full disk is a LeonardoError ("could not write ..."), as for the journal, not taken for the CLI's output.
    # backslashreplace: a lone surrogate in text from a server (a cost's unit) cannot stop the batch. Then ASCII,
    # the rest as &#...; references: a web server's charset in Content-Type overrides <meta charset>.
    # Not synced: it is rewritten every few seconds, and on every run.
    text = page.encode("utf-8", "backslashreplace").decode("utf-8").translate(_CONTROLS_SHOWN)
    _files.write_atomically(os.path.join(out_dir, GALLERY), [text.encode("ascii", "xmlcharrefreplace")], sync=False)
