"""Client.download_image: streamed, atomic, keyless, retried, every failure a LeonardoError."""

from __future__ import annotations

import os
import socket
import tracemalloc
from typing import Iterator, List

import pytest

from leonardo_client import Client, LeonardoError
from leonardo_client.testing import FakeLeonardo, RecordedRequest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(fake: FakeLeonardo) -> Iterator[Client]:
    # backoff 0: retries happen at once, so the suite stays fast
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(2, 5), backoff_factor=0) as c:
        yield c


def image_url(client: Client) -> str:
    job = client.create_generation({"prompt": "a red fox", "num_images": 1})
    generation = client.wait_for_generation(job["sdGenerationJob"]["generationId"])
    return str(generation["generated_images"][0]["url"])


def cdn_requests(fake: FakeLeonardo) -> List[RecordedRequest]:
    return [r for r in fake.requests if r.path.startswith("/cdn/")]


def leftovers(folder: str) -> List[str]:
    return sorted(os.listdir(folder))


def test_downloads_an_image_without_the_key(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = image_url(client)
    path = os.path.join(str(tmp_path), "fox.png")

    assert client.download_image(url, path) == path

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    [download] = cdn_requests(fake)
    assert "Authorization" not in download.headers
    assert fake.api_key not in str(download.headers)
    assert download.headers["User-Agent"].startswith("leonardo-client/")
    api_calls = [r for r in fake.requests if not r.path.startswith("/cdn/")]
    assert all(r.headers["Authorization"] == f"Bearer {fake.api_key}" for r in api_calls)
    assert leftovers(str(tmp_path)) == ["fox.png"]


def test_accepts_a_pathlike_and_replaces_an_existing_file(client: Client, tmp_path: "os.PathLike[str]") -> None:
    target = os.path.join(os.fspath(tmp_path), "fox.png")
    with open(target, "wb") as f:
        f.write(b"old")
    import pathlib

    assert client.download_image(image_url(client), pathlib.Path(target)) == target
    with open(target, "rb") as f:
        assert f.read(8) == PNG_MAGIC


def test_large_download_streams_with_flat_memory(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    size = 64 * 1024 * 1024
    path = os.path.join(str(tmp_path), "big.bin")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        client.download_image(fake.blob_url(size), path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    growth = peak - before
    assert growth < 16 * 1024 * 1024, f"peak grew by {growth} bytes"
    assert os.path.getsize(path) == size
    with open(path, "rb") as f:  # byte i of a blob is i % 251
        f.seek(size - 3)
        assert list(f.read()) == [(size - 3 + k) % 251 for k in range(3)]


def test_truncated_body_leaves_no_file(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = image_url(client)
    path = os.path.join(str(tmp_path), "fox.png")
    fake.inject(status=200, body=b"\x89PNG" + b"x" * 5000, truncate=True, path="/cdn/*")

    with pytest.raises(LeonardoError, match="truncated"):
        client.download_image(url, path)
    assert leftovers(str(tmp_path)) == []


def test_failed_download_keeps_the_old_file(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = image_url(client)
    path = os.path.join(str(tmp_path), "fox.png")
    with open(path, "wb") as f:
        f.write(b"previous")
    fake.inject(status=200, body=b"y" * 5000, truncate=True, path="/cdn/*")

    with pytest.raises(LeonardoError):
        client.download_image(url, path)
    with open(path, "rb") as f:
        assert f.read() == b"previous"
    assert leftovers(str(tmp_path)) == ["fox.png"]


def test_dropped_connections_are_retried_then_fail(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = image_url(client)
    path = os.path.join(str(tmp_path), "fox.png")
    fake.inject(drop=True, path="/cdn/*", times=None)

    with pytest.raises(LeonardoError) as info:
        client.download_image(url, path)
    assert info.value.status_code is None
    assert str(info.value).startswith("download failed")
    assert len(cdn_requests(fake)) == 4  # the first try and 3 retries
    assert leftovers(str(tmp_path)) == []


def test_a_503_is_retried(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    url = image_url(client)
    fake.inject(status=503, path="/cdn/*", times=1)
    path = client.download_image(url, os.path.join(str(tmp_path), "fox.png"))
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


def test_missing_file_is_a_404(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    with pytest.raises(LeonardoError) as info:
        client.download_image(fake.root_url + "/cdn/nothing-here.png", os.path.join(str(tmp_path), "x.png"))
    assert info.value.status_code == 404


def test_connection_refused(client: Client, tmp_path: object) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LeonardoError, match="download failed: connection failed") as info:
        client.download_image(f"http://127.0.0.1:{port}/x.png", os.path.join(str(tmp_path), "x.png"))
    assert info.value.status_code is None
    assert leftovers(str(tmp_path)) == []


def test_slow_image_host_times_out(fake: FakeLeonardo, tmp_path: object) -> None:
    with Client(api_key=fake.api_key, base_url=fake.base_url, timeout=(1, 0.2), max_retries=0) as client:
        fake.inject(delay=2, path="/cdn/*")
        with pytest.raises(LeonardoError, match="timed out"):
            client.download_image(fake.root_url + "/cdn/x.png", os.path.join(str(tmp_path), "x.png"))


def test_unwritable_target_is_a_leonardo_error(client: Client, tmp_path: object) -> None:
    url = image_url(client)
    with pytest.raises(LeonardoError, match="could not write"):
        client.download_image(url, os.path.join(str(tmp_path), "no-such-folder", "x.png"))


@pytest.mark.parametrize(
    "url", ["ftp://example.invalid/x.png", "data:image/png;base64,AAAA", "file:///etc/passwd", "http:///x", "x.png"]
)
def test_non_http_urls_are_refused_before_sending(fake: FakeLeonardo, client: Client, tmp_path: object, url: str) -> None:
    with pytest.raises(ValueError):
        client.download_image(url, os.path.join(str(tmp_path), "x.png"))
    assert fake.requests == []


def test_bad_arguments(fake: FakeLeonardo, client: Client, tmp_path: object) -> None:
    with pytest.raises(TypeError):
        client.download_image(None, os.path.join(str(tmp_path), "x.png"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="folder"):
        client.download_image(fake.root_url + "/cdn/x.png", str(tmp_path))
    assert fake.requests == []
