"""Lock, RLock and Semaphore shared by processes.
Run with: procbridge python locks.py"""
import time
from multiprocessing import BoundedSemaphore, Lock, Process, Queue, RLock, Semaphore


def hold(lock, events, name):
    with lock:
        events.put((name, 'in'))
        time.sleep(0.02)
        events.put((name, 'out'))


def most_inside(events, n):
    inside = most = 0
    for _ in range(n):
        _, what = events.get()
        inside += 1 if what == 'in' else -1
        most = max(most, inside)
    return most


def hold_for(lock, seconds):
    with lock:
        time.sleep(seconds)


if __name__ == '__main__':
    lock = Lock()
    events = Queue()
    workers = [Process(target=hold, args=(lock, events, 'p%d' % i)) for i in range(4)]
    for p in workers:
        p.start()
    print('Lock: most holders at once:', most_inside(events, 8))
    for p in workers:
        p.join()

    slots = Semaphore(2)
    workers = [Process(target=hold, args=(slots, events, 's%d' % i)) for i in range(5)]
    for p in workers:
        p.start()
    print('Semaphore(2): most holders at once:', most_inside(events, 10))
    for p in workers:
        p.join()

    holder = Process(target=hold_for, args=(lock, 0.5))
    holder.start()
    time.sleep(0.2)
    print('acquire while a child holds it, timeout 0.1:', lock.acquire(timeout=0.1))
    holder.join()
    print('acquire once the child is done:', lock.acquire(timeout=1))
    lock.release()

    rlock = RLock()
    with rlock:
        with rlock:
            print('RLock taken twice by its owner')
    child = Process(target=hold_for, args=(rlock, 0))
    child.start()
    child.join()
    print('then free for another process: exit code', child.exitcode)

    bounded = BoundedSemaphore(1)
    try:
        bounded.release()
    except ValueError as e:
        print('BoundedSemaphore:', e)
