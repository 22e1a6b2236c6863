"""Client.save_results: every kind of result saved to files with safe, stable names."""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Dict, Iterator

import pytest
import responses

from leonardo_client import Client, LeonardoError
from leonardo_client.testing import FakeLeonardo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


@pytest.fixture
def client(fake: FakeLeonardo) -> Iterator[Client]:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 5)) as c:
        yield c


def generate(client: Client, num_images: int = 1) -> Dict[str, Any]:
    job = client.create_generation({"prompt": "a lighthouse at dusk", "num_images": num_images})
    return client.wait_for_generation(job["sdGenerationJob"]["generationId"])


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_saves_every_image_of_a_generation(client: Client, tmp_path: object) -> None:
    generation = generate(client, num_images=3)
    folder = os.path.join(str(tmp_path), "new", "nested")

    paths = client.save_results(generation, folder)

    expected = [os.path.join(folder, f"{generation['id']}_{image['id']}.png") for image in generation["generated_images"]]
    assert paths == expected
    assert all(read(p).startswith(PNG_MAGIC) for p in paths)
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in paths)


def test_a_whole_get_response_is_unwrapped_and_names_are_stable(client: Client, tmp_path: object) -> None:
    generation = generate(client)
    first = client.save_results(generation, str(tmp_path))
    again = client.save_results(client.get_generation_by_id(generation["id"]), str(tmp_path))
    assert first == again
    assert os.listdir(str(tmp_path)) == [os.path.basename(first[0])]


def test_motion_generation_saves_the_video(client: Client, tmp_path: object) -> None:
    image_id = generate(client)["generated_images"][0]["id"]
    job = client.create_svd_motion_generation({"imageId": image_id})
    motion = client.wait_for_generation(job["motionSvdGenerationJob"]["generationId"])
    out_id = motion["generated_images"][0]["id"]

    paths = client.save_results(motion, str(tmp_path))

    video = os.path.join(str(tmp_path), f"{motion['id']}_{out_id}_motion.mp4")
    assert video in paths
    assert read(video)[4:8] == b"ftyp"


def test_texture_generation_saves_each_map_by_type(client: Client, tmp_path: object) -> None:
    job = client.create_texture_generation({"prompt": "rusty metal", "modelAssetId": "model-1"})
    texture = client.wait_for_texture_generation(job["textureGenerationJob"]["id"])

    paths = client.save_results(texture, str(tmp_path))

    kinds = [t["type"].lower() for t in texture["model_asset_texture_images"]]
    assert paths == [os.path.join(str(tmp_path), f"{texture['id']}_{kind}.png") for kind in kinds]
    assert "albedo" in kinds
    assert all(read(p).startswith(PNG_MAGIC) for p in paths)


def test_lcm_data_urls_are_decoded(client: Client, tmp_path: object) -> None:
    source = "data:image/png;base64," + base64.b64encode(PNG_MAGIC + b"tiny").decode()
    response = client.perform_instant_refine({"imageDataUrl": source, "prompt": "sharper", "requestTimestamp": "1700000000000"})

    paths = client.save_results(response, str(tmp_path))
    assert paths == [os.path.join(str(tmp_path), "lcm-1700000000000_0.png")]
    data_url = response["lcmGenerationJob"]["imageDataUrl"][0]
    assert read(paths[0]) == base64.b64decode(data_url.split(",", 1)[1])
    # the job dict itself works too, and gives the same names
    assert client.save_results(response["lcmGenerationJob"], str(tmp_path)) == paths


def test_data_url_mime_types_pick_the_extension(client: Client, tmp_path: object) -> None:
    job = {
        "requestTimestamp": "42",
        "imageDataUrl": [
            "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode(),
            "data:image/webp;base64," + base64.b64encode(b"RIFFwebp").decode(),
            "data:application/x-unknown;base64,AAAA",
        ],
    }
    paths = client.save_results({"lcmGenerationJob": job}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["lcm-42_0.jpg", "lcm-42_1.webp", "lcm-42_2.bin"]
    assert read(paths[0]) == b"\xff\xd8jpeg"


@pytest.mark.parametrize("bad", ["data:image/png,notbase64", "data:image/png;base64,@@@@", "data:image/png;base64"])
def test_malformed_data_urls_raise(client: Client, tmp_path: object, bad: str) -> None:
    with pytest.raises(LeonardoError):
        client.save_results({"imageDataUrl": [bad]}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_hostile_ids_cannot_escape_the_folder(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = generate(client)["generated_images"][0]["url"]
    generation = {
        "id": "../../etc",
        "status": "COMPLETE",
        "generated_images": [
            {"id": "a/b/../c", "url": url},
            {"id": "..", "url": url},
            {"id": "a:b\\c d", "url": url},
            {"id": "a_b_c_d", "url": url},  # sanitises like the one before: must not overwrite it
        ],
    }
    folder = os.path.join(str(tmp_path), "out")

    paths = client.save_results(generation, folder)

    names = [os.path.basename(p) for p in paths]
    assert names == ["_.._etc_a_b_.._c.png", "_.._etc_1.png", "_.._etc_a_b_c_d.png", "_.._etc_a_b_c_d-2.png"]
    assert all(SAFE.match(n) and os.path.dirname(p) == folder for n, p in zip(names, paths))
    assert sorted(os.listdir(str(tmp_path))) == ["out"]
    assert len(os.listdir(folder)) == 4


@responses.activate(assert_all_requests_are_fired=True)
def test_extension_from_content_type_when_the_url_has_none(tmp_path: object) -> None:
    responses.add(responses.GET, "https://cdn.example.test/img/abc", body=b"RIFFxxxxWEBP", content_type="image/webp")
    responses.add(responses.GET, "https://cdn.example.test/img/def.jpeg?sig=1", body=b"\xff\xd8", content_type="image/png")
    responses.add(responses.GET, "https://cdn.example.test/img/ghi", body=b"??", content_type="application/octet-stream")
    generation = {
        "id": "g1",
        "status": "COMPLETE",
        "generated_images": [
            {"id": "i1", "url": "https://cdn.example.test/img/abc"},
            {"id": "i2", "url": "https://cdn.example.test/img/def.jpeg?sig=1"},
            {"id": "i3", "url": "https://cdn.example.test/img/ghi"},
        ],
    }
    with Client(api_key="test-key-not-real", base_url="https://api.example.test/v1") as client:
        paths = client.save_results(generation, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g1_i1.webp", "g1_i2.jpeg", "g1_i3.bin"]
    assert all("Authorization" not in call.request.headers for call in responses.calls)


def test_pending_or_unknown_results_are_refused(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    fake.completion_delay = 30
    job = client.create_generation({"prompt": "slow"})
    pending = client.get_generation_by_id(job["sdGenerationJob"]["generationId"])
    with pytest.raises(ValueError, match="PENDING, not COMPLETE"):
        client.save_results(pending, str(tmp_path))
    with pytest.raises(ValueError, match="not a generation"):
        client.save_results({"something": "else"}, str(tmp_path))
    with pytest.raises(TypeError):
        client.save_results(["not", "a", "dict"], str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        client.save_results({"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": "file:///etc/passwd"}]}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_a_failed_download_raises_and_leaves_no_partial_file(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    generation = generate(client, num_images=2)
    fake.inject(status=200, body=b"z" * 4000, truncate=True, path="/cdn/*", times=None)
    with pytest.raises(LeonardoError):
        client.save_results(generation, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []
