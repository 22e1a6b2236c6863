"""The retry rule, whole: which failed requests are sent again, how long to wait, when to give up.

GET and DELETE are retried on connection errors, read timeouts, 429 and 500/502/503/504.
POST (every create/perform call costs credits) is retried only when the server cannot have
acted on it: a connection that never reached it, and 429. It is never re-sent after a 5xx,
a read timeout or any other error once the request may have been sent (a TLS error
mid-exchange...), so a retry cannot bill a generation twice (urllib3's default
allowed_methods leaves POST out of status and read retries; is_retry adds 429 back, and
increment refuses the "other" errors urllib3 would retry whatever the method).

A TLS certificate that cannot be verified (or a CA bundle that holds none) is not retried, nor a proxy's refusal
of the tunnel (a 407, a 301: any answer but a 5xx): each fails the same on every try. A proxy's 5xx to it is a
connection never made.

A Retry-After up to the cap is honoured; a longer one is not slept at all: the request
gives up at once and the caller gets that response. Backoff is exponential with jitter,
capped. Only constructor arguments both urllib3 1.26 and 2.x accept are used; backoff,
jitter and the cap are implemented here rather than through 2.x-only arguments.

A GET whose 2xx body breaks off after the headers, where urllib3's retries end, is sent again
with what is left of the same rule (``resend_after_body``); a DELETE is not (done once, it would
answer null, as for an id never there), nor a POST.

Inside ``posts_not_retried()`` a thread's POSTs are not retried at all: run_batch re-sends its
own, journaling each attempt's time, so that none can reach the server later than it knows.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import math
import random
import ssl
import threading
import time
from itertools import takewhile
from typing import Any, FrozenSet, Iterator, Optional, TypeVar, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ProtocolError, ResponseError, SSLError
from urllib3.util.retry import Retry

DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 0.5
DEFAULT_MAX_BACKOFF = 30.0
# A synchronous call should not block for an hour on a server's say-so: longer waits fail fast.
DEFAULT_MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The longest error body the client reads (client.py): a retried answer longer, or of no stated length, is not read.
MAX_ERROR_BODY = 1024 * 1024
# A request body longer goes to urllib3 as a file, sent block by block, each block with a deadline of its own: as one
# bytes object, all of it had to go within the connect timeout (the socket's while a request is sent).
STREAMED_BODY = 64 * 1024

_R = TypeVar("_R", bound="LeonardoRetry")
# This thread's calls: .posts_not_retried (set by posts_not_retried()); .resumed, the state of the rule its requests
# through a RetryAdapter start from (None: afresh; set by Client._send).
_thread = threading.local()


@contextlib.contextmanager
def posts_not_retried() -> Iterator[None]:
    """Inside, the POSTs this thread sends are not retried, whatever the client's policy."""
    before, _thread.posts_not_retried = getattr(_thread, "posts_not_retried", False), True
    try:
        yield
    finally:
        _thread.posts_not_retried = before


