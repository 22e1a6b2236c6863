"""Request bodies as plain dataclasses, the one serializer that turns them into JSON, and the
checks of values sent (text, ids, numbers, header text) that every module shares.

Each field knows its wire key, copied from Leonardo's OpenAPI spec: this API mixes camelCase
(``modelId``) and snake_case (``negative_prompt``) in one body, so nothing is derived by rule.
A field left at ``None`` is omitted from the JSON, never sent as ``null``.
Enum-like fields take any string; the classes at the bottom offer the known values as constants.
"""

from __future__ import annotations

import inspect
import math
import re
import reprlib
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

__all__ = [
    "CreateGenerationRequest",
    "ElementInput",
    "ControlnetInput",
    "UserElementInput",
    "CreateTextureGenerationRequest",
    "CreateSvdMotionGenerationRequest",
    "CreateLcmGenerationRequest",
    "LcmInstantRefineRequest",
    "LcmInpaintingRequest",
    "LcmUpscaleRequest",
    "GenerationV2Request",
    "to_payload",
    "PresetStyle",
    "LcmStyle",
    "Scheduler",
    "SdVersion",
    "ControlnetType",
    "CanvasRequestType",
    "InitImageType",
    "StrengthType",
    "Transparency",
    "V2Model",
    "PromptEnhance",
]


def wire(key: str) -> Any:
    """An optional field (default None) whose JSON key is ``key``. A required one is written
    ``field(metadata={"json": key})``: type checkers see a field without a default only in a call of ``field``."""
    return field(default=None, metadata={"json": key})


def to_payload(value: Any) -> Any:
    """Turn a request dataclass (or a mapping or list holding them) into JSON-ready data.

    Dataclass fields at None are omitted and renamed to their wire keys; a required field
    left at None raises ValueError, one of another type than its annotation's TypeError (a
    list field's items too; a part such as a ControlnetInput may be a mapping), an int field
    beyond the API's 32-bit integers (MAX_INT; seed may be wider) ValueError. Mappings are
    sent as given, with only their values converted. Whatever requests' JSON encoding would
    fail on, or send as invalid text, is refused here, naming the field: a value JSON cannot
    hold (TypeError), NaN or infinity, an int beyond 64 bits, a string with undecodable
    bytes, a container that holds itself or nests deeper than MAX_DEPTH (ValueError). A body's
    own checks raise ValueError too: a blank prompt, a v1 model_id that is not a UUID.
    """
    return _json(value, type(value).__name__ if is_dataclass(value) else "request", ())


# What a retired operation's call warns (DeprecationWarning) and its method's and body's docstrings say.
RETIRED = {
    "svd": "Leonardo retired Motion 1.0 (SVD) on 2026-06-17; use create_generation_v2 with model 'hailuo-2_3'",
    "texture": "the texture endpoints left Leonardo's public API spec in 2026-04 and may stop working; "
    "Leonardo names no replacement (its only 3D model is 'rodin-v2' on create_generation_v2)",
}
_T = TypeVar("_T")


def retired_upstream(kind: str) -> Callable[[_T], _T]:
    """A decorator: the docstring of a retired operation's method or body ends with ``RETIRED[kind]``."""

    def document(retired: _T) -> _T:
        retired.__doc__ = f"{inspect.cleandoc(retired.__doc__ or '')}\n\nRetired upstream: {RETIRED[kind]}."
        return retired

    return document


MAX_INT = 2**31 - 1  # the API's integers are GraphQL Ints: 32 bits
V1_SIDES = range(32, 1537, 8)  # a width or height POST /generations takes: its spec's description (else a 4xx)
V1_DEFAULT_SIZE = (1024, 768)  # the width and height it makes when not given: its spec's defaults
V1_NAMES = ("width", "height", "num_images")  # what check_v1_size calls them: their body keys
V1_PROMPT_MAX = 1500  # characters of a prompt POST /generations takes: API_FACTS 1.2 (else a 4xx: status unknown)
MAX_DEPTH = 32  # far deeper than any body the API takes; json would hit the recursion limit at ~1000
_INT_MIN, _INT_END = -(2**63), 2**64  # what a JSON parser may hold in 64 bits, signed or not
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")  # any version: a model id is a uuid column


