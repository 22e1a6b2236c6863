"""Security: where the key goes (and never goes), transport rules, ids that cannot escape their path."""

from __future__ import annotations

import logging
import re
import socket
import threading
from typing import Any, List, Optional

import pytest
import requests
from responses import matchers

from leonardo_client import Client, CreateGenerationRequest, LeonardoError

API_KEY = "fake-secret-key-0000-not-real"
BASE = "https://leonardo.example.test/api/rest/v1"


@pytest.fixture
def client():
    with Client(api_key=API_KEY, base_url=BASE, max_retries=0) as c:
        yield c


# --- where the key goes -----------------------------------------------------------------------


def test_key_is_sent_in_the_authorization_header_of_api_calls_only(mocked):
    session = requests.Session()
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    assert "Authorization" not in session.headers
    assert all(API_KEY not in str(value) for value in session.headers.values())

    mocked.add(
        "GET",
        BASE + "/generations/g",
        json={"generations_by_pk": {"generated_images": [{"url": "https://cdn.example.test/i.png"}]}},
        match=[matchers.header_matcher({"Authorization": f"Bearer {API_KEY}"})],
    )
    mocked.add("GET", "https://cdn.example.test/i.png", body=b"\x89PNG")
    url = client.get_generation_by_id("g")["generations_by_pk"]["generated_images"][0]["url"]
    session.get(url, timeout=5)  # another host, through the very same session

    api_call, cdn_call = mocked.calls
    assert api_call.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Authorization" not in cdn_call.request.headers
    assert all(API_KEY not in str(value) for value in cdn_call.request.headers.values())
    assert "Authorization" not in session.headers


def test_key_is_not_in_repr_or_str_of_the_client():
    client = Client(api_key=API_KEY, base_url=BASE)
    assert API_KEY not in repr(client)
    assert API_KEY not in str(client)
    assert API_KEY not in repr(client.retry)


@pytest.mark.parametrize(
    "status, kwargs",
    [
        (401, {"json": {"error": "Authentication hook unauthorized this request", "path": "$", "code": "access-denied"}}),
        (500, {"body": "<html>oops</html>", "content_type": "text/html"}),
        (400, {"body": "plain text"}),
        (429, {"json": {"error": "slow"}, "headers": {"Retry-After": "9999"}}),
        (200, {"body": "{truncated"}),
        (200, {"json": [1, 2]}),
        (None, {"body": requests.ConnectionError("refused")}),
        (None, {"body": requests.exceptions.ReadTimeout("slow")}),
    ],
)
def test_key_is_never_in_an_error(mocked, client, status, kwargs):
    if status is not None:
        kwargs = dict(kwargs, status=status)
    mocked.add("GET", BASE + "/generations/g", **kwargs)
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    err = info.value
    for text in (str(err), repr(err), str(err.args), str(err.body), str(err.url), str(err.__cause__)):
        assert API_KEY not in text


def test_missing_key_error_does_not_leak_anything():
    with pytest.raises(LeonardoError) as info:
        Client(base_url=BASE)
    assert "LEONARDO_API_KEY" in str(info.value)


@pytest.mark.parametrize(
    "bad_key",
    [
        "fake-key\n",
        "fake-key\r\nX-Injected: 1",
        "fake\x00key",
        "fake\tkey",
        "fake\x1bkey",
        "fake\x7fkey",
        "fake-\u043a\u043b\u044e\u0447",  # non-ASCII: header values are latin-1, it would fail on every call
        "fake\u2028key",
    ],
)
def test_key_with_control_or_non_ascii_characters_is_refused_without_echo(bad_key):
    with pytest.raises(ValueError) as info:
        Client(api_key=bad_key, base_url=BASE)
    assert bad_key not in str(info.value)
    assert bad_key.strip() not in str(info.value)
    assert "fake" not in str(info.value)


def test_key_with_control_characters_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LEONARDO_API_KEY", "fake-env-key\r\n")
    with pytest.raises(ValueError) as info:
        Client(base_url=BASE)
    assert "fake-env-key" not in str(info.value)


