"""Client: one requests.Session, one _send(), the endpoint methods and the waits."""

from __future__ import annotations

import collections
import http.cookiejar
import itertools
import logging
import os
import queue
import threading
import time
import warnings
import weakref
from typing import (
    Any, Callable, Dict, Iterator, List, Mapping, NoReturn, Optional, Protocol, Tuple, TypeVar, Union,
)
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import BaseAdapter
from urllib3.util.retry import Retry

from . import __version__, _files, _retry
from ._retry import (
    DEFAULT_BACKOFF_FACTOR, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_RETRIES, MAX_ERROR_BODY, RetryAdapter, default_retry,
    reentrant, resend_after_body,
)
from .errors import (
    MAY_HAVE_BEEN_MADE, STOPPED_CREATING, BodyBroke, LeonardoError, _noted, check_complete, credentials_of,
    key_malformed, may_have_run, message_from, never_sent, read_json, redact, redact_from_logs, shortfall, shows_key,
    timed_out, without_userinfo,
)
from .payloads import (
    CreateGenerationRequest, CreateLcmGenerationRequest, CreateSvdMotionGenerationRequest,
    CreateTextureGenerationRequest, GenerationV2Request, LcmInpaintingRequest, LcmInstantRefineRequest,
    LcmUpscaleRequest, MAX_INT, RETIRED, check_number, check_text, check_type, cut, id_key, is_header_text, is_id,
    retired_upstream, shown, to_payload,
)

__all__ = ["Client", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "generation_id"]

DEFAULT_BASE_URL = "https://cloud.leonardo.ai/api/rest/v1"
# 60 s to read covers the synchronous LCM operations, the slowest calls. No request goes without one.
DEFAULT_TIMEOUT = (10.0, 60.0)
API_KEY_ENV, BASE_URL_ENV = "LEONARDO_API_KEY", "LEONARDO_BASE_URL"
WAIT_TIMEOUT, TEXTURE_TIMEOUT = 300.0, 600.0
EMPTY_GRACE = 60.0  # seconds a generation may be COMPLETE with no images (they may come after) and still be waited on
# Waiting: at once, then after poll_interval, each interval 1.5x the last, up to 12 s (or poll_interval if longer).
POLL_INTERVAL, POLL_BACKOFF, MAX_POLL_INTERVAL = 1.0, 1.5, 12.0
DOWNLOAD_CHUNK = 64 * 1024
# A body read whole is refused past these (a compressed answer may inflate to gigabytes): far more than any
# answer (an LCM answer's data URLs are a few MB), or any error's text.
MAX_ANSWER = 64 * 1024 * 1024  # and MAX_ERROR_BODY, from _retry
# The API never redirects; a GET (a CDN's download) may follow this many, each hop with its own
# retries and timeouts. A POST or DELETE follows none: a 307 would send the create call again.
MAX_REDIRECTS = 5
# As a request's proxies (None: none), with each of the session's, per-host ones too ("all://127.0.0.1"): none,
# whatever the session or the environment (HTTPS_PROXY, ALL_PROXY...) says.
_NO_PROXY = ("http", "https", "all")
# Bounds of the numeric arguments: beyond them a value is a mistake (and sleep() would overflow).
MIN_SECONDS, MAX_SECONDS = 0.001, 7 * 24 * 3600.0
MAX_RETRIES, MAX_POOL_MAXSIZE = 100, 1000
# Where each create response keeps its job, and the job the id to wait for (v2: Leonardo's
# recipes, then its spec, whose job is the response itself).
CREATE_JOBS = (
    ("sdGenerationJob", "generationId"),
    ("motionSvdGenerationJob", "generationId"),
    ("generate", "generationId"),
    ("", "generationId"),
    ("textureGenerationJob", "id"),
)
# The answers of the API's other calls (the spec's): each holds one of these, none a create call's job.
OTHER_ANSWERS = {
    "user_details": "GET /me's answer",
    "productionApiAvailableModels": "GET /v2/models' answer",
    "generations": "a page of GET /generations/user/{userId}",
    "model_asset_texture_generations": "a page of GET /generations-texture/model/{modelId}",
    "init_images_by_pk": "GET /init-image/{id}'s answer",
    "uploadInitImage": "POST /init-image's answer",
    "delete_generations_by_pk": "a DELETE call's answer",
    "delete_init_images_by_pk": "a DELETE call's answer",
    "delete_model_asset_texture_generations_by_pk": "a DELETE call's answer",
}

log = logging.getLogger("leonardo_client")

Timeout = Union[float, Tuple[float, float]]
Result = Dict[str, Any]
OnPoll = Optional[Callable[[str, float], object]]  # what it returns is ignored (a write()'s count)
Body = Mapping[str, Any]  # a request body sent as given
Page = Optional[int]  # limit or offset: None leaves it to the API
_C = TypeVar("_C", bound="Client")
Write = Optional[Callable[[requests.Response, Iterator[bytes]], None]]  # streams a download's body to a file


