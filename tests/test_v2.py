"""Today's Leonardo beyond the 13: v2 generations, GET /me, init-image uploads, retired endpoints.

Every exchange is mocked with ``responses`` and strict matchers; the S3 form POST is checked
part by part (fields first, the file last) and for the absence of every API header.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import warnings
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import responses

from conftest import API_KEY, BASE, TIMEOUT, V2_BASE, api_matchers, download_matchers
from leonardo_client import (
    Client, CreateGenerationRequest, CreateSvdMotionGenerationRequest, CreateTextureGenerationRequest,
    GenerationV2Request, LeonardoError, V2Model, generation_id, to_payload
)
from leonardo_client.testing import FakeLeonardo
from leonardo_client.testing.media import render_png

S3 = "https://uploads.example.test/bucket"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def written(data: bytes) -> io.BytesIO:
    """A buffer ``data`` was written to, left at its end (as after ``image.save(buffer)``)."""
    buffer = io.BytesIO()
    buffer.write(data)
    return buffer


FIELDS = {"Content-Type": "image/png", "key": "users/u/init/i.png", "policy": "eyJhIjoxfQ==", "x-amz-signature": "abc"}


# --- POST /v2/generations -----------------------------------------------------------------------


def test_create_generation_v2_posts_the_envelope_to_the_v2_root(mocked: responses.RequestsMock, mock_client: Client) -> None:
    answer = {"generate": {"generationId": "g-2", "cost": {"amount": "0.02", "unit": "DOLLARS"}}}
    body = {
        "model": "phoenix-v1.0",
        "public": False,
        "parameters": {"prompt": "a fox", "width": 1024, "height": 768, "quantity": 2, "mode": "QUALITY", "contrast": "HIGH"},
    }
    mocked.add("POST", V2_BASE + "/generations", json=answer, match=api_matchers(body))
    request = GenerationV2Request(
        V2Model.PHOENIX_1_0, "a fox", width=1024, height=768, quantity=2, mode="QUALITY", public=False,
        extra={"contrast": "HIGH"},
    )
    assert mock_client.create_generation_v2(request) == answer
    assert generation_id(answer) == "g-2"


def test_create_generation_v2_sends_a_mapping_as_given(mocked: responses.RequestsMock, mock_client: Client) -> None:
    body = {"model": "any-future-model", "parameters": {"prompt": "x", "brand_new_key": [1, 2]}}
    mocked.add("POST", V2_BASE + "/generations", json={"generationId": "g-3", "apiCreditCost": 12}, match=api_matchers(body))
    assert generation_id(mock_client.create_generation_v2(body)) == "g-3"


def test_v2_needs_a_base_url_ending_in_v1(mocked: responses.RequestsMock) -> None:
    with Client(api_key=API_KEY, base_url="https://proxy.example.test/leonardo") as client:
        with pytest.raises(ValueError, match="does not end in /v1"):
            client.create_generation_v2({"model": "flux-dev", "parameters": {"prompt": "x"}})
        with pytest.raises(ValueError, match="does not end in /v1"):
            client.get_models_v2()
    assert not mocked.calls


def test_a_base_url_ending_in_v1_without_a_slash_has_no_v2_address(mocked: responses.RequestsMock) -> None:
    # Only a last path segment "v1" is swapped for "v2": ".../gatewayv1" must not give a made-up ".../gatewayv2".
    with Client(api_key=API_KEY, base_url="https://proxy.example.test/gatewayv1") as client:
        assert client.v2_url is None
        with pytest.raises(ValueError, match="does not end in /v1"):
            client.get_models_v2()
    with Client(api_key=API_KEY, base_url="https://proxy.example.test/gateway/v1") as client:
        assert client.v2_url == "https://proxy.example.test/gateway/v2"
    assert not mocked.calls


def test_a_request_of_the_wrong_type_is_refused_before_sending(mocked: responses.RequestsMock, mock_client: Client) -> None:
    with pytest.raises(TypeError, match="GenerationV2Request or a mapping"):
        mock_client.create_generation_v2("phoenix-v1.0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="GenerationV2Request.model is required"):
        mock_client.create_generation_v2(GenerationV2Request(None, "a fox"))  # type: ignore[arg-type]
    assert not mocked.calls


def test_extra_cannot_set_a_field_again() -> None:
    with pytest.raises(ValueError, match=r"GenerationV2Request.extra sets 'width' again"):
        to_payload(GenerationV2Request("phoenix-v1.0", "a fox", width=512, extra={"width": 1024}))
    body = to_payload(GenerationV2Request("phoenix-v1.0", "a fox", extra={"width": 1024}))
    assert body == {"model": "phoenix-v1.0", "parameters": {"prompt": "a fox", "width": 1024}}


def test_a_model_that_takes_no_prompt_is_sent_without_one() -> None:
    guidances = {"image_reference": [{"image": {"id": "i-1", "type": "UPLOADED"}}]}
    request = GenerationV2Request("remove-bg", guidances=guidances)  # remove-bg and rodin-v2 refuse a prompt
    assert to_payload(request) == {"model": "remove-bg", "parameters": {"guidances": guidances}}


def test_get_models_v2_and_get_user_info(mocked: responses.RequestsMock, mock_client: Client) -> None:
    models = {"productionApiAvailableModels": [{"id": "GPT_IMAGE_1_5", "name": "GPT Image 1.5", "parameters": {}}]}
    me = {"user_details": [{"user": {"id": "u-1", "username": "ada"}, "apiConcurrencySlots": 10}]}
    mocked.add("GET", V2_BASE + "/models", json=models, match=api_matchers())
    mocked.add("GET", BASE + "/me", json=me, match=api_matchers())
    assert mock_client.get_models_v2() == models
    assert mock_client.get_user_info() == me


# --- generation_id and waiting on a create response -------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        {"sdGenerationJob": {"generationId": "the-id", "apiCreditCost": 5}},
        {"motionSvdGenerationJob": {"generationId": "the-id"}},
        {"generate": {"generationId": "the-id", "cost": {"amount": "1", "unit": "CREDITS"}}},
        {"generationId": "the-id", "apiCreditCost": None},
        {"textureGenerationJob": {"id": "the-id"}},
        {"generate": {"generationId": None}, "generationId": "the-id"},  # recipe shape first, then the spec's
    ],
)
def test_generation_id_reads_every_documented_shape(response: Dict[str, Any]) -> None:
    assert generation_id(response) == "the-id"


def test_generation_id_without_an_id_is_a_clear_error() -> None:
    with pytest.raises(LeonardoError, match="no generation id in the response .keys: sdGenerationJob.; it may"):
        generation_id({"sdGenerationJob": {"cost": {"amount": "1"}}})  # a job without its id: the call ran
    # An LCM result is no create answer (it said "no generation id ... it may have been made (and billed)").
    with pytest.raises(ValueError, match=r"^that is an LCM result, not a create response: .* save_results\(it\)$"):
        generation_id({"lcmGenerationJob": {"imageDataUrl": []}})
    with pytest.raises(LeonardoError, match=r"in the response: Not enough tokens \(keys: sdGenerationJob, errors\); it may"):
        generation_id({"sdGenerationJob": None, "errors": [{"message": "Not enough tokens"}]})  # a 200 holding an error
    # Odd answers a create call may give are the API's, not the caller's mix-up: "it may", not a ValueError.
    for odd in ({"id": "j-1", "status": "PENDING"}, {"status": "error", "id": "r-1", "message": "upstream timeout"},
                {"generations": None, "error": "unexpected"}):
        with pytest.raises(LeonardoError, match="it may have been made"):
            generation_id(odd)
    with pytest.raises(ValueError, match=r"^that is a generation \(status 'COMPLETE'\)"):  # it lists images: a mix-up
        generation_id({"id": "g-1", "status": "COMPLETE", "generated_images": []})
    for unusable in ("", " ", "..", "\udcff"):  # no URL path can hold it: a ValueError from wait_for_generation
        with pytest.raises(LeonardoError, match="no generation id in the response"):
            generation_id({"sdGenerationJob": {"generationId": unusable}})
    with pytest.raises(TypeError):
        generation_id("g-1")  # type: ignore[arg-type]
    # Its advice was the waits': "pass generations_by_pk['id'] (or the create response)", which it refuses (a str).
    said = r"^that is a GET call's answer \(it holds generations_by_pk\), not a create response: generation_id\(\) "
    with pytest.raises(ValueError, match=said + r"reads one; to wait, pass generations_by_pk\['id'\]$"):
        generation_id({"generations_by_pk": {"id": "g-1", "status": "COMPLETE", "generated_images": []}})


def form_parts(request: Any) -> List[Tuple[str, bytes]]:
    """(name, content) of each multipart/form-data part of a prepared request, in order."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    return [(part.get_param("name", header="content-disposition"), part.get_payload(decode=True)) for part in message.iter_parts()]


