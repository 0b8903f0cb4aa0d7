"""Running commands, reading their BENCH lines, and statistics."""

import math
import re
import statistics
import subprocess
import time
from dataclasses import dataclass

_BENCH_LINE = re.compile(r"^BENCH (\S+) (\S+)\s*$")

#: How long one program run may take before it counts as failed.
TIMEOUT_SECONDS = 600


@dataclass
class Stats:
    """Median and spread (10th and 90th percentiles) of some samples."""

    median: float
    p10: float
    p90: float
    count: int

    @staticmethod
    def of(samples):
        ordered = sorted(samples)
        return Stats(
            median=statistics.median(ordered),
            p10=percentile(ordered, 10),
            p90=percentile(ordered, 90),
            count=len(ordered),
        )


def percentile(ordered, pct):
    """Linear-interpolated percentile of already sorted samples."""
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * pct / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def parse_bench(text):
    """The ``{key: value}`` of every ``BENCH <key> <value>`` line in ``text``.

    Other lines are ignored; a value that is not a number is an error.
    """
    values = {}
    for line in text.splitlines():
        match = _BENCH_LINE.match(line)
        if match:
            key, value = match.groups()
            try:
                values[key] = float(value)
            except ValueError:
                raise ValueError(f"not a number in {line!r}") from None
    return values


class ProgramFailed(Exception):
    """A measured program exited badly, timed out or printed no BENCH line."""


def run_bench_program(argv, cwd=None):
    """Runs ``argv`` and returns its BENCH values; raises ProgramFailed."""
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProgramFailed(f"timed out after {TIMEOUT_SECONDS} s") from None
    except OSError as err:
        raise ProgramFailed(str(err)) from None
    if done.returncode != 0:
        raise ProgramFailed(f"exit code {done.returncode}: {_tail(done.stderr)}")
    try:
        values = parse_bench(done.stdout)
    except ValueError as err:
        raise ProgramFailed(str(err)) from None
    if not values:
        raise ProgramFailed("printed no BENCH line")
    return values


def wall_time(argv):
    """Seconds for ``argv`` to run to completion, output to /dev/null."""
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        raise ProgramFailed(f"exit code {done.returncode}: {_tail(stderr)}")
    return elapsed


def _tail(text, lines=3):
    """The last few lines of ``text``, on one line."""
    kept = [line.strip() for line in text.strip().splitlines()[-lines:]]
    return " / ".join(kept) or "(no output)"
