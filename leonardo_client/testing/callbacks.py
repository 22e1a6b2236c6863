"""Leonardo's webhook as the fake plays it: when a generation completes, the documented
``image_generation.complete`` payload is POSTed to ``webhook_url`` from a background thread;
a failed delivery is recorded in ``FakeLeonardo.webhook_errors``, never raised."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any, Dict, Optional
from urllib.parse import urlsplit

from ..client import is_header_text, is_loopback
from .account import timestamp

if TYPE_CHECKING:
    from . import FakeLeonardo
    from .api import Api

TIMEOUT = 2.0  # seconds for one delivery
TICK = 0.05  # seconds between looks for finished jobs
# Keys of the documented payload's generation the fake has no value for, then those it has.
_UNKNOWN = (
    "initGeneratedImageId initImageId initType initUpscaledImageId imageAspectRatio canvasInitImageId "
    "canvasMaskImageId imagePromptStrength category poseImage2ImageType poseImage2ImageWeight alchemy "
    "contrastRatio highResolution expandedDomain unzoom unzoomAmount"
).split()
_CONSTANT = dict(flagged=False, nsfw=False, coreModel="SD", tiling=False, tokenCost=0, negativeStylePrompt="",
                 canvasRequest=False, api=True, poseImage2Image=False, highContrast=False, apiDollarCost="9",
                 imageToImage=False, controlnetsUsed=False, apiKeyId="fake-api-key-id")
_AS_IN_GET = "guidanceScale imageHeight imageWidth inferenceSteps modelId prompt sdVersion scheduler presetStyle " \
    "initStrength photoRealStrength promptMagicStrength promptMagicVersion public status".split()


def check_settings(url: Optional[str], key: Optional[str]) -> None:
    """Refuse a webhook URL that is not http(s) on a loopback address, or no key a header can carry."""
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
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
    api_key = dict(id="fake-api-key-id", createdAt=g["createdAt"], userId=user, key=fake.api_key, lastUsed=now,
                   name="FakeLeonardo", type="PRODUCTION", webhookCallbackUrl=fake.webhook_url,
                   webhookCallbackApiKey=fake.webhook_api_key)
    data = dict(dict.fromkeys(_UNKNOWN), **{k: g[k] for k in _AS_IN_GET}, **_CONSTANT)
    data.update(id=g["id"], createdAt=g["createdAt"], updatedAt=now, userId=user, seed=str(g["seed"]),
                negativePrompt=g["negativePrompt"] or "", quantity=len(images), promptMagic=bool(g["promptMagic"]),
                photoReal=bool(g["photoReal"]), model=dict(id=g["modelId"], name=g["modelId"]), images=images,
                apiKey=api_key)
    return dict(type="image_generation.complete", object="generation", timestamp=int(time.time() * 1000),
                api_version="v1", data={"object": data})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect fails the delivery: the key is never sent on to another host


class Deliverer(threading.Thread):
    """Looks for finished generations every TICK seconds and POSTs their payloads, one at a time."""

    def __init__(self, fake: FakeLeonardo, api: Api) -> None:
        super().__init__(name="FakeLeonardo-webhooks", daemon=True)
        self.fake, self.api = fake, api
        self.stopping = threading.Event()
        self.give_up_at = math.inf  # set by stop(): deliveries still due then get TIMEOUT more
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())  # loopback: no proxy

    def run(self) -> None:
        stopping = False
        while not stopping:  # one more round after stop(): what completed before it is sent
            stopping = self.stopping.wait(TICK)
            with self.api.lock:
                self.api.advance()
                outbox, self.api.outbox = self.api.outbox, []
            for body in outbox:
                self.deliver(body)

    def deliver(self, body: Dict[str, Any]) -> None:
        if time.monotonic() > self.give_up_at:
            self.fake.webhook_errors.append("not delivered: the FakeLeonardo stopped")
            return
        headers = {"authorization": "Bearer %s" % self.fake.webhook_api_key, "content-type": "application/json"}
        request = urllib.request.Request(str(self.fake.webhook_url), json.dumps(body).encode(), headers)
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                response.read()
        except Exception as exc:  # any failure is the receiver's: record it, go on
            self.fake.webhook_errors.append("%s: %s" % (type(exc).__name__, exc))

    def stop(self) -> None:
        self.give_up_at = time.monotonic() + TIMEOUT
        self.stopping.set()
        self.join()
