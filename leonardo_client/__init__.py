"""leonardo_client: a small synchronous client for the Leonardo.Ai REST API."""

__version__ = "0.1.0"

from . import client, errors, payloads  # noqa: E402
from .client import *  # noqa: E402,F401,F403
from .errors import *  # noqa: E402,F401,F403
from .payloads import *  # noqa: E402,F401,F403

__all__ = ["__version__", *client.__all__, *errors.__all__, *payloads.__all__]
