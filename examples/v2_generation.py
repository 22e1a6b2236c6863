"""Generate images with one of Leonardo's current models (v2) and save them.

Spends credits: yes, one generation (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.

    python examples/v2_generation.py "a red fox in the snow" --model flux-pro-2.0 --out fox
    python examples/v2_generation.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import List, Optional

from leonardo_client import Client, GenerationV2Request, LeonardoError, V2Model, generation_id
from leonardo_client.errors import error_text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate images with a current (v2) model.")
    parser.add_argument("prompt", nargs="?", default="a red fox in the snow, golden hour")
    parser.add_argument("--model", default=V2Model.PHOENIX_1_0,
                        help="a v2 image model that makes 1024x1024 images (default: phoenix-v1.0)")
    parser.add_argument("--quantity", type=int, default=2)
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

        # The shared parameters are fields; a model's own ones (here Phoenix's contrast) go in extra.
        extra = {"contrast": "HIGH"} if args.model == V2Model.PHOENIX_1_0 else None
        request = GenerationV2Request(args.model, args.prompt, width=1024, height=1024, quantity=args.quantity, extra=extra)
        created = client.create_generation_v2(request)
        cost = (created.get("generate") or {}).get("cost") or {"amount": created.get("apiCreditCost"), "unit": "credits"}
        spent = "cost unknown" if cost.get("amount") is None else f"{cost['amount']} {cost.get('unit', 'credits')}"
        print(f"generation {generation_id(created)} started ({spent}), waiting...")
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
