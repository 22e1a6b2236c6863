"""Make the pictures of a small product catalogue in one resumable batch.

Spends credits: yes, one generation per product (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.
Run it again with the same --out to resume: finished products are skipped, nothing is
paid for twice; add --retry-failed to send failed ones again, as its summary says. Open
<out>/index.html to see the gallery.

    python examples/batch_catalogue.py --out catalogue
    python examples/batch_catalogue.py --out catalogue --retry-failed
    python examples/batch_catalogue.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import List, Optional

from leonardo_client import Client, LeonardoError
from leonardo_client.batch import BatchInterrupted, BatchProgress, resume_advice, run_batch
from leonardo_client.errors import error_text

PRODUCTS = ["walnut chair", "brass desk lamp", "linen sofa", "oak bookshelf", "ceramic vase", "wool rug"]


def show(progress: BatchProgress) -> None:
    if progress.event in ("complete", "failed", "ambiguous", "waiting"):
        print(f"[{progress.complete}/{progress.total}] {progress.message}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a product catalogue in one batch.")
    parser.add_argument("--out", default="catalogue", help="folder for images, gallery and journal")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    # The summary names these when some items failed or may not have been made.
    parser.add_argument("--retry-failed", action="store_true", help="send the items that failed again")
    parser.add_argument("--resubmit-ambiguous", action="store_true",
                        help="send again the items that may or may not have been made (may bill twice)")
    args = parser.parse_args(argv)

    items = [
        {"prompt": f"a {product}, studio product photo, white background", "name": product, "num_images": 1}
        for product in PRODUCTS
    ]
    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo(completion_delay=(0.3, 1.0), concurrency_slots=3))
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY
        try:
            summary = run_batch(client, items, args.out, on_progress=show, retry_failed=args.retry_failed,
                                resubmit_ambiguous=args.resubmit_ambiguous, offline=args.offline)
        except BatchInterrupted as stop:  # what was in flight is journaled: a rerun resumes (not an --offline one)
            print(stop.summary)
            print(f"interrupted: {resume_advice(args.offline)}", file=sys.stderr)
            return 130
    print(summary)
    print(f"gallery: {args.out}/index.html")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    if sys.stdout is None:  # started with stdout closed (>&-): what it prints would be lost
        sys.exit("error: stdout is closed")
    try:
        status = main()
        sys.stdout.flush()  # a closed or full stdout fails here, inside the try
    except KeyboardInterrupt:
        status = 130
        print("interrupted", file=sys.stderr)
    except (LeonardoError, OSError, ValueError) as err:  # the API, a file, stdout, or --out holds another batch
        status = 1
        print(f"error: {error_text(err)}", file=sys.stderr)
        if isinstance(err, OSError):  # stdout may be what failed: keep exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
