"""What a scenario measures (figures, targets) and what it found (rows)."""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from . import units
from .measure import Stats

PROCBRIDGE = "procbridge"
PYTHON = "python"
NATIVE = "native"

#: The three sides of every comparison, in table order.
SIDES = (PROCBRIDGE, PYTHON, NATIVE)

#: Column titles of the sides.
SIDE_TITLES = {PROCBRIDGE: "procbridge", PYTHON: "Python 3", NATIVE: "native Rust"}


@dataclass(frozen=True)
class Target:
    """procbridge's cost must be at most ``at_most`` times a baseline's."""

    against: str
    at_most: float

    def text(self):
        return f"≤ {self.at_most:.1f}x {SIDE_TITLES[self.against]}"


@dataclass(frozen=True)
class Figure:
    """One measured quantity: a BENCH key (its suffix is its unit), a label
    for the report, and optionally the target procbridge must meet."""

    key: str
    label: str
    target: Optional[Target] = None


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
        mine, theirs = self.median(side), self.median(against)
        if mine is None or theirs is None:
            return None
        key = self.figure.key
        base = units.cost(key, theirs)
        return units.cost(key, mine) / base if base else None

    def target_met(self):
        """True or False when procbridge was measured against the target, else None."""
        target = self.figure.target
        if target is None:
            return None
        ratio = self.ratio(target.against)
        return None if ratio is None else ratio <= target.at_most


@dataclass
class Result:
    """What one scenario found."""

    name: str
    title: str
    about: str
    spread: str
    rows: List[Row] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


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

    def python_script(self, script):
        return [self.python, str(self.python_dir / script)]


def rotated(sides, turn):
    """``sides`` starting at ``turn``: runs take turns going first, so a
    slow moment on the machine does not always hit the same side."""
    turn %= len(sides)
    return sides[turn:] + sides[:turn]
