"""ci/lowest.txt pins every direct runtime dependency of pyproject.toml at its floor.

`python ci/check_floors.py` fails when the two disagree: a dependency without a `>=`
floor, a floor with no pin or a different pin, a pin for something pyproject does not
depend on. `--installed` also checks that the running interpreter has exactly the pinned
versions (run by scripts/test --lowest in .venv-lowest, after installing) and prints them.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOWEST = ROOT / "ci" / "lowest.txt"


def floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out: dict[str, Version] = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
        if len(lows) != 1 or any(s.operator == "==" for s in req.specifier):
            sys.exit(f"pyproject.toml: {line!r} needs exactly one '>=' floor")
        out[canonicalize_name(req.name)] = lows[0]
    return out


def pins() -> dict[str, Version]:
    out: dict[str, Version] = {}
    for n, raw in enumerate(LOWEST.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or req.extras or req.marker:
            sys.exit(f"ci/lowest.txt:{n}: {raw!r} is not a plain 'name==version' pin")
        out[canonicalize_name(req.name)] = Version(specs[0].version)
    return out


def main() -> int:
    want, have = floors(), pins()
    problems = []
    for name, floor in sorted(want.items()):
        if name not in have:
            problems.append(f"{name}: floor {floor} in pyproject.toml, no pin in ci/lowest.txt")
        elif have[name] != floor:
            problems.append(
                f"{name}: floor {floor} in pyproject.toml, pinned {have[name]} in ci/lowest.txt"
            )
    problems += [
        f"{name}: pinned in ci/lowest.txt, not a dependency in pyproject.toml"
        for name in sorted(have.keys() - want.keys())
    ]
    if "--installed" in sys.argv[1:]:
        for name, pin in sorted(have.items()):
            try:
                got = Version(metadata.version(name))
            except metadata.PackageNotFoundError:
                problems.append(f"{name}: pinned {pin}, not installed in {sys.prefix}")
                continue
            print(f"  {name}=={got}")
            if got != pin:
                problems.append(f"{name}: pinned {pin}, installed {got} in {sys.prefix}")
    for p in problems:
        print(f"ci/check_floors.py: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
