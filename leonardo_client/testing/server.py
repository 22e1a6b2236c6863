"""The fake's HTTP plumbing: a threaded server on loopback, requests in, answers and faults out."""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple, Union
from urllib.parse import SplitResult, parse_qsl, urlsplit

from .. import _files
from ..errors import parse_json
from ..payloads import check_number, is_header_text
from .media import BLOB_CHUNK, BLOB_PATTERN, BLOB_PERIOD

if TYPE_CHECKING:
    from . import FakeLeonardo

JSON_TYPE = "application/json; charset=utf-8"
MAX_BODY = 64 * 1024 * 1024  # bytes accepted in one request body (the bucket's: the client's MAX_UPLOAD and FORM_ROOM)
FORM_ROOM = 64 * 1024  # bytes of an upload form beside its file: its fields, each part's headers
MAX_FAULT_DELAY = 3600.0  # seconds an injected delay may last
IDLE_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this
JOIN_TIMEOUT = 5.0  # seconds stop() waits for the server's threads, all together
POLL = 0.01  # seconds: how soon the accept loop notices stop()
OWN_PATHS = ("/cdn/", "/s3/")  # the fake's own, not the API's: the files it serves, the upload bucket
SERVED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")  # Handler's do_* (set below); others 501
Headers = List[Tuple[str, str]]


@dataclass
class RecordedRequest:
    """One request received by the fake. ``path`` is relative to ``base_url`` for v1 calls (``"/generations/abc"``;
    ``base_url`` itself ``"/"``), else to ``root_url`` (``"/cdn/..."``, ``"/api/rest/v2/..."``), without the query,
    percent-encoded as sent; ``query`` holds each parameter's last value, ``headers`` ignores case, ``json`` is the
    parsed body (None if absent or not JSON); ``body`` is empty for a request refused while read (a bad
    Content-Length, a chunked body, headers too large, a method not served), ``method`` and ``path`` too for a
    request line not read. ``kind``: "api", "cdn", "s3" (the fake's own files and upload bucket) or "other";
    ``full_path``: the path as sent, from the root (without the query; "" for a request line not read)."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Message
    json: Any
    body: bytes = field(default=b"", repr=False)
    kind: str = field(default="api", repr=False)  # "api", "cdn", "s3" or "other"
    full_path: str = field(default="", repr=False)  # the path as sent


@dataclass
class Answer:
    """A status and a body, or a streamed blob of ``blob_size`` bytes."""

    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: Headers = field(default_factory=list)
    blob_size: Optional[int] = None

    @property
    def size(self) -> int:
        return len(self.body) if self.blob_size is None else self.blob_size


def json_bytes(obj: Any) -> bytes:
    """JSON as Leonardo sends it (its API, and its webhooks): compact UTF-8, not \\u-escaped. Request bodies
    come with lone surrogates replaced; should one get here still, it is sent as its JSON escape, not a crash."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "backslashreplace")


def parse_body(body: bytes) -> Any:
    """A request body's JSON, read as the client reads an answer (errors.parse_json): ValueError if it is not
    UTF-8 JSON, NaN, Infinity and 1e400 included (taken, the fake's own answers and webhooks would carry them,
    not JSON), or nested deeper than json and the fake's own recursion can take alike on every Python."""
    return parse_json(body.decode("utf-8"))


def json_answer(status: int, obj: Any, headers: Optional[Headers] = None) -> Answer:
    return Answer(status, json_bytes(obj), JSON_TYPE, headers or [])


