"""An in-process fake of the Leonardo.Ai REST API, for tests and offline demos.

``FakeLeonardo`` runs a small threaded HTTP/1.1 server on the loopback interface
(standard library only) that serves the 13 operations of the client with the
response shapes of Leonardo's OpenAPI spec::

    from leonardo_client.testing import FakeLeonardo

    with FakeLeonardo() as fake:
        client = Client(api_key=fake.api_key, base_url=fake.base_url)
        job = client.create_generation({"prompt": "a lighthouse at dusk"})

What it does:

* Checks ``Authorization: Bearer <api_key>`` on every path under
  ``/api/rest/v1`` (401 with the real API's body otherwise). Files under
  ``/cdn/`` (images, videos, blobs) need no key, like Leonardo's CDN.
* Validates request bodies the way the real API does: unknown keys (the API is
  case-sensitive), missing required fields, ``null`` for non-nullable fields and
  wrong JSON types are answered with 400 and the ``{"error", "path", "code"}``
  envelope.
* Keeps state in memory: generations (image, motion) and texture generations
  stay ``PENDING`` for ``completion_delay`` seconds after creation, then become
  ``COMPLETE`` (or ``FAILED``, see :meth:`FakeLeonardo.fail_generation` and
  ``fail_new_generations``). Deleting removes them; the list endpoints
  paginate, newest first.
* Serves real PNG files (small gradients, seeded by the prompt) at the URLs it
  returns, a small MP4-looking payload for motion generations, and streamed
  blobs of any size (:meth:`FakeLeonardo.blob_url`).
* Records every request (:attr:`FakeLeonardo.requests`) and counts accepted TCP
  connections (:attr:`FakeLeonardo.connections_opened`).
* Injects faults on demand (:meth:`FakeLeonardo.inject`): error statuses with or
  without ``Retry-After``, slow answers, dropped connections, raw or truncated
  bodies.

The module is not imported by ``leonardo_client`` itself; it loads only when a
test or demo imports it.
"""

from __future__ import annotations

import base64
import http.server
import json
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    TypeVar,
    Union,
    cast,
    overload,
)
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeLeonardo", "RecordedRequest"]

_T = TypeVar("_T")

API_PREFIX = "/api/rest/v1"

_USER_ID = "0f3c6a52-8e1d-4b7a-9c2e-5d4f6a7b8c9d"
_COST = (("amount", "0.0147"), ("unit", "DOLLARS"))
_AUTH_ERROR = "Authentication hook unauthorized this request"
_MAX_BODY = 64 * 1024 * 1024  # bytes accepted in one request body
_CHUNK = 64 * 1024  # streaming chunk size for blobs
_MAX_PREVIEW_SIDE = 256  # rendered images are at most this many pixels on the long side
_MIN_PREVIEW_SIDE = 8
_BLOB_PERIOD = 251  # byte i of every blob is i % 251
_BLOB_PATTERN = bytes(i % _BLOB_PERIOD for i in range(_CHUNK + _BLOB_PERIOD))
_TEXTURE_TYPES = ("ALBEDO", "NORMAL", "ROUGHNESS", "DISPLACEMENT")
_JSON_TYPE = "application/json; charset=utf-8"
_HANDLER_SOCKET_TIMEOUT = 120.0  # an idle keep-alive connection is closed after this
_JOIN_TIMEOUT = 5.0  # total time stop() waits for the server's threads


# --------------------------------------------------------------------------------------
# Request bodies accepted by each operation, copied from leonardo-openapi.json
# (requestBody schemas, $refs resolved). Each key maps to (JSON type, nullable).
# "array:<x>" is an array whose items are of type <x> (a scalar type or a nested
# input object below).
# --------------------------------------------------------------------------------------

_FieldSpec = Tuple[str, bool]

_STR, _INT, _NUM, _BOOL = "string", "integer", "number", "boolean"

_CREATE_GENERATION_FIELDS: Dict[str, _FieldSpec] = {
    "alchemy": (_BOOL, True),
    "contrastRatio": (_NUM, True),
    "contrast": (_NUM, True),
    "controlnets": ("array:controlnet_input", True),
    "elements": ("array:element_input", True),
    "userElements": ("array:user_elements_input", True),
    "expandedDomain": (_BOOL, True),
    "fantasyAvatar": (_BOOL, True),
    "guidance_scale": (_NUM, True),
    "height": (_INT, True),
    "highContrast": (_BOOL, True),
    "highResolution": (_BOOL, True),
    "imagePrompts": ("array:string", True),
    "imagePromptWeight": (_NUM, True),
    "init_generation_image_id": (_STR, True),
    "init_image_id": (_STR, True),
    "init_strength": (_NUM, True),
    "modelId": (_STR, True),
    "negative_prompt": (_STR, True),
    "num_images": (_INT, True),
    "num_inference_steps": (_INT, True),
    "photoReal": (_BOOL, True),
    "photoRealVersion": (_STR, True),
    "photoRealStrength": (_NUM, True),
    "presetStyle": (_STR, True),
    "prompt": (_STR, False),
    "promptMagic": (_BOOL, True),
    "promptMagicStrength": (_NUM, True),
    "promptMagicVersion": (_STR, True),
    "public": (_BOOL, True),
    "scheduler": (_STR, False),
    "sd_version": (_STR, False),
    "seed": (_INT, True),
    "tiling": (_BOOL, True),
    "transparency": (_STR, True),
    "ultra": (_BOOL, True),
    "unzoom": (_BOOL, True),
    "unzoomAmount": (_NUM, True),
    "upscaleRatio": (_NUM, True),
    "width": (_INT, True),
    "controlNet": (_BOOL, True),
    "controlNetType": (_STR, False),
    "weighting": (_NUM, True),
    "canvasRequest": (_BOOL, True),
    "canvasRequestType": (_STR, True),
    "canvasInitId": (_STR, True),
    "canvasMaskId": (_STR, True),
    "enhancePrompt": (_BOOL, True),
    "enhancePromptInstruction": (_STR, True),
}

_CREATE_TEXTURE_FIELDS: Dict[str, _FieldSpec] = {
    "front_rotation_offset": (_INT, True),
    "modelAssetId": (_STR, False),
    "negative_prompt": (_STR, True),
    "preview": (_BOOL, True),
    "preview_direction": (_STR, True),
    "prompt": (_STR, False),
    "sd_version": (_STR, True),
    "seed": (_INT, True),
}

