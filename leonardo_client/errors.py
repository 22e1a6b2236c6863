"""LeonardoError: the one exception a failed call raises."""

from __future__ import annotations

import codecs
import collections
import http.client
import json
import logging
import math
import os
import re
import ssl
import threading
import traceback
import weakref
from types import CodeType
from typing import AbstractSet, Any, Dict, Iterable, NoReturn, Optional, Set, Tuple, Union
from urllib.parse import quote, urlsplit

import requests
import urllib3.connection
from urllib3.exceptions import (
    ConnectTimeoutError, DecodeError, LocationParseError, LocationValueError, ReadTimeoutError,
)

from ._retry import ClientClosed, certificate_refused, file_unread, parse_retry_after, tunnel_failed, tunnel_refused
from .payloads import cut, is_uuid, shown

__all__ = ["LeonardoError", "may_have_run"]

# Headers that carry a request id on Leonardo's stack (AWS API Gateway / CloudFront), S3 (the upload) or a proxy.
REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-requestid", "x-amz-request-id", "x-amz-cf-id")
_SNIPPET = 200
_SHOWN, _SHOWN_END = 305, 100  # str(err) shows at most this much of a message or URL, this much of its end
_MAX_XML = 64 * 1024  # S3's error documents are a few hundred bytes
REDACTED = "[redacted]"  # stands in for a secret a server echoed back
_USERINFO = re.compile(r"(://)[^/?#]*@")  # anywhere: a pasted URL may start with a space
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection", "urllib3.response")

# A shorter key is no real one (Leonardo's are 36-character UUIDs), and redacting it would
# mangle any text that holds it: "k" would turn "generations_by_pk" into "generations_by_p[redacted]".
MIN_SECRET_LENGTH = 8
BROKE_OFF = "connection broke while reading the response"  # before its end: a body cut short