# --- checks of values sent: run on arguments, before anything is sent --------------------------


def check_text(value: str, what: str) -> str:
    """``value`` if it is valid text; a lone surrogate (an undecodable byte of sys.argv or a file name) is not."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{what} holds bytes that are not valid text (not UTF-8?): check its source") from None
    return value


def is_id(value: Any) -> bool:
    """Whether ``value`` can be an id in a URL path: a str of valid text, not blank, "." or ".."."""
    try:
        return isinstance(value, str) and check_text(value, "id").strip() not in ("", ".", "..")
    except ValueError:  # a lone surrogate
        return False


def id_key(value: Any) -> str:
    """An id as ids are compared and keyed: a uuid in either case is the same id."""
    return str(value).lower()


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a UUID (any version, either case), as Leonardo's ids and API keys are."""
    return bool(_UUID.fullmatch(text))


def check_type(name: str, value: Any, kind: Union[type, Tuple[type, ...]]) -> Any:
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)) if k is not type(None))
        raise TypeError(f"{name} must be {with_article(names)}, not {type(value).__name__}")
    return value


def check_v1_size(width: Any, height: Any, count: Any, names: Tuple[str, ...] = V1_NAMES) -> None:
    """ValueError for a v1 width, height or image count POST /generations would refuse (None: the API's
    default), each called by its name in ``names``. A count is checked when all three are whole numbers
    (a request's ``extra`` is passed on as given: the API's to refuse)."""
    for name, side in zip(names, (width, height)):
        if side is not None and side not in V1_SIDES:
            sides = f"a multiple of {V1_SIDES.step} from {V1_SIDES.start} to {V1_SIDES[-1]}"
            raise ValueError(f"{name} {side}: the v1 API takes {sides} (a v2 model has its own sizes)")
    width, height = (given if given is not None else side for given, side in zip((width, height), V1_DEFAULT_SIZE))
    # A bool side was refused above; a bool count (0 or 1) is never too many.
    if not all(isinstance(value, int) for value in (count, width, height)):
        return
    most = v1_images_at_most(width, height)
    if count > most:
        size = f"{width}x{height}"
        raise ValueError(f"{names[2]} {count}: the v1 API makes at most {most} images at {size} (8, and 4 over 768)")


def check_v1_prompt(prompt: Any) -> None:
    """ValueError for a prompt longer than POST /generations takes (a v2 model's schema has its own limit)."""
    if isinstance(prompt, str) and len(prompt) > V1_PROMPT_MAX:
        limit = f"the v1 API takes at most {V1_PROMPT_MAX} (a v2 model has its own limit)"
        raise ValueError(f"prompt of {len(prompt)} characters: {limit}")


def check_request(api: str, body: Dict[str, Any], sizes: Tuple[str, str] = ("width", "height")) -> None:
    """ValueError for a create call's body (``api``: "v1", POST /generations; "v2", POST /v2/generations) that the
    bundled spec refuses, as FakeLeonardo does: a key it does not know, a type, a bound, a v2 model's own schema.
    A v2 model the spec does not know is not checked: the API may know it (create_generation_v2 takes any name).
    ``sizes`` names width and height where a v2 model's size pairs (its anyOf/oneOf) refuse a body without them."""
    from .testing.api import as_the_api_reads
    from .testing.server import ApiError
    from .testing.spec import NO_COMBINATION, NOT_ONE_FORM, bundled_spec

    spec = bundled_spec()
    if api == "v2" and body.get("model") not in spec.models():
        return
    try:  # read as the fake reads it: a whole float (30.0) an int, as the API's Hasura layer and JSON Schema take it
        operation = spec.operation("create_generation_v2" if api == "v2" else "create_generation")
        spec.check_body(operation, as_the_api_reads(body))
    except ApiError as refused:
        who = f"model {body['model']!r}" if api == "v2" else "the v1 API"
        if api == "v2" and refused.message in ("parameters " + NO_COMBINATION, "parameters " + NOT_ONE_FORM):
            _check_sizes_given(who, spec.models()[body["model"]], body.get("parameters"), sizes)
        where = getattr(refused, "label", "")  # a FieldError's message may not name its key
        at = f" (at {where})" if where else ""
        raise ValueError(f"{who} does not take these options: {refused.message}{at}") from None


