"""Python baseline for the memory scenario: what a child process costs.

The harness measures; this program holds still. It prints ``PSS base 0``
and waits for a line on stdin while the harness sums the proportional set
size of its process tree; then it starts N ``multiprocessing.Process``
children with the fork start method, each waiting on a ``Queue``, prints
``PSS fork N`` and waits again; then the same with the spawn start method.
N is 64 (8 with ``--quick``).
"""

import multiprocessing as mp
import sys

from benchlib import pick


def wait(queue):
    queue.get()


def pause(label, children):
    print(f"PSS {label} {children}", flush=True)
    sys.stdin.readline()


def main():
    children = pick(8, 64)
    queues = {method: mp.get_context(method).Queue() for method in ("fork", "spawn")}
    pause("base", 0)
    for method, queue in queues.items():
        context = mp.get_context(method)
        started = [context.Process(target=wait, args=(queue,)) for _ in range(children)]
        for process in started:
            process.start()
        pause(method, children)
        for _ in started:
            queue.put(b"go")
        for process in started:
            process.join()
            assert process.exitcode == 0, "a child failed"


if __name__ == "__main__":
    main()