class LeonardoError(Exception):
    """A call to the Leonardo API failed.

    Attributes:
        message: what went wrong; the API's own ``error`` text when its body has one.
        status_code: the HTTP status of the answer at fault: an error status, or a success status whose body
            could not be used (not a JSON object, cut short, too large, stopped coming). None when no answer
            arrived (connection error, timeout before its status), and when no answer's status says the
            failure: what a 2xx answer said (a generation that ended FAILED; no id or key where one was asked
            for, as an ``{"error": ...}`` in a 200 gives generation_id()), a wait that timed out, a redirect
            that cannot be followed (a loop, a Location not http(s)), or no request at all (no API key, a file
            not written).
        body: the parsed JSON body, else its text, else None.
        method, url: the request that failed (the URL never holds the API key, nor a ``user:password@``).
        request_id: the server's request id header, if it sent one.
        retry_after: seconds from the ``Retry-After`` header, if the response had one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        body: Any = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)  # keeps args populated, so the error pickles
        self.message = message
        self.status_code = status_code
        self.body = body
        self.method = method
        self.url = without_userinfo(url) if url else url
        self.request_id = request_id
        self.retry_after = retry_after

    _malformed_key = False  # see key_malformed
    _never_sent: Optional[bool] = None  # see never_sent: None, not recorded
    _answered = False  # from_transport: what failed came after an answer (a response hook of the caller's)

    def __str__(self) -> str:
        # Always one line, one a terminal only shows, and short: a server's text may run to megabytes.
        text = printable(cut(" ".join(str(self.message).split()), _SHOWN, _SHOWN_END))
        if self.status_code is not None:
            text = f"HTTP {self.status_code}: {text}"
        if self.method and self.url:
            text = f"{text} ({self.method} {cut(self.url, _SHOWN, _SHOWN_END)})"
        return text

    def __repr__(self) -> str:
        return f"LeonardoError(status_code={self.status_code!r}, message={self.message!r})"

    # The builders take the client's ``key`` and redact it wherever a server echoed it: in the
    # body, the message, the request id, or the URL a redirect led to (which no longer carried it).

    @classmethod
    def from_transport(
        cls, exc: Exception, method: str, url: str, note: str = "", key: str = "", hidden: Tuple[str, ...] = (),
        answered: bool = False,
    ) -> "LeonardoError":
        """Build the error for a request that got no complete response (timeout, refused, dropped...);
        ``hidden``: other secrets never shown (a proxy's user:password, see credentials_of); ``answered``: ``exc``
        came after an answer (a session's response hook), so the request went, whatever its type says."""
        reason = _reason(exc)
        # A proxy that hung up on CONNECT: urllib3 2 says it as any connection lost.
        proxied = requests.exceptions.ProxyError if _raised_in(reason, _TUNNEL) else type(exc)
        kind = requests.exceptions.ReadTimeout if timed_out(exc) else proxied
        template = next(text for error, text in _TRANSPORT_ERRORS if issubclass(kind, error))
        detail = without_userinfo(_detail(exc))  # requests quotes a URL it cannot follow (a redirect to ftp://)
        answer = tunnel_failed(reason)  # "407 Proxy Authentication Required", "503 Service Unavailable"
        if answer:
            template, detail = (PROXY_REFUSED if tunnel_refused(reason) else PROXY_FAILED), answer
        message = template.format(host=urlsplit(url).hostname or "the server", detail=detail)
        hint = _file_hint(exc)
        message = f"{message}; {hint}" if hint else message
        for secret in hidden:
            message = message.replace(secret, REDACTED)
        # close() in a retry's wait after tries that did nothing: the answer it waited after (a 429) says the call's
        # status; after one that may have done something (a 503), a 429 after it would read as "refused": none.
        if isinstance(reason, ClientClosed) and reason.made_nothing:
            status, retry_after = reason.status, reason.retry_after
        else:
            status = retry_after = None
        text, url = redact(_noted(note, message), key), redact(url, key)
        error = cls(text, method=method, url=url, status_code=status, retry_after=retry_after)
        error._answered, error._never_sent = answered, not answered and _before_sending(exc)
        return error

    @classmethod
    def not_sent(cls, message: str) -> "LeonardoError":
        """Build the error of a call refused before its request went: a closed Client's, no API key, a batch whose
        threads cannot start."""
        error = cls(message)
        error._never_sent = True
        return error

    @classmethod
    def from_response(cls, response: "requests.Response", note: str = "", key: str = "") -> "LeonardoError":
        """Build the error for an unsuccessful response, whatever its body holds."""
        body = _parse_body(response, key)
        message = message_from(body) or _s3_message(body) or _fallback_message(response, key)
        hook_failed = auth_hook_failed(response.status_code, body)
        if hook_failed:  # for a key that is a UUID, the hook itself failed (or a key wrong in some other way)
            message = f"{message}: {KEY_CHECK_FAILED if is_uuid(key) else MALFORMED_KEY}"
        elif response.status_code == 401 and isinstance(body, dict) and body.get("code") == "access-denied":
            message = f"{message}: {KEY_REFUSED}"  # Hasura's to a wrong key (not another server's 401: a download's)
        error = cls(redact(f"{message} ({note})" if note else message, key), body=body, **_exchange(response, key))
        error._malformed_key = hook_failed and not is_uuid(key)
        return error

    @classmethod
    def bad_body(cls, response: "requests.Response", message: str, *body: Any, key: str = "") -> "LeonardoError":
        """Build the error for a success status whose body is not what the API sends.

        ``body``: the parsed body when it parsed; else the start of its text is kept. ``message`` may quote the
        answer's headers (a download's Content-Type), which may echo the key.
        """
        kept = body[0] if body else redacted_text(response, key)[:_SNIPPET]
        return cls(redact(message, key), body=kept, **_exchange(response, key))


class BodyBroke(LeonardoError):
    """The body of an answer broke off after its headers, where urllib3's retries end (whether it is
    sent again: _retry.resend_after_body); ``retries``: the retry rule's state the answer came with."""

    retries: Any = None

    @classmethod
    def of(cls, response: "requests.Response", error: LeonardoError, key: str) -> "BodyBroke":
        """``error``, with the answer's status, request id, Retry-After and retry state."""
        broke = cls(error.message, method=error.method, url=error.url, **_answer(response, key))
        broke.retries = getattr(response.raw, "retries", None)
        return broke

    @classmethod
    def cut_short(
        cls, response: "requests.Response", method: str, url: str, short: str, key: str, note: str = ""
    ) -> "BodyBroke":
        message = f"{BROKE_OFF} (truncated body: {short})"
        return cls.of(response, LeonardoError(_noted(note, message), method=method, url=redact(url, key)), key)

    def plain(self) -> LeonardoError:
        """The same error as a plain LeonardoError: one exception type leaves the client."""
        kept = ("status_code", "method", "url", "request_id", "retry_after")
        return LeonardoError(self.message, **{name: getattr(self, name) for name in kept})


PROXY_REFUSED = "the proxy refused the connection to {host}: {detail}"  # its answer to CONNECT: a 407, a 301
PROXY_FAILED = "the proxy could not connect to {host}: {detail}"  # its answer to CONNECT: a 502, a 503
CHECK_CA_BUNDLE = "check REQUESTS_CA_BUNDLE (or the session's verify): it must name a PEM file of CA certificates"
CHECK_CERT = "check the session's cert: a PEM certificate and its own key"
CHECK_TRUST = "check REQUESTS_CA_BUNDLE (or the session's verify): a proxy that inspects TLS needs its CA there"
_UNTRUSTED = (2, 18, 19, 20, 21)  # OpenSSL's verify codes of a certificate whose issuer is not trusted (self-signed...)


def _file_hint(exc: BaseException) -> str:
    """What to check when ``exc`` is a file the TLS connection needs that cannot be used: a CA bundle not found
    (requests' OSError) or with no PEM certificate in it (a DER .cer), a client certificate OpenSSL refused (see
    _retry.file_unread), or the server's certificate's issuer not in it (not a name mismatch, an expiry); else ""."""
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        return CHECK_CA_BUNDLE if "CA certificate bundle" in str(exc) else ""  # "Could not find a suitable TLS CA ..."
    args = getattr(_reason(exc), "args", ())
    unread = [file_unread(arg) for arg in args]
    untrusted = any(getattr(arg, "verify_code", None) in _UNTRUSTED for arg in args)
    return CHECK_CA_BUNDLE if "CA" in unread else CHECK_CERT if "cert" in unread else CHECK_TRUST if untrusted else ""


def _noted(note: str, message: str) -> str:
    """A transport failure's message after what the call was for ("download failed: ..."), if said."""
    return f"{note}: {message}" if note else message


def never_sent(error: BaseException) -> bool:
    """True when the request cannot have reached the server: it failed before connecting (requests refused to
    make it: a proxy it cannot use), the connection was never made, a proxy answered its CONNECT with no 200 (or
    none), the TLS handshake failed (a certificate refused, a port that speaks no TLS), or a CA bundle could not be
    loaded, or Client.close() ended a retry's wait after tries that did nothing (a 429, a connection never made: a
    POST's).
    A LeonardoError records it when it is made (LeonardoError.not_sent, from_transport): pickle and copy drop the
    __cause__ it is read from otherwise."""
    recorded = error._never_sent if isinstance(error, LeonardoError) else None
    return _before_sending(error.__cause__) if recorded is None else recorded


# requests' refusals of a request it cannot make (a SOCKS proxy without PySocks, a malformed URL or proxy URL), and
# urllib3's where requests lets them through (LocationParseError, ProxySchemeUnknown). Not InvalidHeader: requests
# 2.27+ raises it for an answer's headers too (two Content-Lengths), after the request went.
_REFUSED = (
    requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
    LocationValueError,
)


def _before_sending(cause: Optional[BaseException]) -> bool:
    """never_sent's rule, on the failure an error was made of."""
    if isinstance(cause, _REFUSED) or isinstance(cause, OSError) and not isinstance(cause, requests.RequestException):
        return True  # requests' own before it connects: a CA bundle or a certificate not found, a proxy it cannot use
    reason = _reason(cause)  # NewConnectionError (urllib3 2's NameResolutionError too) is a ConnectTimeoutError
    made_nothing = isinstance(reason, ClientClosed) and reason.made_nothing  # closed in a wait after such tries only
    unreached = certificate_refused(reason) or bool(tunnel_failed(reason)) or _raised_in(reason, _BEFORE_REQUEST)
    return unreached or isinstance(reason, ConnectTimeoutError) or made_nothing


# Where a failure comes before any byte of the request went (their code, to find in a traceback): a proxy's answer to
# CONNECT (nothing goes past the proxy before its 200; urllib3 2 has its own copy on some Pythons), and the TLS
# handshake (urllib3 writes the request once it is done; SSLObject's: TLS in an https:// proxy's TLS) and urllib3's
# check of the certificate's host name after it (1.26's). Not a TLS error after them: the request may have gone.
_TUNNEL = {getattr(cls, "_tunnel").__code__ for cls in (http.client.HTTPConnection, urllib3.connection.HTTPConnection)}
_BEFORE_REQUEST = {*_TUNNEL, ssl.SSLSocket.do_handshake.__code__, ssl.SSLObject.do_handshake.__code__,
                   getattr(urllib3.connection, "_match_hostname").__code__}


def _raised_in(reason: Any, codes: AbstractSet[CodeType]) -> bool:
    """Whether urllib3's ``reason``, or an error it wraps, was raised while one of ``codes`` ran."""
    for error in (reason, *getattr(reason, "args", ())):
        frame = getattr(error, "__traceback__", None)  # from where urllib3 caught it to where it was raised
        while frame is not None and frame.tb_frame.f_code not in codes:
            frame = frame.tb_next
        if frame is not None:
            return True
    return False


def _reason(cause: Optional[BaseException]) -> Any:
    """urllib3's failure under requests' ConnectionError (an SSLError too) or RetryError (a ClientClosed)."""
    if not isinstance(cause, (requests.ConnectionError, requests.exceptions.RetryError)) or not cause.args:
        return None
    reason = getattr(cause.args[0], "reason", cause.args[0])  # MaxRetryError -> its cause
    return getattr(reason, "original_error", reason)  # a ProxyError: the proxy's connection refused, say


# Hasura's error when its auth hook failed: Leonardo's answer, a 500, to a key that is not a UUID, or when the hook
# itself failed (API_FACTS 1.2).
AUTH_HOOK_FAILED = "Invalid response from authorization hook"
MALFORMED_KEY = "the API key is probably malformed (a Leonardo key is a UUID): check it"
KEY_REFUSED = "the API key was refused: check it (LEONARDO_API_KEY)"  # a wrong key's 401 (API_FACTS 1.2)
KEY_CHECK_FAILED = "Leonardo could not check the API key (if this goes on, check that it is your current key)"


def auth_hook_failed(status: Optional[int], body: Any) -> bool:
    """Whether an answer is the auth hook's 500: the call refused before any action ran (nothing was made)."""
    return status == 500 and isinstance(body, dict) and body.get("error") == AUTH_HOOK_FAILED


def key_malformed(error: BaseException) -> bool:
    """Whether ``error`` is the auth hook's 500 to a key that is not a UUID: refused, as a 401 refuses a key, every
    later call too. For a key that is a UUID, it is a 5xx that may pass (the hook failing)."""
    return isinstance(error, LeonardoError) and error._malformed_key


# How a create call's failure where it may have run (may_have_run) ends its message: short enough that str()
# of a long one keeps it whole (see _SHOWN_END).
MAY_HAVE_BEEN_MADE = "it may have been made (and billed): look for it in your Leonardo library before sending it again"
STOPPED_CREATING = f"the create call was under way: {MAY_HAVE_BEEN_MADE}"  # a Ctrl-C during one


def may_have_run(error: BaseException) -> bool:
    """Whether the call ``error`` ended may still have been acted on (a create call made, and billed): it was
    sent and no refusal (4xx) came back: a 5xx (not the auth hook's, see auth_hook_failed), a 3xx (a 303 says it
    was done), no answer, an answer cut short or without what was asked.
    Before trying such a call again, look for what it did (the account's generations).
    It judges a call's LeonardoError; anything else (a ValueError before sending too) reads as may have run (True)."""
    status = getattr(error, "status_code", None)
    refused = (status is not None and 400 <= status < 500) or auth_hook_failed(status, getattr(error, "body", None))
    return not never_sent(error) and not refused


def timed_out(exc: BaseException) -> bool:
    """Whether a transport error is a read timeout: requests reports one as a ConnectionError after
    the retries, or in the body; said as what it is."""
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, ReadTimeoutError) or isinstance(getattr(cause, "reason", None), ReadTimeoutError)


def check_complete(response: "requests.Response", method: str, url: str, key: str, note: str = "") -> None:
    """BodyBroke when the body ended short of its Content-Length: truncated, not bad JSON or half a message.

    urllib3 2.x raises on a short body itself, and so does 1.26 through RetryAdapter; through an
    adapter of the caller's, 1.26 ends it silently, so compare for both.
    """
    short = shortfall(response)
    if short:
        raise BodyBroke.cut_short(response, method, url, short, key, note)


def shortfall(response: "requests.Response") -> str:
    """"<received> of <Content-Length> bytes" when fewer came, else "" (a 1xx, 204 or 304, or a chunked
    body, has no body of that length; a redirect's is not read: see _retry.RetryAdapter.send)."""
    expected = response.headers.get("Content-Length", "").strip()
    # ASCII digits, as HTTP's: "²" is a digit to isdigit(), and int() refuses 4,300 digits (urllib3 reads to the end)
    if not (expected.isascii() and expected.isdigit() and len(expected) <= 19):
        return ""
    status = response.status_code
    if status < 200 or status in (204, 304):
        return ""
    received = getattr(response.raw, "tell", lambda: None)()
    if not isinstance(received, int) or received >= int(expected):  # all came (the usual case): no header to look up
        return ""
    chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()  # not "identity": that has the length
    return "" if chunked or response.is_redirect else f"{received} of {expected} bytes"


MAX_JSON_DEPTH = 200  # far deeper than any answer; Python's recursion limit is about 1000
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def parse_json(data: Union[str, bytes, bytearray]) -> Any:
    """json.loads of text from outside, with what is nested deeper than MAX_JSON_DEPTH a ValueError,
    refused before json recurses: CPython before 3.11 can abort the whole process on it
    (python/cpython#109261), and on every version the limit is one, whatever the Python (3.12 parses
    1,500 levels, which the recursive code after it, json.dumps or redaction, cannot take). NaN and
    Infinity, which json.loads takes but JSON has not, are a ValueError too, and so is a number too
    large for a float (1e400 would be read as infinity, and written back as Infinity)."""
    if isinstance(data, (bytes, bytearray)):  # first: measured in UTF-16, a byte of a character could end a string
        data = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads reads bytes
    if _nested_too_deep(data):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return _DECODER.decode(data)
    except RecursionError:  # the program was deep in its own recursion already
        raise ValueError("JSON nested too deep for the recursion limit left") from None


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is too large a number")
    return number


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)  # made once: json.loads makes one a call