def _check_sizes_given(who: str, schema: Dict[str, Any], parameters: Any, names: Tuple[str, str]) -> None:
    """ValueError naming the width x height pairs of a v2 model's anyOf/oneOf its ``parameters`` match none of: a size
    missing (happy-horse-1.1's oneOf has no branch for neither: read literally, its spec needs both), or no pair."""
    schema = schema["properties"]["parameters"]
    given = parameters if isinstance(parameters, dict) else {}
    branches = [b for part in (schema, *schema.get("allOf", ())) for b in part.get("anyOf", []) + part.get("oneOf", [])]
    sides = [[b.get("properties", {}).get(key, {}).get("enum", ()) for key in ("width", "height")] for b in branches]
    pairs = ", ".join(dict.fromkeys(f"{w[0]}x{h[0]}" for w, h in sides if len(w) == len(h) == 1))
    missing = [given.get(key) for key in ("width", "height")].count(None)
    if pairs:  # one alone: refused even where neither is taken (kling-2.6)
        how = ("takes {} and {} in pairs", "takes {} and {} together", "needs {} and {}")[missing]
        raise ValueError(f"{who} {how.format(*names)}, one of {pairs}")


def check_prompt(prompt: Any, name: str = "prompt") -> None:
    """ValueError for a blank prompt: the API would make (and bill) a generation of nothing."""
    if isinstance(prompt, str) and not prompt.strip():
        raise ValueError(f"{name} is empty or blank (a v2 model that takes no prompt is given None)")


def check_v1_model_id(model_id: Any, name: str = "model_id") -> None:
    """ValueError for a v1 model id (None: the API's default model) that is not a UUID; a v2 model name says so."""
    if not isinstance(model_id, str) or is_uuid(model_id):
        return
    flag = name.startswith("--")  # the CLI's: its user calls no Python method
    if model_id in {value for key, value in vars(V2Model).items() if not key.startswith("_")}:
        v2 = "--model" if flag else "create_generation_v2 (GenerationV2Request), --model or BatchItem(model=...)"
        raise ValueError(f"{name} {model_id!r} is a v2 model name, not a v1 model id: give it as a model to {v2}")
    v2 = "a v2 model name goes to " + ("--model" if flag else "create_generation_v2 or --model")
    raise ValueError(f"{name} {shown(model_id)} is not a v1 model id, a UUID ({v2})")


def v1_images_at_most(width: int, height: int) -> int:
    """What POST /generations's spec says: 1 to 8 images, 1 to 4 if the width or height is over 768."""
    return 4 if width > 768 or height > 768 else 8


def check_number(name: str, value: Any, low: float, high: float, integer: bool = False) -> Any:
    """``value`` if it is a number (an int if ``integer``; never a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {'an int' if integer else 'a number'}, not {type(value).__name__}")
    if not low <= value <= high:  # NaN fails this too
        lowest, highest = (bound if isinstance(bound, int) else f"{bound:g}" for bound in (low, high))
        raise ValueError(f"{name} must be from {lowest} to {highest}, got {shown(value)}")
    return value


def shown(value: Any, width: int = 80) -> str:
    """``value``'s repr for a message, cut to ``width`` characters; a long int by its size (Python
    refuses to write one of over 4,300 digits, and a repr of millions of characters helps no one)."""
    if isinstance(value, int) and value.bit_length() > 3 * width:
        return f"an int of about {round(value.bit_length() * math.log10(2))} digits"
    return cut(repr(value), width)


def shown_path(path: Any) -> str:
    """A file or folder's path for a message, as shown() quotes it; a long one keeps its end: the name."""
    return cut(repr(path), 160, end=60)


def cut(text: str, width: int = 80, end: int = 0) -> str:
    """``text``, or ``width`` characters of it when longer: its start and "...", or its start, " ... " and
    its last ``end`` characters (a note at the end stays): a message quotes no value whole."""
    if len(text) <= width:
        return text
    return text[: width - 3] + "..." if not end else f"{text[: width - 5 - end]} ... {text[-end:]}"


