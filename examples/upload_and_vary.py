"""Upload an image of yours, then make new images from it, with a v1 and a current (v2) model.

Spends credits: yes, two generations (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network;
the image file may then be left out (a small built-in image is used).

    python examples/upload_and_vary.py sketch.png --prompt "a castle on a hill, oil painting" --out varied
    python examples/upload_and_vary.py --offline
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

from leonardo_client import Client, CreateGenerationRequest, GenerationV2Request, LeonardoError, V2Model, generation_id
from leonardo_client.errors import error_text

# An 8x8 orange PNG, for --offline runs without an image of your own.
SAMPLE_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR42mM4UaGBFTEMLQkAUtVaASL5fhoAAAAASUVORK5CYII="


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Upload an image and generate from it.")
    parser.add_argument("image", nargs="?", help="a .png, .jpg or .webp file (optional with --offline)")
    parser.add_argument("--prompt", default="a castle on a hill, oil painting")
    parser.add_argument("--out", default="varied", help="folder for the results (default: varied)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)
    if not args.image and not args.offline:
        parser.error("give an image file (or --offline to use a built-in one)")

    os.makedirs(args.out, exist_ok=True)  # a bad --out fails here, before anything is spent
    tempfile.TemporaryFile(dir=args.out).close()

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo(completion_delay=1.0))
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY

        # A path (extension from its name), bytes or a binary file; the upload form expires in 2 minutes.
        upload = client.upload_init_image(args.image or base64.b64decode(SAMPLE_PNG), extension=None if args.image else "png")
        print("uploaded init image", upload["id"])

        v1 = CreateGenerationRequest(args.prompt, init_image_id=upload["id"], init_strength=0.5, num_images=1)
        # v2: the uploaded image as the model's image guidance (Phoenix calls it image_to_image).
        guidance = {"image_to_image": [{"image": {"id": upload["id"], "type": "UPLOADED"}, "strength": "MID"}]}
        v2 = GenerationV2Request(V2Model.PHOENIX_1_0, args.prompt, quantity=1, guidances=guidance)

        def wait_and_save(created: Dict[str, Any]) -> None:
            print(f"generation {generation_id(created)} started, waiting for it...")
            for path in client.save_results(client.wait_for_generation(created), args.out):
                print("saved", path)

        # Each one waited on and saved before the next is paid for: a failure never leaves one paid for, unsaved.
        wait_and_save(client.create_generation(v1))
        wait_and_save(client.create_generation_v2(v2))
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
