"""Running commands, reading their BENCH lines, and statistics."""

import math
import os
import re
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass

_BENCH_LINE = re.compile(r"^BENCH (\S+) (\S+)\s*$")
_PSS_LINE = re.compile(r"^PSS (\w+) (\d+)\s*$")

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


def run_memory_program(argv, cwd=None):
    """Runs ``argv``, a program that holds still to be measured, and returns
    the memory each of its children costs, as ``{pss_<label>_child_kb: kB}``.

    The program prints ``PSS <label> <children>`` and waits for a line on
    its stdin; meanwhile the harness sums the proportional set size (PSS)
    of the program's whole process tree. The first pause (``base``, no
    children) is what the rest are measured against: a pause with N
    children costs ``(tree - base) / N`` per child.
    """
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as err:
        raise ProgramFailed(str(err)) from None
    timer = threading.Timer(TIMEOUT_SECONDS, proc.kill)
    timer.start()
    values, base = {}, None
    # Leaving the block closes the pipes and waits for the program.
    with proc:
        try:
            for line in proc.stdout:
                match = _PSS_LINE.match(line)
                if not match:
                    continue
                label, children = match.group(1), int(match.group(2))
                kb = tree_pss_kb(proc.pid)
                if base is None:
                    base = kb
                elif children > 0:
                    values[f"pss_{label}_child_kb"] = (kb - base) / children
                proc.stdin.write("\n")
                proc.stdin.flush()
            proc.stdin.close()
            stderr = proc.stderr.read()
            returncode = proc.wait()
        except (OSError, ProgramFailed) as err:
            proc.kill()
            raise ProgramFailed(str(err)) from None
        finally:
            timer.cancel()
    if returncode != 0:
        raise ProgramFailed(f"exit code {returncode}: {_tail(stderr)}")
    if not values:
        raise ProgramFailed("paused for no measurement with children")
    return values


def tree_pss_kb(root):
    """The proportional set size, in kB, of process ``root`` and all its
    descendants, from ``/proc/<pid>/smaps_rollup`` (Linux)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = _parent_of(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        total += _pss_kb(pid)
    return total


def _parent_of(pid):
    """The parent of ``pid``; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[1])


def _pss_kb(pid):
    """The PSS of one process in kB (0 when it has gone meanwhile)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return 0
    except PermissionError:
        raise ProgramFailed(
            f"cannot read /proc/{pid}/smaps_rollup: run the harness as the same user "
            "as the program, with ptrace access to it"
        ) from None
    return 0


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
