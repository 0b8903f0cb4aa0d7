"""Builds what the benchmarks run: the host, the native baselines, the guests."""

import subprocess


class BuildFailed(Exception):
    """A build step failed (its output has been shown)."""


def build_all(ctx, examples=()):
    """``cargo build --release`` of the host and the native baselines, and of
    the host crate's ``examples`` that scenarios run, then ``guests/build``
    (every guest, bench guests included)."""
    _step(
        ctx,
        ["cargo", "build", "--release", "-p", "procbridge", "-p", "procbridge-bench-native"],
    )
    if examples:
        chosen = [arg for name in examples for arg in ("--example", name)]
        _step(ctx, ["cargo", "build", "--release", "-p", "procbridge", *chosen])
    _step(ctx, [str(ctx.root / "guests" / "build")])


def _step(ctx, argv):
    ctx.log("$ " + " ".join(argv[:1] + [a.replace(str(ctx.root) + "/", "") for a in argv[1:]]))
    done = subprocess.run(argv, cwd=ctx.root, check=False)
    if done.returncode != 0:
        raise BuildFailed(f"{' '.join(argv)} exited with {done.returncode}")