@pytest.mark.parametrize("agent", ["my-app/1.0\r\nX-Injected: 1", "my-app\x00", "my-app/\u00e9"])
def test_user_agent_with_control_or_non_ascii_characters_is_refused(agent):
    with pytest.raises(ValueError, match="user_agent"):
        Client(api_key="fake-key", base_url=BASE, user_agent=agent)


# --- logs ------------------------------------------------------------------------------------


class LoopbackJSONServer:
    """An HTTP server on 127.0.0.1 answering 200 {"ok": true} to /ok paths and 500 otherwise.

    So that urllib3 really connects and logs; bounded: closed and joined on exit.
    """

    def __init__(self) -> None:
        self.headers_seen: List[str] = []
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.base_url = "http://127.0.0.1:%d/api" % self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "LoopbackJSONServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(1.0)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    continue
                head = data.decode("latin-1")
                self.headers_seen.append(head)
                ok = head.split(" ", 2)[1].endswith("/ok") if " " in head else False
                body = b'{"ok": true}' if ok else b'{"error": "internal error", "path": "$", "code": "unexpected"}'
                status = b"200 OK" if ok else b"500 Internal Server Error"
                try:
                    conn.sendall(
                        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
                    )
                except OSError:
                    pass


def test_key_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    with LoopbackJSONServer() as server:
        client = Client(api_key=API_KEY, base_url=server.base_url, backoff_factor=0, max_retries=1)
        assert client.get_generation_by_id("ok") == {"ok": True}
        with pytest.raises(LeonardoError):
            client.get_generation_by_id("broken")  # 500, retried once: urllib3 logs the retry
        with pytest.raises(LeonardoError):
            client.create_generation(CreateGenerationRequest("p"))
        client.close()
    # The server did receive the key: the logs below saw real traffic.
    assert f"Authorization: Bearer {API_KEY}" in server.headers_seen[0]
    assert len(server.headers_seen) == 4
    names = {record.name for record in caplog.records}
    assert "leonardo_client" in names and any(name.startswith("urllib3") for name in names)
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert "Bearer" not in record.getMessage()
    assert API_KEY not in caplog.text


def test_key_is_never_logged_on_transport_failures(caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = Client(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", backoff_factor=0, max_retries=1)
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    assert info.value.status_code is None
    assert caplog.records
    assert API_KEY not in caplog.text
    assert API_KEY not in str(info.value) and API_KEY not in str(info.value.__cause__)


def test_debug_log_line_has_method_path_status_and_elapsed_but_no_headers(mocked, client, caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    mocked.add("GET", BASE + "/generations/g-1", json={"ok": True}, headers={"x-request-id": "req-1"})
    mocked.add("POST", BASE + "/generations", status=403, json={"error": "moderated"})
    client.get_generation_by_id("g-1")
    with pytest.raises(LeonardoError):
        client.create_generation(CreateGenerationRequest("p"))
    lines = [r.getMessage() for r in caplog.records if r.name == "leonardo_client"]
    assert len(lines) == 2
    assert re.fullmatch(r"GET /generations/g-1 -> 200 in \d+\.\d{3}s", lines[0]), lines[0]
    assert re.fullmatch(r"POST /generations -> 403 in \d+\.\d{3}s", lines[1]), lines[1]
    for line in lines:
        for leak in ("Authorization", "Bearer", "User-Agent", "req-1", "application/json", API_KEY):
            assert leak not in line
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "leonardo_client")


# --- transport: https, or plain http to loopback only -------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.5.5.5",
        "http://[::1]:9000/api",
        "http://localhost:1234",
        "http://LOCALHOST/api",
        "https://cloud.leonardo.ai/api/rest/v1",
        "https://10.1.2.3/api",
        "https://proxy.example.test:8443",
    ],
)
def test_allowed_base_urls(base_url):
    assert Client(api_key=API_KEY, base_url=base_url).base_url == base_url.rstrip("/")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://cloud.leonardo.ai/api/rest/v1",
        "http://10.0.0.1",
        "http://0.0.0.0:8080",
        "http://[::2]",
        "http://127.0.0.1.example.test",
        "http://localhost.example.test",
        "http://example.test@127.0.0.1.example.test",
    ],
)
def test_plain_http_to_other_hosts_is_refused(base_url):
    with pytest.raises(ValueError, match="http"):
        Client(api_key=API_KEY, base_url=base_url)


