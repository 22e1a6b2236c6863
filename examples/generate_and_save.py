"""Generate images from a prompt and save them into a folder.

Spends credits: yes, one image generation (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.

    python examples/generate_and_save.py "a lighthouse at dusk" --num-images 2 --out images
    python examples/generate_and_save.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import List, Optional

from leonardo_client import Client, CreateGenerationRequest, LeonardoError, generation_id
from leonardo_client.errors import error_text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate images and save them.")
    parser.add_argument("prompt", nargs="?", default="a lighthouse at dusk, oil painting")
    parser.add_argument("--num-images", type=int, default=1)
    parser.add_argument("--out", default="images", help="folder for the images (default: images)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)  # a bad --out fails here, before anything is spent
    tempfile.TemporaryFile(dir=args.out).close()

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo(completion_delay=1.0))
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY

        request = CreateGenerationRequest(prompt=args.prompt, num_images=args.num_images)
        created = client.create_generation(request)
        print(f"generation {generation_id(created)} started, waiting for it...")  # LeonardoError if no id
        generation = client.wait_for_generation(created)  # an id or the create response
        for path in client.save_results(generation, args.out):
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
