"""The Python-guest scenarios: `procbridge python` against python3 running
the very same code.

- ``PythonStartupScenario`` times ``procbridge python -c 'print(1)'`` (the
  interpreter's module already compiled and cached) against
  ``python3 -c 'print(1)'`` as whole commands, as the start-up scenario
  times ``hello``.
- ``PythonProgramScenario`` runs one script, ``bench/python/<script>``,
  under both: it measures itself and prints ``BENCH <key> <value>`` lines,
  as every bench program does.

There is no native Rust side. Both need the interpreter that
``guests/install-python`` installs; without it the procbridge column says
why.
"""

import subprocess
from dataclasses import dataclass, field
from typing import List, Optional

from .measure import ProgramFailed, wall_time
from .model import (
    FAILED,
    NATIVE,
    NOT_APPLICABLE,
    PENDING,
    PROCBRIDGE,
    PYTHON,
    Cell,
    Figure,
    Result,
    Row,
    rotated,
)
from .programs import ProgramScenario
from .startup import WARM_UP_RUNS, cell_of, summary

CODE = "print(1)"


def procbridge_python(ctx, args):
    """The command line of ``procbridge python ARGS`` with the bench cache."""
    return [str(ctx.procbridge), "python", "--cache-dir", str(ctx.cache_dir), *args]


def interpreter_missing(ctx):
    """Why ``procbridge python`` cannot run here, or None when it can (the
    first run compiles the interpreter into the cache)."""
    done = subprocess.run(
        procbridge_python(ctx, ["-c", "pass"]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return None
    return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "it failed"


@dataclass
class PythonStartupScenario:
    """Times ``print(1)`` as a whole process under each Python."""

    figure: Figure
    name: str = "python_startup"
    title: str = "Start-up: `procbridge python -c 'print(1)'` vs `python3 -c 'print(1)'`"
    notes: List[str] = field(default_factory=list)
    issue: Optional[int] = None

    def run(self, ctx):
        result = Result(
            name=self.name,
            title=self.title,
            about=(
                "Wall time of one whole command, started by the harness and waited for, "
                "output to /dev/null: `procbridge python -c 'print(1)'` (CPython 3.12 for "
                "WASI, its compiled module already in the cache, with procbridge's "
                "`os`, `multiprocessing` and `subprocess` installed at start-up) against "
                "the machine's `python3 -c 'print(1)'`."
            ),
            spread=f"p10–p90 of {ctx.samples} runs",
            issue=self.issue,
        )
        missing = interpreter_missing(ctx)
        if missing is not None:
            result.notes.append(f"procbridge python cannot run here: {missing}")
            result.rows.append(
                Row(
                    self.figure,
                    {
                        PROCBRIDGE: Cell(PENDING),
                        PYTHON: Cell(NOT_APPLICABLE),
                        NATIVE: Cell(NOT_APPLICABLE),
                    },
                )
            )
            return result
        commands = {
            PROCBRIDGE: procbridge_python(ctx, ["-c", CODE]),
            PYTHON: [ctx.python, "-c", CODE],
        }
        samples = {side: [] for side in commands}
        failed = False
        try:
            for _ in range(WARM_UP_RUNS):
                for side in commands:
                    wall_time(commands[side])
            for turn in range(ctx.samples):
                for side in rotated(list(commands), turn):
                    samples[side].append(wall_time(commands[side]) * 1e3)
        except ProgramFailed as err:
            result.notes.append(f"a start-up run failed: {err}")
            failed = True
        cells = {side: cell_of(samples[side], failed) for side in commands}
        cells[NATIVE] = Cell(NOT_APPLICABLE)
        result.rows.append(Row(self.figure, cells))
        result.notes.extend(self.notes)
        ctx.log(f"  {self.figure.key}: " + summary(result.rows[-1]))
        return result


@dataclass
class PythonProgramScenario(ProgramScenario):
    """One script run by ``procbridge python`` and by python3 (``guest``
    names it in the report; ``script`` is the file in bench/python)."""

    script: str = ""

    def _commands(self, ctx, notes):
        script = str(ctx.python_dir / self.script)
        missing = interpreter_missing(ctx)
        commands, unavailable = {}, {NATIVE: NOT_APPLICABLE}
        if missing is None:
            commands[PROCBRIDGE] = procbridge_python(
                ctx, [*self.grants, script, *ctx.scale_args()]
            )
        else:
            unavailable[PROCBRIDGE] = FAILED
            notes.append(f"procbridge python cannot run here: {missing}")
        commands[PYTHON] = [ctx.python, script, *ctx.scale_args()]
        return commands, unavailable