def with_article(noun: str) -> str:
    """``noun`` with its article: "a str", "an int"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def is_header_text(text: str) -> bool:
    """Whether ``text`` may go in an HTTP header as is: printable ASCII (a line break would add headers)."""
    return text.isascii() and text.isprintable()


def _json(value: Any, where: str, parents: Tuple[int, ...]) -> Any:
    """``value`` as JSON-ready data; ``where`` names it in errors, ``parents`` are the containers above it."""
    if isinstance(value, str):
        return check_text(value, where)
    if value is None or isinstance(value, bool) or (isinstance(value, int) and _INT_MIN <= value < _INT_END):
        return value  # bounds, not a range: `in range` walks it for an int subclass (an IntEnum)
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (int, float)):
        what = "an integer within 64 bits" if isinstance(value, int) else "a finite number JSON can carry"
        raise ValueError(f"{where} must be {what}, got {shown(value, 40)}")
    if id(value) in parents:
        raise ValueError(f"{where} contains itself")
    if len(parents) >= MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    parents += (id(value),)
    if is_dataclass(value) and not isinstance(value, type):
        return _dataclass_json(value, where, parents)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has {with_article(type(key).__name__)} key; JSON keys are str")
            out[check_text(key, f"a key of {where}")] = _json(item, f"{where}[{key!r:.40}]", parents)
        return out
    if isinstance(value, (list, tuple)):
        return [_json(item, f"{where}[{n}]", parents) for n, item in enumerate(value)]
    raise TypeError(f"{where} is {with_article(type(value).__name__)}, which JSON cannot carry")


# A list field's type, read by _check_field: ListOf, a list or tuple (no Sequence: a str is one); Parts, a Sequence
# of a part's dataclass or mappings (a List[ElementInput] is no List of that union). Only a list or tuple is sent.
ListOf = Union[List[_T], Tuple[_T, ...]]
Parts = Sequence[Union[_T, Mapping[str, Any]]]
# The field types checked before sending, by their annotation's name (a bool is no int here, as for the API).
_SIMPLE_TYPES: Dict[str, Tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}


def _check_field(name: str, kind: str, item: Any) -> None:
    """TypeError unless ``item`` fits ``kind``, its field's annotation without Optional (``ListOf[X``, ``Parts[X``
    and ``Mapping[...``: the rest is cut off; other kinds are not checked); ValueError for an int beyond MAX_INT."""
    if kind.startswith(("ListOf[", "Parts[")):
        if not isinstance(item, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple, not {type(item).__name__}")
        for n, element in enumerate(item):
            _check_field(f"{name}[{n}]", kind.partition("[")[2], element)
        return
    body = globals().get(kind)  # a dataclass of this module, by the name the annotation gives
    if kind in _SIMPLE_TYPES:
        allowed, wanted = _SIMPLE_TYPES[kind], with_article(kind)
    elif kind.startswith("Mapping["):
        allowed, wanted = (Mapping,), "a mapping"
    elif isinstance(body, type) and is_dataclass(body):
        allowed, wanted = (body, Mapping), f"{with_article(kind)} or a mapping"  # a mapping is sent as given
    else:
        return
    if not isinstance(item, allowed) or isinstance(item, bool) != (kind == "bool"):
        raise TypeError(f"{name} must be {wanted}, not {type(item).__name__}")
    if kind == "int" and not name.endswith(".seed"):  # the spec's seed is no Int (to 9999999998 on v1)
        check_number(name, item, -MAX_INT - 1, MAX_INT)


def _dataclass_json(value: Any, where: str, parents: Tuple[int, ...]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for f in fields(value):
        item, name = getattr(value, f.name), f"{where}.{f.name}"
        if item is None:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{name} is required")
            continue
        _check_field(name, str(f.type).replace("Optional[", "").rstrip("]"), item)
        *parent_keys, key = f.metadata.get("json", f.name).split(".")  # "parameters.prompt": nested
        target = out
        for parent in parent_keys:
            target = target.setdefault(parent, {})
        if key != "*":
            target[key] = _json(item, name, parents)
        else:  # a mapping (its annotation's type) merged in as given
            merge_once(target, _json(item, name, parents), name)
    if isinstance(value, _Body):
        value._check_values(where)
    return out


def merge_once(target: Dict[str, Any], extra: Mapping[str, Any], name: str) -> None:
    """``extra``'s keys added to ``target`` as given, but never over one it sets: ValueError."""
    twice = [repr(k) for k in extra if k in target]
    if twice:
        raise ValueError(f"{name} sets {', '.join(twice)} again: give each value once")
    target.update(extra)


