"""The command line: ``python -m leonardo_client``, also installed as ``leonardo-client``."""

from __future__ import annotations

import sys

if not __package__:  # run as a file or folder (`python leonardo_client`): its relative imports need -m
    sys.stderr.write("leonardo-client: run it as 'python -m leonardo_client' or 'leonardo-client'\n")
    raise SystemExit(2)

try:  # Ctrl-C while the command starts: one line, as main() says it (the package's own imports: __init__.py)
    import argparse
    import codecs
    import collections
    import contextlib
    import io
    import json
    import os
    import re
    import shutil
    import signal
    import stat
    import tempfile
    import textwrap
    import threading
    import time
    from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional, Tuple, Union
    from urllib.parse import urlsplit

    from . import Client, CreateGenerationRequest, GenerationV2Request, LeonardoError, __version__
    from . import client as _client
    from ._files import UPLOAD_EXTENSIONS, extension_of, has_file, makedirs, read_upload
    from .batch import GALLERY, BatchInputError, BatchInterrupted, BatchItem, BatchProgress, credits_text, make_item
    from .batch import journaled, read_items, resume_advice, run_batch
    from .batch import DEFAULT_POSTS_PER_MINUTE, LOOK_AGAIN, MAX_CONCURRENCY, MAX_POSTS_PER_MINUTE, MIN_POSTS_PER_MINUTE
    from .client import (
        API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, MAX_SECONDS, MIN_SECONDS, WAIT_TIMEOUT, answered,
        create_job, user_details,
    )
    from .errors import _SHOWN, STOPPED_CREATING, error_text, message_from, printable, redact
    from .payloads import (
        MAX_INT, check_request, check_text, check_v1_model_id, check_v1_prompt, check_v1_size, cut, is_id, shown,
        to_payload,
    )
except KeyboardInterrupt:
    if sys.stderr is not None:
        sys.stderr.write("leonardo-client: interrupted\n")
    raise SystemExit(130) from None

__all__ = ["main", "build_parser"]

PROG = "leonardo-client"
# Seconds an offline generation stays PENDING: long enough to see the progress line at work.
OFFLINE_COMPLETION_DELAY = 1.5
# Handled as Ctrl-C is while a command runs (SIGHUP: its terminal closed). None on Windows, which never raises
# SIGTERM (taskkill ends a process outright).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP) if os.name == "posix" else ()
# Ctrl-C ends the command by SIGINT itself (entry()), as Python does: a shell loop running it stops too.
CTRL_C_KILLS = os.name == "posix"
# How a stop ends the command (the others: 128 + their number, from _Interrupts), as the helps say it.
STOPS_END = ", ".join(
    [f"Ctrl-C ends it {'by SIGINT (a shell shows 130; a program sees it killed)' if CTRL_C_KILLS else 'with 130'}"]
    + [f"{signal.Signals(number).name} {128 + number}" for number in STOP_SIGNALS]
)
REPEATED_SIGNAL = 0.1  # seconds in which a second stop signal is the same stop (see _Interrupts): no person is quicker
# The v2 guidances that take one uploaded image, in order of preference (--init-image).
INIT_IMAGE_GUIDANCES = ("image_to_image", "image_reference", "start_frame")
IMAGES = 1  # --num-images' default, generate's and batch's

# The v2 parameters generate's options give (--num-images always gives quantity).
GENERATE_OPTIONS = {"prompt": "prompt", "width": "width", "height": "height", "quantity": "num_images",
                    "guidances": "init_image"}

DESCRIPTION = """\
Create images with Leonardo.Ai from the command line, and look up, list or
delete generations. The API key is read from the LEONARDO_API_KEY environment
variable (LEONARDO_BASE_URL, if set, replaces the API address). With --offline
every command runs against a built-in fake API instead: no key, no network, no
credits spent."""

EPILOG = """\
examples:
  leonardo-client --offline generate "a lighthouse at dusk" --out images/
  export LEONARDO_API_KEY=<your key>
  leonardo-client generate "a red fox in snow" --model phoenix-v1.0 --out fox/
  leonardo-client generate "the fox in winter" --init-image fox.png --out fox/
  leonardo-client me
  leonardo-client list --limit 5
  leonardo-client batch prompts.txt --out catalogue/

""" + textwrap.fill(
    "exit status: 0 success, 1 API, download or output error (one line on stderr; also a closed pipe or a full"
    f" disk), 2 bad usage; {STOPS_END}. generate and batch spend credits; the other commands do not.", 79
)

BATCH_DESCRIPTION = """\
Run every prompt of PROMPTS (a text file, one prompt a line, or JSON Lines with per-item
fields: prompt, model or model_id, width, height, num_images, seed, negative_prompt, name,
and any other parameter) at the account's concurrency and POST rate. Images are saved into
--out as they finish, with a gallery (index.html) and a journal (journal.jsonl). Run the
same command again to resume: nothing is billed twice (an item whose create call may or
may not have run, and cannot be found, is marked ambiguous and left to you). Exit status:
0 every item complete, 1 some failed, ambiguous or pending, 2 bad usage or input; """ + STOPS_END + "."


