"""LeonardoError: every failure of a call, whatever the body, is one exception with one-line text.

Mocked with ``responses`` (retries off: each answer is seen once; retries are test_retry.py's),
except what needs real sockets: refused connections and bodies cut short (FakeLeonardo).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import http.client
import inspect
import io
import json
import os
import pathlib
import pickle
import re
import socket
import ssl
import sys
import threading
import gc
import time
import tracemalloc
from functools import partial
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests
import urllib3
from urllib3.exceptions import LocationParseError

from conftest import (
    API_KEY, ARGUMENTS, BASE, api_matchers, call_endpoint, endpoint_doc, endpoint_methods, endpoint_root,
    new_generation, raw_server, refused_url,
)
from leonardo_client import Client, CreateGenerationRequest, LeonardoError, generation_id
from leonardo_client import _files, errors
from leonardo_client import client as client_module
from leonardo_client._retry import LeonardoRetry
from leonardo_client.errors import may_have_run, never_sent, parse_json
from leonardo_client.testing import FakeLeonardo

GEN_URL = BASE + "/generations/g"
POST_URL = BASE + "/generations"


def fail(client: Client) -> LeonardoError:
    with pytest.raises(LeonardoError) as info:
        client.get_generation_by_id("g")
    return info.value


def assert_one_line(err: LeonardoError) -> None:
    text = str(err)
    assert text and "\n" not in text and "\r" not in text


# --- HTTP errors and their bodies ---------------------------------------------------------------


def test_json_error_envelope(mocked, mock_client):
    envelope = {"error": "Authentication hook unauthorized this request", "path": "$", "code": "access-denied"}
    mocked.add("GET", GEN_URL, status=401, json=envelope, headers={"x-request-id": "req-123"}, match=api_matchers())
    err = fail(mock_client)
    assert err.status_code == 401
    # A wrong key's answer (API_FACTS 1.2): Leonardo's words alone gave no hint to check it, as a malformed key's did
    assert err.message == f"Authentication hook unauthorized this request: {errors.KEY_REFUSED}"
    assert err.body == envelope
    assert err.method == "GET"
    assert err.url == GEN_URL
    assert err.request_id == "req-123"
    assert err.retry_after is None
    assert str(err) == f"HTTP 401: Authentication hook unauthorized this request: {errors.KEY_REFUSED} (GET {GEN_URL})"


def test_a_300_is_an_error_status_not_an_answer(mocked, mock_client):
    mocked.add("GET", GEN_URL, status=300, json={"generations_by_pk": None}, match=api_matchers())  # no Location
    err = fail(mock_client)
    assert err.status_code == 300 and err.url == GEN_URL


def test_may_have_run_tells_a_call_that_may_have_been_acted_on(mocked, mock_client):
    # The CLI's generate and the examples say "it may have been made" by it: a rerun of such a call may bill twice.
    for status in (500, 503, 400, 403, 429, 302):
        mocked.add("POST", POST_URL, status=status, json={"error": "e"}, match=api_matchers({"prompt": "p"}))
        with pytest.raises(LeonardoError) as caught:
            mock_client.create_generation(CreateGenerationRequest("p"))
        assert may_have_run(caught.value) is not (400 <= status < 500), status  # a 303: "done, see elsewhere"
        mocked.reset()
    with pytest.raises(LeonardoError) as caught:
        generation_id({"sdGenerationJob": None})  # a 200 without its id: the call ran
    assert may_have_run(caught.value)
    refused = refused_url()
    mocked.add_passthru(refused)  # a real connection, refused: nothing sent
    with Client(api_key=API_KEY, base_url=refused, max_retries=0) as client:
        with pytest.raises(LeonardoError) as caught:
            client.create_generation(CreateGenerationRequest("p"))
    assert never_sent(caught.value) and not may_have_run(caught.value)
    session = requests.Session()  # a proxy that refuses the connection: nothing went either
    session.trust_env, session.proxies = False, {"https": refused}
    mocked.add_passthru("https://leonardo.example.test")
    with Client(api_key=API_KEY, base_url="https://leonardo.example.test/v1", session=session, max_retries=0) as client:
        with pytest.raises(LeonardoError) as caught:
            client.create_generation(CreateGenerationRequest("p"))
    assert never_sent(caught.value) and not may_have_run(caught.value)


# The create methods that may bill; upload_init_image's POST makes no generation.
BILLING_CREATES = ["create_generation", "create_generation_v2", "create_texture_generation",
                   "create_svd_motion_generation", "create_lcm_generation", "perform_inpainting_lcm",
                   "perform_instant_refine", "perform_alchemy_upscale_lcm"]
MADE_HINT = "; it may have been made (and billed): look for it in your Leonardo library before sending it again"
CREATE_SENT = api_matchers(ARGUMENTS["request"])  # a create call of call_endpoint's, from mock_client


def test_every_post_endpoint_but_the_upload_is_a_billing_create() -> None:
    posts = [name for name in endpoint_methods() if endpoint_doc(name).group(1) == "POST"]  # type: ignore[union-attr]
    assert sorted(BILLING_CREATES) == sorted(set(posts) - {"upload_init_image"})


def create_failure(client: Client, name: str) -> LeonardoError:
    with pytest.raises(LeonardoError) as caught:
        call_endpoint(client, name)
    return caught.value


@pytest.mark.parametrize("name", BILLING_CREATES)
def test_a_create_call_that_may_have_run_says_to_look_for_what_it_made(mocked, mock_client, name):
    # The library said nothing of it (only the CLI's generate and the examples did): a user's natural retry
    # of a create call answered 503 paid twice. Every other field is as it was: may_have_run() still says so.
    path = endpoint_doc(name).group(2)
    url = endpoint_root(path) + path
    mocked.add("POST", url, status=503, json={"error": "busy"}, headers={"x-request-id": "req-9", "Retry-After": "7"},
               match=CREATE_SENT)
    err = create_failure(mock_client, name)
    assert err.message == "busy" + MADE_HINT and str(err) == f"HTTP 503: busy{MADE_HINT} (POST {url})"
    assert (err.status_code, err.body, err.method, err.url) == (503, {"error": "busy"}, "POST", url)
    assert (err.request_id, err.retry_after, type(err)) == ("req-9", 7.0, LeonardoError) and may_have_run(err)
    timeout = requests.exceptions.ReadTimeout("slow read")  # no answer: its cause kept
    mocked.add("POST", url, body=timeout, match=CREATE_SENT)
    err = create_failure(mock_client, name)
    assert err.message == "timed out waiting for leonardo.example.test's response" + MADE_HINT
    assert (err.status_code, err.body, err.__cause__, may_have_run(err)) == (None, None, timeout, True)
    mocked.add("POST", url, status=400, json={"error": "bad prompt"}, match=CREATE_SENT)  # a refusal: no hint
    err = create_failure(mock_client, name)
    assert (err.message, err.status_code, err.body) == ("bad prompt", 400, {"error": "bad prompt"})
    refused = refused_url()
    mocked.add_passthru(refused)
    with Client(api_key=API_KEY, base_url=refused + "/v1", max_retries=0) as never:  # never sent: no hint either
        err = create_failure(never, name)
    assert err.message.startswith("connection failed: ") and "may have been made" not in str(err)


@pytest.mark.parametrize("name", BILLING_CREATES)
def test_a_ctrl_c_during_a_create_call_says_it_may_have_been_made(mocked, mock_client, name):
    # A library or REPL user was told nothing, though the call may have run: run again, it bills twice. The same
    # KeyboardInterrupt, with a note in __notes__ on every Python (a 3.11+ traceback shows it; before 3.11 there was
    # none, and the examples, which print it, said only "interrupted"). A GET's: no note.
    path = endpoint_doc(name).group(2)
    stops = [KeyboardInterrupt(), KeyboardInterrupt()]

    def interrupted(request: Any) -> Any:
        raise stops[0] if request.method == "POST" else stops[1]

    mocked.add_callback("POST", endpoint_root(path) + path, callback=interrupted, match=CREATE_SENT)
    mocked.add_callback("GET", GEN_URL, callback=interrupted, match=api_matchers())
    for call in (partial(call_endpoint, mock_client, name), partial(mock_client.get_generation_by_id, "g")):
        with pytest.raises(KeyboardInterrupt) as caught:
            call()
        assert caught.value in stops and caught.value.args == ()
    noted = [f"the create call was under way: {errors.MAY_HAVE_BEEN_MADE}"]
    assert [getattr(stop, "__notes__", None) for stop in stops] == [noted, None]


def test_a_create_call_that_failed_before_connecting_says_nothing_was_made(mocked, tmp_path):
    # A closed Client, a CA bundle not found: both said "it may have been made (and billed)" of a call never sent.
    closed = Client(api_key=API_KEY, base_url="https://leonardo.example.test/v1")
    closed.close()
    session = requests.Session()
    session.verify = str(tmp_path / "no-such-ca.pem")  # requests looks for it before it connects
    mocked.add_passthru("https://127.0.0.1")
    with Client(api_key=API_KEY, base_url="https://127.0.0.1:9/v1", session=session, max_retries=0) as client:
        for err in (create_failure(closed, "create_generation"), create_failure(client, "create_generation")):
            assert never_sent(err) and not may_have_run(err) and "may have been made" not in str(err)


@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:9", "http://127.0.0.1:notaport", "ftp://127.0.0.1:9"])
def test_a_create_call_requests_refuses_to_make_says_nothing_was_made(monkeypatch, proxy):
    # A SOCKS proxy without PySocks (requests' InvalidSchema), a proxy URL it cannot parse or whose scheme urllib3
    # refuses (InvalidURL): refused before anything went, and said "it may have been made (and billed)".
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    with Client(api_key=API_KEY, base_url=BASE, max_retries=0) as client:
        err = create_failure(client, "create_generation")
    assert never_sent(err) and not may_have_run(err) and "may have been made" not in str(err)


def test_a_create_call_answered_with_headers_urllib3_refuses_may_have_been_made():
    # Two unequal Content-Lengths: urllib3's InvalidHeader, which requests 2.27+ raises as its own, the same type it
    # raises for a header it refuses to send. Taken as never sent, a batch sent the item again: billed twice.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        err = create_failure(client, "create_generation")
    assert "Content-Length" in str(err) and not never_sent(err) and may_have_run(err)
    assert str(err).endswith(f"(POST {url}/v1/generations)") and "may have been made" in str(err)


@pytest.mark.parametrize("own_adapter", [False, True])
def test_a_call_whose_session_hook_failed_after_the_answer_was_sent(fake, own_adapter):
    # A response hook of the caller's session (a log written to `| head` or a full disk) raised a plain OSError after
    # the answer came: read as "never sent", and a batch sent the item again, billing it twice; through an adapter
    # of the caller's on the API (README's own retry policy) too. A wait rode it out to its timeout.
    def log_to_a_closed_pipe(response: Any, **kwargs: Any) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    session = requests.Session()
    session.hooks["response"] = log_to_a_closed_pipe  # requests takes one function as a list of one
    with Client(api_key=fake.api_key, base_url=fake.base_url, session=session, max_retries=0) as client:
        if own_adapter:
            session.mount(client.base_url + "/", requests.adapters.HTTPAdapter())
        err = create_failure(client, "create_generation")
        assert len(fake.generation_ids()) == 1 and not never_sent(err) and may_have_run(err)
        started = time.monotonic()
        with pytest.raises(LeonardoError, match="Broken pipe"):
            client.wait_for_generation(fake.generation_ids()[0], timeout=30)
        assert time.monotonic() - started < 5  # at once: the caller's hook fails, not the API
        session.hooks["response"] = []
        client.get_user_info()  # the next call, answered
    session.close()


def test_a_poll_redirected_to_a_hop_that_drops_it_is_waited_out_and_a_call_leaves_no_cycle():
    # A redirect's next hop that closed without an answer was taken for a failure after the answer (a caller's hook):
    # the wait raised it at once, where one without the redirect is waited out. And each call's request, held by the
    # hook that notes it, was freed only by the cycle collector.
    with raw_server(b"") as dropped:
        redirect = f"HTTP/1.1 302 Found\r\nLocation: {dropped}/g\r\nContent-Length: 0\r\n\r\n".encode()
        with raw_server(redirect) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
            with pytest.raises(LeonardoError, match=r"^generation g still unknown after .*its last poll failed"):
                client.wait_for_generation("g", timeout=0.001)  # one poll, then the deadline
    session = requests.Session()
    session.hooks["response"].append(lambda response, **kwargs: None)  # a caller's hook: answers are noted
    with FakeLeonardo() as fake, Client(api_key=fake.api_key, base_url=fake.base_url, session=session) as client:
        client.get_user_info()
        gc.collect()
        gc.disable()
        try:
            before = sum(isinstance(thing, requests.PreparedRequest) for thing in gc.get_objects())
            for _ in range(5):
                client.get_user_info()
            left = sum(isinstance(thing, requests.PreparedRequest) for thing in gc.get_objects()) - before
        finally:
            gc.enable()
    session.close()
    assert left == 0


def test_a_call_never_sent_is_still_never_sent_once_its_error_is_pickled_or_copied(mocked, mock_client):
    # never_sent read the error's __cause__, which pickle and copy drop: a create call never sent, in a process pool's
    # worker, said may_have_run() in the parent. One that may have run (no answer) still says so.
    closed = Client(api_key=API_KEY, base_url="https://leonardo.example.test/v1")
    closed.close()
    refused = refused_url()
    mocked.add_passthru(refused)
    with Client(api_key=API_KEY, base_url=refused + "/v1", max_retries=0) as client:
        unsent = [create_failure(closed, "create_generation"), create_failure(client, "create_generation")]
    mocked.add("POST", POST_URL, body=requests.exceptions.ReadTimeout("slow read"), match=CREATE_SENT)
    sent = create_failure(mock_client, "create_generation")
    assert sent.message.startswith("timed out waiting"), sent  # the mock's answer, not a request it refused
    for err, was_sent in [(unsent[0], False), (unsent[1], False), (sent, True)]:
        for again in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
            assert again.__cause__ is None and (never_sent(again), may_have_run(again)) == (not was_sent, was_sent)


AUTH_HOOK_FAILED = {"error": "Invalid response from authorization hook", "path": "$", "code": "unexpected"}
MALFORMED_KEY = ("Invalid response from authorization hook: the API key is probably malformed (a Leonardo key is a "
                 "UUID): check it")


@pytest.mark.parametrize("name", BILLING_CREATES)
def test_a_malformed_keys_500_says_so_and_that_nothing_was_made(mocked, mock_client, name):
    # API_FACTS 1.2: Leonardo's 500 to a key that is not a UUID comes from Hasura's auth hook, before any action runs.
    # Read as any 500, it said nothing of the key, and of a create call that it "may have been made (and billed)".
    path = endpoint_doc(name).group(2)
    url = endpoint_root(path) + path
    mocked.add("POST", url, status=500, json=AUTH_HOOK_FAILED, match=CREATE_SENT)
    err = create_failure(mock_client, name)
    assert err.message == MALFORMED_KEY and str(err) == f"HTTP 500: {MALFORMED_KEY} (POST {url})"
    assert (err.status_code, err.body, may_have_run(err)) == (500, AUTH_HOOK_FAILED, False)
    mocked.add("GET", GEN_URL, status=500, json=AUTH_HOOK_FAILED, match=api_matchers())
    assert fail(mock_client).message == MALFORMED_KEY
    crashed = {"error": "internal error", "path": "$", "code": "unexpected"}  # another 500: may have run, as before
    mocked.add("POST", url, status=500, json=crashed, match=CREATE_SENT)
    assert may_have_run(create_failure(mock_client, name))
    mocked.add("POST", url, status=502, json=AUTH_HOOK_FAILED, match=CREATE_SENT)  # not the hook's: may have run
    err = create_failure(mock_client, name)
    assert err.message == f"{AUTH_HOOK_FAILED['error']}; {errors.MAY_HAVE_BEEN_MADE}" and may_have_run(err)
    assert err.args == (err.message,)  # what a logger or error reporter reads of it says so too


def test_the_auth_hooks_500_to_a_uuid_key_is_a_500_that_may_pass(mocked):
    # For a key of the right shape, the hook itself failed (API_FACTS 1.2: "or auth hook failure"): not called
    # malformed, nothing made, and a wait rides it out as any 5xx (it ended at once, telling to check the key).
    key = "0f3c6a52-8a1e-4b7d-9c2f-5e6d7a8b9c0d"
    complete = {"generations_by_pk": {"id": "g", "status": "COMPLETE", "generated_images": [{"url": "u"}]}}
    for answer in ({"status": 500, "json": AUTH_HOOK_FAILED},) * 2 + ({"json": complete},):
        mocked.add("GET", GEN_URL, **answer, match=api_matchers(key=key, timeout=client_module.DEFAULT_TIMEOUT))
    with Client(api_key=key, base_url=BASE, max_retries=0) as client:
        err = fail(client)
        assert err.status_code == 500, err  # the mock's answer (a request it refused would leave the wait polling)
        assert client.wait_for_generation("g", poll_interval=0.001) == complete["generations_by_pk"]
    said = "Leonardo could not check the API key (if this goes on, check that it is your current key)"
    assert err.message == f"Invalid response from authorization hook: {said}"
    assert key not in str(err) and not may_have_run(err) and not errors.key_malformed(err)


@pytest.mark.parametrize("name", ["create_generation", "create_generation_v2", "create_texture_generation",
                                  "create_svd_motion_generation"])
def test_a_create_answer_without_its_job_id_says_to_look_for_what_it_made(mocked, mock_client, name):
    # The call ran: what it made, if anything, is in the account. The answer is returned as it came (run_batch
    # reads it itself); the id read from it, or the wait on it, says so.
    path = endpoint_doc(name).group(2)
    answer = {"errors": [{"message": "Not enough tokens"}]}
    mocked.add("POST", endpoint_root(path) + path, json=answer, match=CREATE_SENT)
    assert call_endpoint(mock_client, name) == answer
    with pytest.raises(LeonardoError) as caught:
        generation_id(answer)
    assert caught.value.message == "no generation id in the response: Not enough tokens (keys: errors)" + MADE_HINT
    assert may_have_run(caught.value)
    wait = mock_client.wait_for_texture_generation if "texture" in name else mock_client.wait_for_generation
    with pytest.raises(LeonardoError, match=re.escape(MADE_HINT) + "$"):
        wait(answer)  # nothing sent


@pytest.mark.parametrize("answer", [{"generate": {"generationId": "g-1", "cost": {"amount": 1}}},
                                    {"generationId": "g-1", "apiCreditCost": 1}])
def test_both_shapes_of_a_v2_create_answer_are_returned_as_they_came(mocked, mock_client, answer):
    body = {"model": "m", "parameters": {}}
    mocked.add("POST", endpoint_root("/v2/") + "/v2/generations", json=answer, match=api_matchers(body))
    assert generation_id(mock_client.create_generation_v2(body)) == "g-1"


def test_a_long_message_keeps_the_whole_hint_in_its_one_line(mocked, mock_client):
    mocked.add("POST", POST_URL, status=500, body="x" * 1000, content_type="text/plain", match=CREATE_SENT)
    text = str(create_failure(mock_client, "create_generation"))
    assert text.startswith("HTTP 500: xxx") and text.endswith(f"{MADE_HINT} (POST {POST_URL})") and len(text) < 400


def test_moderation_403_keeps_the_api_text(mocked, mock_client):
    text = "content moderation filter: example"
    mocked.add("POST", POST_URL, status=403, json={"error": text, "path": "$", "code": "unexpected"}, match=api_matchers({"prompt": "p"}))
    with pytest.raises(LeonardoError) as info:
        mock_client.create_generation(CreateGenerationRequest("p"))
    assert (info.value.status_code, info.value.message, info.value.method) == (403, text, "POST")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"errors": [{"message": "first problem"}, {"message": "second"}]}, "first problem"),
        (
            {"errors": [{"message": "Key Creation Error Occurred", "extensions": {"path": "$", "code": "unexpected"}}]},
            "Key Creation Error Occurred",
        ),
        ([{"message": "bad variable", "extensions": {"path": "$", "code": "unexpected"}}], "bad variable"),
        ({"message": "from message"}, "from message"),
        ({"detail": "from detail"}, "from detail"),
    ],
)
def test_other_error_shapes(mocked, mock_client, body, message):
    mocked.add("GET", GEN_URL, status=400, json=body, match=api_matchers())
    err = fail(mock_client)
    assert (err.status_code, err.message, err.body) == (400, message, body)


@pytest.mark.parametrize("body", [{"error": {"nested": True}, "code": 7}, {"error": "   "}, {"errors": [{"message": "\n"}]}])
def test_json_error_without_a_known_message_keeps_the_text(mocked, mock_client, body):
    # A blank message gave 'HTTP 400:  (GET ...)'.
    mocked.add("GET", GEN_URL, status=400, json=body, match=api_matchers())
    err = fail(mock_client)
    assert err.body == body
    assert err.message == " ".join(json.dumps(body).split())  # as a text body is shown


def test_html_502(mocked, mock_client):
    html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudfront</body>\r\n</html>"
    mocked.add("GET", GEN_URL, status=502, body=html, content_type="text/html", match=api_matchers())
    err = fail(mock_client)
    assert err.status_code == 502
    assert err.body == html
    assert "Bad Gateway" in err.message and "HTML" in err.message
    assert "<" not in str(err)  # no markup in the one-line text
    assert_one_line(err)


@pytest.mark.parametrize(
    "body, content_type",
    [("<Other><Code>X</Code><Message>not S3's</Message></Other>", "application/xml"),  # S3 errors are <Error>
     ("<Error><Code>AccessDenied</Code><Mess", "application/xml"),  # an S3 error cut short: no XML
     ("<Error><Code>X</Code><Message>" + "x" * 65536 + "</Message></Error>", "application/xml"),  # over 64 KiB
     ("Bad Gateway, says the proxy's page", "text/html")],  # HTML, though it does not start with "<"
)
def test_an_xml_or_html_body_that_is_no_s3_error_gives_the_status(mocked, mock_client, body, content_type):
    mocked.add("GET", GEN_URL, status=502, body=body, content_type=content_type, match=api_matchers())
    assert fail(mock_client).message == "Bad Gateway (no error message in the HTML response body)"


@pytest.mark.parametrize("status, reason", [(500, "Internal Server Error"), (503, "Service Unavailable")])
def test_empty_error_body(mocked, mock_client, status, reason):
    mocked.add("GET", GEN_URL, status=status, body=b"", match=api_matchers())
    err = fail(mock_client)
    assert err.status_code == status
    assert err.body is None
    assert reason in err.message and "empty" in err.message


def test_plain_text_error_is_one_line_and_truncated(mocked, mock_client):
    text = "something\nwent\twrong " + "x" * 400
    mocked.add("GET", GEN_URL, status=400, body=text, content_type="text/plain", match=api_matchers())
    err = fail(mock_client)
    assert err.body == text
    assert err.message.startswith("something went wrong xxx") and err.message.endswith("...")
    assert len(err.message) == 203
    assert_one_line(err)


@pytest.mark.parametrize(
    "content_type, text",
    [("application/json", '{"error": "caf\ufffd"}'), ("text/plain; charset=iso-8859-1", '{"error": "caf\u00e9"}'),
     ("text/plain", '{"error": "caf\ufffd"}'),  # UTF-8, not the latin-1 requests assumes for text/*
     ("text/plain; charset = iso-8859-1", '{"error": "caf\u00e9"}')],
)
def test_a_body_is_read_by_its_charset_else_as_utf_8_never_guessed(mocked, mock_client, content_type, text):
    mocked.add("GET", GEN_URL, status=500, body=b'{"error": "caf\xe9"}', content_type=content_type, match=api_matchers())
    assert fail(mock_client).body == text  # the same with every requests version


@pytest.mark.parametrize("charset", ["idna", "undefined", "punycode", "utf\x008"])  # no charsets: UnicodeError, ValueError
@pytest.mark.parametrize("body", [b"try-again", b"caf\xc3\xa9 is down"])  # punycode "decodes" the first
def test_a_charset_python_decodes_no_text_by_reads_the_body_as_utf_8(mocked, mock_client, charset, body):
    mocked.add("GET", GEN_URL, status=400, body=body, content_type=f"text/plain; charset={charset}", match=api_matchers())
    err = fail(mock_client)
    assert err.message == err.body == body.decode("utf-8")


def test_short_plain_text_error_is_the_message(mocked, mock_client):
    mocked.add("GET", GEN_URL, status=403, body="Forbidden by upstream\n", content_type="text/plain", match=api_matchers())
    err = fail(mock_client)
    assert (err.status_code, err.message) == (403, "Forbidden by upstream")


def test_retry_after_is_parsed_on_errors(mocked, mock_client):
    mocked.add("GET", GEN_URL, status=429, json={"error": "slow"}, headers={"Retry-After": "30"}, match=api_matchers())
    err = fail(mock_client)
    assert (err.status_code, err.retry_after) == (429, 30.0)


def test_one_retry_is_said_in_the_singular(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    fake.inject(status=503, times=None, body={"error": "busy"})  # real sockets: urllib3 counts the retries
    with make_fake_client(max_retries=1, backoff_factor=0) as client:
        assert fail(client).message == "busy (after 1 retry)"  # was "1 retries"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("header", ["x-request-id", "X-Amzn-RequestId", "x-amz-cf-id"])
def test_request_id_headers(mocked, mock_client, header):
    mocked.add("GET", GEN_URL, status=500, json={"error": "oops"}, headers={header: "id-42"}, match=api_matchers())
    assert fail(mock_client).request_id == "id-42"


# --- bad bodies on a success status -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['{"generations_by_pk": {"id": "g", "status": "PEND', "OK", "this is not json", "<html>ok</html>", "\x00\x01",
     '{"generations_by_pk": {"id": "g", "seed": NaN}}', '{"a": Infinity}', '{"a": [-Infinity]}',  # json.loads takes those
     '{"generations_by_pk": {"id": "g", "seed": 1e400}}'],  # and reads this as infinity
)
def test_unparseable_200(mocked, mock_client, body):
    mocked.add("GET", GEN_URL, status=200, body=body, content_type="application/json", match=api_matchers())
    err = fail(mock_client)
    assert err.status_code == 200
    assert err.message == "response body is not valid JSON"
    assert err.body == body
    assert (err.method, err.url) == ("GET", GEN_URL)
    assert isinstance(err.__cause__, ValueError)
    assert_one_line(err)


def test_an_unparseable_200_keeps_the_start_of_its_body(mocked, mock_client):
    mocked.add("GET", GEN_URL, status=200, body="x" * 1000, match=api_matchers())
    assert fail(mock_client).body == "x" * 200


def kept_texts(err: BaseException) -> List[int]:
    """The sizes of the texts over 100 KiB (more than a chunk read) an error holds beside its own fields: in the
    fields of its causes and contexts, and in the locals (a Response: its body) of the frames their tracebacks hold."""
    found: List[Any] = []
    exc: Any = err
    while exc is not None:
        found += [] if exc is err else [*vars(exc).values(), *exc.args]
        tb = exc.__traceback__
        while tb is not None:
            found += tb.tb_frame.f_locals.values()
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    found = [getattr(thing, "_content", thing) for thing in found]
    return [len(thing) for thing in found if isinstance(thing, (str, bytes, bytearray)) and len(thing) > 100 * 1024]


@pytest.mark.parametrize("status, size", [(200, 2 * 2**20), (500, 2**19), (200, 5 * 2**20)])  # not JSON, past its cap
def test_a_kept_error_holds_what_it_says_not_the_whole_body(mocked, mock_client, monkeypatch, status, size):
    # A proxy's 2 MiB HTML page answered 200 was held twice by its kept error (4 MiB), whose body is its start: by
    # the JSON error chained (its .doc) and by its traceback's frames (their Response); an error status's Response,
    # and what was read of an answer past its cap, too.
    monkeypatch.setattr(client_module, "MAX_ANSWER", 4 * 2**20)
    page = "<html>" + "x" * size + "</html>"
    mocked.add("GET", GEN_URL, status=status, body=page, content_type="text/html", match=api_matchers())
    err = fail(mock_client)
    assert kept_texts(err) == []


def test_a_kept_error_of_a_body_cut_short_holds_none_of_it() -> None:
    body = b"x" * 2**21  # what had been read was held, up to 64 MiB, by the frames of the error chained
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(body) + 1) + body
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        err = fail(client)
    assert "truncated body" in err.message and kept_texts(err) == []


@pytest.mark.parametrize("create", [False, True])
def test_a_body_that_stops_coming_is_a_timeout_not_a_truncation(create: bool) -> None:
    # 5 of 100 bytes, then nothing: it was "connection broke ... (truncated body: 0 of 100 bytes)". The request went:
    # a create call's may have been made (taken as never sent, it is sent again: billed twice).
    with raw_server(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"gen', linger=1.0) as url:
        with Client(api_key=API_KEY, base_url=url + "/api/rest/v1", timeout=(2, 0.3), max_retries=0) as client:
            err = create_failure(client, "create_generation") if create else fail(client)
    hint = MADE_HINT if create else ""
    assert (err.status_code, err.message) == (200, "timed out waiting for 127.0.0.1's response" + hint)
    assert not never_sent(err) and may_have_run(err)


def test_unparseable_200_on_post(mocked, mock_client):
    page = "<html>maintenance page</html>"
    mocked.add("POST", POST_URL, status=200, body=page, content_type="text/html", match=api_matchers({"prompt": "p"}))
    with pytest.raises(LeonardoError) as info:
        mock_client.create_generation(CreateGenerationRequest("p"))
    assert (info.value.status_code, info.value.message) == (200, "response body is not valid JSON" + MADE_HINT)
    assert info.value.body == "<html>maintenance page</html>"
    assert (info.value.method, info.value.url) == ("POST", POST_URL)


def test_status_code_is_none_also_where_answers_came_as_documented(mocked, mock_client):
    mocked.add("POST", POST_URL, json={"error": "prompt refused"}, match=api_matchers({"prompt": "p"}))  # in a 200
    mocked.add("GET", GEN_URL, json={"generations_by_pk": {"id": "g", "status": "FAILED"}}, match=api_matchers())
    with pytest.raises(LeonardoError) as in_a_200:
        generation_id(mock_client.create_generation(CreateGenerationRequest("p")))
    with pytest.raises(LeonardoError) as failed:
        mock_client.wait_for_generation("g", poll_interval=0.001)
    assert (in_a_200.value.status_code, failed.value.status_code) == (None, None)
    documented = " ".join((LeonardoError.__doc__ or "").split())  # it said None only when no response arrived
    assert "a generation that ended FAILED" in documented and 'an ``{"error": ...}`` in a 200' in documented


@pytest.mark.parametrize("body, kind", [("[1, 2]", "list"), ("[1, 2, 3]", "list"), ('"text"', "str"), ("42", "int"), ("null", "NoneType")])
def test_200_json_that_is_not_an_object(mocked, mock_client, body, kind):
    mocked.add("GET", GEN_URL, status=200, body=body, content_type="application/json", match=api_matchers())
    err = fail(mock_client)
    assert err.status_code == 200
    assert err.message == f"expected a JSON object, got {kind}"
    assert err.body == json.loads(body)


@pytest.mark.parametrize("body", ["<html>ok</html>", "[1, 2]"])  # not JSON; JSON, not an object
def test_a_200_body_the_client_cannot_use_carries_its_request_id(mocked, mock_client, body):
    mocked.add("GET", GEN_URL, body=body, headers={"x-request-id": "id-42"}, match=api_matchers())
    assert fail(mock_client).request_id == "id-42"  # the case to quote to Leonardo's support


# --- transport failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc, text",
    [
        (requests.ConnectionError("connection refused"), "connection failed: connection refused"),
        (requests.exceptions.ConnectTimeout("slow connect"), "timed out connecting to leonardo.example.test"),
        (requests.exceptions.ReadTimeout("slow read"), "timed out waiting for leonardo.example.test's response"),
        # what requests raises when the body stalls after the headers
        (requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, GEN_URL, "Read timed out.")),
         "timed out waiting for leonardo.example.test's response"),
        (requests.exceptions.ChunkedEncodingError("cut"), "connection broke while reading the response"),
        (requests.exceptions.SSLError("bad certificate"), "TLS/SSL error with leonardo.example.test: bad certificate"),
        (requests.exceptions.TooManyRedirects("loop"), "request to leonardo.example.test failed: loop"),
        # requests 2.25 lets urllib3's own errors through unwrapped (two Content-Lengths, for one)
        (urllib3.exceptions.InvalidHeader("Content-Length contained multiple unmatching values (2, 3)"),
         "request to leonardo.example.test failed: Content-Length contained multiple unmatching values (2, 3)"),
    ],
)
def test_transport_failures_are_leonardo_errors_with_the_cause_chained(mocked, mock_client, exc, text):
    mocked.add("GET", GEN_URL, body=exc, match=api_matchers())
    err = fail(mock_client)
    assert err.status_code is None
    assert err.body is None
    assert err.__cause__ is exc
    assert text in err.message
    assert (err.method, err.url) == ("GET", GEN_URL)
    assert_one_line(err)


def test_an_answer_http_client_cannot_read_is_said_as_it_is(mocked, mock_client):
    unreadable = http.client.BadStatusLine("HTTP/1.1 abc Whatever\r\n")
    unreadable.__context__ = TypeError("getresponse() got an unexpected keyword argument 'buffering'")  # urllib3 1.26.0
    broken = requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", unreadable))
    mocked.add("GET", GEN_URL, body=broken, match=api_matchers())
    assert fail(mock_client).message == "connection failed: BadStatusLine('HTTP/1.1 abc Whatever')"


def test_a_transport_error_raised_while_handling_another_says_the_first(mocked, mock_client):
    broken = requests.ConnectionError("while handling it")
    broken.__context__ = ConnectionResetError(104, "Connection reset by peer")
    mocked.add("GET", GEN_URL, body=broken, match=api_matchers())
    assert fail(mock_client).message == "connection failed: Connection reset by peer"


def test_a_transport_error_without_text_is_said_by_its_name(mocked, mock_client):
    mocked.add("GET", GEN_URL, body=requests.ConnectionError(), match=api_matchers())
    assert fail(mock_client).message == "connection failed: ConnectionError"


@pytest.mark.parametrize("location", ["http://[::1/x", "http://127.0.0.1:99999/x", "http://\xff\xfe/x"])
def test_a_redirect_to_an_unusable_location_is_a_leonardo_error(mocked, mock_client, location):
    # requests raised a bare ValueError (UnicodeDecodeError for the undecodable bytes) from inside the session.
    mocked.add("GET", GEN_URL, status=302, headers={"Location": location}, match=api_matchers())
    err = fail(mock_client)
    assert (err.status_code, err.url) == (None, GEN_URL)
    assert "request to leonardo.example.test failed: " in err.message


def test_a_redirect_to_a_location_without_a_host_is_said_to_the_server():
    # The hop that failed has no host name: it was "request to None failed".
    with raw_server(b"HTTP/1.1 302 Found\r\nLocation: http://:80/x\r\nContent-Length: 0\r\n\r\n") as url:
        with pytest.raises(LeonardoError) as info, Client(api_key=API_KEY, base_url=url, max_retries=0) as client:
            client.get_user_info()
    assert info.value.message.startswith("request to the server failed: ")


def test_a_chunked_body_is_not_measured_by_a_content_length_sent_beside_it():
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url, max_retries=0) as client:
        assert client.get_user_info() == {}


@pytest.mark.parametrize("coding, short", [("identity", "500 of 1650 bytes"), ("gzip, Chunked", "")])
def test_only_a_chunked_body_is_exempt_from_its_content_length(coding: str, short: str) -> None:
    # Any Transfer-Encoding exempted it: urllib3 1.26 through a session of yours saved "identity"'s 500 bytes of 1650.
    response = requests.Response()
    response.status_code, response.raw = 200, io.BytesIO(b"x" * 500)
    response.headers.update({"Content-Length": "1650", "Transfer-Encoding": coding})
    response.raw.read()
    assert errors.shortfall(response) == short


def test_a_304_with_a_content_length_is_no_body_cut_short():
    with raw_server(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n") as url:
        with pytest.raises(LeonardoError) as info, Client(api_key=API_KEY, base_url=url, max_retries=0) as client:
            client.get_user_info()
    assert info.value.message == "Not Modified (no error message in the empty response body)"


def test_a_redirect_whose_hop_fails_names_that_hop(tmp_path):
    # It named the first URL, which had answered (a 302): the user looked for the failure in the wrong place.
    hop = refused_url().replace("127.0.0.1", "localhost") + "/cdn/i.png"
    redirect = f"HTTP/1.1 302 Found\r\nLocation: {hop}\r\nContent-Length: 0\r\n\r\n".encode()
    with raw_server(redirect) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        with pytest.raises(LeonardoError, match="^download failed: connection failed") as info:
            client.download_image(url + "/i.png", tmp_path / "i.png")
    assert (info.value.status_code, info.value.url) == (None, hop)


def test_connection_refused_on_loopback():
    with Client(api_key=API_KEY, base_url=refused_url(), timeout=(1, 1), backoff_factor=0.01,
                max_retries=2) as client:
        for call in (lambda: client.get_generation_by_id("x"), lambda: client.create_generation(CreateGenerationRequest("p"))):
            started = time.monotonic()
            with pytest.raises(LeonardoError) as info:
                call()
            assert time.monotonic() - started < 1.5  # retried at once, not after the timeout
            err = info.value
            assert err.status_code is None
            assert err.message.startswith("connection failed")
            assert isinstance(err.__cause__, requests.ConnectionError)
            assert "HTTPConnection" not in err.message and "object at 0x" not in err.message
            for text in (str(err), repr(err), err.message, str(err.body), str(err.url), str(err.args)):
                assert API_KEY not in text
            assert_one_line(err)


# --- bodies cut short, over real sockets (FakeLeonardo) -------------------------------------------


TRUNCATED = {"generations_by_pk": {"id": "x" * 40}, "sdGenerationJob": {"generationId": "y" * 40}}


def test_a_truncated_200_body_on_post_is_a_leonardo_error_and_not_sent_again(
    fake: FakeLeonardo, fake_client: Client
) -> None:
    """Content-Length announced, half the body sent, connection closed. urllib3 2.x raises while
    reading; 1.26 returns the short body silently and the client compares it with Content-Length."""
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, method="POST")
    with pytest.raises(LeonardoError) as caught:
        new_generation(fake_client)
    err = caught.value
    assert (err.status_code, err.method, len(fake.requests)) == (200, "POST", 1)  # the same on both urllib3 lines
    assert type(err) is LeonardoError  # one exception type leaves the client
    assert re.search(r"connection broke while reading the response \(truncated body: \d+ of \d+ bytes\)", err.message)
    # The connection was closed by the server; the client recovers on a new one.
    assert fake_client.get_generations_by_user_id(fake.user_id) == {"generations": []}


def test_a_truncated_body_keeps_its_request_id_and_retry_after() -> None:
    answer = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nx-request-id: id-42\r\nRetry-After: 5\r\n\r\n{"gen'
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        err = fail(client)
    assert (err.status_code, err.request_id, err.retry_after) == (200, "id-42", 5.0)
    assert "truncated body: 5 of 100 bytes" in err.message
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generations_by_user_id("u", limit=10, offset=20)
    assert caught.value.url == url + "/v1/generations/user/u?limit=10&offset=20"  # the request that failed: its query


@pytest.mark.parametrize("status, cap", [(200, "MAX_ANSWER"), (404, "MAX_ERROR_BODY")])
def test_a_body_that_inflates_past_its_cap_is_a_leonardo_error_not_all_of_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, status: int, cap: str
) -> None:
    # A few kB of gzip can inflate to gigabytes: it was all held (a bare MemoryError, or the OOM killer).
    monkeypatch.setattr(client_module, "MAX_ANSWER", 2 * 2**20)  # each cap, lowered to 2 MiB here (64 MiB, 1 MiB)
    monkeypatch.setattr(client_module, "MAX_ERROR_BODY", 2 * 2**20)
    body = gzip.compress(b'{"generations_by_pk": null}' + b" " * (2 * 2**20))  # 2 KB of gzip, 2 MiB inflated
    head = f"HTTP/1.1 {status} X\r\nContent-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    answers = [head + body] * (1 if status == 200 else 2)
    with raw_server(*answers) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as c:
        err = fail(c)
        if status != 200:  # a download's error status: its body too, and said as a download's failure
            with pytest.raises(LeonardoError, match="^HTTP 404: download failed: answer of more than 2 MiB: not read"):
                c.download_image(url + "/image.png", tmp_path / "image.png")
    assert (type(err), err.status_code, err.message) == (LeonardoError, status, "answer of more than 2 MiB: not read")
    monkeypatch.setattr(client_module, cap, len(b'{"generations_by_pk": null}') + 2 * 2**20)  # just its cap: read
    with raw_server(head + body) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        if status == 200:
            assert client.get_generation_by_id("g") == {"generations_by_pk": None}  # within its cap: read
        else:
            assert "not read" not in fail(client).message  # the error said from its body, as any


def test_what_a_hostile_answer_makes_urllib3_raise_before_an_answer_is_a_leonardo_error() -> None:
    # urllib3 1.26 drains a retried answer's body: a Content-Length of 2**63 was a bare OverflowError from http.client.
    answer = b"HTTP/1.1 503 X\r\nContent-Length: 9223372036854775808\r\n\r\n{}"
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=1, timeout=0.5) as client:
        assert type(fail(client)) is LeonardoError  # urllib3 2 refuses the length: its retry times out here


def test_a_redirects_body_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests read it whole to free the connection, uncapped (255 KB of gzip took 515 MiB), and, cut short, a
    # RuntimeError of urllib3 2's escaped every call.
    bomb = gzip.compress(b" " * (8 * 2**20))
    head = "HTTP/1.1 {} X\r\nLocation: /v1/generations/g2\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n"
    moved = head.format(307, len(bomb)).encode() + bomb
    cut = head.format(302, len(bomb)).encode() + bomb[: len(bomb) // 2]
    found = b'HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{"generations_by_pk": 1}'
    with raw_server(moved) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        tracemalloc.start()
        try:
            with pytest.raises(LeonardoError) as info:
                new_generation(client)  # a POST follows no redirect
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 2**20 and (info.value.status_code, info.value.message) == (
        307, "X (no error message in the empty response body)" + MADE_HINT)  # a 307 may say it was done
    with raw_server(cut, found) as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        assert client.get_generation_by_id("g") == {"generations_by_pk": 1}  # a GET follows it


@pytest.mark.parametrize("codings, says", [("gzip", "incorrect header check"), (", ".join(["gzip"] * 10), "10 > 5|header")])
def test_a_whole_body_that_cannot_be_decoded_says_so_and_is_not_sent_again(codings: str, says: str) -> None:
    # It was "connection broke ... (truncated body: 0 of 2 bytes)" and sent again, to come the same again.
    answer = f"HTTP/1.1 200 OK\r\nContent-Encoding: {codings}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    with raw_server(answer) as url, Client(api_key=API_KEY, base_url=url + "/v1", timeout=1) as client:
        err = fail(client)  # a second request would time out: the server answers one
    assert (type(err), err.status_code) == (LeonardoError, 200)
    assert re.match(f"could not decode the response: .*({says})", err.message)  # urllib3 1.26 takes 10 codings


def test_a_body_cut_short_through_an_adapter_of_yours_is_a_leonardo_error(fake: FakeLeonardo) -> None:
    # urllib3 1.26 ends it silently through an adapter that is not the client's: the client compares the length.
    with requests.Session() as session, Client(api_key=fake.api_key, base_url=fake.base_url, session=session) as client:
        session.mount(fake.base_url + "/", requests.adapters.HTTPAdapter())  # the README's policy of your own
        fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, method="POST")
        with pytest.raises(LeonardoError, match=r"\(truncated body: \d+ of \d+ bytes\)") as caught:
            new_generation(client)
    assert (caught.value.status_code, type(caught.value), len(fake.requests)) == (200, LeonardoError, 1)


def test_a_get_whose_200_body_broke_off_is_sent_again(fake: FakeLeonardo, fake_client: Client) -> None:
    # urllib3's retries end with the headers; the body is read after them.
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, method="GET")
    assert fake_client.get_generation_by_id("some-id") == {"generations_by_pk": None}
    assert [r.method for r in fake.requests] == ["GET", "GET"]


def test_a_get_whose_body_broke_off_is_sent_again_after_the_backoff(
    fake: FakeLeonardo, fake_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = []
    monkeypatch.setattr(LeonardoRetry, "sleep", lambda retry, response=None: waits.append(retry.get_backoff_time()))
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=2, method="GET")
    assert fake_client.get_generation_by_id("some-id") == {"generations_by_pk": None}
    assert len(fake.requests) == 3 and len(waits) == 2 and waits[0] == 0 < waits[1]  # backoff grows as urllib3's


LOOPBACK_TLS = os.path.join(os.path.dirname(__file__), "loopback-tls.pem")  # a test certificate for 127.0.0.1 (to 2126)


@contextlib.contextmanager
def tls_server_cutting_gets_short() -> Iterator[Tuple[str, List[bytes]]]:
    """https://127.0.0.1:<port>, and the request lines it got: a GET gets 5 of 100 bytes then a TLS close_notify
    with TCP left open (as ssl's unwrap() does, waiting up to 3 s for the client's); a POST a whole answer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOOPBACK_TLS)
    seen: List[bytes] = []

    def answer(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError, ValueError):
            connection.settimeout(3)
            with context.wrap_socket(connection, server_side=True) as tls:  # it takes over the socket: closed here
                seen.append(tls.recv(65536).split(b"\r\n")[0])
                if seen[-1].startswith(b"POST"):
                    tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')
                    tls.settimeout(0.5)  # kept open until the client hangs up (it was a sleep of 0.5 s)
                    tls.recv(65536)
                else:
                    tls.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"gen')
                    tls.unwrap()

    with serving(answer) as port:
        yield f"https://127.0.0.1:{port}", seen


