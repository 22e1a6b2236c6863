"""Every example runs offline (against FakeLeonardo), so none can rot unnoticed."""

from __future__ import annotations

import ast
import glob
import os
import subprocess
import sys
import tempfile
from typing import Dict, Iterator, List, Tuple

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")

# run -> (example script, extra arguments, files expected under its working folder)
RUNS: Dict[str, Tuple[str, List[str], List[str]]] = {
    "batch_catalogue": ("batch_catalogue", ["--out", "cat"], ["cat/*.png"] * 6 + ["cat/index.html"]),
    "generate_and_save": ("generate_and_save", ["--num-images", "2"], ["images/*.png"] * 2),
    "image_to_motion": ("image_to_motion", [], ["videos/*.mp4"]),
    "lcm_instant_refine": ("lcm_instant_refine", [], ["refined/lcm-*_0.png"]),
    "lcm_instant_refine_file": ("lcm_instant_refine", ["sample.png", "--out", "mine"], ["mine/lcm-*_0.png"]),
    "list_and_delete_dry": ("list_and_delete", ["--keep", "1"], []),
    "list_and_delete_yes": ("list_and_delete", ["--keep", "1", "--yes"], []),
    "texture_model": ("texture_model", ["--out", "maps"], ["maps/*_albedo.png", "maps/*_normal.png"]),
}

Result = Tuple[int, str, str, str]  # exit code, stdout, stderr, working folder


@pytest.fixture(scope="module")
def results() -> Iterator[Dict[str, Result]]:
    """Start every run at once (they mostly sleep while polling), then collect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    with tempfile.TemporaryDirectory() as root:
        running = {}
        for run, (script, args, _) in RUNS.items():
            cwd = os.path.join(root, run)
            os.makedirs(cwd)
            with open(os.path.join(cwd, "sample.png"), "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
            running[run] = (
                subprocess.Popen(
                    [sys.executable, os.path.join(EXAMPLES, script + ".py"), "--offline"] + args,
                    cwd=cwd,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                cwd,
            )
        done = {}
        for run, (process, cwd) in running.items():
            try:
                out, err = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate(timeout=10)
            done[run] = (process.returncode, out, err, cwd)
        yield done


@pytest.mark.parametrize("run", sorted(RUNS))
def test_example_runs_offline(results: Dict[str, Result], run: str) -> None:
    code, out, err, cwd = results[run]
    assert code == 0, err
    expected = RUNS[run][2]
    for pattern in set(expected):
        found = glob.glob(os.path.join(cwd, pattern))
        assert len(found) == expected.count(pattern), (pattern, os.listdir(cwd))
        assert all(os.path.getsize(path) > 0 for path in found)
    assert "Traceback" not in err


def test_list_and_delete_is_a_dry_run_unless_told(results: Dict[str, Result]) -> None:
    dry = results["list_and_delete_dry"][1]
    assert "3 generations" in dry and dry.count("would delete") == 2 and "deleted" not in dry
    assert "--yes" in dry
    real = results["list_and_delete_yes"][1]
    assert real.count("deleted") == 2 and "would delete" not in real


def test_every_example_is_covered_and_documented() -> None:
    scripts = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
    assert scripts == sorted({script for script, _, _ in RUNS.values()})
    for name in scripts:
        with open(os.path.join(EXAMPLES, name + ".py"), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        doc = ast.get_docstring(tree) or ""
        assert "Spends credits: " in doc.splitlines()[2], name  # said at the top
        assert "LEONARDO_API_KEY" in doc and "--offline" in doc, name
        assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body), name
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= set(sys.stdlib_module_names if hasattr(sys, "stdlib_module_names") else imported) | {
            "leonardo_client",
            "__future__",
        }, name


def test_examples_want_a_key_or_arguments_when_online() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEONARDO_")}
    env["PYTHONPATH"] = REPO
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "generate_and_save.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: no API key") and "Traceback" not in done.stderr