class _Parser(argparse.ArgumentParser):
    def _print_message(self, message: str, file: Any = None) -> None:
        if message and file is sys.stdout:  # --help, --version: argparse would drop a failed write, exit 0
            with _writing_output():
                file.write(message)
        else:  # stderr: a failed write dropped, as 3.9+ argparse drops it (3.8's let it out: exit 1, not 2)
            with contextlib.suppress(OSError):
                super()._print_message(message, file)

    def error(self, message: str) -> NoReturn:
        if sys.stderr is None:  # `2>&-`: argparse would print the usage on stdout instead
            self.exit(2)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``leonardo-client`` and its commands."""
    offline_help = "use a built-in fake API (no key, no network; nothing persists between runs)"
    parser = _Parser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offline", action="store_true", help=offline_help)
    # Also accepted after the command name; SUPPRESS keeps it from resetting the flag given before.
    common = _Parser(add_help=False)
    common.add_argument("--offline", action="store_true", default=argparse.SUPPRESS, help=offline_help)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, description: Optional[str] = None) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[common], help=help, description=description or help)

    _add_generate_arguments(
        command(
            "generate",
            "create images from a prompt, wait for them, save them (spends credits)",
            "Create a generation, wait for it with a progress line on stderr, save its "
            "images into --out and print their paths on stdout.",
        )
    )
    _add_get_arguments(command("get", "print a generation as JSON, or save its files (--out)"))
    listing = command("list", "print your generations (or a user's) as JSON")
    listing.add_argument("user_id", nargs="?", metavar="USER_ID", help="whose (default: yours, from GET /me)")
    listing.add_argument("--limit", type=_non_negative_int, help="generations per page (API default: 10)")
    listing.add_argument("--offset", type=_non_negative_int, help="generations to skip (default: 0)")
    command("delete", "delete a generation, print the API's answer").add_argument("id", help="the generation id")
    command("me", "print your account: user id, concurrency slots, balances")
    command("models", "list the models create_generation_v2 (--model) accepts")
    upload = command("upload", "upload an image (png, jpg, jpeg, webp); print its init image id")
    upload.add_argument("path", help="the image to upload")
    _add_batch_arguments(command("batch", "run a file of prompts, resumably (spends credits)", BATCH_DESCRIPTION))
    return parser


def _add_generate_arguments(generate: argparse.ArgumentParser) -> None:
    generate.add_argument("prompt", nargs="?", type=_prompt, help="what to draw (left out for a model that takes none)")
    model = generate.add_mutually_exclusive_group()
    v2_model = "a current model, through v2 (e.g. phoenix-v1.0; see 'models')"
    v1_model = "a v1 model id (default: the API's default model)"
    model.add_argument("--model", type=_text, metavar="NAME", help=v2_model)
    model.add_argument("--model-id", type=_text, metavar="UUID", help=v1_model)
    init_image = "upload this image first and generate from it"
    generate.add_argument("--init-image", type=_path, metavar="PATH", help=init_image)
    generate.add_argument("--num-images", type=_positive_int, default=IMAGES, metavar="N", help="images to make (1)")
    size = "%s in pixels: on v1 a multiple of 8 from 32 to 1536; with --model, what that model takes"
    generate.add_argument("--width", type=_non_negative_int, metavar="W", help=size % "width")
    generate.add_argument("--height", type=_non_negative_int, metavar="H", help=size % "height")
    generate.add_argument("--out", default=".", metavar="DIR", help="folder for the images (created; default: .)")
    waiting = f"wait at most ({WAIT_TIMEOUT:g})"
    generate.add_argument("--timeout", type=_seconds, default=WAIT_TIMEOUT, metavar="SECONDS", help=waiting)
    generate.set_defaults(usage_error=generate.error)  # the prompt's check, after parsing: with generate's usage


def _add_get_arguments(get: argparse.ArgumentParser) -> None:
    get.add_argument("id", help="the generation id")
    saving = "wait for it as generate does, save its files there and print their paths (not the JSON)"
    get.add_argument("--out", metavar="DIR", help=saving)
    waiting = f"with --out: wait at most ({WAIT_TIMEOUT:g})"
    get.add_argument("--timeout", type=_seconds, metavar="SECONDS", help=waiting)
    get.set_defaults(usage_error=get.error)  # --timeout without --out, after parsing: with get's usage


def _add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", metavar="PROMPTS", help="the prompts file (text or .jsonl)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for images, gallery and journal")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", type=_text, metavar="NAME", help="default v2 model name (POST /v2/generations)")
    model.add_argument("--model-id", type=_text, metavar="UUID", help="default v1 model id (POST /generations)")
    parser.add_argument("--width", type=_non_negative_int, metavar="W", help="default width in pixels")
    parser.add_argument("--height", type=_non_negative_int, metavar="H", help="default height in pixels")
    images = "images per prompt (default: 1)"
    parser.add_argument("--num-images", type=_positive_int, default=IMAGES, metavar="N", help=images)
    parser.add_argument("--negative-prompt", type=_text, metavar="TEXT", help="default negative prompt")
    slots = "at most N generations in flight (default: the account's slots from GET /me, plus a small queue)"
    parser.add_argument("--concurrency", type=_number(int, 1, MAX_CONCURRENCY), metavar="N", help=slots)
    pace = _number(float, MIN_POSTS_PER_MINUTE, MAX_POSTS_PER_MINUTE)
    pace_help = f"create calls a minute ({DEFAULT_POSTS_PER_MINUTE:g})"
    parser.add_argument("--posts-per-minute", type=pace, default=DEFAULT_POSTS_PER_MINUTE, metavar="N", help=pace_help)
    reading = (
        f"how long to wait for one API answer (default: {DEFAULT_TIMEOUT[1]:g}); an unanswered create call is re-sent"
        f" only once it is older than that plus the connect timeout and {LOOK_AGAIN:g} s"
        f" ({sum(DEFAULT_TIMEOUT) + LOOK_AGAIN:g} s by default) and not found in your generations; one whose prompt"
        " may be listed rewritten (prompt enhancement) is left ambiguous"
    )
    parser.add_argument("--read-timeout", type=_seconds, metavar="SECONDS", help=reading)
    parser.add_argument("--retry-failed", action="store_true", help="send the items that failed again")
    parser.add_argument(
        "--resubmit-ambiguous", action="store_true", help="send again the items that may or may not have been created"
    )


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line (``python -m leonardo_client``, ``leonardo-client``).

    Args:
        argv: the arguments, without the program name; None reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 success, 1 API, download or output error, 2 bad usage, 130 interrupted
        (Ctrl-C; SIGTERM and SIGHUP, handled as Ctrl-C while the command runs: 143 and 129).
    """
    # What the output's encoding cannot show is escaped rather than failing once the work is done
    # (a C locale's undecodable bytes still pass as they came), only while main() runs.
    streams = [s for s in (sys.stdout, sys.stderr) if isinstance(s, io.TextIOWrapper) and not s.closed]
    changed = [(s, s.errors) for s in streams if s.errors in ("strict", "surrogateescape")]
    for stream, _ in changed:
        stream.reconfigure(errors=ESCAPE)
    interrupts = _Interrupts()
    try:
        with _stop_leftovers_unprinted(interrupts):
            return _run(argv, interrupts)
    finally:
        _blocking_again(interrupts.unblocked, sys.stderr)
        for stream, errors in changed:
            with contextlib.suppress(ValueError):  # closed meanwhile
                stream.reconfigure(errors=errors)


