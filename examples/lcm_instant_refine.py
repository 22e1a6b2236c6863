"""Refine a local image with LCM instant refine and save the result.

Spends credits: yes, one LCM instant refine, a small amount (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network;
the image file may then be left out (a small built-in image is used).

LCM operations take the image as a base64 data URL, and Leonardo's docs ask for JPEG
("data:image/jpeg;base64,..."): convert a PNG first. They answer at once: the refined image
comes back in the response as a data URL too, and save_results decodes it to a file.

    python examples/lcm_instant_refine.py sketch.jpg --prompt "a castle on a hill" --out refined
    python examples/lcm_instant_refine.py --offline
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
import tempfile
from typing import List, Optional

from leonardo_client import Client, LcmInstantRefineRequest, LeonardoError
from leonardo_client.errors import error_text

# An 8x8 orange JPEG, for --offline runs without an image of your own.
SAMPLE_JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAT/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFAEBAAAAAAAAAAAAAAAAAAAABv/EABQRAQAAAAAAAAAAAAAAAAAAAAD/2gAMAwEAAhEDEQA/ALwBUgf/2Q=="


def strength(text: str) -> float:
    value = float(text)
    if not 0.1 <= value <= 1:  # nan too
        raise argparse.ArgumentTypeError(f"not between 0.1 and 1: {text!r}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Refine an image with LCM instant refine.")
    parser.add_argument("image", nargs="?", help="a .jpg file (optional with --offline)")
    parser.add_argument("--prompt", default="a castle on a hill, detailed, golden hour")
    parser.add_argument("--strength", type=strength, help="how far to move from the input, 0.1-1")
    parser.add_argument("--out", default="refined", help="folder for the result (default: refined)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)

    if args.image:
        if os.path.splitext(args.image)[1].lower() not in (".jpg", ".jpeg"):
            parser.error(f"LCM takes JPEG images; convert it to .jpg first: {args.image}")
        with open(args.image, "rb") as f:
            data_url = "data:image/jpeg;base64," + base64.b64encode(f.read()).decode("ascii")
    elif args.offline:
        data_url = "data:image/jpeg;base64," + SAMPLE_JPEG
    else:
        parser.error("give the image file to refine")

    os.makedirs(args.out, exist_ok=True)  # a bad --out fails here, before anything is spent
    tempfile.TemporaryFile(dir=args.out).close()

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo())
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY

        request = LcmInstantRefineRequest(image_data_url=data_url, prompt=args.prompt, strength=args.strength)
        result = client.perform_instant_refine(request)
        for path in client.save_results(result, args.out):
            print("saved", path)
    return 0


if __name__ == "__main__":
    if sys.stdout is None:  # started with stdout closed (>&-): what it prints would be lost
        sys.exit("error: stdout is closed")
    try:
        status = main()
        sys.stdout.flush()  # a closed or full stdout fails here, inside the try
    except KeyboardInterrupt as stop:  # during a create call, the client's note says it may have been made
        status = 130
        print("; ".join(["interrupted", *getattr(stop, "__notes__", [])]), file=sys.stderr)
    except (LeonardoError, OSError, ValueError) as err:  # the API, a file, or stdout: one line
        status = 1
        print(f"error: {error_text(err)}", file=sys.stderr)
        if isinstance(err, OSError):  # stdout may be what failed: keep exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
