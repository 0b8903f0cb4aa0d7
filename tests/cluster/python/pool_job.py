"""A Python job for the cluster tests:
`procbridge python [--nats URL] pool_job.py MODE [ARGS]`.

The functions below run in the pool's workers: on the cluster's workers
with --nats, where this script is imported as `__mp_main__`.
"""
import errno
import os
import sys
import time
from multiprocessing import Pool
from multiprocessing.pool import WorkerLostError


class Refused(Exception):
    pass


def square(x):
    return x * x


def where(_):
    return os.getpid()


def shout(x):
    print('line from task', x)
    print('err from task', x, file=sys.stderr)
    return x


def talk(x):
    for line in range(LINES):
        print('task', x, 'line', line)
    print('task', x, 'err', file=sys.stderr)
    return x


LINES = 100


def refuse(x):
    raise Refused('no %d' % x)


def die(_):
    os._exit(3)


def leave(_):
    sys.exit(3)


def argv(_):
    return sys.argv[1:]


def slow(seconds):
    time.sleep(seconds)
    return seconds


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return type(e).__name__


def remember(tag):
    global TAG
    TAG = tag


def tag(_):
    return TAG


def results():
    with Pool(3) as p:
        print('map', p.map(square, range(20)))
        print('chunks', p.map(square, range(100), chunksize=7)[-3:])
        print('starmap', p.starmap(pow, [(2, 3), (3, 2)]))
        print('imap', list(p.imap(square, range(5))))
        print('unordered', sorted(p.imap_unordered(square, range(5))))
        print('apply', p.apply(square, (12,)))
        print('async', [r.get() for r in [p.apply_async(square, (i,)) for i in range(5)]])
        try:
            p.apply(refuse, (3,))
        except Refused as e:
            print('raised', type(e).__name__, e)
        try:
            p.map(square, ['a'])
        except TypeError as e:
            print('raised', type(e).__name__, e)
        got = []
        p.map_async(square, range(4), callback=got.append).wait()
        print('callback', got)
    with Pool(2, initializer=remember, initargs=('ready',)) as p:
        print('initializer', sorted(set(p.map(tag, range(4)))))


def main(mode, args):
    if mode == 'results':
        results()
    elif mode == 'pids':
        with Pool(2) as p:
            pids = set(p.map(where, range(8), chunksize=1))
        print('ran in the job' if os.getpid() in pids else 'ran elsewhere')
    elif mode == 'output':
        with Pool(1) as p:
            print('returned', p.map(shout, range(3)))
    elif mode == 'ordered':
        with Pool(1) as p:
            for x in range(10):
                print('returned', p.apply(talk, (x,)), flush=True)
    elif mode == 'lost':
        with Pool(1) as p:
            for end in (die, leave):
                try:
                    p.apply(end, (0,))
                except WorkerLostError:
                    print('lost', end.__name__)
            print('then', p.apply(square, (5,)))
    elif mode == 'stuck':
        with Pool(1) as p:
            try:
                p.apply(slow, (60,))
            except WorkerLostError:
                print('lost')
    elif mode == 'argv':
        with Pool(1) as p:
            print('argv', p.apply(argv, (0,)))
    elif mode == 'big':
        with Pool(1) as p:
            try:
                print('big', p.apply(len, (b'x' * 2000000,)))
            except OSError as e:
                print('too big:', e.errno == errno.E2BIG)
    elif mode == 'lambda':
        try:
            Pool(1, initializer=lambda: None).terminate()
            print('made')
        except Exception as e:
            print('refused', type(e).__name__)
    elif mode == 'read':
        with Pool(1) as p:
            print('read', p.apply(read, (args[0],)))
    elif mode == 'slow':
        print('started', flush=True)
        with Pool(1) as p:
            print('slow', p.map(slow, [float(a) for a in args], chunksize=1))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2:])
