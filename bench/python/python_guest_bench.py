"""The Python-guest scenario: one script, run by python3 and by `procbridge python`.

Every figure uses the fork start method (the one procbridge's Python has):

- start_join_fork_us: Process(target=f).start(); join();
- pool_map_task_us: Pool(4).map of a trivial task over many items (chunksize 1),
  time per task;
- pool_apply_async_task_us: Pool(4).apply_async of a trivial task, then get()
  of each, time per task;
- queue_16b_msg_s: one writer process puts 16-byte messages on a Queue, the
  parent reads them all;
- run_true_us: subprocess.run(["true"]).

The script imports nothing from its own directory: under procbridge its
directory is readable only when granted.
"""

import multiprocessing as mp
import statistics
import subprocess
import sys
import time

QUICK = "--quick" in sys.argv[1:]
CTX = mp.get_context("fork")


def pick(quick, full):
    return quick if QUICK else full


def report(key, value):
    print(f"BENCH {key} {value:.3f}", flush=True)


def median_us(iterations, body):
    """The median duration of one call of body, in microseconds, after a warm-up."""
    body()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def median_seconds(iterations, body):
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def nothing():
    pass


def identity(x):
    return x


def start_join():
    process = CTX.Process(target=nothing)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"child failed: {process.exitcode}")


def pool_figures():
    tasks = pick(2_000, 20_000)
    with CTX.Pool(4) as pool:
        pool.map(identity, range(100))  # workers started and warm
        start = time.perf_counter()
        results = pool.map(identity, range(tasks), chunksize=1)
        map_us = (time.perf_counter() - start) * 1e6 / tasks
        if results != list(range(tasks)):
            raise SystemExit("map returned the wrong results")

        start = time.perf_counter()
        pending = [pool.apply_async(identity, (i,)) for i in range(tasks)]
        total = sum(result.get() for result in pending)
        apply_us = (time.perf_counter() - start) * 1e6 / tasks
        if total != tasks * (tasks - 1) // 2:
            raise SystemExit("apply_async returned the wrong results")
    report("pool_map_task_us", map_us)
    report("pool_apply_async_task_us", apply_us)


def writer(queue, message, count):
    for _ in range(count):
        queue.put(message)


def queue_seconds(count):
    queue = CTX.Queue()
    message = b"x" * 16
    start = time.perf_counter()
    process = CTX.Process(target=writer, args=(queue, message, count))
    process.start()
    for _ in range(count):
        if len(queue.get()) != 16:
            raise SystemExit("a message changed on the way")
    elapsed = time.perf_counter() - start
    process.join()
    return elapsed


def run_true():
    if subprocess.run(["true"]).returncode != 0:
        raise SystemExit("true failed")


def main():
    report("start_join_fork_us", median_us(pick(5, 100), start_join))
    pool_figures()
    count = pick(10_000, 100_000)
    report("queue_16b_msg_s", count / median_seconds(pick(1, 3), lambda: queue_seconds(count)))
    report("run_true_us", median_us(pick(20, 200), run_true))


if __name__ == "__main__":
    main()
