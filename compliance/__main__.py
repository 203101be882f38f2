"""`python -m compliance [--cases 1.*,2.*] [--out DIR]`: runs Autobahn|Testsuite's
fuzzingclient (Python 2.7, `PYENV_VERSION=2.7.18 python -m pip install
autobahntestsuite`) against both echo servers in one run and prints a per-server table.

Owns starting the servers and the fuzzer and reading its index.json; never listens
anywhere but 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compliance import servers

ROOT = Path(__file__).resolve().parent
CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def wstest() -> list[str] | None:
    """How to run Autobahn's `wstest`: $WSTEST, or pyenv's Python 2.7.18, or PATH."""
    if os.environ.get("WSTEST"):
        return os.environ["WSTEST"].split()
    env = {**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "2.7.18")}
    if shutil.which("pyenv"):
        found = subprocess.run(
            ["pyenv", "which", "wstest"], env=env, capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and found.stdout.strip():
            return [found.stdout.strip()]
    path = shutil.which("wstest")
    return [path] if path else None


async def fuzz(cases: list[str], out: Path, timeout_s: float) -> dict[str, Any]:
    command = wstest()
    if command is None:
        raise SystemExit(
            "compliance: Autobahn's wstest not found; install it with\n"
            "  PYENV_VERSION=2.7.18 python -m pip install autobahntestsuite"
        )
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    async with servers.running() as ports:
        spec = {
            "outdir": str(out / "reports"),
            "servers": [
                {"agent": agent, "url": f"ws://127.0.0.1:{port}"} for agent, port in ports.items()
            ],
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        spec_path = out / "fuzzingclient.json"
        await asyncio.to_thread(spec_path.write_text, json.dumps(spec, indent=2))
        proc = await asyncio.create_subprocess_exec(
            *command,
            "-m",
            "fuzzingclient",
            "-s",
            str(spec_path),
            cwd=out,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SystemExit(
                f"compliance: wstest did not finish within {timeout_s:.0f} s"
            ) from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace")[-3000:]
            raise SystemExit(f"compliance: wstest failed:\n{tail}")
    text = await asyncio.to_thread((out / "reports" / "index.json").read_text)
    index: dict[str, Any] = json.loads(text)
    return index


def table(index: dict[str, Any]) -> str:
    lines = [f"| server | cases | {' | '.join(BEHAVIORS)} |", "| --- " * (len(BEHAVIORS) + 2) + "|"]
    details = []
    for agent, results in index.items():
        counts = collections.Counter(r["behavior"] for r in results.values())
        row = " | ".join(str(counts.get(b, 0)) for b in BEHAVIORS)
        lines.append(f"| {agent} | {len(results)} | {row} |")
        odd = sorted(
            (case for case, r in results.items() if r["behavior"] not in ("OK", "INFORMATIONAL")),
            key=lambda c: [int(x) for x in c.split(".")],
        )
        if odd:
            details.append(f"{agent}: " + ", ".join(f"{c} {results[c]['behavior']}" for c in odd))
    return "\n".join([*lines, "", *details])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compliance", description=__doc__)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case patterns")
    ap.add_argument("--out", type=Path, default=ROOT / "results", help="reports directory")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for the whole run")
    args = ap.parse_args(argv)
    started = time.monotonic()
    index = asyncio.run(fuzz(args.cases.split(","), args.out, args.timeout))
    print(table(index))
    print(
        f"\n{time.strftime('%Y-%m-%d')}, {time.monotonic() - started:.0f} s; "
        f"reports in {args.out / 'reports'}"
    )
    failed = any(r["behavior"] == "FAILED" for res in index.values() for r in res.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
