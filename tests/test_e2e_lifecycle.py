"""End to end: the full lifecycle of every kind of generation, through the real Client,
over real sockets against FakeLeonardo on 127.0.0.1.

The fake rejects unknown body keys, null for non-nullable fields and wrong JSON types
with a 400, so every request that succeeds here also proves its wire keys are right.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests

from leonardo_client import (
    Client,
    ControlnetInput,
    CreateGenerationRequest,
    CreateLcmGenerationRequest,
    CreateSvdMotionGenerationRequest,
    CreateTextureGenerationRequest,
    ElementInput,
    InitImageType,
    LcmInpaintingRequest,
    LcmInstantRefineRequest,
    LcmStyle,
    LcmUpscaleRequest,
    LeonardoError,
    PresetStyle,
    Scheduler,
    SdVersion,
    StrengthType,
    UserElementInput,
)
from leonardo_client.testing import FakeLeonardo, RecordedRequest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POLL_DEADLINE = 5.0  # seconds; the fake completes after completion_delay (0.2 s here)
COMPLETION_DELAY = 0.2
MODEL_ID = "b24e16ff-06e3-43eb-8d33-4416c2d75876"
MODEL_ASSET_ID = "3d-asset-0001"


@pytest.fixture
def fake() -> Iterator[FakeLeonardo]:
    with FakeLeonardo(completion_delay=COMPLETION_DELAY) as server:
        yield server


# -- helpers ----------------------------------------------------------------------------


def poll(fetch: Callable[[], Dict[str, Any]], key: str) -> List[Dict[str, Any]]:
    """Call fetch() until body[key].status is no longer PENDING; return every body[key] seen.

    Bounded: fails the test after POLL_DEADLINE seconds.
    """
    seen: List[Dict[str, Any]] = []
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        found = fetch()[key]
        assert found is not None, "the fake lost the job"
        seen.append(found)
        if found["status"] != "PENDING":
            return seen
        assert time.monotonic() < deadline, "still PENDING after %ss" % POLL_DEADLINE
        time.sleep(0.05)


def png_size(data: bytes) -> Tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    # The IHDR chunk's CRC proves the bytes are a real PNG header, not just a signature.
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == crc
    return int(width), int(height)


def tiny_png_data_url() -> str:
    """A valid 1x1 RGB PNG as a data URL (an input image for the LCM operations)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    png = (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x10\x20\x30"))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fetch_file(url: str) -> requests.Response:
    """Fetch a CDN URL of the fake with plain requests (no key, bounded)."""
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response


def api_calls(fake: FakeLeonardo, method: str, prefix: str) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.method == method and r.path.startswith(prefix)]


def full_request() -> CreateGenerationRequest:
    """A CreateGenerationRequest using many fields, camelCase and snake_case, and nested inputs."""
    return CreateGenerationRequest(
        prompt="a lighthouse at dusk, oil painting",
        negative_prompt="blurry",
        model_id=MODEL_ID,
        width=512,
        height=768,
        num_images=2,
        num_inference_steps=20,
        guidance_scale=7.5,
        seed=12345,
        preset_style=PresetStyle.CINEMATIC,
        scheduler=Scheduler.EULER_DISCRETE,
        sd_version=SdVersion.SDXL_1_0,
        alchemy=False,
        photo_real=False,
        prompt_magic=False,
        public=False,
        tiling=False,
        high_contrast=True,
        image_prompts=["img-prompt-1"],
        image_prompt_weight=0.4,
        init_strength=0.3,
        elements=[ElementInput(ak_uuid="element-ak-0001", weight=0.5), ElementInput(ak_uuid="element-ak-0002")],
        controlnets=[
            ControlnetInput(
                init_image_id="init-image-0001",
                init_image_type=InitImageType.UPLOADED,
                preprocessor_id=67,
                weight=0.6,
                strength_type=StrengthType.MID,
            )
        ],
        user_elements=[UserElementInput(user_lora_id=42, weight=0.8)],
    )


# -- image generations --------------------------------------------------------------------


