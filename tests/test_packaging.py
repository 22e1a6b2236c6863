"""The package as users meet it: its public names, its docstrings, its installed metadata."""

from __future__ import annotations

import inspect
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, List

import pytest

import leonardo_client
from leonardo_client import Client, LeonardoError, client as client_module, errors, payloads

PACKAGE_DIR = Path(leonardo_client.__file__).resolve().parent


def spec() -> Any:
    from leonardo_client.testing.spec import load_spec

    return load_spec()
ENDPOINT_DOC = re.compile(r"^(GET|POST|DELETE) (/[\w{}/-]+) -> (\w+): \S")


def public_methods() -> List[str]:
    return sorted(name for name, member in vars(Client).items() if callable(member) and not name.startswith("_"))


def endpoint_methods() -> List[str]:
    return [name for name in public_methods() if ENDPOINT_DOC.match(getattr(Client, name).__doc__ or "")]


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
    assert any(r.replace(" ", "").startswith("urllib3") and ">=1.26" in r and "<3" in r for r in requires), requires
    if sys.version_info >= (3, 10):
        scripts = list(metadata.entry_points(group="console_scripts"))
    else:  # Python 3.8 and 3.9: a dict of groups
        scripts = list(metadata.entry_points().get("console_scripts", []))
    assert any(ep.name == "leonardo-client" and ep.value == "leonardo_client.__main__:main" for ep in scripts)


# --- docstrings -----------------------------------------------------------------------------------


def test_there_are_the_thirteen_endpoint_methods_and_six_of_todays_api() -> None:
    assert len(endpoint_methods()) == 13 + 6  # + v2 create and models, /me, init-image upload, get, delete


@pytest.mark.parametrize("name", public_methods())
def test_public_method_docstring_has_a_summary_line(name: str) -> None:
    doc = getattr(Client, name).__doc__
    assert doc and doc.strip().splitlines()[0].strip().endswith((".", ")")), name


@pytest.mark.parametrize("name", endpoint_methods())
def test_endpoint_docstring_names_the_call_and_the_key_holding_the_result(name: str) -> None:
    found = ENDPOINT_DOC.match(getattr(Client, name).__doc__ or "")
    assert found, name
    verb, path, key = found.groups()
    assert key in json.dumps(spec()["paths"][path][verb.lower()]["responses"]["200"]), (name, key)


@pytest.mark.parametrize("name", ["wait_for_generation", "wait_for_texture_generation", "download_image", "save_results"])
def test_helper_docstring_names_every_argument(name: str) -> None:
    doc = getattr(Client, name).__doc__
    for argument in [p for p in inspect.signature(getattr(Client, name)).parameters if p != "self"]:
        assert re.search(rf"\b{argument}\b", doc), f"{name}: {argument!r} undocumented"


def test_the_class_docstring_says_what_every_method_raises() -> None:
    assert "LeonardoError" in section(Client.__doc__ or "", "Raises")


def test_the_exception_and_the_fake_are_documented() -> None:
    from leonardo_client.testing import FakeLeonardo

    for documented in (Client, LeonardoError, FakeLeonardo, payloads.to_payload, payloads.CreateGenerationRequest):
        assert documented.__doc__ and len(documented.__doc__.strip()) > 20, documented
    for attribute in ("status_code", "message", "body", "method", "url", "request_id", "retry_after"):
        assert attribute in (LeonardoError.__doc__ or ""), attribute
