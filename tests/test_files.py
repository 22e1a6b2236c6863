"""Files: Client.download_image (streamed, atomic, keyless, retried, every failure a
LeonardoError) and Client.save_results (every kind of result saved with safe, stable names);
the file upload_init_image reads.

Against FakeLeonardo, which serves real PNG and MP4 files, except where the image host's
answers are mocked with ``responses``.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import pathlib
import re
import stat
import tempfile
import tracemalloc
import zlib
from typing import Any, Dict, List

import pytest
import requests
from responses import matchers

from conftest import download_matchers, inject_slow_answer, new_generation, refused_url
from leonardo_client import Client, LeonardoError
from leonardo_client._files import remove_temporaries
from leonardo_client.testing import FakeLeonardo, RecordedRequest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAFE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")


def image_url(client: Client) -> str:
    job = client.create_generation({"prompt": "a red fox", "num_images": 1})
    generation = client.wait_for_generation(job["sdGenerationJob"]["generationId"])
    return str(generation["generated_images"][0]["url"])


def cdn_requests(fake: FakeLeonardo) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.path.startswith("/cdn/")]


def leftovers(folder: str) -> List[str]:
    return sorted(os.listdir(folder))


def generate(client: Client, num_images: int = 1) -> Dict[str, Any]:
    job = client.create_generation({"prompt": "a lighthouse at dusk", "num_images": num_images})
    return client.wait_for_generation(job["sdGenerationJob"]["generationId"])


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# --- download_image ---------------------------------------------------------------------------


def test_downloads_an_image_without_the_key(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    url = image_url(fake_client)
    path = os.path.join(str(tmp_path), "fox.png")

    assert fake_client.download_image(url, path) == path

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    [download] = cdn_requests(fake)
    assert "Authorization" not in download.headers
    assert fake.api_key not in str(download.headers)
    assert download.headers["User-Agent"].startswith("leonardo-client/")
    api_calls = [r for r in fake.requests if not r.path.startswith("/cdn/")]
    assert all(r.headers["Authorization"] == f"Bearer {fake.api_key}" for r in api_calls)
    assert leftovers(str(tmp_path)) == ["fox.png"]


def test_accepts_a_pathlike_and_replaces_an_existing_file(fake_client: Client, tmp_path: "os.PathLike[str]") -> None:
    target = os.path.join(os.fspath(tmp_path), "fox.png")
    with open(target, "wb") as f:
        f.write(b"old")
    with open(os.path.join(os.fspath(tmp_path), ".fox.png.part"), "wb"):  # what a crash may leave: never in the way
        pass
    assert fake_client.download_image(image_url(fake_client), pathlib.Path(target)) == target
    with open(target, "rb") as f:
        assert f.read(8) == PNG_MAGIC


@pytest.mark.parametrize("name", ["f" * 251 + ".png", "é" * 125 + "x.png", "x" + "é" * 125 + ".png"])  # 255 bytes
def test_a_name_as_long_as_the_file_system_takes_is_saved(
    fake_client: Client, tmp_path: object, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The temporary file's name is longer than the file's: 241 to 255 bytes (NAME_MAX) was "File name too long".
    target = os.path.join(str(tmp_path), name)
    seen: List[str] = []
    monkeypatch.setattr(os, "replace", lambda temp, path: seen.append(temp) or os.rename(temp, path))
    assert fake_client.download_image(image_url(fake_client), target) == target
    monkeypatch.undo()
    assert leftovers(str(tmp_path)) == [name]
    os.path.basename(seen[0]).encode("utf-8")  # cut between characters: exFAT, NTFS, APFS refuse a name not UTF-8


def test_large_download_streams_with_flat_memory(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    size = 64 * 1024 * 1024
    path = os.path.join(str(tmp_path), "big.bin")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fake_client.download_image(fake.blob_url(size), path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    growth = peak - before
    assert growth < 16 * 1024 * 1024, f"peak grew by {growth} bytes"
    assert os.path.getsize(path) == size
    with open(path, "rb") as f:  # byte i of a blob is i % 251
        f.seek(size - 3)
        assert list(f.read()) == [(size - 3 + k) % 251 for k in range(3)]


@pytest.mark.parametrize("yours", [False, True], ids=["the client's session", "a caller's session"])
def test_truncated_body_leaves_no_file(fake: FakeLeonardo, make_fake_client, tmp_path: object, yours: bool) -> None:
    # A caller's session on urllib3 1.26 does not enforce Content-Length: the client's own check must.
    with requests.Session() as session, make_fake_client(session=session if yours else None) as client:
        url = image_url(client)
        path = os.path.join(str(tmp_path), "fox.png")
        fake.inject(status=200, body=b"\x89PNG" + b"x" * 5000, truncate=True, path="/cdn/*", times=None)
        broke = r"^HTTP 200: download failed: connection broke .*\(truncated body: \d+ of "
        with pytest.raises(LeonardoError, match=broke):
            client.download_image(url, path)
    assert leftovers(str(tmp_path)) == []
    # Sent again under the client's retry rule; a caller's session keeps its own adapters (none retrying).
    assert len([r for r in fake.requests if r.kind == "cdn"]) == (1 if yours else 4)


def test_a_download_cut_short_once_is_sent_again_and_saved_whole(
    fake: FakeLeonardo, fake_client: Client, tmp_path: object
) -> None:
    url = image_url(fake_client)
    reference = fake_client.download_image(url, os.path.join(str(tmp_path), "reference.png"))
    fake.inject(status=200, body=b"\x89PNG" + b"x" * 5000, truncate=True, path="/cdn/*")
    path = fake_client.download_image(url, os.path.join(str(tmp_path), "fox.png"))
    with open(path, "rb") as f, open(reference, "rb") as g:
        assert f.read() == g.read()
    assert len([r for r in fake.requests if r.kind == "cdn"]) == 3


def test_failed_download_keeps_the_old_file(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    url = image_url(fake_client)
    path = os.path.join(str(tmp_path), "fox.png")
    with open(path, "wb") as f:
        f.write(b"previous")
    fake.inject(status=200, body=b"y" * 5000, truncate=True, path="/cdn/*", times=None)

    with pytest.raises(LeonardoError):
        fake_client.download_image(url, path)
    with open(path, "rb") as f:
        assert f.read() == b"previous"
    assert leftovers(str(tmp_path)) == ["fox.png"]


def test_dropped_connections_are_retried_then_fail(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    url = image_url(fake_client)
    path = os.path.join(str(tmp_path), "fox.png")
    fake.inject(drop=True, path="/cdn/*", times=None)

    with pytest.raises(LeonardoError) as info:
        fake_client.download_image(url, path)
    assert info.value.status_code is None
    assert str(info.value).startswith("download failed")
    assert len(cdn_requests(fake)) == 4  # the first try and 3 retries
    assert leftovers(str(tmp_path)) == []


def test_a_503_is_retried(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    url = image_url(fake_client)
    fake.inject(status=503, path="/cdn/*", times=1)
    path = fake_client.download_image(url, os.path.join(str(tmp_path), "fox.png"))
    assert os.path.getsize(path) > 8
    assert len(cdn_requests(fake)) == 2


@pytest.mark.parametrize("status", [404, 500])
def test_error_status_raises(fake: FakeLeonardo, tmp_path: object, status: int) -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, max_retries=0) as client:
        fake.inject(status=status, path="/cdn/*")
        with pytest.raises(LeonardoError) as info:
            client.download_image(fake.root_url + "/cdn/x.png", os.path.join(str(tmp_path), "x.png"))
    assert info.value.status_code == status
    assert "\n" not in str(info.value)
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("status, content_type, body, said", [
    (200, "text/html; charset=utf-8", b"<html>Access denied</html>", "the server answered text/html, not a file"),
    (200, "Application/JSON", b'{"error": "expired"}', "the server answered application/json, not a file"),
    (200, "application/xml", b"<Error>AccessDenied</Error>", "the server answered application/xml, not a file"),
    (200, "application/problem+json", b"{}", "the server answered application/problem+json, not a file"),
    (200, "text/plain", b"error code: 1020", "the server answered text/plain, not a file"),
    (200, "image/png", b"", "the server answered an empty body, not a file"),
    (204, "image/png", b"", "a 204 answer is not a whole file (only a 200 is)"),
    (206, "image/png", PNG_MAGIC, "a 206 answer is not a whole file (only a 200 is)"),
])
def test_an_answer_that_is_not_the_whole_file_is_refused(mocked, mock_client, tmp_path, status, content_type, body, said):
    # Any 2xx was saved as the image: a TLS-inspecting proxy's block page, an expired link's error, nothing, a slice.
    url = "https://cdn.example.test/i.png"
    mocked.add("GET", url, status=status, body=body, content_type=content_type, match=download_matchers())
    (tmp_path / "i.png").write_bytes(b"old")
    with pytest.raises(LeonardoError) as info:
        mock_client.download_image(url, tmp_path / "i.png")
    assert str(info.value) == f"HTTP {status}: download failed: {said} (GET {url})"
    assert leftovers(str(tmp_path)) == ["i.png"] and (tmp_path / "i.png").read_bytes() == b"old"


@pytest.mark.parametrize("content_type", ["image/svg+xml", "binary/octet-stream", "application/pdf", None])
def test_a_file_of_a_type_that_is_no_page_is_saved(mocked, mock_client, tmp_path, content_type) -> None:
    url = "https://cdn.example.test/i.png"
    mocked.add("GET", url, body=b"<svg/>", content_type=content_type, match=download_matchers())
    assert read(mock_client.download_image(url, str(tmp_path / "i.png"))) == b"<svg/>"


NOISE = bytes(range(256)) * 400  # 100 KiB that compress to a few hundred bytes
IDENTITY = [*download_matchers(), matchers.header_matcher({"Accept-Encoding": "identity"})]  # a file's GET


@pytest.mark.parametrize("coding, body", [
    ("GZIP", gzip.compress(NOISE)), ("deflate", zlib.compress(NOISE)),
    ("aws-chunked", NOISE),  # a label S3 keeps on some objects: no compression
])
def test_a_file_compressed_though_none_was_asked_is_saved_decoded(mocked, mock_client, tmp_path, coding, body) -> None:
    # Files are compressed already: a download asks for no coding (urllib3 checks no gzip or deflate stream ends).
    url = "https://cdn.example.test/i.png"
    mocked.add("GET", url, body=body, content_type="image/png", headers={"Content-Encoding": coding}, match=IDENTITY)
    assert read(mock_client.download_image(url, str(tmp_path / "i.png"))) == NOISE


@pytest.mark.parametrize("coding", ["br", "gzip, gzip", "zstd;v=1", "x-gzip", "compress", "x-compress"])
def test_a_file_in_a_coding_urllib3_may_not_decode_is_refused(mocked, mock_client, tmp_path, coding):
    # It was saved as it came (br without brotli; urllib3 1.26 decodes no "gzip, gzip" nor x-gzip, no urllib3
    # decodes compress): x-gzip is refused on urllib3 2 too.
    url = "https://cdn.example.test/i.png"
    body = gzip.compress(NOISE)
    said = f"the server answered Content-Encoding: {coding}, a compression not decoded here"
    mocked.add("GET", url, body=body, content_type="image/png", headers={"Content-Encoding": coding}, match=IDENTITY)
    with pytest.raises(LeonardoError) as info:
        mock_client.download_image(url, str(tmp_path / "i.png"))
    assert str(info.value) == f"HTTP 200: download failed: {said} (GET {url})"
    assert leftovers(str(tmp_path)) == []


def test_connection_refused(fake_client: Client, tmp_path: object) -> None:
    with pytest.raises(LeonardoError, match="download failed: connection failed") as info:
        fake_client.download_image(refused_url() + "/x.png", os.path.join(str(tmp_path), "x.png"))
    assert info.value.status_code is None
    assert leftovers(str(tmp_path)) == []


def test_slow_image_host_times_out(fake: FakeLeonardo, tmp_path: object) -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(1, 0.2), max_retries=0) as client:
        inject_slow_answer(fake, 2, path="/cdn/*")
        with pytest.raises(LeonardoError, match="timed out"):
            client.download_image(fake.root_url + "/cdn/x.png", os.path.join(str(tmp_path), "x.png"))


def test_unwritable_target_is_a_leonardo_error(fake_client: Client, tmp_path: object) -> None:
    url = image_url(fake_client)
    with pytest.raises(LeonardoError, match="could not write"):  # a name over the file system's 255 bytes
        fake_client.download_image(url, os.path.join(str(tmp_path), "x" * 300 + ".png"))


@pytest.mark.parametrize(
    "url", ["ftp://example.invalid/x.png", "data:image/png;base64,AAAA", "file:///etc/passwd", "http:///x", "x.png"]
)
def test_non_http_urls_are_refused_before_sending(fake: FakeLeonardo, fake_client: Client, tmp_path: object, url: str) -> None:
    with pytest.raises(ValueError):
        fake_client.download_image(url, os.path.join(str(tmp_path), "x.png"))
    assert fake.requests == []


@pytest.mark.parametrize(
    "rest",
    [":99999/cdn/x.png", ":x/cdn/x.png", "/cdn/a\0.png", "/cdn/x.png\r\nX-Injected: 1", "@h%zz/x.png",
     ":9\\x/cdn/x.png"],  # urllib3 reads port 9, and a path from the backslash on: a URL other than the one given
)
def test_urls_that_cannot_be_requested_as_given_are_refused_before_sending(fake, fake_client, tmp_path, rest):
    # A bad port was LeonardoError "Failed to parse"; the others were sent (a CR/LF kept in err.url), and a
    # host urllib3 cannot parse was its error quoting the URL whole, password and all (urllib3 2.0-2.6).
    url = ("http://alice:s3cret" if rest.startswith("@") else "http://127.0.0.1" if rest.startswith(":") else fake.root_url) + rest
    with pytest.raises(ValueError, match="^url is not an http.s. URL: '.*valid host and port, no control") as refused:
        fake_client.download_image(url, os.path.join(str(tmp_path), "x.png"))
    assert fake.requests == [] and "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "url", [" https://cdn.example.test/a.png", "https://cdn.example.test/a.png ", "https://cdn.exa mple.test/a.png",
            "https://cdn.example.test :443/a.png", "https://my user:pw@cdn.example.test/a.png",
            "https://u:p w@cdn.example.test/a.png"]
)
def test_a_space_around_a_url_or_in_its_host_is_refused_before_sending(mocked, mock_client, tmp_path, url):
    # urllib3 2.8 refused some (its own error, sent nothing); 1.26-2.2 sent them, to fail at the network
    with pytest.raises(ValueError, match="^url is not an http.s. URL"):
        mock_client.download_image(url, str(tmp_path / "x.png"))


def test_a_space_in_a_url_is_sent_percent_encoded(fake, fake_client, tmp_path):
    with pytest.raises(LeonardoError, match="HTTP 404"):  # no such file, but asked for
        fake_client.download_image(fake.root_url + "/cdn/a b.png", os.path.join(str(tmp_path), "x.png"))
    assert [r.path for r in fake.requests] == ["/cdn/a%20b.png"]


def test_bad_arguments(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    with pytest.raises(TypeError):
        fake_client.download_image(None, os.path.join(str(tmp_path), "x.png"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="folder"):
        fake_client.download_image(fake.root_url + "/cdn/x.png", str(tmp_path))
    assert fake.requests == []


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"/tmp/x.png"


@pytest.mark.parametrize(
    "path, error, text",
    [(b"/tmp/x.png", TypeError, "path must be a str"), (BytesPath(), TypeError, "path must be a str"),
     ("", ValueError, "non-empty"), ("x\0.png", ValueError, "NUL"), ("no-such-folder/x.png", ValueError, "no existing folder"),
     ("x\ud800.png", ValueError, "no file name can")],  # a lone surrogate: no byte of the file system's
)
def test_unusable_paths_are_refused_before_the_download_starts(fake, fake_client, tmp_path, path, error, text):
    # They used to fail after the whole download (bytes, NUL, empty, a missing folder).
    with pytest.raises(error, match=text):
        fake_client.download_image(fake.root_url + "/cdn/x.png", path)
    with pytest.raises(error, match=text.replace("path must", "folder must").replace("no existing folder", "NUL")):
        fake_client.save_results(generate(fake_client), path if path != "no-such-folder/x.png" else "a\0b")
    assert [r.path for r in fake.requests if r.path.startswith("/cdn/")] == []


def test_a_path_ending_in_a_separator_is_said_to_name_a_folder(mocked, mock_client, tmp_path) -> None:
    # It was "in no existing folder", of a folder that exists.
    with pytest.raises(ValueError, match="names a folder; give the file name to write"):
        mock_client.download_image("https://cdn.example.test/x.png", os.path.join(str(tmp_path), "new") + os.sep)
    assert not mocked.calls


def test_downloads_reuse_one_connection_of_their_own(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    generation_id = new_generation(fake_client)
    for n in range(10):
        path = fake_client.download_image(fake.blob_url(256 * 1024), os.path.join(str(tmp_path), f"{n}.bin"))
        assert os.path.getsize(path) == 256 * 1024  # read to the end, so the connection goes back to the pool
    assert fake_client.get_generation_by_id(generation_id)["generations_by_pk"]["id"] == generation_id
    # The API's pool and the download pool (image hosts, never sent the key) hold one each.
    assert fake.connections_opened == 2


# --- save_results -----------------------------------------------------------------------------


def test_saves_every_image_of_a_generation(fake_client: Client, tmp_path: object) -> None:
    generation = generate(fake_client, num_images=3)
    folder = os.path.join(str(tmp_path), "new", "nested")

    paths = fake_client.save_results(generation, folder)

    expected = [os.path.join(folder, f"{generation['id']}_{image['id']}.png") for image in generation["generated_images"]]
    assert paths == expected
    assert all(read(p).startswith(PNG_MAGIC) for p in paths)
    assert sorted(os.listdir(folder)) == sorted(os.path.basename(p) for p in paths)


def test_a_whole_get_response_is_unwrapped_and_names_are_stable(fake_client: Client, tmp_path: object) -> None:
    generation = generate(fake_client)
    first = fake_client.save_results(generation, str(tmp_path))
    again = fake_client.save_results(fake_client.get_generation_by_id(generation["id"]), str(tmp_path))
    assert first == again
    assert os.listdir(str(tmp_path)) == [os.path.basename(first[0])]


def test_motion_generation_saves_the_video(fake_client: Client, tmp_path: object) -> None:
    image_id = generate(fake_client)["generated_images"][0]["id"]
    job = fake_client.create_svd_motion_generation({"imageId": image_id})
    motion = fake_client.wait_for_generation(job["motionSvdGenerationJob"]["generationId"])
    out_id = motion["generated_images"][0]["id"]

    paths = fake_client.save_results(motion, str(tmp_path))

    video = os.path.join(str(tmp_path), f"{motion['id']}_{out_id}_motion.mp4")
    assert video in paths
    assert read(video)[4:8] == b"ftyp"


def test_a_video_only_at_motionmp4url_is_the_images_file(mocked, mock_client, tmp_path: object) -> None:
    # The spec makes url optional: a video model's may be only at motionMP4URL ("url is not a file URL").
    for name in ("v1", "v2"):
        mocked.add("GET", f"https://cdn.example.test/{name}.mp4", body=b"\0\0\0\x18ftyp", content_type="video/mp4", match=download_matchers())
    videos = [{"id": "v1", "url": None, "motionMP4URL": "https://cdn.example.test/v1.mp4"},
              {"id": "v2", "motionMP4URL": "https://cdn.example.test/v2.mp4"}]
    paths = mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": videos}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g_v1.mp4", "g_v2.mp4"]


def test_a_video_at_both_url_and_motionmp4url_is_saved_once(mocked, mock_client, tmp_path: object) -> None:
    # A v2 video lists the same file at both: one download, not g_v.mp4 and g_v_motion.mp4 of the same bytes.
    video = "https://cdn.example.test/v.mp4"
    mocked.add("GET", video, body=b"\0\0\0\x18ftyp", content_type="video/mp4", match=download_matchers())
    images = [{"id": "v", "url": video, "motionMP4URL": video}]
    paths = mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": images}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g_v.mp4"]
    assert len(mocked.calls) == 1


def test_texture_generation_saves_each_map_by_type(fake_client: Client, tmp_path: object) -> None:
    job = fake_client.create_texture_generation({"prompt": "rusty metal", "modelAssetId": "model-1"})
    texture = fake_client.wait_for_texture_generation(job["textureGenerationJob"]["id"])

    paths = fake_client.save_results(texture, str(tmp_path))

    kinds = [t["type"].lower() for t in texture["model_asset_texture_images"]]
    assert paths == [os.path.join(str(tmp_path), f"{texture['id']}_{kind}.png") for kind in kinds]
    assert "albedo" in kinds
    assert all(read(p).startswith(PNG_MAGIC) for p in paths)


def test_a_list_of_files_at_null_is_an_empty_one(mock_client: Client, tmp_path: object) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG_MAGIC).decode()
    texture = {"id": "t", "status": "COMPLETE", "generated_images": None,
               "model_asset_texture_images": [{"type": "ALBEDO", "url": url}]}
    assert mock_client.save_results(texture, str(tmp_path)) == [os.path.join(str(tmp_path), "t_albedo.png")]


def test_images_without_a_url_yet_are_skipped(mock_client: Client, tmp_path: object) -> None:
    # The wait returns a COMPLETE generation whose URLs the API has not all filled in yet (API_FACTS_MORE (c)):
    # README's Quickstart saves it as it is. It raised "url is not a file URL: null" and saved none.
    url = "data:image/png;base64," + base64.b64encode(PNG_MAGIC).decode()
    images = [{"id": "a", "url": None}, {"id": "b", "url": url}, {"id": "c"}, {"id": "d", "url": ""}]
    result = {"id": "g", "status": "COMPLETE", "generated_images": images}
    assert mock_client.save_results(result, str(tmp_path)) == [os.path.join(str(tmp_path), "g_b.png")]
    textures = [{"type": "ALBEDO", "url": None}, {"type": "NORMAL", "url": url}]
    texture = {"id": "t", "status": "COMPLETE", "model_asset_texture_images": textures}
    assert mock_client.save_results(texture, str(tmp_path)) == [os.path.join(str(tmp_path), "t_normal.png")]
    folder = os.path.join(str(tmp_path), "none")  # README: a result with no file returns [], no folder made
    assert mock_client.save_results(dict(result, generated_images=[images[0], images[2]]), folder) == []
    assert not os.path.exists(folder)


def test_lcm_data_urls_are_decoded(fake_client: Client, tmp_path: object) -> None:
    source = "data:image/png;base64," + base64.b64encode(PNG_MAGIC + b"tiny").decode()
    response = fake_client.perform_instant_refine({"imageDataUrl": source, "prompt": "sharper", "requestTimestamp": "1700000000000"})

    paths = fake_client.save_results(response, str(tmp_path))
    assert os.path.dirname(paths[0]) == str(tmp_path) and len(paths) == 1
    assert re.fullmatch(r"lcm-1700000000000-[0-9a-f]{12}_0\.jpg", os.path.basename(paths[0]))
    data_url = response["lcmGenerationJob"]["imageDataUrl"][0]
    assert read(paths[0]) == base64.b64decode(data_url.split(",", 1)[1])
    # the job dict itself works too, and gives the same names
    assert fake_client.save_results(response["lcmGenerationJob"], str(tmp_path)) == paths


def test_lcm_results_with_the_same_timestamp_get_names_of_their_own(fake_client: Client, tmp_path: object) -> None:
    # requestTimestamp is the caller's: a loop refining in one second saved every result as lcm-<second>_0.jpg,
    # each replacing the last. The images' digest tells them apart; the same result saved again keeps its name.
    source = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0sketch").decode()
    results = [fake_client.perform_instant_refine({"imageDataUrl": source, "prompt": prompt, "requestTimestamp": "7"})
               for prompt in ("watercolour", "oil", "pencil")]
    paths = [path for result in results for path in fake_client.save_results(result, str(tmp_path))]
    assert len(set(paths)) == 3 and sorted(os.listdir(str(tmp_path))) == sorted(map(os.path.basename, paths))
    for result, path in zip(results, paths):
        assert read(path) == base64.b64decode(result["lcmGenerationJob"]["imageDataUrl"][0].split(",", 1)[1])
    assert fake_client.save_results(results[0], str(tmp_path)) == paths[:1]


def test_lcm_results_that_share_their_first_image_get_names_of_their_own(mock_client: Client, tmp_path: object) -> None:
    # The digest is of all the result's images: of the first alone, the second result's second image replaced the
    # first's (no test had two results alike in their first image; found by the review of the simplification).
    first, second, third = ("data:image/png;base64," + base64.b64encode(PNG_MAGIC + tag).decode() for tag in (b"a", b"b", b"c"))
    paths = [path for later in (second, third) for path in mock_client.save_results(
        {"lcmGenerationJob": {"imageDataUrl": [first, later], "requestTimestamp": "7"}}, str(tmp_path))]
    assert len(set(paths)) == 4 and sorted(os.listdir(str(tmp_path))) == sorted(map(os.path.basename, paths))
    assert [read(path)[-1:] for path in paths] == [b"a", b"b", b"a", b"c"]


@pytest.mark.parametrize("folder, text", [("a.png", "exists and is not a folder"), ("a.png/sub", "is inside a file, not a folder")])
def test_a_folder_that_is_a_file_is_refused_before_any_download(mocked, mock_client, tmp_path, monkeypatch, folder, text):
    # It was a LeonardoError, "could not create folder 'a.png': File exists", as if the system failed.
    monkeypatch.chdir(tmp_path)
    pathlib.Path("a.png").write_bytes(PNG_MAGIC)
    result = {"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": "https://cdn.example.test/i.png"}]}
    with pytest.raises(ValueError, match=f"^'{folder}' {text}$"):
        mock_client.save_results(result, folder)
    assert len(mocked.calls) == 0


def test_a_result_with_no_file_to_save_makes_no_folder(mock_client: Client, tmp_path: object) -> None:
    # It was made and left empty: `get --out new` of a generation COMPLETE with no image left new/ there.
    folder = os.path.join(str(tmp_path), "new", "nested")
    assert mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": []}, folder) == []
    assert os.listdir(str(tmp_path)) == []


def test_a_folder_too_deep_to_create_is_a_leonardo_error(fake_client: Client, tmp_path: object) -> None:
    source = "data:image/png;base64," + base64.b64encode(PNG_MAGIC).decode()
    response = fake_client.perform_instant_refine({"imageDataUrl": source, "prompt": "sharper"})
    with pytest.raises(LeonardoError, match="too many folders to create"):  # os.makedirs' RecursionError
        fake_client.save_results(response, os.path.join(str(tmp_path), *["e"] * 1000))


def test_data_url_mime_types_pick_the_extension(fake_client: Client, tmp_path: object) -> None:
    job = {
        "requestTimestamp": "42",
        "imageDataUrl": [
            "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode(),
            "data:image/webp;base64," + base64.b64encode(b"RIFFwebp").decode(),
            "data:application/x-unknown;base64,AAAA",
            "data:Image/PNG;base64," + base64.b64encode(PNG_MAGIC).decode(),  # a media type in any case
            "data:image/jpg;base64," + base64.b64encode(b"\xff\xd8jpg").decode(),  # not registered, but sent
        ],
    }
    paths = fake_client.save_results({"lcmGenerationJob": job}, str(tmp_path))
    names = [os.path.basename(p) for p in paths]
    prefix = names[0][: -len("_0.jpg")]  # one result: one digest, its images numbered
    assert re.fullmatch(r"lcm-42-[0-9a-f]{12}", prefix)
    assert names == [f"{prefix}_0.jpg", f"{prefix}_1.webp", f"{prefix}_2.bin", f"{prefix}_3.png", f"{prefix}_4.jpg"]
    assert read(paths[0]) == b"\xff\xd8jpeg"


@pytest.mark.parametrize("bad, said", [
    ("data:image/png,notbase64", "not a base64 data URL"), ("data:image/png,AAAA", "not a base64 data URL"),
    ("data:image/png;base64,@@@@", "invalid base64"), ("data:image/png;base64", "not a base64 data URL"),
    ("data:image/png;base64,-_-_cG5n", "invalid base64"),  # URL-safe, b"\xfb\xff\xbfpng": unvalidated, read as b"png"
    ("data:image/jpeg;base64,", "holds no data"),  # no data: it was saved as an empty file
])
def test_malformed_data_urls_raise(fake_client: Client, tmp_path: object, bad: str, said: str) -> None:
    good = "data:image/png;base64," + base64.b64encode(b"png").decode()
    with pytest.raises(LeonardoError, match=said):  # nothing written, not even the good file listed before it
        fake_client.save_results({"imageDataUrl": [good, bad]}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_hostile_ids_cannot_escape_the_folder(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    url = generate(fake_client)["generated_images"][0]["url"]
    generation = {
        "id": "../../etc",
        "status": "COMPLETE",
        "generated_images": [
            {"id": "a/b/../c", "url": url},
            {"id": "..", "url": url},
            {"id": "a:b\\c d", "url": url},
            {"id": "a_b_c_d", "url": url},  # sanitises like the one before: must not overwrite it
            {"id": "y" * 300, "url": url},  # cut to 80: a name the file system takes
        ],
    }
    folder = os.path.join(str(tmp_path), "out")

    paths = fake_client.save_results(generation, folder)

    names = [os.path.basename(p) for p in paths]
    assert names == ["_.._etc_a_b_.._c.png", "_.._etc_1.png", "_.._etc_a_b_c_d.png", "_.._etc_a_b_c_d-2.png",
                     "_.._etc_" + "y" * 80 + ".png"]
    assert all(SAFE.match(n) and os.path.dirname(p) == folder for n, p in zip(names, paths))
    assert sorted(os.listdir(str(tmp_path))) == ["out"]
    assert len(os.listdir(folder)) == 5


def test_a_missing_id_is_named_by_its_fallback_not_none(mock_client: Client, tmp_path: object) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG_MAGIC).decode()
    result = {"id": None, "status": "COMPLETE", "generated_images": [{"url": url}, {"id": None, "url": url}]}
    paths = mock_client.save_results(result, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["generation_0.png", "generation_1.png"]


@pytest.mark.parametrize(
    "ids, names",
    [(("a/b", "a_b", "a_b-2", "a?b"), ["g_a_b.png", "g_a_b-2.png", "g_a_b-2-2.png", "g_a_b-3.png"]),
     (("a/b", "a_b-2", "a?b"), ["g_a_b.png", "g_a_b-2.png", "g_a_b-3.png"]),  # "-2" another's own: on to "-3"
     (("Img", "img", "IMG-2"), ["g_Img.png", "g_img-2.png", "g_IMG-2-2.png"])],  # one file where case is not told apart
)
def test_a_name_made_unique_is_not_taken_from_another_file(mocked, mock_client, tmp_path: object, ids, names) -> None:
    # "a/b" and "a_b" sanitise alike, so the second became "a_b-2": the third's own name.
    data_url = "data:image/png;base64,{}".format
    images = [{"id": i, "url": data_url(base64.b64encode(i.encode()).decode())} for i in ids]
    paths = mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": images}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == names
    assert [read(p) for p in paths] == [i.encode() for i in ids]


def test_extension_from_content_type_when_the_url_has_none(mocked, mock_client, tmp_path: object) -> None:
    keyless = download_matchers()  # as mock_client sends a file's GET
    mocked.add("GET", "https://cdn.example.test/img/abc", body=b"RIFFxxxxWEBP", content_type="image/webp", match=keyless)
    mocked.add("GET", "https://cdn.example.test/img/def.jpeg?sig=1", body=b"\xff\xd8", content_type="image/png", match=keyless)
    mocked.add("GET", "https://cdn.example.test/img/ghi", body=b"??", content_type="application/octet-stream", match=keyless)
    mocked.add("GET", "https://cdn.example.test/img/jkl.exe", body=b"\x89PNG", content_type="image/png", match=keyless)
    generation = {
        "id": "g1",
        "status": "COMPLETE",
        "generated_images": [
            {"id": "i1", "url": "https://cdn.example.test/img/abc"},
            {"id": "i2", "url": "https://cdn.example.test/img/def.jpeg?sig=1"},
            {"id": "i3", "url": "https://cdn.example.test/img/ghi"},
            {"id": "i4", "url": "https://cdn.example.test/img/jkl.exe"},  # not an extension of a known type
        ],
    }
    paths = mock_client.save_results(generation, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g1_i1.webp", "g1_i2.jpeg", "g1_i3.bin", "g1_i4.png"]
    assert all("Authorization" not in call.request.headers for call in mocked.calls)


def test_a_content_type_picks_the_extension_in_any_case(mocked, mock_client, tmp_path: object) -> None:
    # Media types are case-insensitive (RFC 9110 8.3.1): read as given, "Image/PNG" would be saved as .bin.
    keyless = download_matchers()
    mocked.add("GET", "https://cdn.example.test/img/a", body=b"\x89PNG", content_type="Image/PNG", match=keyless)
    mocked.add("GET", "https://cdn.example.test/img/b", body=b"\xff\xd8", content_type="IMAGE/JPEG; x=1", match=keyless)
    mocked.add("GET", "https://cdn.example.test/img/c.JPEG", body=b"\xff\xd8", content_type="image/jpeg", match=keyless)
    names = ((1, "a"), (2, "b"), (3, "c.JPEG"))  # c: the URL's extension, in any case, before the type's
    images = [{"id": f"i{n}", "url": f"https://cdn.example.test/img/{name}"} for n, name in names]
    paths = mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": images}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g_i1.png", "g_i2.jpg", "g_i3.jpeg"]


def test_a_3d_model_and_audio_are_named_by_their_type_or_url(mocked, mock_client, tmp_path: object) -> None:
    keyless = download_matchers()  # as mock_client sends a file's GET
    mocked.add("GET", "https://cdn.example.test/out/mesh", body=b"glTF", content_type="model/gltf-binary", match=keyless)
    mocked.add("GET", "https://cdn.example.test/out/song.mp3", body=b"ID3", content_type="application/octet-stream", match=keyless)
    mocked.add("GET", "https://cdn.example.test/out/line", body=b"RIFF", content_type="audio/wav", match=keyless)
    urls = ["https://cdn.example.test/out/mesh", "https://cdn.example.test/out/song.mp3", "https://cdn.example.test/out/line"]
    images = [{"id": f"i{n}", "url": url} for n, url in enumerate(urls)]
    paths = mock_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": images}, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["g_i0.glb", "g_i1.mp3", "g_i2.wav"]


@pytest.mark.parametrize("created, wait", [
    ({"sdGenerationJob": {"generationId": "g-1"}}, "wait_for_generation"),
    ({"generate": {"generationId": "g-2"}}, "wait_for_generation"),
    ({"generationId": "g-3", "apiCreditCost": 5}, "wait_for_generation"),
    ({"textureGenerationJob": {"id": "t-1"}}, "wait_for_texture_generation"),
])
def test_a_create_response_is_refused_saying_to_wait_for_it(
    fake: FakeLeonardo, fake_client: Client, tmp_path: object, created: Dict[str, Any], wait: str
) -> None:
    # It said only "result is not a generation, a texture generation or an LCM result".
    folder = os.path.join(str(tmp_path), "out")
    with pytest.raises(ValueError, match=rf"^that is a create call's response, not a result: wait for it first \({wait}"):
        fake_client.save_results(created, folder)
    assert not os.path.exists(folder) and fake.requests == []


def test_pending_or_unknown_results_are_refused(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    fake.completion_delay = 30
    job = fake_client.create_generation({"prompt": "slow"})
    pending = fake_client.get_generation_by_id(job["sdGenerationJob"]["generationId"])
    folder = os.path.join(str(tmp_path), "out")  # not created for a result refused
    with pytest.raises(ValueError, match="'PENDING', not COMPLETE"):
        fake_client.save_results(pending, folder)
    with pytest.raises(ValueError, match="^the generation is 'PPP+\\.\\.\\., not COMPLETE: wait for it first$"):
        fake_client.save_results({"status": "P" * 10000, "generated_images": []}, folder)  # was shown whole
    with pytest.raises(ValueError, match="^the generation FAILED: it has no files to save$"):  # not "wait for it"
        fake_client.save_results({"status": "FAILED", "generated_images": []}, folder)
    with pytest.raises(ValueError, match="^the generation has no status, not COMPLETE: wait for it first$"):
        fake_client.save_results({"id": "g", "generated_images": []}, folder)  # it said "the generation is None"
    with pytest.raises(ValueError, match="not a generation"):
        fake_client.save_results({"something": "else"}, folder)
    with pytest.raises(TypeError):
        fake_client.save_results(["not", "a", "dict"], folder)  # type: ignore[arg-type]
    with pytest.raises(LeonardoError, match="not a file URL"):  # the answer is at fault, not the argument
        fake_client.save_results({"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": "file:///etc/passwd"}]}, folder)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize(
    "images, where",
    [([None], "generated_images is not a list of objects"), (["https://cdn.example.test/x.png"], "list of objects"),
     ({"id": "i"}, "generated_images is not a list"), ([{"id": "i", "url": True}], r"generated_images\[1\].url is not"),
     ([{"id": "i", "url": ["x"]}], "not a file URL: a list holding a string$"),  # it said list, int: Python's
     ([{"id": "i", "url": 5}], "not a file URL: a number$"), ([{"id": "i", "url": "https://h/x.png", "motionMP4URL": ["x"]}], "motionMP4URL"),
     ([{"id": "i", "url": "https://h/\udcff.png"}], "not a file URL"),
     ([{"id": "i", "url": "https://" + "a" * 64 + ".example.test/x.png"}], "not a file URL")],
)
def test_a_result_with_unusable_images_is_a_leonardo_error_before_any_file(mocked, mock_client, tmp_path, images, where):
    # The result is the API's answer: when its images are not what the API documents, the answer
    # is at fault (LeonardoError), not the caller (ValueError). It used to be AttributeError/KeyError.
    result = {"id": "g", "status": "COMPLETE", "generated_images": [{"id": "ok", "url": "https://h/ok.png"}]}
    result["generated_images"] = result["generated_images"] + images if isinstance(images, list) else images
    with pytest.raises(LeonardoError, match=where):
        mock_client.save_results(result, str(tmp_path))
    assert os.listdir(str(tmp_path)) == [] and len(mocked.calls) == 0


@pytest.mark.parametrize(
    "answer, where",
    [({"lcmGenerationJob": None}, "lcmGenerationJob is not a result: null$"),  # the spec allows that null
     ({"lcmGenerationJob": ["data:image/png;base64,AAAA"]}, "lcmGenerationJob is not a result: a list"),
     # An unknown id's answer: it said "is not a result: NoneType"; the wait says "is null: no such id".
     ({"generations_by_pk": None}, "^the response's generations_by_pk is null: no such id$"),
     ({"model_asset_texture_generations_by_pk": None}, "^the response's model_asset_texture_generations_by_pk is null"),
     ({"generations_by_pk": {"id": "g", "status": "COMPLETE"}}, "COMPLETE result has no generated_images"),
     ({"id": "g", "status": "COMPLETE"}, "COMPLETE result has no generated_images"),  # wait_for_generation's
     # An LCM answer has nothing to wait for: it said "the generation is None, not COMPLETE", or saved nothing.
     ({"lcmGenerationJob": {"requestTimestamp": "1"}}, "^the API answered no images$"),
     ({"lcmGenerationJob": {"imageDataUrl": [], "requestTimestamp": "1"}}, "^the API answered no images$"),
     # An error in a 200 (an LCM call's): it was a ValueError blaming the caller, the API's text lost.
     ({"error": "Service Error", "path": "$", "code": "unexpected"}, "^the API answered no result: Service Error$"),
     ({"errors": [{"message": "field not found"}]}, "^the API answered no result: field not found$")],
)
def test_an_answer_holding_no_usable_result_is_a_leonardo_error(mocked, mock_client, tmp_path, answer, where):
    # These came from the API, not from the caller: they were a ValueError, which the CLI's generate
    # reported as bad usage (exit 2) after the credits were spent.
    with pytest.raises(LeonardoError, match=where):
        mock_client.save_results(answer, str(tmp_path))
    assert os.listdir(str(tmp_path)) == [] and len(mocked.calls) == 0


@pytest.mark.parametrize("urls", [[5], [None], ["data:image/png;base64,AAAA", {"url": "x"}], "data:image/png;base64,AAAA"])
def test_an_lcm_result_with_unusable_data_urls_is_a_leonardo_error_before_any_file(mocked, mock_client, tmp_path, urls):
    with pytest.raises(LeonardoError, match="imageDataUrl"):
        mock_client.save_results({"lcmGenerationJob": {"imageDataUrl": urls}}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == [] and len(mocked.calls) == 0


def test_an_answers_values_are_named_as_json_not_as_python(mocked, mock_client, tmp_path):
    # It said "a list holding NoneType, int": Python's names, where the reader sees the API's JSON.
    said = "^the result's imageDataUrl is not a list of URLs: a list holding a number, null$"
    with pytest.raises(LeonardoError, match=said):
        mock_client.save_results({"lcmGenerationJob": {"imageDataUrl": [None, 5]}}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == [] and len(mocked.calls) == 0


def test_a_failed_download_raises_and_leaves_no_partial_file(fake: FakeLeonardo, fake_client: Client, tmp_path: object) -> None:
    generation = generate(fake_client, num_images=2)
    fake.inject(status=200, body=b"z" * 4000, truncate=True, path="/cdn/*", times=None)
    with pytest.raises(LeonardoError):
        fake_client.save_results(generation, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_a_file_is_synced_whole_before_it_is_renamed_into_place(mocked, mock_client, tmp_path, monkeypatch):
    """A power cut after the rename cannot leave the file's name on fewer bytes."""
    events: List[str] = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(f"synced {os.fstat(fd).st_size} bytes"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda *paths: (events.append("renamed"), replace(*paths))[1])
    data = PNG_MAGIC + b"x" * 100
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    mock_client.save_results({"lcmGenerationJob": {"imageDataUrl": [url]}}, str(tmp_path))
    assert events == [f"synced {len(data)} bytes", "renamed"]