class _Body:
    """Base of the request dataclasses (declared with repr=False): their repr shows only the fields set."""

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        values = ((f.name, getattr(self, f.name)) for f in fields(self))  # type: ignore[arg-type]
        shown = (f"{name}={value!r}" for name, value in values if value is not None)
        return f"{type(self).__name__}({', '.join(shown)})"

    def _check_values(self, where: str) -> None:
        """ValueError for a value the API would take and act on wrongly: run by to_payload, its types checked."""


# --- POST /generations ---------------------------------------------------------------------


@dataclass(repr=False)
class ElementInput(_Body):
    """An element (LoRA) applied to a generation (spec: ``element_input``)."""

    ak_uuid: str = field(metadata={"json": "akUUID"})
    weight: Optional[float] = wire("weight")


@dataclass(repr=False)
class ControlnetInput(_Body):
    """A controlnet guiding a generation (spec: ``controlnet_input``)."""

    init_image_id: str = field(metadata={"json": "initImageId"})
    init_image_type: str = field(metadata={"json": "initImageType"})  # InitImageType: GENERATED or UPLOADED
    preprocessor_id: float = field(metadata={"json": "preprocessorId"})
    weight: Optional[float] = wire("weight")
    strength_type: Optional[str] = wire("strengthType")  # StrengthType


@dataclass(repr=False)
class UserElementInput(_Body):
    """A user's own custom element (spec: ``user_elements_input``)."""

    user_lora_id: Optional[int] = wire("userLoraId")  # spec: "number", but titled Int (a GraphQL Int)
    weight: Optional[float] = wire("weight")


@dataclass(repr=False)
class CreateGenerationRequest(_Body):
    """Body of POST /generations (createGeneration). Only ``prompt`` is required."""

    prompt: str = field(metadata={"json": "prompt"})
    alchemy: Optional[bool] = wire("alchemy")
    contrast_ratio: Optional[float] = wire("contrastRatio")
    contrast: Optional[float] = wire("contrast")
    controlnets: Optional[Parts[ControlnetInput]] = wire("controlnets")
    elements: Optional[Parts[ElementInput]] = wire("elements")
    user_elements: Optional[Parts[UserElementInput]] = wire("userElements")
    expanded_domain: Optional[bool] = wire("expandedDomain")
    fantasy_avatar: Optional[bool] = wire("fantasyAvatar")
    guidance_scale: Optional[float] = wire("guidance_scale")
    height: Optional[int] = wire("height")
    high_contrast: Optional[bool] = wire("highContrast")
    high_resolution: Optional[bool] = wire("highResolution")
    image_prompts: Optional[ListOf[str]] = wire("imagePrompts")
    image_prompt_weight: Optional[float] = wire("imagePromptWeight")
    init_generation_image_id: Optional[str] = wire("init_generation_image_id")
    init_image_id: Optional[str] = wire("init_image_id")
    init_strength: Optional[float] = wire("init_strength")
    model_id: Optional[str] = wire("modelId")
    negative_prompt: Optional[str] = wire("negative_prompt")
    num_images: Optional[int] = wire("num_images")
    num_inference_steps: Optional[int] = wire("num_inference_steps")
    photo_real: Optional[bool] = wire("photoReal")
    photo_real_version: Optional[str] = wire("photoRealVersion")
    photo_real_strength: Optional[float] = wire("photoRealStrength")
    preset_style: Optional[str] = wire("presetStyle")  # PresetStyle
    prompt_magic: Optional[bool] = wire("promptMagic")
    prompt_magic_strength: Optional[float] = wire("promptMagicStrength")
    prompt_magic_version: Optional[str] = wire("promptMagicVersion")
    public: Optional[bool] = wire("public")
    scheduler: Optional[str] = wire("scheduler")  # Scheduler
    sd_version: Optional[str] = wire("sd_version")  # SdVersion
    seed: Optional[int] = wire("seed")
    tiling: Optional[bool] = wire("tiling")
    transparency: Optional[str] = wire("transparency")  # Transparency
    ultra: Optional[bool] = wire("ultra")
    unzoom: Optional[bool] = wire("unzoom")
    unzoom_amount: Optional[float] = wire("unzoomAmount")
    upscale_ratio: Optional[float] = wire("upscaleRatio")
    width: Optional[int] = wire("width")
    canvas_request: Optional[bool] = wire("canvasRequest")
    canvas_request_type: Optional[str] = wire("canvasRequestType")  # CanvasRequestType
    canvas_init_id: Optional[str] = wire("canvasInitId")
    canvas_mask_id: Optional[str] = wire("canvasMaskId")
    enhance_prompt: Optional[bool] = wire("enhancePrompt")
    enhance_prompt_instruction: Optional[str] = wire("enhancePromptInstruction")
    # These three: deprecated by Leonardo since September 2024 in favour of ``controlnets``.
    control_net: Optional[bool] = wire("controlNet")
    control_net_type: Optional[str] = wire("controlNetType")  # ControlnetType
    weighting: Optional[float] = wire("weighting")

    def _check_values(self, where: str) -> None:
        check_prompt(self.prompt, f"{where}.prompt")
        check_v1_model_id(self.model_id, f"{where}.model_id")


