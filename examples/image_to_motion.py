"""Generate an image, then turn it into a short video (SVD motion) and save the mp4.

Spends credits: yes, one image generation and one motion generation (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.

    python examples/image_to_motion.py "waves breaking on a rocky shore" --out videos
    python examples/image_to_motion.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import List, Optional

from leonardo_client import Client, CreateGenerationRequest, CreateSvdMotionGenerationRequest, LeonardoError


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate an image, animate it, save the video.")
    parser.add_argument("prompt", nargs="?", default="waves breaking on a rocky shore at sunset")
    parser.add_argument("--motion-strength", type=int, default=5, help="1-10: how much moves (default: 5)")
    parser.add_argument("--out", default="videos", help="folder for the video (default: videos)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo(completion_delay=1.0))
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY

        job = client.create_generation(CreateGenerationRequest(prompt=args.prompt, num_images=1))
        print("generating the image...")
        image = client.wait_for_generation(job["sdGenerationJob"]["generationId"])["generated_images"][0]

        # Motion needs the *image* id (generated_images[].id), not the generation id.
        request = CreateSvdMotionGenerationRequest(image_id=image["id"], motion_strength=args.motion_strength)
        motion_id = client.create_svd_motion_generation(request)["motionSvdGenerationJob"]["generationId"]
        print("animating it (this can take a few minutes)...")
        motion = client.wait_for_generation(motion_id, timeout=600)

        os.makedirs(args.out, exist_ok=True)
        video_url = motion["generated_images"][0]["motionMP4URL"]
        print("saved", client.download_image(video_url, os.path.join(args.out, f"{motion_id}.mp4")))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except LeonardoError as err:
        raise SystemExit(f"error: {err}")
