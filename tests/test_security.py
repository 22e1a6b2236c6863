"""Security: where the key goes (and never goes), transport rules, ids that cannot escape their path.

Mocked with ``responses``; the logs and a wrong key are also checked against FakeLeonardo, so
that urllib3 really connects, retries and logs.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import subprocess
import sys
import traceback
from typing import Any, Callable, Dict, List, Tuple

import pytest
import requests

from conftest import (
    API_KEY, BASE, TIMEOUT, api_matchers, download_matchers, endpoint_doc, endpoint_methods, raw_server, refused_url,
)
import leonardo_client.__main__ as cli
from leonardo_client import DEFAULT_TIMEOUT, Client, CreateGenerationRequest, LeonardoError
from leonardo_client.errors import KEY_REFUSED, _KeyRedactingFilter
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
        match=api_matchers(timeout=DEFAULT_TIMEOUT),
    )
    mocked.add("GET", "https://cdn.example.test/i.png", body=b"\x89PNG", match=download_matchers(agent=None, timeout=5))
    url = client.get_generation_by_id("g")["generations_by_pk"]["generated_images"][0]["url"]
    session.get(url, timeout=5)  # another host, through the very same session

    api_call, cdn_call = mocked.calls
    assert api_call.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Authorization" not in cdn_call.request.headers
    assert all(API_KEY not in str(value) for value in cdn_call.request.headers.values())
    assert "Authorization" not in session.headers


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
    mocked.add("GET", BASE + "/generations/g", match=api_matchers(), **kwargs)
    with pytest.raises(LeonardoError) as info:
        mock_client.get_generation_by_id("g")
    err = info.value
    for text in (str(err), repr(err), str(err.args), str(err.body), str(err.url), str(err.__cause__)):
        assert API_KEY not in text


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
    with pytest.raises(ValueError, match="^LEONARDO_API_KEY contains") as info:  # where to look, not "api_key"
        Client(base_url=BASE)
    assert "fake-env-key" not in str(info.value)


@pytest.mark.parametrize("given, from_env, said", [
    ("Bearer " + API_KEY, False, "^api_key starts with 'Bearer ': give the key alone"),
    ("bearer  " + API_KEY + " ", True, "^LEONARDO_API_KEY starts with 'Bearer ': give the key alone"),
    (API_KEY[:8] + " " + API_KEY[8:], False, "^api_key holds a space"),
])
def test_a_key_with_a_space_inside_is_refused_without_echo(monkeypatch, given, from_env, said):
    # It was sent as "Bearer Bearer <key>": Leonardo answers a malformed key with a 500 (API_FACTS 1.2), retried.
    monkeypatch.setenv("LEONARDO_API_KEY", given)
    with pytest.raises(ValueError, match=said) as info:
        Client(api_key=None if from_env else given, base_url=BASE)
    assert API_KEY[:8] not in str(info.value) and API_KEY[8:] not in str(info.value)


@pytest.mark.parametrize("base_url", [BASE + "/" + API_KEY, BASE.replace("/api/", f"/{API_KEY}/api/")])
def test_a_key_pasted_into_the_base_url_is_redacted_from_the_repr(base_url):
    # Errors and logs redacted it; the repr (what pytest, a debugger or logging's %r show) had it in clear.
    client = Client(api_key=API_KEY, base_url=base_url)
    assert repr(client) == f"Client(base_url={base_url.replace(API_KEY, '[redacted]')!r})"


def test_a_key_pasted_into_the_base_url_is_redacted_from_the_v2_calls_refusal(mocked):
    # Not ending in /v1, it has no v2 root: each v2 call's ValueError quoted base_url whole (the CLI printed it, a
    # batch journaled it and put it in its gallery).
    client = Client(api_key=API_KEY, base_url=BASE + "/" + API_KEY)
    for call in (client.get_models_v2, lambda: client.create_generation_v2({"model": "m", "parameters": {}})):
        with pytest.raises(ValueError, match=r"^base_url '\S+/v1/\[redacted\]' does not end in /v1") as info:
            call()
        assert API_KEY not in str(info.value)


@pytest.mark.parametrize("agent", ["my-app/1.0\r\nX-Injected: 1", "my-app\x00", "my-app/\u00e9"])
def test_user_agent_with_control_or_non_ascii_characters_is_refused(agent):
    with pytest.raises(ValueError, match="user_agent"):
        Client(api_key="fake-key", base_url=BASE, user_agent=agent)


# --- a server that echoes the key -------------------------------------------------------------

ECHOES = [
    (401, {"json": {"error": f"Invalid token {API_KEY}"}}),
    (401, {"json": {"errors": [{"message": f"bad {API_KEY}", "extensions": {"token": API_KEY, API_KEY: [API_KEY]}}]}}),
    (403, {"body": f"Forbidden: Bearer {API_KEY}", "content_type": "text/plain"}),
    (500, {"body": f"<html><body>token={API_KEY}</body></html>", "content_type": "text/html"}),
    (502, {"body": f"<Error><Code>Denied</Code><Message>{API_KEY}</Message></Error>", "content_type": "application/xml"}),
    (400, {"json": {"error": "nope"}, "headers": {"x-request-id": f"req-{API_KEY}"}}),
    (200, {"body": "x" * 190 + API_KEY + " (not JSON)"}),  # the key across the 200-character snippet's end
    (200, {"json": [API_KEY]}),
    # Escaped, as JSON may write any character: redacting the raw text missed it, and parsing spelled it out.
    (401, {"body": '{"error": "Invalid token %s"}' % "".join("\\u%04x" % ord(c) for c in API_KEY),
           "content_type": "application/json"}),
    # UTF-16 and UTF-32, which json.loads reads as they are (with a BOM or without): the key's bytes are not in them.
    (401, {"body": json.dumps({"error": f"Invalid token {API_KEY}"}).encode("utf-16"), "content_type": "application/json"}),
    (200, {"body": json.dumps([API_KEY]).encode("utf-32-le"), "content_type": "application/json"}),
    (403, {"body": f"Forbidden: Bearer {API_KEY}".encode("utf-16"), "content_type": "text/plain"}),  # not JSON
    (403, {"body": f"Forbidden: Bearer {API_KEY}".encode("utf-32-be"), "content_type": "text/plain"}),
]


@pytest.mark.parametrize("status, kwargs", ECHOES)
def test_a_key_the_server_echoes_is_redacted_from_the_error(mocked, mock_client, caplog, status, kwargs):
    caplog.set_level(logging.DEBUG)
    mocked.add("GET", BASE + "/generations/g", status=status, match=api_matchers(), **kwargs)
    with pytest.raises(LeonardoError) as info:
        mock_client.get_generation_by_id("g")
    err = info.value
    shown = (str(err), repr(err), err.message, str(err.args), repr(err.body), str(err.request_id), caplog.text)
    for text in shown:
        assert API_KEY not in text and API_KEY[:20] not in text
    assert "[redacted]" in (repr(err.body) + str(err.request_id)).replace("\\x00", "")  # UTF-16 text: NULs between


UUID_KEY = "7d1e9b40-3c5a-4f21-8e6b-a9c0d2f4e815"


@pytest.mark.parametrize("key, echoed", [(UUID_KEY.upper(), UUID_KEY), (UUID_KEY, UUID_KEY.upper())])
def test_a_key_echoed_in_another_case_is_redacted(mocked, key, echoed):
    # A UUID is one in either case (is_uuid), and Hasura writes it lower-cased: matched as given, it was shown.
    said = {"error": f"api key {echoed} not found"}
    mocked.add("GET", BASE + "/me", json=said, status=401, match=api_matchers(key=key, timeout=DEFAULT_TIMEOUT))
    with pytest.raises(LeonardoError) as info, Client(api_key=key, base_url=BASE, max_retries=0) as client:
        client.get_user_info()
    assert info.value.message == "api key [redacted] not found" and info.value.body == {"error": info.value.message}


def test_a_key_lower_cased_in_a_decode_error_is_not_in_its_traceback():
    # urllib3's DecodeError quotes the Content-Encoding lower-cased: a key given in upper case was in the chained cause.
    key = UUID_KEY.upper()
    with raw_server(f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, {key}\r\nContent-Length: 2\r\n\r\nno".encode()) as url:
        with pytest.raises(LeonardoError, match="could not decode the response") as info:
            Client(api_key=key, base_url=url, max_retries=0).get_user_info()
    printed = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    assert UUID_KEY not in printed and key not in printed


def test_a_key_echoed_in_a_successful_answer_is_redacted_before_it_reaches_an_error(mocked, mock_client):
    kept = {"seed": 7, "guidance_scale": 7.5, "public": False, "motionMP4URL": None}  # the rest kept as parsed
    failed = {"id": "g", "status": "FAILED", "note": f"key {API_KEY}", API_KEY: API_KEY, **kept}
    mocked.add("GET", BASE + "/generations/g", json={"generations_by_pk": failed}, match=api_matchers())
    with pytest.raises(LeonardoError, match="FAILED") as info:
        mock_client.wait_for_generation("g")
    assert API_KEY not in repr(info.value.body)
    redacted = {"id": "g", "status": "FAILED", "note": "key [redacted]", "[redacted]": "[redacted]"}
    assert info.value.body == {**redacted, **kept}


def test_a_key_escaped_in_a_successful_answer_is_redacted(mocked, mock_client):
    escaped = API_KEY.replace("-", "\\u002d").replace("a", "\\u0061")
    assert escaped != API_KEY
    mocked.add("GET", BASE + "/generations/g", body='{"generations_by_pk": {"id": "%s/\\/"}}' % escaped, match=api_matchers())
    assert mock_client.get_generation_by_id("g") == {"generations_by_pk": {"id": "[redacted]//"}}


def test_a_key_with_a_slash_escaped_in_an_answer_is_redacted(mocked):
    # JSON may write "/" as "\/": only \u escapes are looked for in keys without one (the others spell control
    # characters, or quotes and backslashes a key of that kind has not).
    key = "sk/live/0123456789"
    body = '{"generations_by_pk": {"note": "%s \\"x\\""}}' % key.replace("/", "\\/")
    mocked.add("GET", BASE + "/generations/g", body=body, match=api_matchers(key=key, timeout=DEFAULT_TIMEOUT))
    with Client(api_key=key, base_url=BASE) as client:
        assert client.get_generation_by_id("g") == {"generations_by_pk": {"note": '[redacted] "x"'}}


def test_a_key_too_short_to_be_real_does_not_mangle_answers(mocked):
    # Keys are redacted process-wide: a test's key "pk" must not rewrite "generations_by_pk".
    mocked.add("GET", BASE + "/generations/g", json={"generations_by_pk": None}, match=api_matchers(key="pk", timeout=DEFAULT_TIMEOUT))
    with Client(api_key="pk", base_url=BASE) as client:
        assert client.get_generation_by_id("g") == {"generations_by_pk": None}
    mocked.add("GET", BASE + "/generations/h", json={"error": "no generations_by_pk"}, status=404,
               match=api_matchers(key="pk", timeout=DEFAULT_TIMEOUT))
    with pytest.raises(LeonardoError) as info, Client(api_key="pk", base_url=BASE, max_retries=0) as client:
        client.get_generation_by_id("h")
    assert info.value.message == "no generations_by_pk"


# --- logs ------------------------------------------------------------------------------------


def test_key_is_never_logged(fake: FakeLeonardo, caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
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
        client.get_generation_by_id(fake.api_key)  # pasted where the id goes: the client's own line showed it
        with pytest.raises(LeonardoError):
            client.download_image(f"{fake.root_url}/cdn/{fake.api_key}.png", str(tmp_path / "x.png"))
    # The server did receive the key: the logs below saw real traffic.
    assert fake.requests[0].headers["Authorization"] == f"Bearer {fake.api_key}"
    assert len(fake.requests) == 6
    names = {record.name for record in caplog.records}
    assert "leonardo_client" in names and any(name.startswith("urllib3") for name in names)
    for record in caplog.records:
        assert fake.api_key not in record.getMessage()
        assert "Bearer" not in record.getMessage()
    assert fake.api_key not in caplog.text


def test_a_key_echoed_in_a_malformed_status_line_is_not_logged(caplog):
    # http.client puts the whole status line in BadStatusLine; urllib3 logs it when it retries.
    caplog.set_level(logging.DEBUG)
    with raw_server(*[f"HTTP/1.1 BAD {API_KEY}\r\n\r\n".encode()] * 2) as url:
        client = Client(api_key=API_KEY, base_url=url, backoff_factor=0, max_retries=1)
        with pytest.raises(LeonardoError) as info:
            client.get_generation_by_id("g")
    assert "BadStatusLine" in caplog.text and "[redacted]" in caplog.text  # the retry was logged
    assert API_KEY not in caplog.text
    assert API_KEY not in str(info.value) and API_KEY not in info.value.message


@pytest.mark.parametrize(
    "answer, said",
    [("HTTP/1.1 500 bad key {key}\r\nContent-Length: 0\r\n\r\n",  # in the reason phrase, the body empty
      "HTTP 500: bad key [redacted] (no error message in the empty response body)"),
     ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{key}\r\n",  # as a chunk size, while the body is read
      "HTTP 200: connection broke while reading the response (truncated body)")],
    ids=["reason phrase", "chunk size"],
)
def test_a_key_echoed_around_the_body_is_in_no_message_or_traceback(answer, said):
    with raw_server(answer.format(key=API_KEY).encode()) as url:
        client = Client(api_key=API_KEY, base_url=url, max_retries=0)
        with pytest.raises(LeonardoError) as info:
            client.delete_generation_by_id("g")  # a DELETE: not sent again after a broken body
    printed = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    assert API_KEY not in printed and API_KEY not in info.value.message
    # Each says what came (the reason phrase, its key [redacted]); requests' error on the chunk size quotes the key:
    # not chained.
    assert str(info.value) == f"{said} (DELETE {url}/generations/g)" and info.value.__cause__ is None


def _chain(exc: BaseException) -> List[BaseException]:
    """``exc`` and every exception under it, by __cause__ and __context__ (each once)."""
    found = [exc]
    for each in found:
        found += [e for e in (each.__cause__, each.__context__) if e is not None and e not in found]
    return found


@pytest.mark.parametrize("answer", ["HTTP/1.1 5x0 {key}\r\n\r\n",  # in a malformed status line: no answer
                                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{key}\r\n"],  # a chunk size
                         ids=["status line", "chunk size"])
@pytest.mark.parametrize("call", ["get_generation_by_id", "delete_generation_by_id"])  # a GET's broken body: again
def test_a_key_echoed_on_the_wire_is_in_no_exception_the_error_holds(answer, call):
    # `raise ... from None` in the except block hid requests' error from tracebacks, but __context__ still held it.
    with raw_server(answer.format(key=API_KEY).encode()) as url:
        with pytest.raises(LeonardoError) as info, Client(api_key=API_KEY, base_url=url, max_retries=0) as client:
            getattr(client, call)("g")
    for exc in _chain(info.value):
        assert API_KEY not in str(exc) and API_KEY not in repr(exc) and API_KEY not in repr(exc.args)


@pytest.mark.parametrize("key, shown", [("Zq9xW2kP", "[redacted]"), ("Zq9xW2k", "Zq9xW2k")])
def test_a_key_of_eight_characters_is_redacted(mocked, key, shown):
    # Eight: the shortest a key is taken to be real (MIN_SECRET_LENGTH); a shorter one is not hidden (README).
    answer = {"error": f"invalid key {key}"}
    mocked.add("GET", BASE + "/me", json=answer, status=401, match=api_matchers(key=key, timeout=DEFAULT_TIMEOUT))
    with pytest.raises(LeonardoError) as info, Client(api_key=key, base_url=BASE, max_retries=0) as client:
        client.get_user_info()
    assert str(info.value) == f"HTTP 401: invalid key {shown} (GET https://leonardo.example.test/api/rest/v1/me)"
    assert info.value.body == {"error": f"invalid key {shown}"}


def test_a_key_in_the_url_of_a_download_that_failed_is_redacted(fake, fake_client, tmp_path):
    url = f"{refused_url()}/images/{fake.api_key}.png"  # a server that put the key in a result's URL
    with pytest.raises(LeonardoError) as info:
        fake_client.download_image(url, str(tmp_path / "x.png"))
    assert fake.api_key not in str(info.value) and info.value.url.endswith("/images/[redacted].png")


def test_a_key_in_the_url_of_a_download_cut_short_is_redacted(fake, fake_client, tmp_path):
    fake.inject(status=200, body=b"\x89PNG" + b"x" * 5000, truncate=True, path="/cdn/*", times=None)
    with pytest.raises(LeonardoError, match="truncated body") as info:
        fake_client.download_image(f"{fake.root_url}/cdn/{fake.api_key}.png", str(tmp_path / "x.png"))
    assert fake.api_key not in str(info.value) and info.value.url.endswith("/cdn/[redacted].png")


@pytest.mark.parametrize("url", [f"https://{API_KEY}.cdn.example.test/i.png ", f"https://cdn.example.test/{API_KEY}\n"])
def test_a_key_in_a_download_url_refused_before_it_is_sent_is_redacted(mock_client, tmp_path, url):
    # Once requested, err.url redacted it; a URL refused before that was quoted as it came.
    with pytest.raises(ValueError, match=r"^url is not an http\(s\) URL: '\S+\[redacted\]") as info:
        mock_client.download_image(url, str(tmp_path / "x.png"))
    assert API_KEY[:8] not in str(info.value)


@pytest.mark.parametrize("content_type, headers", [
    (f"text/{API_KEY}", {}), ("image/png", {"Content-Encoding": f"br, {API_KEY}"}),
])
def test_a_key_a_download_s_headers_echo_is_redacted_from_its_refusal(mocked, mock_client, tmp_path, content_type, headers):
    # Refused as no file, its message quoted the Content-Type or Content-Encoding as it came.
    url = "https://cdn.example.test/i.png"
    mocked.add("GET", url, body=b"\x89PNG", content_type=content_type, headers=headers, match=download_matchers())
    with pytest.raises(LeonardoError, match="download failed: the server answered .*redacted") as info:
        mock_client.download_image(url, str(tmp_path / "i.png"))
    assert API_KEY[:8] not in str(info.value) + repr(info.value)


@pytest.mark.parametrize("answer, said", [
    ({"json": {"generations_by_pk": None}}, "no generation with id '[redacted]' (the API answered generations_by_pk"),
    ({"json": {}}, "the API answered no generations_by_pk for generation '[redacted]' (keys: none)"),
    ({"json": {"generations_by_pk": {"id": API_KEY, "status": "FAILED"}}}, "generation [redacted] FAILED"),
    ({"json": {"generations_by_pk": {"id": API_KEY, "status": "PENDING"}}}, "generation [redacted] still PENDING"),
    ({"json": {"error": "oops"}, "status": 500}, "generation [redacted] still unknown after"),
])
def test_a_key_pasted_where_an_id_goes_is_redacted_from_the_wait_s_errors(mocked, mock_client, answer, said):
    # Its URL and log line redacted it; the wait's own messages showed it (the answer's id, redacted, was another).
    mocked.add("GET", f"{BASE}/generations/{API_KEY}", match=api_matchers(), **answer)
    with pytest.raises(LeonardoError) as info:
        mock_client.wait_for_generation(API_KEY, timeout=0.001)
    assert str(info.value).startswith(said) and API_KEY not in str(info.value)


@pytest.mark.parametrize("command", ["get", "delete"])
def test_a_key_pasted_where_an_id_goes_is_redacted_from_the_cli_s_error(fake_in_env, capsys, command):
    assert cli.main([command, fake_in_env.api_key]) == 1
    assert capsys.readouterr().err.startswith("leonardo-client: error: no generation with id '[redacted]'")


def test_a_key_from_the_environment_holding_a_byte_not_utf_8_is_still_a_usage_error(monkeypatch, capsys):
    # The CLI redacts its key from every error line: percent-encoding the key's undecoded byte (a surrogate) raised.
    monkeypatch.setenv("LEONARDO_API_KEY", API_KEY + "\udce9")
    assert cli.main(["me"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("leonardo-client: error: LEONARDO_API_KEY contains a control or non-ASCII"), said


def test_a_key_percent_encoded_in_a_url_is_redacted_too(mocked, caplog):
    # A key with quotes pasted in, used where an id goes: the URL holds it encoded, %22<key>%22, and the error,
    # urllib3's line and the client's own showed it so.
    caplog.set_level(logging.DEBUG)
    uuid = "0f3c6a52-8a1e-4b7d-9c2f-5e6d7a8b9c0d"
    key = f'"{uuid}"'
    mocked.add("GET", f"{BASE}/generations/%22{uuid}%22", status=404, json={"error": "not found"},
               match=api_matchers(key=key, timeout=DEFAULT_TIMEOUT))
    with Client(api_key=key, base_url=BASE, max_retries=0) as client, pytest.raises(LeonardoError) as info:
        client.get_generation_by_id(key)
    assert "[redacted]" in str(info.value) and uuid not in str(info.value) and uuid not in caplog.text
    assert info.value.status_code == 404, info.value


def test_a_key_in_a_logged_traceback_is_redacted(caplog):
    # urllib3 logs a header line it cannot parse with exc_info: the key was in the traceback.
    client = Client(api_key=API_KEY, base_url=BASE)  # the key is registered while it lives
    caplog.set_level(logging.WARNING, logger="urllib3")
    try:
        raise ValueError(f"unparsed data: 'X-Debug Bearer {API_KEY}'")
    except ValueError:
        logging.getLogger("urllib3.connectionpool").warning("Failed to parse headers", exc_info=True)
    assert "ValueError: unparsed data: 'X-Debug Bearer [redacted]'" in caplog.text
    assert API_KEY not in caplog.text
    client.close()


def test_a_key_inside_another_is_not_left_half_shown_in_the_logs(caplog):
    short, long = "Zq9xW2kP", "Zq9xW2kP-5f0c-4e2b-9d1a-0123456789ab"  # the shorter key registered first
    clients = [Client(api_key=key, base_url=BASE) for key in (short, long)]
    caplog.set_level(logging.WARNING, logger="urllib3")
    logging.getLogger("urllib3.connectionpool").warning("BadStatusLine(%r)", long)
    assert "BadStatusLine('[redacted]')" in caplog.text and "5f0c" not in caplog.text
    del clients


def test_a_key_is_held_for_the_logs_only_while_a_client_of_it_lives():
    key = "rotated-key-7c1e-4b8a-9f3d"
    first, second = Client(api_key=key, base_url=BASE), Client(api_key=key, base_url=BASE)
    del first
    gc.collect()
    Client(api_key=API_KEY, base_url=BASE).close()  # keys let go are counted when the next client is made
    assert key in _KeyRedactingFilter.keys  # the second one still holds it
    del second
    gc.collect()
    Client(api_key=API_KEY, base_url=BASE).close()
    assert key not in _KeyRedactingFilter.keys  # a service's many keys over weeks are not all kept


def test_a_client_collected_while_another_is_made_does_not_deadlock():
    # The collector runs at whichever allocation crosses its threshold: also inside Client() while it
    # holds the key lock. A finalizer taking that lock then waited for its own thread, for ever. In a
    # process of its own: a deadlock there cannot hang the suite.
    script = """if True:
        import gc
        from leonardo_client import Client, errors

        class Cycle:
            pass

        for allocations in range(1, 8):
            garbage = Cycle()
            garbage.me, garbage.client = garbage, Client(api_key="c" * 36, base_url="http://127.0.0.1:9/v1")
            del garbage  # only the collector frees it
            gc.disable()
            gc.set_threshold(gc.get_count()[0] + allocations)
            gc.enable()
            errors.redact_from_logs("d" * 36, Cycle)  # what Client() calls, the collection falling inside
        print("done")
    """
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "done\n", done.stderr


def test_a_key_in_a_transport_error_is_not_chained(mocked, mock_client):
    # http.client's BadStatusLine holds a status line that echoes the key: an uncaught error, or
    # logger.exception(), would print it from __cause__.
    echoed = requests.ConnectionError(f"BadStatusLine('HTTP/1.1 OOPS {API_KEY}')")
    mocked.add("GET", BASE + "/generations/g", body=echoed, match=api_matchers())
    with pytest.raises(LeonardoError) as info:
        mock_client.get_generation_by_id("g")
    err = info.value
    assert "connection failed: BadStatusLine('HTTP/1.1 OOPS [redacted]')" in err.message
    assert API_KEY not in "".join(traceback.format_exception(type(err), err, err.__traceback__))


def test_key_is_never_logged_on_transport_failures(caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    client = Client(api_key=API_KEY, base_url=refused_url(), backoff_factor=0, max_retries=1)
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    assert info.value.status_code is None
    assert caplog.records
    assert API_KEY not in caplog.text
    assert API_KEY not in str(info.value) and API_KEY not in str(info.value.__cause__)


def test_debug_log_line_has_method_path_status_and_elapsed_but_no_headers(mocked, mock_client, caplog):
    caplog.set_level(logging.DEBUG, logger="leonardo_client")
    mocked.add("GET", BASE + "/generations/g-1", json={"ok": True}, headers={"x-request-id": "req-1"}, match=api_matchers())
    mocked.add("POST", BASE + "/generations", status=403, json={"error": "moderated"}, match=api_matchers({"prompt": "p"}))
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
        "http://[::0:1]:9000",  # ::1 written otherwise: an address by its colon, not a name
        "http://localhost:1234",
        "http://LOCALHOST/api",
        "https://cloud.leonardo.ai/api/rest/v1",
        "https://10.1.2.3/api",
        "https://proxy.example.test:8443",
    ],
)
def test_allowed_base_urls(base_url):
    assert Client(api_key=API_KEY, base_url=base_url).base_url == base_url.rstrip("/")


def plain_http_refused(said: str) -> str:
    """The plain-http refusal of ``said`` (the URL as the error names it), as a whole-message pattern."""
    refused = f"refusing plain-http {said}: the API key would travel unencrypted (loopback hosts only)"
    return "^" + re.escape(refused) + "$"


@pytest.mark.parametrize(
    "base_url",
    [
        "http://cloud.leonardo.ai/api/rest/v1",
        "http://10.0.0.1",
        "http://0.0.0.0:8080",
        "http://[::2]",
        "http://127.0.0.1.example.test",
        "http://localhost.example.test",
    ],
)
def test_plain_http_to_other_hosts_is_refused(base_url):
    with pytest.raises(ValueError, match=plain_http_refused(f"base_url {base_url!r}")):
        Client(api_key=API_KEY, base_url=base_url)


def test_plain_http_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LEONARDO_BASE_URL", "http://api.example.test")
    with pytest.raises(ValueError, match=plain_http_refused("LEONARDO_BASE_URL 'http://api.example.test'")):
        Client(api_key=API_KEY)


def test_userinfo_before_a_host_that_starts_like_loopback_is_refused_as_userinfo():
    # "example.test@" is userinfo (the host is 127.0.0.1.example.test): refused as such, before its scheme is judged.
    refused = ("base_url 'http://127.0.0.1.example.test' must not hold user:password@ "
               "(proxy credentials go in a session's proxies)")
    with pytest.raises(ValueError, match="^" + re.escape(refused) + "$"):
        Client(api_key=API_KEY, base_url="http://example.test@127.0.0.1.example.test")


@pytest.mark.parametrize("base_url, api_key", [
    (API_KEY, "https://cloud.leonardo.ai/api/rest/v1"),  # the two variables swapped
    (API_KEY, API_KEY), ("https://leonardo.example.test/v1?k=" + API_KEY, API_KEY),  # the key pasted in the URL
    (f"https://{API_KEY}@h.example.test/v1", API_KEY),
])
def test_a_base_url_holding_the_key_is_refused_without_showing_any_of_it(monkeypatch, base_url, api_key):
    # The URL's error quoted it, the key with it (or its first 30 characters).
    monkeypatch.setenv("LEONARDO_BASE_URL", base_url)
    monkeypatch.setenv("LEONARDO_API_KEY", api_key)
    with pytest.raises(ValueError, match=r"^LEONARDO_BASE_URL ") as info:
        Client()
    assert API_KEY[:8] not in str(info.value)


def test_a_key_that_is_part_of_a_good_base_url_is_no_reason_to_refuse_it():
    with Client(api_key="leonardo", base_url=None) as client:  # the key check once refused the default URL
        assert client.base_url == "https://cloud.leonardo.ai/api/rest/v1"


# Refused rather than hidden: requests would send user:password as Basic auth, replacing the key's header.
@pytest.mark.parametrize("base_url", ["https://user:s3cret@leonardo.example.test/v1", "http://user:s3cret@127.0.0.1:9/v1",
                                      "https://user:s3cret@leonardo.example.test:abc/v1", "ftp://user:s3cret@host/",
                                      "\u200bhttps://user:s3cret@leonardo.example.test/v1"])  # pasted with a character
def test_base_url_with_user_and_password_is_refused_without_showing_them(monkeypatch, base_url):
    with pytest.raises(ValueError) as info:
        Client(api_key=API_KEY, base_url=base_url)
    assert "s3cret" not in str(info.value) and "user" not in str(info.value).replace("user:password", "")
    monkeypatch.setenv("LEONARDO_BASE_URL", base_url)
    with pytest.raises(ValueError, match="LEONARDO_BASE_URL") as info:
        Client(api_key=API_KEY)
    assert "s3cret" not in str(info.value)


def test_user_and_password_of_a_download_url_are_never_shown(fake, fake_client, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    url = fake.root_url.replace("://", "://user:s3cret@") + "/cdn/no-such-image.png"
    with pytest.raises(LeonardoError) as info:  # 404
        fake_client.download_image(url, str(tmp_path / "x.png"))
    with pytest.raises(ValueError) as refused:
        fake_client.download_image("ftp://user:s3cret@example.test/x.png", str(tmp_path / "x.png"))
    with pytest.raises(ValueError) as pasted:  # the password was shown when the URL did not start at its scheme
        fake_client.download_image(" https://user:s3cret@example.test/x.png", str(tmp_path / "x.png"))
    result = {"id": "g", "status": "COMPLETE", "generated_images": [{"id": "i", "url": "ftp://user:s3cret@h/x.png"}]}
    with pytest.raises(LeonardoError, match="not a file URL: 'ftp://h/x.png'") as in_result:
        fake_client.save_results(result, str(tmp_path))
    redirect = b"HTTP/1.1 302 Found\r\nLocation: ftp://alice:s3cret@127.0.0.1/x\r\nContent-Length: 0\r\n\r\n"
    with raw_server(redirect) as server, pytest.raises(LeonardoError) as redirected:  # requests quoted the URL whole
        fake_client.download_image(server + "/x.png", str(tmp_path / "x.png"))
    err = info.value
    assert err.status_code == 404 and err.url == fake.root_url + "/cdn/no-such-image.png"
    for text in (str(err), repr(err), err.message, str(refused.value), str(pasted.value), str(in_result.value),
                 str(redirected.value), repr(redirected.value), caplog.text):
        assert "s3cret" not in text
    assert "ftp://127.0.0.1/x" in str(redirected.value)


def without_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest's clean_env NO_PROXY taken away: the client's own bypass of proxies for loopback is what is tested."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name)


def test_loopback_is_never_reached_through_a_proxy(fake, fake_client, monkeypatch, tmp_path):
    without_no_proxy(monkeypatch)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://user:pw@127.0.0.1:9")  # nothing listens there: through it, every call fails
    created = fake_client.create_generation({"prompt": "a lighthouse", "num_images": 1})
    assert fake_client.save_results(fake_client.wait_for_generation(created, poll_interval=0.05), str(tmp_path))
    assert {r.kind for r in fake.requests} == {"api", "cdn"}  # the key went to the fake directly, the file too


@pytest.mark.parametrize("scheme", ["http", "all"])
def test_loopback_is_not_reached_through_a_session_proxy_for_its_host(fake, scheme):
    # requests' per-host form outranks the "http" and "all" keys a request's proxies set to None: the key went
    # through the proxy, in plain http.
    with requests.Session() as session:
        session.proxies[f"{scheme}://127.0.0.1"] = "http://127.0.0.1:9"  # nothing listens there: through it, it fails
        with Client(api_key=fake.api_key, base_url=fake.base_url, session=session, max_retries=0) as client:
            assert client.get_user_info()["user_details"]


def test_a_redirect_on_loopback_is_not_sent_through_a_proxy(monkeypatch):
    without_no_proxy(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: through it, the call fails
    # "Connection: close": raw_server closes each connection, and a client reusing it would race the close.
    redirect = b"HTTP/1.1 302 Found\r\nLocation: /api/rest/v1/me-too\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    with raw_server(redirect, answer) as url:
        assert Client(api_key=API_KEY, base_url=url + "/api/rest/v1", max_retries=0).get_user_info() == {}


@pytest.mark.parametrize("scheme, carried", [("https", False), ("http", True)])
def test_proxy_credentials_ride_a_redirect_to_https_in_the_connect_only(mocked, mock_client, monkeypatch, tmp_path,
                                                                         scheme, carried):
    # requests < 2.31 put them on the redirected request itself, which an https tunnel took to the host
    # (CVE-2023-32681); plain http through a proxy needs them there.
    def rebuild_proxies_before_2_31(session, prepared, proxies):
        prepared.headers["Proxy-Authorization"] = "Basic YWxpY2U6czNjcmV0"  # from HTTPS_PROXY=http://alice:s3cret@...
        return proxies

    monkeypatch.setattr(requests.Session, "rebuild_proxies", rebuild_proxies_before_2_31)
    location = f"{scheme}://other.example.test/i.png"
    mocked.add("GET", "https://cdn.example.test/i.png", status=302, headers={"Location": location},
               match=download_matchers())
    mocked.add("GET", location, body=b"\x89PNG", content_type="image/png", match=download_matchers())
    mock_client.download_image("https://cdn.example.test/i.png", str(tmp_path / "i.png"))
    assert ("Proxy-Authorization" in mocked.calls[1].request.headers) is carried


def test_a_proxy_user_name_alone_is_shown_as_it_is(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://e@" + refused_url().split("://")[1])
    with pytest.raises(LeonardoError) as info:
        Client(api_key=API_KEY, base_url=BASE, max_retries=0).get_user_info()
    assert info.value.message == "could not connect through the proxy: Connection refused"  # no "conn[redacted]ct"
    assert info.value.__cause__ is not None


def test_a_proxy_user_with_an_empty_password_is_shown_as_it_is(monkeypatch):
    # http://http:@... has no secret: "http:" and "http://" were hidden in every message (and its cause dropped).
    monkeypatch.setenv("HTTPS_PROXY", "http://http:@127.0.0.1:99999")
    with pytest.raises(LeonardoError) as info:
        Client(api_key=API_KEY, base_url=BASE, max_retries=0).get_user_info()
    assert info.value.message == "request to leonardo.example.test failed: Failed to parse: http://127.0.0.1:99999"
    assert info.value.__cause__ is not None


def test_a_proxy_without_a_user_is_shown_as_it_is(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:99999")  # host:port is no user:password to hide
    with pytest.raises(LeonardoError, match="Failed to parse") as info:
        Client(api_key=API_KEY, base_url=BASE, max_retries=0).get_user_info()
    assert "127.0.0.1:99999" in info.value.message and info.value.__cause__ is not None


@pytest.mark.parametrize(
    "proxy", ["http://alice:Xy7kQ2/9Qz@127.0.0.1:9", "http://alice:Xy7kQ2@127.0.0.1:99999",
              "http://alice:Xy7kQ2/@9Qz@127.0.0.1:9"]  # an @ in the password: the user:password ends at the last
)
@pytest.mark.parametrize("where", ["environment", "session"])
def test_a_proxy_password_is_never_shown(monkeypatch, caplog, proxy, where):
    caplog.set_level(logging.DEBUG)
    session = requests.Session()
    if where == "environment":
        monkeypatch.setenv("HTTPS_PROXY", proxy)
    else:
        session.proxies["https"] = proxy
    client = Client(api_key=API_KEY, base_url=BASE, session=session, max_retries=0)
    with pytest.raises(LeonardoError, match="Failed to parse") as info:  # urllib3 cannot read the proxy URL
        client.get_user_info()
    printed = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    for text in (str(info.value), repr(info.value), printed, caplog.text):
        assert "Xy7kQ2" not in text and "9Qz" not in text  # urllib3 1.26 quotes it whole: redacted whole


@pytest.mark.parametrize("where", ["environment", "session"])
def test_a_scheme_less_proxy_s_password_is_never_shown(monkeypatch, caplog, where):
    # requests 2.25 makes alice:Xy7kQ2@127.0.0.1:99999 alice://Xy7kQ2@127.0.0.1:99999, which urllib3 cannot parse
    # (nor read its user:password): its error, the LeonardoError's cause, showed the password in the traceback.
    caplog.set_level(logging.DEBUG)
    session = requests.Session()
    if where == "environment":
        monkeypatch.setenv("HTTPS_PROXY", "alice:Xy7kQ2@127.0.0.1:99999")
    else:
        session.proxies["https"] = "alice:Xy7kQ2@127.0.0.1:99999"
    with pytest.raises(LeonardoError) as info:
        Client(api_key=API_KEY, base_url=BASE, session=session, max_retries=0).get_user_info()
    printed = "".join(traceback.format_exception(type(info.value), info.value, info.value.__traceback__))
    for text in (str(info.value), repr(info.value), printed, caplog.text):
        assert "Xy7kQ2" not in text


BAD_LABELS = ["https://cloud..leonardo.ai/api/rest/v1", "https://" + "a" * 64 + ".example.test"]  # every call would fail


@pytest.mark.parametrize("base_url", ["ftp://example.test", "cloud.leonardo.ai/api", "https://", "file:///etc/hosts"] + BAD_LABELS)
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


@pytest.mark.parametrize("auth", [None, ("session-user", "session-secret")])
def test_a_netrc_or_session_auth_never_replaces_the_key_or_rides_a_download(mocked, tmp_path, monkeypatch, auth):
    # A "default" entry of ~/.netrc matches every host: requests sent its password instead of the key.
    (tmp_path / ".netrc").write_text("default login someone password netrc-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    mocked.add("GET", BASE + "/me", json={}, match=api_matchers())  # the Bearer key, as given
    mocked.add("GET", "https://cdn.example.test/i.png", body=b"\x89PNG", content_type="image/png", match=download_matchers())
    session = requests.Session()
    session.auth = auth  # a session of the caller's, with an auth of its own
    with session, Client(api_key=API_KEY, base_url=BASE, timeout=TIMEOUT, max_retries=0, session=session) as client:
        client.get_user_info()
        client.download_image("https://cdn.example.test/i.png", str(tmp_path / "i.png"))
    assert "Authorization" not in mocked.calls[1].request.headers


def test_a_session_with_the_key_in_its_headers_sends_it_to_the_api_alone(mocked, tmp_path):
    # requests merges a session's headers into every request: the CDN got the key, and S3 refused its form (403).
    s3 = "https://s3.example.test/bucket"
    mocked.add("GET", BASE + "/me", json={}, match=api_matchers())
    mocked.add("GET", "https://cdn.example.test/i.png", body=b"\x89PNG", content_type="image/png", match=download_matchers())
    upload = {"id": "i", "fields": "{}", "url": s3}
    mocked.add("POST", BASE + "/init-image", json={"uploadInitImage": upload}, match=api_matchers({"extension": "png"}))
    mocked.add("POST", s3, status=204, match=download_matchers(agent=None))
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {API_KEY}", "X-Api-Key": API_KEY, "X-Team": "kept"})
    with session, Client(api_key=API_KEY, base_url=BASE, timeout=TIMEOUT, max_retries=0, session=session) as client:
        client.get_user_info()
        client.download_image("https://cdn.example.test/i.png", str(tmp_path / "i.png"))
        client.upload_init_image(b"\x89PNG", "png")
    assert [call.request.headers.get("X-Team") for call in mocked.calls] == ["kept"] * 4  # the others stay
    assert session.headers["Authorization"] == f"Bearer {API_KEY}"  # the caller's session is left as it was


def test_the_client_s_own_session_keeps_no_cookie(mocked, mock_client, tmp_path):
    # The API takes the key alone: a cookie it set, for its parent domain (here holding the key), rode the downloads and
    # the S3 upload. A session of the caller's keeps its cookies.
    s3 = "https://s3.example.test/bucket"
    cookie = {"Set-Cookie": f"lk={API_KEY}; Domain=example.test; Path=/"}
    mocked.add("GET", BASE + "/me", json={}, headers=cookie, match=api_matchers())
    mocked.add("GET", "https://cdn.example.test/i.png", body=b"\x89PNG", content_type="image/png", match=download_matchers())
    upload = {"id": "i", "fields": "{}", "url": s3}
    mocked.add("POST", BASE + "/init-image", json={"uploadInitImage": upload}, match=api_matchers({"extension": "png"}))
    mocked.add("POST", s3, status=204, match=download_matchers(agent=None))
    mock_client.get_user_info()
    mock_client.download_image("https://cdn.example.test/i.png", str(tmp_path / "i.png"))
    mock_client.upload_init_image(b"\x89PNG", "png")
    moved = {**cookie, "Location": "https://other.example.test/i"}  # nor one a redirect set, on the next hop
    mocked.add("GET", "https://cdn.example.test/moved.png", status=302, headers=moved, match=download_matchers())
    mocked.add("GET", "https://other.example.test/i", body=b"\x89PNG", content_type="image/png", match=download_matchers())
    mock_client.download_image("https://cdn.example.test/moved.png", str(tmp_path / "moved.png"))
    assert [call.request.headers.get("Cookie") for call in mocked.calls] == [None] * 6


def test_a_proxy_password_goes_in_the_tunnel_s_connect_only_not_to_the_api(mocked):
    # requests 2.26 put a proxy's Proxy-Authorization on every https request too: inside the tunnel, Leonardo got it.
    mocked.add("GET", BASE + "/me", json={}, match=api_matchers())
    session = requests.Session()
    session.headers["Proxy-Authorization"] = "Basic dXNlcjpzZWNyZXQ="  # as requests 2.26's rebuild_proxies left it
    with session, Client(api_key=API_KEY, base_url=BASE, timeout=TIMEOUT, max_retries=0, session=session) as client:
        client.get_user_info()
    assert "Proxy-Authorization" not in mocked.calls[0].request.headers


def test_a_netrc_is_not_read_on_a_redirect_either(mocked, mock_client, tmp_path, monkeypatch):
    # requests looks ~/.netrc up again on every redirect, whatever the request's auth: its "default"
    # entry replaced the key on a redirect within the API, and rode a redirected download.
    (tmp_path / ".netrc").write_text("default login someone password netrc-secret\n")
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    mocked.add("GET", BASE + "/me", status=302, headers={"Location": BASE + "/me-moved"}, match=api_matchers())
    mocked.add("GET", BASE + "/me-moved", json={}, match=api_matchers())  # still the Bearer key
    moved = {"Location": "https://other.example.test/i"}
    mocked.add("GET", "https://cdn.example.test/i.png", status=302, headers=moved, match=download_matchers())
    mocked.add("GET", "https://other.example.test/i", body=b"\x89PNG", content_type="image/png", match=download_matchers())
    mock_client.get_user_info()
    mock_client.download_image("https://cdn.example.test/i.png", str(tmp_path / "i.png"))
    assert "Authorization" not in mocked.calls[3].request.headers


@pytest.mark.parametrize(
    "location",
    [
        "https://other.example.test/elsewhere",  # another host
        "http://leonardo.example.test/api/rest/v1/generations/moved",  # downgrade to http
        "https://leonardo.example.test:8443/api/rest/v1/generations/moved",  # another port
    ],
)
def test_redirect_elsewhere_drops_the_authorization_header(mocked, mock_client, location):
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": location}, match=api_matchers())
    mocked.add("GET", location, json={"moved": True}, match=download_matchers())
    assert mock_client.get_generation_by_id("g") == {"moved": True}
    first, second = mocked.calls
    assert first.request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert "Authorization" not in second.request.headers


def test_a_key_in_a_redirect_url_is_redacted_from_the_error(mocked, mock_client):
    # The Authorization header is dropped on the way to another host; a key in the URL is not.
    location = f"https://other.example.test/auth?token={API_KEY}"
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": location}, match=api_matchers())
    mocked.add("GET", location, status=404, json={"error": f"no page /auth?token={API_KEY}"}, match=download_matchers())
    with pytest.raises(LeonardoError) as info:
        mock_client.get_generation_by_id("g")
    err = info.value
    assert "Authorization" not in mocked.calls[1].request.headers
    assert (err.status_code, err.url) == (404, "https://other.example.test/auth?token=[redacted]")
    for text in (str(err), repr(err), err.url, repr(err.body), err.message):
        assert API_KEY not in text


def test_a_post_or_delete_follows_no_redirect(mocked, mock_client):
    # A 307 would send the create call again, to wherever it points: billed twice. The API never redirects.
    elsewhere, other = {"Location": BASE + "/generations-elsewhere"}, {"Location": BASE + "/generations/h"}
    mocked.add("POST", BASE + "/generations", status=307, headers=elsewhere, match=api_matchers({"prompt": "p"}))
    mocked.add("DELETE", BASE + "/generations/g", status=308, headers=other, match=api_matchers())
    for call, status in ((lambda: mock_client.create_generation({"prompt": "p"}), 307),
                         (lambda: mock_client.delete_generation_by_id("g"), 308)):
        with pytest.raises(LeonardoError) as info:
            call()
        assert info.value.status_code == status
    assert len(mocked.calls) == 2


def test_a_get_follows_at_most_five_redirects(mocked, mock_client):
    # Each hop has its own retries and timeouts: requests' 30 hops could hold one call for hours.
    for n in range(6):
        hop = {"Location": f"{BASE}/generations/g{n + 1}"}
        mocked.add("GET", f"{BASE}/generations/g{n}", status=302, headers=hop, match=api_matchers())
    with pytest.raises(LeonardoError, match="Exceeded 5 redirects"):
        mock_client.get_generation_by_id("g0")
    assert len(mocked.calls) == 6


def test_redirect_on_the_same_host_keeps_the_header(mocked, mock_client):
    # The counterpart of the test above: shows the header really is what is being checked.
    target = BASE + "/generations/moved"
    mocked.add("GET", BASE + "/generations/g", status=302, headers={"Location": target}, match=api_matchers())
    mocked.add("GET", target, json={"moved": True}, match=api_matchers())
    mock_client.get_generation_by_id("g")
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {API_KEY}"


# --- ids ---------------------------------------------------------------------------------------

def id_endpoints() -> Dict[str, Tuple[str, str]]:
    """name -> (verb, path up to the id) of every endpoint method whose path ends in one id."""
    found = {}
    for name in endpoint_methods():
        verb, template = endpoint_doc(name).group(1, 2)  # type: ignore[union-attr]
        if template.count("{") == 1 and template.endswith("}"):
            found[name] = (verb, template[: template.index("{")])
    return found


ID_ENDPOINTS = id_endpoints()


def test_every_id_taking_method_is_checked():
    assert len(ID_ENDPOINTS) == 8  # generations (3), texture (3), init images (2)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the retired texture methods say so
@pytest.mark.parametrize("name", sorted(ID_ENDPOINTS))
@pytest.mark.parametrize(
    "bad, error",
    [("", ValueError), ("   ", ValueError), (".", ValueError), ("..", ValueError), (" .. ", ValueError),
     (123, TypeError), (None, TypeError), (b"gen-1", TypeError), (["gen-1"], TypeError)],
)
def test_bad_ids_are_refused_before_any_request(mocked, mock_client, name, bad, error):
    with pytest.raises(error):
        getattr(mock_client, name)(bad)
    assert len(mocked.calls) == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", sorted(ID_ENDPOINTS))
def test_an_id_with_undecodable_bytes_names_the_argument_in_plain_words(mocked, mock_client, name):
    bad = b"gen-\xff".decode("utf-8", "surrogateescape")  # as sys.argv holds bytes it cannot decode
    with pytest.raises(ValueError, match="^id holds bytes that are not valid text") as info:
        getattr(mock_client, name)(bad)
    assert "surrogate" not in str(info.value)
    assert len(mocked.calls) == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", sorted(ID_ENDPOINTS))
@pytest.mark.parametrize(
    "ident, segment",
    [
        ("a/b", "a%2Fb"),
        ("../x", "..%2Fx"),
        ("../../me", "..%2F..%2Fme"),
        ("x?y=1", "x%3Fy%3D1"),
        ("#frag", "%23frag"),
        ("id with space", "id%20with%20space"),
        ("a b/c?d#e", "a%20b%2Fc%3Fd%23e"),
        ("\u00fcn\u00ef", "%C3%BCn%C3%AF"),
        ("t%1", "t%251"),
        ("t+1", "t%2B1"),
        ("m&1", "m%261"),
    ],
)
def test_odd_ids_are_percent_encoded_as_one_segment(mocked, mock_client, name, ident, segment):
    method, prefix = ID_ENDPOINTS[name]
    url = BASE + prefix + segment
    mocked.add(method, url, json={"ok": True}, match=api_matchers())
    assert getattr(mock_client, name)(ident) == {"ok": True}
    assert mocked.calls[0].request.url == url
    assert mocked.calls[0].request.path_url.startswith("/api/rest/v1" + prefix)


# --- a wrong key, end to end ------------------------------------------------------------------------


def test_wrong_key_is_a_401_leonardo_error_that_shows_no_key(fake: FakeLeonardo) -> None:
    wrong_key = "0f3c6a52-8e1d-4b7a-9c2e-5d4f6a7b8c9d"  # a UUID: one that is not gets a 500 (test_errors.py)
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
            assert err.message == f"Authentication hook unauthorized this request: {KEY_REFUSED}"
            assert err.body["code"] == "access-denied"
            for text in (str(err), repr(err), err.message, str(err.url), str(err.args)):
                assert wrong_key not in text and fake.api_key not in text
    assert len(fake.requests) == 3  # 401 is not retried
    assert fake.generation_ids() == []
    assert all(r.headers["Authorization"] == "Bearer " + wrong_key for r in fake.requests)
