"""leonardo_client: a small synchronous client for the Leonardo.Ai REST API."""

__version__ = "0.1.0"

from . import client, errors, payloads  # noqa: E402
from .client import *  # noqa: E402,F401,F403
from .errors import *  # noqa: E402,F401,F403
from .payloads import *  # noqa: E402,F401,F403

__all__ = ["__version__", *client.__all__, *errors.__all__, *payloads.__all__]


def __dir__() -> "list[str]":
    """The public names and the public submodules imported so far; not _files, _retry or __dir__ itself."""
    return sorted(name for name in globals() if not name.startswith("_") or name in ("__version__", "__all__"))
