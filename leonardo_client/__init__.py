"""leonardo_client: a small synchronous client for the Leonardo.Ai REST API."""

__version__ = "0.1.0"

try:
    from . import client, errors, payloads
    from .client import *  # noqa: F401,F403
    from .errors import *  # noqa: F401,F403
    from .payloads import *  # noqa: F401,F403
except KeyboardInterrupt:
    # Ctrl-C while the command line (leonardo-client, python -m leonardo_client) is still
    # importing: exit as the command does, with one line and no traceback. Any other
    # program importing this package gets its KeyboardInterrupt back. While "python -m"
    # finds its module, argv[0] is "-m" and only orig_argv (3.10+) names the module (the
    # package, or a module of it: leonardo_client.__main__): on 3.8/3.9 (no orig_argv:
    # "-m" read again) any -m program is taken for the command.
    import sys

    module = getattr(sys, "orig_argv", sys.argv)[-len(sys.argv)] if sys.argv[:1] == ["-m"] else ""
    ours = module.split(".")[0] in ("-m", "leonardo_client", "-mleonardo_client")
    if ours or sys.argv[0].endswith("leonardo-client"):
        sys.stderr.write("leonardo-client: interrupted\n")
        raise SystemExit(130) from None
    raise

__all__ = ["__version__"]  # extended as type checkers read it (pyright takes no "*" in a list)
__all__ += client.__all__
__all__ += errors.__all__
__all__ += payloads.__all__


def __dir__() -> "list[str]":
    """The public names and the public submodules imported so far; not _files, _retry or __dir__ itself."""
    return sorted(name for name in globals() if not name.startswith("_") or name in ("__version__", "__all__"))
