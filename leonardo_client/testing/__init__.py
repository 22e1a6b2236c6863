"""An in-process fake of the Leonardo.Ai REST API, for tests and offline demos::

    with FakeLeonardo() as fake:
        client = Client(api_key=fake.api_key, base_url=fake.base_url)

A threaded HTTP/1.1 server on 127.0.0.1 (standard library only) that routes and validates
from the bundled OpenAPI spec (``openapi.json``), checks the bearer key, plays the account's
limits, serves real PNGs (and, for video models, a small file that starts as an MP4 does: not
a playable video) at the URLs it returns, can POST Leonardo's webhook, records every request
and plays faults (:meth:`FakeLeonardo.inject`). README.rst has the whole story.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar, Union

from .._files import is_loopback
from ..client import fork_aware
from ..payloads import check_number, check_type, is_header_text
from .account import MAX_SLOTS, Delay, delay_range
from .api import Api, Deliverer, check_settings
from .server import OWN_PATHS, POLL, Fault, RecordedRequest, Server, retry_after_header
from .spec import Spec

__all__ = ["FakeLeonardo", "RecordedRequest"]


def _check_shape(value: Any) -> None:
    if value not in ("recipes", "spec"):
        raise ValueError('v2_response_shape must be "recipes" or "spec"')


def _check_key(value: Any) -> None:
    # The Client strips its key: one with spaces around could never match.
    # Nor one with a space inside: the Client refuses it too ("Bearer <key>").
    if not isinstance(value, str) or not value or " " in value or not is_header_text(value):
        raise ValueError("api_key must be printable ASCII text without spaces (it goes in a header)")


def _set_together(value: Any) -> None:
    raise AttributeError("webhook_url and webhook_api_key are set together, with set_webhook(url, api_key)")


# The settings checked whenever they are set, in the constructor and after (__setattr__); the webhook's
# URL and key are set together by set_webhook(), never assigned.
_CHECKS: Dict[str, Callable[[Any], object]] = {
    "completion_delay": delay_range,
    "concurrency_slots": functools.partial(check_number, "concurrency_slots", low=1, high=MAX_SLOTS, integer=True),
    "posts_per_minute": lambda value: value is None or check_number("posts_per_minute", value, 1, math.inf, True),
    "fail_rate": functools.partial(check_number, "fail_rate", low=0, high=1),
    "fail_new_generations": functools.partial(check_type, "fail_new_generations", kind=bool),
    "v2_response_shape": _check_shape,
    "api_key": _check_key,
    "seed": functools.partial(check_type, "seed", kind=(int, type(None))),
    "webhook_url": _set_together,
    "webhook_api_key": _set_together,
}


_F = TypeVar("_F", bound="FakeLeonardo")


def _at_no_operation(spec: Spec, path: str) -> bool:
    """Whether a fault's path matches no call of the client's: none an operation of the bundled spec routes (v1's
    recorded from base_url), none under the fake's own /cdn/ or /s3/ ("/": base_url itself)."""
    prefix = path[:-1] if path.endswith("*") else None
    if path == "/" or any(path.startswith(own) or (prefix is not None and own.startswith(prefix)) for own in OWN_PATHS):
        return False
    return not (spec.reaches(path) or spec.reaches(spec.base + path))


