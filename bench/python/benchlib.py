"""Shared helpers for the Python baselines of bench/run.

Every baseline prints its results as lines of the form ``BENCH <key> <value>``
(the format the native baselines and the procbridge bench guests print).
Keys end with their unit: ``_us``, ``_ms``, ``_mb_s``, ``_msg_s``.
"""

import statistics
import sys
import time

QUICK = "--quick" in sys.argv[1:]


def pick(quick, full):
    """The quick value under ``--quick``, else the full one."""
    return quick if QUICK else full


def report(key, value):
    """Print one result line."""
    print(f"BENCH {key} {value:.3f}", flush=True)


def median_us(iterations, body):
    """Run ``body`` once to warm up, then ``iterations`` times; return the
    median duration of one call in microseconds."""
    body()
    samples = []
    for _ in range(max(1, iterations)):
        start = time.perf_counter()
        body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def median_seconds(iterations, body):
    """Like ``median_us`` without the warm-up, in seconds (for long bodies)."""
    samples = []
    for _ in range(max(1, iterations)):
        start = time.perf_counter()
        body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
