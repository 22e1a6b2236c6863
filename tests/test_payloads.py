"""Request dataclasses against the spec bundled with FakeLeonardo (conftest.openapi_spec()), and the serializer."""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from typing import Any, Dict, List, Optional, Set, Tuple, Type

import pytest

from conftest import openapi_spec, resolve
from leonardo_client import payloads
from leonardo_client.payloads import (
    GenerationV2Request,
    PromptEnhance,
    V2Model,
    CanvasRequestType,
    ControlnetInput,
    ControlnetType,
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
    PresetStyle,
    Scheduler,
    SdVersion,
    StrengthType,
    Transparency,
    UserElementInput,
    to_payload,
)

def body_schema(path: str) -> Dict[str, Any]:
    return resolve(openapi_spec()["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])


def item_schema(path: str, prop: str) -> Dict[str, Any]:
    return resolve(body_schema(path)["properties"][prop]["items"])


# dataclass -> (its schema in the spec, spec fields that are required beyond the `required` list)
SCHEMAS: List[Tuple[Type[Any], Dict[str, Any], Set[str]]] = [
    (CreateGenerationRequest, body_schema("/generations"), set()),
    # The texture body has no `required` list; prompt and modelAssetId are nullable: false.
    (CreateTextureGenerationRequest, body_schema("/generations-texture"), {"prompt", "modelAssetId"}),
    (CreateSvdMotionGenerationRequest, body_schema("/generations-motion-svd"), set()),
    (CreateLcmGenerationRequest, body_schema("/generations-lcm"), set()),
    (LcmInstantRefineRequest, body_schema("/lcm-instant-refine"), set()),
    (LcmInpaintingRequest, body_schema("/lcm-inpainting"), set()),
    (LcmUpscaleRequest, body_schema("/lcm-upscale"), set()),
    (ElementInput, item_schema("/generations", "elements"), set()),
    # controlnet_input has no `required` list; these three are nullable: false.
    (ControlnetInput, item_schema("/generations", "controlnets"), {"initImageId", "initImageType", "preprocessorId"}),
    (UserElementInput, item_schema("/generations", "userElements"), set()),
]
IDS = [cls.__name__ for cls, _, _ in SCHEMAS]


def wire_keys(cls: Type[Any]) -> Dict[str, dataclasses.Field]:  # type: ignore[type-arg]
    return {f.metadata["json"]: f for f in dataclasses.fields(cls)}


def is_required(f: "dataclasses.Field[Any]") -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def test_every_request_dataclass_is_checked_against_the_spec():
    exported = {
        obj
        for obj in vars(payloads).values()
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) and not obj.__name__.startswith("_")
    }
    assert exported == {cls for cls, _, _ in SCHEMAS} | {GenerationV2Request}  # v2: see the end of the file


@pytest.mark.parametrize("cls", [cls for cls, _, _ in SCHEMAS], ids=IDS)
def test_every_field_declares_its_wire_key(cls):
    # No key is derived from the Python name: this API mixes camelCase and snake_case.
    for f in dataclasses.fields(cls):
        assert "json" in f.metadata, f"{cls.__name__}.{f.name} has no wire key"
    assert len(wire_keys(cls)) == len(dataclasses.fields(cls)), "two fields share a wire key"


@pytest.mark.parametrize("cls, schema, _extra", SCHEMAS, ids=IDS)
def test_no_key_unknown_to_the_spec(cls, schema, _extra):
    unknown = set(wire_keys(cls)) - set(schema["properties"])
    assert not unknown, f"{cls.__name__} would send keys the spec does not know: {sorted(unknown)}"


@pytest.mark.parametrize("cls, schema, _extra", SCHEMAS, ids=IDS)
def test_no_spec_property_missing(cls, schema, _extra):
    missing = set(schema["properties"]) - set(wire_keys(cls))
    assert not missing, f"{cls.__name__} lacks spec properties: {sorted(missing)}"


@pytest.mark.parametrize("cls, schema, extra", SCHEMAS, ids=IDS)
def test_required_spec_fields_are_required_constructor_arguments(cls, schema, extra):
    required_in_spec = set(schema.get("required", [])) | extra
    for key in extra:  # the extras are the non-nullable ones, as the comment above says
        assert resolve(schema["properties"][key]).get("nullable") is False
    required_here = {key for key, f in wire_keys(cls).items() if is_required(f)}
    assert required_here == required_in_spec
    if required_in_spec:
        with pytest.raises(TypeError):
            cls()


PY_TYPES = {"string": str, "boolean": bool, "integer": int, "number": float}


def _python_type(hint: Any) -> Any:
    """Optional[X] -> X."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) is typing.Union else []
    return args[0] if len(args) == 1 else hint


@pytest.mark.parametrize("cls, schema, _extra", SCHEMAS, ids=IDS)
def test_field_types_match_the_spec(cls, schema, _extra):
    hints = typing.get_type_hints(cls)
    for key, f in wire_keys(cls).items():
        prop = resolve(schema["properties"][key])
        hint = _python_type(hints[f.name])
        if prop["type"] == "array":  # ListOf[X] (List[X] | Tuple[X, ...]) or Parts[X] (Sequence[X | Mapping])
            assert str(f.type).startswith(("Optional[ListOf[", "Optional[Parts[")), f"{cls.__name__}.{f.name}"
            item = typing.get_args(typing.get_args(hint)[0])[0]
            items = prop["items"]
            if "$ref" in items:  # a nested object: its dataclass is checked against that very schema
                assert dataclasses.is_dataclass(item)
                assert next(s for c, s, _ in SCHEMAS if c is item) is resolve(items), f"{cls.__name__}.{f.name}"
            else:
                assert item is PY_TYPES[items["type"]], f"{cls.__name__}.{f.name}"
        else:  # a title Int is the GraphQL type the API reads: userLoraId's "type" says "number"
            kind = "integer" if prop.get("title") == "Int" else prop["type"]
            assert hint is PY_TYPES[kind], f"{cls.__name__}.{f.name}: {hint} vs {kind}"


# --- the serializer ---------------------------------------------------------------------------


def test_none_is_omitted_at_every_level():
    request = CreateGenerationRequest(
        prompt="p",
        negative_prompt=None,
        controlnets=[
            ControlnetInput("init-1", InitImageType.GENERATED, 19, weight=None, strength_type=None),
            ControlnetInput("init-2", InitImageType.UPLOADED, 67, weight=0.5, strength_type=StrengthType.MAX),
        ],
        elements=[ElementInput("ak-1"), ElementInput("ak-2", weight=0.25)],
        user_elements=[UserElementInput(), UserElementInput(user_lora_id=7)],
    )
    assert to_payload(request) == {
        "prompt": "p",
        "controlnets": [
            {"initImageId": "init-1", "initImageType": "GENERATED", "preprocessorId": 19},
            {"initImageId": "init-2", "initImageType": "UPLOADED", "preprocessorId": 67, "weight": 0.5, "strengthType": "Max"},
        ],
        "elements": [{"akUUID": "ak-1"}, {"akUUID": "ak-2", "weight": 0.25}],
        "userElements": [{}, {"userLoraId": 7}],
    }


MODEL_ID = "b24e16ff-06e3-43eb-8d33-4416c2d75876"


def sample(f, kind=""):
    """A value of the field's type, telling the fields apart (a part, such as a ControlnetInput, as a mapping)."""
    kind = kind or str(f.type).replace("Optional[", "").rstrip("]")
    if f.name == "model_id":  # a v1 model id is a uuid
        return MODEL_ID
    n = sum(map(ord, f.name))
    if kind.startswith(("ListOf[", "Parts[")):
        return [sample(f, kind.partition("[")[2])]
    return {"int": n, "float": n + 0.5, "bool": n % 2 == 0, "str": f"v-{f.name}"}.get(kind, {"given": f.name})


@pytest.mark.parametrize("cls, schema, _extra", SCHEMAS, ids=IDS)
def test_only_required_fields_when_nothing_else_is_set(cls, schema, _extra):
    required = {f.name: sample(f) for f in wire_keys(cls).values() if is_required(f)}
    payload = to_payload(cls(**required))
    assert payload == {f.metadata["json"]: required[f.name] for f in dataclasses.fields(cls) if f.name in required}
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("cls, schema, _extra", SCHEMAS, ids=IDS)
def test_every_field_is_sent_under_its_wire_key(cls, schema, _extra):
    values = {f.name: sample(f) for f in dataclasses.fields(cls)}
    assert to_payload(cls(**values)) == {f.metadata["json"]: values[f.name] for f in dataclasses.fields(cls)}


def test_falsy_values_are_sent_not_omitted():
    payload = to_payload(
        CreateGenerationRequest(prompt="p", seed=0, tiling=False, image_prompts=[], contrast=0.0, negative_prompt="")
    )
    assert payload == {"prompt": "p", "seed": 0, "tiling": False, "imagePrompts": [], "contrast": 0.0, "negative_prompt": ""}


def test_int_subclasses_such_as_an_int_enum_are_sent_at_once():
    class Size(enum.IntEnum):
        S512 = 512
        FAR = -(2**63) + 1  # `in range(-2**63, 2**64)` walked the range for an int subclass: years

    payload = to_payload(CreateGenerationRequest("p", width=Size.S512, seed=Size.FAR))
    assert json.dumps(payload) == '{"prompt": "p", "seed": %d, "width": 512}' % (-(2**63) + 1)


@pytest.mark.parametrize("seed", [-(2**63), 2**64 - 1])  # signed or unsigned 64 bits; one past either end is refused
def test_a_seed_at_either_end_of_64_bits_is_sent(seed: int) -> None:
    assert to_payload(CreateGenerationRequest("p", seed=seed))["seed"] == seed


@pytest.mark.parametrize(
    "request_, field_name",
    [
        (CreateGenerationRequest(prompt=None), "CreateGenerationRequest.prompt"),  # type: ignore[arg-type]
        (CreateTextureGenerationRequest(prompt="p", model_asset_id=None),  # type: ignore[arg-type]
         "CreateTextureGenerationRequest.model_asset_id"),
        (CreateSvdMotionGenerationRequest(image_id=None),  # type: ignore[arg-type]
         "CreateSvdMotionGenerationRequest.image_id"),
        (LcmInpaintingRequest(image_data_url="d", mask_data_url=None, prompt="p"),  # type: ignore[arg-type]
         "LcmInpaintingRequest.mask_data_url"),
        (LcmUpscaleRequest(image_data_url=None, prompt="p"),  # type: ignore[arg-type]
         "LcmUpscaleRequest.image_data_url"),
        (CreateGenerationRequest("p", elements=[ElementInput(None)]),  # type: ignore[arg-type]
         "CreateGenerationRequest.elements[0].ak_uuid"),
        (CreateGenerationRequest("p", controlnets=[ControlnetInput("i", "UPLOADED", None)]),  # type: ignore[arg-type]
         "CreateGenerationRequest.controlnets[0].preprocessor_id"),
        ({"wrapped": [ControlnetInput("i", None, 1)]},  # type: ignore[arg-type]
         "request['wrapped'][0].init_image_type"),
    ],
)
def test_required_field_set_to_none_raises_value_error(request_, field_name):
    # The field named by its path from the request, as the whole message.
    with pytest.raises(ValueError) as info:
        to_payload(request_)
    assert str(info.value) == f"{field_name} is required"


def test_mappings_pass_through():
    body = {"prompt": "p", "futureKey": None, "nested": {"a": [1, {"b": None}]}, "snake_case": True}
    assert to_payload(body) == body
    assert to_payload(body) is not body  # a copy: the caller's mapping is never changed


def test_dataclasses_inside_mappings_and_tuples_are_converted():
    body = {"prompt": "p", "elements": (ElementInput("ak", weight=None),), "controlnets": [ControlnetInput("i", "UPLOADED", 3)]}
    assert to_payload(body) == {
        "prompt": "p",
        "elements": [{"akUUID": "ak"}],
        "controlnets": [{"initImageId": "i", "initImageType": "UPLOADED", "preprocessorId": 3}],
    }


def test_payload_of_a_full_request_is_json_serializable():
    request = LcmUpscaleRequest(
        image_data_url="data:image/jpeg;base64,AAAA",
        prompt="p",
        guidance=7.0,
        strength=0.5,
        request_timestamp="2024-01-01T00:00:00Z",
        style=LcmStyle.ANIME,
        steps=8,
        width=512,
        height=512,
        seed=1,
        refine_creative=False,
        refine_strength=0.6,
    )
    payload = to_payload(request)
    assert json.loads(json.dumps(payload)) == payload
    assert len(payload) == len(dataclasses.fields(LcmUpscaleRequest))


def nested(depth: int) -> Dict[str, Any]:
    inner: Dict[str, Any] = {}
    outer = inner
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return outer


def test_a_body_of_32_containers_one_inside_another_is_sent_but_not_of_33():
    assert to_payload({"prompt": "p", "x": nested(30)}) == {"prompt": "p", "x": nested(30)}
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        to_payload({"prompt": "p", "x": nested(31)})


def test_an_image_count_is_checked_only_beside_whole_number_sizes():
    payloads.check_v1_size(1024.0, None, 5)  # a float width (in a dict body) is the API's to refuse, and its count
    with pytest.raises(ValueError, match="num_images 5: the v1 API makes at most 4 images at 1024x768"):
        payloads.check_v1_size(1024, None, 5)


def holding_itself() -> Dict[str, Any]:
    body: Dict[str, Any] = {"prompt": "p"}
    body["extra"] = [body]
    return body


def request_holding_itself() -> CreateGenerationRequest:
    request = CreateGenerationRequest(prompt="p")
    request.controlnets = [{"held": request}]  # type: ignore[list-item]
    return request


# json (and requests' encoding) would raise RecursionError on these, or send invalid JSON/text; or the API refuses them.
@pytest.mark.parametrize(
    "make, error, text",
    [
        (holding_itself, ValueError, r"request\['extra'\]\[0\] contains itself"),
        (request_holding_itself, ValueError, r"CreateGenerationRequest.controlnets\[0\]\['held'\] contains itself"),
        (lambda: {"prompt": "p", "x": nested(3000)}, ValueError, "nested more than 32 levels"),
        (lambda: GenerationV2Request("m", "p", extra=nested(3000)), ValueError, "GenerationV2Request.extra.* nested more than"),
        (lambda: {"prompt": "p", "cfg": float("nan")}, ValueError, r"request\['cfg'\] must be a finite number"),
        (lambda: CreateGenerationRequest("p", guidance_scale=float("inf")), ValueError, "guidance_scale must be a finite"),
        (lambda: CreateGenerationRequest("p", seed=2**80), ValueError, "seed must be an integer within 64 bits, got"),
        (lambda: CreateGenerationRequest("p", seed=2**64), ValueError, "seed must be an integer within 64 bits, got"),
        (lambda: CreateGenerationRequest("p", seed=-(2**63) - 1), ValueError, "seed must be an integer within 64 bits"),
        (lambda: {"prompt": "p", "x": ElementInput}, TypeError, r"request\['x'\] is a type, which JSON cannot carry"),
        (lambda: CreateGenerationRequest("p", seed=10**5000), ValueError, "64 bits, got an int of about 5000 digits$"),
        (lambda: {"prompt": b"bytes"}, TypeError, r"request\['prompt'\] is a bytes, which JSON cannot carry"),
        (lambda: {"prompt": "p", "tags": {"a"}}, TypeError, "is a set"),
        (lambda: {1: "p"}, TypeError, "request has an int key"),
        (lambda: {"prompt": "p", "x": object()}, TypeError, r"request\['x'\] is an object, which JSON cannot carry"),
        (lambda: GenerationV2Request("m", "p", extra=["x"]), TypeError, "GenerationV2Request.extra must be a mapping"),
        # A field of the wrong type (the API would answer 400; a bool is no int to it either).
        (lambda: CreateGenerationRequest("p", num_images=True), TypeError, "num_images must be an int, not bool"),
        (lambda: CreateGenerationRequest("p", width="512"), TypeError, "width must be an int, not str"),
        (lambda: CreateGenerationRequest("p", guidance_scale=7.5, alchemy=1), TypeError, "alchemy must be a bool, not int"),
        (lambda: CreateGenerationRequest(5), TypeError, "CreateGenerationRequest.prompt must be a str, not int"),
        # The API's integers are 32-bit GraphQL Ints (seed, wider, is sent up to 64 bits: see the IntEnum test).
        (lambda: CreateGenerationRequest("p", width=2**40), ValueError, "width must be from -2147483648 to 2147483647"),
        (lambda: GenerationV2Request("m", "p", quantity=-(2**31) - 1), ValueError, "GenerationV2Request.quantity must be from"),
        # userLoraId too: its spec's "type" is "number", but its title Int, the GraphQL type the API reads it as.
        (lambda: CreateGenerationRequest("p", user_elements=[UserElementInput(1.5)]), TypeError,
         r"CreateGenerationRequest.user_elements\[0\].user_lora_id must be an int, not float"),
        (lambda: CreateGenerationRequest("p", user_elements=[UserElementInput(2**40)]), ValueError,
         r"user_elements\[0\].user_lora_id must be from -2147483648 to 2147483647"),
        # A list field takes a list or tuple of its items' type (a part: its dataclass or a mapping); a mapping field a mapping.
        (lambda: CreateGenerationRequest("p", image_prompts="abc"), TypeError, "image_prompts must be a list or tuple, not str"),
        (lambda: CreateGenerationRequest("p", image_prompts=[1]), TypeError, r"image_prompts\[0\] must be a str, not int"),
        (lambda: CreateGenerationRequest("p", controlnets=ControlnetInput("i", "UPLOADED", 1)), TypeError,
         "controlnets must be a list or tuple, not ControlnetInput"),
        (lambda: CreateGenerationRequest("p", elements=(ElementInput("a"), ControlnetInput("i", "UPLOADED", 1))), TypeError,
         r"CreateGenerationRequest.elements\[1\] must be an ElementInput or a mapping, not ControlnetInput"),
        (lambda: GenerationV2Request("m", "p", style_ids="abc"), TypeError, "GenerationV2Request.style_ids must be a list"),
        (lambda: GenerationV2Request("m", "p", guidances=[1]), TypeError, "GenerationV2Request.guidances must be a mapping"),
        # A blank prompt was sent, and a generation of nothing made and billed (a model that takes none takes None).
        (lambda: CreateGenerationRequest(""), ValueError, "^CreateGenerationRequest.prompt is empty or blank"),
        (lambda: CreateGenerationRequest("  \n"), ValueError, "^CreateGenerationRequest.prompt is empty or blank"),
        (lambda: GenerationV2Request("m", "\t "), ValueError, "^GenerationV2Request.prompt is empty or blank"),
        # A v1 model id is a uuid: a v2 model name there was sent, and made by the fake (an opaque error upstream).
        (lambda: CreateGenerationRequest("p", model_id=V2Model.PHOENIX_1_0), ValueError,
         "^CreateGenerationRequest.model_id 'phoenix-v1.0' is a v2 model name, not a v1 model id: give it as a model "
         r"to create_generation_v2 \(GenerationV\dRequest\), --model or BatchItem\(model=...\)$"),
        (lambda: CreateGenerationRequest("p", model_id="model-1"), ValueError,
         r"^CreateGenerationRequest.model_id 'model-1' is not a v1 model id, a UUID \(a v2 model name goes to"),
    ],
)
def test_what_json_or_the_api_cannot_take_is_refused_before_sending(mocked, mock_client, make, error, text):
    with pytest.raises(error, match=text):
        payloads.to_payload(make())
    with pytest.raises(error, match=text):
        (mock_client.create_generation_v2 if "V2" in text else mock_client.create_generation)(make())
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    "value, low, high, text",
    [(10**5000, 0, payloads.MAX_INT, "0 to 2147483647, got an int of about 5000 digits"),  # not 2.14748e+09; str()
     (-1.5, 0.001, 604800.0, "0.001 to 604800, got -1.5")],  # of that int raises ValueError (over 4,300 digits)
    ids=["huge int", "float"],
)
def test_a_number_out_of_range_is_told_its_bounds(value, low, high, text):
    with pytest.raises(ValueError, match=f"^limit must be from {text}$"):
        payloads.check_number("limit", value, low, high)