# --- POST /generations-texture -------------------------------------------------------------------


@retired_upstream("texture")
@dataclass(repr=False)
class CreateTextureGenerationRequest(_Body):
    """Body of POST /generations-texture (createTextureGeneration)."""

    prompt: str = field(metadata={"json": "prompt"})
    model_asset_id: str = field(metadata={"json": "modelAssetId"})
    negative_prompt: Optional[str] = wire("negative_prompt")
    front_rotation_offset: Optional[int] = wire("front_rotation_offset")
    preview: Optional[bool] = wire("preview")
    preview_direction: Optional[str] = wire("preview_direction")
    sd_version: Optional[str] = wire("sd_version")
    seed: Optional[int] = wire("seed")


# --- POST /generations-motion-svd ------------------------------------------------------------


@retired_upstream("svd")
@dataclass(repr=False)
class CreateSvdMotionGenerationRequest(_Body):
    """Body of POST /generations-motion-svd (createSVDMotionGeneration).

    ``image_id`` is an *image* id, not a generation id: a generated image's (``generated_images[].id``), or an
    uploaded init image's with ``is_init_image=True`` (a variation's with ``is_variation=True``).
    """

    image_id: str = field(metadata={"json": "imageId"})
    is_public: Optional[bool] = wire("isPublic")
    is_init_image: Optional[bool] = wire("isInitImage")
    is_variation: Optional[bool] = wire("isVariation")
    motion_strength: Optional[int] = wire("motionStrength")


# --- The four synchronous LCM operations ------------------------------------------------------
# Python 3.8 dataclasses cannot put a required field after an optional one, so the required
# fields sit in small bases listed last (dataclasses collect fields from the far end of the MRO).


@dataclass(repr=False)
class _LcmImage(_Body):
    image_data_url: str = field(metadata={"json": "imageDataUrl"})  # base64 data URL, data:image/jpeg;base64,...
    prompt: str = field(metadata={"json": "prompt"})


@dataclass(repr=False)
class _LcmImageAndMask(_Body):
    image_data_url: str = field(metadata={"json": "imageDataUrl"})
    mask_data_url: str = field(metadata={"json": "maskDataUrl"})  # white on black: the white area is regenerated
    prompt: str = field(metadata={"json": "prompt"})


@dataclass(repr=False)
class _LcmOptions(_Body):
    guidance: Optional[float] = wire("guidance")
    strength: Optional[float] = wire("strength")
    request_timestamp: Optional[str] = wire("requestTimestamp")
    style: Optional[str] = wire("style")  # LcmStyle
    steps: Optional[int] = wire("steps")
    width: Optional[int] = wire("width")
    height: Optional[int] = wire("height")
    seed: Optional[int] = wire("seed")


@dataclass(repr=False)
class CreateLcmGenerationRequest(_LcmOptions, _LcmImage):
    """Body of POST /generations-lcm (createLCMGeneration)."""