def s3_form(expect_file: bytes, filename: str) -> Any:
    def match(request: Any) -> Tuple[bool, str]:
        headers = request.headers
        if "Authorization" in headers or "json" in headers.get("Accept", "") or "leonardo" in headers.get("User-Agent", ""):
            return False, f"API headers sent to S3: {dict(headers)}"
        parts = form_parts(request)
        expected = [(k, v.encode()) for k, v in FIELDS.items()] + [("file", expect_file)]
        if parts != expected:
            return False, f"form parts {parts!r} != {expected!r}"
        if f'filename="{filename}"' not in request.body.decode("latin-1"):
            return False, "file part has no file name"
        return True, ""

    return match


def mock_upload(mocked: responses.RequestsMock, extension: str, s3_status: int = 204, **s3: Any) -> Dict[str, Any]:
    upload = {"id": "init-1", "fields": json.dumps(FIELDS), "key": FIELDS["key"], "url": S3}
    mocked.add("POST", BASE + "/init-image", json={"uploadInitImage": upload}, match=api_matchers({"extension": extension}))
    # The form gets none of the client's headers: requests' own User-Agent, and the client's timeout.
    mocked.add("POST", S3, status=s3_status, match=[s3_form(PNG, f"image.{extension}"), *download_matchers(agent=None)], **s3)
    return upload


