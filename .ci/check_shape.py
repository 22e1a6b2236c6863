"""Check the shape the restructure (issue 9) set for the package: no function over 40 lines.

    python .ci/check_shape.py leonardo_client

Nothing else kept it: it had drifted to 41 lines twice. Exit status 1 names each long function.
"""

from __future__ import annotations

import ast
import pathlib
import sys
from typing import List

MAX_FUNCTION_LINES = 40


def long_functions(root: str) -> List[str]:
    found = []
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path}:{node.lineno}: {node.name}() is {lines} lines")
    return found


if __name__ == "__main__":
    problems = [line for root in sys.argv[1:] for line in long_functions(root)]
    print("\n".join(problems) or f"check_shape.py: ok, no function over {MAX_FUNCTION_LINES} lines")
    sys.exit(1 if problems else 0)