UNDECODABLE = b"a cat \xff".decode("utf-8", "surrogateescape")  # what sys.argv holds for bytes it cannot decode


@pytest.mark.parametrize(
    "request_, name",
    [
        (CreateGenerationRequest(prompt=UNDECODABLE), "CreateGenerationRequest.prompt"),
        ({"prompt": UNDECODABLE}, r"request\['prompt'\]"),
        ({UNDECODABLE: "x", "prompt": "p"}, r"a key of request"),
        (CreateGenerationRequest("p", elements=[ElementInput(UNDECODABLE)]), r"CreateGenerationRequest.elements\[0\].ak_uuid"),
    ],
)
def test_undecodable_text_names_the_field_in_plain_words(mocked, mock_client, request_, name):
    with pytest.raises(ValueError, match=f"^{name} holds bytes that are not valid text") as info:
        mock_client.create_generation(request_)
    assert "surrogate" not in str(info.value)
    assert len(mocked.calls) == 0


def test_a_v1_model_id_is_a_uuid_of_any_version_in_either_case():
    for model_id in (MODEL_ID, MODEL_ID.upper(), "00000000-0000-0000-0000-000000000000"):
        assert to_payload(CreateGenerationRequest("p", model_id=model_id)) == {"prompt": "p", "modelId": model_id}
    for model_id in (MODEL_ID + " ", "{" + MODEL_ID + "}", MODEL_ID.replace("-", ""), MODEL_ID[:-1] + "g"):
        with pytest.raises(ValueError, match="is not a v1 model id, a UUID"):
            to_payload(CreateGenerationRequest("p", model_id=model_id))
    assert to_payload(GenerationV2Request("remove-bg")) == {"model": "remove-bg"}  # no prompt: None, not ""