def test_a_file_at_the_temporary_name_is_not_written_through(mock_client, tmp_path, monkeypatch):
    """A link planted at the temporary file's name (its random part guessed) is refused, not followed."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"kept")
    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)
    os.symlink(str(victim), str(tmp_path / ".g_i.png.00000000.part"))
    url = "data:image/png;base64," + base64.b64encode(PNG_MAGIC).decode()
    result = {"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": url}]}
    with pytest.raises(LeonardoError, match="could not write"):
        mock_client.save_results(result, str(tmp_path))
    assert victim.read_bytes() == b"kept" and not os.path.exists(str(tmp_path / "g_i.png"))


def test_a_batch_start_removes_only_the_temporaries_a_write_leaves_beside_its_file(tmp_path) -> None:
    names = [".index.html.0a1b2c3d.part", ".index.html.0a1b2c3d9.part", ".index.html.mine.part", "index.html"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    remove_temporaries(str(tmp_path / "index.html"))  # only what write_atomically names: its tag is 8 hex digits
    assert leftovers(str(tmp_path)) == names[1:]


# --- upload_init_image's file -------------------------------------------------------------------


@pytest.mark.parametrize(
    "file, error, text",
    [("text mode", TypeError, r"^file must be opened in binary mode \('rb'\)$"),  # was UnicodeDecodeError
     ("a\0.png", ValueError, "^file must be a non-empty path without NUL"),  # was 'embedded null byte'
     ("a\ud800.png", ValueError, "^file holds characters no file name can")],  # was UnicodeEncodeError
)
def test_an_upload_that_cannot_be_read_says_why_and_sends_nothing(mocked, mock_client, tmp_path, file, error, text):
    image = pathlib.Path(str(tmp_path), "a.png")
    image.write_bytes(PNG_MAGIC)  # no text: it does not decode
    with open(image, encoding="utf-8") as text_file:
        with pytest.raises(error, match=text):
            mock_client.upload_init_image(text_file if file == "text mode" else file)
    assert len(mocked.calls) == 0


class Endless:
    """A binary stream without end (/dev/zero, a runaway pipe): read(size) gives size bytes, for ever."""

    def read(self, size: int = -1) -> bytes:
        assert size >= 0, "read to its end: it has none"
        return bytes(size)


class Trickle:
    """A raw stream (a pipe's, a socket's, unbuffered): each read gives at most 3 bytes, its end not yet reached."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) if size < 0 else min(size, 3)  # read(): all of it, as a raw stream's readall()
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk


