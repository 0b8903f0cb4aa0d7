"""Queues and pipes between processes, exit codes, terminate and daemons.
Run with: procbridge python channels.py"""
from multiprocessing import JoinableQueue, Pipe, Process, Queue, SimpleQueue, current_process
import os
import sys
import time


def worker(tasks, results):
    while True:
        item = tasks.get()
        if item is None:
            tasks.task_done()
            break
        results.put((item, item * 10))
        tasks.task_done()


def echo(conn):
    while True:
        msg = conn.recv()
        if msg == 'bye':
            conn.send(('bye', current_process().name))
            conn.close()
            return
        conn.send(msg[::-1])


def sends_every_size(q, conn, sizes):
    for n in sizes:
        q.put(b'q' * n)
    for n in sizes:
        conn.send_bytes(b'p' * n)
    for _ in sizes:
        conn.send(len(conn.recv_bytes()))
    conn.close()


def exits(code):
    sys.exit(code)


def raises():
    raise RuntimeError('boom')


def sleeps():
    time.sleep(30)


if __name__ == '__main__':
    tasks, results = JoinableQueue(), Queue()
    p = Process(target=worker, args=(tasks, results))
    p.start()
    for i in range(5):
        tasks.put(i)
    tasks.put(None)
    tasks.join()
    print('joinable queue:', sorted(results.get() for _ in range(5)))
    p.join()
    print('worker exit code:', p.exitcode)

    parent, child = Pipe()
    p = Process(target=echo, args=(child,), name='echoer')
    p.start()
    for word in ['abc', 'hello']:
        parent.send(word)
        print('pipe:', parent.recv())
    parent.send('bye')
    print('pipe:', parent.recv())
    p.join()

    # Messages of every size, around the sizes taken in one call.
    sizes = [0, 1, 512, 513, 65536, 65536 + 256, 65536 + 257, 300000]
    q = Queue()
    a, b = Pipe()
    p = Process(target=sends_every_size, args=(q, b, sizes))
    p.start()
    b.close()
    print('queue sizes:', [len(q.get()) for _ in sizes])
    print('pipe sizes:', [len(a.recv_bytes()) for _ in sizes])
    for n in sizes:
        a.send_bytes(b'r' * n)
    print('echoed sizes:', [a.recv() for _ in sizes])
    p.join()
    try:
        a.recv()
    except EOFError:
        print('other end closed: EOFError')
    try:
        q.get(timeout=0.05)
    except Exception as e:
        print('nothing to get:', type(e).__name__)
    q.close()
    try:
        q.put(1)
    except ValueError:
        print('closed queue: ValueError')

    q = SimpleQueue()
    q.put({'nested': [1, 2, (3, 4)]})
    print('simple queue:', q.get(), q.empty())

    for target, args in [(exits, (0,)), (exits, (7,)), (raises, ())]:
        p = Process(target=target, args=args)
        p.start()
        p.join()
        print('exitcode of', target.__name__, args, '=', p.exitcode)

    p = Process(target=sleeps)
    p.start()
    print('alive:', p.is_alive())
    p.terminate()
    p.join()
    print('terminated:', p.exitcode, p.is_alive())

    d = Process(target=sleeps, daemon=True)
    d.start()
    print('daemon:', d.daemon, d.is_alive())
    print('pid differs:', d.pid != os.getpid())
