"""Python baseline for the pool scenario, Pool(4) with a trivial task.

- map_chunksize1_task_us / map_chunksize100_task_us: Pool(4).map over
  20,000 items with chunksize 1 and 100, time per task;
- apply_async_task_us: 20,000 apply_async calls, then get() of each, time
  per task;
- pool1_map_task_us: Pool(1).map over 20,000 items with chunksize 1, time
  per task.
"""

import multiprocessing as mp

from benchlib import median_seconds, pick, report

TASKS = pick(2_000, 20_000)


def square(x):
    return x * x


def main():
    with mp.get_context("fork").Pool(4) as pool:
        pool.map(square, range(100))  # warm up: all workers started
        for chunksize in (1, 100):
            seconds = median_seconds(
                pick(1, 3), lambda size=chunksize: pool.map(square, range(TASKS), chunksize=size)
            )
            report(f"map_chunksize{chunksize}_task_us", seconds / TASKS * 1e6)

        def apply_all():
            results = [pool.apply_async(square, (i,)) for i in range(TASKS)]
            for result in results:
                result.get()

        seconds = median_seconds(pick(1, 3), apply_all)
        report("apply_async_task_us", seconds / TASKS * 1e6)
    with mp.get_context("fork").Pool(1) as pool:
        pool.map(square, range(100))
        seconds = median_seconds(
            pick(1, 3), lambda: pool.map(square, range(TASKS), chunksize=1)
        )
        report("pool1_map_task_us", seconds / TASKS * 1e6)


if __name__ == "__main__":
    main()