def test_an_upload_over_64_mib_is_refused_before_anything_is_sent(mocked, mock_client, tmp_path):
    # A path was read whole, whatever its size; a stream without end, until a MemoryError with no message.
    big = tmp_path / "big.png"
    with open(big, "wb") as sparse:
        sparse.truncate(64 * 2 ** 20 + 1)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"big\.png' is over 64 MiB: more than an upload reads$"):
            mock_client.upload_init_image(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 20  # refused by its size, not read
    with pytest.raises(ValueError, match="^file is over 64 MiB: more than an upload reads$"):
        mock_client.upload_init_image(Endless(), "png")
    assert len(mocked.calls) == 0


def test_an_upload_read_in_short_pieces_is_read_whole(fake: FakeLeonardo, fake_client: Client) -> None:
    # Read with a size (the cap), a raw stream answers what has come so far: it is read on to its end.
    image = PNG_MAGIC + bytes(range(256)) * 4
    uploaded = fake_client.get_init_image_by_id(fake_client.upload_init_image(Trickle(image), "png")["id"])
    assert requests.get(uploaded["init_images_by_pk"]["url"], timeout=10).content == image


def test_a_binary_file_opened_by_a_bytes_path_is_uploaded(fake: FakeLeonardo, fake_client: Client, tmp_path) -> None:
    # Its name b'/x/photo.png' was read as "b'/x/photo.png'": extension "png'", refused.
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG_MAGIC + bytes(100))
    with open(os.fsencode(str(photo)), "rb") as file:
        assert fake_client.upload_init_image(file)["id"]
    assert [r.json for r in fake.requests if r.path.endswith("/init-image")] == [{"extension": "png"}]