def test_image_generation_lifecycle(fake: FakeLeonardo, client: Client) -> None:
    fake.completion_delay = 60.0  # held PENDING until the first poll has seen it, however slow the machine
    job = client.create_generation(full_request())
    generation_id = job["sdGenerationJob"]["generationId"]
    assert isinstance(generation_id, str) and generation_id

    # The wire body: every key the spec's, None fields omitted, nested inputs renamed.
    sent = api_calls(fake, "POST", "/generations")[-1].json
    assert sent["prompt"] == "a lighthouse at dusk, oil painting"
    assert sent["negative_prompt"] == "blurry" and sent["modelId"] == MODEL_ID
    assert sent["sd_version"] == "SDXL_1_0" and sent["presetStyle"] == "CINEMATIC"
    assert sent["elements"] == [{"akUUID": "element-ak-0001", "weight": 0.5}, {"akUUID": "element-ak-0002"}]
    assert sent["controlnets"] == [
        {"initImageId": "init-image-0001", "initImageType": "UPLOADED", "preprocessorId": 67, "weight": 0.6,
         "strengthType": "Mid"}
    ]
    assert sent["userElements"] == [{"userLoraId": 42, "weight": 0.8}]
    assert None not in sent.values()
    assert "photo_real" not in sent and "photoReal" in sent

    # Poll with a bounded loop: PENDING first, then COMPLETE (COMPLETION_DELAY after creation).
    pending = client.get_generation_by_id(generation_id)["generations_by_pk"]
    assert pending["status"] == "PENDING" and pending["generated_images"] == []
    fake.completion_delay = COMPLETION_DELAY
    seen = poll(lambda: client.get_generation_by_id(generation_id), "generations_by_pk")
    done = seen[-1]
    assert done["status"] == "COMPLETE"
    assert done["id"] == generation_id
    assert done["prompt"] == "a lighthouse at dusk, oil painting"
    assert (done["imageWidth"], done["imageHeight"], done["seed"]) == (512, 768, 12345)
    assert [e["lora"]["akUUID"] for e in done["generation_elements"]] == ["element-ak-0001", "element-ak-0002"]
    images = done["generated_images"]
    assert len(images) == 2
    assert len({image["id"] for image in images}) == 2
    for image in images:
        assert image["url"].startswith(fake.root_url + "/cdn/users/")
        assert generation_id in image["url"]
        response = fetch_file(image["url"])
        assert response.headers["Content-Type"] == "image/png"
        assert png_size(response.content) == (171, 256)  # 512x768 scaled to 256 on the long side
        assert "Authorization" not in api_calls(fake, "GET", "/cdn/")[-1].headers

    # Delete; then the API answers null for get and for a second delete (not a 404).
    assert client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": {"id": generation_id}}
    assert client.get_generation_by_id(generation_id) == {"generations_by_pk": None}
    assert client.delete_generation_by_id(generation_id) == {"delete_generations_by_pk": None}
    assert generation_id not in fake.generation_ids()

    # Every API call carried the key and asked for JSON.
    for recorded in fake.requests:
        if not recorded.path.startswith("/cdn/"):
            assert recorded.headers["Authorization"] == "Bearer " + fake.api_key
            assert recorded.headers["Accept"] == "application/json"
            assert recorded.headers["User-Agent"].startswith("leonardo-client/")