@contextlib.contextmanager
def _stop_leftovers_unprinted(interrupts: _Interrupts) -> Iterator[None]:
    """While main() runs, sys.unraisablehook drops what a stop leaves to finalizers, which Python prints as
    "Exception ignored in ..." and a traceback: a KeyboardInterrupt landing in one (Ctrl-C, SIGTERM, SIGHUP; not
    lost: the command ends as stopped), and an I/O object's failed close (a half-made http.client response, "no
    attribute 'fp'"), which Python itself drops but under -X dev. Any other goes to the hook that was set: a bug in
    a finalizer stays seen."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            interrupts.lost = True  # Python drops it: the command runs on, and ends as stopped all the same
        elif not isinstance(unraisable.object, io.IOBase):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def entry() -> int:
    """The program (``leonardo-client``, ``python -m leonardo_client``): main(), then Ctrl-C's default action.

    A Ctrl-C once main() has returned, while the interpreter shuts down (threads joined, urllib3's pools
    closed), printed a traceback: it now just ends the process (the shell sees 130). main() itself leaves
    the handler alone, for a program or a test that calls it. Interrupted by Ctrl-C, the process ends by
    SIGINT, as Python's own does: bash goes on with a loop (``for p in ...; do leonardo-client generate
    "$p"; done``) after a command that exited 130, and ends it only after one killed by the signal.
    """
    try:
        status = main()
    except KeyboardInterrupt:  # a second Ctrl-C while main() handled the first, or one as it returned
        status = 130
    finally:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not if ignored (`cmd &` in a script)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
    if status == 130 and CTRL_C_KILLS and signal.getsignal(signal.SIGINT) == signal.SIG_DFL:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):  # None, closed, a closed pipe
                stream.flush()
        os.kill(os.getpid(), signal.SIGINT)  # the shell sees 130 all the same
    return status


def _escape(error: UnicodeError) -> Tuple[Union[str, bytes], int]:
    """The ESCAPE error handler: an undecodable byte that surrogateescape read is written back as it
    came, any other character the encoding lacks as backslashreplace writes it ("\\xe9")."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    one = UnicodeEncodeError(error.encoding, error.object, error.start, error.start + 1, error.reason)
    undecodable = "\udc80" <= error.object[error.start] <= "\udcff"
    replacement, _ = codecs.lookup_error("surrogateescape" if undecodable else "backslashreplace")(one)
    return replacement, error.start + 1


ESCAPE = "leonardo-client-escape"
codecs.register_error(ESCAPE, _escape)


def _run(argv: Optional[List[str]], interrupts: _Interrupts) -> int:
    if sys.stdout is None:  # Python was started with stdout closed: every command's output would be lost
        return _error("cannot write the output: stdout is closed", 1)
    try:
        try:
            args = build_parser().parse_args(argv)
            if args.command == "generate":  # before anything is sent: a bad --out must not cost credits
                if args.prompt is None and not args.model:  # only a v2 model may take none
                    args.usage_error("the following arguments are required: prompt")
                _check_model(args)  # then --out: a usage error leaves no folder made (a Makefile's target)
                _check_folder_unmade(args.out)  # made once connected: _generate
            elif args.command == "get" and args.out is not None:  # as generate's, but made only by saving, once
                _check_folder_unmade(args.out)  # there is something to save
            elif args.command == "get" and args.timeout is not None:  # with no --out: get waits only to save
                args.usage_error("argument --timeout: not allowed without argument --out")
            elif args.command == "batch":  # as generate's: a usage error said alone, before --offline's line
                args.items = _batch_items(args)
        except SystemExit as exc:  # argparse: --help, --version, usage errors
            status = exc.code if isinstance(exc.code, int) else 2
        else:
            with interrupts, _connect(args.offline) as client:
                status = COMMANDS[args.command](client, args)
            if interrupts.lost:  # a stop a finalizer swallowed: it ran on to its end
                raise KeyboardInterrupt
        with _writing_output():
            sys.stdout.flush()  # a closed or full stdout fails here, not at exit (argparse ignores it)
        return status
    except LeonardoError as err:
        return _error(f"{err}{_base_url_hint(err)}{_request_id(err)}", 1)
    except (ValueError, TypeError) as err:  # an argument refused before anything was sent
        return _error(err, 2)
    except KeyboardInterrupt as stop:  # what it leaves behind, if anything (a generation that goes on)
        return _error(f"interrupted; {stop}" if str(stop) else "interrupted", interrupts.status)
    except MemoryError:  # a file too big to upload, a body too big to hold
        return _error("out of memory", 1)
    except _OutputFailed as err:  # a closed pipe (`| head`), a full disk
        return _error(f"cannot write the output: {err}", 1)
    except OSError as err:  # another file than stdout (one the command needs), named by the error itself
        return _error(error_text(err), 1)


def _base_url_hint(error: LeonardoError) -> str:
    """For an API call's 404 when LEONARDO_BASE_URL lacks the API root's path (GET /me sent to the web site), what to
    check. Whatever its body: the API answers its own errors in its JSON envelope, and so may a wrong route on its
    host (.../api/rest/me); with the path there, a 404 is the API's own and said as it is."""
    try:
        base, root = _client._check_base_url(None, ""), urlsplit(DEFAULT_BASE_URL).path  # as the Client read it
    except ValueError:  # not the Client's: --offline's is the fake's
        return ""
    roots = (base, _client.v2_root(base) or base)  # v1 calls, and v2 calls beside them
    sent_there = (error.url or "").lower().startswith(tuple(at.lower() + "/" for at in roots))  # not a download
    if error.status_code != 404 or urlsplit(base).path.endswith(root) or not sent_there:
        return ""
    return f": is {BASE_URL_ENV} right? The API's address ends in {root} ({DEFAULT_BASE_URL})"


def _request_id(error: LeonardoError) -> str:
    """" [request id: ...]" of the answer at fault (or of the error ``error`` was made of): for Leonardo's support."""
    said = error.request_id or getattr(error.__cause__, "request_id", None)
    return f" [request id: {printable(cut(said))}]" if said else ""


class _OutputFailed(Exception):
    """Writing to stdout failed: the reason (its OSError's)."""


class _StoppedWriting(KeyboardInterrupt):
    """A stop while stdout was written: a write its stalled reader held (a full pipe)."""


@contextlib.contextmanager
def _writing_output() -> Iterator[None]:
    """Around a write to stdout: an OSError there is an _OutputFailed, told apart from any other file's; a stop, a
    _StoppedWriting."""
    try:
        yield
    except (OSError, ValueError) as exc:  # ValueError: closed by the program that called main()
        raise _OutputFailed(error_text(exc)) from exc
    except KeyboardInterrupt:
        raise _StoppedWriting() from None


def _stdout(*lines: object) -> None:
    """Each line on stdout, as every command prints: a failed write is an _OutputFailed."""
    with _writing_output():
        for line in lines:
            print(line)


def _error(message: object, status: int) -> int:
    _flush_or_drop_stdout(stopped=status >= 128)
    message = redact(str(message), os.environ.get(API_KEY_ENV, "").strip())  # pasted where an id or URL goes
    _stderr(f"{PROG}: error: {message}" if status < 128 else f"{PROG}: {message}")  # 128 + a signal: interrupted
    return status


def _flush_or_drop_stdout(stopped: bool = False) -> None:
    """What a failing command printed before (get --out's paths) is written now or never: a closed pipe or a full
    disk fails here, not again as Python exits (a traceback, exit 120). ``stopped``: a pipe's paused reader is not
    waited for either (as stderr's: _unblocked), what does not fit dropped."""
    if sys.stdout is None:  # Python was started without one
        return
    unblocked = _unblocked(sys.stdout, 2) if stopped else None
    try:
        try:
            sys.stdout.flush()
        finally:
            _blocking_again(unblocked, sys.stdout)
    except (OSError, ValueError, AttributeError):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # AttributeError: a stream with no file
            stdout = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stdout)
            finally:
                os.close(devnull)


class _Interrupts:
    """While a command runs, SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does, so that they end
    it as cleanly (a batch's gallery finished, no download's temporary file left, the progress line ended);
    not where they are ignored (``nohup``) or handled already, nor outside the main thread (a program's).
    A stop signal within REPEATED_SIGNAL s of the last is the same stop: ``timeout`` sends its signal to the
    command, then to its process group, and the second one was taken as "Ctrl-C again to quit at once"."""

    def __init__(self) -> None:
        # The exit status of an interrupted command: 128 + the signal, as the shell shows a process it ended.
        self.status = 128 + signal.SIGINT
        self.installed: Dict[int, Any] = {}  # signal -> the handler it had
        self.last: Optional[float] = None  # when the last one came
        self.lost = False  # a stop whose KeyboardInterrupt landed in a finalizer (see _stop_leftovers_unprinted)
        self.unblocked: Optional[int] = None  # stderr's file descriptor, made non-blocking by a stop

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():  # signal.signal() works only there
            return
        for number in (signal.SIGINT, *STOP_SIGNALS):
            handler = signal.getsignal(number)
            if handler in (signal.SIG_DFL, signal.default_int_handler):
                self.installed[number] = handler
                signal.signal(number, self._interrupt)

    def _interrupt(self, number: int, frame: Any) -> None:
        if self.last is not None and time.monotonic() - self.last < REPEATED_SIGNAL:
            return
        self.last, self.status = time.monotonic(), 128 + number
        if self.unblocked is None:
            self.unblocked = _unblocked(sys.stderr, 1)
        raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self.installed.items():
            signal.signal(number, handler)
        self.installed.clear()


def _unblocked(stream: Any, other: int) -> Optional[int]:
    """Once a stop is taken, ``stream`` (stderr; stdout as the stop is said) made non-blocking: what does not fit a
    full pipe (its reader paused) is dropped, not waited for for ever (``timeout``'s SIGTERM ended nothing). Its file
    descriptor, if it was blocking. Only a pipe's, not the ``other`` stream's too (2>&1: stdout's lines would be
    dropped, and a paused reader waited for): a terminal's is the shell's too, which a process killed before main()
    ends would leave it."""
    with contextlib.suppress(AttributeError, OSError, ValueError):  # None, not a file, Windows (no set_blocking)
        fd: int = stream.fileno()
        pipe = os.fstat(fd)  # (the other closed: an OSError, left blocking)
        if stat.S_ISFIFO(pipe.st_mode) and not os.path.samestat(pipe, os.fstat(other)) and os.get_blocking(fd):
            os.set_blocking(fd, False)
            return fd
    return None


def _blocking_again(fd: Optional[int], stream: Any) -> None:
    """``stream``, unblocked as ``fd``, blocking again (its pipe may be shared: with the shell), what did not fit
    dropped: flushed into /dev/null, put in its place a moment; Python's own flush as it exits would wait for ever."""
    if fd is None:
        return
    with contextlib.suppress(OSError, ValueError):
        os.set_blocking(fd, True)  # first, whatever fails next
        saved = os.dup(fd)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        finally:
            os.dup2(saved, fd)
            os.close(saved)


@contextlib.contextmanager
def _connect(offline: bool) -> Iterator[Client]:
    """A client for the real API, or for a fake one started for this run."""
    with contextlib.ExitStack() as stack:
        if offline:
            FakeLeonardo = _testing().FakeLeonardo
            _stderr(f"{PROG}: offline: the built-in fake API answers, and its images are placeholders")
            try:
                fake = stack.enter_context(FakeLeonardo(completion_delay=OFFLINE_COMPLETION_DELAY))
            except (OSError, RuntimeError) as exc:  # no port, no thread to spare (ulimit -u), its spec unreadable
                raise LeonardoError(f"the built-in fake API cannot start: {error_text(exc)}") from exc
            fake.requests = collections.deque(maxlen=0)  # no record: none is read, and a batch's grew ~26 KB an item
            client = Client(api_key=fake.api_key, base_url=fake.base_url)
        elif not os.environ.get(API_KEY_ENV, "").strip():
            raise LeonardoError(f"no API key: set {API_KEY_ENV}, or try --offline (a built-in fake API, no key)")
        else:
            client = Client()
        try:
            yield client
        finally:  # a Ctrl-C in urllib3's pool finalizer (a weakref callback) was printed, "Exception ignored", and lost
            with _signals_held():
                client.close()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and STOP_SIGNALS, where a Python handler takes them, held until the block ends, then handled."""
    held: List[int] = []
    handlers: Dict[int, Callable[[int, Any], Any]] = {}
    main_thread = threading.current_thread() is threading.main_thread()
    for number in (signal.SIGINT, *STOP_SIGNALS) if main_thread else ():
        handler = signal.getsignal(number)
        if callable(handler):
            handlers[number] = handler
            signal.signal(number, lambda number, frame: held.append(number))
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    for number in held[:1]:
        handlers[number](number, None)


def _check_folder(folder: str) -> None:
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--out {shown(folder)} exists and is not a folder")
    try:
        makedirs(folder)
        with tempfile.TemporaryFile(dir=folder, buffering=0) as probe:  # a file can be made there, and written:
            probe.write(b"-")  # an empty one fits on a full disk, and the generation was paid for, then not saved
    except OSError as exc:
        raise ValueError(f"--out {shown(folder)}: cannot write there ({exc.strerror or exc})") from exc


def _check_folder_unmade(folder: str) -> None:
    """An --out checked before connecting, and made later (generate's once connected, get's once there is something
    to save, batch's by run_batch): refused as _check_folder refuses it, then unmade, so that a failure before (no
    key, an unknown id) leaves no folder."""
    missing = []  # the folder and its parents that do not exist yet, deepest first
    path = folder
    while path and not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    try:
        _check_folder(folder)
    finally:
        for path in missing:
            with contextlib.suppress(OSError):  # one makedirs did not get to, or not empty (another's)
                os.rmdir(path)


def _generate(client: Client, args: argparse.Namespace) -> int:
    image = read_upload(_image(args.init_image), None) if args.init_image else None  # a usage error: no --out made
    _check_folder(args.out)  # made before anything is sent: one that cannot be must fail before the generation is paid
    init_image = client.upload_init_image(*image)["id"] if image else None
    # A failure where the call may have run, or an answer without its id, says the generation may have been made;
    # so does a stop while it runs (offline, nothing outlives the command).
    try:
        if args.model:
            created = client.create_generation_v2(_v2_request(args, init_image))
        else:
            created = client.create_generation(
                CreateGenerationRequest(
                    prompt=args.prompt, model_id=args.model_id, num_images=args.num_images, width=args.width,
                    height=args.height, init_image_id=init_image,
                )
            )
        job, id_field = create_job(created)  # the API's answer: "it may have been made" whatever it holds
        made = str(job[id_field])
    except KeyboardInterrupt:
        if args.offline:
            raise
        where = "'leonardo-client list' shows your latest generations"
        raise KeyboardInterrupt(f"{STOPPED_CREATING} ({where})") from None
    try:
        status = _save_generation(client, made, args, asked=args.num_images)  # as num_images (v1) or quantity (v2)
        with _writing_output():  # its paths, written now: a full stdout or a closed pipe said with what was made
            sys.stdout.flush()
        return status
    except _StoppedWriting:  # its paths (as printed: PYTHONUNBUFFERED=1), their reader stalled: saved all the same
        saved = f"generation {made} was made and its files saved into {args.out}"  # (offline, nothing outlives it)
        raise KeyboardInterrupt("" if args.offline else saved) from None
    except _OutputFailed as exc:  # saved, but a script reading stdout learns nothing of it: it would pay again
        if args.offline:
            raise
        raise _made_but(made, "writing its saved files' paths failed", exc) from exc


def _save_generation(client: Client, made: str, args: argparse.Namespace, asked: Optional[int] = None) -> int:
    """Wait for generation ``made`` (a progress line on stderr, at most args.timeout), save its files into
    args.out (names from ids: saved again, they are replaced) and print their paths: generate's and get --out's.
    ``asked``: the images generate asked for (get: those the generation lists); fewer are waited for (see
    _wait_for_the_rest), then said (exit 1)."""
    label, line = f"generation {made}", _StatusLine()
    # generate's failures say it was made and paid for (_made_but); not get's own (it is that "try"), nor offline's
    paid = args.command == "generate" and not args.offline  # (nothing outlives the command: its Ctrl-C too)
    started = time.monotonic()  # the line's elapsed: from here, not from each wait (_wait_for_the_rest asks again)

    def progress(status: str, _elapsed: float) -> None:  # what changes first: a narrow terminal cuts the end
        line.show(f"{status}, {time.monotonic() - started:.1f}s elapsed, {label}")

    try:
        generation = client.wait_for_generation(made, timeout=args.timeout, on_poll=progress)
        wanted = len(_images(generation)) if asked is None else asked
        generation = _wait_for_the_rest(client, made, generation, wanted, started + args.timeout, progress)
    except KeyboardInterrupt:
        raise _stopped(made, args.offline) from None
    except LeonardoError as exc:  # a null answer (a replica behind the create), a timeout, a refusal
        if paid and not _refunded(exc):
            raise _made_but(made, "waiting for it failed", exc) from exc
        raise
    finally:
        line.close()
    try:
        paths = client.save_results(generation, args.out)  # images with no URL yet: skipped, said after
    except KeyboardInterrupt:  # COMPLETE: as a stop in the wait
        raise _stopped(made, args.offline) from None
    except (LeonardoError, ValueError) as exc:  # ValueError: --out, checked before, a file now (replaced meanwhile)
        failure = "saving its files failed"
        raise (_made_but(made, failure, exc) if paid else LeonardoError(f"{label}: {failure}: {exc}")) from exc
    if not paths:  # exit 0 would say it was made
        said = "is COMPLETE with no file to save"
        raise _made_but(made, said) if paid else LeonardoError(f"{label} {said}")
    _stdout(*paths)
    said = _short_of(generation, asked)
    if said:  # saved and printed: a script still learns it
        raise _made_but(made, said) if paid else LeonardoError(f"{label}: {said}")
    return 0


def _wait_for_the_rest(
    client: Client, made: str, generation: Dict[str, Any], asked: int, deadline: float, progress: Any
) -> Dict[str, Any]:
    """A COMPLETE generation with fewer images to save than ``asked`` asked again, as a wait asks one with none, for
    EMPTY_GRACE (within --timeout): the API may fill them in after COMPLETE. With none, the wait did (not again).
    The last answer with the most files (one with fewer never replaces it)."""
    until, interval = min(time.monotonic() + _client.EMPTY_GRACE, deadline), _client.POLL_INTERVAL
    while 0 < _images_to_save(generation) < asked:
        left = until - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
        timeout = max(MIN_SECONDS, until - time.monotonic())  # a PENDING or failing answer: not past the grace
        try:
            answer = client.wait_for_generation(made, timeout=timeout, on_poll=progress)
        except LeonardoError:  # a lagging or refused answer: what the COMPLETE one had is saved, the rest said
            break
        if _images_to_save(answer) >= _images_to_save(generation):  # never one with fewer files than had come
            generation = answer
        interval = min(interval * _client.POLL_BACKOFF, _client.MAX_POLL_INTERVAL)
    return generation


def _short_of(generation: Dict[str, Any], asked: Optional[int]) -> str:
    """What is missing: of generate's images ``asked``, those that did not come; get's (None), the images listed
    with no file. "" if none."""
    came = _images_to_save(generation)
    if asked is None:
        listed = len(_images(generation))
        return f"{listed - came} of the {listed} images it lists had no file" if came < listed else ""
    return f"only {came} of the {asked} images asked came" if came < asked else ""


def _images(generation: Dict[str, Any]) -> List[Any]:
    images = generation.get("generated_images")
    return images if isinstance(images, list) else []


def _images_to_save(generation: Dict[str, Any]) -> int:
    """How many of a generation's images have a file to save (a url, or a video's motionMP4URL)."""
    return sum(map(has_file, _images(generation)))


def _stopped(made: str, offline: bool) -> KeyboardInterrupt:
    """A stop once generation ``made`` exists (waited for, or its files downloading): it goes on, paid for, and get
    saves its files. Offline, a bare stop: nothing outlives the command."""
    if offline:
        return KeyboardInterrupt()
    return KeyboardInterrupt(f"generation {made} goes on: 'leonardo-client get {made} --out DIR' saves its files")


def _made_but(made: str, failure: str, cause: Optional[Exception] = None) -> LeonardoError:
    """generate's failure once its create call was answered: its files are lost to the script, not its cost, and
    running generate again pays again. Said first, with how to save them; the cause without what that says (a wait's
    "generation <id>", its poll's URL), a long one cut to fit the line."""
    said = f"generation {made} was made (and paid for), but {failure} (try 'leonardo-client get {made} --out DIR')"
    if cause is None:
        return LeonardoError(said)
    text = re.sub(rf"generation {re.escape(made)} | \([A-Z]+ \S+/{re.escape(made)}\)", "", str(cause))
    room = max(_SHOWN - len(said) - 2, 60)  # str() cuts a longer line in its middle: cut the cause, not the advice
    return LeonardoError(f"{said}: {cut(text, room, room // 3)}")


def _refunded(error: LeonardoError) -> bool:
    """Whether the wait ended on a FAILED generation: refunded (API_FACTS_MORE), with no files to save."""
    return isinstance(error.body, dict) and error.body.get("status") == "FAILED"


def _v2_request(args: argparse.Namespace, init_image: Optional[str]) -> GenerationV2Request:
    guidance = _init_image_guidance(args.model) if args.init_image else None
    reference: Dict[str, Any] = {"image": {"id": init_image, "type": "UPLOADED"}}
    if guidance == "image_to_image":
        reference["strength"] = "MID"  # required there; the API's default elsewhere
    guidances = {guidance: [reference]} if guidance else None
    return GenerationV2Request(
        args.model, args.prompt, width=args.width, height=args.height, quantity=args.num_images, guidances=guidances
    )


def _check_v1_flags(args: argparse.Namespace) -> None:
    """--model-id, --width, --height and --num-images as POST /generations takes them, each called by its flag."""
    check_v1_model_id(args.model_id, "--model-id")
    check_v1_size(args.width, args.height, args.num_images, ("--width", "--height", "--num-images"))


def _check_model(args: argparse.Namespace) -> None:
    """A prompt for a model that takes one (every v1 one), none for a v2 one whose schema has none
    (remove-bg); for a v2 model, each parameter it requires given by its option, none it has no option
    for, and then the whole body as its schema in the bundled spec takes it: refused before an upload."""
    model, prompt = args.model, args.prompt
    if not model:  # v1: the prompt's length, --width and --height as POST /generations takes them
        check_v1_prompt(prompt)
        _check_v1_flags(args)
        return
    parameters = _model_schema(model, needed=prompt is None).get("properties", {}).get("parameters", {})
    if args.init_image:
        _init_image_guidance(model)  # the model takes an image: checked before the upload
    required = parameters.get("required", ())
    unset = ", ".join(name for name in required if name not in GENERATE_OPTIONS)
    if unset:
        raise ValueError(f"model {model!r} needs {unset}, which generate has no option for: use create_generation_v2")
    if prompt is not None and parameters and "prompt" not in parameters.get("properties", {}):
        raise ValueError(f"model {model!r} takes no prompt: leave it out")
    if prompt is None and "prompt" in required:  # a model the spec does not know was refused above
        raise ValueError(f"model {model!r} needs a prompt")
    missing = [name for name in required if name != "prompt" and getattr(args, GENERATE_OPTIONS[name]) is None]
    if missing:  # sent, the API would refuse it (after an --init-image upload)
        options = " and ".join("--" + GENERATE_OPTIONS[name].replace("_", "-") for name in missing)
        raise ValueError(f"model {model!r} needs {options}")
    if parameters:  # its sizes, its quantity, the parameters it takes at all (an uploaded image's id stands in)
        flags = {name: getattr(args, name) for name in ("width", "height", "num_images")}
        alone = argparse.Namespace(**dict(vars(args), prompt=prompt and "x"))  # the options, a placeholder prompt
        for checked, named in ((alone, flags), (args, {})):  # what the options alone cause: said by the flags typed
            body = to_payload(_v2_request(checked, "00000000-0000-4000-8000-000000000000"))
            try:
                check_request("v2", body, ("--width", "--height"))
            except ValueError as exc:
                raise _by_flags(named, exc) from None


def _model_schema(model: str, needed: bool) -> Dict[str, Any]:
    """--model's schema in the bundled spec; {} for one it does not know (a model newer than this version: the API
    judges it, and refuses a typo without charging), a usage error where the schema is ``needed``."""
    schema: Optional[Dict[str, Any]] = _bundled_spec().models().get(model)
    if schema is None and needed:
        raise ValueError(f"--model {model!r} is not among the models this version knows (see 'leonardo-client models')")
    return schema or {}


def _init_image_guidance(model: str) -> str:
    """The guidance of a v2 model that takes an uploaded image, from the spec bundled with the fake."""
    schema = _model_schema(model, needed=True)
    offered = schema["properties"]["parameters"]["properties"].get("guidances", {}).get("properties", {})
    found = next((name for name in INIT_IMAGE_GUIDANCES if name in offered), None)
    if found is None:
        raise ValueError(f"--init-image: model {model!r} takes no image guidance")
    return found


def _bundled_spec() -> Any:
    """The spec bundled with FakeLeonardo (a testing.spec.Spec): what the API takes."""
    return _testing().spec.bundled_spec()


def _testing() -> Any:
    """leonardo_client.testing (the fake, the bundled spec), loaded when asked for, a stop held meanwhile: one landing
    in the making of its classes (a dataclass's exec) ended the process by SIGINT (not 143) or as a RuntimeError."""
    with _signals_held():
        from . import testing
    return testing


def _get(client: Client, args: argparse.Namespace) -> int:
    if args.out is not None:
        args.timeout = WAIT_TIMEOUT if args.timeout is None else args.timeout  # generate's default
        return _save_generation(client, args.id, args)
    data = client.get_generation_by_id(args.id)
    if answered(data, "generations_by_pk") is None:
        raise LeonardoError(f"no generation with id {args.id!r}")
    return _print_json(data)


def _list(client: Client, args: argparse.Namespace) -> int:
    user_id = args.user_id
    if user_id in (None, "me"):
        user_id = _my_account(client)["user"]["id"]
    data = client.get_generations_by_user_id(user_id, limit=args.limit, offset=args.offset)
    answered(data, "generations")
    return _print_json(data)


def _my_account(client: Client) -> Dict[str, Any]:
    """GET /me's account; LeonardoError if it names no user id (an empty ``user_details``, " " or "..")."""
    answer = client.get_user_info()
    details, said = user_details(answer), message_from(answer)  # an error in a 200: the API's text
    if not is_id(details["user"].get("id")):
        raise LeonardoError(f"GET /me answered without a user id{f': {said}' if said else ''}")
    return details


def _delete(client: Client, args: argparse.Namespace) -> int:
    data = client.delete_generation_by_id(args.id)
    if answered(data, "delete_generations_by_pk") is None:  # a DELETE sent again (an answer lost) may have done it
        raise LeonardoError(f"no generation with id {args.id!r} (nothing deleted now: gone already, or never there)")
    return _print_json(data)


def _me(client: Client, args: argparse.Namespace) -> int:
    details = _my_account(client)
    balances = ("apiPaidTokens", "apiSubscriptionTokens", "apiPlanTokenRenewalDate", "paidTokens", "subscriptionTokens")
    fields = {"user id": details["user"].get("id"), "username": details["user"].get("username"),
              "concurrency slots": details.get("apiConcurrencySlots"), **{key: details.get(key) for key in balances}}
    for label, value in fields.items():
        _print_fields(f"{label}:", value, separator=" ")
    return 0


def _models(client: Client, args: argparse.Namespace) -> int:
    """One line per available model: the name --model takes, its title, its id. The name is the bundled spec's
    whose name or title is the answer's name or id, letters and digits compared ("GPT_IMAGE_1_5", "GPT Image 1.5"
    and the spec's "gpt-image-1.5", titled "GPT Image-1.5", are one model)."""
    def plain(text: Any) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower()) if isinstance(text, str) else ""

    spec = _bundled_spec().models().items()
    known = {plain(said): name for name, schema in spec for said in (name, schema.get("title")) if plain(said)}
    models = answered(client.get_models_v2(), "productionApiAvailableModels")
    if not isinstance(models, list) or not all(isinstance(model, dict) for model in models):
        raise LeonardoError("GET /v2/models answered no list of models")
    for model in models:
        title = model.get("name") if isinstance(model.get("name"), str) else "?"
        name = known.get(plain(model.get("name"))) or known.get(plain(model.get("id")), "?")
        _print_fields(name, title, model.get("id"))
    return 0


def _upload(client: Client, args: argparse.Namespace) -> int:
    _print_fields(client.upload_init_image(_image(args.path))["id"])
    return 0


def _image(path: str) -> str:
    """``path``, if its name says an image type the upload takes: the command line has no ``extension=``."""
    if extension_of(path) not in UPLOAD_EXTENSIONS:
        names = ", ".join("." + extension for extension in UPLOAD_EXTENSIONS)
        raise ValueError(f"cannot upload {shown(path)}: its name has no image extension the upload takes ({names})")
    return path


def _print_fields(*fields: Any, separator: str = "\t") -> None:
    """One line of a server's values on stdout, each escaped as on stderr (see errors.printable); None is "-"."""
    _stdout(separator.join(printable("-" if field is None else str(field)) for field in fields))


def _batch_items(args: argparse.Namespace) -> List[BatchItem]:
    """batch's items, its flags applied, and then its --out checked (bad lines: a ValueError, exit 2)."""
    names = ("model", "model_id", "width", "height", "num_images", "negative_prompt")
    defaults = {name: getattr(args, name) for name in names}
    _testing()  # what read_items checks the items by, and the run counts their images by
    try:
        items = read_items(args.prompts, defaults, check_spec=not journaled(args.out))  # all bad lines first
    except BatchInputError as bad:  # a flag refused is every line's fault: said once, by its name
        _check_flags(args, defaults, bad)
        raise
    _check_folder_unmade(args.out)
    return items