_MOTION_SVD_FIELDS: Dict[str, _FieldSpec] = {
    "imageId": (_STR, False),
    "isPublic": (_BOOL, True),
    "isInitImage": (_BOOL, True),
    "isVariation": (_BOOL, True),
    "motionStrength": (_INT, True),
}

_LCM_FIELDS: Dict[str, _FieldSpec] = {
    "imageDataUrl": (_STR, False),
    "prompt": (_STR, False),
    "guidance": (_NUM, True),
    "strength": (_NUM, True),
    "requestTimestamp": (_STR, False),
    "style": (_STR, True),
    "steps": (_INT, True),
    "width": (_INT, True),
    "height": (_INT, True),
    "seed": (_INT, True),
}

_LCM_INPAINTING_FIELDS: Dict[str, _FieldSpec] = dict(
    _LCM_FIELDS, maskDataUrl=(_STR, False)
)

_LCM_UPSCALE_FIELDS: Dict[str, _FieldSpec] = dict(
    _LCM_FIELDS, refineCreative=(_BOOL, True), refineStrength=(_NUM, True)
)

_TEXTURE_BY_ID_FIELDS: Dict[str, _FieldSpec] = {"id": (_STR, True)}

_TEXTURE_BY_MODEL_FIELDS: Dict[str, _FieldSpec] = {
    "limit": (_INT, True),
    "modelId": (_STR, True),
    "offset": (_INT, True),
}

# Nested input objects: (fields, required keys).
_INPUT_OBJECTS: Dict[str, Tuple[Dict[str, _FieldSpec], Tuple[str, ...]]] = {
    "controlnet_input": (
        {
            "initImageId": (_STR, False),
            "initImageType": (_STR, False),
            "preprocessorId": (_NUM, False),
            "weight": (_NUM, True),
            "strengthType": (_STR, True),
        },
        (),
    ),
    "element_input": ({"akUUID": (_STR, False), "weight": (_NUM, True)}, ("akUUID",)),
    "user_elements_input": ({"userLoraId": (_NUM, True), "weight": (_NUM, True)}, ()),
}

_GRAPHQL_TYPE_NAMES = {_STR: "String", _INT: "Int", _NUM: "Float", _BOOL: "Boolean"}


@dataclass(frozen=True)
class _BodySpec:
    fields: Dict[str, _FieldSpec]
    required: Tuple[str, ...]


# Route table: path pattern (segments; "{x}" is a parameter) -> {method: operation}.
_ROUTES: List[Tuple[Tuple[str, ...], Dict[str, str]]] = [
    (("generations",), {"POST": "create_generation"}),
    (("generations", "user", "{userId}"), {"GET": "get_generations_by_user_id"}),
    (("generations", "{id}"), {"GET": "get_generation", "DELETE": "delete_generation"}),
    (("generations-texture",), {"POST": "create_texture"}),
    (("generations-texture", "model", "{modelId}"), {"GET": "get_textures_by_model"}),
    (("generations-texture", "{id}"), {"GET": "get_texture", "DELETE": "delete_texture"}),
    (("generations-motion-svd",), {"POST": "create_motion_svd"}),
    (("generations-lcm",), {"POST": "lcm_generation"}),
    (("lcm-instant-refine",), {"POST": "lcm_instant_refine"}),
    (("lcm-inpainting",), {"POST": "lcm_inpainting"}),
    (("lcm-upscale",), {"POST": "lcm_upscale"}),
]

_BODY_SPECS: Dict[str, _BodySpec] = {
    "create_generation": _BodySpec(_CREATE_GENERATION_FIELDS, ("prompt",)),
    # The spec marks no field required here, but prompt and modelAssetId are non-nullable.
    "create_texture": _BodySpec(_CREATE_TEXTURE_FIELDS, ("prompt", "modelAssetId")),
    "get_texture": _BodySpec(_TEXTURE_BY_ID_FIELDS, ()),
    "delete_texture": _BodySpec(_TEXTURE_BY_ID_FIELDS, ()),
    "get_textures_by_model": _BodySpec(_TEXTURE_BY_MODEL_FIELDS, ()),
    "create_motion_svd": _BodySpec(_MOTION_SVD_FIELDS, ("imageId",)),
    "lcm_generation": _BodySpec(_LCM_FIELDS, ("imageDataUrl", "prompt")),
    "lcm_instant_refine": _BodySpec(_LCM_FIELDS, ("imageDataUrl", "prompt")),
    "lcm_inpainting": _BodySpec(
        _LCM_INPAINTING_FIELDS, ("imageDataUrl", "maskDataUrl", "prompt")
    ),
    "lcm_upscale": _BodySpec(_LCM_UPSCALE_FIELDS, ("imageDataUrl", "prompt")),
}


# --------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------


class _HeaderDict(Dict[str, str]):
    """A dict of request headers whose lookups ignore case (keys keep the case sent)."""

    def _key(self, key: object) -> object:
        if isinstance(key, str) and not dict.__contains__(self, key):
            lowered = key.lower()
            for existing in self.keys():
                if existing.lower() == lowered:
                    return existing
        return key

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, cast(str, self._key(key)))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    @overload  # type: ignore[override]
    def get(self, key: str) -> Optional[str]: ...

    @overload
    def get(self, key: str, default: Union[str, _T]) -> Union[str, _T]: ...

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, cast(str, self._key(key)), default)


@dataclass
class RecordedRequest:
    """One request received by the fake.

    ``path`` is relative to ``base_url`` for API calls (``"/generations/abc"``) and
    relative to ``root_url`` for everything else (``"/cdn/..."``), without the query
    string and still percent-encoded as sent. ``query`` holds the last value of each
    query parameter. ``headers`` ignores case on lookup. ``json`` is the parsed JSON
    body, or None when there is no body or it is not JSON; ``body`` is the raw bytes.
    """

    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    json: Any
    body: bytes = field(default=b"", repr=False)


# --------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class _DefaultStatus(int):
    """Marks ``inject(status=...)`` left at its default (prints as 500)."""


_DEFAULT_FAULT_STATUS = _DefaultStatus(500)


