"""Generate an image, then turn it into a short video with Hailuo 2.3; save both.

Spends credits: yes, one image generation and one video generation (none with --offline).
Hailuo 2.3 (v2) is what Leonardo names to replace Motion 1.0 (SVD), retired on 2026-06-17:
the generated image is the video's start frame.
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.

    python examples/image_to_motion.py "waves breaking on a rocky shore" --out videos
    python examples/image_to_motion.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import List, Optional

from leonardo_client import Client, CreateGenerationRequest, GenerationV2Request, LeonardoError, V2Model, generation_id
from leonardo_client.errors import error_text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate an image, animate it, save both.")
    parser.add_argument("prompt", nargs="?", default="waves breaking on a rocky shore at sunset")
    parser.add_argument("--duration", type=int, choices=(6, 10), default=6, help="seconds of video (default: 6)")
    parser.add_argument("--out", default="videos", help="folder for the image and the video (default: videos)")
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

        image_request = CreateGenerationRequest(args.prompt, num_images=1, width=1376, height=768)
        job = client.create_generation(image_request)
        print(f"image generation {generation_id(job)} started, waiting for it...")
        generation = client.wait_for_generation(job)
        images = generation.get("generated_images") or []
        if not images:  # COMPLETE, yet the API may list none
            print(f"error: generation {generation_id(job)} holds no image to animate", file=sys.stderr)
            return 1
        for path in client.save_results(generation, args.out):  # paid for: kept whatever becomes of the video
            print("saved", path)
        # The start frame is the *image* id (generated_images[].id), not the generation id.
        start_frame = [{"image": {"id": images[0]["id"], "type": "GENERATED"}}]
        request = GenerationV2Request(V2Model.HAILUO_2_3, args.prompt, width=1376, height=768, quantity=1,
                                      guidances={"start_frame": start_frame}, extra={"duration": args.duration})
        video = client.create_generation_v2(request)
        print(f"video generation {generation_id(video)} started, waiting (this can take a few minutes)...")
        for path in client.save_results(client.wait_for_generation(video, timeout=600), args.out):
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
