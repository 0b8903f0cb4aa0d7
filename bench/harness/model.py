"""What a scenario measures (figures, targets) and what it found (rows)."""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import units
from .measure import Stats

PROCBRIDGE = "procbridge"
PYTHON = "python"
NATIVE = "native"

#: The three sides of every comparison, in table order.
SIDES = (PROCBRIDGE, PYTHON, NATIVE)

#: Not a column: a plain wasmtime program (a host example) that does what
#: procbridge's side does with nothing of procbridge's, the floor under any
#: wasmtime host on the machine. Its figures fill the native column of rows
#: of their own (``floor_row``), so procbridge's cost is held to both.
FLOOR = "wasmtime"

#: Titles of the sides (the first three are the table's columns).
SIDE_TITLES = {
    PROCBRIDGE: "procbridge",
    PYTHON: "Python 3",
    NATIVE: "native Rust",
    FLOOR: "plain wasmtime",
}


@dataclass(frozen=True)
class Target:
    """A goal for procbridge's cost relative to a baseline's.

    Met when procbridge's cost is at most ``at_most`` times the cost of
    ``against`` (a side) measured for ``key``: by default the figure's own
    key, or another figure of the same scenario (procbridge's spawn start
    method against Python's forkserver, say; ``baseline_label`` names it).
    ``strict`` asks for strictly less ("faster than"). The cost is the time,
    or 1 ÷ the rate, so "at least 2x Python's throughput" is
    ``at_most=0.5``.

    A target on a rate reads as one ("≥ 2x Python 3's throughput") and its
    ratio is shown the same way up (procbridge's rate ÷ the baseline's).
    ``rate`` does that for a time whose issue states the target as a rate:
    ``rate="round trips/s"`` on a round-trip time. ``issue`` is the issue
    that set the target, when it is not the scenario's.
    """

    against: str
    at_most: float
    key: Optional[str] = None
    strict: bool = False
    baseline_label: Optional[str] = None
    rate: Optional[str] = None
    issue: Optional[int] = None

    def describe(self, figure_key):
        """The target in words, e.g. ``≤ 1.2x native Rust``."""
        side = SIDE_TITLES[self.against]
        if self.baseline_label:
            side = f"{side} {self.baseline_label}"
        if self.strict and self.at_most == 1.0:
            return f"faster than {side}"
        if self.reads_as_rate(figure_key):
            rate = self.rate or "throughput"
            return f"{'>' if self.strict else '≥'} {_factor(1 / self.at_most)}x {side}'s {rate}"
        return f"{'<' if self.strict else '≤'} {_factor(self.at_most)}x {side}"

    def reads_as_rate(self, figure_key):
        """Whether the target is stated as "at least N times a rate"."""
        return self.rate is not None or not units.lower_is_better(figure_key)

    def meets(self, ratio):
        """Whether a cost ratio (procbridge ÷ baseline) meets the target."""
        return ratio < self.at_most if self.strict else ratio <= self.at_most


def _factor(value):
    """1.2, 0.8, 2: a target factor without needless digits."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Figure:
    """One measured quantity: a BENCH key (its suffix is its unit), a label
    for the report, and the targets procbridge must meet (any number)."""

    key: str
    label: str
    targets: Tuple[Target, ...] = ()


#: A target met with less than this to spare (10%) is reported as met narrowly.
NARROW = 0.10


@dataclass(frozen=True)
class Verdict:
    """One target checked: the cost ratio (procbridge ÷ baseline) and
    whether it is met (both None when a number is missing), with the two
    medians."""

    figure: Figure
    target: Target
    base_key: str
    procbridge: Optional[float]
    baseline: Optional[float]
    ratio: Optional[float]
    met: Optional[bool]

    def text(self):
        return self.target.describe(self.figure.key)

    def narrowly_met(self):
        """Met, but with less than ``NARROW`` to spare: close enough to the
        limit for run-to-run noise to change the verdict."""
        return bool(self.met) and self.ratio * (1 + NARROW) > self.target.at_most

    def shown_ratio(self):
        """The ratio the way the target states it: the cost ratio, or for a
        target stated as a rate, procbridge's rate ÷ the baseline's."""
        if self.ratio is None or not self.target.reads_as_rate(self.figure.key):
            return self.ratio
        return 1 / self.ratio if self.ratio else float("inf")


# Why a cell has no number.
OK = "ok"
PENDING = "pending"  # the procbridge guest does not exist yet
NOT_APPLICABLE = "n/a"  # this side has no program for the scenario
FAILED = "failed"  # the program failed (see the scenario's notes)
MISSING = "missing"  # the program ran but did not print this key


@dataclass
class Cell:
    """One side's result for one figure."""

    status: str
    stats: Optional[Stats] = None


