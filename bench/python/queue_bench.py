"""Python baseline for the queue and pipe scenario.

- queue_16b_msg_s: one writer process puts 16-byte messages on a Queue,
  the parent reads them all;
- queue_64k_mb_s: the same with 64 KiB messages;
- queue_4p_16b_msg_s, queue_4p_4k_msg_s: four writer processes put 16-byte
  (4,000-byte) messages on a bounded Queue (maxsize 64), the parent gets
  them all;
- queue_2p_16b_msg_s: the same with two writers of 16 bytes;
- queue_4p_unbounded_16b_msg_s: four writers of 16 bytes on an unbounded
  Queue;
- pipe_pingpong_us: round trip of a 16-byte message over Pipe() to a child
  that sends it back;
- pipe_slow_cpu_us: a child sends a 16-byte message over Pipe(False) once
  a millisecond; the CPU time (user and system) the parent spends per
  message receiving them.
"""

import multiprocessing as mp
import time

from benchlib import median_seconds, median_us, pick, report

CTX = mp.get_context("fork")


def writer(queue, message, count):
    for _ in range(count):
        queue.put(message)


def queue_seconds(size, count, producers=1, maxsize=0):
    """Seconds from starting the writers (count / producers messages each)
    to the reader holding every message."""
    queue = CTX.Queue(maxsize)
    message = b"x" * size
    each = count // producers
    start = time.perf_counter()
    processes = [CTX.Process(target=writer, args=(queue, message, each)) for _ in range(producers)]
    for process in processes:
        process.start()
    for _ in range(each * producers):
        queue.get()
    elapsed = time.perf_counter() - start
    for process in processes:
        process.join()
    return elapsed


def echo(conn):
    while True:
        message = conn.recv_bytes()
        if not message:
            return
        conn.send_bytes(message)


def slow_sender(conn, count):
    for _ in range(count):
        time.sleep(0.001)
        conn.send_bytes(b"x" * 16)
    conn.send_bytes(b"")


def slow_pipe_cpu_us(count):
    """CPU microseconds the parent spends per message receiving count
    messages sent one a millisecond."""
    reader, writer = CTX.Pipe(False)
    process = CTX.Process(target=slow_sender, args=(writer, count))
    process.start()
    writer.close()
    before = time.process_time()
    received = 0
    while reader.recv_bytes():
        received += 1
    spent = time.process_time() - before
    process.join()
    assert received == count, "messages lost"
    return spent * 1e6 / count


def main():
    count = pick(10_000, 200_000)
    seconds = median_seconds(pick(1, 3), lambda: queue_seconds(16, count))
    report("queue_16b_msg_s", count / seconds)

    count = pick(200, 2_000)
    size = 64 * 1024
    seconds = median_seconds(pick(1, 3), lambda: queue_seconds(size, count))
    report("queue_64k_mb_s", size * count / 1e6 / seconds)

    for key, size, producers, maxsize in (
        ("queue_4p_16b_msg_s", 16, 4, 64),
        ("queue_4p_4k_msg_s", 4000, 4, 64),
        ("queue_2p_16b_msg_s", 16, 2, 64),
        ("queue_4p_unbounded_16b_msg_s", 16, 4, 0),
    ):
        count = pick(20_000, 200_000)
        seconds = median_seconds(
            pick(1, 3), lambda: queue_seconds(size, count, producers, maxsize)
        )
        report(key, count / seconds)

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

    report("pipe_slow_cpu_us", slow_pipe_cpu_us(pick(100, 1_000)))


if __name__ == "__main__":
    main()
