"""Results as files: which files a result names, safe names and extensions, atomic writes.

No HTTP here: the client fetches, this module decides names and writes bytes.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import ipaddress
import os
import posixpath
import re
import stat
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple, Union
from urllib.parse import urlsplit

from urllib3.util import parse_url

from .errors import LeonardoError, message_from, parse_json, redact, without_userinfo
from .payloads import check_text, check_type, shown, shown_path

EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "model/gltf-binary": ".glb",  # rodin-v2's 3D models
    "audio/mpeg": ".mp3",  # the audio models'
    "audio/wav": ".wav",
}
KNOWN_SUFFIXES = frozenset(EXTENSIONS.values()) | {".jpeg"}
# Where a GET answer holds its job; with an LCM answer's, where each kind of finished result keeps its files.
POLLED_KEYS = ("generations_by_pk", "model_asset_texture_generations_by_pk")
RESULT_KEYS = (*POLLED_KEYS, "lcmGenerationJob")
# Where a generation or a texture generation lists its files.
IMAGE_KEYS = ("generated_images", "model_asset_texture_images")

PathLike = Union[str, "os.PathLike[str]"]


class Readable(Protocol):
    """A binary file: anything whose read() gives bytes (BinaryIO, IO[bytes], a GzipFile...; a text file gives str)."""

    def read(self, size: int = ..., /) -> bytes: ...


Upload = Union[PathLike, bytes, bytearray, Readable]  # an image to upload: a path, its bytes, or a binary file
# download(url, path_for) fetches url and writes it to path_for(content_type); returns the path.
Download = Callable[[str, Callable[[str], str]], str]


def check_url(url: Any, key: str = "") -> str:
    """``url`` if a request can go to it; else a ValueError quoting it without ``key`` (an API key)."""
    text = check_text(check_type("url", url, str), "url")
    if not is_http(text):
        why = "a valid host and port, no control character, no space around it or in its host"
        raise ValueError(f"url is not an http(s) URL: {_describe(redact(text, key))} ({why})")
    return text


def is_http(url: str) -> bool:
    """Whether ``url`` is http(s) with a host a request can reach (no DNS label empty or over 63 characters)
    and a valid port, without a control character (urlsplit drops some, but not from err.url), one urllib3
    can parse (else its error quotes the URL whole, a password too). A space in the path, query or fragment
    is sent percent-encoded; one around the URL or in its host part (user:password@host:port) is refused."""
    if not url.isprintable() or url != url.strip(" "):  # no line break, NUL, tab or other control (a space is none)
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
        (parts.hostname or "").encode("idna")
        parse_url(url)
    except ValueError:  # a malformed IPv6 host, the idna codec's UnicodeError, urllib3's LocationParseError
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in parts.netloc


def is_loopback(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1"):  # the usual ones, without ip_address's 3 us (every request asks)
        return True
    if not host[:1].isdigit() and ":" not in host:  # a name, not an address (every request asks: no exception)
        return False
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


# What POST /init-image accepts (its spec says so only in prose), and the Content-Type of each (the fake's S3 form).
UPLOAD_EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
MAX_UPLOAD = 64 * 2 ** 20  # the most an upload reads: a stream without end (/dev/zero) is not read till memory runs out


def read_upload(file: Upload, extension: Optional[str]) -> Tuple[bytes, str]:
    """The bytes of an image to upload (a path, bytes or a binary file; at most MAX_UPLOAD) and its extension."""
    name, empty = "", "{} is empty: nothing to upload"
    if isinstance(file, (bytes, bytearray)):
        data = bytes(file)
    elif isinstance(file, (str, os.PathLike)):
        name = check_path(file, "file")
        try:
            with open(open_regular(name, os.O_RDONLY), "rb") as stream:
                if os.fstat(stream.fileno()).st_size > MAX_UPLOAD:  # not read at all (a sparse file of terabytes)
                    raise too_big(name)
                data = read_binary(stream)
        except OSError as exc:
            raise ValueError(f"cannot read {shown_path(name)}: {exc.strerror or exc}") from exc
    elif callable(getattr(file, "read", None)):
        given_name = getattr(file, "name", None)  # bytes if opened by a bytes path; an int fd (TemporaryFile)
        name = os.fsdecode(given_name) if isinstance(given_name, (str, bytes, os.PathLike)) else ""
        data = read_binary(file)
        empty = "nothing left to read in {} (read to its end already? seek(0) first)"  # a buffer never rewound
    else:
        raise TypeError(f"file must be a path, bytes or a binary file, not {type(file).__name__}")
    if len(data) > MAX_UPLOAD:
        raise too_big(name)
    if not data:  # sent, it would make an empty image
        raise ValueError(empty.format(shown_path(name) if name else "file"))
    check_type("extension", extension, (str, type(None)))
    given = bool(extension)
    extension = extension.lower().lstrip(".") if extension else extension_of(name)
    if not extension:
        has_none = f"{shown_path(name)} has none" if name else "bytes have none"
        raise ValueError(f"extension must be one of {', '.join(UPLOAD_EXTENSIONS)}: {has_none} (give extension=)")
    if extension not in UPLOAD_EXTENSIONS:
        of = f" (of {shown_path(name)})" if name and not given else ""
        raise ValueError(f"extension must be one of {', '.join(UPLOAD_EXTENSIONS)}, not {shown(extension)}{of}")
    return data, extension


def too_big(name: str) -> ValueError:
    over = f"is over {MAX_UPLOAD >> 20} MiB: more than an upload reads"
    return ValueError(f"{shown_path(name) if name else 'file'} {over}")


def read_binary(file: Any) -> bytes:
    """At most MAX_UPLOAD + 1 bytes of binary ``file``, read on after a short read (a raw pipe's, a socket's)."""
    chunks: List[bytes] = []
    left = MAX_UPLOAD + 1
    while left > 0:
        chunk = "" if isinstance(file, io.TextIOBase) else file.read(left)  # an image would not decode as text
        if chunk is None:  # a non-blocking stream with nothing ready: what came may be part of an image
            raise ValueError("file had no data ready (a non-blocking stream): read it whole, and upload the bytes")
        if not isinstance(chunk, bytes):
            raise TypeError("file must be opened in binary mode ('rb')")
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def open_regular(path: str, flags: int) -> int:
    """os.open(path, flags), refusing with an OSError what is not a regular file, at once: opening
    a FIFO would wait for its other end, reading /dev/zero never end. (O_NONBLOCK, there to open
    a FIFO without waiting, does nothing to a regular file.)"""
    try:
        fd = os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO no one reads, a socket
            raise OSError("not a regular file") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def extension_of(name: str) -> str:
    """The extension of a file's name, as an upload takes it: lower case, no dot ("" for none)."""
    return os.path.splitext(name)[1].lower().lstrip(".")


