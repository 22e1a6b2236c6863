"""leonardo_client: a small synchronous client for the Leonardo.Ai REST API."""

__version__ = "0.1.0"

from .client import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Client  # noqa: E402
from .errors import LeonardoError  # noqa: E402
from .payloads import (  # noqa: E402
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