def _batch(client: Client, args: argparse.Namespace) -> int:
    """0 every item complete, 1 some not; stopped, a KeyboardInterrupt saying what to do, which _run prints as every
    command's stop. Its items are read before (_batch_items)."""
    if args.read_timeout is not None:
        client.timeout = (DEFAULT_TIMEOUT[0], args.read_timeout)  # the CLI's own client, made with DEFAULT_TIMEOUT
    run_options = ("concurrency", "posts_per_minute", "retry_failed", "resubmit_ambiguous", "offline")
    options = {name: getattr(args, name) for name in run_options}
    printer = _BatchPrinter()
    try:
        summary = run_batch(client, args.items, args.out, on_progress=printer, **options)
    except BatchInterrupted as stop:
        summary = stop.summary
    except KeyboardInterrupt:  # a second Ctrl-C ("again to quit at once"): a rerun reconciles what was in flight
        raise KeyboardInterrupt(resume_advice(args.offline)) from None
    finally:
        printer.close()
    if summary.interrupted:
        for line in str(summary).splitlines():
            _stderr(line)
        raise KeyboardInterrupt(resume_advice(args.offline))
    _stdout(summary, os.path.join(args.out, GALLERY))
    return 0 if summary.ok else 1


def _check_flags(args: argparse.Namespace, defaults: Dict[str, Any], bad: BatchInputError) -> None:
    """The batch's flags alone (an item of a placeholder prompt) refused as every bad line is: said once, by them
    (v1's as generate says them)."""
    try:
        check_request(*make_item({"prompt": "x"}, defaults).request())
    except ValueError as exc:
        if all(error.endswith(f": {exc}") for error in bad.errors):
            if not args.model:
                _check_v1_flags(args)
            raise _by_flags(defaults, exc) from None


