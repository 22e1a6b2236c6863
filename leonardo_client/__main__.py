"""The command line: ``python -m leonardo_client``, also installed as ``leonardo-client``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import Client, CreateGenerationRequest, LeonardoError, __version__, batch

__all__ = ["main", "build_parser"]

PROG = "leonardo-client"
# Seconds an offline generation stays PENDING: long enough to see the progress line at work.
OFFLINE_COMPLETION_DELAY = 1.5

DESCRIPTION = """\
Create images with Leonardo.Ai from the command line, and look up, list or delete
generations. The API key is read from the LEONARDO_API_KEY environment variable
(LEONARDO_BASE_URL, if set, replaces the API address). With --offline every command
runs against a built-in fake API instead: no key, no network, no credits spent."""

EPILOG = """\
examples:
  leonardo-client --offline generate "a lighthouse at dusk" --out images/
  export LEONARDO_API_KEY=<your key>
  leonardo-client generate "a red fox in the snow" --num-images 2 --out fox/
  leonardo-client get <generation id>
  leonardo-client list <your user id> --limit 5

exit status: 0 success, 1 API or download error (one line on stderr), 2 bad usage.
generate spends credits; get, list and delete do not."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``leonardo-client``: generate, get, list and delete, and --offline."""
    offline_help = "use a built-in fake API (no key, no network; nothing persists between runs)"
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offline", action="store_true", help=offline_help)
    # Also accepted after the command name; SUPPRESS keeps it from resetting the flag given before.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--offline", action="store_true", default=argparse.SUPPRESS, help=offline_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    generate = commands.add_parser(
        "generate",
        parents=[common],
        help="create images from a prompt, wait for them, save them (spends credits)",
        description="Create a generation, wait for it with a progress line on stderr, save its "
        "images into --out and print their paths on stdout.",
    )
    generate.add_argument("prompt", help="what to draw (at most 1500 characters)")
    generate.add_argument("--model-id", help="the model to use (default: the API's default model)")
    generate.add_argument("--num-images", type=_positive_int, default=1, metavar="N", help="images to make (default: 1)")
    generate.add_argument("--width", type=_positive_int, metavar="W", help="width in pixels, a multiple of 8")
    generate.add_argument("--height", type=_positive_int, metavar="H", help="height in pixels, a multiple of 8")
    generate.add_argument("--out", default=".", metavar="DIR", help="folder for the images (created if needed; default: .)")
    generate.add_argument(
        "--timeout", type=_positive_float, default=300.0, metavar="SECONDS", help="how long to wait (default: 300)"
    )

    get = commands.add_parser("get", parents=[common], help="print a generation as JSON")
    get.add_argument("id", help="the generation id")

    listing = commands.add_parser("list", parents=[common], help="print a user's generations as JSON, newest first")
    listing.add_argument("user_id", nargs="?", metavar="USER_ID", help="the user's id (with --offline: omit it, or 'me')")
    listing.add_argument("--limit", type=_non_negative_int, help="generations per page (API default: 10)")
    listing.add_argument("--offset", type=_non_negative_int, help="generations to skip (default: 0)")

    delete = commands.add_parser("delete", parents=[common], help="delete a generation, print the API's answer")
    delete.add_argument("id", help="the generation id")

    runs = commands.add_parser(
        "batch", parents=[common], help="run a file of prompts, resumably (spends credits)", description=batch.CLI_DESCRIPTION
    )
    batch.add_arguments(runs, _positive_int, _positive_float)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line (``python -m leonardo_client``, ``leonardo-client``).

    Args:
        argv: the arguments, without the program name; None reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 success, 1 API or download error (one line on stderr), 2 bad usage.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "list" and not args.offline and args.user_id in (None, "me"):
            parser.error("list needs a USER_ID (only --offline knows who 'me' is)")
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _connect(args.offline) as (client, me):
            return COMMANDS[args.command](client, args, me)
    except LeonardoError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # an argument the client refused before sending anything
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _connect(offline: bool) -> Iterator[Tuple[Client, Optional[str]]]:
    """A client for the real API, or for a fake one started for this run (with its user id)."""
    if not offline:
        with Client() as client:
            yield client, None
        return
    from .testing import FakeLeonardo  # loaded only when asked for

    with FakeLeonardo(completion_delay=OFFLINE_COMPLETION_DELAY) as fake:
        with Client(api_key=fake.api_key, base_url=fake.base_url) as client:
            yield client, fake.user_id


def _generate(client: Client, args: argparse.Namespace, me: Optional[str]) -> int:
    request = CreateGenerationRequest(
        prompt=args.prompt, model_id=args.model_id, num_images=args.num_images, width=args.width, height=args.height
    )
    job = client.create_generation(request).get("sdGenerationJob") or {}
    generation_id = job.get("generationId")
    if not generation_id:
        raise LeonardoError("the API accepted the request but sent no generation id")
    progress = _Progress(f"generation {generation_id}")
    try:
        generation = client.wait_for_generation(generation_id, timeout=args.timeout, on_poll=progress)
    finally:
        progress.close()
    for path in client.save_results(generation, args.out):
        print(path)
    return 0


def _get(client: Client, args: argparse.Namespace, me: Optional[str]) -> int:
    data = client.get_generation_by_id(args.id)
    if data.get("generations_by_pk") is None:
        raise LeonardoError(f"no generation with id {args.id!r}")
    return _print_json(data)


def _list(client: Client, args: argparse.Namespace, me: Optional[str]) -> int:
    user_id = args.user_id
    if me is not None and user_id in (None, "me"):
        user_id = me
    return _print_json(client.get_generations_by_user_id(user_id, limit=args.limit, offset=args.offset))


def _delete(client: Client, args: argparse.Namespace, me: Optional[str]) -> int:
    data = client.delete_generation_by_id(args.id)
    if data.get("delete_generations_by_pk") is None:
        raise LeonardoError(f"no generation with id {args.id!r} (nothing deleted)")
    return _print_json(data)


COMMANDS: Dict[str, Callable[[Client, argparse.Namespace, Optional[str]], int]] = {
    "generate": _generate,
    "get": _get,
    "list": _list,
    "delete": _delete,
    "batch": batch.command,
}


class _Progress:
    """The wait's progress on stderr: one line redrawn with \\r on a terminal, else plain lines."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.width = 0

    def __call__(self, status: str, elapsed: float) -> None:
        line = f"{self.label}: {status}, {elapsed:.1f}s elapsed"
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self.width))
            self.width = len(line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _print_json(data: Any) -> int:
    print(json.dumps(data, indent=2))
    return 0


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


if __name__ == "__main__":
    sys.exit(main())