def _nested_too_deep(data: Union[str, bytes, bytearray]) -> bool:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not isinstance(raw, (bytes, bytearray)) or raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    # Measured without the strings: a "]" in one would hide a level. Their escaped backslashes, then escaped quotes,
    # taken out first (left to right, as JSON reads them), every other piece between quotes is outside them: one
    # left unterminated runs to the end, as JSON reads it too. (Cut out in C, linearly: a regex took twice json's
    # time. The loop then walks the brackets alone.)
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def read_json(response: "requests.Response", key: str) -> Any:
    """The response's JSON, with ``key`` redacted if the server echoed it; ValueError if not JSON.

    A body nested deeper than MAX_JSON_DEPTH is a ValueError too (see parse_json).
    """
    content = response.content
    # Rare, so no cost for other answers: the key as sent (or in another case: _spellings), an escape that may spell
    # it ("\u0061...", or \" \\ \/ of a key holding that character: the other escapes stand for control characters,
    # which no key has), or UTF-16 or UTF-32 (a NUL in the first 4 bytes), which json.loads reads as it reads UTF-8.
    # A backslash first: memchr finds none in most answers, where b"\\u" alone was a slower search of the whole body.
    escaped = b"\\" in content and (b"\\u" in content or any(char in key for char in '"\\/'))  # a UUID: one scan
    spelt = any(spelling.encode() in content for spelling in _spellings(key))
    if len(key) >= MIN_SECRET_LENGTH and (spelt or escaped or b"\0" in content[:4]):
        return _redacted(parse_json(content), key)
    return parse_json(content)