class Client:
    """A synchronous client for the Leonardo.Ai REST API, safe to share between threads.

    Each endpoint method returns the API's JSON answer as a dict (upload_init_image: the object under
    its key); its docstring's first line names the HTTP call and that key. ``request`` takes the matching
    dataclass of ``leonardo_client.payloads`` or a mapping sent as given.

    Args:
        api_key: the API key; None reads ``LEONARDO_API_KEY``.
        base_url: the API root; None reads ``LEONARDO_BASE_URL`` (unset or blank: the public API). Refused:
            plain http to a host that is not loopback, a query, a fragment, ``user:password@``.
        timeout: (connect, read) seconds, or one number for both; applied to every request.
        max_retries, backoff_factor: retries under the retry rule (0: none); backoff base, seconds.
        session: a ``requests.Session`` of your own, yours to close; the retry adapter is
            mounted on it for the API only, until close().
        pool_maxsize: connections kept open: the number of threads sharing the client (at most 1000).
        user_agent: appended to the ``leonardo-client/<version>`` User-Agent.

    Attributes:
        base_url: the v1 API root in use, without a trailing slash.
        v2_url: the v2 root beside it (None when ``base_url`` does not end in /v1).
        retry: the urllib3 ``Retry`` its adapters retry by (from ``max_retries`` and ``backoff_factor``).

    Raises:
        LeonardoError: from every call that fails (an error status after the retries, a
            transport failure or timeout, a truncated or non-JSON body, a FAILED or missing
            generation, a call after ``close()``); no API key. An echoed key (any real one: 8
            characters or more) reads ``[redacted]``. A create call's, where it may have run
            (may_have_run), ends its message saying to look for what it made before sending it again.
        ValueError, TypeError: an unusable argument, before anything is sent.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
        session: Optional[requests.Session] = None,
        pool_maxsize: int = 10,
        user_agent: Optional[str] = None,
    ) -> None:
        api_key = _check_api_key(api_key)
        self._key = api_key  # redacted from its own errors wherever a server echoes it, and from its repr
        self.base_url = _check_base_url(base_url, api_key)
        self.timeout = timeout
        self.v2_url = v2_root(self.base_url)
        check_number("max_retries", max_retries, 0, MAX_RETRIES, integer=True)
        check_number("backoff_factor", backoff_factor, 0, DEFAULT_MAX_BACKOFF)
        check_number("pool_maxsize", pool_maxsize, 1, MAX_POOL_MAXSIZE, integer=True)
        check_type("user_agent", user_agent, (str, type(None)))
        if user_agent is not None and not is_header_text(user_agent):
            raise ValueError("user_agent must be printable ASCII (a line break would inject headers)")
        self.retry = default_retry(max_retries, backoff_factor)
        self._mount(check_type("session", session, (requests.Session, type(None))), pool_maxsize)

        agent = f"leonardo-client/{__version__} python-requests/{requests.__version__}"
        # Downloads send only the User-Agent: the key goes per request to the API alone, never to CDNs.
        self._download_headers = {"User-Agent": f"{agent} {user_agent}" if user_agent else agent}
        self._api_headers = dict(self._download_headers, Authorization=f"Bearer {api_key}", Accept="application/json")
        redact_from_logs(api_key, self)

    def _mount(self, session: Optional[requests.Session], pool_maxsize: int) -> None:
        """The retry adapter on the API's roots of the session (on the client's own, for downloads too)."""
        self._owns_session, self._session = session is None, session or _Session()
        self._start_counting(forked=False)
        roots = [root + "/" for root in filter(None, (self.base_url, self.v2_url))]
        self._adapter = _ApiAdapter(self, pool_maxsize)
        with _MOUNTING:
            for root in roots:
                _check_not_serving(self._session, root)
                # Put back by close(). A closed Client's adapter still there (its close() under way) stands for
                # the one it replaced: put back, it would refuse the session's requests.
                found = self._session.adapters.get(root)
                self._adapter.replaced[root] = found.replaced.get(root) if isinstance(found, _ApiAdapter) else found
            _remount(self._session, dict.fromkeys(roots, self._adapter))
        fork_aware(self)
        if self._owns_session:
            self._session.max_redirects = MAX_REDIRECTS
            # None kept: the API takes the key alone, and a cookie it set (holding the key, even) rode every download.
            self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            # Downloads (any other origin) get the retry rule, never the key; a caller's session keeps its own.
            downloads = RetryAdapter(pool_maxsize=pool_maxsize, max_retries=self.retry)
            _remount(self._session, {"https://": downloads, "http://": downloads})

    def _start_counting(self, forked: bool) -> None:
        """No call under way: at construction, and in a forked process (the parent's threads are not in it,
        and a lock one of them held would be held there for ever). The last call out after close() releases.
        ``forked``: the parent's pooled connections are let go of at the first call (shared, they would carry
        both processes' requests and mix the answers)."""
        # Reentrant: close() may run in a signal handler that interrupted this thread inside ``with self._calls``.
        self._calls, self._in_flight, self._inherited_pools = threading.RLock(), 0, forked

    def _forked(self) -> None:
        """In a forked process (see _after_fork_in_child)."""
        self._start_counting(forked=True)
        _new_locks(self._session)
        reentrant(self.retry.closed)  # its lock, held a moment by each wait (polls, backoffs) and by close()

    def __repr__(self) -> str:
        return f"Client(base_url={redact(self.base_url, self._key)!r})"  # the key pasted into it, as errors show it

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        # copy, deepcopy and pickle: a copy shared the session and the closed state, a pickle failed on a lock.
        raise TypeError("a Client cannot be copied or pickled (sent to another process): create one in each process "
                        "(one is safe to share between threads; for other settings, create another)")

    @property
    def timeout(self) -> Timeout:
        """The (connect, read) seconds of every request; may be set, and is checked as at construction."""
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: Timeout) -> None:
        # requests takes a number or a (connect, read) pair, and fails only at call time otherwise.
        if isinstance(timeout, tuple) and len(timeout) != 2:
            raise ValueError(f"timeout must be a number or a (connect, read) pair, got {len(timeout)} values")
        if not isinstance(timeout, (tuple, int, float)) or isinstance(timeout, bool):  # [10, 60] from a config file
            pair = "a (connect, read) pair as a tuple"
            raise TypeError(f"timeout must be a number or {pair}, not {type(timeout).__name__}")
        names = ("timeout's connect", "timeout's read") if isinstance(timeout, tuple) else ("timeout",)
        for name, value in zip(names, timeout if isinstance(timeout, tuple) else (timeout,)):
            check_number(name, value, MIN_SECONDS, MAX_SECONDS)
        self._timeout = timeout

    @property
    def closed(self) -> bool:
        """Whether close() was called: every call after it raises LeonardoError, and no retry is sent."""
        return self.retry.closed.is_set()

    def close(self) -> None:
        """Release pooled connections (and the session, if this client created it); calls after it raise.

        Calls under way end first (sending no retry): the last one out releases. Safe in a signal handler.
        """
        if self.closed and not self._inherited_pools:  # a second close() (a signal handler's) would wait on a lock
            return  # the first one's release holds; a forked child's lets go of its copies of the parent's pools
        with self._calls:
            self.retry.closed.set()
            idle = not self._in_flight
        if idle:  # else the last call under way releases them as it ends: its request goes through this rule
            self._release()

    def _release(self) -> None:
        if self._owns_session:
            self._session.close()
            return
        # A caller's session gets its own adapters back (this one's closed rule would refuse its requests).
        with _MOUNTING:
            ours = [prefix for prefix, adapter in self._session.adapters.items() if adapter is self._adapter]
            _remount(self._session, {prefix: self._adapter.replaced.get(prefix) for prefix in ours})
        # types-requests < 2.31.0.7 (the stubs that go with urllib3 1.26) leave close() unannotated.
        self._adapter.close()  # type: ignore[no-untyped-call,unused-ignore]

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- HTTP: _send is the only call into the session ---------------------------------------

    def _send(self, method: str, url: str, write: Write = None, **kwargs: Any) -> requests.Response:
        """Send a request; read its body, or stream it to ``write(response, chunks)``. LeonardoError if not 2xx.
        A GET whose 2xx body broke off is sent again (_retry.resend_after_body)."""
        state: Optional[Retry] = None
        with self._calls:
            self._check_open()
            if self._inherited_pools:  # every adapter's, a caller's too (copies of the parent's)
                self._session.close()
                self._inherited_pools = False  # under the lock: the process's other threads wait for the new pools
            self._in_flight += 1
        try:
            while True:
                try:
                    _retry._thread.resumed = state  # (not a context manager: a generator's cost on every call)
                    try:
                        return self._exchange(method, url, write, **kwargs)
                    finally:
                        _retry._thread.resumed = None
                except BodyBroke as broke:
                    state = resend_after_body(state, broke.retries, method, url, broke.status_code, broke.message)
                    if state is None:
                        raise broke.plain() from broke.__cause__
                self._check_open()
        finally:
            with self._calls:
                self._in_flight -= 1
                last = self.closed and not self._in_flight
            if last:
                self._release()

    def _exchange(self, method: str, url: str, write: Write, **kwargs: Any) -> requests.Response:
        note, response = "download failed" if write else "", None
        answered: List[requests.PreparedRequest] = []  # whatever adapter serves it (see _failed)
        started = time.monotonic()
        # A loopback host is this machine: never through a proxy (plain http would show it the key).
        loopback = _files.is_loopback(urlsplit(url).hostname or "")
        direct: Optional[Dict[str, Any]] = dict.fromkeys([*_NO_PROXY, *self._session.proxies]) if loopback else None
        try:
            with self._session.request(
                method, url, timeout=self.timeout, stream=True, allow_redirects=method == "GET", auth=_as_given,
                proxies=direct, hooks=_noting(answered, self._session), **kwargs,
            ) as response:
                if response.status_code < 200:  # its final answer may follow on the connection: never pooled again
                    response.raw.close()
                if log.isEnabledFor(logging.DEBUG):
                    elapsed = time.monotonic() - started
                    log.debug("%s %s -> %s in %.3fs", method, self._shown(url), response.status_code, elapsed)
                ok = 200 <= response.status_code < 300
                self._read(response, write if ok else None, method, url, note)
        # ValueError: e.g. an unusable redirect Location; HTTPError: urllib3's, which requests 2.25 lets through.
        except (requests.RequestException, ValueError, urllib3.exceptions.HTTPError) as exc:
            failed = self._failed(exc, method, url, note, started, answered)
        # Before an answer, anything: requests' own (a CA bundle not found, a bad proxy URL), or what a hostile answer
        # makes requests or urllib3 raise (a RuntimeError, an OverflowError).
        except Exception as exc:
            if response is not None:
                raise  # ``write`` failed (a full disk): the caller's error, not the request's
            failed = self._failed(exc, method, url, note, started, answered)
        else:
            if not ok:
                interim = "an interim answer, the final one not read: the request may have been acted on"
                reasons = [note, self.retry.gave_up(response), interim if response.status_code < 200 else ""]
                error = LeonardoError.from_response(response, ", ".join(filter(None, reasons)), self._key)
                del response  # a kept error's traceback holds this frame: not its Response, the whole body
                raise error
            return response
        finally:
            answered.clear()  # the requests noted hold their hooks, which hold this list: no cycle left
        raise failed[0] from failed[1]  # out of the except block: in it, the error's __context__ would be what failed

    def _failed(
        self, exc: Exception, method: str, url: str, note: str, started: float, answered: List[requests.PreparedRequest]
    ) -> Tuple[LeonardoError, Optional[Exception]]:
        """The LeonardoError of a request that got no complete answer (no key or proxy password shown), and its cause.
        ``answered``: the requests answered so far; ``exc`` came after the last one's answer (a response hook of the
        caller's session raised) unless it names another request (a redirect's next hop that failed)."""
        url = str(getattr(getattr(exc, "request", None), "url", None) or url)  # after a redirect: the hop that failed
        elapsed = time.monotonic() - started
        log.debug("%s %s failed after %.3fs: %s", method, self._shown(url), elapsed, type(exc).__name__)
        proxies = requests.utils.get_environ_proxies(url) if self._session.trust_env else {}
        hidden = credentials_of([*proxies.values(), *self._session.proxies.values()])
        after = bool(answered) and getattr(exc, "request", None) in (None, answered[-1])
        error = LeonardoError.from_transport(exc, method, url, note, self._key, hidden, after)
        # Chained for the traceback, unless it would print a secret (a status line echoing the key).
        return error, None if shows_key(exc, self._key, hidden) else exc

    def _read(self, response: requests.Response, write: Write, method: str, url: str, note: str) -> None:
        """Read the whole body (on an error status too), or stream it to ``write``; BodyBroke if it broke off."""
        url = getattr(response.request, "url", None) or url  # the request that failed: its query, a redirect's hop
        try:
            if write:
                write(response, _chunks(response, method, url, self._key, note))
            else:
                most = MAX_ANSWER if 200 <= response.status_code < 300 else MAX_ERROR_BODY
                _read_whole(response, most, self._key, note)
                check_complete(response, method, url, self._key, note)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            # A body cut short says how much came; one that stopped coming timed out (what it got is not counted), and
            # one that came whole but could not be decoded (a bad gzip, more codings than urllib3 takes) was not cut.
            undecodable = isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError))
            short = "" if timed_out(exc) or undecodable else shortfall(response)
            if short:
                error = BodyBroke.cut_short(response, method, url, short, self._key, note)
            else:
                plain = LeonardoError.from_transport(exc, method, url, note, self._key)
                error = BodyBroke.of(response, plain, self._key)
            # One that could not be decoded came whole, and would come the same again: not sent again.
            failed, cause = (error.plain() if undecodable else error), None if shows_key(exc, self._key) else exc
        else:
            return
        raise failed from cause  # as _exchange's

    def _check_open(self) -> None:
        if self.closed:
            raise LeonardoError.not_sent("this Client was closed; create a new one (or close it only when done)")

    def _shown(self, url: str) -> str:
        """What a log line shows of a URL: the API path, or a file URL without user:password@; never the key (an id
        or a file URL may hold it: pasted in the wrong place)."""
        return redact(without_userinfo(url.replace(self.base_url, "", 1)), self._key)

    def _request(self, method: str, path: str, **kwargs: Any) -> Result:
        """An API call to ``path`` (under the v2 root if it starts "/v2/"): the key added, the JSON object decoded."""
        response = self._send(method, self._url(path), headers=self._api_headers, **kwargs)
        if response.status_code == 204:  # no content (urllib3 reads none of a 204's body); a 200 must hold JSON
            return {}
        cause = None
        try:
            data = read_json(response, self._key)  # an echoed API key redacted
        except (ValueError, RecursionError) as exc:  # chained by its text alone: its .doc and frames hold the body
            cause = ValueError(str(exc))
        if cause:
            error = LeonardoError.bad_body(response, "response body is not valid JSON", key=self._key)
        elif not isinstance(data, dict):
            message = f"expected a JSON object, got {type(data).__name__}"
            error = LeonardoError.bad_body(response, message, data, key=self._key)
        else:
            return data
        del response  # as in _exchange
        raise error from cause

    def _create(self, path: str, request: Any, expected: type) -> Result:
        """A create call (billed once it runs): POST ``request`` (an ``expected`` dataclass, or a mapping) to ``path``.
        A failure where it may have run (may_have_run) ends its message with MAY_HAVE_BEEN_MADE: sent again at once,
        it could bill twice."""
        if not isinstance(request, (Mapping, expected)):
            raise TypeError(f"request must be a {expected.__name__} or a mapping, not {type(request).__name__}")
        body = to_payload(request)  # its ValueError or TypeError: refused before anything is sent
        try:
            return self._request("POST", path, json=body)
        except LeonardoError as exc:
            if may_have_run(exc):  # the same error, its fields and cause kept: only its message says more
                exc.message = f"{exc.message}; {MAY_HAVE_BEEN_MADE}"
                exc.args = (exc.message,)
            raise
        except KeyboardInterrupt as stop:  # a Ctrl-C while it ran: it may have run all the same
            # add_note's list, on 3.8-3.10 too (setattr: their stubs have no __notes__)
            setattr(stop, "__notes__", [*getattr(stop, "__notes__", ()), STOPPED_CREATING])
            raise

    def _url(self, path: str) -> str:
        if not path.startswith("/v2/"):
            return self.base_url + path
        if self.v2_url is None:
            url = shown(redact(self.base_url, self._key))  # the key pasted into it, as the repr shows it
            raise ValueError(f"base_url {url} does not end in /v1, so the v2 API's address is unknown")
        return self.v2_url + path[3:]

    def _download(self, url: str, path_for: Callable[[str], str]) -> str:
        """GET a file without the key, streamed to ``path_for(content_type)`` (the last try's), written atomically."""
        written = []

        def write(response: requests.Response, chunks: Iterator[bytes]) -> None:
            refused = _files.not_a_file(response.status_code, response.headers)
            if refused:  # before any file is made
                raise LeonardoError.bad_body(response, f"download failed: {refused}", None, key=self._key)
            written.append(path_for(response.headers.get("Content-Type", "")))
            _files.write_atomically(written[-1], chunks)

        # Files are compressed already (and urllib3 never checks that a gzip or deflate stream ends).
        headers = {**self._keyless(), **self._download_headers, "Accept-Encoding": "identity"}
        self._send("GET", _files.check_url(url, self._key), write, headers=headers)
        return written[-1]

    def _keyless(self) -> Dict[str, None]:
        """For a request off the API: None for the session's Authorization and any of its headers holding the
        key (requests merges a session's headers into every request, and drops those given as None)."""
        headers = self._session.headers.items()
        return {name: None for name, value in headers if name.lower() == "authorization" or self._key in str(value)}

    # --- endpoints ------------------------------------------------------------------------------

    def create_generation(self, request: Union[CreateGenerationRequest, Body]) -> Result:
        """POST /generations -> sdGenerationJob: start an image generation; wait on its ``generationId``."""
        return self._create("/generations", request, CreateGenerationRequest)

    def get_generation_by_id(self, id: str) -> Result:
        """GET /generations/{id} -> generations_by_pk: a generation, its status and images (None if unknown)."""
        return self._request("GET", _path("generations", id))

    def delete_generation_by_id(self, id: str) -> Result:
        """DELETE /generations/{id} -> delete_generations_by_pk: delete a generation (None if unknown)."""
        return self._request("DELETE", _path("generations", id))

    def get_generations_by_user_id(self, user_id: str, limit: Page = None, offset: Page = None) -> Result:
        """GET /generations/user/{userId} -> generations: one page (API default 10) of a user's generations."""
        return self._request("GET", _path("generations", "user", user_id), params=_page(limit, offset))

    def create_generation_v2(self, request: Union[GenerationV2Request, Body]) -> Result:
        """POST /v2/generations -> generationId: start a generation (or generate.generationId; see generation_id())."""
        return self._create("/v2/generations", request, GenerationV2Request)

    def get_models_v2(self) -> Result:
        """GET /v2/models -> productionApiAvailableModels: the v2 models and their parameter schemas."""
        return self._request("GET", "/v2/models")

    def get_user_info(self) -> Result:
        """GET /me -> user_details: ``user_details[0]`` has ``user.id``, ``apiConcurrencySlots`` and balances."""
        return self._request("GET", "/me")

    def upload_init_image(self, file: _files.Upload, extension: Optional[str] = None) -> Result:
        """POST /init-image -> uploadInitImage: upload an image (path, bytes, binary file) to its presigned S3 form.

        ``extension`` (png, jpg, jpeg, webp) defaults to the path's; the answer's ``id`` is the image's.
        """
        data, extension = _files.read_upload(file, extension)
        upload = answered(self._request("POST", "/init-image", json={"extension": extension}), "uploadInitImage") or {}
        url, fields = _files.upload_form(upload)
        self._send("POST", url, data=fields, files={"file": (f"image.{extension}", data)}, headers=self._keyless())
        return upload

    def get_init_image_by_id(self, id: str) -> Result:
        """GET /init-image/{id} -> init_images_by_pk: an uploaded image (None for an unknown id)."""
        return self._request("GET", _path("init-image", id))

    def delete_init_image_by_id(self, id: str) -> Result:
        """DELETE /init-image/{id} -> delete_init_images_by_pk: delete an uploaded image (None if unknown)."""
        return self._request("DELETE", _path("init-image", id))

    @retired_upstream("texture")
    def create_texture_generation(self, request: Union[CreateTextureGenerationRequest, Body]) -> Result:
        """POST /generations-texture -> textureGenerationJob: texture a 3D model; wait on its ``id`` (legacy)."""
        _retired("texture")
        return self._create("/generations-texture", request, CreateTextureGenerationRequest)

    @retired_upstream("texture")
    def get_texture_generation_by_id(self, id: str, limit: Page = None, offset: Page = None) -> Result:
        """GET /generations-texture/{id} -> model_asset_texture_generations_by_pk: one, its images paged (legacy)."""
        _retired("texture")
        return self._texture_generation(id, limit, offset)

    def _texture_generation(self, id: str, limit: Page = None, offset: Page = None) -> Result:
        return self._request("GET", _path("generations-texture", id), params=_page(limit, offset))

    @retired_upstream("texture")
    def delete_texture_generation_by_id(self, id: str) -> Result:
        """DELETE /generations-texture/{id} -> delete_model_asset_texture_generations_by_pk: delete one (legacy)."""
        _retired("texture")
        return self._request("DELETE", _path("generations-texture", id))

    @retired_upstream("texture")
    def get_texture_generations_by_model_id(self, model_id: str, limit: Page = None, offset: Page = None) -> Result:
        """GET /generations-texture/model/{modelId} -> model_asset_texture_generations: a 3D model's (legacy)."""
        _retired("texture")
        return self._request("GET", _path("generations-texture", "model", model_id), params=_page(limit, offset))

    @retired_upstream("svd")
    def create_svd_motion_generation(self, request: Union[CreateSvdMotionGenerationRequest, Body]) -> Result:
        """POST /generations-motion-svd -> motionSvdGenerationJob: a video of an image; wait on its ``generationId``."""
        _retired("svd")
        return self._create("/generations-motion-svd", request, CreateSvdMotionGenerationRequest)

    def create_lcm_generation(self, request: Union[CreateLcmGenerationRequest, Body]) -> Result:
        """POST /generations-lcm -> lcmGenerationJob: a realtime generation; ``imageDataUrl`` lists data URLs."""
        return self._create("/generations-lcm", request, CreateLcmGenerationRequest)

    def perform_inpainting_lcm(self, request: Union[LcmInpaintingRequest, Body]) -> Result:
        """POST /lcm-inpainting -> lcmGenerationJob: regenerate the masked area, answered at once."""
        return self._create("/lcm-inpainting", request, LcmInpaintingRequest)

    def perform_instant_refine(self, request: Union[LcmInstantRefineRequest, Body]) -> Result:
        """POST /lcm-instant-refine -> lcmGenerationJob: refine an image, answered at once."""
        return self._create("/lcm-instant-refine", request, LcmInstantRefineRequest)

    def perform_alchemy_upscale_lcm(self, request: Union[LcmUpscaleRequest, Body]) -> Result:
        """POST /lcm-upscale -> lcmGenerationJob: an Alchemy upscale, answered at once and stored."""
        return self._create("/lcm-upscale", request, LcmUpscaleRequest)

    # --- waiting, downloading and saving results -------------------------------------------------

    def wait_for_generation(
        self, id: Union[str, Body], timeout: float = WAIT_TIMEOUT, poll_interval: float = POLL_INTERVAL,
        on_poll: OnPoll = None,
    ) -> Result:
        """Poll GET /generations/{id} -> generations_by_pk, returned once COMPLETE; ``id`` may be a create response.

        One COMPLETE with no image to download yet (``generated_images`` [], or none with a URL) is asked again for up
        to a minute. Checks at once, then every ``poll_interval`` s, growing 1.5x up to 12 s (or ``poll_interval``),
        none after ``timeout``; ``on_poll(status, seconds elapsed)`` after each answer. A check that fails with a 5xx,
        a 429 or no whole answer (its retries spent; not a connection never made) is waited out, a Retry-After
        honoured where ``timeout`` allows.
        LeonardoError if it FAILED, is unknown, a check is refused (another 4xx, a bad body) or it outlives
        ``timeout`` (saying why).
        """
        fetch, id = self.get_generation_by_id, _job_id(id, texture=False)
        return self._wait(fetch, "generations_by_pk", "generation", id, timeout, poll_interval, on_poll)

    @retired_upstream("texture")
    def wait_for_texture_generation(
        self, id: Union[str, Body], timeout: float = TEXTURE_TIMEOUT, poll_interval: float = POLL_INTERVAL,
        on_poll: OnPoll = None,
    ) -> Result:
        """Poll GET /generations-texture/{id} -> model_asset_texture_generations_by_pk, as wait_for_generation does.

        ``id`` (or the create response), ``timeout`` (here 600 s), ``poll_interval`` and ``on_poll`` work as there.
        """
        # Not warned again (the create call was), nor from each poll, inside this module (unseen by default filters).
        fetch, key = self._texture_generation, "model_asset_texture_generations_by_pk"
        return self._wait(fetch, key, "texture generation", _job_id(id, texture=True), timeout, poll_interval, on_poll)

    def _wait(
        self, fetch: Callable[[str], Result], key: str, what: str, id: str, timeout: float, poll_interval: float,
        on_poll: OnPoll,
    ) -> Result:
        check_number("timeout", timeout, MIN_SECONDS, MAX_SECONDS)
        check_number("poll_interval", poll_interval, MIN_SECONDS, MAX_SECONDS)
        if on_poll is not None and not callable(on_poll):
            raise TypeError(f"on_poll must be a function (status, seconds), not {type(on_poll).__name__}")
        started, interval, empty_since = time.monotonic(), float(poll_interval), None  # since COMPLETE with no images
        while True:  # bounded by the deadline, started + timeout
            answer, failed = self._poll(fetch, id)
            if answer is not None:
                found = _polled_job(answer, key, what, redact(id, self._key))  # as the answer, and errors, show it
                status = str(found.get("status"))
                if on_poll is not None:
                    on_poll(status, time.monotonic() - started)
                done = status == "COMPLETE"
                if done and _files.no_file_yet(found):  # [], or no image with a URL: not finished
                    empty_since = time.monotonic() if empty_since is None else empty_since
                    done = time.monotonic() - empty_since >= EMPTY_GRACE
                else:  # (gone back from COMPLETE: the deadline ends it as still running)
                    empty_since = None
                if done:
                    return found
                if status == "FAILED":
                    raise LeonardoError(f"{what} {redact(id, self._key)} FAILED", body=found)
            left = started + timeout - time.monotonic()
            if left <= 0 and empty_since is not None:
                return found  # COMPLETE with no images yet: as the API answered it
            if left <= 0:
                after = f"after {time.monotonic() - started:.1f}s (timeout {timeout:g}s)"
                if failed is not None:
                    message = f"{what} {redact(id, self._key)} still unknown {after}, its last poll failed: {failed}"
                    raise LeonardoError(message) from failed
                raise LeonardoError(f"{what} {redact(id, self._key)} still {status} {after}", body=found)
            pause = interval
            if failed is not None and failed.retry_after is not None and failed.retry_after <= left:
                pause = max(interval, failed.retry_after)  # the server's word, where the deadline allows it
            self.retry.closed.wait(min(pause, left))  # close() ends it, and the next GET raises
            interval = min(interval * POLL_BACKOFF, max(MAX_POLL_INTERVAL, poll_interval))

    def _poll(self, fetch: Callable[[str], Result], id: str) -> Tuple[Optional[Result], Optional[LeonardoError]]:
        """One check of a wait: (the answer, None), or (None, the error) of a failure that may pass (a 5xx, a 429,
        no answer: its retries spent) and so is waited out. A refusal (4xx, a malformed key's 500), a bad body or a
        closed client raise."""
        try:
            return fetch(id), None
        except LeonardoError as exc:
            code = exc.status_code
            # A 2xx whose body broke off (its resends spent) passes as a dropped connection does; a bad body does not,
            # nor a connection never made (a wrong address, no network: said at once, as before anything was sent).
            broke = (code or 0) < 300 and isinstance(exc.__cause__, (OSError, urllib3.exceptions.HTTPError))
            passes = code is None or (code >= 500 and not key_malformed(exc)) or code == 429 or broke
            if self.closed or never_sent(exc) or not passes or exc._answered:  # a hook's failure: the caller's
                raise
            return None, exc

    def download_image(self, url: str, path: _files.PathLike) -> str:
        """Stream ``url`` (no API key) to ``path`` in an existing folder, renamed in when whole; returns ``path``."""
        target = _files.check_file_path(path)
        return self._download(url, lambda content_type: target)

    def save_results(self, result: Mapping[str, Any], folder: _files.PathLike) -> List[str]:
        """Save every file of a COMPLETE generation, texture or LCM result into ``folder``; returns the paths.

        ``result`` may be the response holding it; an image with no URL yet is skipped. ``folder`` is created if
        needed (not for a result with no file: ``[]``); names come from ids (``<generation>_<image>.png``...; an LCM
        result's from its requestTimestamp and a digest of its images) and replace files. ValueError if not COMPLETE
        (a create call's response: wait for it first) or ``folder`` is a file (with files to save); nothing is
        written if its images are malformed.
        """
        self._check_open()  # before any folder or file is made: an LCM result's need no request
        created = _created_job(result) if isinstance(result, Mapping) else None
        if created is not None:  # its images are not made yet
            wait = "wait_for_texture_generation" if created[1] == "id" else "wait_for_generation"
            raise ValueError(f"that is a create call's response, not a result: wait for it first ({wait}(it)), "
                             "then save what that returns")
        return _files.save_results(result, folder, self._download)


