"""The start-up scenario: wall time of whole commands, timed by the harness.

``procbridge run hello.wasm a b`` (module already compiled and cached)
against the native ``hello`` binary and ``python3 hello.py a b``, all with
output to /dev/null, sampled in turns. In the same turns, the floor:
``host/examples/wasmtime_run``, plain wasmtime running the same module
precompiled, which gets a row of its own. A last figure shows procbridge
compiling the module on every run (``--no-cache``).
"""

from dataclasses import dataclass, field
from typing import List, Optional

from .measure import ProgramFailed, Stats, wall_time
from .model import (
    FAILED,
    FLOOR,
    NATIVE,
    NOT_APPLICABLE,
    OK,
    PROCBRIDGE,
    PYTHON,
    SIDES,
    Cell,
    Figure,
    Result,
    Row,
    floor_row,
    rotated,
)

WARM_UP_RUNS = 3


@dataclass
class StartupScenario:
    """Times ``hello a b`` as a whole process on each side."""

    cached: Figure
    compiled: Figure
    name: str = "startup"
    title: str = "Start-up: `procbridge run hello.wasm a b` vs starting a native process"
    notes: List[str] = field(default_factory=list)
    issue: Optional[int] = None
    #: The host example that runs a module on plain wasmtime (the floor).
    floor: str = "wasmtime_run"

    def run(self, ctx):
        result = Result(
            name=self.name,
            title=self.title,
            about=(
                "Wall time of one whole command, started by the harness and waited "
                "for, output to /dev/null: `procbridge run hello.wasm a b` with the "
                "module already compiled in the cache; the native `hello` binary; "
                "`python3 hello.py a b` (with its usual start-up: `site` and what the "
                "installation's `.pth` files import). Each program prints its arguments, "
                "pid and parent pid. In the same turns, plain wasmtime runs the same module "
                "precompiled (`host/examples/wasmtime_run`): the floor under any wasmtime "
                "host, in a row of its own."
            ),
            spread=f"p10–p90 of {ctx.samples} runs",
            issue=self.issue,
        )
        wasm = ctx.guest_wasm("hello")
        if wasm is None:
            result.notes.append("guests/hello is missing: nothing to measure.")
            return result
        args = ["a", "b"]
        commands = {
            PROCBRIDGE: ctx.procbridge_run(wasm, args=args),
            PYTHON: ctx.python_script("hello.py") + args,
            NATIVE: [ctx.native("hello"), *args],
            FLOOR: [ctx.example(self.floor), str(ctx.cache_dir / "wasmtime"), str(wasm), *args],
        }
        samples = {side: [] for side in commands}
        failed = set()
        try:
            for _ in range(WARM_UP_RUNS):  # the first fills the module caches
                for side in commands:
                    wall_time(commands[side])
            for turn in range(ctx.samples):
                for side in rotated(list(commands), turn):
                    samples[side].append(wall_time(commands[side]) * 1e3)
        except ProgramFailed as err:
            result.notes.append(f"a start-up run failed: {err}")
            failed.update(commands)
        result.rows.append(self._row(self.cached, samples, failed))
        if not failed:
            result.rows.append(floor_row(self.cached, samples[PROCBRIDGE], samples[FLOOR]))

        compiled_runs = max(3, ctx.samples // 5)
        compile_samples = []
        no_cache = [str(ctx.procbridge), "run", "--no-cache", str(wasm), *args]
        try:
            for _ in range(compiled_runs):
                compile_samples.append(wall_time(no_cache) * 1e3)
        except ProgramFailed as err:
            result.notes.append(f"a --no-cache run failed: {err}")
        cells = {
            PROCBRIDGE: cell_of(compile_samples, failed=False),
            PYTHON: Cell(NOT_APPLICABLE),
            NATIVE: Cell(NOT_APPLICABLE),
        }
        result.rows.append(Row(self.compiled, cells))
        result.notes.append(
            f"The `--no-cache` row compiles the module with Cranelift on every run "
            f"({compiled_runs} runs); the cached row is what every later run of a "
            f"module costs."
        )
        result.notes.extend(self.notes)
        for row in result.rows:
            ctx.log(f"  {row.figure.key}: " + summary(row))
        return result

    def _row(self, figure, samples, failed):
        cells = {side: cell_of(samples[side], side in failed) for side in SIDES}
        return Row(figure, cells)


def cell_of(samples, failed):
    if failed or not samples:
        return Cell(FAILED)
    return Cell(OK, Stats.of(samples))


def summary(row):
    parts = []
    for side in SIDES:
        median = row.median(side)
        if median is not None:
            parts.append(f"{side} {median:.3f}")
    return ", ".join(parts)
