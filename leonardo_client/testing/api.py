"""The fake API's state and one handler per operation, named after the Client's method; the S3 bucket behind
POST /init-image (presigned form fields out, a multipart/form-data POST in, S3's XML errors); the webhook (each
completed generation's ``image_generation.complete`` payload POSTed to ``webhook_url`` from a background thread; a
failed delivery is recorded in ``FakeLeonardo.webhook_errors``, never raised)."""

from __future__ import annotations

import base64
import contextlib
import email
import functools
import hashlib
import json
import math
import re
import threading
import time
import traceback
import urllib.request
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import Message
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, MutableMapping, Optional, Tuple, TypeVar, cast
from urllib.parse import urlsplit

from .._files import UPLOAD_EXTENSIONS, is_http, is_loopback
from ..payloads import V1_PROMPT_MAX, V1_SIDES, check_v1_model_id, is_header_text, is_uuid, v1_images_at_most
from .account import Account, Job, timestamp
from .media import preview_size, render_jpeg, render_mp4, render_png
from .server import Answer, ApiError, RecordedRequest, S3Error, default_error, json_answer, json_bytes, parse_body
from .spec import Operation, Spec, invalid, load_spec

if TYPE_CHECKING:
    from . import FakeLeonardo

_TEXTURE_TYPES = ("ALBEDO", "NORMAL", "ROUGHNESS", "DISPLACEMENT")
_LCM_SIZES = (512, 640, 1024)
BUCKET = "fake-leonardo-uploads"
EXPIRY = 120.0  # seconds: "The presigned URL expires in 2 minutes"
V2_CREDITS_PER_OUTPUT = 8  # what the fake bills a v2 output (the create response's cost)
WEBHOOK_TIMEOUT = 2.0  # seconds for one delivery
WEBHOOK_KEY_ID = "fake-api-key-id"  # the API key's id a webhook's payload names, twice
# The headers of Leonardo's documented example delivery, besides its Authorization.
WEBHOOK_HEADERS = {
    "user-agent": "axios/1.4.0", "content-type": "application/json", "accept": "application/json, text/plain, */*"
}
WEBHOOK_TICK = 0.05  # seconds between looks for finished jobs
# Keys of the documented payload's generation the fake has no value for, then those it has.
_UNKNOWN = (
    "initGeneratedImageId initImageId initType initUpscaledImageId imageAspectRatio canvasInitImageId "
    "canvasMaskImageId imagePromptStrength category poseImage2ImageType poseImage2ImageWeight alchemy "
    "contrastRatio highResolution expandedDomain unzoom unzoomAmount"
).split()
_CONSTANT = dict(flagged=False, nsfw=False, coreModel="SD", tiling=False, tokenCost=0, negativeStylePrompt="",
                 canvasRequest=False, api=True, poseImage2Image=False, highContrast=False, apiDollarCost="9",
                 imageToImage=False, controlnetsUsed=False, apiKeyId=WEBHOOK_KEY_ID)
# The documented payload's model object, in its order: the fake knows only its id (the generation's modelId) and
# names it; the rest are null.
_MODEL_KEYS = (
    "id createdAt updatedAt name description public userId flagged nsfw official status classPrompt coreModel "
    "initDatasetId instancePrompt sdVersion trainingEpoch trainingSteps tokenCost batchSize learningRate type "
    "modelHeight modelWidth leonardoInstancePrompt trainingStrength featured featuredImageId featuredPosition api "
    "favouriteCount imageCount enhancedModeration apiDollarCost apiKeyId modelLRN"
).split()
_AS_IN_GET = "guidanceScale imageHeight imageWidth inferenceSteps modelId prompt sdVersion scheduler presetStyle " \
    "initStrength photoRealStrength promptMagicStrength promptMagicVersion public status".split()
# The generation object's settings: key -> (request key, value when not given).
_SETTINGS: Dict[str, Tuple[str, Any]] = dict(
    prompt=("prompt", None), negativePrompt=("negative_prompt", None), modelId=("modelId", None),
    sdVersion=("sd_version", "v1_5"), seed=("seed", None), imageWidth=("width", None), imageHeight=("height", None),
    inferenceSteps=("num_inference_steps", 15), guidanceScale=("guidance_scale", 7),
    initStrength=("init_strength", None),
    scheduler=("scheduler", "EULER_DISCRETE"), presetStyle=("presetStyle", "DYNAMIC"), public=("public", False),
    ultra=("ultra", False), photoReal=("photoReal", False), photoRealStrength=("photoRealStrength", None),
    promptMagic=("promptMagic", False), promptMagicStrength=("promptMagicStrength", None),
    promptMagicVersion=("promptMagicVersion", None),
)


Stored = TypeVar("Stored")