class RetryAdapter(HTTPAdapter):
    """An HTTPAdapter whose retry rule, for a GET sent again after its body broke off, goes on where it was;
    a body short of its Content-Length raises on urllib3 1.26 too; an empty CA bundle setting verifies."""

    def close(self) -> None:
        # PoolManager.clear() (urllib3 2, and 1.26 from 1.26.5 or so) leaves a pool's sockets to its finalizer, which
        # a retried call's traceback (a cycle back to the pool) holds off until a garbage collection: closed here.
        for manager in (self.poolmanager, *self.proxy_manager.values()):
            for key in manager.pools.keys():
                pool = manager.pools.get(key)
                if pool is not None:
                    pool.close()
        super().close()  # type: ignore[no-untyped-call,unused-ignore]

    @property
    def max_retries(self) -> Retry:
        return getattr(_thread, "resumed", None) or self._rule

    @max_retries.setter
    def max_retries(self, rule: Retry) -> None:
        self._rule = rule

    def send(
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, verify: Any = True,
        cert: Any = None, proxies: Any = None,
    ) -> requests.Response:
        # requests 2.25-2.27 read an empty CURL_CA_BUNDLE or REQUESTS_CA_BUNDLE as verify="", which the
        # adapter takes as "do not verify" (the key went to any server): as in 2.28, the session's setting holds.
        if verify == "":
            verify = self.session_verify()
        if (request.url or "").lower().startswith("https:"):  # a proxy's password goes in its CONNECT only: requests
            request.headers.pop("Proxy-Authorization", None)  # 2.26 also put it in the request, to the server itself
        body = request.body
        if isinstance(body, bytes) and len(body) > STREAMED_BODY:  # its Content-Length already set
            request = request.copy()  # the caller's left as it was
            request.body = io.BytesIO(body)  # type: ignore[assignment,unused-ignore]  # urllib3 rewinds it for a retry
        # By name, as requests passes them (responses' mock of send takes no others); types-requests < 2.31.0.7
        # (the stubs that go with urllib3 1.26) leave send unannotated.
        response: requests.Response = super().send(  # type: ignore[no-untyped-call,unused-ignore]
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )
        if response.is_redirect:  # its body, which requests would read whole (no cap: a gzip bomb), is not needed
            response.raw.close()
            response._content, response._content_consumed = b"", True  # type: ignore[attr-defined,unused-ignore]
        return response

    def session_verify(self) -> Any:
        """The verify setting of the session it is mounted on: the client's own, which verifies certificates."""
        return True

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        # urllib3 1.26 ends a body short of its Content-Length silently and pools its connection, dead
        # over TLS (a close_notify, TCP still open): the next request on it failed. As 2.x does, raise.
        resp.enforce_content_length = True
        # types-requests < 2.31.0.7 (the stubs that go with urllib3 1.26) leave build_response unannotated.
        response: requests.Response = super().build_response(req, resp)  # type: ignore[no-untyped-call,unused-ignore]
        return response


def resend_after_body(
    state: Optional[Retry], spent: Optional[Retry], method: str, url: str, status: Optional[int], why: str
) -> Optional[Retry]:
    """What is left of the rule once a 2xx body broke off (``spent``: the state the try ended with,
    having started from ``state``), its wait slept; None when the request is not sent again: not a
    GET, not a 2xx (urllib3 retried an error status), no retry left, or the client closed."""
    if spent is None or (state is not None and len(spent.history) < len(state.history)):
        spent = state  # a caller's adapter started afresh: count on from what was spent before
    if method != "GET" or spent is None or not 200 <= (status or 0) < 300:
        return None
    try:
        spent = spent.increment(method, url, error=ProtocolError(why))
        spent.sleep()
    except Exception:  # none left: MaxRetryError; the client closed meanwhile
        return None
    return spent


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    repeated = [part.strip() for part in value.split(",")]  # two headers (the origin's, a proxy's), joined
    if len(repeated) > 1 and all(part.isascii() and part.isdigit() for part in repeated):
        value = max(repeated, key=int)
    # Seconds, in ASCII digits only ("²".isdigit() too); a fraction is not HTTP's, but harmless.
    if value.isascii() and value.replace(".", "", 1).isdigit():
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None  # 400 digits are inf
    try:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())
    except (ValueError, OverflowError, IndexError):  # a year out of range; Python 3.8's parser on "1 Jan , 0"
        return None


def certificate_refused(error: Any) -> bool:
    """Whether urllib3's ``error`` is a TLS certificate that could not be verified (a CA bundle, or a proxy's,
    to set up), or a CA bundle or client certificate OpenSSL could not load (see file_unread): the handshake
    failed, or never began, so the request never went. An https proxy's own is inside a ProxyError."""
    error = getattr(error, "original_error", error)
    return isinstance(error, SSLError) and any(
        isinstance(arg, ssl.SSLCertVerificationError) or file_unread(arg) for arg in error.args
    )


