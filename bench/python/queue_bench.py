"""Python baseline for the queue and pipe scenario.

- queue_16b_msg_s: one writer process puts 16-byte messages on a Queue,
  the parent reads them all;
- queue_64k_mb_s: the same with 64 KiB messages;
- pipe_pingpong_us: round trip of a 16-byte message over Pipe() to a child
  that sends it back.
"""

import multiprocessing as mp
import time

from benchlib import median_seconds, median_us, pick, report

CTX = mp.get_context("fork")


def writer(queue, message, count):
    for _ in range(count):
        queue.put(message)


def queue_seconds(size, count):
    """Seconds from starting the writer to the reader holding every message."""
    queue = CTX.Queue()
    message = b"x" * size
    start = time.perf_counter()
    process = CTX.Process(target=writer, args=(queue, message, count))
    process.start()
    for _ in range(count):
        queue.get()
    elapsed = time.perf_counter() - start
    process.join()
    return elapsed


def echo(conn):
    while True:
        message = conn.recv_bytes()
        if not message:
            return
        conn.send_bytes(message)


def main():
    count = pick(10_000, 200_000)
    seconds = median_seconds(pick(1, 3), lambda: queue_seconds(16, count))
    report("queue_16b_msg_s", count / seconds)

    count = pick(200, 2_000)
    size = 64 * 1024
    seconds = median_seconds(pick(1, 3), lambda: queue_seconds(size, count))
    report("queue_64k_mb_s", size * count / 1e6 / seconds)

    parent, child = CTX.Pipe()
    process = CTX.Process(target=echo, args=(child,))
    process.start()
    message = b"x" * 16

    def round_trip():
        parent.send_bytes(message)
        parent.recv_bytes()

    report("pipe_pingpong_us", median_us(pick(1_000, 5_000), round_trip))
    parent.send_bytes(b"")
    process.join()


if __name__ == "__main__":
    main()
