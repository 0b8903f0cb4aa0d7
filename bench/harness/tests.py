"""Unit tests of the harness's parsing, statistics, ratios and report cells.

cd bench && python3 -m unittest harness.tests
"""

import tempfile
import unittest
from pathlib import Path
from xml.etree import ElementTree

from . import units
from .chart import write_chart
from .measure import ProgramFailed, Stats, parse_bench, percentile, run_bench_program
from .model import (
    MISSING,
    NATIVE,
    NOT_APPLICABLE,
    OK,
    PENDING,
    PROCBRIDGE,
    PYTHON,
    Cell,
    Figure,
    Result,
    Row,
    Target,
    rotated,
)
from .report import write_report


def row(key, procbridge=None, python=None, native=None, target=None, status=PENDING):
    def cell(value, missing):
        return Cell(OK, Stats.of([value])) if value is not None else Cell(missing)

    cells = {
        PROCBRIDGE: cell(procbridge, status),
        PYTHON: cell(python, NOT_APPLICABLE),
        NATIVE: cell(native, NOT_APPLICABLE),
    }
    return Row(Figure(key, key, target), cells)


class ParseBench(unittest.TestCase):
    def test_reads_bench_lines_and_ignores_the_rest(self):
        text = "hello\nBENCH run_true_us 512.5\nBENCHMARK x 1\nBENCH queue_16b_msg_s 2e5\n"
        self.assertEqual(parse_bench(text), {"run_true_us": 512.5, "queue_16b_msg_s": 200000.0})

    def test_a_value_that_is_not_a_number_is_an_error(self):
        with self.assertRaises(ValueError):
            parse_bench("BENCH run_true_us fast\n")

    def test_a_failing_program_is_reported_with_its_stderr(self):
        with self.assertRaisesRegex(ProgramFailed, "exit code 3: boom"):
            run_bench_program(["sh", "-c", "echo boom >&2; exit 3"])

    def test_a_program_without_bench_lines_fails(self):
        with self.assertRaisesRegex(ProgramFailed, "no BENCH line"):
            run_bench_program(["echo", "hello"])


class Statistics(unittest.TestCase):
    def test_median_and_percentiles(self):
        stats = Stats.of([5, 1, 4, 2, 3])
        self.assertEqual((stats.median, stats.count), (3, 5))
        self.assertAlmostEqual(stats.p10, 1.4)
        self.assertAlmostEqual(stats.p90, 4.6)
        self.assertEqual(percentile([7.0], 90), 7.0)

    def test_turns_rotate(self):
        self.assertEqual(rotated(["a", "b", "c"], 4), ["b", "c", "a"])


class Ratios(unittest.TestCase):
    def test_time_ratio_is_procbridge_over_baseline(self):
        r = row("x_us", procbridge=300, python=600, native=100)
        self.assertAlmostEqual(r.ratio(PYTHON), 0.5)
        self.assertAlmostEqual(r.ratio(NATIVE), 3.0)

    def test_rate_ratio_is_inverted_so_lower_is_faster(self):
        r = row("x_mb_s", procbridge=700, python=350)
        self.assertAlmostEqual(r.ratio(PYTHON), 0.5)

    def test_targets(self):
        target = Target(NATIVE, 1.2)
        self.assertTrue(row("x_us", procbridge=110, native=100, target=target).target_met())
        self.assertFalse(row("x_us", procbridge=130, native=100, target=target).target_met())
        self.assertIsNone(row("x_us", native=100, target=target).target_met())

    def test_units_and_scaling(self):
        self.assertEqual(units.unit("communicate_cat_mb_s"), "MB/s")
        self.assertEqual(units.scale("x_us", 99_200), (1000, "ms"))
        self.assertEqual(units.number(183_100.8), "183,000")
        self.assertEqual(units.ratio(0.0937), "0.094x")


class Report(unittest.TestCase):
    def test_pending_procbridge_and_ratios_in_the_table(self):
        result = Result("s", "Scenario", "About.", "spread")
        result.rows = [
            row("a_us", procbridge=300, python=600, native=100, target=Target(PYTHON, 1.0)),
            row("b_us", python=600, native=100, target=Target(NATIVE, 1.2)),
            row("c_us", python=600, status=MISSING, target=Target(PYTHON, 1.0)),
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "benchmarks.md"
            write_report(path, "benchmarks.svg", [("CPU", "test")], [result])
            text = path.read_text(encoding="utf-8")
        self.assertIn(
            "| a_us | 300 µs | 600 µs | 100 µs | 0.50x | 3.00x | ≤ 1.0x Python 3: **met** |", text
        )
        self.assertIn(
            "| b_us | *pending* | 600 µs | 100 µs | *pending* | *pending* "
            "| ≤ 1.2x native Rust: *pending* |",
            text,
        )
        self.assertIn("| c_us | — | 600 µs | — | — | — | ≤ 1.0x Python 3: not measured |", text)
        self.assertIn("![procbridge and native Rust relative to Python 3](benchmarks.svg)", text)


class Chart(unittest.TestCase):
    def test_the_chart_is_svg_with_a_bar_per_measured_ratio(self):
        result = Result("s", "Scenario <1>", "About.", "spread")
        result.rows = [row("a_us", procbridge=300, python=600, native=100), row("b_us", python=1)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "benchmarks.svg"
            write_chart(path, [result])
            root = ElementTree.parse(path).getroot()
        svg = "{http://www.w3.org/2000/svg}"
        texts = [t.text for t in root.iter(f"{svg}text")]
        self.assertIn("Scenario <1>", texts)
        self.assertIn("0.5x", texts)  # procbridge ÷ Python
        self.assertIn("0.17x", texts)  # native ÷ Python
        self.assertIn("procbridge: pending", texts)
        self.assertEqual(len(list(root.iter(f"{svg}rect"))), 1 + 2 + 2)  # background, legend, bars


if __name__ == "__main__":
    unittest.main()
