"""Pool tasks that feed a Queue, a Pipe and another Process, while the
parent waits on those and makes no pool call: the tasks the pool still
holds back must start anyway (Python's pool hands them out from a helper
thread; under procbridge the waits themselves keep the pool going).

    procbridge python examples/python/pool_while_waiting.py
"""
import multiprocessing as mp

q = None
w = None


def square_to_queue(i):
    q.put(i * i)


def to_pipe(i):
    w.send(i)


def drain(n):
    # A child that waits for what the pool's tasks put.
    print('child got', sum(q.get() for _ in range(n)), flush=True)


if __name__ == '__main__':
    mp.set_start_method('fork')
    q = mp.Queue()
    r, w = mp.Pipe(duplex=False)
    with mp.Pool(2) as p:
        for i in range(40):
            p.apply_async(square_to_queue, (i,))
        got = sorted(q.get(timeout=5) for _ in range(40))
        print('queue', got == [i * i for i in range(40)], flush=True)

        for i in range(40):
            p.apply_async(to_pipe, (i,))
        print('pipe', sorted(r.recv() for _ in range(40)) == list(range(40)), flush=True)

        done = []
        for i in range(40):
            p.apply_async(square_to_queue, (i,), callback=done.append)
        child = mp.Process(target=drain, args=(40,))
        child.start()
        child.join()
        print('join', child.exitcode, flush=True)
        print('nothing left in the pipe', not r.poll(0.01), flush=True)
        p.close()
        p.join()
        print('callbacks', len(done), flush=True)
