"""leonardo_client: a small synchronous client for the Leonardo.Ai REST API."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any, List  # noqa: E402

from .client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Client  # noqa: E402
from .errors import LeonardoError  # noqa: E402

if TYPE_CHECKING:
    from .payloads import (
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
    )
else:
    # The request dataclasses are imported on first use (PEP 562): the `dataclasses` module
    # imports `inspect`, and building the classes costs as much again, about 15% more than
    # `import requests` itself. A script that only polls and downloads never pays for them.
    # (Defined only at run time, so type checkers still flag misspelt names.)
    _PAYLOAD_NAMES = frozenset(
        "CanvasRequestType ControlnetInput ControlnetType CreateGenerationRequest "
        "CreateLcmGenerationRequest CreateSvdMotionGenerationRequest CreateTextureGenerationRequest "
        "ElementInput InitImageType LcmInpaintingRequest LcmInstantRefineRequest LcmStyle "
        "LcmUpscaleRequest PresetStyle Scheduler SdVersion StrengthType Transparency "
        "UserElementInput".split()
    )

    def __getattr__(name: str) -> Any:
        if name in _PAYLOAD_NAMES:
            from . import payloads

            value = getattr(payloads, name)
            globals()[name] = value
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(globals()) | _PAYLOAD_NAMES)

__all__ = [
    "__version__",
    "Client",
    "LeonardoError",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "CreateGenerationRequest",
    "CreateTextureGenerationRequest",
    "CreateSvdMotionGenerationRequest",
    "CreateLcmGenerationRequest",
    "LcmInstantRefineRequest",
    "LcmInpaintingRequest",
    "LcmUpscaleRequest",
    "ElementInput",
    "ControlnetInput",
    "UserElementInput",
    "PresetStyle",
    "LcmStyle",
    "Scheduler",
    "SdVersion",
    "ControlnetType",
    "CanvasRequestType",
    "InitImageType",
    "StrengthType",
    "Transparency",
]