def test_repr_shows_only_the_fields_that_are_set():
    assert repr(CreateGenerationRequest("a cat", width=512, alchemy=False)) == (
        "CreateGenerationRequest(prompt='a cat', alchemy=False, width=512)"
    )
    assert repr(LcmInpaintingRequest("data:a", "data:m", "p", seed=1)) == (
        "LcmInpaintingRequest(image_data_url='data:a', mask_data_url='data:m', prompt='p', seed=1)"
    )
    assert repr(request_holding_itself()) == "CreateGenerationRequest(prompt='p', controlnets=[{'held': ...}])"
    assert CreateGenerationRequest("x") == CreateGenerationRequest("x")  # still compared field by field


# --- enum constants ---------------------------------------------------------------------------


def _constants(cls: type) -> List[str]:
    return [value for name, value in vars(cls).items() if name.isupper()]


GEN = body_schema("/generations")["properties"]
CONTROLNET = item_schema("/generations", "controlnets")["properties"]
ENUMS = [
    (PresetStyle, resolve(GEN["presetStyle"])),
    (Scheduler, resolve(GEN["scheduler"])),
    (SdVersion, resolve(GEN["sd_version"])),
    (ControlnetType, resolve(GEN["controlNetType"])),
    (CanvasRequestType, resolve(GEN["canvasRequestType"])),
    (Transparency, resolve(GEN["transparency"])),
    (LcmStyle, resolve(body_schema("/generations-lcm")["properties"]["style"])),
    (InitImageType, resolve(CONTROLNET["initImageType"])),
    (StrengthType, resolve(CONTROLNET["strengthType"])),
]