def test_list_generations_by_user_paginates_newest_first(fake: FakeLeonardo, client: Client) -> None:
    fake.completion_delay = 0.0
    ids = [
        client.create_generation(CreateGenerationRequest(prompt="picture %d" % n, num_images=1, width=512, height=512))[
            "sdGenerationJob"
        ]["generationId"]
        for n in range(5)
    ]
    newest_first = ids[::-1]

    everything = client.get_generations_by_user_id(fake.user_id)["generations"]
    assert [g["id"] for g in everything] == newest_first  # API default limit is 10
    assert api_calls(fake, "GET", "/generations/user/")[-1].query == {}  # nothing sent when not given

    pages = []
    for offset in range(0, 6, 2):
        page = client.get_generations_by_user_id(fake.user_id, limit=2, offset=offset)["generations"]
        assert api_calls(fake, "GET", "/generations/user/")[-1].query == {"limit": "2", "offset": str(offset)}
        pages.append([g["id"] for g in page])
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    assert client.get_generations_by_user_id(fake.user_id, limit=2, offset=10) == {"generations": []}
    assert [g["id"] for g in client.get_generations_by_user_id(fake.user_id, limit=0)["generations"]] == []

    first = everything[-1]
    assert first["status"] == "COMPLETE" and first["prompt"] == "picture 0"
    assert len(first["generated_images"]) == 1

    # Another user's list is empty; the id is sent percent-encoded as one path segment.
    assert client.get_generations_by_user_id("someone/else") == {"generations": []}
    assert api_calls(fake, "GET", "/generations/user/")[-1].path == "/generations/user/someone%2Felse"

    client.delete_generation_by_id(ids[2])
    assert [g["id"] for g in client.get_generations_by_user_id(fake.user_id, limit=10)["generations"]] == [
        ids[4], ids[3], ids[1], ids[0]
    ]


def test_failed_generation(fake: FakeLeonardo, client: Client) -> None:
    fake.fail_new_generations = True
    generation_id = client.create_generation({"prompt": "doomed", "num_images": 1})["sdGenerationJob"]["generationId"]
    seen = poll(lambda: client.get_generation_by_id(generation_id), "generations_by_pk")
    assert seen[-1]["status"] == "FAILED"
    assert seen[-1]["generated_images"] == []

    # fail_generation(): a single job of an otherwise healthy run.
    fake.fail_new_generations = False
    ok_id = client.create_generation({"prompt": "fine", "num_images": 1})["sdGenerationJob"]["generationId"]
    bad_id = client.create_generation({"prompt": "bad", "num_images": 1})["sdGenerationJob"]["generationId"]
    fake.fail_generation(bad_id)
    assert poll(lambda: client.get_generation_by_id(ok_id), "generations_by_pk")[-1]["status"] == "COMPLETE"
    assert poll(lambda: client.get_generation_by_id(bad_id), "generations_by_pk")[-1]["status"] == "FAILED"


def test_wait_for_generation_when_available(fake: FakeLeonardo, client: Client) -> None:
    """The helper of issue 4 (if present) against the real server: COMPLETE and FAILED."""
    if not hasattr(client, "wait_for_generation"):
        pytest.skip("Client.wait_for_generation not implemented yet")
    generation_id = client.create_generation({"prompt": "waited", "num_images": 1})["sdGenerationJob"]["generationId"]
    done = client.wait_for_generation(generation_id, timeout=5, poll_interval=0.05)
    assert done["status"] == "COMPLETE" and len(done["generated_images"]) == 1
    fake.fail_new_generations = True
    failed_id = client.create_generation({"prompt": "w", "num_images": 1})["sdGenerationJob"]["generationId"]
    with pytest.raises(LeonardoError, match="FAILED"):
        client.wait_for_generation(failed_id, timeout=5, poll_interval=0.05)


# -- motion (SVD) -----------------------------------------------------------------------------


def test_motion_svd_lifecycle(fake: FakeLeonardo, client: Client) -> None:
    fake.completion_delay = 0.0
    source_id = client.create_generation({"prompt": "a waterfall", "num_images": 1, "width": 512, "height": 512})[
        "sdGenerationJob"
    ]["generationId"]
    image = client.get_generation_by_id(source_id)["generations_by_pk"]["generated_images"][0]

    fake.completion_delay = COMPLETION_DELAY
    job = client.create_svd_motion_generation(
        CreateSvdMotionGenerationRequest(image_id=image["id"], motion_strength=5, is_public=False)
    )
    motion_id = job["motionSvdGenerationJob"]["generationId"]
    assert motion_id != source_id
    assert api_calls(fake, "POST", "/generations-motion-svd")[-1].json == {
        "imageId": image["id"], "motionStrength": 5, "isPublic": False
    }

    seen = poll(lambda: client.get_generation_by_id(motion_id), "generations_by_pk")
    assert seen[-1]["status"] == "COMPLETE"
    (video,) = seen[-1]["generated_images"]
    assert video["motion"] is True and video["motionStrength"] == 5
    assert video["motionMP4URL"].startswith(fake.root_url + "/cdn/") and video["motionMP4URL"].endswith(".mp4")
    response = fetch_file(video["motionMP4URL"])
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    assert fetch_file(video["url"]).content[:8] == PNG_SIGNATURE  # the still

    # The motion generation is listed with the others and deleted the same way.
    listed = client.get_generations_by_user_id(fake.user_id, limit=1)["generations"]
    assert listed[0]["id"] == motion_id
    assert client.delete_generation_by_id(motion_id)["delete_generations_by_pk"] == {"id": motion_id}

    # A generation id where an image id is expected: the API's "Service Error", as LeonardoError.
    with pytest.raises(LeonardoError) as caught:
        client.create_svd_motion_generation(CreateSvdMotionGenerationRequest(image_id=source_id))
    assert caught.value.status_code == 400 and caught.value.message == "Service Error"