@dataclass(repr=False)
class LcmInstantRefineRequest(_LcmOptions, _LcmImage):
    """Body of POST /lcm-instant-refine (performInstantRefine)."""


@dataclass(repr=False)
class LcmInpaintingRequest(_LcmOptions, _LcmImageAndMask):
    """Body of POST /lcm-inpainting (performInpaintingLCM)."""


@dataclass(repr=False)
class LcmUpscaleRequest(_LcmOptions, _LcmImage):
    """Body of POST /lcm-upscale (performAlchemyUpscaleLCM)."""

    refine_creative: Optional[bool] = wire("refineCreative")
    refine_strength: Optional[float] = wire("refineStrength")


# --- POST /v2/generations: today's models (Phoenix, FLUX.2, GPT Image, Nano Banana, video...) ----


@dataclass(repr=False)
class GenerationV2Request(_Body):
    """Body of POST /v2/generations: ``{model, public, parameters: {prompt, width, ...}}``.

    The fields are the parameters most models share; what a model accepts (sizes, ``mode``
    or ``quality``, its ``guidances``) is in its own schema (GET /v2/models). ``extra`` is
    merged into ``parameters`` as given, for model-specific keys (``duration``, ``contrast``...).
    ``prompt`` is None only for the models that take none (remove-bg, the Aurora upscalers, rodin-v2).
    """

    model: str = field(metadata={"json": "model"})  # V2Model, or any model name Leonardo lists
    prompt: Optional[str] = wire("parameters.prompt")
    width: Optional[int] = wire("parameters.width")
    height: Optional[int] = wire("parameters.height")
    quantity: Optional[int] = wire("parameters.quantity")
    seed: Optional[int] = wire("parameters.seed")
    negative_prompt: Optional[str] = wire("parameters.negative_prompt")
    mode: Optional[str] = wire("parameters.mode")  # Leonardo's own models: FAST, QUALITY, ULTRA...
    quality: Optional[str] = wire("parameters.quality")  # third-party models: LOW, MEDIUM, HIGH...
    style_ids: Optional[ListOf[str]] = wire("parameters.style_ids")
    prompt_enhance: Optional[str] = wire("parameters.prompt_enhance")  # PromptEnhance
    guidances: Optional[Mapping[str, Any]] = wire("parameters.guidances")
    public: Optional[bool] = wire("public")
    extra: Optional[Mapping[str, Any]] = wire("parameters.*")

    def _check_values(self, where: str) -> None:
        check_prompt(self.prompt, f"{where}.prompt")


# --- Known enum values (any other string is accepted too) ------------------------------------


class PresetStyle:
    """``presetStyle`` values (spec: sd_generation_style)."""

    ANIME = "ANIME"
    BOKEH = "BOKEH"
    CINEMATIC = "CINEMATIC"
    CINEMATIC_CLOSEUP = "CINEMATIC_CLOSEUP"
    CREATIVE = "CREATIVE"
    DYNAMIC = "DYNAMIC"
    ENVIRONMENT = "ENVIRONMENT"
    FASHION = "FASHION"
    FILM = "FILM"
    FOOD = "FOOD"
    GENERAL = "GENERAL"
    HDR = "HDR"
    ILLUSTRATION = "ILLUSTRATION"
    LEONARDO = "LEONARDO"
    LONG_EXPOSURE = "LONG_EXPOSURE"
    MACRO = "MACRO"
    MINIMALISTIC = "MINIMALISTIC"
    MONOCHROME = "MONOCHROME"
    MOODY = "MOODY"
    NONE = "NONE"
    NEUTRAL = "NEUTRAL"
    PHOTOGRAPHY = "PHOTOGRAPHY"
    PORTRAIT = "PORTRAIT"
    RAYTRACED = "RAYTRACED"
    RENDER_3D = "RENDER_3D"
    RETRO = "RETRO"
    SKETCH_BW = "SKETCH_BW"
    SKETCH_COLOR = "SKETCH_COLOR"
    STOCK_PHOTO = "STOCK_PHOTO"
    VIBRANT = "VIBRANT"
    UNPROCESSED = "UNPROCESSED"


