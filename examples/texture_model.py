"""Texture a 3D model: make texture maps for an uploaded model asset and save them.

Spends credits: yes, one texture generation (none with --offline).
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing: no key, no network.

Legacy: the texture endpoints were dropped from Leonardo's public API reference in 2026-04;
the client keeps them for accounts that still have them. The model asset id comes from
uploading an .obj model to Leonardo (not part of this client).

    python examples/texture_model.py <model asset id> --prompt "weathered bronze" --out textures
    python examples/texture_model.py --offline
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import warnings
from typing import List, Optional

from leonardo_client import Client, CreateTextureGenerationRequest, LeonardoError, generation_id
from leonardo_client.errors import error_text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Make texture maps for a 3D model asset and save them.")
    parser.add_argument("model_asset_id", nargs="?", help="the uploaded model's id (any text with --offline)")
    parser.add_argument("--prompt", default="weathered bronze with green patina")
    parser.add_argument("--out", default="textures", help="folder for the maps (default: textures)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)
    if not args.model_asset_id and not args.offline:
        parser.error("give the model asset id")

    os.makedirs(args.out, exist_ok=True)  # a bad --out fails here, before anything is spent
    tempfile.TemporaryFile(dir=args.out).close()

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo(completion_delay=1.0))
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
        else:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY

        request = CreateTextureGenerationRequest(prompt=args.prompt, model_asset_id=args.model_asset_id or "fake-model")
        created = client.create_texture_generation(request)
        print(f"texture generation {generation_id(created)} started, waiting for it...")  # LeonardoError if no id
        texture = client.wait_for_texture_generation(created)  # an id or the create response
        for path in client.save_results(texture, args.out):  # one file per map: albedo, normal, ...
            print("saved", path)
    return 0


if __name__ == "__main__":
    if sys.stdout is None:  # started with stdout closed (>&-): what it prints would be lost
        sys.exit("error: stdout is closed")
    # The client warns that these endpoints are legacy: one line, as the errors are, without the source line.
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
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