def _redacted(value: Any, key: str) -> Any:
    """Parsed JSON with ``key`` redacted from every string in it, object keys included."""
    if isinstance(value, str):
        return redact(value, key)
    if isinstance(value, list):
        return [_redacted(item, key) for item in value]
    if isinstance(value, dict):
        return {redact(name, key): _redacted(item, key) for name, item in value.items()}
    return value


_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
# Python codecs no charset names: with "replace", idna and undefined raise, punycode takes time quadratic in the body.
_NOT_CHARSETS = ("idna", "punycode", "undefined")


def redacted_text(response: "requests.Response", key: str) -> str:
    """The response body as text, with ``key`` redacted if the server echoed it. Decoded by its
    charset, else as UTF-8: never guessed (requests' guess differs between its versions, and is slow)."""
    charset = _CHARSET.search(response.headers.get("Content-Type", ""))  # not requests' latin-1 for text/*
    content = response.content
    for spelling in _spellings(key):  # the key in UTF-16 or UTF-32, which that decoding would not spell
        for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            content = content.replace(spelling.encode(codec), REDACTED.encode(codec))
    try:
        codec = codecs.lookup(charset.group(1) if charset else "utf-8").name
        return redact(content.decode("utf-8" if codec in _NOT_CHARSETS else codec, "replace"), key)
    except (LookupError, ValueError):  # a charset Python does not know (or with a NUL); a codec's UnicodeError
        return redact(content.decode("utf-8", "replace"), key)


