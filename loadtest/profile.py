"""Read a py-spy `--format raw` profile (collapsed stacks) and print where the time
goes: the functions with the most samples on top of the stack (self) and anywhere on
it (total). `python -m loadtest.profile results/profile-….txt [--top 25]`."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def frame_name(frame: str) -> str:
    """`send (uvicorn/protocols/ws.py:123)` → `send (uvicorn/protocols/ws.py)`: py-spy
    already shortens paths to the package; the line number splits one function's time."""
    name, sep, where = frame.strip().partition(" (")
    if not sep:
        return name
    where = where.rstrip(")").rsplit(":", 1)[0]
    if "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    return f"{name} ({where})"


def load(path: Path) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    return own, total, samples


def summary(path: Path, top: int = 20) -> dict[str, list[tuple[str, float]]]:
    own, total, samples = load(path)
    if not samples:
        return {"self": [], "total": []}
    return {
        "self": [(f, round(100 * n / samples, 1)) for f, n in own.most_common(top)],
        "total": [(f, round(100 * n / samples, 1)) for f, n in total.most_common(top)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    s = summary(args.profile, args.top)
    for kind in ("self", "total"):
        print(f"\n{kind} (% of non-idle samples)")
        for name, share in s[kind]:
            print(f"  {share:5.1f}%  {name}")


if __name__ == "__main__":
    main()