class FakeLeonardo:
    """A fake Leonardo.Ai API on 127.0.0.1 (see the module docstring).

    ``api_key`` is the bearer key it accepts; it listens on ``host`` (127.x.x.x only: "localhost" is 127.0.0.1, "::1"
    refused) at ``port`` (0: a free one); start() sets ``root_url`` (``http://host:port``) and ``base_url`` (v1's root).

    The account: ``concurrency_slots`` (1 to 1000) jobs run at once, more wait PENDING (past 20 pending per slot,
    the running ones included, a create gets 429); ``posts_per_minute`` (None: no limit) counts the POSTs of each
    generation endpoint (v1, v2, texture) apart, over a sliding minute, as Leonardo's limits do (past it: 429 with
    Retry-After); a job runs ``completion_delay`` seconds (a number or a (min, max) range drawn per job), then is
    COMPLETE, or FAILED with probability ``fail_rate`` (reproducible from ``seed``); while ``fail_new_generations``
    is True (False at first), every job created (image, motion, v2 or texture) ends FAILED. These may change at any
    time (the jobs are first moved on to that moment: a slot added is free from then; a seed set restarts the draws
    from it; a job keeps the delay it drew when created); each setting is checked whenever it is set (ValueError,
    TypeError; a misspelt setting, a name close to one: AttributeError).
    ``user_id`` is the account's id: ``GET /me`` reports it, and ``GET /generations/user/{userId}`` lists the
    generations for it only.
    ``v2_response_shape``: "recipes" (``{"generate": {"generationId", "cost"}}``) or "spec"
    (``{"generationId", "apiCreditCost"}``). With ``webhook_url`` (loopback only), each completed generation is
    POSTed there with ``authorization: Bearer <webhook_api_key>``; failed deliveries are listed in
    ``webhook_errors``; :meth:`set_webhook` changes the two (they are not assigned). ``requests`` lists every
    request received; ``connections_opened`` counts the TCP connections accepted.
    """

    webhook_url: Optional[str] = None  # set by set_webhook() only
    webhook_api_key: Optional[str] = None

    def __init__(
        self, *, api_key: str = "fake-api-key", completion_delay: Delay = 0.0, host: str = "127.0.0.1",
        port: int = 0, concurrency_slots: int = 10, posts_per_minute: Optional[int] = None, fail_rate: float = 0.0,
        seed: Optional[int] = 0, v2_response_shape: str = "recipes", webhook_url: Optional[str] = None,
        webhook_api_key: Optional[str] = None,
    ) -> None:
        if not is_loopback(host) or ":" in host:
            raise ValueError("FakeLeonardo listens on loopback only (127.x.x.x), not %r" % host)
        check_number("port", port, 0, 65535, integer=True)  # refused now, not at start()
        self.api_key = api_key  # checked first, as are the settings below, by __setattr__
        self.webhook_errors: List[str] = []
        self.completion_delay, self.fail_new_generations = completion_delay, False
        self.concurrency_slots, self.posts_per_minute, self.fail_rate = concurrency_slots, posts_per_minute, fail_rate
        self.seed, self.v2_response_shape = seed, v2_response_shape
        self.user_id = "0f3c6a52-8e1d-4b7a-9c2e-5d4f6a7b8c9d"
        self.requests: List[RecordedRequest] = []
        self.connections_opened = 0
        self.base_url = self.root_url = ""  # set by start()
        self._address = ("127.0.0.1" if host == "localhost" else host, port)
        self._lock = threading.Lock()
        self._faults: List[Fault] = []
        self._server: Optional[Server] = None
        self._thread: Optional[threading.Thread] = None
        self._deliverer: Optional[Deliverer] = None
        self._pid = 0  # the process that started the server
        self._api = Api(self)
        self.set_webhook(webhook_url, webhook_api_key)

    if not TYPE_CHECKING:  # unseen by type checkers: to them, as here, a name not declared (misspelt) is an error

        def __setattr__(self, name: str, value: Any) -> None:
            check = _CHECKS.get(name)
            if check is not None:
                check(value)
            elif "_api" in self.__dict__ and not hasattr(self, name):  # a misspelt setting would change nothing
                for meant in difflib.get_close_matches(name, _CHECKS, 1):  # (a subclass's own attribute is let be)
                    raise AttributeError("FakeLeonardo has no attribute %r; did you mean %r?" % (name, meant))
            if check is None or "_api" not in self.__dict__:  # not a setting, or still constructing
                super().__setattr__(name, value)
            else:
                self._set_from_now(**{name: value})

    def _set_from_now(self, **settings: Any) -> None:
        """Change settings from now on: the jobs are moved on to now first (a seed set restarts the draws)."""
        with self._api.lock:
            self._api.advance()
            self.__dict__.update(settings)  # checked already (setattr() would come back here)
            if "seed" in settings:
                self._api.account.random.seed(settings["seed"])

    def start(self: _F) -> _F:
        """Start serving and return the fake (binds the port; a no-op when already running).

        A restart binds the port bound first, so ``base_url`` stays the same (OSError if another process took it
        meanwhile)."""
        if self._server is None:
            self._server = Server(self._address, self)
            fork_aware(self._server)  # held weakly: a stopped server, once collected, costs a forked child nothing
            self._address = (self._address[0], self._server.server_address[1])  # a restart binds it again
            self.root_url = "http://%s:%d" % self._address
            self.base_url = self.root_url + self._api.spec.base
            self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True)
            try:
                self._thread.start()
            except RuntimeError:  # no thread to spare: left stopped, the port closed (stop() would wait on no loop)
                self._server.server_close()
                self._server = self._thread = None
                raise
            self._pid = os.getpid()
            try:
                self._start_deliverer()
            except RuntimeError:  # left stopped, not half started
                self.stop()
                raise
        return self

    def set_webhook(self, url: Optional[str], api_key: Optional[str] = None) -> None:
        """POST each generation that completes from now on to ``url`` (http(s) on a loopback address; None: no
        webhook) with ``authorization: Bearer <api_key>``. The two are set together, as on a Leonardo API key; a
        running fake starts delivering at once. What completed before goes where the webhook pointed then."""
        check_settings(url, api_key)
        self._set_from_now(webhook_url=url, webhook_api_key=api_key)
        self._start_deliverer()

    def _start_deliverer(self) -> None:
        if self.webhook_url and self._server is not None and self._deliverer is None:
            deliverer = Deliverer(self, self._api)
            deliverer.start()  # RuntimeError: no thread to spare (none kept: a later stop() joins no thread unstarted)
            self._deliverer = deliverer

    def stop(self) -> None:
        """Stop serving: close every connection, send the webhooks of what completed before (for WEBHOOK_TIMEOUT,
        2 s, plus the delivery under way then, itself up to that; those not sent are listed in ``webhook_errors``) and
        join every thread. A no-op when stopped; state is kept and ``base_url`` too. Not to be called from a request
        handler. In a process forked from the one that started it, only closes that process's copy of the port."""
        server, self._server = self._server, None
        if server is not None and os.getpid() != self._pid:  # a forked child: the threads are the parent's
            server.server_close()  # its copy of the listening socket; the connections it shares are left alone
            self._thread = self._deliverer = None
            return
        if server is not None and self._thread is not None:
            server.close_all()
            self._thread.join()
        deliverer, self._deliverer = self._deliverer, None
        if deliverer is not None:
            deliverer.stop()

    def __enter__(self: _F) -> _F:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return "<FakeLeonardo %s>" % (self.base_url if self._server is not None else "stopped")

    def inject(
        self, *, status: Optional[int] = None, times: Optional[int] = 1, path: Optional[str] = None,
        method: Optional[str] = None, retry_after: Union[str, float, None] = None, delay: float = 0.0,
        drop: bool = False, body: Any = None, truncate: bool = False, after: bool = False,
    ) -> None:
        """Change the answer to the next ``times`` matching requests (None: until
        :meth:`clear_faults`); the first matching fault, in order of registration, fires.

        ``path`` matches the recorded path, exactly or as a prefix ending in ``*`` (``"*"``, ``"/cdn/*"``); None
        matches every API path. A path that never matches is refused (ValueError): one without its leading ``/``,
        ``"/v2/..."`` (recorded from the root), ``"/api/rest/v1/..."`` or ``"/v1/..."`` (v1 calls are recorded from
        ``base_url``), one no operation of the API is at, nor a file (``"/generations/"``, ``"/init-images"``).
        ``method`` None matches any. ``status``: answer it with ``body`` (dict or list as JSON; str or bytes raw,
        ``text/html`` when it starts with ``<``, else a file's type under /cdn/, JSON's elsewhere; refused at once
        if JSON cannot carry it) or else the API's error envelope (a 204 or 304 is sent without a body).
        ``drop``: close without answering. ``delay``: wait that long first, up to 3600 s (alone: a slow server).
        ``retry_after``: add that header (2.0 as "2").
        ``truncate``: announce the whole Content-Length, send half, close. ``after``: run the operation first, then
        play the fault; without it a ``status`` or ``drop`` fault replaces the operation, which never runs.
        """
        fault = Fault(status, times, path, method, retry_after_header(retry_after), delay, drop, body, truncate, after)
        base = self._api.spec.base
        if path is not None and path.startswith(base):  # no request is recorded there: it never fires
            raise ValueError("v1 calls are recorded from the API's base: use path=%r" % (path[len(base):] or "/"))
        if path is not None and _at_no_operation(self._api.spec, path):
            raise ValueError("path=%r is at no operation of the bundled spec, nor under /cdn/ or /s3/: no call of the "
                             "client's is recorded there (a v1 call is recorded from base_url, '/generations'; a v2 "
                             "call from the root, '/api/rest/v2/generations')" % path)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    def fail_generation(self, generation_id: str) -> None:
        """Make that generation (image, motion, v2 or texture) end FAILED: at once if it has
        completed, else when its delay is over. KeyError for an unknown id."""
        with self._api.lock:
            job = self._api.generations.get(generation_id) or self._api.textures.get(generation_id)
            if job is None:
                raise KeyError(generation_id)
            job.fail = True
            job.final = job.final and "FAILED"

    def generation_ids(self) -> List[str]:
        """Ids of the generations currently stored (image, motion, v2, lcm-upscale; not texture), oldest first."""
        with self._api.lock:
            return list(self._api.generations)

    def blob_url(self, size: int) -> str:
        """URL of ``size`` bytes (byte i is ``i % 251``), streamed in 64 KiB chunks and never
        held whole: a testing aid for downloads. Needs start()."""
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 10**15:
            raise ValueError("size must be a non-negative integer below 10**15")
        if not self.root_url:
            raise RuntimeError("start the FakeLeonardo first")
        return "%s/cdn/blobs/%d.bin" % (self.root_url, size)

    def _arrived(self, request: RecordedRequest, playable: bool = True) -> Optional[Fault]:
        """Record a request (called by the server's threads); the fault to play on it, if any."""
        with self._lock:
            self.requests.append(request)
            fault = next((f for f in self._faults if f.matches(request)), None) if playable else None
            if fault is not None and fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
        return fault