def user_details(answer: Mapping[str, Any]) -> Dict[str, Any]:
    """The account in a GET /me answer (``user_details[0]``: ``user``, ``apiConcurrencySlots``...).

    Its ``user`` (``id``, ``username``) is always a dict, ``{"user": {}}`` when the answer holds none.
    """
    details = answer.get("user_details")
    found = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    return found if isinstance(found.get("user"), dict) else {**found, "user": {}}


def generation_id(response: Mapping[str, Any]) -> str:
    """The id to wait for, from the response of any create call (v1 or v2, image, motion, texture)."""
    if isinstance(response, Mapping):
        _check_not_another_answer(response, "not a create response: generation_id() reads one; to wait, pass {}")
    job, id_field = create_job(response)
    return str(job[id_field])


def create_job(response: Mapping[str, Any]) -> Tuple[Mapping[str, Any], str]:
    """The job a create call's response describes (its id, cost...), and the key of its id."""
    if not isinstance(response, Mapping):
        raise TypeError(f"response must be a dict, not {type(response).__name__}")
    found = _created_job(response)
    if found is not None:
        return found
    said = message_from(response)  # an error in a 200 ("Check the body shape", API_FACTS 1.3)
    # The call that answered it ran: it may have made one all the same.
    raise LeonardoError(f"no generation id in the response{f': {said}' if said else ''} (keys: {_keys(response)}); "
                        f"{MAY_HAVE_BEEN_MADE}")


def _created_job(response: Mapping[str, Any]) -> Optional[Tuple[Mapping[str, Any], str]]:
    """create_job's answer, or None if ``response`` is no create call's response."""
    for job_key, id_field in CREATE_JOBS:
        job = response.get(job_key) if job_key else response
        if isinstance(job, Mapping) and is_id(job.get(id_field)):
            return job, id_field
    return None


def answered(answer: Mapping[str, Any], key: str, of: str = "") -> Any:
    """``answer[key]``; LeonardoError if the answer holds no such key (an error in a 200: "Check the body shape",
    API_FACTS 1.3, or another shape): not to be read as null, nor taken for the answer asked for."""
    if key not in answer:
        said = message_from(answer) or f"keys: {_keys(answer)}"
        raise LeonardoError(f"the API answered no {key}{of} ({said})", body=dict(answer))
    return answer[key]


def _keys(answer: Mapping[str, Any]) -> str:
    """What an answer holds, for a message: its first keys (50 are more than cut() shows), or "none"."""
    return cut(", ".join(map(str, itertools.islice(answer, 50)))) or "none"


def _polled_job(answer: Result, key: str, what: str, id: str) -> Result:
    """The job under ``key`` in a poll's answer: LeonardoError if there is none or it is another one."""
    found = answered(answer, key, f" for {what} {shown(id)}")
    if not isinstance(found, dict):
        said = "null" if found is None else f"a JSON {type(found).__name__}, not an object"
        raise LeonardoError(f"no {what} with id {shown(id)} (the API answered {key}: {said})")
    if id_key(found.get("id", id)) != id_key(id):
        raise LeonardoError(f"asked for {what} {shown(id)}, the API answered {what} {shown(found['id'])}", body=found)
    return found