class LcmStyle:
    """``style`` values of the LCM operations (spec: lcm_generation_style)."""

    ANIME = "ANIME"
    CINEMATIC = "CINEMATIC"
    DIGITAL_ART = "DIGITAL_ART"
    DYNAMIC = "DYNAMIC"
    ENVIRONMENT = "ENVIRONMENT"
    FANTASY_ART = "FANTASY_ART"
    ILLUSTRATION = "ILLUSTRATION"
    PHOTOGRAPHY = "PHOTOGRAPHY"
    RENDER_3D = "RENDER_3D"
    RAYTRACED = "RAYTRACED"
    SKETCH_BW = "SKETCH_BW"
    SKETCH_COLOR = "SKETCH_COLOR"
    VIBRANT = "VIBRANT"
    NONE = "NONE"


class Scheduler:
    """``scheduler`` values (spec: sd_generation_schedulers); the API defaults to EULER_DISCRETE."""

    KLMS = "KLMS"
    EULER_ANCESTRAL_DISCRETE = "EULER_ANCESTRAL_DISCRETE"
    EULER_DISCRETE = "EULER_DISCRETE"
    DDIM = "DDIM"
    DPM_SOLVER = "DPM_SOLVER"
    PNDM = "PNDM"
    LEONARDO = "LEONARDO"


class SdVersion:
    """``sd_version`` values (spec: sd_versions); the API defaults to v1_5."""

    V1_5 = "v1_5"
    V2 = "v2"
    V3 = "v3"
    SDXL_0_8 = "SDXL_0_8"
    SDXL_0_9 = "SDXL_0_9"
    SDXL_1_0 = "SDXL_1_0"
    SDXL_LIGHTNING = "SDXL_LIGHTNING"
    PHOENIX = "PHOENIX"
    FLUX = "FLUX"
    FLUX_DEV = "FLUX_DEV"
    KINO_2_0 = "KINO_2_0"


class ControlnetType:
    """``controlNetType`` values (deprecated field)."""

    POSE = "POSE"
    CANNY = "CANNY"
    DEPTH = "DEPTH"


class CanvasRequestType:
    """``canvasRequestType`` values."""

    INPAINT = "INPAINT"
    OUTPAINT = "OUTPAINT"
    SKETCH2IMG = "SKETCH2IMG"
    IMG2IMG = "IMG2IMG"


class InitImageType:
    """``controlnets[].initImageType`` values."""

    GENERATED = "GENERATED"
    UPLOADED = "UPLOADED"


class StrengthType:
    """``controlnets[].strengthType`` values."""

    LOW = "Low"
    MID = "Mid"
    HIGH = "High"
    ULTRA = "Ultra"
    MAX = "Max"


class Transparency:
    """``transparency`` values."""

    DISABLED = "disabled"
    FOREGROUND_ONLY = "foreground_only"


class V2Model:
    """Model names for POST /v2/generations (a selection; any name Leonardo lists is accepted)."""

    PHOENIX_1_0 = "phoenix-v1.0"
    PHOENIX_0_9 = "phoenix-v0.9"
    FLUX_PRO_2_0 = "flux-pro-2.0"
    FLUX_DEV = "flux-dev"
    FLUX_SCHNELL = "flux-schnell"
    FLUX_KONTEXT_PRO = "flux-kontext-pro"
    LUCID_ORIGIN = "lucid-origin"
    LUCID_REALISM = "lucid-realism"
    GPT_IMAGE_1_5 = "gpt-image-1.5"
    GPT_IMAGE_2 = "gpt-image-2"
    NANO_BANANA = "gemini-2.5-flash-image"
    NANO_BANANA_2 = "nano-banana-2"
    NANO_BANANA_PRO = "gemini-image-2"
    IDEOGRAM_3_0 = "ideogram-v3.0"
    SEEDREAM_4_5 = "seedream-4.5"
    HAILUO_2_3 = "hailuo-2_3"
    HAILUO_2_3_FAST = "hailuo-2_3-fast"
    KLING_2_6 = "kling-2.6"
    KLING_3_0 = "kling-3.0"
    VEO_3_1 = "veo-3.1-generate-001"
    VEO_3_1_FAST = "veo-3.1-fast-generate-001"


class PromptEnhance:
    """``prompt_enhance`` values of the v2 models."""

    AUTO = "AUTO"
    ON = "ON"
    OFF = "OFF"