def test_a_download_to_a_pipe_or_a_device_is_refused_before_anything_is_sent(mocked, mock_client, tmp_path):
    # Hunt O: the file written beside it was renamed over it: a FIFO (its reader got nothing), /dev/stdout's link
    # (as root, a container's /dev/stdout replaced for every later process) became a regular file.
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(ValueError, match=r"is not a regular file \(a pipe or a device\?\); give a file's name$"):
            mock_client.download_image("https://cdn.example.test/a.png", path)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_non_blocking_stream_without_data_ready_or_a_path_named_one_is_told_apart(mocked, mock_client) -> None:
    # Review R2: read(n) answers None when a non-blocking stream has nothing ready: it was "must be opened in binary
    # mode", and a name given as a path object was no name at all (no extension found).
    class Named(io.BytesIO):
        name = pathlib.Path("photo.png")

    class Stalled(Named):
        def read(self, size: Any = -1) -> Any:
            return super().read(size) or None

    with pytest.raises(ValueError, match=r"^file had no data ready \(a non-blocking stream\)"):
        mock_client.upload_init_image(Stalled(PNG_MAGIC))
    with pytest.raises(ValueError, match=r"^nothing left to read in 'photo\.png'"):  # its name, from its Path
        mock_client.upload_init_image(Named())


def test_a_file_read_to_its_end_is_not_called_empty(mocked, mock_client, tmp_path):
    # It said "'<path>' is empty: nothing to upload" of a file that is not (a retry passing the same file object);
    # a TemporaryFile's name, its fd, was quoted as a name: "'5' is empty".
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG_MAGIC)
    with open(photo, "rb") as file, tempfile.TemporaryFile() as unnamed:
        file.read()
        at_end = "nothing left to read in {} (read to its end already? seek(0) first)"
        with pytest.raises(ValueError, match="^" + re.escape(at_end.format(repr(str(photo)))) + "$"):
            mock_client.upload_init_image(file)
        with pytest.raises(ValueError, match="^" + re.escape(at_end.format("file")) + "$"):
            mock_client.upload_init_image(unnamed, "png")
    photo.write_bytes(b"")
    with pytest.raises(ValueError, match=r"photo\.png' is empty: nothing to upload$"):
        mock_client.upload_init_image(photo)
    assert len(mocked.calls) == 0