def _job_id(id: Union[str, Body], texture: bool) -> str:
    """The id to wait on: as given, or from a create response of the kind waited for."""
    if not isinstance(id, Mapping):
        return id  # a str, or what the GET refuses with a TypeError
    _check_not_another_answer(id, "not an id or a create response: pass {} (or the create response)")
    job, id_field = create_job(id)
    if texture != (id_field == "id"):  # of CREATE_JOBS, only the texture job keeps its id in "id"
        what, wait = ("not a", "wait_for_generation") if texture else ("a", "wait_for_texture_generation")
        raise ValueError(f"that is {what} texture generation's create response: wait with {wait}")
    return str(job[id_field])


def _check_not_another_answer(given: Mapping[str, Any], advice: str) -> None:
    """ValueError if ``given``, passed for a create response, is plainly another answer (a generation: it lists
    images; a GET's answer, an LCM result, another call's): the caller's mix-up, said before anything is sent (not
    "it may have been made"). ``advice``, the caller's words for what it takes, formats the id to pass. An odd one
    (an error in a 200, a job of another shape) is the API's: create_job says it may have been made."""
    if _created_job(given) is not None or message_from(given):
        return
    held = [key for key in _files.POLLED_KEYS if key in given]
    other = next((key for key in OTHER_ANSWERS if key in given), None)
    if held and given[held[0]] is None:  # the API's answer for an id it does not know
        what, its_id = f"a GET call's answer of no job ({held[0]} is null: no such id)", "the id of a job"
    elif held:
        what, its_id = f"a GET call's answer (it holds {held[0]})", f"{held[0]}['id']"
    elif "lcmGenerationJob" in given:  # answered at once: nothing to wait for
        raise ValueError("that is an LCM result, not a create response: its images are in it, "
                         "save them with save_results(it)")
    elif other is not None:
        what, its_id = f"{OTHER_ANSWERS[other]} (it holds {other})", "the id of a job"
    elif "id" in given and any(key in given for key in _files.IMAGE_KEYS):  # {id, status} alone: a job, the API's
        what, its_id = f"a generation (status {shown(given.get('status'), 20)})", "its id, generation['id']"
    else:
        return
    raise ValueError(f"that is {what}, {advice.format(its_id)}")