@dataclass
class _Fault:
    status: int
    remaining: Optional[int]
    path: Optional[str]
    method: Optional[str]
    retry_after: Optional[str]
    delay: float
    drop: bool
    body: Any
    truncate: bool
    passthrough: bool  # delay only: answer normally after the delay

    def matches(self, kind: str, path: str, method: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return kind == "api"
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


@dataclass
class _PngAsset:
    seed: str
    width: int
    height: int


@dataclass
class _BytesAsset:
    content_type: str
    data: bytes


_Asset = Union[_PngAsset, _BytesAsset]


@dataclass
class _Job:
    """What image, motion and texture generations share: id, age and fate."""

    id: str
    seq: int
    created: float  # time.monotonic() at creation
    created_at: str
    fail: bool
    final: Optional[str] = None  # COMPLETE or FAILED once reached (then never changes)


@dataclass
class _Generation(_Job):
    fields: Dict[str, Any] = field(default_factory=dict)
    images: List[Dict[str, Any]] = field(default_factory=list)  # "url" holds a path


@dataclass
class _Texture(_Job):
    model_asset_id: str = ""
    prompt: str = ""
    negative_prompt: Optional[str] = None
    seed: int = 0
    images: List[Dict[str, Any]] = field(default_factory=list)  # "url" holds a path


@dataclass
class _ImageRef:
    generation_id: str
    prompt: str
    width: int
    height: int
    path: str


_Answer = Tuple[int, Any, List[Tuple[str, str]]]


def _error_body(message: str, code: str) -> Dict[str, Any]:
    return {"error": message, "path": "$", "code": code}


def _default_error_body(status: int) -> Dict[str, Any]:
    if status == 401:
        return _error_body(_AUTH_ERROR, "access-denied")
    if status == 500:
        return _error_body("internal error", "unexpected")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error %d" % status
    if status == 400:
        return _error_body(phrase, "bad-request")
    if status == 404:
        return _error_body(phrase, "not-found")
    return _error_body(phrase, "unexpected")


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(kind: str, value: Any) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if kind == _BOOL:
        return isinstance(value, bool)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def _type_error(kind: str, value: Any) -> _ApiError:
    article = "an" if kind == _INT else "a"
    return _ApiError(
        400,
        "expected %s %s for type '%s', but found %s %s"
        % (
            article,
            kind,
            _GRAPHQL_TYPE_NAMES.get(kind, kind),
            "an" if _json_type_name(value) in ("array", "object") else "a",
            _json_type_name(value),
        ),
        "validation-failed",
    )


def _check_value(name: str, spec: _FieldSpec, value: Any) -> None:
    kind, nullable = spec
    if value is None:
        if not nullable:
            raise _ApiError(
                400,
                'expecting a value for non-nullable variable: "%s"' % name,
                "validation-failed",
            )
        return
    if kind.startswith("array:"):
        if not isinstance(value, list):
            raise _ApiError(
                400,
                "expected a list, but found %s" % _json_type_name(value),
                "validation-failed",
            )
        item_kind = kind[len("array:") :]
        for item in value:
            if item_kind in _INPUT_OBJECTS:
                _check_object(item_kind, item)
            elif item is not None and not _type_ok(item_kind, item):
                raise _type_error(item_kind, item)
        return
    if not _type_ok(kind, value):
        raise _type_error(kind, value)


def _check_object(type_name: str, value: Any) -> None:
    fields, required = _INPUT_OBJECTS[type_name]
    if not isinstance(value, dict):
        raise _ApiError(
            400,
            "expected an object for type '%s', but found %s"
            % (type_name, _json_type_name(value)),
            "validation-failed",
        )
    for key in value:
        if key not in fields:
            raise _ApiError(
                400,
                'field "%s" not found in type: \'%s\'' % (key, type_name),
                "validation-failed",
            )
    for key in required:
        if value.get(key) is None:
            raise _ApiError(
                400,
                'expecting a value for non-nullable field: "%s"' % key,
                "validation-failed",
            )
    for key, item in value.items():
        _check_value(key, fields[key], item)


def _validate_body(spec: _BodySpec, body: Dict[str, Any]) -> None:
    for key in body:
        if key not in spec.fields:
            raise _ApiError(400, "Unexpected variable %s" % key, "bad-request")
    for key in spec.required:
        if body.get(key) is None:
            raise _ApiError(
                400,
                'expecting a value for non-nullable variable: "%s"' % key,
                "validation-failed",
            )
    for key, value in body.items():
        _check_value(key, spec.fields[key], value)


def _int_param(name: str, query: Dict[str, str], body: Dict[str, Any], default: int) -> int:
    raw: Any = query.get(name)
    if raw is None:
        raw = body.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, str):
        try:
            value = int(raw.strip())
        except ValueError:
            raise _ApiError(
                400,
                'expected an integer for query parameter "%s", but found "%s"'
                % (name, raw),
                "validation-failed",
            ) from None
    else:
        value = int(raw)
    if value < 0:
        raise _ApiError(
            400, '"%s" must not be negative' % name, "validation-failed"
        )
    return value


def _timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)


def _seed_for(identifier: str) -> int:
    return zlib.crc32(identifier.encode("utf-8")) % 1000000000


def _cost() -> Dict[str, str]:
    return dict(_COST)


def _preview_size(width: int, height: int) -> Tuple[int, int]:
    """The requested size scaled down to at most 256 px on the long side (>= 8 each)."""
    width = max(1, width)
    height = max(1, height)
    scale = min(1.0, float(_MAX_PREVIEW_SIDE) / max(width, height))
    return (
        max(_MIN_PREVIEW_SIDE, int(round(width * scale))),
        max(_MIN_PREVIEW_SIDE, int(round(height * scale))),
    )


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def _render_png(seed: str, width: int, height: int) -> bytes:
    """A valid 8-bit RGB PNG: a diagonal gradient between two colours taken from seed."""
    h1 = zlib.crc32(seed.encode("utf-8"))
    h2 = zlib.crc32(b"leonardo:" + seed.encode("utf-8"))
    start = (h1 & 0xFF, (h1 >> 8) & 0xFF, (h1 >> 16) & 0xFF)
    end = (h2 & 0xFF, (h2 >> 8) & 0xFF, (h2 >> 16) & 0xFF)
    steps = width + height - 1
    line = bytearray()
    for k in range(steps):
        t = k / float(steps - 1) if steps > 1 else 0.0
        for a, b in zip(start, end):
            line.append(int(round(a + (b - a) * t)))
    rows = b"".join(
        b"\x00" + bytes(line[3 * y : 3 * (y + width)]) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 6))
        + _png_chunk(b"IEND", b"")
    )


def _render_mp4(seed: str) -> bytes:
    """A small payload that starts like an MP4 file (ftyp box), then free and mdat boxes."""
    ftyp_payload = b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41"
    ftyp = struct.pack(">I", 8 + len(ftyp_payload)) + b"ftyp" + ftyp_payload
    free = struct.pack(">I", 8) + b"free"
    h = zlib.crc32(seed.encode("utf-8"))
    mdat_payload = bytes((h + i * 131) % 256 for i in range(2048))
    mdat = struct.pack(">I", 8 + len(mdat_payload)) + b"mdat" + mdat_payload
    return ftyp + free + mdat


