"""Security: where the key goes (and never goes), transport rules, ids that cannot escape their path.

Mocked with ``responses``; the logs and a wrong key are also checked against FakeLeonardo, so
that urllib3 really connects, retries and logs.
"""

from __future__ import annotations

import logging
import re
import socket
from typing import Any, Callable, Dict, List

import pytest
import requests
from responses import matchers

from conftest import API_KEY, BASE
from leonardo_client import Client, CreateGenerationRequest, LeonardoError
from leonardo_client.testing import FakeLeonardo


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
def test_key_is_never_in_an_error(mocked, mock_client, status, kwargs):
    if status is not None:
        kwargs = dict(kwargs, status=status)
    mocked.add("GET", BASE + "/generations/g", **kwargs)
    with pytest.raises(LeonardoError) as info:
        mock_client.get_generation_by_id("g")
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


def test_key_is_never_logged(fake: FakeLeonardo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    fake.inject(status=500, path="/generations/broken", times=None)
    fake.inject(status=500, path="/generations", method="POST")
    with Client(api_key=fake.api_key, base_url=fake.base_url, backoff_factor=0, max_retries=1) as client:
        assert client.get_generation_by_id("ok") == {"generations_by_pk": None}
        with pytest.raises(LeonardoError):
            client.get_generation_by_id("broken")  # 500, retried once: urllib3 logs the retry
        with pytest.raises(LeonardoError):
            client.create_generation(CreateGenerationRequest("p"))
    # The server did receive the key: the logs below saw real traffic.
    assert fake.requests[0].headers["Authorization"] == f"Bearer {fake.api_key}"
    assert len(fake.requests) == 4
    names = {record.name for record in caplog.records}
    assert "leonardo_client" in names and any(name.startswith("urllib3") for name in names)
    for record in caplog.records:
        assert fake.api_key not in record.getMessage()
        assert "Bearer" not in record.getMessage()
    assert fake.api_key not in caplog.text


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


def test_debug_log_line_has_method_path_status_and_elapsed_but_no_headers(mocked, mock_client, caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    mocked.add("GET", BASE + "/generations/g-1", json={"ok": True}, headers={"x-request-id": "req-1"})
    mocked.add("POST", BASE + "/generations", status=403, json={"error": "moderated"})
    mock_client.get_generation_by_id("g-1")
    with pytest.raises(LeonardoError):
        mock_client.create_generation(CreateGenerationRequest("p"))
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


def test_own_session_uses_a_separate_adapter_for_other_hosts(monkeypatch):
    built: List[requests.Session] = []  # the session the client builds for itself
    real_init = requests.Session.__init__

    def recording_init(session: requests.Session) -> None:
        real_init(session)
        built.append(session)

    monkeypatch.setattr(requests.Session, "__init__", recording_init)
    client = Client(api_key=API_KEY, base_url=BASE)
    (session,) = built
    api = session.get_adapter(BASE + "/generations/g")
    assert api.max_retries is client.retry
    assert session.get_adapter("https://cdn.example.test/image.png") is not api


@pytest.mark.parametrize(
    "location",
    [
        "https://other.example.test/elsewhere",  # another host
        "http://leonardo.example.test/api/rest/v1/generations/moved",  # downgrade to http
        "https://leonardo.example.test:8443/api/rest/v1/generations/moved",  # another port
    ],
)
def test_redirect_elsewhere_drops_the_authorization_header(mocked, mock_client, location):
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": location})
    mocked.add("GET", location, json={"moved": True})
    assert mock_client.get_generation_by_id("g") == {"moved": True}
    first, second = mocked.calls
    assert first.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Authorization" not in second.request.headers


def test_redirect_on_the_same_host_keeps_the_header(mocked, mock_client):
    # The counterpart of the test above: shows the header really is what is being checked.
    target = BASE + "/generations/moved"
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": target})
    mocked.add("GET", target, json={"moved": True})
    mock_client.get_generation_by_id("g")
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
def test_bad_ids_are_refused_before_any_request(mocked, mock_client, name, bad, error):
    with pytest.raises(error):
        getattr(mock_client, name)(bad)
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
@pytest.mark.parametrize(
    "ident, segment",
    [
        ("a/b", "a%2Fb"),
        ("../x", "..%2Fx"),
        ("../../me", "..%2F..%2Fme"),
        ("x?y=1", "x%3Fy%3D1"),
        ("#frag", "%23frag"),
        ("id with space", "id%20with%20space"),
    ],
)
def test_odd_ids_stay_one_segment(mocked, mock_client, name, method, prefix, ident, segment):
    url = BASE + prefix + segment
    mocked.add(method, url, json={"ok": True})
    assert getattr(mock_client, name)(ident) == {"ok": True}
    assert mocked.calls[0].request.url == url
    assert mocked.calls[0].request.path_url.startswith("/api/rest/v1" + prefix)


# --- a wrong key, end to end ------------------------------------------------------------------------


def test_wrong_key_is_a_401_leonardo_error_that_shows_no_key(fake: FakeLeonardo) -> None:
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