@contextlib.contextmanager
def serving(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A port on 127.0.0.1 whose connections (10 at most) are each given to ``answer`` in a thread of its own."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.02)  # how soon the accept loop sees the stop
        stop = threading.Event()

        def accept() -> None:
            threads = []
            while not stop.is_set() and len(threads) < 10:
                with contextlib.suppress(socket.timeout):
                    threads.append(threading.Thread(target=answer, args=(server.accept()[0],), daemon=True))
                    threads[-1].start()
            for thread in threads:
                thread.join(5)

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield server.getsockname()[1]
        finally:
            stop.set()
            acceptor.join(10)


def test_a_certificate_refused_ends_a_wait_at_once_as_a_connection_never_made() -> None:
    # A certificate that cannot be verified (a corporate proxy's, no CA bundle) fails every poll the same: the wait
    # rode it out to its timeout (300 s by default), silent. The request never went: nothing can have been acted on.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOOPBACK_TLS)
    handshakes = []

    def answer(connection: socket.socket) -> None:
        handshakes.append(1)
        with connection, contextlib.suppress(OSError, ValueError):
            connection.settimeout(3)
            context.wrap_socket(connection, server_side=True).close()  # the client refuses the handshake

    with serving(answer) as port, Client(api_key=API_KEY, base_url=f"https://127.0.0.1:{port}/v1") as client:
        with pytest.raises(LeonardoError, match="^TLS/SSL error with 127.0.0.1: .*certificate verify failed") as info:
            client.wait_for_generation("g", timeout=3)
        assert never_sent(info.value)
        # What to do about it (it said nothing, after its C source line, "(_ssl.c:1006)")
        hinted = f"verify failed: self.signed certificate; {re.escape(errors.CHECK_TRUST)}$"
        assert re.search(hinted, info.value.message)
        assert len(handshakes) == 1  # not retried either: it fails the same on every try
        session = requests.Session()  # an https proxy's own certificate: urllib3 puts it in a ProxyError
        session.trust_env, session.proxies = False, {"https": f"https://127.0.0.1:{port}"}
        with Client(api_key=API_KEY, base_url=BASE, session=session) as proxied:
            with pytest.raises(LeonardoError, match="(through the proxy|with leonardo.example.test): .*verify failed"):
                proxied.wait_for_generation("g", timeout=3)  # (urllib3 1.26: an SSLError of the host's)
        assert len(handshakes) == 2


def test_a_certificate_for_another_host_name_is_a_request_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3 1.26.0-1.26.9 check the name with ssl.match_hostname, whose error has no reason nor library: reading
    # them raised a raw AttributeError out of every call (a traceback on the command line).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOOPBACK_TLS)  # for 127.0.0.1, asked for as localhost

    def answer(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError, ValueError):
            connection.settimeout(3)
            context.wrap_socket(connection, server_side=True).close()

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", LOOPBACK_TLS)  # requests prefers it to any other setting
    with serving(answer) as port, Client(api_key=API_KEY, base_url=f"https://localhost:{port}/v1") as client:
        with pytest.raises(LeonardoError, match="^TLS/SSL error with localhost: .*(?i:hostname)") as info:
            client.create_generation({"prompt": "p"})
    # Its text, not str()'s tuple of it (1.26), nor ssl's C source line, nor the hint for an issuer not trusted
    assert re.fullmatch("TLS/SSL error with localhost: [^(;]*(?i:hostname)[^(;]*", info.value.message)
    assert never_sent(info.value) and not may_have_run(info.value)


@pytest.mark.parametrize(
    "answer, said, tries",
    [
        ("407 Proxy Authentication Required", "the proxy refused the connection to", 1),  # its user or password
        ("403 Forbidden", "the proxy refused the connection to", 1),
        ("301 Moved Permanently", "the proxy refused the connection to", 1),  # no tunnel to follow: not a 5xx's
        ("502 Bad Gateway", "the proxy could not connect to", 3),  # could not reach Leonardo a moment
        ("503 Service Unavailable", "the proxy could not connect to", 3),
    ],
)
def test_a_proxy_answering_connect_with_no_200_is_a_request_never_sent(answer: str, said: str, tries: int) -> None:
    # Nothing goes past a proxy before its 200 to CONNECT, yet a create call said "it may have been made (and
    # billed)" (a batch reconciled). A 4xx refuses every try the same (a GET asked 4 times): not retried; a 5xx
    # may pass next time: retried by the rule for a connection never made, a POST's too (it was taken for a 407).
    connects: List[bytes] = []

    def proxy(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(3)
            connects.append(connection.recv(65536).split(b" ")[0])
            connection.sendall(f"HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n".encode())

    with serving(proxy) as port, requests.Session() as session:
        session.trust_env, session.proxies = False, {"https": f"http://127.0.0.1:{port}"}
        with Client(api_key=API_KEY, base_url=BASE, session=session, backoff_factor=0, max_retries=2) as client:
            for call in (client.get_user_info, partial(client.create_generation, {"prompt": "p"})):
                with pytest.raises(LeonardoError) as info:
                    call()
                assert info.value.message == f"{said} leonardo.example.test: {answer}"
                assert never_sent(info.value) and not may_have_run(info.value)
    assert connects == [b"CONNECT"] * 2 * tries



def test_a_proxy_refusal_without_its_traceback_is_still_a_request_never_sent() -> None:
    # Built or re-raised by an adapter of the caller's, a tunnel's refusal has no _tunnel frame: its text, which the
    # message is worded from, says it too (without it, "the proxy refused" was said of a call that "may have run").
    tunnel = OSError("Tunnel connection failed: 407 Proxy Authentication Required")
    cause = urllib3.exceptions.ProxyError("Cannot connect to proxy.", tunnel)
    exc = requests.exceptions.ProxyError(urllib3.exceptions.MaxRetryError(None, BASE + "/me", cause))
    error = LeonardoError.from_transport(exc, "POST", BASE + "/generations")
    assert error.message.startswith("the proxy refused the connection to")
    assert never_sent(error) and not may_have_run(error)

def plain_http(connection: socket.socket) -> None:
    """A server speaking plain HTTP, where an https URL or a proxy's CONNECT expects TLS or a 200: the handshake fails."""
    with connection, contextlib.suppress(OSError):
        connection.settimeout(3)
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def hanging_up(connection: socket.socket) -> None:
    """A proxy that closes the connection on CONNECT, saying nothing."""
    with connection, contextlib.suppress(OSError):
        connection.settimeout(3)
        connection.recv(65536)


def tunnelling_to_plain_http(connection: socket.socket) -> None:
    """An https:// proxy (TLS to it) whose tunnel reaches a server speaking plain HTTP: the handshake in it fails."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOOPBACK_TLS)
    with connection, contextlib.suppress(OSError, ValueError):
        connection.settimeout(3)
        tls = context.wrap_socket(connection, server_side=True)
        tls.recv(65536)
        tls.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        plain_http(tls)


def answering_past_tls(connection: socket.socket) -> None:
    """A TLS server that reads the request, then answers in plain bytes under TLS: a TLS error while reading."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(LOOPBACK_TLS)
    with connection, contextlib.suppress(OSError, ValueError):
        connection.settimeout(3)
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(65536)
            os.write(tls.fileno(), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            time.sleep(0.5)


@pytest.mark.parametrize(
    "server, proxy, said, sent",
    [
        (plain_http, "", "TLS/SSL error with 127.0.0.1: [SSL: WRONG_VERSION_NUMBER] wrong version number", False),
        (hanging_up, "http", "could not connect through the proxy: Remote end closed connection without response", False),
        # TLS in TLS: its handshake runs in ssl.SSLObject's, not ssl.SSLSocket's (urllib3 1.26.20 says it as the proxy's)
        (tunnelling_to_plain_http, "https", ("TLS/SSL error with leonardo.example.test: [SSL: WRONG_VERSION_NUMBER]",
                                             "could not connect through the proxy: [SSL: WRONG_VERSION_NUMBER]"), False),
        (answering_past_tls, "", "TLS/SSL error with 127.0.0.1: [SSL: ", True),
    ],
)
def test_a_tls_handshake_or_a_proxys_connect_that_failed_is_a_request_never_sent(
    monkeypatch: pytest.MonkeyPatch, server: Callable[[socket.socket], None], proxy: str, said: Any, sent: bool
) -> None:
    # Both said a create call "may have been made (and billed)", and a batch reconciled it: no byte of a request goes
    # before its TLS handshake is done, nor past a proxy before its 200 to CONNECT (urllib3 2 said the proxy's hang-up
    # as "connection failed"). A TLS error once the request went may have come after the server acted on it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", LOOPBACK_TLS)
    with serving(server) as port, requests.Session() as session:
        session.proxies = {"https": f"{proxy}://127.0.0.1:{port}"} if proxy else {}
        base = BASE if proxy else f"https://127.0.0.1:{port}/v1"
        with Client(api_key=API_KEY, base_url=base, session=session, max_retries=0) as client:
            err = create_failure(client, "create_generation")
    assert err.message.startswith(said)
    assert never_sent(err) is not sent and may_have_run(err) is sent and ("may have been made" in str(err)) is sent


@pytest.mark.parametrize("content", ["der", "text", "pem"])
def test_a_ca_bundle_holding_no_pem_certificate_is_a_request_never_sent_nor_retried(monkeypatch, tmp_path, content):
    # A DER .cer, as corporate IT hands them out, or any other file: OpenSSL loads no certificate from it, before any
    # handshake. A create call said "it may have been made (and billed)", and a GET loaded it 4 times. A PEM block
    # that holds no certificate is "[X509] PEM lib", no reason given.
    with open(LOOPBACK_TLS) as pem:
        der = ssl.PEM_cert_to_DER_cert(pem.read().split("-----BEGIN PRIVATE KEY")[0])
    bundle = tmp_path / "corp-ca.cer"
    pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    bundle.write_bytes({"der": der, "pem": pem}.get(content, b"not a certificate"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    loaded = []
    load = ssl.SSLContext.load_verify_locations
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", lambda *a, **k: loaded.append(1) or load(*a, **k))
    with serving(lambda connection: connection.close()) as port:
        with Client(api_key=API_KEY, base_url=f"https://127.0.0.1:{port}/v1", backoff_factor=0) as client:
            assert_refused_before_sending(client, ".*X509", errors.CHECK_CA_BUNDLE)
    assert len(loaded) == 2  # once each: it fails the same on every try


def assert_refused_before_sending(client: Client, said: str, hint: str) -> None:
    """A GET and a create call each fail with a TLS error ending with ``hint``, as requests never sent."""
    for call in (client.get_user_info, partial(client.create_generation, {"prompt": "p"})):
        with pytest.raises(LeonardoError, match="^TLS/SSL error with 127.0.0.1: " + said) as info:
            call()
        assert info.value.message.endswith(hint)
        assert never_sent(info.value) and not may_have_run(info.value)


# Keys of no certificate's (made for these tests): an RSA one, as the loopback certificate's, and an EC one.
OTHER_KEYS = {"rsa": """-----BEGIN PRIVATE KEY-----
MIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEA2MYMTsrkl8uVovzX
nBCQ/3DFV/myLc76Wur2lW+eiTnaVl0tMVDxkhKPKmHAsQgxFbKhAf/HbzixLiXt
NATYtwIDAQABAkEAtmJLUK/cjOq5R5y8O46ksIbNQyvPAkO22HAAb9Kt7H22vvfi
p1haC5uKnMmCkB1lZckrElqGiFzWY3vTb0vIQQIhAP+jNn+CKgJ5pocjU2Kh7Lvc
AGlsQZxWLcTifidu1+EvAiEA2RS6oBgG0YMawTcUdjGTNvX+R5OjDPsguyfI3vTZ
zvkCIQCVkx/uF3ERJbDEXW0KxwfHG4C6LndtTBdXndaGqBp0TQIgeCKlqaXCWD5z
FwzRcRu8egUnRRtqd+ue0JSS8PiWdZkCIQDtED2j80ph98ruISLEZSi3T0LXiKJf
7gGokliBqiaVLA==
-----END PRIVATE KEY-----
""", "ec": """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpl2XJXp+ZjQjKKcf
CpCJ7uZlUGjop2+QaVoHaSet3xehRANCAASdc5dxYqSURuG6TjX3JqFBic9h4KYi
jAXHvNXZ17w+7SX++d32zYiKdYRvvUAczFxjJ39X6lsOriNIpdsgX+6f
-----END PRIVATE KEY-----
"""}


@pytest.mark.parametrize("key", ["rsa", "ec", "garbage"])
def test_a_client_certificate_that_cannot_be_loaded_is_a_request_never_sent_nor_retried(monkeypatch, tmp_path, key):
    # session.cert with a key of another ([X509: KEY_VALUES_MISMATCH], [SSL: NO_CERTIFICATE_ASSIGNED]), or no PEM in
    # it ([SSL] PEM lib): OpenSSL refuses it before any handshake. The first said to check REQUESTS_CA_BUNDLE; the
    # others that a create call may have been made (and billed), and a GET loaded it 4 times.
    key_file = tmp_path / "client.key"
    key_file.write_text(OTHER_KEYS.get(key, "garbage"))
    loaded = []
    load = ssl.SSLContext.load_cert_chain
    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", lambda *a, **k: loaded.append(1) or load(*a, **k))
    with serving(lambda connection: connection.close()) as port, requests.Session() as session:
        session.verify, session.cert = LOOPBACK_TLS, (LOOPBACK_TLS, str(key_file))
        with Client(api_key=API_KEY, base_url=f"https://127.0.0.1:{port}/v1", session=session, backoff_factor=0) as client:
            assert_refused_before_sending(client, "", errors.CHECK_CERT)
    assert len(loaded) == 2  # once each: it fails the same on every try


def test_a_body_cut_short_over_tls_does_not_leave_its_connection_to_the_next_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # urllib3 1.26 pooled that connection, dead: the GET's retries failed on it at once ("Remote end
    # closed connection without response"), and so did the next request, a create call, never sent.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", LOOPBACK_TLS)  # requests prefers it to any other setting
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with tls_server_cutting_gets_short() as (url, seen):
        with Client(api_key=API_KEY, base_url=url + "/api/rest/v1", backoff_factor=0, timeout=(3, 3)) as client:
            with pytest.raises(LeonardoError) as info:
                client.get_generation_by_id("g")
            assert info.value.message == "connection broke while reading the response (truncated body: 5 of 100 bytes)"
            assert client.create_generation({"prompt": "p"}) == {}
    assert [line.split()[0] for line in seen] == [b"GET"] * 4 + [b"POST"]


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_an_empty_ca_bundle_setting_leaves_certificates_verified_as_the_session_says() -> None:
    # requests 2.25-2.27 hand the adapter verify="" when CURL_CA_BUNDLE or REQUESTS_CA_BUNDLE is set but empty,
    # which HTTPAdapter takes as "do not verify": the key went to a server with any certificate.
    trusting = requests.Session()
    trusting.verify = False  # a caller's choice: it stands
    with tls_server_cutting_gets_short() as (url, seen), Client(api_key=API_KEY, base_url=url + "/v1") as own, \
            Client(api_key=API_KEY, base_url=url + "/v1", session=trusting) as theirs:
        request = requests.Request("POST", url + "/v1/generations").prepare()
        for adapter in (own._adapter, own._session.get_adapter("https://cdn.example.test/")):  # the API's, downloads'
            with pytest.raises(requests.exceptions.SSLError):
                adapter.send(request, verify="", timeout=3)
        assert theirs._adapter.send(request, verify="", timeout=3).status_code == 200
    assert seen == [b"POST /v1/generations HTTP/1.1"]


def test_an_error_status_whose_body_broke_off_is_not_sent_again(fake: FakeLeonardo, fake_client: Client) -> None:
    fake.inject(status=404, body=TRUNCATED, truncate=True, times=1, method="GET")  # urllib3 would have retried a 503
    with pytest.raises(LeonardoError, match="truncated") as info:
        fake_client.get_generation_by_id("some-id")
    assert info.value.status_code == 404 and len(fake.requests) == 1


@pytest.mark.parametrize("max_retries, sent", [(1, 2), (2, 3)])
def test_a_get_sent_again_after_a_broken_body_spends_the_same_retries(
    fake: FakeLeonardo, make_fake_client: Callable[..., Client], max_retries: int, sent: int
) -> None:
    fake.inject(status=503, times=1, method="GET")  # one retry spent by urllib3
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, method="GET")  # then the body breaks
    with make_fake_client(max_retries=max_retries) as client:
        if max_retries == 1:
            with pytest.raises(LeonardoError, match="truncated"):
                client.get_generation_by_id("some-id")
        else:
            assert client.get_generation_by_id("some-id") == {"generations_by_pk": None}
    assert len(fake.requests) == sent  # not (max_retries + 1) ** 2


@pytest.mark.parametrize("total", [0, 2])
def test_a_get_sent_again_through_an_adapter_of_your_own_keeps_to_its_rule(fake: FakeLeonardo, total: int) -> None:
    # The README's "policy of your own": its adapter starts each try afresh; the client counts on.
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=None, method="GET")
    with requests.Session() as session:
        client = Client(api_key=fake.api_key, base_url=fake.base_url, session=session, timeout=(2, 5))
        rule = urllib3.util.retry.Retry(total=total, backoff_factor=0, allowed_methods=["GET"], raise_on_status=False)
        session.mount(client.base_url + "/", requests.adapters.HTTPAdapter(max_retries=rule))
        with pytest.raises(LeonardoError, match="truncated"):
            client.get_generation_by_id("some-id")
    assert len(fake.requests) == total + 1


def test_a_get_sent_again_leaves_your_own_requests_through_the_session_their_retries(
    fake: FakeLeonardo, make_fake_client: Callable[..., Client]
) -> None:
    # The rule's state the resend went on from stayed with the thread: a request of yours on the API root (the
    # client's adapter mounted there) started from it, its one retry spent, and the 503 was the answer.
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, path="/generations/*")
    fake.inject(status=503, times=1, path="/me")
    with requests.Session() as session, make_fake_client(session=session, max_retries=1) as client:
        assert client.get_generation_by_id("some-id") == {"generations_by_pk": None}  # sent again, its retry spent
        answer = session.get(client.base_url + "/me", headers={"Authorization": "Bearer " + fake.api_key}, timeout=5)
    assert answer.status_code == 200 and len(fake.requests) == 4


def test_an_adapter_of_your_own_mounted_as_the_readme_says_covers_the_v2_calls_too(fake: FakeLeonardo) -> None:
    fake.inject(status=503, times=None, path="/api/rest/v2/models")
    with requests.Session() as session:
        client = Client(api_key=fake.api_key, base_url=fake.base_url, session=session, timeout=(2, 5))
        rule = urllib3.util.retry.Retry(total=0, raise_on_status=False)
        for root in (client.base_url, client.v2_url):  # the client's rule would send it 4 times
            session.mount(root + "/", requests.adapters.HTTPAdapter(max_retries=rule))
        with pytest.raises(LeonardoError, match="503"):
            client.get_models_v2()
    assert len(fake.requests) == 1


def test_a_delete_whose_body_broke_off_is_not_sent_again(fake: FakeLeonardo, fake_client: Client) -> None:
    # Done once, a DELETE sent again would answer that nothing is there.
    fake.inject(status=200, body=TRUNCATED, truncate=True, times=1, method="DELETE")
    with pytest.raises(LeonardoError, match="truncated"):
        fake_client.delete_generation_by_id("some-id")
    assert [r.method for r in fake.requests] == ["DELETE"]


def test_a_204_with_a_content_length_is_not_truncated(mocked, mock_client):
    mocked.add("DELETE", GEN_URL, status=204, headers={"Content-Length": "7"}, match=api_matchers())  # a 204 has no body
    assert mock_client.delete_generation_by_id("g") == {}


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "5"}])  # which a 1xx must not send: it has no body
def test_an_interim_answer_says_the_request_may_have_been_acted_on(mocked, mock_client, headers):
    mocked.add("POST", BASE + "/generations", status=103, body="", headers=headers, match=api_matchers({"prompt": "a fox"}))
    with pytest.raises(LeonardoError, match="interim answer, the final one not read: the request may have been acted on"):
        mock_client.create_generation({"prompt": "a fox"})