def _retired(kind: str) -> None:
    warnings.warn(RETIRED[kind], DeprecationWarning, stacklevel=3)


# --- no credentials but the key: not ~/.netrc's, not a session's ---------------------------------


class _ApiAdapter(RetryAdapter):
    """The adapter of a Client's API roots: its retry rule, and a weak reference to the Client."""

    def __init__(self, owner: Client, pool_maxsize: int) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=owner.retry)
        self.owner = weakref.ref(owner)
        self.replaced: Dict[str, Optional[BaseAdapter]] = {}  # each root's adapter before it: put back at close()

    def session_verify(self) -> Any:
        owner = self.owner()
        return True if owner is None else owner._session.verify  # a caller's session may say False, or a CA bundle


# Held while a Client reads and replaces a session's adapters: two Clients sharing a session, one made
# or closed while the other is, would each replace the dict with a copy missing the other's change.
_MOUNTING = threading.RLock()  # reentrant: see _start_counting


class _ForkAware(Protocol):
    def _forked(self) -> None: ...


_LIVE: "weakref.WeakSet[_ForkAware]" = weakref.WeakSet()


def fork_aware(live: _ForkAware) -> None:
    """Have ``live._forked()`` run in each process forked from this one while it lives (a Client, a batch's journal)."""
    _LIVE.add(live)


