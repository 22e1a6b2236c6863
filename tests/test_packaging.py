"""The package as users meet it: its public names, its docstrings, its installed metadata."""

from __future__ import annotations

import configparser
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List

import pytest
import responses
from packaging.requirements import Requirement  # pytest's own dependency

import leonardo_client
from conftest import (
    API_KEY, ARGUMENTS, BASE, api_matchers, call_endpoint, download_matchers, endpoint_doc, endpoint_methods, endpoint_root,
    finished,
    openapi_spec, resolve,
)
from leonardo_client import DEFAULT_TIMEOUT, Client, LeonardoError, batch, client as client_module, errors, payloads
from leonardo_client.testing import FakeLeonardo, RecordedRequest

PACKAGE_DIR = Path(leonardo_client.__file__).resolve().parent
REPO = Path(__file__).resolve().parent.parent


def public_methods() -> List[str]:
    return sorted(name for name, member in vars(Client).items() if callable(member) and not name.startswith("_"))


def section(doc: str, title: str) -> str:
    """The text of a Google-style section (``Args:``, ``Returns:``, ``Raises:``) of a docstring."""
    found = re.search(rf"^{title}:\n((?:[ \t]+\S.*\n|[ \t]*\n)*)", inspect.cleandoc(doc) + "\n", re.M)
    return found.group(1) if found else ""


# --- public names -------------------------------------------------------------------------------


def test_all_lists_names_that_exist_once() -> None:
    names = leonardo_client.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(leonardo_client, name) is not None, name


def test_star_import_gives_the_public_names() -> None:
    namespace: dict = {}
    exec("from leonardo_client import *", namespace)
    assert set(leonardo_client.__all__) <= set(namespace)
    assert {"Client", "LeonardoError", "CreateGenerationRequest", "PresetStyle", "__version__"} <= set(namespace)


def test_dir_shows_the_public_names_and_submodules_only() -> None:
    import leonardo_client.webhooks  # noqa: F401 - a public submodule, listed once imported

    names = dir(leonardo_client)
    assert set(leonardo_client.__all__) <= set(names)
    assert {"client", "errors", "payloads", "webhooks"} <= set(names)
    assert [name for name in names if name.startswith("_") and name not in ("__all__", "__version__")] == []
    others = set(names) - set(leonardo_client.__all__) - {"__all__"}  # no Any, List, TYPE_CHECKING, tables...
    assert others and all(inspect.ismodule(getattr(leonardo_client, name)) for name in others), others


def test_every_request_dataclass_and_constant_class_is_public() -> None:
    exported = set(leonardo_client.__all__)
    for module in (client_module, errors, payloads):
        for name in module.__all__:
            if name != "to_payload":  # stays in leonardo_client.payloads, next to the dataclasses
                assert name in exported, f"{module.__name__}.{name} is not in leonardo_client.__all__"
                assert getattr(leonardo_client, name) is getattr(module, name)


def test_the_package_is_typed() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()


def test_installed_metadata_matches_the_package() -> None:
    try:
        installed = metadata.version("leonardo-client")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        pytest.skip("leonardo-client is not installed (pip install -e '.[test]')")
    assert installed == leonardo_client.__version__
    requires = metadata.requires("leonardo-client") or []
    assert any(r.replace(" ", "").startswith("requests") and ">=2.25" in r for r in requires), requires
    # Each Python allows one range of urllib3, every version of which imports there: 1.26.0-1.26.4 do not on
    # Python 3.12 and later (the six they bundle). Left out everywhere: 1.26.4-1.26.6 (an https proxy given by IP
    # address fails) and 2.0.0-2.0.1 (gzip bodies cut at 64 KiB, silently).
    broken = ["1.26.4", "1.26.5", "1.26.6", "2.0.0", "2.0.1", "3.0"]
    for python, oldest in (("3.8", "1.26.0"), ("3.11", "1.26.0"), ("3.12", "1.26.7")):
        ranges = [r.specifier for r in map(Requirement, requires)
                  if r.name == "urllib3" and (r.marker is None or r.marker.evaluate({"python_version": python}))]
        assert len(ranges) == 1 and oldest in ranges[0] and "2.0.2" in ranges[0] and "2.8" in ranges[0], python
        assert not any(version in ranges[0] for version in broken), (python, requires)
    if sys.version_info >= (3, 10):
        scripts = list(metadata.entry_points(group="console_scripts"))
    else:  # Python 3.8 and 3.9: a dict of groups
        scripts = list(metadata.entry_points().get("console_scripts", []))
    assert any(ep.name == "leonardo-client" and ep.value == "leonardo_client.__main__:entry" for ep in scripts)