def read_request(connection: socket.socket, data: bytes) -> Tuple[str, bytes]:
    """The request line of the request ``data`` and what the connection sends next start with (its body read
    past), and what follows it; "" when the connection closed first."""
    for _ in range(100):
        head, end, rest = data.partition(b"\r\n\r\n")
        found = re.search(rb"(?im)^content-length: *([0-9]+)", head)
        length = int(found.group(1)) if found else 0
        if end and len(rest) >= length:
            return head.split(b"\r\n")[0].decode(), rest[length:]
        more = connection.recv(65536)
        if not more:
            break
        data += more
    return "", b""


@contextlib.contextmanager
def server_sending_early_hints() -> Iterator[str]:
    """http://127.0.0.1:<port>, answering each request with {"answer_to": its request line}; a GET .../me first
    gets a 103, and its final answer only once the next request came on that connection (or it closed)."""

    def answer(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.settimeout(3)
            pending = read_request(connection, b"")
            while pending[0]:  # each turn reads a request, or the connection's end
                line, rest = pending
                body = json.dumps({"answer_to": line}).encode()
                early = line.startswith("GET /v1/me ")
                if early:
                    connection.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
                    pending = read_request(connection, rest)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                if not early:
                    pending = read_request(connection, rest)

    with serving(answer) as port:
        yield f"http://127.0.0.1:{port}"


def test_a_connection_that_gave_an_interim_answer_is_not_used_again() -> None:
    # Pooled, it held the interim answer's final one: the next call read that as its own (a create call's
    # answer was the GET's, the generation started all the same).
    with server_sending_early_hints() as url, Client(api_key=API_KEY, base_url=url + "/v1", max_retries=0) as client:
        with pytest.raises(LeonardoError, match="interim answer"):
            client.get_user_info()
        assert client.create_generation({"prompt": "p"}) == {"answer_to": "POST /v1/generations HTTP/1.1"}


def test_truncated_error_body_is_a_leonardo_error(fake: FakeLeonardo, make_fake_client: Callable[..., Client]) -> None:
    fake.inject(status=502, truncate=True, times=None, method="GET")
    with make_fake_client(max_retries=1) as client:
        with pytest.raises(LeonardoError) as caught:
            client.get_generation_by_id("some-id")
    err = caught.value
    assert err.status_code == 502
    assert "truncated" in err.message
    assert '{"error"' not in err.message  # never half a JSON document as the message
    assert len(fake.requests) == 2


# --- the API's own validation answers, end to end ------------------------------------------------


ARG1 = "$.selectionSet.sdGenerationJob.args.arg1."  # the path of a value the API refuses in the body (API_FACTS 1.1)


@pytest.mark.parametrize(
    "body, message, code, path",
    [
        ({"prompt": "x", "sd_Version": "v2"}, "Unexpected variable sd_Version", "bad-request", "$"),
        ({"negative_prompt": "no prompt"}, 'expecting a value for non-nullable variable: "prompt"',
         "validation-failed", "$"),
        ({"prompt": "x", "photoReal": "yes"}, "expected a boolean for type 'Boolean', but found a string",
         "validation-failed", ARG1 + "photoReal"),
        ({"prompt": "x", "width": 1024, "height": 1024, "num_images": 5}, "Too many images", "unexpected", "$"),
        ({"prompt": "x", "elements": [{"akUUID": "a", "wieght": 1}]}, "field \"wieght\" not found in type: "
         "'element_input'", "validation-failed", ARG1 + "elements[0].wieght"),
    ],
)
def test_validation_error_surfaces_with_the_api_message(
    fake: FakeLeonardo, fake_client: Client, body: Dict[str, Any], message: str, code: str, path: str
) -> None:
    with pytest.raises(LeonardoError) as caught:
        fake_client.create_generation(body)
    err = caught.value
    assert err.status_code == 400
    assert err.message == message
    assert err.body == {"error": message, "path": path, "code": code}
    assert err.method == "POST" and err.url == fake.base_url + "/generations"
    assert str(err) == "HTTP 400: %s (POST %s/generations)" % (message, fake.base_url)
    assert len(fake.requests) == 1  # a 400 is never retried
    assert fake.generation_ids() == []


# --- the exception itself -----------------------------------------------------------------------


def test_str_is_one_line_with_status_message_and_request():
    err = LeonardoError("first\nsecond\r\n\tthird  ", status_code=400, method="POST", url="https://h/x")
    assert str(err) == "HTTP 400: first second third (POST https://h/x)"
    assert str(LeonardoError("no status")) == "no status"
    assert str(LeonardoError(None)) == "None"  # as str(Exception(None)); was AttributeError
    assert str(LeonardoError("m", status_code=None, method="GET", url="u")) == "m (GET u)"
    assert str(LeonardoError("m", url="u")) == "m"  # no method: no request to show
    assert err.message == "first\nsecond\r\n\tthird  "  # the attribute keeps the text as given


def test_str_shows_the_start_and_end_of_a_long_message_or_url():
    # A server's 1,000,000-character error was a 1 MB str(err); a redirect may lead to as long a URL.
    message = "start " + "x" * 1_000_000 + " (after 2 retries)"
    err = LeonardoError(message, status_code=400, method="GET", url="https://h/" + "u" * 100_000 + "/end")
    text = str(err)
    assert text.startswith("HTTP 400: start xxx") and " ... xxx" in text and text.endswith("/end)")
    assert "xxx (after 2 retries) (GET https://h/uuu" in text and len(text) < 700
    assert err.message == message  # whole


def test_str_shows_a_message_of_305_characters_whole_and_cuts_a_longer_one_to_305():
    assert str(LeonardoError("m" * 305)) == "m" * 305
    assert str(LeonardoError("m" * 200 + "s" * 106)) == "m" * 200 + " ... " + "s" * 100


def test_str_escapes_what_would_drive_a_terminal():
    # A server's ESC sequences, BEL, DEL or bidi override reached the terminal raw (clear it, retitle it...).
    message = "bad\x1b[31m red \x1b]0;title\x07\x7f \u202eé"
    assert str(LeonardoError(message, status_code=400)) == "HTTP 400: bad\\x1b[31m red \\x1b]0;title\\x07\\x7f \\u202eé"
    assert LeonardoError(message).message == message


def test_repr():
    assert repr(LeonardoError("m", status_code=404)) == "LeonardoError(status_code=404, message='m')"


def test_is_an_exception_with_args():
    err = LeonardoError("m", status_code=500)
    assert isinstance(err, Exception)
    assert err.args == ("m",)


def test_pickling_round_trips_every_attribute(mocked, mock_client):
    mocked.add(
        "GET",
        GEN_URL,
        status=429,
        json={"error": "slow", "path": "$", "code": "unexpected"},
        headers={"x-request-id": "req-9", "Retry-After": "12"},
        match=api_matchers(),
    )
    err = fail(mock_client)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is LeonardoError
    attributes = ("message", "status_code", "body", "method", "url", "request_id", "retry_after")
    assert {a: getattr(copy, a) for a in attributes} == {a: getattr(err, a) for a in attributes}
    assert str(copy) == str(err)
    assert copy.request_id == "req-9" and copy.retry_after == 12.0


def test_every_failure_is_caught_by_one_except(mocked, mock_client):
    outcomes: Any = []
    mocked.add("GET", BASE + "/generations/a", status=500, body="", match=api_matchers())
    mocked.add("GET", BASE + "/generations/b", status=200, body="nope", match=api_matchers())
    mocked.add("GET", BASE + "/generations/c", body=requests.ConnectionError("down"), match=api_matchers())
    for ident in "abc":
        try:
            mock_client.get_generation_by_id(ident)
        except LeonardoError as err:
            outcomes.append(err.status_code)
    assert outcomes == [500, 200, None]


def test_a_url_urllib3_cannot_parse_is_named_not_the_error_it_hit_doing_so() -> None:
    try:  # urllib3 2.0-2.6 raise LocationParseError from an AttributeError of their own parser's
        try:
            raise AttributeError("'NoneType' object has no attribute 'groups'")
        except AttributeError as inner:
            raise LocationParseError("http://alice:secret@127.0.0.1:9") from inner
    except LocationParseError as exc:
        error = LeonardoError.from_transport(exc, "GET", BASE + "/me")
    assert error.message == "request to leonardo.example.test failed: Failed to parse: http://127.0.0.1:9"  # no password


def test_json_from_outside_nested_too_deep_is_a_value_error() -> None:
    # CPython before 3.11 can abort the process (not raise) on JSON nested near its recursion limit, so it
    # is measured first, and refused past 200 levels before json recurses: on every Python, as 3.12 reads
    # 1,500 levels that json.dumps (the CLI's get) then cannot write.
    with pytest.raises(ValueError, match="nested deeper than 200 levels"):
        parse_json("[" * 100000)
    with pytest.raises(ValueError, match="nested deeper than 200 levels"):
        parse_json("[" * 600 + "]" * 600)  # was read on 3.11 and later
    nested = parse_json("[" * 200 + "]" * 200)  # 200 levels are read
    for _ in range(199):
        (nested,) = nested
    assert nested == []
    assert errors._nested_too_deep("[" * 201) and not errors._nested_too_deep("[" * 200 + "]" * 200)
    assert parse_json("[" * 200 + "]" * 199 + ", []]")  # 201 brackets, 200 levels: read
    in_a_string = b'{"a": "' + b"[" * 500 + b'"}'  # text, not nesting
    assert not errors._nested_too_deep(in_a_string) and parse_json(in_a_string) == {"a": "[" * 500}
    with pytest.raises(ValueError, match="nested deeper than 200 levels"):  # was parsed: a "]" in a string hid a level
        parse_json('["]",' * 300 + "0" + "]" * 300)
    with pytest.raises(ValueError, match="nested deeper than 200 levels"):  # was parsed: U+2200 holds a '"' byte
        parse_json(('["\u2200]",' * 300 + "0" + "]" * 300).encode("utf-16-le"))
    # An unterminated string runs to the end, as json reads it (80 KB of \" once took 18 s, a quadratic scan).
    for tail in (b"", b"\\"):  # ending in a lone backslash too
        assert errors._nested_too_deep(b"[" * 201 + b'"' + b'\\"' * 1000 + b"]" * 201 + tail)
    text = "[" + '"\\\\", "\\\\\\"[", ' * 500 + "0]"  # strings of \\ and \", and "[": nesting if paired wrong
    assert parse_json(text)[:2] == ["\\", '\\"['] and not errors._nested_too_deep(text)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="json's C scanner has its own depth limit from 3.12")
