"""Python baseline for the subprocess scenario.

- run_true_us: subprocess.run(["true"]) latency;
- communicate_cat_mb_s: Popen(["cat"], stdin=PIPE, stdout=PIPE).communicate()
  of 200 MB.
"""

import subprocess

from benchlib import median_seconds, median_us, pick, report


def run_true():
    subprocess.run(["true"], check=True)


def communicate(data):
    proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = proc.communicate(data)
    if proc.returncode != 0 or len(out) != len(data):
        raise SystemExit("cat lost data")


def main():
    report("run_true_us", median_us(pick(20, 200), run_true))
    size = pick(20, 200) * 1_000_000
    data = b"x" * size
    seconds = median_seconds(pick(1, 3), lambda: communicate(data))
    report("communicate_cat_mb_s", size / 1e6 / seconds)


if __name__ == "__main__":
    main()
