"""README.rst is true: its examples run as written, and its tables match the code.

* Every ``.. code-block:: python`` block runs, as a reader would paste it, against a
  FakeLeonardo: ``LEONARDO_API_KEY`` and ``LEONARDO_BASE_URL`` point at the fake, so a
  snippet that says ``Client()`` reads them like real usage. Each block runs alone, in an
  empty folder (the files a reader is assumed to have, such as ``sketch.jpg``, are put
  there). A block preceded by the RST comment ``.. readme-test: pytest`` is saved as a test
  file and run with pytest; ``.. readme-test: skip <why>`` skips one (the webhook server's does:
  it serves until stopped, and ``examples/webhook_receiver.py --offline`` is run instead).
* The console commands that can run offline do, in a temporary folder, and the offline
  main job leaves real PNG files.
* CI runs the README's install and test commands verbatim.
* The options table lists every ``Client()`` argument with its real default, and the
  endpoint table every endpoint method with the HTTP method and path of its docstring.
"""

from __future__ import annotations

import base64
import inspect
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import leonardo_client
from conftest import endpoint_doc, endpoint_methods, finished
from leonardo_client import Client, LeonardoError
from leonardo_client.testing import FakeLeonardo
from leonardo_client.testing.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.rst"
CI_SCRIPT = REPO / ".ci" / "run"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SUBPROCESS_TIMEOUT = 120  # seconds; each command here takes one or two

DIRECTIVE = re.compile(r"^\.\. code-block:: *(\S+) *$")
MARKER = re.compile(r"^\.\. readme-test: *(\S+)(?: +(.*))?$")
TITLE_UNDERLINE = re.compile(r"^(=+|-+|~+)$")


@dataclass
class Block:
    language: str
    line: int  # line number in README.rst of the block's first line of code
    source: str
    section: str
    mode: str  # "run", "pytest" or "skip"
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.section}:{self.line}".replace(" ", "-")


def readme_blocks(language: str) -> List[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = []
    section = "top"
    marker: Optional["re.Match[str]"] = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if TITLE_UNDERLINE.match(line) and index > 0 and lines[index - 1].strip() and len(line) >= 3:
            section = lines[index - 1].strip()
        found = DIRECTIVE.match(line)
        if not found:
            if line.strip():
                marker = MARKER.match(line)
            index += 1
            continue
        index += 1
        while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith(":")):
            index += 1  # directive options and the blank line before the content
        start = index
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith("   ")):
            index += 1
        source = textwrap.dedent("\n".join(lines[start:index])).strip("\n") + "\n"
        if found.group(1) == language:
            mode, reason = ("run", "") if marker is None else (marker.group(1), marker.group(2) or "")
            assert mode in ("run", "pytest", "skip"), f"README.rst:{start + 1}: unknown readme-test mode {mode!r}"
            blocks.append(Block(language, start + 1, source, section, mode, reason))
        marker = None
    return blocks


PYTHON_BLOCKS = readme_blocks("python")
CONSOLE_BLOCKS = readme_blocks("console")


def console_lines(section: str) -> List[str]:
    return [
        line.strip()
        for block in CONSOLE_BLOCKS
        if block.section == section
        for line in block.source.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# A real 2x2 orange JPEG: the ``sketch.jpg`` the LCM example reads.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBk"
    "eFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAACAAID"
    "ASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAT/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFAEBAAAAAAAAAAAAAAAAAAAABv/EABQRAQAA"
    "AAAAAAAAAAAAAAAAAAD/2gAMAwEAAhEDEQA/ALwBUgf/2Q=="
)


def subprocess_env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEONARDO_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start_command(command: str, cwd: Path) -> "subprocess.Popen[str]":
    """Start a README command line, with ``python`` meaning this interpreter."""
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    return subprocess.Popen(
        argv, cwd=str(cwd), env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
    )


def finish(process: "subprocess.Popen[str]") -> "subprocess.CompletedProcess[str]":
    return finished(process, SUBPROCESS_TIMEOUT)


def run_command(command: str, cwd: Path) -> "subprocess.CompletedProcess[str]":
    return finish(start_command(command, cwd))


def png_files(folder: Path) -> List[Path]:
    return sorted(folder.rglob("*.png"))