def test_plain_http_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LEONARDO_BASE_URL", "http://api.example.test")
    with pytest.raises(ValueError):
        Client(api_key=API_KEY)


@pytest.mark.parametrize("base_url", ["ftp://example.test", "cloud.leonardo.ai/api", "https://", "file:///etc/hosts"])
def test_malformed_base_urls_are_refused(base_url):
    with pytest.raises(ValueError):
        Client(api_key=API_KEY, base_url=base_url)


def test_retry_adapter_is_mounted_for_the_base_url_only():
    session = requests.Session()
    client = Client(api_key=API_KEY, base_url=BASE, session=session)
    api = session.get_adapter(BASE + "/generations/g")
    assert api.max_retries is client.retry
    for other in (
        "https://cdn.example.test/image.png",
        "https://leonardo.example.test/other/path",
        "https://leonardo.example.test/api/rest/v1.evil/x",
        "https://leonardo.example.test.evil/api/rest/v1/generations",
    ):
        adapter = session.get_adapter(other)
        assert adapter is not api
        assert adapter.max_retries is not client.retry


def test_own_session_uses_a_separate_adapter_for_other_hosts():
    client = Client(api_key=API_KEY, base_url=BASE)
    api = client._session.get_adapter(BASE + "/generations/g")
    assert api.max_retries is client.retry
    assert client._session.get_adapter("https://cdn.example.test/image.png") is not api


@pytest.mark.parametrize(
    "location",
    [
        "https://other.example.test/elsewhere",  # another host
        "http://leonardo.example.test/api/rest/v1/generations/moved",  # downgrade to http
        "https://leonardo.example.test:8443/api/rest/v1/generations/moved",  # another port
    ],
)
def test_redirect_elsewhere_drops_the_authorization_header(mocked, client, location):
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": location})
    mocked.add("GET", location, json={"moved": True})
    assert client.get_generation_by_id("g") == {"moved": True}
    first, second = mocked.calls
    assert first.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Authorization" not in second.request.headers


def test_redirect_on_the_same_host_keeps_the_header(mocked, client):
    # The counterpart of the test above: shows the header really is what is being checked.
    target = BASE + "/generations/moved"
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": target})
    mocked.add("GET", target, json={"moved": True})
    client.get_generation_by_id("g")
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {API_KEY}"


# --- ids ---------------------------------------------------------------------------------------

ID_METHODS = [
    "get_generation_by_id",
    "delete_generation_by_id",
    "get_generations_by_user_id",
    "get_texture_generation_by_id",
    "delete_texture_generation_by_id",
    "get_texture_generations_by_model_id",
]


@pytest.mark.parametrize("name", ID_METHODS)
@pytest.mark.parametrize(
    "bad, error",
    [("", ValueError), ("   ", ValueError), (".", ValueError), ("..", ValueError), (" .. ", ValueError),
     (123, TypeError), (None, TypeError), (b"gen-1", TypeError), (["gen-1"], TypeError)],
)
def test_bad_ids_are_refused_before_any_request(mocked, client, name, bad, error):
    with pytest.raises(error):
        getattr(client, name)(bad)
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "name, method, prefix",
    [
        ("get_generation_by_id", "GET", "/generations/"),
        ("delete_generation_by_id", "DELETE", "/generations/"),
        ("get_generations_by_user_id", "GET", "/generations/user/"),
        ("get_texture_generation_by_id", "GET", "/generations-texture/"),
        ("delete_texture_generation_by_id", "DELETE", "/generations-texture/"),
        ("get_texture_generations_by_model_id", "GET", "/generations-texture/model/"),
    ],
)
@pytest.mark.parametrize("ident, segment", [("a/b", "a%2Fb"), ("../x", "..%2Fx"), ("../../me", "..%2F..%2Fme")])
def test_ids_with_slashes_stay_one_segment(mocked, client, name, method, prefix, ident, segment):
    url = BASE + prefix + segment
    mocked.add(method, url, json={"ok": True})
    assert getattr(client, name)(ident) == {"ok": True}
    assert mocked.calls[0].request.url == url
    assert mocked.calls[0].request.path_url.startswith("/api/rest/v1" + prefix)