def file_unread(error: Any) -> str:
    """Which file OpenSSL refused to load, before any TLS handshake, when ``error`` says so as OpenSSL 3.0 does: "CA"
    (a CA bundle with no certificate in it, a DER .cer or text: [X509: NO_CERTIFICATE_OR_CRL_FOUND]; a PEM block
    that is none: [X509] PEM lib), "cert" (the session's client certificate: no PEM certificate or key in its files,
    [SSL] PEM lib; a key of another, [X509: KEY_VALUES_MISMATCH] or [SSL: NO_CERTIFICATE_ASSIGNED]), else ""."""
    if not isinstance(error, ssl.SSLError):
        return ""
    pem_lib = "PEM lib" in str(error)  # no reason given: the library's name says whose file it was
    # ssl.match_hostname's error (a name mismatch on urllib3 < 1.26.10) has neither
    reason, library = getattr(error, "reason", None), getattr(error, "library", None)
    if reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED") or pem_lib and library == "SSL":
        return "cert"
    return "CA" if reason == "NO_CERTIFICATE_OR_CRL_FOUND" or pem_lib else ""


_TUNNEL_FAILED = "Tunnel connection failed: "  # http.client's OSError: a proxy answered CONNECT with no 200


def tunnel_failed(error: Any) -> str:
    """The proxy's answer ("407 Proxy Authentication Required") when urllib3's ``error`` is a proxy that did not
    open the tunnel to the server, else "": nothing went past the proxy. A 5xx (it could not reach the server) may
    pass: a connection never made; any other (a 4xx, a 3xx) refuses every try the same."""
    error = getattr(error, "original_error", error)
    text = str(error) if type(error) is OSError else ""
    return text[len(_TUNNEL_FAILED):] if text.startswith(_TUNNEL_FAILED) else ""


def tunnel_refused(error: Any) -> bool:
    """Whether ``error`` is a proxy's answer to CONNECT that every try gets the same (not a 5xx): see tunnel_failed."""
    return tunnel_failed(error)[:1] not in ("", "5")


def reentrant(event: threading.Event) -> threading.Event:
    """``event`` with a reentrant lock: Client.close() may set it in a signal handler that interrupted a wait
    on it in the same thread, which holds its lock a moment (a plain one would be waited for for ever).
    Private (CPython's Event keeps a Condition in ``_cond``, on 3.8 as on 3.13): setattr."""
    setattr(event, "_cond", threading.Condition(threading.RLock()))
    return event


class ClientClosed(ResponseError):
    """Client.close() ended a retry's wait: the request is not sent again. ``made_nothing``: no try did anything on
    the server (LeonardoRetry.did_nothing), as a POST's never do (only such a POST is retried); ``status`` and
    ``retry_after``: of the answer it waited after (a 429's...), None after a connection never made."""

    def __init__(self, rule: "LeonardoRetry", response: Any) -> None:
        super().__init__("the Client was closed before its retry")
        self.made_nothing = all(rule.did_nothing(entry.status, entry.error) for entry in rule.history)
        self.status: Optional[int] = getattr(response, "status", None)
        headers = getattr(response, "headers", None) or {}
        self.retry_after = parse_retry_after(headers.get("Retry-After"))


