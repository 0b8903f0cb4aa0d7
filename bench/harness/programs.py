"""Scenarios whose programs measure themselves.

A scenario names up to three programs, one per side:

- a procbridge bench guest, ``guests/<guest>``, run as
  ``procbridge run [grants] target/guests/<guest>.wasm [--quick]``;
- a Python baseline, ``bench/python/<script>``, run with the same Python
  that runs the harness;
- a native Rust baseline, a binary of the ``bench/native`` crate.

A scenario may also name a ``floor``: a host example that does what the
guest does on plain wasmtime (a default ``Config``, nothing of
procbridge's), run in the same turns and printing the same keys. Each of
its figures adds a row with procbridge's figure next to it, in the native
column: what any wasmtime host pays on the machine, told apart from what
procbridge adds.

``ExampleScenario`` measures procbridge used as a library instead: an
example program of the host crate (``host/examples/<example>.rs``) that
measures procbridge's side when given ``procbridge`` and its baseline when
given the scenario's ``native_args``.

Each program prints ``BENCH <key> <value>`` lines (the median of its own
iterations) and may be given ``--quick`` for a smoke run. The harness runs
every program ``--runs`` times, in turns, and reports the median of those
medians. A guest that does not exist yet makes its column "pending"; a
side without a program is "—".
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from .measure import ProgramFailed, Stats, run_bench_program
from .model import (
    FAILED,
    FLOOR,
    MISSING,
    NATIVE,
    NOT_APPLICABLE,
    OK,
    PENDING,
    PROCBRIDGE,
    PYTHON,
    SIDE_TITLES,
    SIDES,
    Cell,
    Figure,
    Result,
    Row,
    floor_row,
    rotated,
)


@dataclass
class ProgramScenario:
    """A procbridge guest, a Python baseline and a native baseline that print
    the same BENCH keys. Keys a program prints that are not among
    ``figures`` are reported too, labelled by their key."""

    name: str
    title: str
    about: str
    guest: str
    figures: List[Figure]
    python: Optional[str] = None
    native: Optional[str] = None
    grants: Sequence[str] = ()
    notes: List[str] = field(default_factory=list)
    issue: Optional[int] = None
    #: The host example measuring the same keys on plain wasmtime, if any.
    floor: Optional[str] = None
    #: Runs one program (its argv, and the directory to run it in) and
    #: returns what it measured: ``{key: value}``.
    runner: Callable[..., Dict[str, float]] = run_bench_program

    def run(self, ctx):
        result = Result(
            name=self.name,
            title=self.title,
            about=self.about,
            spread=(
                f"p10–p90 of the medians of {ctx.runs} runs of each program"
                if ctx.runs > 1
                else "one run of each program: no spread"
            ),
            issue=self.issue,
        )
        commands, unavailable = self._commands(ctx, result.notes)
        if self.floor:
            commands[FLOOR] = [ctx.example(self.floor), *ctx.scale_args()]
        samples = {side: {} for side in commands}
        failed = set()
        for turn in range(ctx.runs):
            for side in rotated(list(commands), turn):
                if side in failed:
                    continue
                try:
                    values = self.runner(commands[side], cwd=ctx.python_dir)
                except ProgramFailed as err:
                    failed.add(side)
                    result.notes.append(f"The {SIDE_TITLES[side]} program failed: {err}")
                    ctx.log(f"  {side} failed: {err}")
                    continue
                ctx.log(f"  {side}: " + ", ".join(f"{k} {v:g}" for k, v in values.items()))
                for key, value in values.items():
                    samples[side].setdefault(key, []).append(value)

        for figure in self._figures_with_extra_keys(samples):
            cells = {}
            for side in SIDES:
                if side in unavailable:
                    cells[side] = Cell(unavailable[side])
                elif figure.key in samples[side]:
                    cells[side] = Cell(OK, Stats.of(samples[side][figure.key]))
                else:
                    cells[side] = Cell(FAILED if side in failed else MISSING)
            result.rows.append(Row(figure, cells))
        for figure in self.figures:
            if figure.key in samples.get(FLOOR, {}):
                procbridge = samples.get(PROCBRIDGE, {}).get(figure.key, [])
                result.rows.append(floor_row(figure, procbridge, samples[FLOOR][figure.key]))
        result.notes.extend(self.notes)
        return result

    def _commands(self, ctx, notes):
        """The command of each side that can run, and why the others cannot."""
        commands, unavailable = {}, {}
        wasm = ctx.guest_wasm(self.guest)
        if wasm is None:
            unavailable[PROCBRIDGE] = PENDING
            notes.append(
                f"procbridge figures are pending: the bench guest `guests/{self.guest}` "
                f"does not exist yet."
            )
        else:
            commands[PROCBRIDGE] = ctx.procbridge_run(wasm, self.grants, ctx.scale_args())
        if self.python:
            commands[PYTHON] = ctx.python_script(self.python) + ctx.scale_args()
        else:
            unavailable[PYTHON] = NOT_APPLICABLE
        if self.native:
            commands[NATIVE] = [ctx.native(self.native), *ctx.scale_args()]
        else:
            unavailable[NATIVE] = NOT_APPLICABLE
        return commands, unavailable

    def _figures_with_extra_keys(self, samples):
        figures = list(self.figures)
        known = {figure.key for figure in figures}
        for side in SIDES:
            for key in samples.get(side, {}):
                if key not in known:
                    known.add(key)
                    figures.append(Figure(key, f"`{key}`"))
        return figures


@dataclass
class ExampleScenario(ProgramScenario):
    """procbridge embedded as a library: ``host/examples/<example>.rs``,
    built by ``cargo build --release -p procbridge --example <example>``.

    Its procbridge side runs ``<example> procbridge --plugin <wasm>
    --cache-dir <cache> [--quick]``, where ``<wasm>`` is the built guest
    ``guest`` (pending until it exists); its native side runs the same
    program with ``native_args`` (none: no native side) instead, and a
    Python side, if any, is ``python`` as in a ``ProgramScenario``."""

    example: str = ""
    native_args: Sequence[str] = ()

    def source(self, root):
        """The example's source file."""
        return root / "host" / "examples" / f"{self.example}.rs"

    def _commands(self, ctx, notes):
        commands, unavailable = {}, {}
        program = ctx.example(self.example)
        wasm = ctx.guest_wasm(self.guest)
        if wasm is None:
            unavailable[PROCBRIDGE] = PENDING
            notes.append(
                f"procbridge figures are pending: the guest `guests/{self.guest}` does not "
                f"exist yet."
            )
        else:
            commands[PROCBRIDGE] = [
                program,
                "procbridge",
                "--plugin",
                str(wasm),
                "--cache-dir",
                str(ctx.cache_dir),
                *ctx.scale_args(),
            ]
        if self.python:
            commands[PYTHON] = ctx.python_script(self.python) + ctx.scale_args()
        else:
            unavailable[PYTHON] = NOT_APPLICABLE
        if self.native_args:
            commands[NATIVE] = [program, *self.native_args, *ctx.scale_args()]
        else:
            unavailable[NATIVE] = NOT_APPLICABLE
        return commands, unavailable
