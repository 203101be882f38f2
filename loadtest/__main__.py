"""`python -m loadtest SCENARIO …`: run one experiment and print its report.

Examples:
    python -m loadtest flashsale --viewers 5000 --units 500 --url ws://127.0.0.1:8000
    python -m loadtest groupsale --viewers 5000 --units 500 --threshold 250
    python -m loadtest fanout --viewers 5000 --method raw
    python -m loadtest flashsale --viewers 5000 --method naive --answer-wait 600
    python -m loadtest bench --runs 3          # every benchmark, every baseline
Without --url the harness starts its own server (liveshop or the --method baseline).
Exit status 1 when a correctness check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from loadtest import bench, fanout, harness, profile, report, sale, storm

SCENARIOS: dict[str, Callable[[harness.Options], Awaitable[report.Report]]] = {
    "fanout": fanout.fanout,
    "flashsale": sale.flashsale,
    "groupsale": sale.groupsale,
    "storm": storm.storm,
    "churn": storm.churn,
    "purchases": sale.purchases,
    "memory": fanout.memory,
}
METHODS = {
    "fanout": ("liveshop", "raw", "socketio"),
    "purchases": ("liveshop", "sqlite", "lua", "lua-bench"),
    "flashsale": ("liveshop", "naive"),
    "memory": ("liveshop", "raw"),
}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("scenario", choices=[*SCENARIOS, "bench"])
    ap.add_argument(
        "--method",
        default="liveshop",
        help="liveshop, or a baseline: fanout raw|socketio, purchases "
        "sqlite|lua|lua-bench, flashsale naive, memory raw",
    )
    ap.add_argument("--viewers", type=int, default=None, help="viewers (buyers for purchases)")
    ap.add_argument(
        "--url",
        default="",
        help="a running liveshop, ws://127.0.0.1:PORT (needs LIVESHOP_SECRET); default: start one",
    )
    ap.add_argument("--pid", type=int, help="pid of the --url server, for RSS and CPU")
    ap.add_argument("--workers", type=int, default=3, help="load-generator processes")
    ap.add_argument("--inflight", type=int, default=256, help="handshakes in flight, total")
    ap.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="liveshop serve --workers N when the harness starts the server",
    )
    ap.add_argument("--durability", choices=("strict", "fast"), default="strict")
    ap.add_argument("--out", type=Path, default=report.RESULTS, help="results directory")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the server during the measured phase (needs py-spy)",
    )
    g = ap.add_argument_group("scenario knobs")
    g.add_argument(
        "--units",
        type=int,
        help="flashsale: units on offer; groupsale: the group's cap (default viewers/10)",
    )
    g.add_argument(
        "--threshold", type=int, help="groupsale: members for success (default cap/2, min 2)"
    )
    g.add_argument("--spread", type=float, default=1.0, help="flash/groupsale: taps within (s)")
    g.add_argument(
        "--double-tap",
        type=float,
        default=0.1,
        help="flash/groupsale: share of viewers who tap twice",
    )
    g.add_argument(
        "--retries",
        type=int,
        default=3,
        help="flash/groupsale: resends (same request_id) of a tap answered unavailable",
    )
    g.add_argument(
        "--answer-wait",
        type=float,
        default=30.0,
        help="flash/groupsale: seconds after the last tap to wait for every answer "
        "(the naive peer needs minutes at 5,000 viewers and more)",
    )
    g.add_argument("--rates", default="5,20,50", help="fanout: events/s ladder")
    g.add_argument("--step", type=float, default=8.0, help="fanout: seconds per rate")
    g.add_argument("--pin-rate", type=float, default=10.0, help="storm: pins/s meanwhile")
    g.add_argument("--duration", type=float, help="purchases/churn: seconds")
    g.add_argument("--churn-rate", type=float, help="churn: connects (and disconnects) per s")
    g.add_argument("--buy-rate", type=float, default=15.0, help="purchases: buys/s per buyer")
    g.add_argument(
        "--sold-out",
        action="store_true",
        help="purchases: the SKU has no stock (measures sold-out answers, the flash sale's bulk)",
    )
    g.add_argument("--runs", type=int, default=3, help="bench: runs of every benchmark")
    g.add_argument("--only", default="", help="bench: comma-separated benchmark names")
    g.add_argument("--scale", type=float, default=1.0, help="bench: multiply viewer counts")
    return ap


def options(args: argparse.Namespace) -> harness.Options:
    defaults = {"purchases": 500, "memory": 10_000, "flashsale": 5000, "groupsale": 5000}
    extra: dict[str, object] = {
        "spread_s": args.spread,
        "double_tap": args.double_tap,
        "rates": [float(x) for x in args.rates.split(",") if x],
        "step_s": args.step,
        "pin_rate": args.pin_rate,
        "buy_rate": args.buy_rate,
        "retries": args.retries,
        "sold_out": args.sold_out,
        "answer_wait_s": args.answer_wait,
    }
    if args.units is not None:
        extra["units"] = args.units
    if args.threshold is not None:
        extra["threshold"] = args.threshold
    if args.duration is not None:
        extra["duration_s"] = args.duration
    if args.churn_rate is not None:
        extra["churn_rate"] = args.churn_rate
    return harness.Options(
        viewers=args.viewers or defaults.get(args.scenario, 1000),
        method=args.method,
        url=args.url,
        secret=os.environ.get("LIVESHOP_SECRET", ""),
        pid=args.pid,
        workers=args.workers,
        inflight=args.inflight,
        durability=args.durability,
        server_workers=args.server_workers,
        out=args.out,
        progress=not args.no_progress,
        plot=not args.no_plot,
        profile=args.profile,
        extra=extra,
    )


async def run_one(scenario: str, opts: harness.Options) -> report.Report:
    allowed = METHODS.get(scenario, ("liveshop",))
    if opts.method not in allowed:
        raise SystemExit(f"loadtest {scenario}: --method must be one of {', '.join(allowed)}")
    rep = await SCENARIOS[scenario](opts)
    if opts.server_workers > 1:
        rep.data["params"]["server_workers"] = opts.server_workers
    rep.print()
    for raw in rep.data.get("profiles", []):
        print(f"  profile: {raw}")
        top = profile.summary(Path(raw), 12)
        for name, share in top["self"]:
            print(f"    {share:5.1f}% self  {name}")
    path = rep.write(opts.out)
    print(f"  results: {path}")
    if opts.plot:
        png = path.with_suffix(".png")
        if scenario in ("flashsale", "groupsale"):
            print(f"  plot:    {report.plot_flashsale(rep, png)}")
        elif scenario == "fanout":
            print(f"  plot:    {report.plot_fanout(rep, png)}")
    return rep


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.scenario == "bench":
        return asyncio.run(bench.bench(args, options(args), run_one))
    rep = asyncio.run(run_one(args.scenario, options(args)))
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
