"""The start-up scenario: wall time of whole commands, timed by the harness.

``procbridge run hello.wasm a b`` (module already compiled and cached)
against the native ``hello`` binary and ``python3 hello.py a b``, all with
output to /dev/null, sampled in turns. A second figure shows procbridge
compiling the module on every run (``--no-cache``).
"""

from dataclasses import dataclass, field
from typing import List, Optional

from .measure import ProgramFailed, Stats, wall_time
from .model import (
    FAILED,
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
                "pid and parent pid."
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
        }
        samples = {side: [] for side in SIDES}
        failed = set()
        try:
            for _ in range(WARM_UP_RUNS):  # the first fills the module cache
                for side in SIDES:
                    wall_time(commands[side])
            for turn in range(ctx.samples):
                for side in rotated(list(SIDES), turn):
                    samples[side].append(wall_time(commands[side]) * 1e3)
        except ProgramFailed as err:
            result.notes.append(f"a start-up run failed: {err}")
            failed.update(SIDES)
        result.rows.append(self._row(self.cached, samples, failed))

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