class ApiError(Exception):
    """An error answer of the API: status, message and code of its envelope, extra headers."""

    def __init__(self, status: int, message: str, code: str, headers: Optional[Headers] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or []
        self.path = "$"  # the envelope's JSON path: "$" but where Hasura's parser names the value it refused

    def answer(self) -> Answer:
        return json_answer(self.status, {"error": self.message, "path": self.path, "code": self.code}, self.headers)


class S3Error(ApiError):
    """An error of the bucket, answered as S3's XML: S3Error(status, message, code)."""

    def answer(self) -> Answer:
        xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>"
        return Answer(self.status, (xml % (self.code, self.message)).encode("utf-8"), "application/xml", self.headers)


def default_error(status: int) -> ApiError:
    """The API's error for an injected status given no body."""
    phrase = http.server.BaseHTTPRequestHandler.responses.get(status, ("Error %d" % status,))[0]
    special = {401: "Authentication hook unauthorized this request", 500: "internal error"}
    code = {400: "bad-request", 401: "access-denied", 404: "not-found"}.get(status, "unexpected")
    return ApiError(status, special.get(status, phrase), code)


def retry_after_header(value: Union[str, float, None]) -> Optional[str]:
    """A Retry-After header value: a str verbatim (any, to test how clients read it, but one
    line), 2.0 as "2", 0.5 as "0.5"."""
    if isinstance(value, str) and not is_header_text(value):
        raise ValueError("retry_after must be printable ASCII: a line break would add headers")
    if value is None or isinstance(value, str):
        return value
    check_number("retry_after", value, 0, 1e9)  # seconds; NaN and inf refused too
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass
class Fault:
    """One injected fault (see FakeLeonardo.inject); ``Fault()`` changes nothing."""

    status: Optional[int] = None
    remaining: Optional[int] = None
    path: Optional[str] = None
    method: Optional[str] = None
    retry_after: Optional[str] = None
    delay: float = 0.0
    drop: bool = False
    body: Any = None
    truncate: bool = False
    after: bool = False

    def __post_init__(self) -> None:
        if self.status is not None:
            check_number("status", self.status, 200, 599, integer=True)  # 200.5 or "500": refused too
        if self.body is not None and self.status is None:
            raise ValueError("body needs a status")
        if not isinstance(self.body, (type(None), str, bytes, bytearray)):
            try:  # refused now, not when a server thread fails to encode it
                json.dumps(self.body, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise type(exc)("body cannot be sent as JSON: %s" % exc) from None
            except RecursionError:  # Python before 3.12 writes no JSON nested about 1,000 deep
                raise ValueError("body cannot be sent as JSON: nested too deep") from None
        if self.remaining is not None:
            check_number("times", self.remaining, 1, math.inf, integer=True)
        for name, value in (("path", self.path), ("method", self.method)):
            if not isinstance(value, (str, type(None))):
                raise TypeError("%s must be a str or None, not %s" % (name, type(value).__name__))
        if self.path is not None and not self.path.startswith("/") and self.path != "*":  # it would never fire
            fixed = "/" + self.path
            raise ValueError('path must start with "/" (or be "*"), as recorded paths do: use path=%r' % fixed)
        if self.path is not None and self.path.startswith("/v2/"):  # no request is recorded there: it never fires
            raise ValueError("v2 calls are recorded from the root: use path=%r" % ("/api/rest" + self.path))
        if self.path is not None and self.path.startswith("/v1/"):  # nor there: v1 calls are recorded from base_url
            raise ValueError("v1 calls are recorded from the API's base: use path=%r" % self.path[3:])
        if self.path is not None and any(c in self.path for c in "?{"):  # recorded paths hold no query, no template
            raise ValueError("path is matched without its query, and by the ids it holds, not a template: path=%r"
                             % self.path)
        self.method = self.method and self.method.upper()
        if self.method is not None and self.method not in SERVED_METHODS:  # answered 501, never faulted
            served = ", ".join(SERVED_METHODS)
            raise ValueError("method must be one the fake serves, %s: method=%r" % (served, self.method))
        check_number("delay", self.delay, 0, MAX_FAULT_DELAY)

    def matches(self, request: RecordedRequest) -> bool:
        if self.method not in (None, request.method):
            return False
        if self.path is None:
            return request.kind == "api"
        if self.path.endswith("*"):
            return request.path.startswith(self.path[:-1])
        return request.path == self.path

    def apply(self, answer: Optional[Answer], file: bool = False) -> Answer:
        """The answer (None: not run) with the fault's status, body and Retry-After; a raw body not HTML is
        served as a file's (application/octet-stream) on a file's path (``file``), else as JSON."""
        if isinstance(self.body, (str, bytes, bytearray)):
            data = self.body.encode("utf-8") if isinstance(self.body, str) else bytes(self.body)
            raw = "application/octet-stream" if file else JSON_TYPE
            answer = Answer(self.status or 200, data, "text/html; charset=utf-8" if data.lstrip()[:1] == b"<" else raw)
        elif self.status is not None:
            answer = default_error(self.status).answer() if self.body is None else json_answer(self.status, self.body)
        assert answer is not None
        if self.retry_after is not None:
            answer.headers = answer.headers + [("Retry-After", self.retry_after)]
        return answer


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threading TCP server (not http.server's HTTPServer: its server_bind() calls socket.getfqdn(),
    which may query DNS) that counts connections and closes all of them at stop(). Its threads are
    daemons (a fake left running never blocks exit), so close_all() joins them."""

    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: socketserver's 5 made a burst of connections wait a second or fail

    def __init__(self, address: Tuple[str, int], fake: FakeLeonardo) -> None:
        self.fake = fake
        self.stop_event = threading.Event()
        self._open: Set[socket.socket] = set()
        self._workers: Set[threading.Thread] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, Handler)

    def _forked(self) -> None:
        """In a process forked while it runs (client.fork_aware), where no thread accepts: its copy of the port
        closed, else, once the parent stops, connections still complete there, unanswered, and the port stays bound."""
        self.socket.close()  # a no-op when closed already

    def process_request(self, request: Any, client_address: Any) -> None:
        worker = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._open_lock:
            if self.stop_event.is_set():  # not counted: socketserver's close, not ours (it takes this lock)
                super().shutdown_request(request)
                return
            self._open.add(request)
        with self.fake._lock:
            self.fake.connections_opened += 1
        try:
            worker.start()
        except RuntimeError:  # no thread to spare (ulimit -u, a container's pids limit): closed unanswered
            self.shutdown_request(request)
            return
        with self._open_lock:  # only a thread that started: close_all() joins each
            self._workers = {t for t in self._workers if t.is_alive()} | {worker}

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.stop_event.is_set() and not isinstance(sys.exc_info()[1], OSError):
            traceback.print_exc()  # a bug in the fake, not a peer that went away (a request it cannot read is answered)

    def close_all(self) -> None:
        """Stop accepting, wake every connection (idle keep-alive ones too) and join them."""
        self.stop_event.set()
        self.shutdown()
        with self._open_lock:
            sockets, workers = list(self._open), list(self._workers)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + JOIN_TIMEOUT
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # answering a request line not read (HTTP/0.9 would send no status line)
    server_version = "FakeLeonardo/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in separate writes: do not wait for delayed ACKs
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _read_body(self) -> bytes:
        """The body announced by Content-Length (the client never sends chunked bodies)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Read what the client still sends (bounded), so it gets our answer, not a reset; the connection
            # is closed after it anyway.
            self.connection.settimeout(0.2)
            with contextlib.suppress(OSError):
                while self.rfile.read1(65536):
                    pass
            raise ValueError("chunked request bodies are not supported; send Content-Length")
        length = (self.headers.get("Content-Length") or "0").strip()
        upload = self.path.startswith("/s3/")
        if not (length.isascii() and length.isdigit() and len(length) <= 15) or not upload and int(length) > MAX_BODY:
            raise ValueError("invalid Content-Length")
        if upload and int(length) > _files.MAX_UPLOAD + FORM_ROOM:
            raise S3Error(400, "Your proposed upload exceeds the maximum allowed size", "EntityTooLarge")
        data = self.rfile.read(int(length))
        if len(data) != int(length):
            raise ValueError("incomplete request body")
        return data

    def _recorded(self, body: bytes) -> RecordedRequest:
        spec = self.server.fake._api.spec
        try:
            parts = urlsplit(self.path)
        except ValueError:  # a target no URL parser reads ("http://[x/..."): kept as sent, a path not served
            parts = SplitResult("", "", self.path, "", "")
        path = parts.path or ("/" if self.path else "")  # "": no request line read
        parsed = None  # no body, or not JSON
        with contextlib.suppress(ValueError):
            parsed = parse_body(body)
        kind = "api" if spec.is_api(path) else next((k[1:-1] for k in OWN_PATHS if path.startswith(k)), "other")
        # base_url itself, with or without its trailing slash, is "/": where inject's advice points
        relative = (path[len(spec.base) :] or "/") if path == spec.base or path.startswith(spec.base + "/") else path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        return RecordedRequest(self.command or "", relative, query, self.headers, parsed, body, kind, path)

    def handle_one_request(self) -> None:
        self.path, self.headers = "", Message()  # a request refused before they are read records none of the last one's
        super().handle_one_request()

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Refuse a request as read so far (a request line or headers http.server cannot read, a method the fake
        does not serve, a body it cannot read): recorded, no fault played, the API's envelope, the connection closed."""
        error = default_error(code)
        self._refuse(ApiError(code, message or error.message, error.code))

    def _refuse(self, error: ApiError) -> None:
        """As send_error, with ``error``'s answer (S3's to an upload too large)."""
        self.server.fake._arrived(self._recorded(b""), playable=False)
        error.headers.append(("Connection", "close"))
        self._send(error.answer())

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError as exc:
            return self.send_error(400, str(exc))
        except ApiError as exc:
            return self._refuse(exc)
        request = self._recorded(body)
        api, fault = self.server.fake._api, self.server.fake._arrived(request) or Fault()
        answer = api.serve(request) if fault.after else None  # else the operation runs after the delay
        if fault.delay and self.server.stop_event.wait(fault.delay):
            self.close_connection = True  # stopping: abandon the request
            return
        if answer is None and not fault.drop and fault.status is None:
            answer = api.serve(request)
        self.close_connection = self.close_connection or fault.drop or fault.truncate
        if fault.drop:
            return
        answer = fault.apply(answer, request.kind == "cdn")
        length = max(answer.size, 1) if fault.truncate else None
        if fault.truncate:  # announce the whole body (1 byte if empty), send half of it, close
            answer.body, answer.blob_size = answer.body[: answer.size // 2], answer.blob_size and answer.blob_size // 2
        self._send(answer, length)

    def _send(self, answer: Answer, length: Optional[int] = None) -> None:
        """Send answer; a 204 or 304 ends with its headers (a client reads no body: one sent would be
        read as the next answer on the connection), without Content-Type or Content-Length."""
        bodiless = answer.status in (204, 304)
        self.send_response(answer.status)
        if not bodiless:
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(answer.size if length is None else length))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD" or bodiless:
            return
        self.wfile.write(answer.body)
        blob = answer.blob_size or 0
        for offset in range(0, blob, BLOB_CHUNK):  # a blob, never held whole
            if self.server.stop_event.is_set():
                self.close_connection = True
                return
            start = offset % BLOB_PERIOD
            self.wfile.write(BLOB_PATTERN[start : start + min(BLOB_CHUNK, blob - offset)])


for _method in SERVED_METHODS:  # do_GET, do_POST...: one list, which Fault checks a method against
    setattr(Handler, "do_" + _method, Handler._dispatch)