@dataclass
class Row:
    """One figure measured on every side."""

    figure: Figure
    cells: Dict[str, Cell]

    def median(self, side):
        cell = self.cells.get(side)
        return cell.stats.median if cell and cell.stats else None

    def ratio(self, against, side=PROCBRIDGE):
        """``side``'s cost divided by ``against``'s (None when either is missing)."""
        return cost_ratio(self.figure.key, self.median(side), self.figure.key, self.median(against))


def floor_row(figure, procbridge, floor):
    """The row that holds procbridge's samples of ``figure`` next to those
    of the plain wasmtime floor (both lists of numbers; a side without
    samples is missing), the floor in the native column."""

    def cell(samples):
        return Cell(OK, Stats.of(samples)) if samples else Cell(MISSING)

    floor_figure = Figure(
        f"wasmtime_{figure.key}", f"{figure.label}; native column: plain wasmtime (floor)"
    )
    cells = {PROCBRIDGE: cell(procbridge), PYTHON: Cell(NOT_APPLICABLE), NATIVE: cell(floor)}
    return Row(floor_figure, cells)


def cost_ratio(key, value, base_key, base_value):
    """The cost of ``value`` (of ``key``) divided by that of ``base_value``
    (of ``base_key``); None when either is missing."""
    if value is None or base_value is None:
        return None
    base = units.cost(base_key, base_value)
    return units.cost(key, value) / base if base else None


@dataclass
class Result:
    """What one scenario found."""

    name: str
    title: str
    about: str
    spread: str
    issue: Optional[int] = None
    rows: List[Row] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def row(self, key):
        """The row of the figure ``key``, or None."""
        return next((row for row in self.rows if row.figure.key == key), None)

    def verdicts(self, row):
        """Every target of ``row``'s figure, checked."""
        found = []
        for target in row.figure.targets:
            key = target.key or row.figure.key
            base_row = self.row(key)
            base = base_row.median(target.against) if base_row else None
            mine = row.median(PROCBRIDGE)
            ratio = cost_ratio(row.figure.key, mine, key, base)
            met = None if ratio is None else target.meets(ratio)
            found.append(Verdict(row.figure, target, key, mine, base, ratio, met))
        return found


@dataclass
class Context:
    """Where things are and how much to measure; given to every scenario."""

    root: Path
    procbridge: Path
    native_dir: Path
    python_dir: Path
    guests_src: Path
    guests_out: Path
    cache_dir: Path
    quick: bool
    runs: int
    samples: int
    python: str = sys.executable

    def log(self, message):
        print(message, file=sys.stderr, flush=True)

    def scale_args(self):
        """Arguments every bench program gets: ``--quick`` in a quick run."""
        return ["--quick"] if self.quick else []

    def guest_wasm(self, name):
        """The built guest ``name``, or None when guests/NAME does not exist."""
        wasm = self.guests_out / f"{name}.wasm"
        if (self.guests_src / name).is_dir() and wasm.is_file():
            return wasm
        return None

    def procbridge_run(self, wasm, grants=(), args=()):
        """The command line that runs ``wasm`` under procbridge (cached)."""
        return [
            str(self.procbridge),
            "run",
            "--cache-dir",
            str(self.cache_dir),
            *grants,
            str(wasm),
            *args,
        ]

    def native(self, name):
        return str(self.native_dir / name)

    def example(self, name):
        """An example program of the host crate (built by the harness)."""
        return str(self.native_dir / "examples" / name)

    def python_script(self, script):
        return [self.python, str(self.python_dir / script)]


def rotated(sides, turn):
    """``sides`` starting at ``turn``: runs take turns going first, so a
    slow moment on the machine does not always hit the same side."""
    turn %= len(sides)
    return sides[turn:] + sides[:turn]
