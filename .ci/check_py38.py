"""Check that every Python file still runs on Python 3.8, with vermin (``pip install vermin``).

    python .ci/check_py38.py leonardo_client tests examples

vermin alone cannot be told the whole truth about annotations:

* without ``--eval-annotations`` it skips ``list[int]`` everywhere, even in a module-level
  alias (``Pairs = list[tuple[int, int]]``) that Python 3.8 evaluates and rejects, and even in
  annotations of files that lack ``from __future__ import annotations``;
* with it, it also flags annotations that ``from __future__ import annotations`` keeps from
  ever being evaluated, which are fine on 3.8.

So this script blanks out the annotations of the files that have the ``__future__`` import
(line numbers are kept), leaves every other file as it is, and runs vermin with
``--eval-annotations`` and ``union-types`` detection over the lot. What remains is
evaluated at run time on 3.8 and is checked in full. Exit status: vermin's (0 = all good).

vermin's ``X | Y`` detection is a heuristic: it can mistake a bitwise or of two attributes
(``re.I | re.M``) for a type union. Mark such a line with ``# novm`` and say why, or, for a
newer name used only behind a guard (``hasattr``), add it to EXCLUDE below.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
from typing import List, Tuple

TARGET = "3.8"
FLAGS = ["--no-tips", "--violations", "--format", "parsable", "--eval-annotations", "--feature", "union-types"]
# Newer names that the code reaches only behind a guard vermin cannot see, and where.
EXCLUDE = {
    "sys.stdlib_module_names": "tests/test_examples.py, behind hasattr(sys, 'stdlib_module_names')",
}

Span = Tuple[int, int, int, int]  # start line, start col, end line, end col (lines from 1)


def has_future_annotations(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )


def annotation_spans(tree: ast.Module) -> List[Span]:
    nodes: List[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            nodes.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            nodes.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            nodes.append(node.annotation)
    spans = []
    for ann in nodes:
        end_line, end_col = getattr(ann, "end_lineno", None), getattr(ann, "end_col_offset", None)
        if end_line is None or end_col is None:  # pragma: no cover - Python < 3.8
            raise SystemExit("check_py38.py needs Python 3.8 or newer")
        spans.append((ann.lineno, ann.col_offset, end_line, end_col))
    return spans


def blank_annotations(source: str, spans: List[Span]) -> str:
    """Replace each annotation with a placeholder expression of the same lines: ``_`` or ``( )``.

    Offsets are UTF-8 byte offsets (what ``ast`` reports), so the lines are edited as bytes.
    """
    lines = [line.encode("utf-8") for line in source.splitlines(keepends=True)]
    for start_line, start_col, end_line, end_col in sorted(spans, reverse=True):
        first, last = lines[start_line - 1], lines[end_line - 1]
        if start_line == end_line:
            width = end_col - start_col
            lines[start_line - 1] = first[:start_col] + b"_" + b" " * (width - 1) + first[end_col:]
        else:  # a multi-line annotation becomes an empty tuple spread over the same lines
            lines[start_line - 1] = first[:start_col] + b"(\n"
            for index in range(start_line, end_line - 1):
                lines[index] = b"\n"
            lines[end_line - 1] = b" " * max(0, end_col - 1) + b")" + last[end_col:]
    return b"".join(lines).decode("utf-8")


def python_files(paths: List[str]) -> List[str]:
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            found.extend(os.path.join(root, name) for name in sorted(files) if name.endswith(".py"))
    return found


def main(argv: List[str]) -> int:
    paths = argv or ["leonardo_client", "tests", "examples"]
    files = python_files([p for p in paths if os.path.exists(p)])
    if not files:
        print("check_py38.py: no Python files found in", " ".join(paths), file=sys.stderr)
        return 1
    scratch = tempfile.mkdtemp(prefix="check_py38-")
    try:
        blanked = 0
        for path in files:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
            tree = ast.parse(source, path)
            if has_future_annotations(tree):
                source = blank_annotations(source, annotation_spans(tree))
                ast.parse(source, path)  # the blanked copy must still be valid Python
                blanked += 1
            copy = os.path.join(scratch, os.path.relpath(path))
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            with open(copy, "w", encoding="utf-8") as handle:
                handle.write(source)
        print(f"check_py38.py: {len(files)} files, annotations blanked in {blanked} (from __future__ import annotations)")
        run_vermin = "import sys; from vermin import main; sys.argv[0] = 'vermin'; sys.exit(main())"
        excludes = [arg for name in sorted(EXCLUDE) for arg in ("--exclude", name)]
        command = [sys.executable, "-c", run_vermin, f"-t={TARGET}-", *FLAGS, *excludes, "."]
        result = subprocess.run(command, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = result.stdout.decode("utf-8", "replace").replace(scratch + os.sep, "")
        # parsable lines are "file:line:col:py2:py3:feature"; the ones without a feature are totals
        problems = [line for line in output.splitlines() if line.count(":") >= 5 and line.rsplit(":", 1)[1]]
        for line in problems:
            path, lineno, _col, _py2, py3, feature = line.split(":", 5)
            print(f"{path}:{lineno}: {feature} needs Python {py3}")
        if result.returncode != 0 and not problems:
            print(output.rstrip())  # vermin itself failed: show what it said
        print(f"check_py38.py: {'FAILED' if result.returncode else 'ok'}, target Python {TARGET}+")
        return result.returncode
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