# -- texture (legacy) -------------------------------------------------------------------------


def test_texture_generation_lifecycle(fake: FakeLeonardo, client: Client) -> None:
    fake.completion_delay = 60.0  # held PENDING until the first poll has seen it
    job = client.create_texture_generation(
        CreateTextureGenerationRequest(
            prompt="weathered bronze",
            model_asset_id=MODEL_ASSET_ID,
            negative_prompt="rust",
            seed=7,
            preview=False,
            front_rotation_offset=0,
            preview_direction="front",
            sd_version="v1_5",
        )
    )
    texture_id = job["textureGenerationJob"]["id"]
    sent = api_calls(fake, "POST", "/generations-texture")[-1].json
    assert sent["modelAssetId"] == MODEL_ASSET_ID and sent["negative_prompt"] == "rust"
    assert sent["front_rotation_offset"] == 0

    pending = client.get_texture_generation_by_id(texture_id)["model_asset_texture_generations_by_pk"]
    assert pending["status"] == "PENDING" and pending["model_asset_texture_images"] == []
    fake.completion_delay = COMPLETION_DELAY
    seen = poll(lambda: client.get_texture_generation_by_id(texture_id), "model_asset_texture_generations_by_pk")
    done = seen[-1]
    assert done["status"] == "COMPLETE" and done["id"] == texture_id and done["seed"] == 7
    textures = done["model_asset_texture_images"]
    assert sorted(t["type"] for t in textures) == ["ALBEDO", "DISPLACEMENT", "NORMAL", "ROUGHNESS"]
    for texture in textures:
        assert png_size(fetch_file(texture["url"]).content) == (128, 128)

    # limit/offset on get_texture_generation_by_id go in the query string.
    client.get_texture_generation_by_id(texture_id, limit=5, offset=0)
    assert api_calls(fake, "GET", "/generations-texture/")[-1].query == {"limit": "5", "offset": "0"}

    # List by model id, newest first, paginated.
    fake.completion_delay = 0.0
    more = [
        client.create_texture_generation({"prompt": "texture %d" % n, "modelAssetId": MODEL_ASSET_ID})[
            "textureGenerationJob"
        ]["id"]
        for n in range(2)
    ]
    client.create_texture_generation({"prompt": "elsewhere", "modelAssetId": "another-asset"})
    newest_first = [more[1], more[0], texture_id]
    listed = client.get_texture_generations_by_model_id(MODEL_ASSET_ID)["model_asset_texture_generations"]
    assert [t["id"] for t in listed] == newest_first
    page1 = client.get_texture_generations_by_model_id(MODEL_ASSET_ID, limit=2, offset=0)
    assert api_calls(fake, "GET", "/generations-texture/model/")[-1].query == {"limit": "2", "offset": "0"}
    page2 = client.get_texture_generations_by_model_id(MODEL_ASSET_ID, limit=2, offset=2)
    assert [t["id"] for t in page1["model_asset_texture_generations"]] == newest_first[:2]
    assert [t["id"] for t in page2["model_asset_texture_generations"]] == newest_first[2:]
    assert client.get_texture_generations_by_model_id("no-such-asset") == {"model_asset_texture_generations": []}

    # Delete; then null for get and for a second delete.
    assert client.delete_texture_generation_by_id(texture_id) == {
        "delete_model_asset_texture_generations_by_pk": {"id": texture_id}
    }
    assert client.get_texture_generation_by_id(texture_id) == {"model_asset_texture_generations_by_pk": None}
    assert client.delete_texture_generation_by_id(texture_id) == {"delete_model_asset_texture_generations_by_pk": None}
    listed = client.get_texture_generations_by_model_id(MODEL_ASSET_ID)["model_asset_texture_generations"]
    assert [t["id"] for t in listed] == newest_first[:2]


