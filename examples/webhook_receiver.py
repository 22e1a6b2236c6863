"""Receive Leonardo's webhook: a generation finished, here are its images.

Spends credits: none by itself (with --offline it also starts one fake generation to be told about).
Reads the callback key from LEONARDO_WEBHOOK_KEY (the "webhook callback API key" you set on
your production API key; LEONARDO_API_KEY is not needed here). With --offline it runs
against FakeLeonardo, which POSTs the same payload when a generation completes: no network.

Leonardo calls an https URL: run this behind your https reverse proxy, and allow only
Leonardo's addresses (leonardo_client.webhooks.LEONARDO_WEBHOOK_IPS).

    LEONARDO_WEBHOOK_KEY=<callback key> python examples/webhook_receiver.py --port 8080
    python examples/webhook_receiver.py --offline
"""

from __future__ import annotations

import argparse
import http.server
import os
import queue
import sys
import threading
from typing import Any, Dict, List, Optional

from leonardo_client import Client, CreateGenerationRequest, LeonardoError
from leonardo_client.errors import error_text
from leonardo_client.payloads import check_text
from leonardo_client.webhooks import parse_webhook

MAX_BODY = 1024 * 1024  # the documented payload is a few kB
READ_TIMEOUT = 10.0  # seconds a sender may be silent: one silent longer is let go


def make_handler(callback_key: str, events: "queue.Queue[Dict[str, Any]]") -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if not length.isdecimal() or len(length) > 9 or int(length) > MAX_BODY:  # read no more, whoever sends it
                self.send_error(411 if not length else 413 if length.isdecimal() else 400)  # none: chunked
                return
            try:
                event = parse_webhook(self.rfile.read(int(length)), self.headers, callback_key)
            except ValueError as err:  # wrong key, not JSON, unknown shape: one line each, here too (a key mistyped?)
                print(f"refused a callback from {self.client_address[0]}: {err}", file=sys.stderr)
                self.send_error(401 if "Authorization" in str(err) else 400, str(err))
                return
            self.send_response(204)
            self.end_headers()
            events.put(event)  # hand it over; answer fast, do the work elsewhere

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            pass

    return Handler


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # a burst of callbacks waits to be accepted (the default, 5, drops them to retry)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that hung up before its answer, say: one line, and the server goes on.
        print(f"error: serving {client_address[0]}: {sys.exc_info()[1]!r}", file=sys.stderr)


def port(text: str) -> int:
    if not text.isdecimal() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Receive Leonardo's generation webhooks.")
    parser.add_argument("--port", type=port, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API, and stop after one event")
    args = parser.parse_args(argv)

    callback_key = "offline-callback-key" if args.offline else os.environ.get("LEONARDO_WEBHOOK_KEY", "")
    if not callback_key.strip():
        raise ValueError("set LEONARDO_WEBHOOK_KEY to your webhook callback API key")
    # Said once, here: each callback would be refused for it (spaces only, bytes that are not text).
    check_text(callback_key, "LEONARDO_WEBHOOK_KEY")
    events: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    # Loopback only: your https proxy, which lets in only Leonardo's addresses, forwards to it.
    server = Server(("127.0.0.1", 0 if args.offline else args.port), make_handler(callback_key, events))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if args.offline:
            return run_offline(server, callback_key, events)
        print(f"listening on port {server.server_address[1]}; Ctrl-C to stop")
        while True:
            show(events.get())
    finally:
        server.shutdown()
        server.server_close()


def run_offline(server: http.server.HTTPServer, callback_key: str, events: "queue.Queue[Dict[str, Any]]") -> int:
    from leonardo_client.testing import FakeLeonardo

    url = f"http://127.0.0.1:{server.server_address[1]}/leonardo-webhook"
    with FakeLeonardo(completion_delay=1.0, webhook_url=url, webhook_api_key=callback_key) as fake:
        with Client(api_key=fake.api_key, base_url=fake.base_url) as client:
            client.create_generation(CreateGenerationRequest("a lighthouse at dusk", num_images=1))
            print("generation started; waiting for the webhook...")
            show(events.get(timeout=30))
    return 0


def show(event: Dict[str, Any]) -> None:
    # parse_webhook checked data.object, and for image_generation.complete its id, status and
    # images[].url; other events (video...) are not documented: read what they hold with get().
    # Printed with !r: a line break or a terminal escape in what was sent is shown, not obeyed.
    generation, what = event["data"]["object"], event["type"]
    print(f"{what!r}: generation {generation.get('id')!r} {generation.get('status')!r}: {generation.get('prompt')!r}")
    images = generation.get("images")
    for image in images if isinstance(images, list) else []:
        print("  image", repr(image.get("url") if isinstance(image, dict) else image))


if __name__ == "__main__":
    if sys.stdout is None:  # started with stdout closed (>&-): what it prints would be lost
        sys.exit("error: stdout is closed")
    # Each line out at once (to a log file too), and what the terminal cannot show escaped, not fatal.
    sys.stdout.reconfigure(line_buffering=True, errors="backslashreplace")  # type: ignore[union-attr]
    try:
        status = main()
        sys.stdout.flush()  # a closed or full stdout fails here, inside the try
    except KeyboardInterrupt:
        status = 130
        print("interrupted", file=sys.stderr)
    except (LeonardoError, OSError, ValueError, queue.Empty) as err:  # the API, a file, stdout: one line
        status = 1
        print(f"error: {error_text(err) or 'no webhook arrived'}", file=sys.stderr)
        if isinstance(err, OSError):  # stdout may be what failed: keep exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
