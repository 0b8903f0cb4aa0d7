"""Units, read from the suffix of a BENCH key, and number formatting.

A key ends with its unit: ``_ns`` (nanoseconds), ``_us`` (microseconds),
``_ms`` (milliseconds), ``_kb`` (kilobytes of memory), ``_mb_s``
(megabytes per second) or ``_msg_s`` (messages per second).
Times and sizes are costs (lower is better); rates are inverted to get a cost, so a
ratio of costs always reads the same way: 0.5x is twice as fast.
"""

# (suffix, display unit, lower is better), longest suffixes first.
_UNITS = (
    ("_mb_s", "MB/s", False),
    ("_msg_s", "msg/s", False),
    ("_ns", "ns", True),
    ("_us", "µs", True),
    ("_ms", "ms", True),
    ("_kb", "kB", True),
)


def unit(key):
    """The display unit of ``key`` (empty when the key has no known suffix)."""
    for suffix, name, _ in _UNITS:
        if key.endswith(suffix):
            return name
    return ""


def lower_is_better(key):
    """True for times, False for rates."""
    for suffix, _, lower in _UNITS:
        if key.endswith(suffix):
            return lower
    return True


# Larger units for large numbers: (unit, threshold, larger unit, divisor).
_LARGER = (
    ("ns", 10_000, "µs", 1_000),
    ("µs", 10_000, "ms", 1_000),
    ("ms", 10_000, "s", 1_000),
    ("msg/s", 1_000_000, "M msg/s", 1_000_000),
    ("kB", 10_000, "MB", 1_000),
)


def scale(key, value):
    """``(divisor, unit)`` to show ``value`` of ``key`` and numbers like it:
    99,200 µs shows as 99.2 ms."""
    name, divisor = unit(key), 1
    for small, threshold, large, factor in _LARGER:
        if name == small and abs(value) / divisor >= threshold:
            name, divisor = large, divisor * factor
    return divisor, name


# Seconds per unit of a time, bytes per unit of a size, or the size of one
# counted thing of a rate.
_BASE = {"_ns": 1e-9, "_us": 1e-6, "_ms": 1e-3, "_kb": 1e3, "_mb_s": 1e6, "_msg_s": 1.0}


def _suffix(key):
    return next((suffix for suffix, _, _ in _UNITS if key.endswith(suffix)), None)


def cost(key, value):
    """A number where lower is better, comparable across keys of one kind:
    a time in seconds, or 1 ÷ the rate (seconds per byte or per message)."""
    base = _BASE.get(_suffix(key), 1.0)
    if lower_is_better(key):
        return value * base
    return 1.0 / (value * base) if value else float("inf")


def comparable(key, other):
    """Whether costs of ``key`` and ``other`` can be divided: two times, two
    sizes, or two rates of the same thing."""
    mine, theirs = _suffix(key), _suffix(other)
    if mine is None or theirs is None:
        return mine == theirs
    if "_kb" in (mine, theirs):
        return mine == theirs
    if lower_is_better(key) and lower_is_better(other):
        return True
    return mine == theirs


def number(value):
    """Three significant digits, thousands separated: 2.88, 41.6, 183,000."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}" if magnitude < 10_000 else f"{float(f'{value:.3g}'):,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def ratio(value):
    """A ratio as ``0.070x``, ``0.50x``, ``2.20x`` or ``15x``."""
    if value < 0.1:
        return f"{value:.3f}x"
    if value < 10:
        return f"{value:.2f}x"
    return f"{value:.0f}x"
