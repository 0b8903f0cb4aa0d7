"""Draws the report's chart: an SVG written without any dependency.

One group of bars per figure that has a Python number: procbridge's and
native Rust's cost relative to Python 3 (= 1, the dashed line), on a log
scale, so lower (shorter) is faster. A red mark on procbridge's bar is a
target: the most procbridge may cost to meet it, on the same scale (a
target against native Rust or another figure is converted to it). Each
bar's ratio is written right of the Python line, so no label runs into the
figure names.
"""

import math
from xml.sax.saxutils import escape

from . import units
from .model import FAILED, NATIVE, PENDING, PROCBRIDGE, PYTHON, SIDE_TITLES

_COLORS = {PROCBRIDGE: "#2b6cb0", NATIVE: "#dd6b20"}
_TARGET = "#c53030"
# A white outline under a label keeps it readable over a target mark.
_HALO = 'stroke="white" stroke-width="3" paint-order="stroke"'
_BARS = (PROCBRIDGE, NATIVE)

_WIDTH = 980
_LABEL_WIDTH = 360
_RIGHT = 40
_TOP = 64
_BAR = 12
_GROUP = 2 * _BAR + 14
_SECTION = 26
_BOTTOM = 44


def write_chart(path, results):
    """Writes the chart of ``results`` to ``path``."""
    sections = []
    for result in results:
        rows = [
            (row, _target_marks(result, row), _verdict(result, row))
            for row in result.rows
            if row.median(PYTHON) is not None and _has_bars(row)
        ]
        if rows:
            sections.append((result.title, rows))
    ratios = [
        row.ratio(PYTHON, side)
        for _, rows in sections
        for row, _, _ in rows
        for side in _BARS
        if row.ratio(PYTHON, side)
    ]
    ratios += [mark for _, rows in sections for _, marks, _ in rows for mark in marks]
    # A decade more on the left when a bar would end at the axis.
    low_exp = math.floor(math.log10(min(ratios + [0.5])) - 0.15)
    high_exp = math.ceil(math.log10(max(ratios + [2.0])))
    low, high = 10.0**low_exp, 10.0**high_exp
    plot_left, plot_right = _LABEL_WIDTH, _WIDTH - _RIGHT

    def x_of(ratio):
        fraction = (math.log10(ratio) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return plot_left + fraction * (plot_right - plot_left)

    body_height = sum(_SECTION + len(rows) * _GROUP for _, rows in sections)
    height = _TOP + body_height + _BOTTOM
    svg = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
            f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12">'
        ),
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        (
            '<text x="16" y="24" font-size="16" font-weight="bold">'
            "Cost relative to Python 3 (log scale; left of the dashed line is faster)</text>"
        ),
    ]
    svg += _legend(16)

    # Grid: one line per power of ten, and the Python line at 1.
    for exponent in range(low_exp, high_exp + 1):
        decade = 10.0**exponent
        x = x_of(decade)
        style = 'stroke="#444" stroke-dasharray="5,3"' if exponent == 0 else 'stroke="#ddd"'
        svg.append(
            f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + body_height}" {style}/>'
        )
        svg.append(
            f'<text x="{x:.1f}" y="{_TOP + body_height + 16}" text-anchor="middle">'
            f"{decade:g}x</text>"
        )
    svg.append(
        f'<text x="{(plot_left + plot_right) / 2:.0f}" y="{height - 10}" text-anchor="middle">'
        f"× Python 3's cost (1 = as fast as Python)</text>"
    )

    y = _TOP
    for title, rows in sections:
        y += _SECTION
        svg.append(f'<text x="16" y="{y - 8}" font-weight="bold">{_plain(title)}</text>')
        for row, marks, verdict in rows:
            svg.append(
                f'<text x="{plot_left - 8}" y="{y + _BAR + 4}" text-anchor="end">'
                f"{_plain(row.figure.label)}</text>"
            )
            labels = []  # drawn last, over the target marks
            for index, side in enumerate(_BARS):
                bar_y = y + 4 + index * _BAR
                ratio = row.ratio(PYTHON, side)
                if ratio is None:
                    status = row.cells[side].status
                    what = {PENDING: "pending", FAILED: "failed"}.get(status, "—")
                    svg.append(
                        f'<text x="{x_of(1) + 6:.1f}" y="{bar_y + _BAR - 2}" fill="#888" '
                        f'font-size="10">{SIDE_TITLES[side]}: {what}</text>'
                    )
                    continue
                x = x_of(ratio)
                start, end = sorted((x_of(1), x))
                svg.append(
                    f'<rect x="{start:.1f}" y="{bar_y}" width="{max(end - start, 1):.1f}" '
                    f'height="{_BAR - 2}" fill="{_COLORS[side]}"/>'
                )
                labels.append(
                    f'<text x="{max(end, x_of(1)) + 4:.1f}" '
                    f'y="{bar_y + _BAR - 3}" font-size="10" {_HALO}>'
                    f"{_ratio(ratio)}{verdict if side == PROCBRIDGE else ''}</text>"
                )
            for mark in marks:
                x = x_of(mark)
                svg.append(
                    f'<line x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + 3 + _BAR}" '
                    f'stroke="{_TARGET}" stroke-width="3"/>'
                )
            svg += labels
            y += _GROUP
    svg.append("</svg>")
    path.write_text("\n".join(svg) + "\n", encoding="utf-8")


def _legend(left):
    items = []
    x = left
    for side in _BARS:
        items.append(f'<rect x="{x}" y="36" width="14" height="10" fill="{_COLORS[side]}"/>')
        items.append(f'<text x="{x + 20}" y="45">{SIDE_TITLES[side]}</text>')
        x += 140
    items.append(
        f'<line x1="{x}" y1="41" x2="{x + 14}" y2="41" stroke="#444" stroke-dasharray="5,3"/>'
    )
    items.append(f'<text x="{x + 20}" y="45">{SIDE_TITLES[PYTHON]} = 1</text>')
    x += 140
    items.append(
        f'<line x1="{x + 7}" y1="35" x2="{x + 7}" y2="47" stroke="{_TARGET}" stroke-width="3"/>'
    )
    items.append(f'<text x="{x + 20}" y="45">target: procbridge must end left of it</text>')
    return items


def _has_bars(row):
    """Whether a row has a bar, or says why procbridge's is missing."""
    if any(row.ratio(PYTHON, side) is not None for side in _BARS):
        return True
    return row.cells[PROCBRIDGE].status in (PENDING, FAILED)


def _verdict(result, row):
    """ ", targets met" / ", target missed" after procbridge's ratio."""
    found = [verdict.met for verdict in result.verdicts(row) if verdict.met is not None]
    if not found:
        return ""
    if all(found):
        return ", target met" if len(found) == 1 else ", targets met"
    missed = found.count(False)
    return f", {missed} of {len(found)} targets missed" if len(found) > 1 else ", target missed"


def _target_marks(result, row):
    """Each target of ``row`` as the most procbridge may cost, relative to
    Python's cost of the same figure (None-free: targets without numbers
    are left out)."""
    python = units.cost(row.figure.key, row.median(PYTHON))
    marks = []
    for verdict in result.verdicts(row):
        if verdict.baseline is None or not python:
            continue
        limit = verdict.target.at_most * units.cost(verdict.base_key, verdict.baseline)
        marks.append(limit / python)
    return marks


def _ratio(value):
    return f"{value:.2g}x" if value < 10 else f"{value:.0f}x"


def _plain(text):
    """Markdown-free, XML-escaped text for a label."""
    return escape(text.replace("`", ""))
