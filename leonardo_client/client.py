"""Client: one requests.Session, one private _request(), and the 13 generation operations."""

from __future__ import annotations

import base64
import ipaddress
import logging
import math
import os
import posixpath
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote, urlsplit

import requests
from requests.__version__ import __version__ as requests_version
from requests.adapters import HTTPAdapter

from . import __version__
from ._retry import DEFAULT_BACKOFF_FACTOR, DEFAULT_MAX_RETRIES, default_retry, parse_retry_after
from .errors import LeonardoError

if TYPE_CHECKING:
    # Loaded on the first request body instead (see _body): `dataclasses` imports `inspect`,
    # which would make `import leonardo_client` ~15% slower than `import requests` alone.
    from .payloads import (
        CreateGenerationRequest,
        CreateLcmGenerationRequest,
        CreateSvdMotionGenerationRequest,
        CreateTextureGenerationRequest,
        LcmInpaintingRequest,
        LcmInstantRefineRequest,
        LcmUpscaleRequest,
    )

__all__ = ["Client", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT"]

DEFAULT_BASE_URL = "https://cloud.leonardo.ai/api/rest/v1"
# 10 s to connect is generous for a healthy API; 60 s to read covers the synchronous LCM
# operations, the slowest calls here. Every request gets a timeout: none can hang forever.
DEFAULT_TIMEOUT = (10.0, 60.0)
API_KEY_ENV = "LEONARDO_API_KEY"
BASE_URL_ENV = "LEONARDO_BASE_URL"
# Waiting: check at once, then after poll_interval, each interval 1.5x the last, up to 12 s.
# A 4 s generation is seen after ~4 requests, ~0.75 s late; a 5-minute one costs ~30 requests.
DEFAULT_WAIT_TIMEOUT = 300.0
DEFAULT_TEXTURE_WAIT_TIMEOUT = 600.0  # texture jobs take tens of seconds to minutes
DEFAULT_POLL_INTERVAL = 1.0
POLL_BACKOFF = 1.5
MAX_POLL_INTERVAL = 12.0
_DOWNLOAD_CHUNK = 64 * 1024
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
}
_KNOWN_SUFFIXES = frozenset(_EXTENSIONS.values()) | {".jpeg"}

log = logging.getLogger("leonardo_client")

Timeout = Union[float, Tuple[float, float]]
Body = Union[Mapping[str, Any], Any]