def redact(text: str, key: str) -> str:
    """``text`` with ``key`` replaced by REDACTED (a key too short to be real is left: see MIN_SECRET_LENGTH)."""
    for spelling in _spellings(key):
        text = text.replace(spelling, REDACTED)
    return text


def _spellings(key: str) -> Tuple[str, ...]:
    """How ``key`` may be written: as it is, in lower or upper case (a UUID is either: Hasura and urllib3's DecodeError
    write it lower-cased), and percent-encoded (one pasted where an id goes, in a URL)."""
    if len(key) < MIN_SECRET_LENGTH:
        return ()
    return tuple(dict.fromkeys((key, key.lower(), key.upper(), quote(key, safe="", errors="surrogateescape"))))


def printable(text: str) -> str:
    """``text`` with its non-printable characters (ESC, BEL, a line break, DEL, a bidi override, a lone
    surrogate...) escaped as Python escapes them, ``\\x1b``: text a server sent cannot drive a terminal."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


def error_text(exc: BaseException) -> str:
    """``exc`` in one plain line: an OSError by its reason, after the file it names if any ("'afile': File exists"),
    or the two a rename names ("'a' -> 'b': Is a directory"), not Python's "[Errno 17] File exists: 'afile'"; any
    other as str() says it."""
    if not isinstance(exc, OSError) or not exc.strerror:
        return str(exc)
    if exc.filename is None:
        return exc.strerror
    files = shown(exc.filename) if exc.filename2 is None else f"{shown(exc.filename)} -> {shown(exc.filename2)}"
    return f"{files}: {exc.strerror}"


def without_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part: it is never shown."""
    return _USERINFO.sub(r"\1", url)