def test_failed_texture_generation(fake: FakeLeonardo, client: Client) -> None:
    texture_id = client.create_texture_generation(
        CreateTextureGenerationRequest(prompt="p", model_asset_id=MODEL_ASSET_ID)
    )["textureGenerationJob"]["id"]
    fake.fail_generation(texture_id)
    done = poll(lambda: client.get_texture_generation_by_id(texture_id), "model_asset_texture_generations_by_pk")
    assert done[-1]["status"] == "FAILED" and done[-1]["model_asset_texture_images"] == []


# -- the four synchronous LCM operations ----------------------------------------------------


def _lcm_image(result: Dict[str, Any]) -> bytes:
    (data_url,) = result["lcmGenerationJob"]["imageDataUrl"]
    header, _, data = data_url.partition(",")
    assert header == "data:image/png;base64"
    return base64.b64decode(data, validate=True)


def test_lcm_operations(fake: FakeLeonardo, client: Client) -> None:
    image = tiny_png_data_url()
    generated = client.create_lcm_generation(
        CreateLcmGenerationRequest(
            image_data_url=image, prompt="a cat", request_timestamp="1700000000000", guidance=7.0, strength=0.65,
            style=LcmStyle.ANIME, steps=8, width=512, height=640, seed=1,
        )
    )
    assert png_size(_lcm_image(generated)) == (205, 256)  # 512x640 scaled to 256 on the long side
    assert generated["lcmGenerationJob"]["requestTimestamp"] == "1700000000000"
    sent = api_calls(fake, "POST", "/generations-lcm")[-1].json
    assert sent == {
        "imageDataUrl": image, "prompt": "a cat", "requestTimestamp": "1700000000000", "guidance": 7.0,
        "strength": 0.65, "style": "ANIME", "steps": 8, "width": 512, "height": 640, "seed": 1,
    }

    refined = client.perform_instant_refine(LcmInstantRefineRequest(image_data_url=image, prompt="a cat, refined"))
    assert png_size(_lcm_image(refined)) == (256, 256)  # API default 512x512

    inpainted = client.perform_inpainting_lcm(
        LcmInpaintingRequest(image_data_url=image, mask_data_url=image, prompt="a hat", width=1024, height=1024)
    )
    assert png_size(_lcm_image(inpainted)) == (256, 256)
    assert api_calls(fake, "POST", "/lcm-inpainting")[-1].json["maskDataUrl"] == image

    upscaled = client.perform_alchemy_upscale_lcm(
        LcmUpscaleRequest(image_data_url=image, prompt="a cat", refine_creative=True, refine_strength=0.5)
    )
    png_size(_lcm_image(upscaled))
    job = upscaled["lcmGenerationJob"]
    assert len(job["generationId"]) == 1 and len(job["variationId"]) == 1 and job["generatedImageId"]
    assert api_calls(fake, "POST", "/lcm-upscale")[-1].json["refineCreative"] is True

    # Synchronous: four POSTs and nothing else.
    assert [r.method for r in fake.requests] == ["POST"] * 4


def test_lcm_bad_data_url_is_a_leonardo_error(client: Client) -> None:
    with pytest.raises(LeonardoError) as caught:
        client.create_lcm_generation(CreateLcmGenerationRequest(image_data_url="https://example.invalid/x.png",
                                                                prompt="p"))
    assert caught.value.status_code == 400
    assert "data URL" in caught.value.message
    assert caught.value.body["code"] == "bad-request"