def upload_form(upload: Any) -> Tuple[str, Dict[str, Any]]:
    """The presigned S3 form's URL and fields in a POST /init-image answer with an id; else LeonardoError."""
    try:
        if not isinstance(upload, Mapping) or not isinstance(upload.get("id"), str):
            raise ValueError("no image id")
        fields = upload.get("fields")
        try:  # a JSON string, as documented (an object is taken too)
            fields = parse_json(fields) if isinstance(fields, str) else fields
        except ValueError as exc:
            raise ValueError(f"fields is not JSON: {exc}") from exc
        if fields is None:
            raise ValueError("no fields")
        if not isinstance(fields, dict):  # requests would fail on it later with a bare ValueError/TypeError
            raise ValueError(f"fields is a JSON {type(fields).__name__}, not an object")
        return check_url(upload.get("url")), fields
    except (TypeError, ValueError) as exc:
        raise LeonardoError(f"POST /init-image answered no usable upload form: {exc}", body=upload) from exc


def check_path(path: Any, what: str) -> str:
    """``path`` (a str or an os.PathLike of one) as a str the file system takes: not empty, no NUL."""
    target = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(target, str):
        raise TypeError(f"{what} must be a str or os.PathLike giving a str, not {type(target).__name__}")
    if not target or "\0" in target:
        raise ValueError(f"{what} must be a non-empty path without NUL characters, got {shown(target)}")
    try:
        os.fsencode(target)  # "\udcff" is a byte the file system gave; "\ud800" is none
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds characters no file name can: {shown_path(target)}") from None
    return target


def check_file_path(path: PathLike) -> str:
    """A file path to write a download to, in a folder that exists: checked before the download starts."""
    target = check_path(path, "path")
    if os.path.isdir(target) or target.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise ValueError(f"path {shown_path(target)} names a folder; give the file name to write")
    if not os.path.isdir(os.path.dirname(target) or os.curdir):
        raise ValueError(f"path {shown_path(target)} is in no existing folder")
    if os.path.exists(target) and not os.path.isfile(target):  # the file written would replace it (/dev/stdout...)
        raise ValueError(f"path {shown_path(target)} is not a regular file (a pipe or a device?); give a file's name")
    return target


