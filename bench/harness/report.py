"""Writes the Markdown report (docs/benchmarks.md)."""

from . import units
from .model import (
    FAILED,
    MISSING,
    NARROW,
    NATIVE,
    NOT_APPLICABLE,
    PENDING,
    PROCBRIDGE,
    PYTHON,
    SIDE_TITLES,
    SIDES,
)

_HEADER = """\
# Benchmarks

procbridge measured side by side with Python 3 and native Rust, in the same
run on the same machine. This file and its chart are written by the
benchmark harness; regenerate them with:

```sh
bench/run            # full run (a few minutes): rewrites docs/benchmarks.md and .svg
bench/run --quick    # smoke run: writes target/bench/benchmarks.md instead
bench/run --list     # the scenarios; --only NAME runs some of them
```

How to read the tables: each number is a median, with its spread (p10–p90)
in brackets. A ratio is procbridge's cost divided by the baseline's, where
the cost is the time, or 1 ÷ the throughput: **0.50x is twice as fast as the
baseline, 2.00x takes twice as long**. *pending*: the procbridge bench guest
of that scenario does not exist yet; —: that side has no program for the
figure. The targets are those of the issues. Next to a target is the ratio
it checks, stated the way the target is: for "≤ 1.2x native Rust" the cost
ratio, for "≥ 2x Python 3's throughput" procbridge's throughput ÷ Python's.
How the harness works and how to add a scenario:
[`bench/README.md`](../bench/README.md).
"""


def write_report(path, chart_name, machine, results, busy=False):
    """Writes the report for ``results`` to ``path``."""
    out = [_HEADER]
    out.append(f"![procbridge and native Rust relative to Python 3]({chart_name})\n")
    out.extend(_targets(results, busy))
    out.append("## Machine\n")
    out.append("| | |\n|---|---|")
    out.extend(f"| {label} | {value} |" for label, value in machine)
    out.append("")
    if busy:
        out.append(
            "The machine was busy when the run started (load average above its core "
            "count): absolute numbers are noisy; the ratios, measured in turns, less so.\n"
        )
    for result in results:
        out.extend(_scenario(result))
    path.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")


def _scenario(result):
    lines = [f"## {result.title}\n", result.about + "\n"]
    if not result.rows:
        lines.extend(f"- {note}" for note in result.notes)
        lines.append("")
        return lines
    header = ["figure", *(SIDE_TITLES[side] for side in SIDES)]
    header += [f"vs {SIDE_TITLES[PYTHON]}", f"vs {SIDE_TITLES[NATIVE]}", "target"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|" + "---:|" * (len(header) - 2) + "---|")
    for row in result.rows:
        cells = [row.figure.label]
        cells += [_cell(row.figure.key, row.cells[side]) for side in SIDES]
        cells += [_ratio(row, PYTHON), _ratio(row, NATIVE), _target(result, row)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Medians; in brackets the spread ({result.spread}).\n")
    lines.extend(f"- {note}" for note in result.notes)
    lines.append("")
    return lines


_NO_NUMBER = {PENDING: "*pending*", NOT_APPLICABLE: "—", FAILED: "failed", MISSING: "—"}


def _cell(key, cell):
    if cell.stats is None:
        return _NO_NUMBER.get(cell.status, "—")
    stats = cell.stats
    divisor, unit = units.scale(key, stats.median)
    median, p10, p90 = (units.number(x / divisor) for x in (stats.median, stats.p10, stats.p90))
    text = f"{median} {unit}".rstrip()
    if stats.count > 1 and p10 != p90:
        text += f" ({p10}–{p90})"
    return text


def _ratio(row, against):
    ratio = row.ratio(against)
    if ratio is not None:
        return units.ratio(ratio)
    if row.cells[PROCBRIDGE].status == PENDING and row.median(against) is not None:
        return "*pending*"
    return "—"


def _target(result, row):
    cells = []
    for verdict in result.verdicts(row):
        status = _status(verdict, result.row(verdict.base_key), row)
        if verdict.ratio is not None:
            status = f"{units.ratio(verdict.shown_ratio())}, {status}"
        cells.append(f"{verdict.text()}: {status}")
    return "<br>".join(cells)


def _status(verdict, base_row, row):
    """**met**, **missed**, or why there is no verdict."""
    if verdict.narrowly_met():
        return "**met** (narrowly)"
    if verdict.met is not None:
        return "**met**" if verdict.met else "**missed**"
    status = row.cells[PROCBRIDGE].status
    if verdict.procbridge is not None:
        base_status = base_row.cells[verdict.target.against].status if base_row else MISSING
        return "baseline failed" if base_status == FAILED else "no baseline"
    return {FAILED: "failed", MISSING: "not measured"}.get(status, "*pending*")


def _targets(results, busy=False):
    """The summary: every target, its numbers and its verdict."""
    checked = [
        (result, row, verdict)
        for result in results
        for row in result.rows
        for verdict in result.verdicts(row)
    ]
    if not checked:
        return []
    met = [v for _, _, v in checked if v.met]
    missed = [v for _, _, v in checked if v.met is False]
    open_ = [v for _, _, v in checked if v.met is None]
    lines = ["## Targets\n"]
    summary = f"Of {len(checked)} targets, {len(met)} met, {len(missed)} missed"
    summary += f" and {len(open_)} without a verdict yet." if open_ else "."
    if met:
        summary += " Met: " + "; ".join(_briefly(v) for v in met) + "."
    narrow = [v for v in met if v.narrowly_met()]
    if narrow:
        summary += (
            f" Met narrowly, with less than {NARROW:.0%} to spare (run-to-run noise "
            "can change these): " + "; ".join(_briefly(v) for v in narrow) + "."
        )
    if missed:
        summary += " **Missed**: " + "; ".join(_missed(v) for v in missed) + "."
    if busy:
        summary += (
            " The machine was busy during this run (see below): the verdicts rest on "
            "ratios measured in turns, but absolute numbers are noisy."
        )
    lines.append(summary + "\n")
    lines.append("| issue | figure | target | procbridge | baseline | ratio | verdict |")
    lines.append("|---|---|---|---:|---:|---:|---|")
    for result, row, verdict in checked:
        base_row = result.row(verdict.base_key)
        lines.append(
            "| "
            + " | ".join(
                [
                    str(verdict.target.issue or result.issue or ""),
                    row.figure.label,
                    verdict.text(),
                    _value(row.figure.key, verdict.procbridge),
                    _value(verdict.base_key, verdict.baseline),
                    units.ratio(verdict.shown_ratio()) if verdict.ratio is not None else "—",
                    _status(verdict, base_row, row),
                ]
            )
            + " |"
        )
    lines.append("")
    return lines


def _briefly(verdict):
    return f"{verdict.figure.label} ({verdict.text()}: {units.ratio(verdict.shown_ratio())})"


def _missed(verdict):
    return (
        f"{verdict.figure.label} ({verdict.text()}: {units.ratio(verdict.shown_ratio())}, "
        f"{_value(verdict.figure.key, verdict.procbridge)} against "
        f"{_value(verdict.base_key, verdict.baseline)})"
    )


def _value(key, value):
    if value is None:
        return "—"
    divisor, unit = units.scale(key, value)
    return f"{units.number(value / divisor)} {unit}".rstrip()
