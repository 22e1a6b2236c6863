"""What a user's mypy --strict sees of the package (CI runs mypy --strict on this file too).

--strict reports a ``type: ignore`` that is not needed: each one below is an error mypy must find.
"""

import gzip
import http.server
import pathlib
import sys
from typing import IO

from leonardo_client import (
    Client,
    ControlnetInput,
    CreateGenerationRequest,
    CreateSvdMotionGenerationRequest,
    ElementInput,
    GenerationV2Request,
    LcmInpaintingRequest,
    UserElementInput,
    V2Model,
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

# A list field takes a list or tuple; a part (ControlnetInput...) may be a mapping, sent as given. A str is no list.
nets = [ControlnetInput("init-id", "UPLOADED", 67)]  # a List[ControlnetInput], and List is invariant
as_mappings = [{"initImageId": "i", "initImageType": "UPLOADED", "preprocessorId": 67}]  # a List[Dict[str, object]]
CreateGenerationRequest("a fox", image_prompts=("id-1", "id-2"), elements=(ElementInput("ak"),), controlnets=nets)
CreateGenerationRequest("a fox", controlnets=as_mappings, user_elements=[UserElementInput(), {"userLoraId": 1}])
GenerationV2Request(V2Model.PHOENIX_1_0, "a fox", style_ids=("style-1",))
CreateGenerationRequest("a fox", image_prompts="id-1")  # type: ignore[arg-type]


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


def uploads_and_callbacks(client: Client, member: IO[bytes], folder: pathlib.Path) -> None:
    # Any binary stream uploads (a tar or zip member, a SpooledTemporaryFile, a GzipFile), but a text file.
    client.upload_init_image(member, extension="png")
    with gzip.open(folder / "photo.png.gz") as gz:
        client.upload_init_image(gz, extension="png")
    client.upload_init_image(sys.stdin, extension="png")  # type: ignore[arg-type]
    # A callback's result is ignored: a write()'s count, tqdm's update()'s bool.
    client.wait_for_generation("gen-id", on_poll=lambda status, elapsed: sys.stderr.write(status))
    run_batch(client, [], folder, on_progress=lambda progress: sys.stderr.write(progress.event))


def misspelt_setting(fake: FakeLeonardo) -> None:
    # Only the settings it has: a misspelt one did nothing (at run time it raises AttributeError too).
    fake.fail_new_generations = True
    fake.fail_new_generation = True  # type: ignore[attr-defined]