class Client:
    """A synchronous client for the Leonardo.Ai REST API (v1), safe to share between threads.

    Args:
        api_key: the API key; None reads ``LEONARDO_API_KEY``.
        base_url: the API root; None reads ``LEONARDO_BASE_URL``, else the public API.
            Plain http is refused unless the host is loopback (the key would travel in clear).
        timeout: (connect, read) seconds, or one number for both; applied to every request.
        max_retries: retries of a failed request under the retry rule; 0 turns retries off.
        backoff_factor: base of the exponential backoff between retries, in seconds.
        session: a ``requests.Session`` of your own (proxies, certificates); it stays yours
            to close. The retry adapter is mounted on it for the API's base URL only.
        pool_maxsize: connections kept open to the API, for threads sharing one client.
        user_agent: appended to the ``leonardo-client/<version>`` User-Agent.

    Raises:
        LeonardoError: no API key was given and ``LEONARDO_API_KEY`` is not set.
        ValueError, TypeError: an argument is unusable (a key with control characters,
            a plain-http base URL to a non-loopback host, a bad timeout).
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
        api_key = _check_api_key(api_key if api_key is not None else os.environ.get(API_KEY_ENV))
        self.base_url = _check_base_url(base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        self.timeout = _check_timeout(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an int >= 0")
        if isinstance(pool_maxsize, bool) or not isinstance(pool_maxsize, int) or pool_maxsize < 1:
            raise ValueError("pool_maxsize must be an int >= 1")
        self.retry = default_retry(max_retries, backoff_factor)

        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=self.retry)
        self._session.mount(self.base_url + "/", self._adapter)
        if self._owns_session:
            # Downloads from image hosts (any other origin) get the same retry rule, never the key.
            # A session of the caller's keeps the adapters it came with for other hosts.
            downloads = HTTPAdapter(pool_maxsize=pool_maxsize, max_retries=self.retry)
            self._session.mount("https://", downloads)
            self._session.mount("http://", downloads)

        if user_agent is not None and not (user_agent.isascii() and user_agent.isprintable()):
            raise ValueError("user_agent must be printable ASCII (a line break would inject headers)")
        agent = f"leonardo-client/{__version__} python-requests/{requests_version}"
        # Sent per request, never set on the session: other hosts (image CDNs) must not see the key.
        self._api_headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"{agent} {user_agent}" if user_agent else agent,
        }

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def close(self) -> None:
        """Release pooled connections (and the session, if this client created it)."""
        if self._owns_session:
            self._session.close()
        else:
            # types-requests < 2.31.0.7 (the stubs that go with urllib3 1.26) leave close() unannotated.
            self._adapter.close()  # type: ignore[no-untyped-call,unused-ignore]

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- the one place that talks HTTP to the API ------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Dict[str, int]] = None,
    ) -> Dict[str, Any]:
        url = self.base_url + path
        started = time.monotonic()
        try:
            response = self._session.request(
                method, url, json=json, params=params, headers=self._api_headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            log.debug("%s %s failed after %.3fs: %s", method, path, time.monotonic() - started, type(exc).__name__)
            raise LeonardoError(_describe_transport_error(exc), method=method, url=url) from exc
        log.debug("%s %s -> %s in %.3fs", method, path, response.status_code, time.monotonic() - started)

        # A cut-off answer must read as truncated, not as bad JSON or half an error message.
        missing = _truncation(response)
        if missing:
            raise LeonardoError(
                f"connection broke while reading the response (truncated body: {missing})",
                status_code=response.status_code,
                method=method,
                url=url,
            )
        if not 200 <= response.status_code < 300:
            raise LeonardoError.from_response(response, note=self._retry_note(response))
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise LeonardoError(
                "response body is not valid JSON",
                status_code=response.status_code,
                body=response.text[:200],
                method=method,
                url=url,
            ) from exc
        if not isinstance(data, dict):
            raise LeonardoError(
                f"expected a JSON object, got {type(data).__name__}",
                status_code=response.status_code,
                body=data,
                method=method,
                url=url,
            )
        return data

    def _retry_note(self, response: requests.Response) -> str:
        """Why a retryable failure reached the caller: retries spent, or a Retry-After too long."""
        # Uncapped: a wait equal to the cap was honoured (and retried); only a longer one was not.
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is not None and wait > self.retry.max_retry_after:
            return f"server asked to retry after {wait:.0f}s, over the {self.retry.max_retry_after:.0f}s cap"
        history = getattr(getattr(response.raw, "retries", None), "history", ())
        return f"after {len(history)} retries" if history else ""

    # --- generations ----------------------------------------------------------------------

    def create_generation(self, request: Union[CreateGenerationRequest, Mapping[str, Any]]) -> Dict[str, Any]:
        """POST /generations: start an image generation (spends credits).

        Args:
            request: a CreateGenerationRequest, or a mapping sent as given.

        Returns:
            The response; ``["sdGenerationJob"]["generationId"]`` is the id to poll.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/generations", json=_body(request, "CreateGenerationRequest"))

    def get_generation_by_id(self, id: str) -> Dict[str, Any]:
        """GET /generations/{id}: a generation, with its status and generated images.

        Args:
            id: the generation id: ``sdGenerationJob.generationId`` of create_generation, or
                ``motionSvdGenerationJob.generationId`` of create_svd_motion_generation.

        Returns:
            The response; ``["generations_by_pk"]`` is the generation (None for an unknown id).

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad id.
        """
        return self._request("GET", _path("generations", id))

    def delete_generation_by_id(self, id: str) -> Dict[str, Any]:
        """DELETE /generations/{id}: delete a generation.

        Args:
            id: the generation id.

        Returns:
            The response; ``["delete_generations_by_pk"]["id"]`` is the deleted id
            (``delete_generations_by_pk`` is None for an unknown id).

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad id.
        """
        return self._request("DELETE", _path("generations", id))

    def get_generations_by_user_id(
        self, user_id: str, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> Dict[str, Any]:
        """GET /generations/user/{userId}: a user's generations, newest first, one page.

        Args:
            user_id: the user's id (``GET /me`` gives it as ``user_details[0].user.id``).
            limit, offset: the page; the API's defaults (10, 0) apply when omitted.

        Returns:
            The response; ``["generations"]`` is the list of generations.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad argument.
        """
        return self._request("GET", _path("generations", "user", user_id), params=_page(limit, offset))

    # --- texture generations (legacy: dropped from Leonardo's public spec in 2026-04) --------

    def create_texture_generation(
        self, request: Union[CreateTextureGenerationRequest, Mapping[str, Any]]
    ) -> Dict[str, Any]:
        """POST /generations-texture: texture a 3D model asset (spends credits; legacy).

        Args:
            request: a CreateTextureGenerationRequest, or a mapping sent as given.

        Returns:
            The response; ``["textureGenerationJob"]["id"]`` is the id to poll.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/generations-texture", json=_body(request, "CreateTextureGenerationRequest"))

    def get_texture_generation_by_id(
        self, id: str, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> Dict[str, Any]:
        """GET /generations-texture/{id}: a texture generation and its texture images (legacy).

        Args:
            id: the texture generation id (``textureGenerationJob.id``).
            limit, offset: the page of texture images; the API's defaults (10, 0) apply when omitted.

        Returns:
            The response; ``["model_asset_texture_generations_by_pk"]`` is the texture
            generation (None for an unknown id).

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad argument.
        """
        return self._request("GET", _path("generations-texture", id), params=_page(limit, offset))

    def delete_texture_generation_by_id(self, id: str) -> Dict[str, Any]:
        """DELETE /generations-texture/{id}: delete a texture generation (legacy).

        Args:
            id: the texture generation id.

        Returns:
            The response; ``["delete_model_asset_texture_generations_by_pk"]["id"]`` is the
            deleted id.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad id.
        """
        return self._request("DELETE", _path("generations-texture", id))

    def get_texture_generations_by_model_id(
        self, model_id: str, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> Dict[str, Any]:
        """GET /generations-texture/model/{modelId}: the texture generations of a 3D model (legacy).

        Args:
            model_id: the id of the uploaded 3D model asset.
            limit, offset: the page; the API's defaults (10, 0) apply when omitted.

        Returns:
            The response; ``["model_asset_texture_generations"]`` is the list.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad argument.
        """
        return self._request("GET", _path("generations-texture", "model", model_id), params=_page(limit, offset))

    # --- motion -----------------------------------------------------------------------------

    def create_svd_motion_generation(
        self, request: Union[CreateSvdMotionGenerationRequest, Mapping[str, Any]]
    ) -> Dict[str, Any]:
        """POST /generations-motion-svd: turn a generated image into a video (spends credits).

        Args:
            request: a CreateSvdMotionGenerationRequest (its ``image_id`` is an *image* id,
                ``generated_images[].id``, not a generation id), or a mapping sent as given.

        Returns:
            The response; ``["motionSvdGenerationJob"]["generationId"]`` is the id to poll
            with get_generation_by_id; the video is at ``generated_images[].motionMP4URL``.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request(
            "POST", "/generations-motion-svd", json=_body(request, "CreateSvdMotionGenerationRequest")
        )

    # --- the four synchronous LCM operations --------------------------------------------------

    def create_lcm_generation(
        self, request: Union[CreateLcmGenerationRequest, Mapping[str, Any]]
    ) -> Dict[str, Any]:
        """POST /generations-lcm: a realtime (LCM) generation from an image, answered at once.

        Args:
            request: a CreateLcmGenerationRequest, or a mapping sent as given.

        Returns:
            The response; ``["lcmGenerationJob"]["imageDataUrl"]`` is a list of base64 data URLs.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/generations-lcm", json=_body(request, "CreateLcmGenerationRequest"))

    def perform_inpainting_lcm(self, request: Union[LcmInpaintingRequest, Mapping[str, Any]]) -> Dict[str, Any]:
        """POST /lcm-inpainting: regenerate the masked area of an image, answered at once.

        Args:
            request: an LcmInpaintingRequest, or a mapping sent as given.

        Returns:
            The response; ``["lcmGenerationJob"]["imageDataUrl"]`` is a list of base64 data URLs.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/lcm-inpainting", json=_body(request, "LcmInpaintingRequest"))

    def perform_instant_refine(
        self, request: Union[LcmInstantRefineRequest, Mapping[str, Any]]
    ) -> Dict[str, Any]:
        """POST /lcm-instant-refine: refine an image, answered at once.

        Args:
            request: an LcmInstantRefineRequest, or a mapping sent as given.

        Returns:
            The response; ``["lcmGenerationJob"]["imageDataUrl"]`` is a list of base64 data URLs.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/lcm-instant-refine", json=_body(request, "LcmInstantRefineRequest"))

    def perform_alchemy_upscale_lcm(self, request: Union[LcmUpscaleRequest, Mapping[str, Any]]) -> Dict[str, Any]:
        """POST /lcm-upscale: an Alchemy upscale of an image, answered at once and stored.

        Args:
            request: an LcmUpscaleRequest, or a mapping sent as given.

        Returns:
            The response; ``["lcmGenerationJob"]`` holds ``imageDataUrl`` (base64 data URLs),
            ``generationId``, ``variationId`` and ``generatedImageId``.

        Raises:
            LeonardoError: the call failed. TypeError/ValueError: a bad request argument.
        """
        return self._request("POST", "/lcm-upscale", json=_body(request, "LcmUpscaleRequest"))

    # --- waiting, downloading and saving results -----------------------------------------------

    def wait_for_generation(
        self,
        id: str,
        timeout: float = DEFAULT_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_poll: Optional[Callable[[str, float], None]] = None,
    ) -> Dict[str, Any]:
        """Poll GET /generations/{id} until an image or motion generation has finished.

        The first check is immediate, the second comes ``poll_interval`` seconds later, and
        each interval after that is 1.5 times the last, up to 12 s: a generation that takes
        4 s is seen after 4 requests, under a second after it finished; a 5-minute one costs
        about 30 requests. No sleep goes past the deadline; a single request may
        still take up to the client's timeout.

        Args:
            id: ``sdGenerationJob.generationId`` or ``motionSvdGenerationJob.generationId``.
            timeout: seconds to wait in all before giving up.
            poll_interval: seconds between the first two checks; later intervals grow from it.
            on_poll: called after every check with the status and the seconds elapsed.

        Returns:
            ``generations_by_pk``, the finished generation: images at
            ``generated_images[].url``, a motion video at ``generated_images[].motionMP4URL``.

        Raises:
            LeonardoError: the generation FAILED, does not exist, is still running when the
                timeout passes, or a check failed. TypeError/ValueError: a bad argument.
        """
        return self._wait(
            self.get_generation_by_id, "generations_by_pk", "generation", id, timeout, poll_interval, on_poll
        )

    def wait_for_texture_generation(
        self,
        id: str,
        timeout: float = DEFAULT_TEXTURE_WAIT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_poll: Optional[Callable[[str, float], None]] = None,
    ) -> Dict[str, Any]:
        """Poll GET /generations-texture/{id} until a texture generation has finished (legacy).

        Polls like wait_for_generation; ``id`` is ``textureGenerationJob.id``.

        Args:
            id: ``textureGenerationJob.id`` of create_texture_generation.
            timeout: seconds to wait in all before giving up (default 600: texture jobs are slow).
            poll_interval: seconds between the first two checks; later intervals grow from it.
            on_poll: called after every check with the status and the seconds elapsed.

        Returns:
            ``model_asset_texture_generations_by_pk``; the maps are at
            ``model_asset_texture_images[].{type,url}``.

        Raises:
            LeonardoError: FAILED, no such id, timeout, or a check failed.
            TypeError/ValueError: a bad argument.
        """
        return self._wait(
            self.get_texture_generation_by_id,
            "model_asset_texture_generations_by_pk",
            "texture generation",
            id,
            timeout,
            poll_interval,
            on_poll,
        )

    def _wait(
        self,
        fetch: Callable[[str], Dict[str, Any]],
        key: str,
        what: str,
        id: str,
        timeout: float,
        poll_interval: float,
        on_poll: Optional[Callable[[str, float], None]],
    ) -> Dict[str, Any]:
        for name, value in (("timeout", timeout), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        started = time.monotonic()
        deadline = started + timeout
        interval = float(poll_interval)
        while True:  # bounded by the deadline
            found = fetch(id).get(key)
            elapsed = time.monotonic() - started
            if not isinstance(found, dict):
                raise LeonardoError(f"no {what} with id {id!r} (the API answered {key}: null)")
            status = str(found.get("status"))
            if on_poll is not None:
                on_poll(status, elapsed)
            if status == "COMPLETE":
                return found
            if status == "FAILED":
                raise LeonardoError(f"{what} {id} FAILED", body=found)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LeonardoError(f"{what} {id} still {status} after {elapsed:.1f}s (timeout {timeout:g}s)", body=found)
            time.sleep(min(interval, left))
            interval = min(interval * POLL_BACKOFF, max(MAX_POLL_INTERVAL, poll_interval))

    def download_image(self, url: str, path: Union[str, "os.PathLike[str]"]) -> str:
        """GET a file (image or video) from an image host and write it to ``path``.

        The body is streamed to a temporary file beside ``path`` in 64 KiB chunks and renamed
        into place when complete, so ``path`` never holds a partial file. No API key is sent.
        The client's timeouts apply, and GET is retried under the client's retry rule (with a
        session of your own, downloads use that session's adapters as they are).

        Args:
            url: the file's http(s) URL, e.g. ``generated_images[].url``.
            path: the file to write (its folder must exist); replaced if it exists.

        Returns:
            ``path``, as a str.

        Raises:
            LeonardoError: an error status, a connection failure or timeout, a body shorter
                than its Content-Length, or the file could not be written.
            ValueError/TypeError: not an http(s) URL, or ``path`` is a folder.
        """
        target = os.fspath(path)
        if os.path.isdir(target):
            raise ValueError(f"path {target!r} is a folder; give the file name to write")
        return self._download(url, target)

    def save_results(self, result: Mapping[str, Any], folder: Union[str, "os.PathLike[str]"]) -> List[str]:
        """Save every file of a finished result into ``folder`` (created if needed).

        ``result`` is a finished generation (``generations_by_pk``, as wait_for_generation
        returns it: its images, and the video of a motion generation), a finished texture
        generation (its maps), or an LCM response or its ``lcmGenerationJob`` (the base64
        images, decoded); a whole GET response is unwrapped too. File names come from ids
        only, reduced to ``[A-Za-z0-9._-]``: ``<generation id>_<image id>.png``,
        ``<generation id>_<image id>_motion.mp4``, ``<texture generation id>_<type>.png``,
        ``lcm-<requestTimestamp>_<n>.png``. The extension comes from the URL when it names a
        known image or video type, else from the Content-Type. A file of the same name is
        replaced.

        Returns:
            The paths written, in the order of the result.

        Raises:
            LeonardoError: a download failed, a data URL is malformed, or a file could not be
                written. ValueError/TypeError: not a result, or one that has not COMPLETEd.
        """
        files = _result_files(result)
        folder = os.fspath(folder)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise LeonardoError(f"could not create folder {folder!r}: {exc.strerror or exc}") from exc
        paths = []
        for name, url in files:
            base = os.path.join(folder, name)
            if url.startswith("data:"):
                mime, data = _decode_data_url(url)
                paths.append(base + _EXTENSIONS.get(mime, ".bin"))
                _write_atomically(paths[-1], [data])
                continue
            _check_download_url(url)
            suffix = posixpath.splitext(urlsplit(url).path)[1].lower()
            if suffix in _KNOWN_SUFFIXES:
                paths.append(self._download(url, base + suffix))
            else:
                paths.append(self._download(url, base, extension_from_type=True))
        return paths

    def _download(self, url: str, path: str, extension_from_type: bool = False) -> str:
        """The one place that fetches files from image hosts: streamed, atomic, without the key."""
        _check_download_url(url)
        try:
            response = self._session.get(
                url,
                headers={"User-Agent": self._api_headers["User-Agent"]},
                timeout=self.timeout,
                stream=True,
            )
        except requests.RequestException as exc:
            raise LeonardoError(
                f"download failed: {_describe_transport_error(exc, 'the image host')}", method="GET", url=url
            ) from exc
        with response:
            if not 200 <= response.status_code < 300:
                raise LeonardoError.from_response(response, note="download failed")
            if extension_from_type:
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                path += _EXTENSIONS.get(content_type, ".bin")
            try:
                _write_atomically(path, _body_chunks(response, url))
            except requests.RequestException as exc:
                raise LeonardoError(
                    f"download failed: {_describe_transport_error(exc, 'the image host')}", method="GET", url=url
                ) from exc
        return path


# --- argument checks: all run before anything is sent -----------------------------------------


def _path(*segments: str) -> str:
    """Join path segments, each percent-encoded as exactly one segment.

    The first segment is a literal of ours; the last is the caller's id, which must be a
    non-empty string and not "." or ".." (requests would resolve those and climb out).
    """
    *fixed, ident = segments
    if not isinstance(ident, str):
        raise TypeError(f"id must be a str, not {type(ident).__name__}")
    if ident.strip() in ("", ".", ".."):
        raise ValueError(f"invalid id {ident!r}: must be a non-empty string, not '.' or '..'")
    return "/" + "/".join(fixed) + "/" + quote(ident, safe="")


def _page(limit: Optional[int], offset: Optional[int]) -> Optional[Dict[str, int]]:
    params = {}
    for name, value in (("limit", limit), ("offset", offset)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0")
        params[name] = value
    return params or None


def _body(request: Any, expected: str) -> Any:
    """The JSON of a request body: ``expected`` names its payloads dataclass."""
    from . import payloads  # cached after the first call; not at import time (see the imports)

    if isinstance(request, Mapping) or isinstance(request, getattr(payloads, expected)):
        return payloads.to_payload(request)
    raise TypeError(f"request must be a {expected} or a mapping, not {type(request).__name__}")


def _check_api_key(api_key: Optional[str]) -> str:
    if not api_key:
        raise LeonardoError(f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable")
    if not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, not {type(api_key).__name__}")
    if not (api_key.isascii() and api_key.isprintable()):
        # A line break would let the key inject headers, and a non-ASCII one fails on every call
        # (header values are latin-1) with a raw UnicodeEncodeError; never echo the key itself.
        raise ValueError("api_key contains a control or non-ASCII character (line break?); check how it was read")
    if not api_key.strip():
        raise LeonardoError(f"no API key (only spaces): pass api_key= or set the {API_KEY_ENV} environment variable")
    return api_key.strip()


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain-http base_url {base_url!r}: the API key would travel unencrypted "
            "(http is allowed only for loopback hosts)"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_timeout(timeout: Timeout) -> Timeout:
    # requests takes a number or a (connect, read) pair, and fails only at call time otherwise.
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if (isinstance(timeout, tuple) and len(values) != 2) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in values
    ):
        raise ValueError(f"timeout must be a positive number or a (connect, read) pair, got {timeout!r}")
    return timeout


def _describe_transport_error(exc: requests.RequestException, peer: str = "the API") -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return f"timed out connecting to {peer}"
    if isinstance(exc, requests.ReadTimeout):
        return f"timed out waiting for {peer}'s response"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broke while reading the response (truncated body)"
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", None) or reason  # MaxRetryError -> the underlying cause
        text = str(reason)
        if len(getattr(reason, "args", ())) == 2 and isinstance(reason.args[1], Exception):
            # ProtocolError('Connection aborted.', RemoteDisconnected('Remote end closed ...'))
            text = f"{str(reason.args[0]).rstrip('.')}: {reason.args[1]}"
        # urllib3 prefixes the connection object's repr: keep only what happened.
        for marker in ("): ", ">: "):
            if marker in text:
                text = text.split(marker, 1)[1]
        return f"connection failed: {text}"
    return f"request failed: {type(exc).__name__}: {exc}"


# --- downloads and saved files -------------------------------------------------------------------


def _check_download_url(url: str) -> None:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"can only download http(s) URLs, got {url[:60]!r}")


def _body_chunks(response: requests.Response, url: str) -> Iterator[bytes]:
    yield from response.iter_content(_DOWNLOAD_CHUNK)
    missing = _truncation(response)
    if missing:
        raise LeonardoError(f"download truncated: received {missing}", method="GET", url=url)


def _truncation(response: requests.Response) -> str:
    """How much of a body arrived ("N of M bytes") when it ended before its Content-Length, else "".

    urllib3 2.x raises on a short body; 1.26 ends it silently, so compare for both.
    """
    expected = response.headers.get("Content-Length", "").strip()
    received = getattr(response.raw, "tell", lambda: None)()
    if expected.isdigit() and isinstance(received, int) and received < int(expected):
        return f"{received} of {expected} bytes"
    return ""


def _write_atomically(path: str, chunks: Iterable[bytes]) -> None:
    """Write to a temporary file beside ``path``, then rename it into place."""
    folder, name = os.path.split(path)
    temp = os.path.join(folder, f".{name}.{os.urandom(4).hex()}.part")
    try:
        with open(temp, "xb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temp, path)
    except BaseException as exc:
        try:
            os.remove(temp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            raise LeonardoError(f"could not write {path!r}: {exc.strerror or exc}") from exc
        raise


def _decode_data_url(url: str) -> Tuple[str, bytes]:
    header, comma, data = url.partition(",")
    if not comma or not header.lower().endswith(";base64"):
        raise LeonardoError(f"not a base64 data URL: {url[:40]!r}")
    try:
        return header[5:].split(";")[0].strip().lower(), base64.b64decode(data, validate=True)
    except ValueError as exc:
        raise LeonardoError("a data URL holds invalid base64") from exc


def _safe_name(value: Any, fallback: str) -> str:
    """A file-name piece from an id: only [A-Za-z0-9._-], no leading dot, never empty."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip(".")[:80] if value else ""
    return text or fallback


def _result_files(result: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """(file name without extension, URL) for every file of a result; see Client.save_results."""
    if not isinstance(result, Mapping):
        raise TypeError(f"result must be a dict, not {type(result).__name__}")
    for key in ("generations_by_pk", "model_asset_texture_generations_by_pk", "lcmGenerationJob"):
        if isinstance(result.get(key), Mapping):
            result = result[key]
            break
    files: List[Tuple[str, str]] = []
    if "imageDataUrl" in result:  # LCM: answered at once with base64 data URLs
        prefix = "lcm-" + _safe_name(result.get("requestTimestamp"), "result")
        files = [(f"{prefix}_{n}", url) for n, url in enumerate(result["imageDataUrl"] or [])]
    elif "generated_images" in result or "model_asset_texture_images" in result:
        if result.get("status") != "COMPLETE":
            raise ValueError(f"the generation is {result.get('status')}, not COMPLETE: wait for it first")
        generation = _safe_name(result.get("id"), "generation")
        for n, image in enumerate(result.get("generated_images") or []):
            name = f"{generation}_{_safe_name(image.get('id'), str(n))}"
            files.append((name, image["url"]))
            if image.get("motionMP4URL"):
                files.append((name + "_motion", image["motionMP4URL"]))
        for n, texture in enumerate(result.get("model_asset_texture_images") or []):
            kind = _safe_name(str(texture.get("type") or "").lower(), str(n))
            files.append((f"{generation}_{kind}", texture["url"]))
    else:
        raise ValueError("result is not a generation, a texture generation or an LCM result")
    seen: Dict[str, int] = {}
    unique = []
    for name, url in files:  # two ids that sanitise alike must not overwrite each other
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name}-{seen[name]}", url))
    return unique