class LeonardoRetry(Retry):
    """urllib3 Retry with the POST rule, a Retry-After cap and jittered, capped backoff."""

    # urllib3's adds 413 with a Retry-After: RETRY_STATUSES are all. (Cast: stubs disagree on the kind of variable.)
    RETRY_AFTER_STATUS_CODES = cast(FrozenSet[int], frozenset())

    def __init__(
        self, *args: Any, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER, max_backoff: float = DEFAULT_MAX_BACKOFF,
        closed: Optional[threading.Event] = None, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after
        self.max_backoff = max_backoff
        self.closed = closed or reentrant(threading.Event())  # set by Client.close(): nothing is sent after it

    def new(self: _R, **kw: Any) -> _R:
        # urllib3 rebuilds the object on every increment; carry our own settings across.
        for name in ("max_retry_after", "max_backoff", "closed"):
            kw.setdefault(name, getattr(self, name))
        return super().new(**kw)

    def sleep(self, response: Any = None) -> None:
        # urllib3's own, but woken by close(): a retry after it would open a connection (urllib3 2.x)
        wait = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        if self.closed.wait(wait or self.get_backoff_time()):
            raise MaxRetryError(None, "", ClientClosed(self, response))  # type: ignore[arg-type,unused-ignore]

    def did_nothing(self, status: Optional[int], error: Optional[Exception]) -> bool:
        """Whether a try did nothing on the server: answered 429 (turned away before any work was done), or failed
        with a connection that never reached it, a proxy's tunnel to it included (types-urllib3, for 1.26, lacks
        this private method both versions have). The only tries of a POST that are retried."""
        unreached = error is not None and self._is_connection_error(error)  # type: ignore[attr-defined,unused-ignore]
        return status == 429 or bool(unreached or tunnel_failed(error))

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() == "POST" and self.did_nothing(status_code, None):  # safe to re-send
            return bool(self.total) and not getattr(_thread, "posts_not_retried", False)
        return bool(super().is_retry(method, status_code, has_retry_after))

    def increment(
        self: _R, method: Optional[str] = None, url: Optional[str] = None, response: Any = None,
        error: Optional[Exception] = None, _pool: Any = None, _stacktrace: Any = None,
    ) -> _R:
        if certificate_refused(error) or tunnel_refused(error):
            raise MaxRetryError(_pool, url or "", error)  # as when no retry is left
        if error is not None and (method or "").upper() == "POST":
            if not self.did_nothing(None, error):  # re-raised, as urllib3 does for a read error
                raise error
            if getattr(_thread, "posts_not_retried", False):
                raise MaxRetryError(_pool, url or "", error)  # as when no retry is left
        wait = self.retry_after_over_cap(response)
        if wait is not None:
            # Give up now; with raise_on_status=False the caller gets this very response.
            raise MaxRetryError(_pool, url or "", ResponseError(f"Retry-After {wait:.0f}s exceeds the cap"))
        # urllib3 2.x types this as returning Self; types-urllib3 (for 1.26) as a plain Retry.
        retry: _R = super().increment(  # type: ignore[assignment,unused-ignore]
            method, url, response, error, _pool, _stacktrace
        )
        unread = getattr(response, "length_remaining", None)  # None too when no response, or no length stated
        if response is not None and (unread is None or unread > MAX_ERROR_BODY):
            response.close()  # not read to its end before the retry (urllib3 1.26: whole, into memory; endless: never)
        return retry

    def parse_retry_after(self, retry_after: str) -> float:
        # urllib3 2.x raises InvalidHeader on a value it cannot read, failing the whole request;
        # an unreadable Retry-After is better ignored (the backoff applies).
        return parse_retry_after(retry_after) or 0.0

    def retry_after_over_cap(self, response: Any) -> Optional[float]:
        """The response's Retry-After in seconds when it is longer than the cap, else None."""
        wait = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
        return wait if wait is not None and wait > self.max_retry_after else None

    def get_backoff_time(self) -> float:
        # Only the last run of consecutive errors counts (redirects reset it), as in urllib3.
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if errors <= 1 or not self.backoff_factor:
            return 0.0
        ceiling = min(self.max_backoff, self.backoff_factor * (2 ** (errors - 1)))
        return random.uniform(ceiling / 2, ceiling)  # jitter spreads out clients retrying together

    def gave_up(self, response: Any) -> str:
        """Why a failed response reached the caller: a Retry-After over the cap (on an answer the rule would
        have retried, with a retry left: else the cap stopped nothing), or retries spent."""
        rule = getattr(response.raw, "retries", None) or self  # as it stood for this answer (urllib3 sets it)
        wait = self.retry_after_over_cap(response)
        # urllib3's is_retry is True for a status in the forcelist even with no retry left
        if wait is not None and rule.total and rule.is_retry(str(response.request.method), response.status_code, True):
            return f"server asked to retry after {wait:.0f}s, over the {self.max_retry_after:.0f}s cap"
        history = getattr(rule, "history", ())
        return f"after {len(history)} {'retry' if len(history) == 1 else 'retries'}" if history else ""


def default_retry(
    max_retries: int = DEFAULT_MAX_RETRIES, backoff_factor: float = DEFAULT_BACKOFF_FACTOR,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
) -> LeonardoRetry:
    """The policy Client uses; ``max_retries=0`` turns retries off."""
    return LeonardoRetry(
        total=max_retries, backoff_factor=backoff_factor, status_forcelist=RETRY_STATUSES, raise_on_status=False,
        respect_retry_after_header=True, max_retry_after=max_retry_after,
    )
