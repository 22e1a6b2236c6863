"""What a user's mypy --strict sees of the package (CI runs mypy --strict on this file too).

--strict reports a ``type: ignore`` that is not needed: each one below is an error mypy must find.
"""

import http.server
import pathlib

from leonardo_client import (
    Client,
    CreateGenerationRequest,
    CreateSvdMotionGenerationRequest,
    ElementInput,
    LcmInpaintingRequest,
)
from leonardo_client.batch import read_items, run_batch
from leonardo_client.testing import FakeLeonardo
from leonardo_client.webhooks import parse_webhook

# A required field is a required argument (a helper returning field(...) hid that from mypy).
CreateGenerationRequest()  # type: ignore[call-arg]
CreateSvdMotionGenerationRequest()  # type: ignore[call-arg]
ElementInput()  # type: ignore[call-arg]
LcmInpaintingRequest("data:image/jpeg;base64,AA", "a cat")  # type: ignore[call-arg]
CreateGenerationRequest("a lighthouse", num_images=2)


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        # http.server's headers, as the README's receiver passes them.
        body = self.rfile.read(int(self.headers["Content-Length"]))
        parse_webhook(body, self.headers, "callback-key")


def v2_root(client: Client) -> str:
    return client.v2_url + "/"  # type: ignore[operator]  # None when base_url does not end in /v1


def batch_into(client: Client, folder: pathlib.Path) -> str:
    # Paths may be os.PathLike; the summary's out_dir is a str (it was the Path given).
    items = read_items(folder / "prompts.txt")
    return run_batch(client, items, folder / "out").out_dir.upper()


class MyClient(Client):
    def newest(self) -> None: ...


def subclass_in_with() -> None:
    with MyClient("key") as client:  # __enter__ returns the subclass
        client.newest()
    with FakeLeonardo() as fake:
        parse_webhook(bytearray(b"{}"), {"Authorization": "Bearer k"}, "k")
        print(fake.base_url.upper())