def _format_retry_after(value: Union[str, float, None]) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("retry_after must be a str, a number or None")
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _payload_from(body: Any) -> Tuple[bytes, str]:
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    else:
        return json.dumps(body).encode("utf-8"), _JSON_TYPE
    if data.lstrip()[:1] == b"<":
        return data, "text/html; charset=utf-8"
    return data, _JSON_TYPE


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Server(http.server.HTTPServer):
    """HTTPServer with one tracked thread per connection, all stoppable."""

    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], fake: FakeLeonardo) -> None:
        self.fake = fake
        self.stop_event = threading.Event()
        self._conn_lock = threading.Lock()
        self._sockets: Set[socket.socket] = set()
        self._threads: Set[threading.Thread] = set()
        self._closing = False
        self._counter = 0
        self._wake_r, self._wake_w = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise

    def run(self) -> None:
        """Accept connections until stop(): like serve_forever(), but woken at once."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stop_event.is_set():
                events = selector.select(1.0)
                if self.stop_event.is_set():
                    break
                for key, _ in events:
                    if key.fileobj is self.socket:
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def wake(self) -> None:
        """Set the stop event and wake run() (which then returns)."""
        self.stop_event.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def server_close(self) -> None:
        super().server_close()
        for sock in (self._wake_r, self._wake_w):
            try:
                sock.close()
            except OSError:
                pass

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may query DNS: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            if self._closing:
                self.shutdown_request(request)
                return
            self._threads = {t for t in self._threads if t.is_alive()}
            self._counter += 1
            thread = threading.Thread(
                target=self._serve_connection,
                args=(request, client_address),
                name="FakeLeonardo-conn-%d" % self._counter,
                daemon=True,
            )
            self._sockets.add(request)
            self._threads.add(thread)
        try:  # headers and body go out in separate writes: do not wait for delayed ACKs
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.fake._connection_accepted()
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._conn_lock:
                self._sockets.discard(request)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if self.stop_event.is_set() or isinstance(exc, (OSError, ValueError)):
            return  # the peer went away, or we are stopping
        traceback.print_exc()

    def close_connections(self) -> None:
        """Stop accepting, wake every connection thread and wait for them (bounded)."""
        with self._conn_lock:
            self._closing = True
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._conn_lock:
            leftovers = list(self._sockets)
            self._sockets.clear()
        for sock in leftovers:
            try:
                sock.close()
            except OSError:
                pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLeonardo/1.0"
    sys_version = ""
    timeout = _HANDLER_SOCKET_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # -- plumbing ---------------------------------------------------------------------

    def _read_body(self) -> bytes:
        encoding = self.headers.get("Transfer-Encoding", "")
        if "chunked" in encoding.lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None or length.strip() == "":
            return b""
        try:
            size = int(length)
        except ValueError:
            raise _BodyError(400, "invalid Content-Length") from None
        if size < 0:
            raise _BodyError(400, "invalid Content-Length")
        if size > _MAX_BODY:
            raise _BodyError(413, "request body too large")
        data = self.rfile.read(size)
        if len(data) != size:
            raise _BodyError(400, "incomplete request body")
        return data

    def _read_chunked(self) -> bytes:
        parts: List[bytes] = []
        total = 0
        while True:  # bounded: each turn consumes input, total is capped at _MAX_BODY
            line = self.rfile.readline(1024)
            if not line:
                raise _BodyError(400, "incomplete chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(400, "invalid chunk size") from None
            if size == 0:
                while True:  # trailers, up to an empty line
                    trailer = self.rfile.readline(1024)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BodyError(413, "request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Iterable[Tuple[str, str]] = (),
    ) -> None:
        self.send_response(int(status))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def _send_json(
        self, status: int, body: Any, headers: Iterable[Tuple[str, str]] = ()
    ) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self._send(status, payload, _JSON_TYPE, headers)

    def _dispatch(self) -> None:
        server = cast(_Server, self.server)
        fake = server.fake
        method = self.command.upper()
        parts = urlsplit(self.path)
        raw_path = parts.path or "/"
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = _HeaderDict(self.headers.items())
        try:
            raw_body = self._read_body()
            body_error: Optional[_BodyError] = None
        except _BodyError as exc:
            raw_body = b""
            body_error = exc
        parsed: Any = None
        json_ok = False
        if raw_body:
            try:
                parsed = json.loads(raw_body.decode("utf-8"))
                json_ok = True
            except ValueError:
                parsed = None

        if raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/"):
            kind, rel = "api", raw_path[len(API_PREFIX) :]
        elif raw_path.startswith("/cdn/"):
            kind, rel = "cdn", raw_path
        else:
            kind, rel = "other", raw_path
        fake._record(
            RecordedRequest(
                method=method,
                path=rel,
                query=dict(query),
                headers=headers,
                json=parsed,
                body=raw_body,
            )
        )
        if body_error is not None:
            self.close_connection = True
            self._send_json(
                body_error.status, _error_body(body_error.message, "bad-request")
            )
            return

        fault = fake._take_fault(kind, rel, method)
        if fault is not None and self._apply_fault(fault, server.stop_event):
            return

        if kind == "api":
            status, body, extra = fake._api(
                method, rel, query, headers, raw_body, json_ok, parsed
            )
            self._send_json(status, body, extra)
        elif kind == "cdn":
            self._serve_cdn(fake, method, rel, server.stop_event)
        else:
            self._send_json(404, _error_body("Not Found", "not-found"))

    def _apply_fault(self, fault: _Fault, stop: threading.Event) -> bool:
        """Play a fault; False means "now answer normally" (a delay-only fault)."""
        if fault.delay > 0:
            if stop.wait(fault.delay):
                self.close_connection = True  # stopping: abandon the request
                return True
            if fault.passthrough:
                return False
        if fault.drop:
            self.close_connection = True
            return True
        if fault.body is None:
            payload, content_type = _payload_from(_default_error_body(fault.status))
        else:
            payload, content_type = _payload_from(fault.body)
        extra: List[Tuple[str, str]] = []
        if fault.retry_after is not None:
            extra.append(("Retry-After", fault.retry_after))
        if not fault.truncate:
            self._send(fault.status, payload, content_type, extra)
            return True
        sent = payload[: len(payload) // 2]
        announced = len(payload) if len(payload) > len(sent) else len(sent) + 1
        self.send_response(fault.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(announced))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if sent:
            self.wfile.write(sent)
        self.close_connection = True
        return True

    def _serve_cdn(
        self, fake: FakeLeonardo, method: str, path: str, stop: threading.Event
    ) -> None:
        if method not in ("GET", "HEAD"):
            self._send_json(
                405,
                _error_body("Method Not Allowed", "method-not-allowed"),
                [("Allow", "GET, HEAD")],
            )
            return
        blob_size = _blob_size(path)
        if blob_size is not None:
            self._stream_blob(blob_size, stop)
            return
        asset = fake._asset_bytes(path)
        if asset is None:
            self._send_json(404, _error_body("Not Found", "not-found"))
            return
        data, content_type = asset
        self._send(200, data, content_type)

    def _stream_blob(self, size: int, stop: threading.Event) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command == "HEAD":
            return
        offset = 0
        while offset < size:  # bounded: size / 64 KiB turns
            if stop.is_set():
                self.close_connection = True
                return
            n = min(_CHUNK, size - offset)
            start = offset % _BLOB_PERIOD
            self.wfile.write(_BLOB_PATTERN[start : start + n])
            offset += n


def _blob_size(path: str) -> Optional[int]:
    prefix, suffix = "/cdn/blobs/", ".bin"
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    digits = path[len(prefix) : -len(suffix)]
    if not digits.isdigit() or len(digits) > 15:
        return None
    return int(digits)


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------


class FakeLeonardo:
    """An in-process fake Leonardo.Ai API server on 127.0.0.1 (see the module docstring).

    ``completion_delay`` (seconds a generation stays PENDING) and
    ``fail_new_generations`` may be changed at any time. ``base_url`` and
    ``root_url`` are set by :meth:`start` (empty strings before).
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key",
        completion_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host == "localhost":
            host = "127.0.0.1"
        if not host.startswith("127.") or not all(
            p.isdigit() and 0 <= int(p) <= 255 for p in host.split(".")
        ) or host.count(".") != 3:
            raise ValueError("FakeLeonardo listens on loopback only (127.x.x.x), not %r" % host)
        if completion_delay < 0:
            raise ValueError("completion_delay must not be negative")
        self.api_key: str = api_key
        self.completion_delay: float = completion_delay
        self.fail_new_generations: bool = False
        self.user_id: str = _USER_ID
        self.requests: List[RecordedRequest] = []
        self.connections_opened: int = 0
        self.base_url: str = ""
        self.root_url: str = ""
        self._host = host
        self._port = port
        self._lock = threading.RLock()
        self._lifecycle = threading.Lock()
        self._server: Optional[_Server] = None
        self._serve_thread: Optional[threading.Thread] = None
        self._faults: List[_Fault] = []
        self._seq = 0
        self._generations: Dict[str, _Generation] = {}
        self._textures: Dict[str, _Texture] = {}
        self._images: Dict[str, _ImageRef] = {}
        self._assets: Dict[str, _Asset] = {}
        self._rendered: Dict[str, bytes] = {}

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeLeonardo:
        """Start serving (binds the port; a no-op when already running)."""
        with self._lifecycle:
            if self._server is not None:
                return self
            server = _Server((self._host, self._port), self)
            port = int(server.server_address[1])
            self.root_url = "http://%s:%d" % (self._host, port)
            self.base_url = self.root_url + API_PREFIX
            thread = threading.Thread(
                target=server.run,
                name="FakeLeonardo-serve-%d" % port,
                daemon=True,
            )
            self._server = server
            self._serve_thread = thread
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: closes every connection and joins every thread (bounded).

        A no-op when not running. State (generations, recorded requests) is kept,
        and ``base_url`` keeps its value so a test can check that the port is closed.
        Do not call it from inside a request handler.
        """
        with self._lifecycle:
            server, thread = self._server, self._serve_thread
            if server is None:
                return
            self._server = None
            self._serve_thread = None
            server.wake()  # ends the accept loop; wakes delayed answers and blob streams
            if thread is not None:
                thread.join(_JOIN_TIMEOUT)
            server.server_close()  # the listening socket
            server.close_connections()

    def __enter__(self) -> FakeLeonardo:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return "<FakeLeonardo %s>" % state

    # -- test controls ----------------------------------------------------------------

    def inject(
        self,
        *,
        status: int = _DEFAULT_FAULT_STATUS,
        times: Optional[int] = 1,
        path: Optional[str] = None,
        method: Optional[str] = None,
        retry_after: Optional[Union[str, float]] = None,
        delay: float = 0.0,
        drop: bool = False,
        body: Any = None,
        truncate: bool = False,
    ) -> None:
        """Make the next ``times`` matching requests fail (``times=None``: until
        :meth:`clear_faults`).

        ``path`` is matched against the recorded path: exact (``"/generations"``,
        relative to ``base_url``) or a prefix ending in ``*`` (``"/generations/*"``);
        ``None`` matches every API path. Paths starting with ``/cdn/`` (relative to
        ``root_url``) match downloads, and ``"*"`` matches everything. ``method``
        None matches any method. The first matching fault, in order of
        registration, fires. A fault fires before the operation runs, so a faulted
        POST creates nothing (it is still recorded in :attr:`requests`).

        Effects, applied in this order:

        * ``delay``: wait that many seconds (interrupted by :meth:`stop`). With
          ``status`` left at its default and no ``body``, ``retry_after``, ``drop``
          or ``truncate``, the request is then answered normally (and the operation
          runs), which simulates a slow server.
        * ``drop``: close the connection without sending anything.
        * Otherwise answer ``status`` with ``body``: a dict or list is sent as JSON;
          a str or bytes is sent raw (``text/html`` when it starts with ``<``,
          else labelled JSON, for malformed-JSON tests); ``None`` sends the API's
          error envelope for that status. ``retry_after`` adds a ``Retry-After``
          header (a str is sent verbatim; a whole number of seconds as an integer,
          e.g. ``2.0`` -> ``"2"``; a fraction as is, e.g. ``"0.5"``).
        * ``truncate``: announce the full Content-Length, send only the first half
          of the body, then close the connection.
        """
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError("status must be an HTTP status code between 200 and 599")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise ValueError("times must be None or a positive integer")
        if path is not None and not (path.startswith("/") or path.endswith("*")):
            raise ValueError('path must start with "/" (or be a prefix ending with "*")')
        if delay < 0:
            raise ValueError("delay must not be negative")
        passthrough = (
            delay > 0
            and isinstance(status, _DefaultStatus)
            and body is None
            and retry_after is None
            and not drop
            and not truncate
        )
        fault = _Fault(
            status=int(status),
            remaining=times,
            path=path,
            method=method.upper() if method is not None else None,
            retry_after=_format_retry_after(retry_after),
            delay=float(delay),
            drop=drop,
            body=body,
            truncate=truncate,
            passthrough=passthrough,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            del self._faults[:]

    def fail_generation(self, generation_id: str) -> None:
        """Make that generation (image, motion or texture) end FAILED.

        It still stays PENDING until ``completion_delay`` has passed; one that has
        already completed turns FAILED at once. Raises KeyError for an unknown id.
        """
        with self._lock:
            job: Optional[_Job] = self._generations.get(generation_id)
            if job is None:
                job = self._textures.get(generation_id)
            if job is None:
                raise KeyError(generation_id)
            job.fail = True
            if job.final is not None:
                job.final = "FAILED"

    def blob_url(self, size: int) -> str:
        """URL of ``size`` deterministic bytes (byte i is ``i % 251``), streamed in
        64 KiB chunks and never held in memory whole. Needs the server started."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a non-negative integer")
        if len(str(size)) > 15:
            raise ValueError("size is too large")
        if not self.root_url:
            raise RuntimeError("start the FakeLeonardo first")
        return "%s/cdn/blobs/%d.bin" % (self.root_url, size)

    def generation_ids(self) -> List[str]:
        """Ids of the image and motion generations currently stored, oldest first."""
        with self._lock:
            return list(self._generations)

    # -- called by the handler threads ------------------------------------------------

    def _connection_accepted(self) -> None:
        with self._lock:
            self.connections_opened += 1

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_fault(self, kind: str, path: str, method: str) -> Optional[_Fault]:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(kind, path, method):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _asset_bytes(self, path: str) -> Optional[Tuple[bytes, str]]:
        with self._lock:
            asset = self._assets.get(path)
            cached = self._rendered.get(path)
        if asset is None:
            return None
        if isinstance(asset, _BytesAsset):
            return asset.data, asset.content_type
        if cached is None:
            cached = _render_png(asset.seed, asset.width, asset.height)
            with self._lock:
                cached = self._rendered.setdefault(path, cached)
        return cached, "image/png"

    def _api(
        self,
        method: str,
        rel: str,
        query: Dict[str, str],
        headers: Dict[str, str],
        raw_body: bytes,
        json_ok: bool,
        parsed: Any,
    ) -> _Answer:
        if headers.get("Authorization") != "Bearer %s" % self.api_key:
            return 401, _error_body(_AUTH_ERROR, "access-denied"), []
        route = _match_route(rel)
        if route is None:
            return 404, _error_body("Endpoint not found", "not-found"), []
        methods, params = route
        operation = methods.get(method)
        if operation is None:
            allow = ", ".join(sorted(methods))
            return (
                405,
                _error_body(
                    "method %s not allowed on this endpoint (allowed: %s)" % (method, allow),
                    "method-not-allowed",
                ),
                [("Allow", allow)],
            )
        try:
            body = self._body_for(operation, raw_body, json_ok, parsed)
            result = self._run(operation, params, query, body)
        except _ApiError as exc:
            return exc.status, _error_body(exc.message, exc.code), []
        except Exception:
            traceback.print_exc()
            return 500, _error_body("internal error", "unexpected"), []
        return 200, result, []

    @staticmethod
    def _body_for(
        operation: str, raw_body: bytes, json_ok: bool, parsed: Any
    ) -> Dict[str, Any]:
        spec = _BODY_SPECS.get(operation)
        if spec is None:
            return {}  # GET/DELETE /generations/{id}, GET /generations/user/{id}
        if not raw_body.strip():
            body: Dict[str, Any] = {}
        elif not json_ok:
            raise _ApiError(
                400, "Error in $: Failed reading: not a valid json value", "validation-failed"
            )
        elif not isinstance(parsed, dict):
            raise _ApiError(
                400,
                "expected an object, but found %s" % _json_type_name(parsed),
                "validation-failed",
            )
        else:
            body = parsed
        _validate_body(spec, body)
        return body

    def _run(
        self,
        operation: str,
        params: Dict[str, str],
        query: Dict[str, str],
        body: Dict[str, Any],
    ) -> Any:
        if operation == "create_generation":
            return self._create_generation(body)
        if operation == "get_generation":
            return self._get_generation(params["id"])
        if operation == "delete_generation":
            return self._delete_generation(params["id"])
        if operation == "get_generations_by_user_id":
            return self._list_generations(params["userId"], query)
        if operation == "create_texture":
            return self._create_texture(body)
        if operation == "get_texture":
            return self._get_texture(params["id"], query, body)
        if operation == "delete_texture":
            return self._delete_texture(params["id"])
        if operation == "get_textures_by_model":
            return self._list_textures(params["modelId"], query, body)
        if operation == "create_motion_svd":
            return self._create_motion(body)
        if operation == "lcm_upscale":
            return self._lcm(operation, body, upscale=True)
        return self._lcm(operation, body, upscale=False)

    # -- operations -------------------------------------------------------------------

    def _next_job(self, job_id: str) -> Dict[str, Any]:
        self._seq += 1
        return {
            "id": job_id,
            "seq": self._seq,
            "created": time.monotonic(),
            "created_at": _timestamp(),
            "fail": bool(self.fail_new_generations),
        }

    def _status(self, job: _Job) -> str:
        if job.final is None and time.monotonic() - job.created >= self.completion_delay:
            job.final = "FAILED" if job.fail else "COMPLETE"
        return job.final or "PENDING"

    def _url(self, path: str) -> str:
        return self.root_url + path

    def _create_generation(self, body: Dict[str, Any]) -> Dict[str, Any]:
        prompt = cast(str, body["prompt"])
        if len(prompt) > 1500:
            raise _ApiError(
                400,
                "Invalid prompt, maximum length of 1500 characters exceeded.",
                "unexpected",
            )
        width = _opt(body, "width", 1024)
        height = _opt(body, "height", 768)
        for side in (width, height):
            if not 32 <= side <= 1536 or side % 8:
                raise _ApiError(400, "invalid dimensions", "unexpected")
        num_images = _opt(body, "num_images", 4)
        most = 4 if width > 768 or height > 768 else 8
        if num_images < 1:
            raise _ApiError(400, "num_images must be at least 1", "unexpected")
        if num_images > most:
            raise _ApiError(400, "Too many images", "unexpected")
        generation_id = str(uuid.uuid4())
        photo_real = _opt(body, "photoReal", False)
        fields: Dict[str, Any] = {
            "prompt": prompt,
            "negativePrompt": body.get("negative_prompt"),
            "modelId": body.get("modelId"),
            "sdVersion": _opt(body, "sd_version", "v1_5"),
            "seed": _opt(body, "seed", _seed_for(generation_id)),
            "imageWidth": width,
            "imageHeight": height,
            "inferenceSteps": _opt(body, "num_inference_steps", 15),
            "guidanceScale": _opt(body, "guidance_scale", 7),
            "initStrength": body.get("init_strength"),
            "scheduler": _opt(body, "scheduler", "EULER_DISCRETE"),
            "presetStyle": _opt(body, "presetStyle", "DYNAMIC"),
            "public": _opt(body, "public", False),
            "ultra": _opt(body, "ultra", False),
            "photoReal": photo_real,
            "photoRealStrength": _opt(body, "photoRealStrength", 0.55) if photo_real else None,
            "promptMagic": _opt(body, "promptMagic", False),
            "promptMagicStrength": body.get("promptMagicStrength"),
            "promptMagicVersion": body.get("promptMagicVersion"),
        }
        elements = []
        for number, element in enumerate(body.get("elements") or [], start=1):
            ak_uuid = element["akUUID"]
            elements.append(
                {
                    "id": number,
                    "weightApplied": _opt(element, "weight", 1.0),
                    "lora": {
                        "akUUID": ak_uuid,
                        "baseModel": fields["sdVersion"],
                        "description": "Fake element %s" % ak_uuid,
                        "name": "Element %s" % ak_uuid[:8],
                        "urlImage": None,
                        "weightDefault": 1,
                        "weightMax": 2,
                        "weightMin": -1,
                    },
                }
            )
        fields["generation_elements"] = elements
        preview_w, preview_h = _preview_size(width, height)
        fantasy = _opt(body, "fantasyAvatar", False)
        with self._lock:
            generation = _Generation(fields=fields, **self._next_job(generation_id))
            for index in range(num_images):
                image_id = str(uuid.uuid4())
                path = "/cdn/users/%s/generations/%s/%s.png" % (
                    self.user_id,
                    generation_id,
                    image_id,
                )
                self._assets[path] = _PngAsset(
                    "%s\x00%d" % (prompt, index), preview_w, preview_h
                )
                self._images[image_id] = _ImageRef(
                    generation_id, prompt, preview_w, preview_h, path
                )
                generation.images.append(
                    _image_dict(image_id, path, fantasy, False, None, None, None, False)
                )
            self._generations[generation_id] = generation
        return {
            "sdGenerationJob": {
                "generationId": generation_id,
                "apiCreditCost": None,
                "cost": _cost(),
            }
        }

    def _create_motion(self, body: Dict[str, Any]) -> Dict[str, Any]:
        image_id = cast(str, body["imageId"])
        generation_id = str(uuid.uuid4())
        strength = body.get("motionStrength")
        with self._lock:
            source = self._images.get(image_id)
            if source is None or body.get("isInitImage") or body.get("isVariation"):
                # What the real API answers when given e.g. a generation id.
                raise _ApiError(400, "Service Error", "unexpected")
            fields: Dict[str, Any] = {
                "prompt": source.prompt,
                "negativePrompt": None,
                "modelId": None,
                "sdVersion": "v1_5",
                "seed": _seed_for(generation_id),
                "imageWidth": source.width,
                "imageHeight": source.height,
                "inferenceSteps": None,
                "guidanceScale": None,
                "initStrength": None,
                "scheduler": "EULER_DISCRETE",
                "presetStyle": None,
                "public": _opt(body, "isPublic", False),
                "ultra": None,
                "photoReal": None,
                "photoRealStrength": None,
                "promptMagic": None,
                "promptMagicStrength": None,
                "promptMagicVersion": None,
                "generation_elements": [],
            }
            generation = _Generation(fields=fields, **self._next_job(generation_id))
            out_id = str(uuid.uuid4())
            base = "/cdn/users/%s/generations/%s/%s" % (self.user_id, generation_id, out_id)
            still = self._assets.get(source.path)
            if isinstance(still, _PngAsset):
                self._assets[base + ".png"] = still
            self._assets[base + ".mp4"] = _BytesAsset("video/mp4", _render_mp4(out_id))
            generation.images.append(
                _image_dict(
                    out_id, base + ".png", False, True, "SVD", base + ".mp4", strength, True
                )
            )
            self._generations[generation_id] = generation
        return {
            "motionSvdGenerationJob": {
                "generationId": generation_id,
                "apiCreditCost": None,
                "cost": _cost(),
            }
        }

    def _generation_dict(self, generation: _Generation, listing: bool) -> Dict[str, Any]:
        status = self._status(generation)
        images: List[Dict[str, Any]] = []
        if status == "COMPLETE":
            for image in generation.images:
                item = dict(image)
                item["url"] = self._url(image["url"])
                if image["motionMP4URL"] is not None:
                    item["motionMP4URL"] = self._url(image["motionMP4URL"])
                item["generated_image_variation_generics"] = []
                if listing:
                    del item["fantasyAvatar"]  # not in the list endpoint's schema
                images.append(item)
        f = generation.fields
        return {
            "createdAt": generation.created_at,
            "id": generation.id,
            "status": status,
            "prompt": f["prompt"],
            "negativePrompt": f["negativePrompt"],
            "modelId": f["modelId"],
            "sdVersion": f["sdVersion"],
            "seed": f["seed"],
            "imageWidth": f["imageWidth"],
            "imageHeight": f["imageHeight"],
            "inferenceSteps": f["inferenceSteps"],
            "guidanceScale": f["guidanceScale"],
            "initStrength": f["initStrength"],
            "scheduler": f["scheduler"],
            "presetStyle": f["presetStyle"],
            "public": f["public"],
            "ultra": f["ultra"],
            "photoReal": f["photoReal"],
            "photoRealStrength": f["photoRealStrength"],
            "promptMagic": f["promptMagic"],
            "promptMagicStrength": f["promptMagicStrength"],
            "promptMagicVersion": f["promptMagicVersion"],
            "generated_images": images,
            "generation_elements": json.loads(json.dumps(f["generation_elements"])),
        }

    def _get_generation(self, generation_id: str) -> Dict[str, Any]:
        with self._lock:
            generation = self._generations.get(generation_id)
            found = None if generation is None else self._generation_dict(generation, False)
        return {"generations_by_pk": found}

    def _delete_generation(self, generation_id: str) -> Dict[str, Any]:
        with self._lock:
            generation = self._generations.pop(generation_id, None)
        if generation is None:
            return {"delete_generations_by_pk": None}
        return {"delete_generations_by_pk": {"id": generation_id}}

    def _list_generations(self, user_id: str, query: Dict[str, str]) -> Dict[str, Any]:
        offset = _int_param("offset", query, {}, 0)
        limit = _int_param("limit", query, {}, 10)
        if user_id != self.user_id:
            return {"generations": []}
        with self._lock:
            newest_first = sorted(self._generations.values(), key=lambda g: -g.seq)
            page = newest_first[offset : offset + limit]
            items = [self._generation_dict(g, True) for g in page]
        return {"generations": items}

    def _create_texture(self, body: Dict[str, Any]) -> Dict[str, Any]:
        texture_id = str(uuid.uuid4())
        prompt = cast(str, body["prompt"])
        with self._lock:
            texture = _Texture(
                model_asset_id=cast(str, body["modelAssetId"]),
                prompt=prompt,
                negative_prompt=body.get("negative_prompt"),
                seed=_opt(body, "seed", _seed_for(texture_id)),
                **self._next_job(texture_id),
            )
            for kind in _TEXTURE_TYPES:
                image_id = str(uuid.uuid4())
                path = "/cdn/users/%s/model_asset_texture_generations/%s/%s_%s.png" % (
                    self.user_id,
                    texture_id,
                    image_id,
                    kind.lower(),
                )
                self._assets[path] = _PngAsset("%s\x00%s" % (prompt, kind), 128, 128)
                texture.images.append({"id": image_id, "type": kind, "url": path})
            self._textures[texture_id] = texture
        return {
            "textureGenerationJob": {
                "id": texture_id,
                "apiCreditCost": None,
                "cost": _cost(),
            }
        }

    def _texture_dict(self, texture: _Texture) -> Dict[str, Any]:
        status = self._status(texture)
        images: List[Dict[str, Any]] = []
        if status == "COMPLETE":
            images = [
                {"id": i["id"], "type": i["type"], "url": self._url(i["url"])}
                for i in texture.images
            ]
        return {
            "createdAt": texture.created_at,
            "id": texture.id,
            "prompt": texture.prompt,
            "negativePrompt": texture.negative_prompt,
            "seed": texture.seed,
            "status": status,
            "model_asset_texture_images": images,
        }

    def _get_texture(
        self, texture_id: str, query: Dict[str, str], body: Dict[str, Any]
    ) -> Dict[str, Any]:
        _int_param("offset", query, {}, 0)  # accepted and checked, but unused
        _int_param("limit", query, {}, 10)
        with self._lock:
            texture = self._textures.get(texture_id)
            found = None if texture is None else self._texture_dict(texture)
        return {"model_asset_texture_generations_by_pk": found}

    def _delete_texture(self, texture_id: str) -> Dict[str, Any]:
        with self._lock:
            texture = self._textures.pop(texture_id, None)
        if texture is None:
            return {"delete_model_asset_texture_generations_by_pk": None}
        return {"delete_model_asset_texture_generations_by_pk": {"id": texture_id}}

    def _list_textures(
        self, model_id: str, query: Dict[str, str], body: Dict[str, Any]
    ) -> Dict[str, Any]:
        offset = _int_param("offset", query, body, 0)
        limit = _int_param("limit", query, body, 10)
        with self._lock:
            mine = [t for t in self._textures.values() if t.model_asset_id == model_id]
            mine.sort(key=lambda t: -t.seq)
            items = [self._texture_dict(t) for t in mine[offset : offset + limit]]
        return {"model_asset_texture_generations": items}

    def _lcm(self, operation: str, body: Dict[str, Any], upscale: bool) -> Dict[str, Any]:
        for key in ("imageDataUrl", "maskDataUrl"):
            value = body.get(key)
            if value is not None and not cast(str, value).startswith("data:image/"):
                raise _ApiError(
                    400,
                    "%s must be a base64 data URL starting with data:image/" % key,
                    "bad-request",
                )
        width = _opt(body, "width", 512)
        height = _opt(body, "height", 512)
        if width not in (512, 640, 1024) or height not in (512, 640, 1024):
            raise _ApiError(400, "invalid dimensions", "unexpected")
        preview_w, preview_h = _preview_size(width, height)
        png = _render_png(
            "%s\x00%s\x00%s" % (operation, body["prompt"], body.get("seed")),
            preview_w,
            preview_h,
        )
        data_url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        job: Dict[str, Any] = {"imageDataUrl": [data_url]}
        if upscale:
            job["generationId"] = [str(uuid.uuid4())]
            job["variationId"] = [str(uuid.uuid4())]
            job["generatedImageId"] = str(uuid.uuid4())
        timestamp = body.get("requestTimestamp")
        job["requestTimestamp"] = (
            timestamp if timestamp is not None else str(int(time.time() * 1000))
        )
        job["apiCreditCost"] = None
        job["cost"] = _cost()
        return {"lcmGenerationJob": job}