class _KeyRedactingFilter(logging.Filter):
    """Redacts the keys of the live clients from urllib3's log records.

    A server that echoes the key in a malformed status line gets it into the error urllib3
    logs when it retries ("Retrying ... after connection broken by BadStatusLine(...)"), and a
    header it cannot parse into a traceback. Filters run only for records that pass the
    logger's level: no cost with logging off.
    """

    keys: Tuple[str, ...] = ()  # replaced whole, never changed in place: threads read it unlocked
    lock = threading.Lock()
    users: Dict[str, int] = {}  # each key: how many live clients hold it (under the lock)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(key in message for key in self.keys):
            record.msg, record.args = self._redacted(message), ()
        exc = record.exc_info[1] if record.exc_info else None
        printed = _printed(exc) if exc is not None else ""
        if any(key in printed for key in self.keys):  # the handlers get the traceback's text, redacted
            record.exc_text, record.exc_info = self._redacted(printed), None
        return True

    def _redacted(self, text: str) -> str:
        for key in self.keys:  # longest first: a key inside another is not left half shown
            text = redact(text, key)
        return text


def shows_key(exc: BaseException, key: str, hidden: Tuple[str, ...] = ()) -> bool:
    """Whether ``exc`` printed as a traceback (chained exceptions included) shows ``key`` (or one of ``hidden``)."""
    printed = _printed(exc)
    return any(secret in printed for secret in (*_spellings(key), *hidden))