def test_every_enum_class_is_checked():
    exported = {getattr(payloads, name) for name in payloads.__all__}
    enum_like = {obj for obj in exported if isinstance(obj, type) and not dataclasses.is_dataclass(obj)}
    assert enum_like == {cls for cls, _ in ENUMS} | {V2Model, PromptEnhance}  # v2: see the end of the file


@pytest.mark.parametrize("cls, schema", ENUMS, ids=[cls.__name__ for cls, _ in ENUMS])
def test_enum_constants_hold_the_spec_values_exactly(cls, schema):
    values = _constants(cls)
    assert len(values) == len(set(values)), "a value is listed twice"
    assert sorted(values) == sorted(schema["enum"])


@pytest.mark.parametrize(
    "request_, key, value",
    [
        (CreateGenerationRequest("p", preset_style="SOME_NEW_STYLE"), "presetStyle", "SOME_NEW_STYLE"),
        (CreateGenerationRequest("p", scheduler="NEW_SCHEDULER"), "scheduler", "NEW_SCHEDULER"),
        (CreateGenerationRequest("p", sd_version="v99"), "sd_version", "v99"),
        (CreateGenerationRequest("p", transparency="background_only"), "transparency", "background_only"),
        (CreateGenerationRequest("p", canvas_request_type="NEW"), "canvasRequestType", "NEW"),
        (CreateLcmGenerationRequest("d", "p", style="NEW_LCM_STYLE"), "style", "NEW_LCM_STYLE"),
    ],
)
def test_any_string_is_accepted_for_enum_fields(request_, key, value):
    # New server values must keep working without a client release.
    assert to_payload(request_)[key] == value


