"""Results as data: percentiles, checks, the printed report, JSON files and plots.

Owns the shape of a result (a dict: scenario, method, params, results, checks,
targets, cpu) and how it is written. Plots need matplotlib (optional): without it a
run still writes its JSON and says the plot was skipped.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def hist_merge(hists: Iterable[Sequence[int]]) -> list[int]:
    out: list[int] = []
    for h in hists:
        if not out:
            out = list(h)
        else:
            for i, c in enumerate(h):
                out[i] += c
    return out


def hist_pct(hist: Sequence[int], q: float) -> float | None:
    """The q-th percentile (0..100) of a 1 ms-bucket histogram, in ms."""
    total = sum(hist)
    if not total:
        return None
    rank = q / 100 * (total - 1)
    seen = 0
    for ms, c in enumerate(hist):
        seen += c
        if seen > rank:
            return float(ms)
    return float(len(hist) - 1)


def hist_summary(hist: Sequence[int]) -> dict[str, Any]:
    total = sum(hist)
    top = max((i for i, c in enumerate(hist) if c), default=None)
    return {
        "count": total,
        "p50_ms": hist_pct(hist, 50),
        "p95_ms": hist_pct(hist, 95),
        "p99_ms": hist_pct(hist, 99),
        "max_ms": None if top is None else float(top),
    }


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q / 100 * len(s)))], 2)


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": pct(values, 50),
        "p95_ms": pct(values, 95),
        "p99_ms": pct(values, 99),
        "max_ms": round(max(values), 2) if values else None,
    }


def merge_errors(replies: Iterable[dict[str, Any]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in replies:
        total.update(r.get("errors", {}))
    return dict(total)


class Report:
    """One scenario run: what was asked, what was measured, what was checked."""

    def __init__(self, scenario: str, method: str, params: dict[str, Any]) -> None:
        self.data: dict[str, Any] = {
            "scenario": scenario,
            "method": method,
            "params": params,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "results": {},
            "checks": [],
            "targets": [],
        }

    @property
    def results(self) -> dict[str, Any]:
        results: dict[str, Any] = self.data["results"]
        return results

    def check(self, name: str, ok: bool, detail: Any = "") -> bool:
        """A correctness check: any failure fails the run."""
        self.data["checks"].append({"name": name, "ok": bool(ok), "detail": str(detail)})
        return ok

    def target(self, name: str, value: float | None, limit: float, *, upper: bool = True) -> None:
        """A performance target (reported, never failing the run)."""
        met = value is not None and (value <= limit if upper else value >= limit)
        self.data["targets"].append(
            {"name": name, "value": value, "limit": limit, "upper": upper, "met": met}
        )

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.data["checks"])

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = out / f"{self.data['scenario']}-{self.data['method']}-{stamp}.json"
        path.write_text(json.dumps(self.data, indent=1, default=str))
        return path

    def print(self, file: Any = None) -> None:
        f = file or sys.stdout
        d = self.data
        print(f"\n== {d['scenario']} [{d['method']}] {_params(d['params'])}", file=f)
        for key, value in d["results"].items():
            if key.startswith("_"):
                continue
            if key == "steps":
                for st in value:
                    lat = st["latency"]
                    print(
                        f"  step {st['rate']:>5g}/s: delivered {st['delivered']}/{st['expected']}"
                        f" = {st['delivered_msgs_s']:.0f} msgs/s, latency p50 {lat['p50_ms']}"
                        f" p99 {lat['p99_ms']} ms, server {st['cpu']['cores_used'].get('server')}"
                        f" cores ({st['server_us_per_msg']} µs/msg), loadgen"
                        f" {st['cpu']['cores_used']['loadgen']}, other {st['cpu']['other_cores']}",
                        file=f,
                    )
                continue
            print(f"  {key:<24} {_fmt(value)}", file=f)
        if "cpu" in d:
            c = d["cpu"]
            print(
                f"  cpu (cores)              {_fmt(c['cores_used'])}, other={c['other_cores']},"
                f" machine={c['machine_cores_busy']}/{c['cores']}",
                file=f,
            )
        for t in d["targets"]:
            word = "met   " if t["met"] else "MISSED"
            sign = "<=" if t["upper"] else ">="
            print(f"  target {word} {t['name']}: {t['value']} ({sign} {t['limit']})", file=f)
        for c in d["checks"]:
            word = "ok  " if c["ok"] else "FAIL"
            print(f"  [{word}] {c['name']}" + (f": {c['detail']}" if c["detail"] else ""), file=f)
        if d["checks"]:
            verdict = "PASS" if self.ok else "FAIL  <<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<"
            print(f"  => {verdict}", file=f)


def _params(p: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in p.items() if v not in (None, "", False))


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 10_000 else f"{v:.4g}"  # 14290, not 1.429e+04
    if isinstance(v, list) and len(v) > 8:
        return f"[{len(v)} values]"
    return str(v)


def median_spread(values: Sequence[float]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


# -- plots ---------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (plot skipped: pip install matplotlib)", file=sys.stderr)
        return None
    return plt


def plot_flashsale(report: Report, path: Path) -> Path | None:
    """Decision latency histogram, fan-out latency histogram, accepted over time: of a
    flash sale, or of a group sale (the same burst, joining a group)."""
    plt = _pyplot()
    if plt is None:
        return None
    r = report.data["results"]
    lat = r["_decision_ms"]
    accepted_t = sorted(r["_accepted_at_s"])
    fan = r["_fanout_hist"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(lat, bins=60, color="tab:blue")
    axes[0].set_xlabel("decision latency (ms, tap sent → order_ack)")
    axes[0].set_ylabel("taps")
    top = max((i for i, c in enumerate(fan) if c), default=0)
    width = max(1, (top + 1) // 80)  # ~80 bars whatever the range
    bins = [sum(fan[i : i + width]) for i in range(0, top + 1, width)]
    axes[1].bar([i * width for i in range(len(bins))], bins, width=width, color="tab:orange")
    axes[1].set_xlabel("fan-out latency (ms, server ts → client)")
    axes[1].set_ylabel("messages")
    axes[2].step(accepted_t, range(1, len(accepted_t) + 1), where="post", color="tab:green")
    axes[2].set_xlabel("time since the sale opened (s)")
    axes[2].set_ylabel("accepted orders")
    p = report.data["params"]
    method = report.data["method"]
    if report.data["scenario"] == "groupsale":
        title = f"group sale: {p['viewers']} viewers, cap {p['cap']}, threshold {p['threshold']}"
    else:
        title = f"flash sale: {p['viewers']} viewers, {p['units']} units"
    fig.suptitle(f"{title} ({method})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_fanout(report: Report, path: Path) -> Path | None:
    """Delivered msgs/s against offered, and delivery latency percentiles per rate."""
    plt = _pyplot()
    if plt is None:
        return None
    steps = report.data["results"]["steps"]
    rates = [s["rate"] for s in steps]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(rates, [s["offered_msgs_s"] for s in steps], "k--", label="offered")
    axes[0].plot(rates, [s["delivered_msgs_s"] for s in steps], "o-", label="delivered")
    axes[0].set_xlabel("events/s")
    axes[0].set_ylabel("msgs/s to all viewers")
    axes[0].legend()
    for q in ("p50_ms", "p99_ms"):
        axes[1].plot(rates, [s["latency"][q] for s in steps], "o-", label=q)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("events/s")
    axes[1].set_ylabel("delivery latency (ms)")
    axes[1].legend()
    fig.suptitle(f"fan-out, {report.data['params']['viewers']} viewers ({report.data['method']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