@pytest.fixture
def reader_env(fake: FakeLeonardo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What a reader of the README has: a key and (here) the fake's URL in the environment."""
    monkeypatch.setenv("LEONARDO_API_KEY", fake.api_key)
    monkeypatch.setenv("LEONARDO_BASE_URL", fake.base_url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sketch.jpg").write_bytes(TINY_JPEG)
    return tmp_path


# --- the Python examples ----------------------------------------------------------------------


def test_the_readme_has_python_examples_and_skips_almost_none() -> None:
    assert len(PYTHON_BLOCKS) >= 8
    skipped = [b for b in PYTHON_BLOCKS if b.mode == "skip"]
    assert len(skipped) <= 1, f"README.rst: too many examples not run: {[b.id for b in skipped]}"
    assert all(b.reason for b in skipped), "a skipped example must say why"


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if b.mode != "pytest"], ids=lambda b: b.id)
def test_python_example_runs(block: Block, reader_env: Path, fake: FakeLeonardo, capsys: pytest.CaptureFixture[str]) -> None:
    if block.mode == "skip":
        pytest.skip(f"README.rst:{block.line}: {block.reason}")
    # Padding keeps README.rst's line numbers in tracebacks.
    code = compile("\n" * (block.line - 1) + block.source, str(README), "exec")
    exec(code, {"__name__": "__readme__"})
    out = capsys.readouterr().out

    written = png_files(reader_env)
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in written), written
    if block.section == "Quickstart":
        images = png_files(reader_env / "images")
        assert len(images) == 2
        assert out.count("saved ") == 2 and out.count("http://127.0.0.1") == 2
    elif block.section == "Errors":
        assert out.startswith("401 Authentication hook unauthorized this request")
    elif block.section == "Waiting and saving results" and "fox" in block.source:
        saved = png_files(reader_env / "fox")
        again = reader_env / "fox" / "first-again.png"
        assert again in saved and len(saved) >= 2  # the API's default is 4 images
        assert any(p.read_bytes() == again.read_bytes() for p in saved if p != again)
    elif block.section == "Waiting and saving results":
        refined = sorted((reader_env / "refined").glob("*.jpg"))
        assert refined and all(p.read_bytes()[:2] == b"\xff\xd8" for p in refined), "the LCM result was not saved"
    assert not [r for r in fake.requests if r.method == "POST" and r.path == "/generations" and r.json is None]


def run_block(block: Block) -> None:
    exec(compile("\n" * (block.line - 1) + block.source, str(README), "exec"), {"__name__": "__readme__"})


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if b.mode == "run" and "create_generation(" in b.source],
                         ids=lambda b: b.id)
def test_a_create_answer_without_a_job_is_a_leonardo_error_in_every_example(block: Block, reader_env: Path,
                                                                            fake: FakeLeonardo) -> None:
    """job["sdGenerationJob"]["generationId"] of a 200 holding a null job was a TypeError, which escapes the
    ``except LeonardoError`` that "Errors" tells the reader to write (found by the examples hunt)."""
    fake.inject(status=200, method="POST", path="/generations", body={"sdGenerationJob": None}, times=None)
    with pytest.raises(LeonardoError, match="^no generation id in the response"):
        run_block(block)


def test_the_readme_retry_policy_of_your_own_sleeps_no_hour_long_retry_after(
        reader_env: Path, fake: FakeLeonardo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain urllib3 Retry slept a 429's Retry-After of an hour, which the client caps (found by the examples
    hunt)."""
    [block] = [b for b in PYTHON_BLOCKS if "Retry(" in b.source]
    fake.inject(status=429, retry_after=3600, method="GET", path="/generations/*")
    asked: List[float] = []
    sleep = time.sleep

    def recorded(seconds: float) -> None:  # not slept when over a minute: the test would hang for it
        asked.append(seconds)
        sleep(seconds if seconds <= 60 else 0)

    monkeypatch.setattr(time, "sleep", recorded)
    run_block(block)
    assert [r.path for r in fake.requests].count(fake.requests[-1].path) == 2  # the 429, then the answer
    assert max(asked, default=0) <= 60, asked


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if b.mode == "pytest"], ids=lambda b: b.id)
def test_pytest_example_passes(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_images.py").write_text(block.source, encoding="utf-8")
    # -W error, as many CIs run it: an unclosed file in the example fails there
    result = run_command("python -m pytest -q -W error -p no:cacheprovider test_images.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tests = len(re.findall(r"^def test_", block.source, re.M))
    assert re.search(rf"\b{tests} passed\b", result.stdout), result.stdout


def test_the_pytest_example_is_there() -> None:
    assert [b.section for b in PYTHON_BLOCKS if b.mode == "pytest"] == ["Testing your code with FakeLeonardo"]


# --- the console commands -------------------------------------------------------------------------


(INSTALL_AND_RUN,) = [line for line in console_lines("Try it offline") if "--offline" in line]
MAIN_JOB = INSTALL_AND_RUN.split(" && ", 1)[-1]
OFFLINE_COMMANDS = [c for c in console_lines("Command line") if "--offline" in c or "--help" in c]


@pytest.fixture(scope="module", autouse=True)
def console_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """command -> (its process, its folder): all started as this file's tests start, so that their waits on the
    fake (its 1.5 s, then a poll) pass while the tests before them run; any left running after them is ended."""
    started = {}
    for command in [MAIN_JOB] + OFFLINE_COMMANDS:
        folder = tmp_path_factory.mktemp("console")
        started[command] = (start_command(command, folder), folder)
    yield started
    for process, _ in started.values():
        if process.poll() is None:  # not collected: no test of the console commands was run
            process.kill()
            finish(process)


@pytest.fixture(scope="module")
def console_runs(console_started: Dict[str, Any]) -> Dict[str, Any]:
    """command -> (its result, its folder), collected."""
    return {command: (finish(process), folder) for command, (process, folder) in console_started.items()}


def test_offline_main_job_leaves_png_files(console_runs: Dict[str, Any]) -> None:
    assert INSTALL_AND_RUN.startswith("pip install . && ")
    result, folder = console_runs[MAIN_JOB]
    assert result.returncode == 0, result.stderr
    images = png_files(folder / "images")
    assert images and all(p.read_bytes()[:8] == PNG_SIGNATURE for p in images)
    # One saved path a line on stdout; the progress (PENDING, then COMPLETE) on stderr.
    assert [Path(line).name for line in result.stdout.split()] == [p.name for p in images]
    assert all((folder / line).is_file() for line in result.stdout.split())
    assert "PENDING" in result.stderr and "COMPLETE" in result.stderr


@pytest.mark.parametrize("command", OFFLINE_COMMANDS)
def test_offline_command_line_examples_run(console_runs: Dict[str, Any], command: str) -> None:
    result, _ = console_runs[command]
    assert result.returncode == 0, result.stderr


def test_ci_runs_the_readme_install_and_test_commands_verbatim() -> None:
    ci = CI_SCRIPT.read_text(encoding="utf-8").splitlines()
    commands = {
        line
        for line in console_lines("Try it offline") + console_lines("Development")
        if re.match(r"""pip install (-e )?["']?\.""", line)
    }
    assert len(commands) == 2  # install and run the main job; install and run the tests
    for command in commands:
        assert any(line == command or line.startswith(command + " || ") for line in ci), f".ci/run does not run: {command}"