def credentials_of(proxy_urls: Iterable[Any]) -> Tuple[str, ...]:
    """The ``user:password`` of each proxy URL that has one: whole, as far as a URL parser reads it (to the
    first / ? or #: "Failed to parse: 'alice:Xy7' is not a valid host" of "alice:Xy7/9@..."), and as requests
    2.25 rewrites a URL without a scheme ("alice://Xy7@..." of "alice:Xy7@...").
    A user name alone, or with an empty password, is no secret (hiding "e" or "http:" would mangle every message)."""
    found: Set[str] = set()
    for url in proxy_urls:
        if isinstance(url, str) and "@" in url:
            userinfo = url.split("://", 1)[-1].rsplit("@", 1)[0]
            parts = (userinfo, re.split("[/?#]", userinfo)[0], userinfo.replace(":", "://", 1))
            found.update(part for part in parts if ":" in part and userinfo.partition(":")[2])  # a password to hide
    return tuple(sorted(found, key=len, reverse=True))


def _printed(exc: BaseException) -> str:
    """``exc`` as a traceback prints it (logging's exc_text: no final line break)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip("\n")


def redact_from_logs(key: str, holder: object) -> None:
    """While ``holder`` lives, replace ``key`` by REDACTED in what urllib3 logs (its modules' loggers)."""
    if len(key) < MIN_SECRET_LENGTH:
        return
    with _KeyRedactingFilter.lock:
        for name in _URLLIB3_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _KeyRedactingFilter) for f in logger.filters):
                logger.addFilter(_KeyRedactingFilter())
        users = _KeyRedactingFilter.users
        users[key] = users.get(key, 0) + 1
        while _let_go:  # keys of clients collected since: a service's many keys are not all kept
            gone = _let_go.popleft()
            users[gone] -= 1
            if not users[gone]:
                del users[gone]
        _KeyRedactingFilter.keys = tuple(sorted({s for k in users for s in _spellings(k)}, key=len, reverse=True))
    # Not under the lock: the collector may run this while this very thread holds it.
    weakref.finalize(holder, _let_go.append, key).atexit = False


_let_go: "collections.deque[str]" = collections.deque()  # appended by finalizers; counted at the next client
if hasattr(os, "register_at_fork"):  # a thread may have held the lock at the fork: for ever, in the child
    os.register_at_fork(after_in_child=lambda: setattr(_KeyRedactingFilter, "lock", threading.Lock()))


def _exchange(response: "requests.Response", key: str) -> Dict[str, Any]:
    """The method and URL of the request a response answers, and what the response tells (see _answer)."""
    request = response.request
    method, url = (request.method, request.url) if request is not None else (None, response.url)
    return {"method": method, "url": redact(str(url), key), **_answer(response, key)}


def _answer(response: "requests.Response", key: str) -> Dict[str, Any]:
    """The status, request id and Retry-After of a response: every error built from one carries them."""
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    return {
        "status_code": response.status_code,
        "request_id": redact(request_id, key) if request_id else None,
        "retry_after": parse_retry_after(response.headers.get("Retry-After")),
    }