def _after_fork_in_child() -> None:
    """In a forked process, before any thread runs: new locks for those the parent's threads may have held
    (held for ever here), and what each live object does there. Cheap and never blocking: it runs in every forked
    child, whatever it goes on to do."""
    global _MOUNTING
    _MOUNTING = threading.RLock()
    for live in list(_LIVE):
        live._forked()


def _new_locks(session: requests.Session) -> None:
    """New locks for a session's cookie jar and urllib3's pools in it: the child's first call lets go of the
    pools and reads cookies, and would wait for ever on a lock a parent's thread held at the fork (for a few
    microseconds in each call). Private parts of http.cookiejar and urllib3 (1.26 and 2.x alike): getattr."""
    if hasattr(session.cookies, "_cookies_lock"):
        setattr(session.cookies, "_cookies_lock", threading.RLock())
    for adapter in set(session.adapters.values()):
        for manager in [getattr(adapter, "poolmanager", None), *getattr(adapter, "proxy_manager", {}).values()]:
            pools = getattr(manager, "pools", None)  # a RecentlyUsedContainer of connection pools
            if hasattr(pools, "lock"):
                setattr(pools, "lock", threading.RLock())
            for pool in list(getattr(pools, "_container", {}).values()):
                idle = getattr(pool, "pool", None)  # a queue.LifoQueue of its idle connections
                if isinstance(idle, queue.Queue):
                    idle.mutex = threading.Lock()  # and the three conditions on it, as queue.Queue() makes them
                    idle.not_empty, idle.not_full = threading.Condition(idle.mutex), threading.Condition(idle.mutex)
                    idle.all_tasks_done = threading.Condition(idle.mutex)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _remount(session: requests.Session, changes: Mapping[str, Optional[BaseAdapter]]) -> None:
    """Mount (None: unmount) adapters at prefixes, in a new dict, longest prefix first as requests keeps
    them: a request under way in another thread reads on in the old one (mount() would change it under it)."""
    adapters = [(prefix, a) for prefix, a in {**session.adapters, **changes}.items() if a is not None]
    session.adapters = collections.OrderedDict(sorted(adapters, key=lambda pair: -len(pair[0])))


def _check_not_serving(session: requests.Session, prefix: str) -> None:
    """Refuse a session on which an open Client is mounted for ``prefix``: a second Client's
    adapter would replace its retry rule, and its close() would end the other's retries."""
    same = [a for p, a in session.adapters.items() if p.lower() == prefix.lower()]  # as requests matches it
    other = same[0].owner() if same and isinstance(same[0], _ApiAdapter) else None
    if other is not None and not other.closed:
        raise ValueError("that session already serves an open Client for this base_url: share that Client (it is "
                         "thread-safe), or give each Client its own session")