def _opt(body: Dict[str, Any], key: str, default: _T) -> _T:
    """body[key] unless absent or null."""
    value = body.get(key)
    return default if value is None else cast(_T, value)


def _image_dict(
    image_id: str,
    path: str,
    fantasy_avatar: bool,
    motion: bool,
    motion_model: Optional[str],
    motion_path: Optional[str],
    motion_strength: Optional[int],
    image_to_video: bool,
) -> Dict[str, Any]:
    return {
        "id": image_id,
        "url": path,
        "nsfw": False,
        "likeCount": 0,
        "fantasyAvatar": fantasy_avatar,
        "motion": motion,
        "motionModel": motion_model,
        "motionMP4URL": motion_path,
        "motionStrength": motion_strength,
        "imageToVideo": image_to_video,
        "generated_image_variation_generics": [],
    }


def _match_route(rel: str) -> Optional[Tuple[Dict[str, str], Dict[str, str]]]:
    if not rel.startswith("/"):
        return None
    segments = [unquote(s) for s in rel[1:].split("/")]
    for pattern, methods in _ROUTES:
        if len(pattern) != len(segments):
            continue
        params: Dict[str, str] = {}
        for expected, actual in zip(pattern, segments):
            if expected.startswith("{"):
                if not actual:
                    break
                params[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            return methods, params
    return None