def test_upload_from_a_path_takes_the_extension_from_its_name(mocked: responses.RequestsMock, mock_client: Client, tmp_path: Any) -> None:
    upload = mock_upload(mocked, "png")
    path = tmp_path / "guide.PNG"
    path.write_bytes(PNG)
    assert mock_client.upload_init_image(path) == upload


@pytest.mark.parametrize("make", [lambda: PNG, lambda: io.BytesIO(PNG)])
def test_upload_from_bytes_or_a_binary_file_with_an_extension(mocked: responses.RequestsMock, mock_client: Client, make: Any) -> None:
    mock_upload(mocked, "webp")
    assert mock_client.upload_init_image(make(), extension="webp")["id"] == "init-1"


@pytest.mark.parametrize("given, sent", [(".png", "png"), (".JPG", "jpg"), ("JPEG", "jpeg")])
def test_an_upload_extension_is_taken_in_any_case_with_or_without_its_dot(
    mocked: responses.RequestsMock, mock_client: Client, given: str, sent: str
) -> None:
    mock_upload(mocked, sent)
    assert mock_client.upload_init_image(PNG, extension=given)["id"] == "init-1"


@pytest.mark.parametrize(
    "file, extension, error, text",
    [
        (PNG, None, ValueError, "extension must be one of png, jpg, jpeg, webp"),
        (PNG, "gif", ValueError, "extension must be one of"),
        (io.StringIO("text"), "png", TypeError, "binary mode"),
        (42, "png", TypeError, "a path, bytes or a binary file"),
        ("/nonexistent/guide.png", None, ValueError, "cannot read"),
        ("/dev/null", "png", ValueError, "cannot read '/dev/null': not a regular file"),  # a FIFO blocked for ever
        (PNG, 0, TypeError, "extension must be a str, not int"),  # was a ValueError, as if none were given
        (b"", "png", ValueError, "^file is empty: nothing to upload$"),  # an empty image was uploaded
        (written(PNG), "png", ValueError, "^nothing left to read in file"),  # a buffer written, never rewound
    ],
)
def test_bad_upload_arguments_send_nothing(mocked: responses.RequestsMock, mock_client: Client, file: Any, extension: Any, error: Any, text: str) -> None:
    with pytest.raises(error, match=text):
        mock_client.upload_init_image(file, extension)
    assert not mocked.calls