def test_setup_py_reads_the_version_without_importing_the_package() -> None:
    # setuptools < 46.4 (Ubuntu 20.04's 44, RHEL 8's 41.6) reads setup.cfg's `attr:` by importing the package, and so
    # requests, which pip has not installed yet: `pip install .` failed there with ModuleNotFoundError.
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    assert not [key for section in config.values() for key, value in section.items() if "attr:" in value]
    if importlib.util.find_spec("setuptools") is None:  # a Python 3.12+ venv has none: pip builds in one of its own
        pytest.skip("setuptools is not installed")
    script = (
        "import runpy, sys\n"
        "sys.modules.update(requests=None, leonardo_client=None)  # neither can be imported\n"
        "sys.argv[1:] = ['--version']\n"
        "runpy.run_path('setup.py', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1:] == [leonardo_client.__version__]


def test_the_package_runs_imported_from_a_zip(tmp_path: Path) -> None:
    # A zipapp, a .pyz, a zip on PYTHONPATH: the bundled spec was read as a file beside spec.py, which a zip has
    # not; --offline failed with "cannot write the output: Not a directory", FakeLeonardo() with NotADirectoryError.
    archive = tmp_path / "leonardo_client.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(PACKAGE_DIR.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(PACKAGE_DIR.parent).as_posix())
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = str(archive)
    out = tmp_path / "images"
    generate = [sys.executable, "-m", "leonardo_client", "--offline", "generate", "a fox", "--out", str(out)]
    script = (
        "import leonardo_client\n"
        "from leonardo_client import Client\n"
        "from leonardo_client.testing import FakeLeonardo\n"
        "with FakeLeonardo() as fake, Client(api_key=fake.api_key, base_url=fake.base_url) as client:\n"
        "    print(leonardo_client.__file__, client.get_user_info()['user_details'][0]['user']['id'] == fake.user_id)\n"
    )
    # Both at once: the script runs while generate waits on its fake's 1.5 s.
    pipes: Dict[str, Any] = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    generating = subprocess.Popen(generate, **pipes)
    scripted = subprocess.Popen([sys.executable, "-c", script], **pipes)
    done = finished(generating, 120)
    assert done.returncode == 0, done.stderr
    assert [Path(line).parent for line in done.stdout.splitlines()] == [out]
    done = finished(scripted, 120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(archive)) and done.stdout.split()[-1] == "True"  # imported from the zip




# --- docstrings -----------------------------------------------------------------------------------


def test_there_are_the_thirteen_endpoint_methods_and_six_of_todays_api() -> None:
    assert len(endpoint_methods()) == 13 + 6  # + v2 create and models, /me, init-image upload, get, delete


@pytest.mark.parametrize("name", public_methods())
def test_public_method_docstring_has_a_summary_line(name: str) -> None:
    doc = getattr(Client, name).__doc__
    assert doc and doc.strip().splitlines()[0].strip().endswith((".", ")")), name


def sent_by(name: str) -> "responses.Call":
    """Call Client.<name> with made-up arguments against mocks; the first request it sent (the API call)."""
    # One answer fits all: init-image's upload form included, so that upload_init_image completes.
    answer = {"uploadInitImage": {"id": "init-1", "url": "https://s3.example.test/form", "fields": "{}"}}
    # The path is what is checked, so any URL is answered; what is sent with it is as strict as elsewhere:
    # call_endpoint's request as given, upload_init_image's extension, or no body; the form without the key.
    parameters = inspect.signature(getattr(Client, name)).parameters
    body = ARGUMENTS["request"] if "request" in parameters else None
    body = {"extension": ARGUMENTS["extension"]} if "extension" in parameters else body
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        for verb in ("GET", "POST", "DELETE"):
            mocked.add(verb, re.compile(r"https://[\w.-]+/.*"), json=answer, match=api_matchers(body, timeout=DEFAULT_TIMEOUT))
        mocked.add("POST", answer["uploadInitImage"]["url"], json=answer, match=download_matchers(agent=None, timeout=DEFAULT_TIMEOUT))
        with Client(api_key=API_KEY, base_url=BASE, max_retries=0) as client:
            call_endpoint(client, name)
        return mocked.calls[0]


@pytest.mark.parametrize("name", endpoint_methods())
def test_endpoint_docstring_first_line_says_verb_path_and_key(name: str) -> None:
    """``VERB /path -> key: what it does.``: the request the method sends, and the result's key."""
    found = endpoint_doc(name)
    assert found, name
    verb, template, key, what = found.groups()
    assert key, f"{name}: the first line names no result key ('-> key')"
    assert what.endswith("."), f"{name}: {what!r}"
    # The verb and the path are what the method really sends ({placeholders} stand for its arguments).
    call = sent_by(name)
    assert call.request.method == verb, name
    pattern = "".join("[^/?]+" if part.startswith("{") else re.escape(part) for part in re.split(r"({\w+})", template))
    assert re.fullmatch(re.escape(endpoint_root(template)) + pattern, call.request.url.split("?")[0]), (name, call.request.url)
    # The key is a top-level property of that operation's 200 response in the spec.
    operation = openapi_spec()["paths"][template][verb.lower()]
    schema = resolve(operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert key in schema["properties"], (name, key, sorted(schema["properties"]))


HELPERS = [getattr(Client, name) for name in ("wait_for_generation", "wait_for_texture_generation", "download_image",
                                              "save_results")]


# run_batch's posts_per_minute..., read_items' path and defaults, FakeLeonardo's api_key, host and port,
# RecordedRequest's kind and full_path were undocumented.
@pytest.mark.parametrize("documented", [*HELPERS, batch.run_batch, batch.read_items, FakeLeonardo, RecordedRequest],
                         ids=lambda documented: documented.__qualname__)
def test_docstring_names_every_argument(documented: Any) -> None:
    for argument in [p for p in inspect.signature(documented).parameters if p != "self"]:
        assert re.search(rf"\b{argument}\b", documented.__doc__), f"{argument!r} undocumented"


@pytest.mark.parametrize("documented", [Client, batch.run_batch])  # run_batch's named no ValueError, TypeError
def test_the_docstring_says_what_every_call_raises(documented: Any) -> None:
    raises = section(documented.__doc__ or "", "Raises")
    assert [name for name in ("LeonardoError", "ValueError", "TypeError") if name not in raises] == []


def test_the_exception_and_the_fake_are_documented() -> None:
    documented_ones = (Client, LeonardoError, FakeLeonardo, payloads.to_payload, payloads.CreateGenerationRequest,
                       batch.BatchSummary.images_per_minute)  # the property had none
    for documented in documented_ones:
        assert documented.__doc__ and len(documented.__doc__.strip()) > 20, documented
    for attribute in ("status_code", "message", "body", "method", "url", "request_id", "retry_after"):
        assert attribute in (LeonardoError.__doc__ or ""), attribute
    attributes = section(Client.__doc__ or "", "Attributes")  # there was none
    assert [name for name in ("base_url", "v2_url", "retry") if not re.search(rf"^\s*{name}:", attributes, re.M)] == []
    assert "``root_url``" in (FakeLeonardo.__doc__ or "")
