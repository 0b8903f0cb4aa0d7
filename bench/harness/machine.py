"""A description of the machine and toolchains, for the report (no paths)."""

import datetime
import os
import platform
import subprocess


def describe(root):
    """``[(label, value)]`` describing where and with what the run happened."""
    facts = [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores"),
        ("memory", _memory()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("rustc", _first_line(["rustc", "--version"], root)),
        ("wasmtime", _locked_version(root, "wasmtime")),
        ("procbridge commit", _commit(root)),
    ]
    return [(label, value) for label, value in facts if value]


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory():
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return ""


def _first_line(argv, cwd):
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else ""


def _locked_version(root, package):
    """The version of ``package`` in Cargo.lock."""
    try:
        lines = (root / "Cargo.lock").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    for name, version in zip(lines, lines[1:]):
        if name == f'name = "{package}"' and version.startswith("version = "):
            return version.split('"')[1]
    return ""


def _commit(root):
    commit = _first_line(["git", "rev-parse", "--short", "HEAD"], root)
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
    status += [":!docs/benchmarks.md", ":!docs/benchmarks.svg"]  # what this run rewrites
    if commit and _first_line(status, root):
        commit += " (with uncommitted changes)"
    return commit
