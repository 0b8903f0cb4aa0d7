"""Python baseline for the process scenario.

- start_join_<method>_us: Process(target=f).start(); join() with each
  multiprocessing start method (fork, forkserver, spawn);
- os_fork_wait_us: os.fork() + os._exit(0) in the child + os.waitpid().
"""

import multiprocessing as mp
import os

from benchlib import median_us, pick, report


def target():
    pass


def start_join(ctx):
    process = ctx.Process(target=target)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"child failed: {process.exitcode}")


def fork_wait():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"child failed: {status}")


def main():
    for method, full in (("fork", 100), ("forkserver", 50), ("spawn", 20)):
        ctx = mp.get_context(method)
        micros = median_us(pick(5, full), lambda ctx=ctx: start_join(ctx))
        report(f"start_join_{method}_us", micros)
    report("os_fork_wait_us", median_us(pick(20, 200), fork_wait))


if __name__ == "__main__":
    main()