def test_json_read_at_the_recursion_limit_is_a_value_error_not_a_recursion_error() -> None:
    # A program deep in its own recursion: json's scanner meets the limit within the 200 levels read.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 30)
    try:
        with pytest.raises(ValueError, match="^JSON nested too deep for the recursion limit left$"):
            parse_json("[" * 150 + "]" * 150)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize(
    "variable, value, says, surely_unsent",
    # requests raised a bare OSError
    [("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem", "CA certificate bundle, .*; check REQUESTS_CA_BUNDLE", True),
     # requests 2.26+: a TypeError, which a hostile answer could raise too: not taken as surely unsent
     ("HTTPS_PROXY", "http://u:pw@", "request to leonardo.example.test failed", False)],
)
def test_an_environment_requests_cannot_use_is_a_leonardo_error(monkeypatch, variable, value, says, surely_unsent):
    monkeypatch.setenv(variable, value)
    with pytest.raises(LeonardoError, match=says) as info:
        Client(api_key=API_KEY, base_url=BASE, max_retries=0).get_user_info()
    refused = isinstance(info.value.__cause__, requests.exceptions.InvalidProxyURL)  # requests 2.25's: never sent
    assert never_sent(info.value) is (surely_unsent or refused)  # an OSError before it left: a batch sends it again