class _Session(requests.Session):
    """The client's own session: on a redirect, credentials are dropped as requests drops them, and
    none are added from ~/.netrc (requests looks it up again on every hop, whatever the request's auth);
    a hop to a loopback host goes direct, as the first does (requests would add the environment's proxy);
    a hop to https carries no proxy credentials (they go in the CONNECT alone, as requests 2.31 has it); no hop
    carries a cookie (see _mount)."""

    def rebuild_proxies(self, prepared_request: requests.PreparedRequest, proxies: Any) -> Any:
        proxies = super().rebuild_proxies(prepared_request, proxies)  # type: ignore[no-untyped-call,unused-ignore]
        url = urlsplit(str(prepared_request.url))
        direct = _files.is_loopback(url.hostname or "")
        if direct or url.scheme == "https":
            # requests < 2.31 put them on the request itself: the tunnel took them to the host (CVE-2023-32681).
            prepared_request.headers.pop("Proxy-Authorization", None)
        return {} if direct else proxies

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        old, new = str(response.request.url), str(prepared_request.url)
        if self.should_strip_auth(old, new):  # type: ignore[no-untyped-call,unused-ignore]
            prepared_request.headers.pop("Authorization", None)
        prepared_request.headers.pop("Cookie", None)  # one a 3xx set: requests' jar for the hop keeps it, ours none


def _noting(answered: List[requests.PreparedRequest], session: requests.Session) -> Optional[Dict[str, List[Any]]]:
    """A request's response hooks: one noting each answered request in ``answered``, then the session's own (which a
    request's replace), so that what they raise is known to come after an answer; None (no cost on every call) for a
    session with none, where nothing of the caller's runs after the answer."""
    own = session.hooks.get("response")
    if not own:
        return None
    return {"response": [lambda answer, **_: answered.append(answer.request), *([own] if callable(own) else own)]}


def _as_given(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth that changes nothing: with none, requests would put ~/.netrc's (its "default" entry
    matches every host) or the session's auth in place of the key, or add it to a download."""
    return request


# --- checks of arguments and answers: all argument checks run before anything is sent ---------


def _read_whole(response: requests.Response, most: int, key: str, note: str) -> None:
    """Read the body into ``response.content``; LeonardoError past ``most`` bytes, decompressed."""
    body = bytearray()
    try:
        for chunk in response.iter_content(DOWNLOAD_CHUNK):
            body += chunk
            if len(body) > most:
                message = _noted(note, f"answer of more than {most // 2 ** 20} MiB: not read")
                raise LeonardoError.bad_body(response, message, None, key=key)
        response._content = bytes(body)
    finally:
        body.clear()  # a kept error's traceback holds this frame (a body broke off, too big): not what was read


def _chunks(response: requests.Response, method: str, url: str, key: str, note: str) -> Iterator[bytes]:
    """A download's body; LeonardoError at its end if it was cut short or empty (before the file is renamed in)."""
    empty = True
    for chunk in response.iter_content(DOWNLOAD_CHUNK):
        empty = False
        yield chunk
    check_complete(response, method, url, key, note)
    if empty:
        raise LeonardoError.bad_body(response, _noted(note, "the server answered an empty body, not a file"), None,
                                     key=key)


def _path(*segments: str) -> str:
    """Our literal segments and the caller's id, percent-encoded as exactly one segment: a non-empty str,
    not "." or ".." (requests would resolve those and climb out)."""
    *fixed, ident = segments
    if not is_id(check_text(check_type("id", ident, str), "id")):
        raise ValueError(f"invalid id {shown(ident)}: must be a non-empty string, not '.' or '..'")
    return "/" + "/".join(fixed) + "/" + quote(ident, safe="")


def _page(limit: Optional[int], offset: Optional[int]) -> Optional[Dict[str, int]]:
    pairs = (("limit", limit), ("offset", offset))
    params = {name: check_number(name, value, 0, MAX_INT, integer=True) for name, value in pairs if value is not None}
    return params or None


def v2_root(base_url: str) -> Optional[str]:
    """The v2 API's root beside v1's: ".../api/rest/v1" -> ".../api/rest/v2" (None: no v1 suffix to swap)."""
    return base_url[: -len("v1")] + "v2" if base_url.endswith("/v1") else None


def _check_api_key(api_key: Optional[str]) -> str:
    """The key given, else LEONARDO_API_KEY's; errors name where it came from, never echo it."""
    name = "api_key" if api_key is not None else API_KEY_ENV
    api_key = check_type(name, api_key if api_key is not None else os.environ.get(API_KEY_ENV), (str, type(None)))
    if not api_key or not api_key.strip():
        raise LeonardoError.not_sent(f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable")
    if not is_header_text(api_key):
        # A line break would let the key inject headers, and a non-ASCII one fails on every call
        # (header values are latin-1) with a raw UnicodeEncodeError.
        raise ValueError(f"{name} contains a control or non-ASCII character (line break?); check how it was read")
    api_key = api_key.strip()
    if " " in api_key:  # a key holds none: it would be sent as "Bearer <all of it>", which Leonardo answers with a 500
        bearer = api_key.split()[0].lower() == "bearer"
        said = "starts with 'Bearer ': give the key alone, without it" if bearer else "holds a space, which no key has"
        raise ValueError(f"{name} {said}")
    return api_key


def _check_base_url(base_url: Optional[str], api_key: str) -> str:
    """The URL given (None: not given; "" is no URL), else LEONARDO_BASE_URL's unless unset or blank (as a
    shell's ``LEONARDO_BASE_URL= cmd``), else the public API's; stripped, checked, never with userinfo."""
    name = "base_url" if base_url is not None else BASE_URL_ENV
    url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
    url = check_type(name, url, str).strip()
    # Quoted without userinfo (a password) or the key, and not at all without a scheme: it may be the key itself,
    # the two variables swapped.
    quoted = "://" in url or not url
    said = f"{name} {shown(redact(without_userinfo(check_text(url, name)), api_key))}" if quoted else name
    if any(c.isspace() or not c.isprintable() for c in url) or "?" in url or "#" in url:
        raise ValueError(f"{said} has a space, control character, query string or fragment: give the API root")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{said} is not a valid URL ({cut(str(exc))})") from None
    if not _files.is_http(url):
        raise ValueError(f"{said} is not an http(s) URL with a valid host (no DNS label empty or over 63 characters)")
    if "@" in parts.netloc:  # requests would send it as Basic auth, replacing the API key's header
        raise ValueError(f"{said} must not hold user:password@ (proxy credentials go in a session's proxies)")
    if parts.scheme == "http" and not _files.is_loopback(parts.hostname):
        raise ValueError(f"refusing plain-http {said}: the API key would travel unencrypted (loopback hosts only)")
    return str(url.rstrip("/"))