def _by_flags(flags: Dict[str, Any], error: ValueError) -> ValueError:
    """``error`` after the ``flags`` given (by their dest), as typed: "--width 777: ..."."""
    given = [f"--{name.replace('_', '-')} {shown(value)}" for name, value in flags.items()
             if value is not None and (name, value) != ("num_images", IMAGES)]  # --num-images' default
    return ValueError(f"{' '.join(given)}: {error}" if given else str(error))


COMMANDS: Dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "generate": _generate,
    "get": _get,
    "list": _list,
    "delete": _delete,
    "me": _me,
    "models": _models,
    "upload": _upload,
    "batch": _batch,
}


class _StatusLine:
    """A status line on stderr: redrawn in place on a terminal, else one line per update."""

    def __init__(self) -> None:
        try:
            self.tty = sys.stderr.isatty()
        except (AttributeError, ValueError, OSError):  # None (2>&-), closed, or a program's write-only object
            self.tty = False
        self.width = 0

    def show(self, line: str) -> None:
        if self.tty:  # drawn over the last one, padded to hide what is left of it; a wrapped line could not be
            columns = _columns() - 1
            line = printable(line)[:columns]  # as shown: an escaped character takes 4 columns
            self.width = _stderr(line, before="\r", end="", width=min(self.width, columns))  # narrowed since?
        else:
            _stderr(line)

    def say(self, line: str) -> None:
        """A line of its own, the status line cleared first (it is drawn again by the next show)."""
        _stderr(line, before="\r" + " " * self.width + "\r" if self.width else "")
        self.width = 0

    def close(self) -> None:
        if self.width:
            _stderr("")
            self.width = 0


def _columns() -> int:
    """The width of the terminal stderr shows on (stdout may be a file: batch's summary goes there)."""
    try:  # a terminal that does not know its size (a pty from script, docker or ssh) says 0
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):  # not a real terminal
        columns = 0
    return columns or shutil.get_terminal_size().columns or 80  # then COLUMNS (Python 3.8 may say 0 again)


class _BatchPrinter(_StatusLine):
    """The batch's progress: a bar on a terminal (events worth keeping above it), else a line per event."""

    drawn = 0.0  # time.monotonic() when the bar was last drawn

    def __call__(self, progress: BatchProgress) -> None:
        done = progress.complete + progress.failed + progress.ambiguous
        if not self.tty:
            self.show(f"[{done}/{progress.total}] {progress.message}")
            return
        if progress.event in ("failed", "ambiguous", "waiting", "stopping", "resent", "adopted"):
            self.say(progress.message)
        elif progress.event not in ("start", "done") and time.monotonic() - self.drawn < 0.1:
            return
        self.drawn = time.monotonic()
        self.show(_bar(progress, done, _columns() - 1))


def _bar(progress: BatchProgress, done: int, room: int) -> str:
    """The counts, ETA, credits spent and rate (cut from the end to fit), after a bar if there is room."""
    filled = int(24 * done / progress.total) if progress.total else 24
    minutes = progress.elapsed / 60.0
    rate = progress.done_this_run / minutes if minutes > 0 else 0.0
    left = progress.total - done
    eta = "%dm%02ds" % divmod(int(left / rate * 60), 60) if rate > 0 and left else "-"
    spent = credits_text(progress.credits, "0", " + ", unknown=progress.cost_unknown)
    counts = (
        f"{done}/{progress.total} done, {progress.in_flight} in flight, {progress.failed} failed, "
        f"ETA {eta}, spent {spent}, {rate:.1f}/min"
    )
    bar = f"[{'#' * filled}{'.' * (24 - filled)}] "
    return bar + counts if len(bar + counts) <= room else counts


def _stderr(line: str, before: str = "", end: str = "\n", width: int = 0) -> int:
    """``line`` on stderr, padded to ``width``, between ``before`` and ``end`` (the CLI's own "\\r" and "\\n").

    Every line goes out here: one holding a server's text (a status, an error) gets its non-printable
    characters escaped (ESC as ``\\x1b``), so that it cannot drive the terminal. Returns the line's width
    as shown. Nothing is written when stderr is closed (None when Python started without one): it is not the work.
    """
    shown = printable(line)
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None:
            sys.stderr.write(before + shown.ljust(width) + end)
            sys.stderr.flush()
    return len(shown)


def _print_json(data: Any) -> int:
    _stdout(json.dumps(data, indent=2))
    return 0


def _not_blank(what: str, blank: str) -> Callable[[str], str]:
    """An argparse type: a name or text, not blank (an empty --model, "$MODEL" unset, was taken as none:
    a generation billed on the API's default model; in batch, every line's fault); ``blank`` says why not.
    Bytes sys.argv left undecoded (an ASCII locale without UTF-8 mode) are read as UTF-8, as batch reads its
    file; bytes that are not UTF-8 are refused."""

    def convert(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(blank)
        try:
            return check_text(text, what)
        except ValueError as exc:
            with contextlib.suppress(UnicodeError):
                return convert(os.fsencode(text).decode("utf-8"))  # blank once decoded: U+00A0 or U+3000 alone
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


_prompt = _not_blank("the prompt", "the prompt is empty")
_text = _not_blank("the value", "must not be empty or blank")


def _path(text: str) -> str:
    """An argparse type: a path that is not empty (an empty --init-image was taken as none)."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _number(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` from ``low`` to ``high``, so that a value the client
    would refuse is refused before anything is sent, not after the create call."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {shown(text)}") from None
        if not low <= value <= high:  # NaN fails this too
            lowest, highest = (bound if isinstance(bound, int) else f"{bound:g}" for bound in (low, high))
            raise argparse.ArgumentTypeError(f"must be from {lowest} to {highest}")  # 604800, not 604800.0
        return value

    return convert


# Counts and seconds are bounded as the client bounds them.
_positive_int, _non_negative_int = _number(int, 1, MAX_INT), _number(int, 0, MAX_INT)
_seconds = _number(float, MIN_SECONDS, MAX_SECONDS)


if __name__ == "__main__":
    sys.exit(entry())