def test_controlnet_accepts_unknown_strings():
    item = ControlnetInput("i", "SOME_FUTURE_TYPE", 1, strength_type="Extreme")
    assert to_payload(item) == {"initImageId": "i", "initImageType": "SOME_FUTURE_TYPE", "preprocessorId": 1, "strengthType": "Extreme"}


def test_optional_type_helper_unwraps_optional():
    assert _python_type(Optional[int]) is int
    assert _python_type(str) is str


# --- POST /v2/generations: one envelope, a schema per model ---------------------------------------

V2_BODY = openapi_spec()["paths"]["/v2/generations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
V2_MODELS = {name: resolve({"$ref": ref}) for name, ref in V2_BODY["discriminator"]["mapping"].items()}


def v2_parameters(model: str) -> Dict[str, Any]:
    return V2_MODELS[model]["properties"]["parameters"]


def test_v2_model_constants_are_models_the_spec_lists():
    assert set(_constants(V2Model)) <= set(V2_MODELS)
    assert len(set(_constants(V2Model))) == len(_constants(V2Model))


def test_v2_request_keys_are_in_the_model_schemas():
    envelope = {f.metadata["json"] for f in dataclasses.fields(GenerationV2Request)}
    assert {"model", "public"} <= envelope
    for key in envelope - {"model", "public", "parameters.*"}:
        name = key.split(".", 1)[1]
        assert key.startswith("parameters.") and any(name in v2_parameters(m)["properties"] for m in V2_MODELS), key
    for schema in V2_MODELS.values():  # model and prompt: what every model's envelope has
        assert {"model", "public", "parameters"} <= set(schema["properties"])


def test_prompt_enhance_constants_are_the_spec_values():
    found = {tuple(sorted(p["properties"]["prompt_enhance"]["enum"])) for p in map(v2_parameters, V2_MODELS)
             if "prompt_enhance" in p["properties"]}
    assert found == {tuple(sorted(_constants(PromptEnhance)))}


def test_v2_request_nests_parameters_and_merges_extra():
    request = GenerationV2Request(V2Model.HAILUO_2_3, "waves", width=1376, height=768, quantity=1, extra={"duration": 6})
    assert to_payload(request) == {
        "model": "hailuo-2_3",
        "parameters": {"prompt": "waves", "width": 1376, "height": 768, "quantity": 1, "duration": 6},
    }
    assert to_payload(GenerationV2Request("flux-dev", "x", public=True)) == {
        "model": "flux-dev", "public": True, "parameters": {"prompt": "x"}
    }


@pytest.mark.parametrize("sizes, how", [({"width": 1920, "height": 1920}, "in pairs"), ({"width": 1920}, "together")])
def test_a_v2_size_pair_the_model_does_not_take_is_told_its_pairs(sizes: Dict[str, int], how: str) -> None:
    # Both sides given, each one the model takes but not as a pair: it said only "parameters matches none of the
    # allowed combinations", where one side alone was told the pairs.
    said = f"^model 'kling-2.6' takes width and height {how}, one of 1920x1080, 1080x1920, 1440x1440, 0x0$"
    with pytest.raises(ValueError, match=said):
        payloads.check_request("v2", {"model": "kling-2.6", "parameters": {"prompt": "a fox", **sizes}})
