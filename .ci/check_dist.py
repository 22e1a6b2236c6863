"""Check the built sdist and wheel (after ``python -m build --outdir DIR``).

    python .ci/check_dist.py DIR

The wheel holds every module of the package (subpackages too), the bundled spec and
``py.typed``, the console script, and nothing from ``tests/`` or ``examples/``; the sdist
holds README.rst (the long description), LICENSE, the package, the tests, the examples and
.ci/ (test_readme.py reads .ci/run). Exit status 0 when all holds.
"""

from __future__ import annotations

import glob
import os
import sys
import tarfile
import zipfile
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "leonardo_client"


def main(argv: List[str]) -> int:
    (folder,) = argv
    wheels = glob.glob(os.path.join(folder, "*.whl"))
    sdists = glob.glob(os.path.join(folder, "*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"check_dist.py: expected one wheel and one sdist in {folder}, found {wheels + sdists}")
        return 1
    problems = []
    # Every module of the package and its subpackages (leonardo_client.testing), and its spec.
    root = os.path.join(REPO, PACKAGE)
    found = glob.glob(os.path.join(root, "**", "*.py"), recursive=True)
    modules = sorted(os.path.relpath(path, REPO).replace(os.sep, "/") for path in found)
    modules.append(f"{PACKAGE}/testing/openapi.json")

    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        entry_points = next((n for n in names if n.endswith(".dist-info/entry_points.txt")), None)
        scripts = wheel.read(entry_points).decode("utf-8") if entry_points else ""
    for required in modules + [f"{PACKAGE}/py.typed"]:
        if required not in names:
            problems.append(f"wheel lacks {required}")
    for name in names:
        if not name.startswith((f"{PACKAGE}/", f"{PACKAGE}-")) or name.startswith(("tests/", "examples/")):
            problems.append(f"wheel holds {name}, which is not part of the package")
    if "leonardo-client = leonardo_client.__main__:entry" not in scripts:
        problems.append("wheel has no leonardo-client console script")

    with tarfile.open(sdists[0]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for required in ["README.rst", "LICENSE", "setup.cfg", "setup.py", f"{PACKAGE}/py.typed", "tests/test_readme.py",
                     ".ci/run"]:  # test_readme.py reads it
        if required not in members:
            problems.append(f"sdist lacks {required}")
    if not any(m.startswith("examples/") for m in members):
        problems.append("sdist lacks examples/")
    if any("__pycache__" in m or m.endswith(".pyc") for m in members):
        problems.append("sdist holds byte-code")

    for problem in problems:
        print("check_dist.py:", problem)
    print(
        f"check_dist.py: {'FAILED' if problems else 'ok'}: {os.path.basename(wheels[0])} "
        f"({len(names)} files), {os.path.basename(sdists[0])} ({len(members)} files)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