# What each kind of transport failure means, most specific first (ConnectTimeout is also a
# ConnectionError, SSLError too); the last one matches any other exception.
_TRANSPORT_ERRORS = (
    (requests.exceptions.ConnectTimeout, "timed out connecting to {host}"),
    (requests.exceptions.ReadTimeout, "timed out waiting for {host}'s response"),
    (requests.exceptions.SSLError, "TLS/SSL error with {host}: {detail}"),
    (requests.exceptions.ProxyError, "could not connect through the proxy: {detail}"),
    (requests.exceptions.ChunkedEncodingError, BROKE_OFF + " (truncated body)"),
    ((requests.exceptions.ContentDecodingError, DecodeError), "could not decode the response: {detail}"),
    (requests.exceptions.ConnectionError, "connection failed: {detail}"),
    (Exception, "request to {host} failed: {detail}"),
)


_SSL_SOURCE = re.compile(r" \(_ssl\.c:\d+\)")  # the line of CPython's C source that raised an ssl error


def _detail(exc: BaseException) -> str:
    """What happened, from the innermost exception under requests' and urllib3's wrappers.

    The operating system's own error (ConnectionRefusedError, RemoteDisconnected, an
    ssl.SSLError...) when there is one: urllib3's texts carry connection objects' reprs. An
    answer http.client could not read (BadStatusLine...) as it is, not the error it was handling.
    """
    for _ in range(10):  # the chains are 2-4 deep; bounded all the same
        if isinstance(exc, OSError) and not type(exc).__module__.startswith(("requests", "urllib3")):
            one = isinstance(exc, ssl.SSLError) and len(exc.args) == 1  # ssl.match_hostname's: str() says a tuple
            return _SSL_SOURCE.sub("", str(exc.args[0]) if one else error_text(exc))
        if isinstance(exc, http.client.HTTPException):
            return f"{type(exc).__name__}({str(exc).strip()!r})"
        if isinstance(exc, LocationParseError):  # under it: urllib3 2.0-2.6's own AttributeError
            return f"Failed to parse: {without_userinfo(str(getattr(exc, 'location', '')))}"  # no password shown

        inner = getattr(exc, "reason", None) or next((a for a in exc.args if isinstance(a, BaseException)), None)
        inner = inner or exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return str(exc) or type(exc).__name__


def _parse_body(response: "requests.Response", key: str) -> Any:
    if not response.content:
        return None
    try:
        return read_json(response, key)
    except (ValueError, RecursionError):
        return redacted_text(response, key)


def message_from(body: Any) -> Optional[str]:
    """The error text of the API's envelopes: {"error": ...} (or "message", "detail"), {"errors": [{"message"}]},
    [{"message"}] (a blank one is none)."""
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str) and body[key].strip():
                return str(body[key])
        body = body.get("errors")
    if isinstance(body, list) and body and isinstance(body[0], dict):
        text = body[0].get("message")
        return text if isinstance(text, str) and text.strip() else None
    return None


def _s3_message(body: Any) -> Optional[str]:
    """``Code: Message`` of an S3 XML error (from the init-image upload), else None."""
    if not isinstance(body, str) or not body.lstrip().startswith("<") or len(body) > _MAX_XML:
        return None
    try:
        from xml.etree import ElementTree  # only for S3's answers: not loaded by `import leonardo_client`

        root = ElementTree.fromstring(body)
    except (SyntaxError, ImportError):  # ParseError; or a Python built without pyexpat
        return None
    text = ": ".join(filter(None, (root.findtext("Code"), root.findtext("Message"))))
    return text if root.tag == "Error" and text else None


def _fallback_message(response: "requests.Response", key: str) -> str:
    content_type = response.headers.get("Content-Type", "")
    text = redacted_text(response, key).strip()
    if text and "html" not in content_type and not text.startswith("<"):
        return cut(" ".join(text.split()), _SNIPPET + 3)
    reason = response.reason or "error"
    return f"{reason} (no error message in the {'HTML ' if text else 'empty '}response body)"