def test_a_download_whose_file_cannot_be_written_raises_the_os_error(fake, fake_client, monkeypatch, tmp_path):
    def full(path, chunks):
        next(chunks)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_files, "write_atomically", full)
    with pytest.raises(OSError, match="No space left") as info:
        fake_client.download_image(fake.blob_url(10), str(tmp_path / "x.bin"))
    assert not isinstance(info.value, LeonardoError)  # the file's error, not the request's


@pytest.mark.parametrize("length", ["²", "9" * 5000])
def test_a_content_length_urllib3_cannot_read_is_no_length_to_fall_short_of(mocked, mock_client, length):
    # "²" is a digit to str.isdigit() and none to int(); int() refuses 5,000 digits (Python 3.11+).
    # urllib3 reads such a body to its end.
    mocked.add("GET", GEN_URL, json={"generations_by_pk": None}, headers={"Content-Length": length},
                match=api_matchers())
    assert mock_client.get_generation_by_id("g") == {"generations_by_pk": None}


@pytest.mark.parametrize("exc, said", [
    (FileExistsError(17, "File exists", "afile"), "'afile': File exists"),  # str(): "[Errno 17] File exists: 'afile'"
    (IsADirectoryError(21, "Is a directory", "a", None, "b"), "'a' -> 'b': Is a directory"),  # a rename: was 'a' alone
    (OSError(28, "No space left on device"), "No space left on device"),  # stdout full: no file named
    (OSError("could not find a CA bundle"), "could not find a CA bundle"),  # no errno: as str() says it
    (LeonardoError("HTTP 500: boom"), "HTTP 500: boom"),
])  # fmt: skip
def test_error_text_says_an_oserror_without_its_errno(exc, said):
    # The examples and the command line say a file problem with it, in one plain line.
    assert errors.error_text(exc) == said


def test_a_transport_oserror_naming_a_file_says_the_file_as_error_text_does():
    err = LeonardoError.from_transport(FileNotFoundError(2, "No such file or directory", "/no/ca.pem"), "GET", GEN_URL)
    assert err.message == "request to leonardo.example.test failed: '/no/ca.pem': No such file or directory"