# -- plain mappings, validation errors, bad key ------------------------------------------------


def test_plain_mapping_is_sent_as_given(fake: FakeLeonardo, client: Client) -> None:
    body = {"prompt": "as given", "modelId": MODEL_ID, "num_images": 1, "enhancePrompt": False,
            "elements": [{"akUUID": "element-ak-0003", "weight": 1}]}
    generation_id = client.create_generation(body)["sdGenerationJob"]["generationId"]
    assert api_calls(fake, "POST", "/generations")[-1].json == body
    assert api_calls(fake, "POST", "/generations")[-1].headers["Content-Type"] == "application/json"
    fake.completion_delay = 0.0
    assert client.get_generation_by_id(generation_id)["generations_by_pk"]["modelId"] == MODEL_ID


@pytest.mark.parametrize(
    "body, message, code",
    [
        ({"prompt": "x", "sd_Version": "v2"}, "Unexpected variable sd_Version", "bad-request"),
        ({"negative_prompt": "no prompt"}, 'expecting a value for non-nullable variable: "prompt"',
         "validation-failed"),
        ({"prompt": "x", "photoReal": "yes"}, "expected a boolean for type 'Boolean', but found a string",
         "validation-failed"),
        ({"prompt": "x", "width": 1024, "height": 1024, "num_images": 5}, "Too many images", "unexpected"),
        ({"prompt": "x", "elements": [{"akUUID": "a", "wieght": 1}]}, "field \"wieght\" not found in type: "
         "'element_input'", "validation-failed"),
    ],
)
def test_validation_error_surfaces_with_the_api_message(
    fake: FakeLeonardo, client: Client, body: Dict[str, Any], message: str, code: str
) -> None:
    with pytest.raises(LeonardoError) as caught:
        client.create_generation(body)
    err = caught.value
    assert err.status_code == 400
    assert err.message == message
    assert err.body == {"error": message, "path": "$", "code": code}
    assert err.method == "POST" and err.url == fake.base_url + "/generations"
    assert str(err) == "HTTP 400: %s (POST %s/generations)" % (message, fake.base_url)
    assert len(api_calls(fake, "POST", "/generations")) == 1  # a 400 is never retried
    assert fake.generation_ids() == []


def test_bad_key_is_a_401_leonardo_error(fake: FakeLeonardo) -> None:
    wrong_key = "not-the-right-key"
    with Client(api_key=wrong_key, base_url=fake.base_url, timeout=(2, 5)) as client:
        calls: List[Callable[[], Dict[str, Any]]] = [
            lambda: client.get_generation_by_id("some-id"),
            lambda: client.create_generation({"prompt": "x"}),
            lambda: client.delete_texture_generation_by_id("some-id"),
        ]
        for call in calls:
            with pytest.raises(LeonardoError) as caught:
                call()
            err = caught.value
            assert err.status_code == 401
            assert err.message == "Authentication hook unauthorized this request"
            assert err.body["code"] == "access-denied"
            for text in (str(err), repr(err), err.message, str(err.url), str(err.args)):
                assert wrong_key not in text and fake.api_key not in text
    assert len(fake.requests) == 3  # 401 is not retried
    assert fake.generation_ids() == []
    assert all(r.headers["Authorization"] == "Bearer " + wrong_key for r in fake.requests)


def test_ids_are_one_path_segment(fake: FakeLeonardo, client: Client) -> None:
    """Odd ids reach the right endpoint percent-encoded, and the API answers null for them."""
    for odd in ("a/b", "../me", "x?y=1", "id with space", "#frag"):
        assert client.get_generation_by_id(odd) == {"generations_by_pk": None}
        assert client.delete_texture_generation_by_id(odd) == {"delete_model_asset_texture_generations_by_pk": None}
    paths = [r.path for r in fake.requests]
    assert paths[0] == "/generations/a%2Fb"
    assert paths[2] == "/generations/..%2Fme"
    assert all(p.startswith(("/generations/", "/generations-texture/")) and p.count("/") == 2 for p in paths)