def test_every_example_script_is_listed_and_every_listed_one_exists() -> None:
    text = README.read_text(encoding="utf-8").split("\nExamples\n--------\n", 1)[1].split("\nDevelopment\n", 1)[0]
    listed = set(re.findall(r"``(\w+\.py)``", text))
    assert listed == {p.name for p in (REPO / "examples").glob("*.py")}


# --- the tables ---------------------------------------------------------------------------------


def list_table_rows(section: str) -> List[List[str]]:
    """Rows of the first list-table of a README section, each a list of cell texts."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n{section}\n{'-' * len(section)}\n", 1)[1]
    table = body.split(".. list-table::", 1)[1]
    rows: List[List[str]] = []
    for line in table.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        stripped = line.strip()
        if stripped.startswith("* - "):
            rows.append([stripped[4:]])
        elif stripped.startswith("- ") and rows:
            rows[-1].append(stripped[2:])
        elif stripped and rows and not stripped.startswith(":"):
            rows[-1][-1] += " " + stripped
    return rows[1:]  # without the header row


def literal(cell: str) -> str:
    found = re.match(r"``(.+?)``", cell)
    assert found, cell
    return found.group(1)


def test_configuration_table_lists_every_option_with_its_default() -> None:
    documented = {literal(row[0]): literal(row[1]) for row in list_table_rows("Configuration")}
    parameters = inspect.signature(Client.__init__).parameters
    actual = {name: repr(p.default) for name, p in parameters.items() if name != "self"}
    assert documented == actual


def test_every_class_the_package_exports_is_named() -> None:
    text = README.read_text(encoding="utf-8")
    classes = [name for name in leonardo_client.__all__ if inspect.isclass(getattr(leonardo_client, name))]
    assert [name for name in classes if f"``{name}``" not in text] == []  # PromptEnhance was not


def test_endpoint_tables_match_the_methods_and_their_docstrings() -> None:
    rows = list_table_rows("Endpoint reference")
    assert len(rows) == 13
    rows += list_table_rows("Beyond the 13: today's models, your account, uploads")
    table: Dict[str, Any] = {literal(row[0]).split("(")[0]: (literal(row[0]), literal(row[1])) for row in rows}
    assert len(rows) == 13 + 6 and set(table) == set(endpoint_methods())
    for name, (call, http) in table.items():
        method = getattr(Client, name)
        found = endpoint_doc(name)
        assert found and f"{found.group(1)} {found.group(2)}" == http, (name, http)
        parameters = list(inspect.signature(method).parameters.values())[1:]
        shown = [p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in parameters]
        assert call == f"{name}({', '.join(shown)})"


def test_the_endpoint_table_names_each_operation_by_its_operation_id_in_the_bundled_spec() -> None:
    # It named them as a 2024 SDK did (post_lcm_upscale...): names found nowhere now.
    paths = load_spec()["paths"]
    rows = list_table_rows("Endpoint reference")
    assert len(rows) == 13
    for row in rows:
        method, path = literal(row[1]).split(" ", 1)
        assert literal(row[2]) == paths[path][method.lower()]["operationId"], row
