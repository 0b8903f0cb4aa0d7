"""The command line of bench/run."""

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from .build import BuildFailed, build_all
from .chart import write_chart
from .machine import describe
from .measure import ProgramFailed, wall_time
from .model import Context
from .report import write_report
from .scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]


def main(argv):
    args = _parse(argv)
    if args.list:
        for scenario in SCENARIOS:
            print(f"{scenario.name:12} {scenario.title}")
        return 0
    chosen = _choose(args.only)
    if chosen is None:
        return 2

    work = ROOT / "target" / "bench"
    ctx = Context(
        root=ROOT,
        procbridge=ROOT / "target" / "release" / "procbridge",
        native_dir=ROOT / "target" / "release",
        python_dir=ROOT / "bench" / "python",
        guests_src=ROOT / "guests",
        guests_out=ROOT / "target" / "guests",
        cache_dir=work / "module-cache",
        quick=args.quick,
        runs=args.runs or (1 if args.quick else 5),
        samples=args.samples or (10 if args.quick else 50),
    )
    full = not args.quick and not args.only
    output = Path(args.output) if args.output else None
    if output is None:
        output = ROOT / "docs" / "benchmarks.md" if full else work / "benchmarks.md"

    if not args.no_build:
        try:
            build_all(ctx, examples=_examples(SCENARIOS))
        except BuildFailed as err:
            ctx.log(f"bench/run: {err}")
            return 1
    if not _warm_module_cache(ctx):
        return 1

    machine = describe(ROOT)
    busy = os.getloadavg()[0] > (os.cpu_count() or 1)
    results = []
    for scenario in chosen:
        ctx.log(f"== {scenario.name}: {scenario.title}")
        results.append(scenario.run(ctx))

    output.parent.mkdir(parents=True, exist_ok=True)
    chart = output.with_suffix(".svg")
    write_chart(chart, results)
    write_report(output, chart.name, machine, results, busy)
    work.mkdir(parents=True, exist_ok=True)
    raw = [asdict(result) for result in results]
    (work / "results.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    ctx.log(f"wrote {_shown(output)} and {_shown(chart)}")
    return 0


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=(
            "Benchmark procbridge side by side with Python 3 and native Rust, in the "
            "same run, and write docs/benchmarks.md with an SVG chart."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few iterations, small payloads, one run per program "
        "(writes target/bench/benchmarks.md unless --output is given)",
    )
    parser.add_argument(
        "--runs", type=int, metavar="N", help="runs of each bench program (default 5, quick 1)"
    )
    parser.add_argument(
        "--samples", type=int, metavar="N", help="start-up samples per side (default 50, quick 10)"
    )
    parser.add_argument(
        "--only",
        metavar="NAME[,NAME]",
        help="run only these scenarios (writes target/bench/benchmarks.md unless --output)",
    )
    parser.add_argument("--output", metavar="FILE.md", help="where to write the report")
    parser.add_argument("--no-build", action="store_true", help="use what is already built")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    for name in ("runs", "samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def _choose(only):
    if not only:
        return list(SCENARIOS)
    by_name = {scenario.name: scenario for scenario in SCENARIOS}
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        print(f"bench/run: unknown scenario {', '.join(unknown)} (see --list)", file=sys.stderr)
        return None
    return [by_name[name] for name in names]


def _examples(scenarios):
    """The host crate's examples that ``scenarios`` run, once each."""
    names = [
        getattr(scenario, attribute, None)
        for scenario in scenarios
        for attribute in ("example", "floor")
    ]
    return list(dict.fromkeys(name for name in names if name))


def _warm_module_cache(ctx):
    """Starts from an empty module cache and compiles hello into it, so every
    measured procbridge run uses a cached module."""
    shutil.rmtree(ctx.cache_dir, ignore_errors=True)
    hello = ctx.guest_wasm("hello")
    if hello is None:
        ctx.log("bench/run: target/guests/hello.wasm is missing (run guests/build)")
        return False
    try:
        wall_time(ctx.procbridge_run(hello))
    except ProgramFailed as err:
        ctx.log(f"bench/run: procbridge cannot run hello: {err}")
        return False
    return True


def _shown(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