def test_an_upload_extension_refused_is_named_and_extension_hinted_only_when_none_is_found(
    mocked: responses.RequestsMock, mock_client: Client, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each said "extension must be one of png, jpg, jpeg, webp (give extension= for bytes)": extension="gif" was
    # told to give extension=, and a GIF's path to label its bytes as another type.
    monkeypatch.chdir(tmp_path)  # short names, as the message quotes them
    Path("logo.gif").write_bytes(b"GIF89a" + bytes(20))
    Path("logo").write_bytes(PNG)
    for args, text in [((PNG, "gif"), ", not 'gif'"), (("logo.gif",), ", not 'gif' (of 'logo.gif')"),
                       ((PNG,), ": bytes have none (give extension=)"),
                       (("logo",), ": 'logo' has none (give extension=)")]:
        with pytest.raises(ValueError, match="^extension must be one of png, jpg, jpeg, webp" + re.escape(text) + "$"):
            mock_client.upload_init_image(*args)
    assert not mocked.calls


def test_s3_refusal_is_a_leonardo_error_with_s3s_own_words(mocked: responses.RequestsMock, mock_client: Client) -> None:
    xml = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestId>R1</RequestId></Error>"
    mock_upload(mocked, "png", s3_status=403, body=xml, content_type="application/xml",
                headers={"x-amz-request-id": "4442587FB7D0A2F9"})
    with pytest.raises(LeonardoError) as info:
        mock_client.upload_init_image(PNG, "png")
    assert (info.value.status_code, info.value.request_id) == (403, "4442587FB7D0A2F9")  # S3's header: it was None
    assert info.value.message.startswith("AccessDenied: Request has expired")
    assert str(info.value).startswith("HTTP 403: AccessDenied: Request has expired")


@pytest.mark.parametrize(
    "upload, says",
    [({"id": "i", "fields": fields, "url": S3}, says) for fields, says in (
        ("not json", "fields is not JSON: Expecting value: line 1 column 1 (char 0)"),
        ('["abc"]', "fields is a JSON list, not an object"), ("5", "fields is a JSON int, not an object"),
        ('"text"', "fields is a JSON str, not an object"), ("[" * 100000, "fields is not JSON: JSON nested deeper than 200 levels"),
        (None, "no fields"), (5, "fields is a JSON int, not an object"))]
    + [({"fields": "{}", "url": S3}, "no image id"), ({"id": 5, "fields": "{}", "url": S3}, "no image id"),
       ({"id": "i", "fields": "{}", "url": "ftp://s3.example.test/"}, "url is not an http(s) URL: 'ftp://s3.example.test/'"),
       ({"id": "i", "fields": "{}"}, "url must be a str, not NoneType")],
)
def test_an_upload_answer_without_a_form_is_a_clear_error(
    mocked: responses.RequestsMock, mock_client: Client, upload: Dict[str, Any], says: str
) -> None:
    # JSON that is not an object used to end in a bare ValueError or TypeError from requests; an
    # answer without the image's id, in a KeyError once the image was uploaded; fields nested too
    # deep for the parser, in a RecursionError. Each is said in words, not as a Python repr.
    mocked.add("POST", BASE + "/init-image", json={"uploadInitImage": upload}, match=api_matchers({"extension": "png"}))
    with pytest.raises(LeonardoError) as info:
        mock_client.upload_init_image(PNG, "png")
    assert info.value.message.startswith("POST /init-image answered no usable upload form: " + says)


def test_an_error_in_the_upload_answer_is_quoted_and_kept(mocked: responses.RequestsMock, mock_client: Client) -> None:
    # It was "no usable upload form: no image id" with err.body {}: the API's own words (API_FACTS 1.3) were lost.
    envelope = {"error": "unexpected variable extension", "path": "$", "code": "validation-failed"}
    mocked.add("POST", BASE + "/init-image", json=envelope, match=api_matchers({"extension": "png"}))
    with pytest.raises(LeonardoError) as info:
        mock_client.upload_init_image(PNG, "png")
    assert info.value.message == "the API answered no uploadInitImage (unexpected variable extension)"
    assert info.value.body == envelope and len(mocked.calls) == 1


def test_an_upload_form_whose_fields_come_as_an_object_is_taken(mocked: responses.RequestsMock, mock_client: Client) -> None:
    upload = {"id": "i", "fields": {"key": "k"}, "url": S3}  # documented as a JSON string; an object says the same
    mocked.add("POST", BASE + "/init-image", json={"uploadInitImage": upload}, match=api_matchers({"extension": "png"}))
    mocked.add("POST", S3, status=204, match=download_matchers(agent=None, timeout=TIMEOUT))
    assert mock_client.upload_init_image(PNG, "png") == upload


def test_get_and_delete_init_image(mocked: responses.RequestsMock, mock_client: Client) -> None:
    mocked.add("GET", BASE + "/init-image/a%2Fb", json={"init_images_by_pk": None}, match=api_matchers())
    mocked.add("DELETE", BASE + "/init-image/i-1", json={"delete_init_images_by_pk": {"id": "i-1"}}, match=api_matchers())
    assert mock_client.get_init_image_by_id("a/b") == {"init_images_by_pk": None}
    assert mock_client.delete_init_image_by_id("i-1")["delete_init_images_by_pk"] == {"id": "i-1"}
    with pytest.raises(ValueError):
        mock_client.get_init_image_by_id("..")


# --- retired upstream: still callable, with a DeprecationWarning naming the date and replacement ---


@pytest.mark.parametrize(
    "name, args, method, path, text",
    [
        ("create_svd_motion_generation", ({"imageId": "i"},), "POST", "/generations-motion-svd", "2026-06-17.*hailuo-2_3"),
        ("create_texture_generation", ({"prompt": "p", "modelAssetId": "m"},), "POST", "/generations-texture", "2026-04"),
        ("get_texture_generation_by_id", ("t",), "GET", "/generations-texture/t", "2026-04.*rodin-v2"),
        ("delete_texture_generation_by_id", ("t",), "DELETE", "/generations-texture/t", "2026-04"),
        ("get_texture_generations_by_model_id", ("m",), "GET", "/generations-texture/model/m", "2026-04"),
    ],
)
def test_retired_methods_warn_and_still_work(
    mocked: responses.RequestsMock, mock_client: Client, name: str, args: Any, method: str, path: str, text: str
) -> None:
    mocked.add(method, BASE + path, json={"ok": True}, match=api_matchers(args[0] if method == "POST" else None))
    with pytest.warns(DeprecationWarning, match=text) as caught:
        assert getattr(mock_client, name)(*args) == {"ok": True}
    assert caught[0].filename == __file__  # points at the caller's line
    # help() and an IDE's hover say it too (DESIGN: "documented as retired with the replacement Leonardo names")
    assert inspect.getdoc(getattr(Client, name)).endswith(f"\n\nRetired upstream: {caught[0].message}.")


@pytest.mark.parametrize("body, method", [
    (CreateSvdMotionGenerationRequest, Client.create_svd_motion_generation),
    (CreateTextureGenerationRequest, Client.create_texture_generation),
])
def test_retired_bodies_are_documented_as_their_methods(body: Any, method: Any) -> None:
    retired = inspect.getdoc(method).split("\n\n")[-1]
    assert retired.startswith("Retired upstream: ") and inspect.getdoc(body).endswith("\n\n" + retired)


def test_current_methods_do_not_warn(mocked: responses.RequestsMock, mock_client: Client) -> None:
    mocked.add("GET", BASE + "/generations/g", json={"generations_by_pk": None}, match=api_matchers())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mock_client.get_generation_by_id("g")


# --- end to end against FakeLeonardo: upload -> generate -> wait -> save, on v1 and on v2 ---------



def uploaded(fake_client: Client, tmp_path: Any) -> str:
    guide = tmp_path / "guide.png"
    guide.write_bytes(render_png("guide", 64, 64))
    image_id: str = fake_client.upload_init_image(guide)["id"]
    assert fake_client.get_init_image_by_id(image_id)["init_images_by_pk"]["id"] == image_id
    return image_id


def test_upload_then_image_to_image_on_v1(fake: FakeLeonardo, fake_client: Client, tmp_path: Any) -> None:
    image_id = uploaded(fake_client, tmp_path)
    request = CreateGenerationRequest("the same, in winter", init_image_id=image_id, init_strength=0.4, num_images=1)
    created = fake_client.create_generation(request)
    paths = fake_client.save_results(fake_client.wait_for_generation(created), tmp_path / "out")
    assert len(paths) == 1 and Path(paths[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s3 = [r for r in fake.requests if r.path.startswith("/s3/")]
    assert len(s3) == 1 and "Authorization" not in s3[0].headers  # the key stayed with the API
    assert fake_client.delete_init_image_by_id(image_id)["delete_init_images_by_pk"] == {"id": image_id}
    assert fake_client.get_init_image_by_id(image_id) == {"init_images_by_pk": None}


@pytest.mark.parametrize("shape", ["recipes", "spec"])
def test_upload_then_image_to_image_on_v2_in_either_answer_shape(fake: FakeLeonardo, fake_client: Client, tmp_path: Any, shape: str) -> None:
    fake.v2_response_shape = shape
    image_id = uploaded(fake_client, tmp_path)
    guidance = {"image_to_image": [{"image": {"id": image_id, "type": "UPLOADED"}, "strength": "MID"}]}
    created = fake_client.create_generation_v2(GenerationV2Request(V2Model.PHOENIX_1_0, "winter", quantity=2, guidances=guidance))
    assert ("generate" in created) == (shape == "recipes") and ("generationId" in created) == (shape == "spec")
    generation = fake_client.wait_for_generation(created)
    assert generation["id"] == generation_id(created)
    assert len(fake_client.save_results(generation, tmp_path / "out")) == 2


def test_an_unknown_init_image_and_a_bad_model_are_the_apis_400(fake_client: Client) -> None:
    with pytest.raises(LeonardoError, match="invalid init image id") as info:
        fake_client.create_generation(CreateGenerationRequest("x", init_image_id="not-uploaded"))
    assert info.value.status_code == 400
    with pytest.raises(LeonardoError) as info:
        fake_client.create_generation_v2({"model": "no-such-model", "parameters": {"prompt": "x"}})
    assert info.value.status_code == 400