class ById(MutableMapping[str, Stored]):
    """A store keyed by the API's ids, Postgres uuids: read in either case (the fake makes them in lower case)."""

    def __init__(self) -> None:
        self._items: Dict[str, Stored] = {}

    def __getitem__(self, id: str) -> Stored:
        return self._items[_folded(id)]

    def __setitem__(self, id: str, value: Stored) -> None:
        self._items[_folded(id)] = value

    def __delitem__(self, id: str) -> None:
        del self._items[_folded(id)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _folded(id: Any) -> Any:
    """An id as the stores key it: a str in lower case; anything else as it is (a KeyError, not AttributeError)."""
    return id.lower() if isinstance(id, str) else id


@dataclass
class Call:
    """One API call, checked against the spec."""

    operation: Operation
    params: Dict[str, str]
    query: Dict[str, Any]
    body: Dict[str, Any]


@dataclass
class InitImage:
    """An init image: announced by POST /init-image, uploaded by the presigned S3 POST."""

    id: str
    created: float
    created_at: str
    fields: Dict[str, str]  # the presigned form fields
    uploaded: bool = False

    @property
    def path(self) -> str:
        return "/cdn/" + self.fields["key"]


def key_refused(authorization: str) -> ApiError:
    """The API's answer to a wrong key (API_FACTS 1.2): 401; to a key that is not a UUID, Hasura's auth
    hook fails first: a 500 (a key missing is a 401)."""
    scheme, _, key = authorization.partition(" ")
    if scheme == "Bearer" and key and not is_uuid(key):
        return ApiError(500, "Invalid response from authorization hook", "unexpected")
    return default_error(401)


def _opt(body: Dict[str, Any], key: str, default: Any) -> Any:
    value = body.get(key)  # body[key] unless absent or null
    return default if value is None else value


def _blank(**values: Any) -> Dict[str, Any]:
    """A generation's fields with only these values set (motion, v2 and lcm-upscale generations), but for the
    settings the spec's generation never has null: those at v1's defaults."""
    never_null = {key: _SETTINGS[key][1] for key in ("sdVersion", "scheduler", "public")}
    return {**dict.fromkeys(_SETTINGS), **never_null, "generation_elements": [], **values}


def _created(key: str, **job: Any) -> Dict[str, Any]:  # a v1 create response
    return {key: dict(job, apiCreditCost=None, cost={"amount": "0.0147", "unit": "DOLLARS"})}


def _image(image_id: str, path: str, fantasy: bool = False, motion: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """One generated_images[] item; motion: its motionModel, motionMP4URL and motionStrength (null if not given)."""
    motion = dict(dict.fromkeys(("motionModel", "motionMP4URL", "motionStrength")), **(motion or {}))
    image = dict(id=image_id, url=path, nsfw=False, likeCount=0, fantasyAvatar=fantasy, **motion)
    return dict(image, motion=bool(image["motionModel"]), imageToVideo=bool(image["motionModel"]),
                generated_image_variation_generics=[])


def _page(call: Call, items: List[Job]) -> List[Job]:
    """items (oldest first, as stored) newest first, paged by offset and limit (body, query or spec default:
    Hasura takes the query's variables, then the body's over them)."""
    bounds = []
    for name in ("offset", "limit"):
        value = _opt(call.body, name, _opt(call.query, name, call.operation.query[name]["default"]))
        if value < 0:
            raise invalid('"%s" must not be negative' % name)
        bounds.append(value)
    return items[::-1][bounds[0] : bounds[0] + bounds[1]]


class Api:
    """The fake API: its state and one handler per operation of the spec."""

    def __init__(self, fake: FakeLeonardo) -> None:
        self.fake, self.spec = fake, Spec(load_spec())
        self.lock = threading.RLock()
        self.account = Account(fake)
        self.generations: ById[Job] = ById()
        self.textures: ById[Job] = ById()
        self.sources: ById[Tuple[str, str, int, int]] = ById()  # image id -> (prompt, path, w, h asked for)
        self.assets: Dict[str, Tuple[str, Callable[[], bytes]]] = {}  # /cdn/ path -> (type, bytes)
        self.init_images: ById[InitImage] = ById()
        self.outbox: List[Tuple[str, str, Dict[str, Any]]] = []  # (url, key, payload) not delivered yet

    def serve(self, request: RecordedRequest) -> Answer:
        """The answer to any request (called by the server's threads)."""
        try:
            handler = {"api": self.answer, "s3": self.s3_upload, "cdn": self.cdn}.get(request.kind)
            if handler is None:
                raise default_error(404)
            return handler(request)
        except ApiError as exc:
            return exc.answer()
        except Exception:  # a bug in the fake: show it, and answer as the API's crashed handler does
            traceback.print_exc()
            return default_error(500).answer()

    def answer(self, request: RecordedRequest) -> Answer:
        """Key, route, query and body checked, then the handler (lock held, jobs advanced)."""
        if request.headers.get("Authorization") != "Bearer %s" % self.fake.api_key:
            raise key_refused(request.headers.get("Authorization", ""))
        operations, params = self.spec.route(request.full_path) or ({}, {})
        operation = operations.get(request.method)
        if operation is None and operations:
            allow = ", ".join(sorted(operations))
            message = "method %s not allowed on this endpoint (allowed: %s)" % (request.method, allow)
            raise ApiError(405, message, "method-not-allowed", [("Allow", allow)])
        if operation is None:
            raise ApiError(404, "Endpoint not found", "not-found")
        query = self.spec.query_args(operation, request.query, params)
        call = Call(operation, params, query, self._body(operation, request))
        with self.lock:
            self.advance()
            return json_answer(200, getattr(self, operation.name)(call))

    def advance(self) -> None:
        """Move the account's jobs on to now (lock held), queueing completions for the webhook set now."""
        url, key = self.fake.webhook_url, self.fake.webhook_api_key
        for job in self.account.advance():
            if url and key and job.status == "COMPLETE" and job.id in self.generations:
                self.outbox.append((url, key, payload(self._generation(job), self.fake)))

    def _body(self, operation: Operation, request: RecordedRequest) -> Dict[str, Any]:
        if operation.body is None:
            return {}
        # No body, or one that is not JSON (a form), is checked as {}: the API then names a missing required
        # key, its "generic error that appears when the API body is incorrectly formatted" (the SDK sends none).
        body: Dict[str, Any] = {}  # a dict once check_body passes
        with contextlib.suppress(ValueError):  # parse_body refuses an empty body too
            body = as_the_api_reads(parse_body(request.body))
        self.spec.check_body(operation, body)
        return body

    def cdn(self, request: RecordedRequest) -> Answer:
        """A file under /cdn/ (no key needed, GET or HEAD); /cdn/blobs/<n>.bin is n bytes."""
        if request.method not in ("GET", "HEAD"):
            raise ApiError(405, "Method Not Allowed", "method-not-allowed", [("Allow", "GET, HEAD")])
        blob = re.fullmatch(r"/cdn/blobs/([0-9]{1,15})\.bin", request.path)  # ASCII digits: int() takes others
        if blob:
            return Answer(200, content_type="application/octet-stream", blob_size=int(blob[1]))
        with self.lock:
            asset = self.assets.get(request.path)
        if asset is None:
            raise default_error(404)
        return Answer(200, asset[1](), asset[0])

    def _png(self, path: str, seed: str, width: int, height: int) -> None:
        """Serve a PNG at path (lock held), rendered on first request."""
        self.assets[path] = ("image/png", functools.lru_cache(maxsize=None)(lambda: render_png(seed, width, height)))

    # -- jobs -------------------------------------------------------------------------

    def _new_job(self, store: ById[Job], fields: Dict[str, Any], endpoint: Optional[str] = None) -> Job:
        """A new job (lock held), admitted under the account's limits (endpoint: its rate's, see Account.admit)."""
        self.account.admit(endpoint)
        job = Job(str(uuid.uuid4()), self.account.clock(), timestamp(), fields, *self.account.draws())
        fields["seed"] = _opt(fields, "seed", zlib.crc32(job.id.encode("utf-8")) % 1000000000)  # else from the id
        store[job.id] = job
        self.account.active.append(job)
        return job

    def _delete(self, store: ById[Job], call: Call) -> Optional[Dict[str, str]]:
        """Delete a job (lock held), freeing its slot or its place in the queue, and its files: {id} or None."""
        job = store.pop(call.params["id"], None)
        if job is None:
            return None
        if job in self.account.active:
            self.account.active.remove(job)
        for image in job.images:  # no longer served, nor a motion source
            self.sources.pop(image["id"], None)
            for key in ("url", "motionMP4URL"):
                self.assets.pop(image.get(key) or "", None)
        return {"id": job.id}

    def _images(self, job: Job, *keys: str) -> List[Dict[str, Any]]:
        """job's images once COMPLETE (else none), their paths under keys made URLs of the fake."""
        done = job.images if job.status == "COMPLETE" else []
        return [dict(i, **{k: self.fake.root_url + i[k] for k in keys if i[k] is not None}) for i in done]

    def _cdn_path(self, job: Job, name: str, folder: str = "generations") -> str:
        return "/cdn/users/%s/%s/%s/%s" % (self.fake.user_id, folder, job.id, name)

    def _generation(self, job: Job, listing: bool = False) -> Dict[str, Any]:
        """The generation object of GET /generations/{id} and (listing) of the user's list."""
        images = self._images(job, "url", "motionMP4URL")
        for image in images if listing else ():
            del image["fantasyAvatar"]  # not in the list endpoint's schema
        return dict(job.fields, createdAt=job.created_at, id=job.id, status=job.status, generated_images=images)

    def _texture(self, job: Job) -> Dict[str, Any]:
        """The texture generation object of GET /generations-texture/{id} and of its list."""
        fields = {k: job.fields[k] for k in ("prompt", "negativePrompt", "seed")}
        images = self._images(job, "url")
        return dict(fields, createdAt=job.created_at, id=job.id, status=job.status, model_asset_texture_images=images)

    # -- image generations ------------------------------------------------------------

    def _arg(self, call: Call, key: str) -> Any:
        return _opt(call.body, key, self.spec.resolve((call.operation.body or {})["properties"][key]).get("default"))

    def create_generation(self, call: Call) -> Dict[str, Any]:
        """POST /generations: the size and count checked as the API does (its 4xx: 400 here, most undocumented)."""
        if len(call.body["prompt"]) > V1_PROMPT_MAX:
            raise ApiError(400, f"Invalid prompt, maximum length of {V1_PROMPT_MAX} characters exceeded.", "unexpected")
        width, height, count = self._arg(call, "width"), self._arg(call, "height"), self._arg(call, "num_images")
        if any(side not in V1_SIDES for side in (width, height)):
            raise ApiError(400, "invalid dimensions", "unexpected")
        if count < 1:
            raise ApiError(400, "num_images must be at least 1", "unexpected")
        if count > v1_images_at_most(width, height):
            raise ApiError(400, "Too many images", "unexpected")
        try:
            check_v1_model_id(call.body.get("modelId"))
        except ValueError:  # a uuid column: the action handler crashes (API_FACTS.md 1.2, leonardo-python-sdk#3)
            raise default_error(500) from None
        self._uploaded(call.body.get("init_image_id"))
        body = dict(call.body, width=width, height=height)
        fields = {key: _opt(body, name, default) for key, (name, default) in _SETTINGS.items()}
        if fields["photoReal"] and fields["photoRealStrength"] is None:
            fields["photoRealStrength"] = 0.55
        elements = enumerate(body.get("elements") or [], start=1)
        fields["generation_elements"] = [_element(n, e, fields["sdVersion"]) for n, e in elements]
        job = self._new_job(self.generations, fields, "/generations")
        self._add_images(job, count, bool(body.get("fantasyAvatar")))
        return _created("sdGenerationJob", generationId=job.id)

    def _add_images(self, job: Job, count: int, fantasy: bool = False, video_model: Optional[str] = None) -> None:
        """count outputs for job (lock held): PNGs seeded by its prompt and their index, or
        MP4s (at url and motionMP4URL) from a video model."""
        width, height = preview_size(job.fields["imageWidth"], job.fields["imageHeight"])
        for index in range(count):
            image_id = str(uuid.uuid4())
            path = self._cdn_path(job, image_id + (".mp4" if video_model else ".png"))
            if video_model:
                self.assets[path] = ("video/mp4", functools.partial(render_mp4, image_id))
                job.images.append(_image(image_id, path, motion=dict(motionModel=video_model, motionMP4URL=path)))
                continue
            self._png(path, "%s\x00%d" % (job.fields["prompt"], index), width, height)
            self.sources[image_id] = (job.fields["prompt"], path, job.fields["imageWidth"], job.fields["imageHeight"])
            job.images.append(_image(image_id, path, fantasy))

    def get_generation_by_id(self, call: Call) -> Dict[str, Any]:
        job = self.generations.get(call.params["id"])
        return {"generations_by_pk": job and self._generation(job)}

    def delete_generation_by_id(self, call: Call) -> Dict[str, Any]:
        return {"delete_generations_by_pk": self._delete(self.generations, call)}

    def get_generations_by_user_id(self, call: Call) -> Dict[str, Any]:
        """GET /generations/user/{userId}: newest first."""
        mine = list(self.generations.values()) if _folded(call.params["userId"]) == _folded(self.fake.user_id) else []
        return {"generations": [self._generation(job, listing=True) for job in _page(call, mine)]}

    def create_svd_motion_generation(self, call: Call) -> Dict[str, Any]:
        """POST /generations-motion-svd: imageId is a generated image's id, or with isInitImage an uploaded init
        image's (a variation's, isVariation, is not modelled: refused)."""
        body = call.body
        source = self.sources.get(body["imageId"])
        init_image = body["imageId"] in self.init_images
        if source is None or bool(body.get("isInitImage")) != init_image or body.get("isVariation"):
            raise ApiError(400, "Service Error", "unexpected")  # as given a generation id (status unknown: 400 here)
        prompt, still, width, height = source
        fields = _blank(prompt=prompt, imageWidth=width, imageHeight=height, public=_opt(body, "isPublic", False))
        job = self._new_job(self.generations, fields)
        video_id = str(uuid.uuid4())
        path = self._cdn_path(job, video_id)
        self.assets[path + ".png"] = self.assets[still]
        self.assets[path + ".mp4"] = ("video/mp4", functools.partial(render_mp4, video_id))
        motion = dict(motionModel="SVD", motionMP4URL=path + ".mp4", motionStrength=body.get("motionStrength"))
        job.images.append(_image(video_id, path + ".png", motion=motion))
        return _created("motionSvdGenerationJob", generationId=job.id)

    # -- v2 and the account ------------------------------------------------------------

    def create_generation_v2(self, call: Call) -> Dict[str, Any]:
        """POST /v2/generations: checked against the model's own schema, stored with the v1
        generations (polled and listed through v1), videos for the video models."""
        model, params = call.body["model"], call.body.get("parameters") or {}
        guidances = params.get("guidances")  # where a model's schema leaves it open, any JSON
        for guidance in guidances.values() if isinstance(guidances, dict) else ():
            for item in guidance if isinstance(guidance, list) else ():
                image = item.get("image") if isinstance(item, dict) else None
                if isinstance(image, dict) and image.get("type") == "UPLOADED":
                    self._uploaded(image["id"] if isinstance(image.get("id"), str) else "")
        props = self.spec.models()[model]["properties"]["parameters"].get("properties", {})
        default = {key: props.get(key, {}).get("default") for key in ("width", "height", "quantity")}
        model_id = uuid.UUID(bytes=hashlib.sha256(model.encode("utf-8")).digest()[:16], version=4)  # a UUID column
        fields = _blank(prompt=params.get("prompt", ""), negativePrompt=params.get("negative_prompt"),
                        modelId=str(model_id), imageWidth=_opt(params, "width", default["width"] or 1024),
                        imageHeight=_opt(params, "height", default["height"] or 1024),
                        public=_opt(call.body, "public", False), seed=params.get("seed"))
        count = _opt(params, "quantity", default["quantity"] or 1)
        job = self._new_job(self.generations, fields, "/api/rest/v2/generations")
        # A video model takes a start_frame guidance, or a duration and a width (sound-effects-v2's duration is
        # "of the video" too, in the spec, but it has no width).
        video = "start_frame" in props.get("guidances", {}).get("properties", {}) or {"duration", "width"} <= set(props)
        self._add_images(job, count, video_model=model if video else None)
        credits = V2_CREDITS_PER_OUTPUT * count
        if self.fake.v2_response_shape == "spec":
            return {"generationId": job.id, "apiCreditCost": credits}
        return {"generate": {"generationId": job.id, "cost": {"amount": str(credits), "unit": "CREDITS"}}}

    def get_models_v2(self, call: Call) -> Dict[str, Any]:
        """GET /v2/models: the spec's v2 models, each with its parameters' schema."""
        models = [
            dict(id=re.sub(r"[^A-Z0-9]+", "_", name.upper()), name=schema.get("title", name),
                 parameters=schema["properties"]["parameters"])
            for name, schema in self.spec.models().items()
        ]
        return {"productionApiAvailableModels": models}

    def get_user_info(self, call: Call) -> Dict[str, Any]:
        """GET /me: the account, with apiConcurrencySlots = concurrency_slots."""
        user = {"id": self.fake.user_id, "username": "fake-user"}
        tokens = dict(paidTokens=0, subscriptionTokens=0, subscriptionGptTokens=0, subscriptionModelTokens=0)
        api = dict(apiConcurrencySlots=self.fake.concurrency_slots, apiPaidTokens=0, apiSubscriptionTokens=100000)
        dates = dict(tokenRenewalDate=None, apiPlanTokenRenewalDate=None)
        return {"user_details": [dict(user=user, **tokens, **api, **dates)]}

    # -- init images --------------------------------------------------------------------

    def _uploaded(self, init_image_id: Optional[str]) -> None:
        """Refuse an init image id that was not uploaded (lock held); None passes."""
        image = self.init_images.get(init_image_id or "")
        if init_image_id is not None and (image is None or not image.uploaded):
            raise ApiError(400, "invalid init image id", "unexpected")

    def upload_init_image(self, call: Call) -> Dict[str, Any]:
        """POST /init-image: where and how to upload the file (fields is a JSON string)."""
        extension = call.body["extension"]
        if extension not in UPLOAD_EXTENSIONS:
            raise ApiError(400, "invalid file extension", "unexpected")
        image_id = str(uuid.uuid4())
        key = "users/%s/initImages/%s.%s" % (self.fake.user_id, image_id, extension)
        image = InitImage(image_id, self.account.clock(), timestamp(), presigned_fields(key, extension))
        self.init_images[image_id] = image
        url = "%s/s3/%s" % (self.fake.root_url, BUCKET)
        return {"uploadInitImage": {"id": image_id, "fields": json.dumps(image.fields), "key": key, "url": url}}

    def s3_upload(self, request: RecordedRequest) -> Answer:
        """The presigned POST to the bucket's URL (no object key in it, no query): every field as given, the
        file last, no API key."""
        bucket, _, rest = request.full_path[len("/s3/") :].partition("/")
        if bucket not in ("", BUCKET):
            raise S3Error(404, "The specified bucket does not exist", "NoSuchBucket")
        if request.method != "POST" or not bucket or rest or request.query:
            raise S3Error(405, "The specified method is not allowed against this resource.", "MethodNotAllowed")
        parts = form_parts(request)
        with self.lock:
            key = dict(parts).get("key", b"").decode("utf-8", "replace")
            image = next((i for i in self.init_images.values() if i.fields["key"] == key), None)
            if image is None:
                raise policy_failed("key")
            data = check_form(request, parts, image.fields, self.account.clock() - image.created)
            self.assets[image.path] = (image.fields["Content-Type"], lambda: data)
            self.sources[image.id] = ("", image.path, 256, 256)  # its file's own size is not read: 256x256 stands in
            image.uploaded = True
        return Answer(204)

    def get_init_image_by_id(self, call: Call) -> Dict[str, Any]:
        image = self.init_images.get(call.params["id"])
        found = image and {"createdAt": image.created_at, "id": image.id, "url": self.fake.root_url + image.path}
        return {"init_images_by_pk": found}

    def delete_init_image_by_id(self, call: Call) -> Dict[str, Any]:
        image = self.init_images.pop(call.params["id"], None)
        self.sources.pop(call.params["id"], None)
        if image is not None:
            self.assets.pop(image.path, None)
        return {"delete_init_images_by_pk": image and {"id": image.id}}

    # -- textures ---------------------------------------------------------------------

    def create_texture_generation(self, call: Call) -> Dict[str, Any]:
        body = call.body
        fields = dict(prompt=body["prompt"], negativePrompt=body.get("negative_prompt"), seed=body.get("seed"))
        job = self._new_job(self.textures, dict(fields, modelAssetId=body["modelAssetId"]), "/generations-texture")
        for kind in _TEXTURE_TYPES:
            image_id = str(uuid.uuid4())
            path = self._cdn_path(job, "%s_%s.png" % (image_id, kind.lower()), "model_asset_texture_generations")
            self._png(path, "%s\x00%s" % (body["prompt"], kind), 128, 128)
            job.images.append({"id": image_id, "type": kind, "url": path})
        return _created("textureGenerationJob", id=job.id)

    def get_texture_generation_by_id(self, call: Call) -> Dict[str, Any]:
        """GET /generations-texture/{id} (offset and limit are checked, then unused)"""
        _page(call, [])
        job = self.textures.get(call.params["id"])
        return {"model_asset_texture_generations_by_pk": job and self._texture(job)}

    def delete_texture_generation_by_id(self, call: Call) -> Dict[str, Any]:
        return {"delete_model_asset_texture_generations_by_pk": self._delete(self.textures, call)}

    def get_texture_generations_by_model_id(self, call: Call) -> Dict[str, Any]:
        """GET /generations-texture/model/{modelId}: newest first."""
        model = _folded(call.params["modelId"])
        mine = [job for job in self.textures.values() if _folded(job.fields["modelAssetId"]) == model]
        return {"model_asset_texture_generations": [self._texture(job) for job in _page(call, mine)]}

    # -- LCM: synchronous, the image comes back as a data URL ---------------------------

    def _lcm(self, call: Call, **extra: Any) -> Dict[str, Any]:
        """An lcmGenerationJob: one JPEG seeded by operation, prompt and seed."""
        body = call.body
        for key in ("imageDataUrl", "maskDataUrl"):
            if not body.get(key, "data:image/").startswith("data:image/"):
                raise invalid("%s must be a base64 data URL starting with data:image/" % key, "bad-request")
        width, height = self._arg(call, "width"), self._arg(call, "height")
        if width not in _LCM_SIZES or height not in _LCM_SIZES:
            raise ApiError(400, "invalid dimensions", "unexpected")
        jpeg = render_jpeg("%s\x00%s\x00%s" % (call.operation.name, body["prompt"], body.get("seed")),
                           *preview_size(width, height))
        image = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        stamp = _opt(body, "requestTimestamp", str(int(time.time() * 1000)))
        return _created("lcmGenerationJob", imageDataUrl=[image], **extra, requestTimestamp=stamp)

    # POST /generations-lcm, /lcm-instant-refine, /lcm-inpainting: the same job
    create_lcm_generation = perform_instant_refine = perform_inpainting_lcm = _lcm

    def perform_alchemy_upscale_lcm(self, call: Call) -> Dict[str, Any]:
        """POST /lcm-upscale: the result is also stored, as a COMPLETE generation of its one image."""
        width, height = self._arg(call, "width"), self._arg(call, "height")
        job = Job(str(uuid.uuid4()), self.account.clock(), timestamp(),
                  _blank(prompt=call.body["prompt"], imageWidth=width, imageHeight=height), 0.0, False)
        image_id, path = str(uuid.uuid4()), self._cdn_path(job, "upscaled.jpg")
        answer = self._lcm(call, generationId=[job.id], variationId=[str(uuid.uuid4())], generatedImageId=image_id)
        jpeg = base64.b64decode(answer["lcmGenerationJob"]["imageDataUrl"][0].split(",", 1)[1])
        self.assets[path] = ("image/jpeg", lambda: jpeg)
        self.sources[image_id] = (call.body["prompt"], path, width, height)
        job.images.append(_image(image_id, path))
        job.final, self.generations[job.id] = "COMPLETE", job
        return answer


def _element(number: int, element: Dict[str, Any], sd_version: str) -> Dict[str, Any]:
    """One generation_elements[] item, for an elements[] item of the request."""
    ak_uuid = element["akUUID"]
    lora = dict(akUUID=ak_uuid, baseModel=sd_version, description="Fake element %s" % ak_uuid,
                name="Element %s" % ak_uuid[:8], urlImage=None, weightDefault=1, weightMax=2, weightMin=-1)
    return {"id": number, "weightApplied": _opt(element, "weight", 1.0), "lora": lora}


# -- the S3 bucket ------------------------------------------------------------------------


def policy_failed(field: str) -> S3Error:
    return S3Error(403, 'Invalid according to Policy: Policy Condition failed: ["eq", "$%s"]' % field, "AccessDenied")


def presigned_fields(key: str, extension: str) -> Dict[str, str]:
    """The form fields of a presigned POST for key (the signature is made up)."""
    now = datetime.now(timezone.utc)
    expiration = (now + timedelta(seconds=EXPIRY)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = {"expiration": expiration, "conditions": [{"bucket": BUCKET}, {"key": key}]}
    return {
        "Content-Type": UPLOAD_EXTENSIONS[extension],
        "bucket": BUCKET,
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "FAKEACCESSKEY/%s/us-east-1/s3/aws4_request" % now.strftime("%Y%m%d"),
        "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
        "key": key,
        "Policy": base64.b64encode(json.dumps(policy).encode("utf-8")).decode("ascii"),
        "X-Amz-Signature": hashlib.sha256(key.encode("utf-8")).hexdigest(),
    }


def form_parts(request: RecordedRequest) -> List[Tuple[str, bytes]]:
    """The (name, value) parts of a multipart/form-data body, in order."""
    content_type = request.headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise S3Error(412, "Bucket POST must be of the enclosure-type multipart/form-data", "PreconditionFailed")
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body)
    parts = cast(List[Message], message.get_payload())  # a str unless multipart
    # A field of parts of its own (multipart/mixed, message/rfc822) holds no value S3 reads.
    if not message.is_multipart() or any(p.is_multipart() for p in parts):
        raise S3Error(400, "The body of your POST request is not well-formed multipart/form-data",
                      "MalformedPOSTRequest")
    return [(str(p.get_param("name", header="content-disposition")), cast(bytes, p.get_payload(decode=True)))
            for p in parts]


def check_form(request: RecordedRequest, parts: List[Tuple[str, bytes]], fields: Dict[str, str], age: float) -> bytes:
    """The uploaded file, once the form is checked as S3 checks a presigned POST."""
    if "Authorization" in request.headers:
        raise S3Error(403, "Requests to a presigned POST URL must not carry an Authorization header", "AccessDenied")
    if age > EXPIRY:
        raise S3Error(403, "Invalid according to Policy: Policy expired.", "AccessDenied")
    if not parts or parts[-1][0] != "file" or [name for name, _ in parts].count("file") != 1:
        raise S3Error(400, "POST requires exactly one file upload per request, as the last field", "InvalidArgument")
    # Every field but the file must be the policy's, except those named "x-ignore-..." (S3's POST form rules).
    sent = {name: value.decode("utf-8", "replace") for name, value in parts[:-1] if not name.startswith("x-ignore-")}
    for name in sorted(set(fields) | set(sent)):
        if sent.get(name) != fields.get(name):
            raise policy_failed(name)
    return parts[-1][1]


# -- the webhook ---------------------------------------------------------------------------


def check_settings(url: Optional[str], key: Optional[str]) -> None:
    """Refuse a webhook URL that is not http(s) on a loopback address as urllib reads it (printable ASCII, no space,
    a port in range: http.client wraps it, no user@: it would resolve "user@host"), or no key a header can carry."""
    if url is None:
        return
    text = url if isinstance(url, str) else ""
    parts = urlsplit(text if is_header_text(text) and " " not in text and is_http(text) else "")
    if "@" in parts.netloc or not is_loopback(parts.hostname or ""):
        raise ValueError("webhook_url must be an http(s) URL on a loopback address, not %r" % url)
    if not isinstance(key, str) or not key.strip() or not is_header_text(key):
        raise ValueError("webhook_url needs a webhook_api_key of printable ASCII (it goes in a header)")


def payload(g: Dict[str, Any], fake: FakeLeonardo) -> Dict[str, Any]:
    """The image_generation.complete body for a generation object of GET /generations/{id}."""
    user, now = fake.user_id, timestamp()
    images = [
        dict(id=i["id"], createdAt=now, updatedAt=now, userId=user, url=i["url"], generationId=g["id"], nobgId=None,
             nsfw=False, likeCount=0, trendingScore=0, public=g["public"])
        for i in g["generated_images"]
    ]
    api_key = dict(id=WEBHOOK_KEY_ID, createdAt=g["createdAt"], userId=user, key=fake.api_key, lastUsed=now,
                   name="FakeLeonardo", type="PRODUCTION", webhookCallbackUrl=fake.webhook_url,
                   webhookCallbackApiKey=fake.webhook_api_key)
    data = dict(dict.fromkeys(_UNKNOWN), **{k: g[k] for k in _AS_IN_GET}, **_CONSTANT)
    name = "FakeLeonardo model %s" % (g["modelId"] or "default")[:8]  # no modelId: the one sd_version picks
    model = dict(dict.fromkeys(_MODEL_KEYS), id=g["modelId"], name=name)
    data.update(id=g["id"], createdAt=g["createdAt"], updatedAt=now, userId=user, seed=str(g["seed"]),
                negativePrompt=g["negativePrompt"] or "", quantity=len(images), promptMagic=bool(g["promptMagic"]),
                photoReal=bool(g["photoReal"]), model=model, images=images, apiKey=api_key)
    return dict(type="image_generation.complete", object="generation", timestamp=int(time.time() * 1000),
                api_version="v1", data={"object": data})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect fails the delivery: the key is never sent on to another host


class Deliverer(threading.Thread):
    """Looks for finished generations every WEBHOOK_TICK seconds and POSTs their payloads, one at a time."""

    def __init__(self, fake: FakeLeonardo, api: Api) -> None:
        super().__init__(name="FakeLeonardo-webhooks", daemon=True)
        self.fake, self.api = fake, api
        self.stopping = threading.Event()
        self.give_up_at = math.inf  # set by stop(): deliveries still due then get WEBHOOK_TIMEOUT more
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())  # loopback: no proxy
        self.abandoned = False  # set by stop() if a delivery outlasts it: the thread records nothing more
        self.delivering = False  # a delivery under way, not recorded yet
        self.recording = threading.Lock()  # for abandoned, delivering and what the thread records

    def run(self) -> None:
        stopping = False
        while not stopping:  # one more round after stop(): what completed before it is sent
            stopping = self.stopping.wait(WEBHOOK_TICK)
            with self.api.lock:
                self.api.advance()
                outbox, self.api.outbox = self.api.outbox, []
            for url, key, body in outbox:
                self.deliver(url, key, body)

    def deliver(self, url: str, key: str, body: Dict[str, Any]) -> None:
        self.delivering, error = True, "not delivered: the FakeLeonardo stopped"
        if time.monotonic() <= self.give_up_at:
            try:
                headers = dict(WEBHOOK_HEADERS, authorization="Bearer %s" % key)
                request = urllib.request.Request(url, json_bytes(body), headers)
                self.opener.open(request, timeout=WEBHOOK_TIMEOUT).close()  # its status is the answer; no body read
                error = ""
            except Exception as exc:  # any failure is the receiver's: record it, go on
                error = "%s: %s" % (type(exc).__name__, exc)
        with self.recording:
            self.delivering = False
            if error and not self.abandoned:
                self.fake.webhook_errors.append(error)

    def stop(self) -> None:
        self.give_up_at = time.monotonic() + WEBHOOK_TIMEOUT
        self.stopping.set()
        # The delivery under way may take its timeout once more; one trickling its answer (the timeout is per
        # read) is given up on, listed now: the thread, left to end alone, records nothing more.
        self.join(2 * WEBHOOK_TIMEOUT + 1)
        with self.recording:
            self.abandoned = self.delivering  # not is_alive(): one recorded, its thread not yet ended, is listed
            if self.abandoned:
                self.fake.webhook_errors.append("not delivered: the receiver did not answer before stop(), nor any "
                                                "after")


def as_the_api_reads(value: Any) -> Any:
    """value with U+FFFD for each lone surrogate in its strings, keys too: JSON's escape \\ud800 reads as one, which
    the API's text columns cannot hold (nor UTF-8 carry); and a whole number (512.0) an int, as JSON Schema and the
    API's Hasura layer take it."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {as_the_api_reads(k): as_the_api_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_the_api_reads(item) for item in value]
    return value