def make_folder(folder: str) -> None:
    """Create ``folder`` (and its parents) unless it exists; ValueError if a file is in the way (the
    caller's argument is at fault), LeonardoError if it cannot be created."""
    try:
        makedirs(folder)
    except FileExistsError:
        raise ValueError(f"{shown_path(folder)} exists and is not a folder") from None
    except NotADirectoryError:
        raise ValueError(f"{shown_path(folder)} is inside a file, not a folder") from None
    except OSError as exc:
        raise LeonardoError(f"could not create folder {shown_path(folder)}: {exc.strerror or exc}") from exc


def makedirs(folder: str) -> None:
    """os.makedirs(folder, exist_ok=True), with an OSError, not a RecursionError, for too many folders.

    make_folder says its OSErrors in the library's words; the command line says them as its --out's.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except RecursionError:  # it recurses once a folder
        raise OSError("too many folders to create, one inside the other") from None


def save_results(result: Mapping[str, Any], folder: PathLike, download: Download) -> List[str]:
    """Write every file of ``result`` into ``folder``; see Client.save_results."""
    folder = check_path(folder, "folder")
    files = result_files(result)
    # Every data URL decoded before the first file is written: a malformed one leaves nothing behind.
    decoded = {url: decode_data_url(url) for _, url in files if url.startswith("data:")}
    if files:  # none to save: no folder made, left empty
        make_folder(folder)
    paths = []
    for name, url in files:
        base = os.path.join(folder, name)
        if url in decoded:
            mime, data = decoded[url]
            paths.append(base + EXTENSIONS.get(mime, ".bin"))
            write_atomically(paths[-1], [data])
        else:
            paths.append(download(url, _name_with_extension(base, url)))  # the download checks it
    return paths


def not_a_file(status: int, headers: Mapping[str, str]) -> str:
    """Why a download's answer is not the file, said before its body is read; "" if it may be: a 204, a 206's
    slice, a page (text/*, JSON or XML: a proxy's block page, an expired link's error) answering 2xx, or one in a
    compression not decoded here (br without brotli: saved as it came), is not."""
    if status != 200:
        return f"a {status} answer is not a whole file (only a 200 is)"
    media = headers.get("Content-Type", "").split(";")[0].strip().lower()
    top, _, sub = media.partition("/")
    if top not in ("image", "video", "audio", "model") and (  # image/svg+xml is an image
            top == "text" or sub in ("json", "xml") or sub.endswith(("+json", "+xml"))):
        return f"the server answered {media}, not a file"
    coding = headers.get("Content-Encoding", "")
    compressions = [c for c in re.split(r"[,;\s]+", coding.lower()) if c in _COMPRESSIONS]  # "zstd;x" is zstd
    if len(compressions) > 1 or set(compressions) - {"gzip", "deflate"}:
        return f"the server answered Content-Encoding: {coding}, a compression not decoded here"
    return ""  # a label that is no compression (S3's aws-chunked) is no coding


_COMPRESSIONS = ("gzip", "deflate", "br", "zstd", "compress", "x-gzip", "x-compress")


def _name_with_extension(base: str, url: str) -> Callable[[str], str]:
    """content type -> ``base`` plus the extension the URL names if it is a known type, else the type's."""
    suffix = posixpath.splitext(urlsplit(url).path)[1].lower()
    if suffix in KNOWN_SUFFIXES:
        return lambda content_type: base + suffix
    return lambda content_type: base + EXTENSIONS.get(content_type.split(";")[0].strip().lower(), ".bin")


def write_atomically(path: str, chunks: Iterable[bytes], sync: bool = True) -> None:
    """Write to a temporary file beside ``path``, then rename it into place; with ``sync``, its bytes
    reach the disk first (else a power cut can leave the new name on an empty file)."""
    temp = _temporary(path, os.urandom(4).hex())
    try:
        with open(temp, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(temp)
        # The file system's OSErrors carry an errno; requests' (raised by `chunks`) do not.
        if isinstance(exc, OSError) and exc.errno is not None:
            raise LeonardoError(f"could not write {shown_path(path)}: {exc.strerror or exc}") from exc
        raise


def _temporary(path: str, tag: str) -> str:
    folder, name = os.path.split(path)
    # The name cut to leave room for what is added: a name of 241 to 255 bytes (NAME_MAX) is saved too. Cut
    # between characters: exFAT, NTFS and APFS refuse a name that is not UTF-8.
    return os.path.join(folder, f".{os.fsencode(name)[:240].decode('utf-8', 'ignore')}.{tag}.part")


def remove_temporaries(path: str) -> None:
    """Remove what write_atomically left beside ``path`` in a process killed while it wrote."""
    import glob  # only as a batch starts: not loaded by `import leonardo_client`

    for stale in glob.glob(glob.escape(_temporary(path, "")[: -len(".part")]) + "[0-9a-f]" * 8 + ".part"):
        with contextlib.suppress(OSError):
            os.remove(stale)


def decode_data_url(url: str) -> Tuple[str, bytes]:
    header, comma, data = url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise LeonardoError(f"not a base64 data URL: {shown(url, 40)}")
    try:
        decoded = base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise LeonardoError("a data URL holds invalid base64") from exc
    if not decoded:  # saved, it would be an empty file
        raise LeonardoError(f"a data URL holds no data: {shown(url, 40)}")
    return header[5:].split(";")[0].strip().lower(), decoded


def safe_name(value: Any, fallback: str) -> str:
    """A file-name piece from an id: only [A-Za-z0-9._-], no leading dot, never empty."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip(".")[:80] if value else ""
    return text or fallback


def result_files(result: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(file name without extension, URL) for every file of a result; see Client.save_results.

    ValueError/TypeError for what is no result at all, or one not COMPLETE yet: the caller's mistake.
    LeonardoError for a result the API got wrong (see _unwrap, _generation_files).
    """
    result, wrapper = _unwrap(result)
    if wrapper == "lcmGenerationJob" or "imageDataUrl" in result:  # LCM: answered at once with base64 data URLs
        urls = _entries(result, "imageDataUrl", str)
        if not urls:  # an LCM answer is final: none will come
            raise LeonardoError("the API answered no images", body=dict(result))
        urls = [_file_url(url, f"imageDataUrl[{n}]") for n, url in enumerate(urls)]
        # requestTimestamp is the caller's (a loop's seconds, a fixed tag): the images' digest tells results apart,
        # and gives the same result, saved again, the same name
        digest = hashlib.sha256("\n".join(urls).encode("utf-8", "surrogatepass")).hexdigest()[:12]
        prefix = f"lcm-{safe_name(result.get('requestTimestamp'), 'result')}-{digest}"
        files = [(f"{prefix}_{n}", url) for n, url in enumerate(urls)]
    elif wrapper or result.get("status") == "COMPLETE" or any(key in result for key in IMAGE_KEYS):
        files = _generation_files(result)
    else:
        said = message_from(result)  # an error in a 200 ("Check the body shape", API_FACTS 1.3): the API's, not yours
        if said:
            raise LeonardoError(f"the API answered no result: {said}", body=dict(result))
        raise ValueError("result is not a generation, a texture generation or an LCM result")
    # Two ids that sanitise alike, or differ in case only (one file on macOS, Windows, exFAT), must not overwrite
    # each other: the second is "name-2", unless that is another id's own name ("a_b-2"), and so on.
    unique: Dict[str, Tuple[str, str]] = {}  # lower-cased name -> (name, URL), in order
    last: Dict[str, int] = {}  # lower-cased name -> the last n of its "name-n": each name's search goes on from there
    for name, url in files:
        unused, n = name, last.get(name.lower(), 1)
        while unused.lower() in unique:
            n += 1
            unused = f"{name}-{n}"
        unique[unused.lower()], last[name.lower()] = (unused, url), n
    return list(unique.values())


def _unwrap(result: Mapping[str, Any]) -> Tuple[Mapping[str, Any], Optional[str]]:
    """The result a whole response holds (and its key), else ``result`` itself (and None).

    A response holding a RESULT_KEYS key whose value is no object (the API's null...) is an answer with no result.
    """
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a dict, not {type(result).__name__}")
    key = next((key for key in RESULT_KEYS if key in result), None)
    if key is None:
        return result, None
    if result[key] is None and key in POLLED_KEYS:  # the API's answer for an id it does not know
        raise LeonardoError(f"the response's {key} is null: no such id", body=dict(result))
    if not isinstance(result[key], Mapping):
        raise LeonardoError(f"the response's {key} is not a result: {_describe(result[key])}", body=dict(result))
    return result[key], key


def _generation_files(result: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """The files of a generation or texture generation: ValueError unless COMPLETE, LeonardoError if it holds
    neither generated_images nor model_asset_texture_images ([] for an empty list), or a URL that is no file's."""
    status = result.get("status")
    if status == "FAILED":
        raise ValueError("the generation FAILED: it has no files to save")
    if status != "COMPLETE":
        said = "has no status" if status is None else f"is {shown(status)}"
        raise ValueError(f"the generation {said}, not COMPLETE: wait for it first")
    if not any(key in result for key in IMAGE_KEYS):
        raise LeonardoError(f"the COMPLETE result has no {' or '.join(IMAGE_KEYS)}", body=dict(result))
    generation = safe_name(result.get("id"), "generation")
    files = []
    for n, image in enumerate(_entries(result, "generated_images", Mapping)):
        if not has_file(image):  # its URL not filled in yet (the API may lag after COMPLETE): nothing to save
            continue
        name, where = f"{generation}_{safe_name(image.get('id'), str(n))}", f"generated_images[{n}]"
        key = file_key(image)
        files.append((name, _file_url(image.get(key), f"{where}.{key}")))
        motion = image.get("motionMP4URL")
        if key == "url" and motion and motion != image["url"]:  # a v2 video has it in both
            files.append((name + "_motion", _file_url(motion, where + ".motionMP4URL")))
    for n, texture in enumerate(_entries(result, "model_asset_texture_images", Mapping)):
        if not has_file(texture):
            continue
        kind = safe_name(str(texture.get("type") or "").lower(), str(n))
        files.append((f"{generation}_{kind}", _file_url(texture.get("url"), f"model_asset_texture_images[{n}].url")))
    return files


def file_key(image: Mapping[str, Any]) -> str:
    """The key of a generated image's file: ``url``, else ``motionMP4URL`` (a video's may be only there)."""
    return "url" if image.get("url") or not image.get("motionMP4URL") else "motionMP4URL"


def has_file(image: Any) -> bool:
    """Whether a listed image (generated_images, model_asset_texture_images) has a file to download: a url, or a
    video's motionMP4URL, neither null nor "" (the API may fill them in after COMPLETE)."""
    return isinstance(image, Mapping) and bool(image.get(file_key(image)))


def no_file_yet(result: Mapping[str, Any]) -> bool:
    """Whether a result lists its images with none to download ([], or every URL null or ""): a COMPLETE one so is
    not finished, or not filled in yet (API_FACTS_MORE (c))."""
    return any(isinstance(result.get(key), list) and not any(map(has_file, result[key])) for key in IMAGE_KEYS)


# A result is the API's answer: when its lists or URLs are not what the API documents, the
# answer is at fault, so these raise LeonardoError (before any file is written).


def _entries(result: Mapping[str, Any], key: str, kind: type) -> List[Any]:
    """``result[key]``, a list of ``kind`` (None or missing: empty)."""
    entries = result.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(entry, kind) for entry in entries):
        shape = "URLs" if kind is str else "objects"
        raise LeonardoError(f"the result's {key} is not a list of {shape}: {_describe(entries)}", body=dict(result))
    return entries


def _file_url(url: Any, where: str) -> str:
    """A URL of a result's file: a data: URL or an http(s) URL, valid text."""
    with contextlib.suppress(ValueError):  # a lone surrogate, from a \\udc80 escape in the JSON
        if isinstance(url, str) and (url.startswith("data:") or is_http(check_text(url, where))):
            return url
    raise LeonardoError(f"the result's {where} is not a file URL: {_describe(url)}")


def _describe(value: Any) -> str:
    """A value of the API's answer for a message: a string quoted, anything else by its JSON kind."""
    if isinstance(value, list):
        return "a list holding " + ", ".join(sorted({_json_kind(item) for item in value}))
    return shown(without_userinfo(value), 60) if isinstance(value, str) else _json_kind(value)


def _json_kind(value: Any) -> str:
    kinds = (("null", type(None)), ("a boolean", bool), ("a number", (int, float)), ("a string", str), ("a list", list))
    return next((name for name, kind in kinds if isinstance(value, kind)), "an object")
