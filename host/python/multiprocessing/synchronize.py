"""Lock, RLock, Semaphore and BoundedSemaphore shared between processes.

Each is a procbridge queue holding one token per free slot: `acquire` takes
a token (waiting, as long as asked, in the host), `release` puts one back.
Like the queues, they are shared by inheritance: made before the processes
that use them are forked, handed over in `Process(args=...)` or a Pool
`initializer`.
"""
import os
import queue as _queue

from multiprocessing.queues import Queue

__all__ = ['Lock', 'RLock', 'Semaphore', 'BoundedSemaphore']

_TOKEN = b''


class Semaphore:
    """As multiprocessing.Semaphore(value)."""

    def __init__(self, value=1, *, ctx=None):
        if value < 0:
            raise ValueError('semaphore initial value must be >= 0')
        self._slots = Queue()
        for _ in range(value):
            self._slots.put(_TOKEN)

    def acquire(self, block=True, timeout=None):
        try:
            self._slots.get(block, timeout)
        except _queue.Empty:
            return False
        return True

    def release(self):
        self._slots.put(_TOKEN)

    def get_value(self):
        return self._slots.qsize()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __getstate__(self):
        raise TypeError('%s objects are shared by inheritance: pass them to '
                        'Process(args=...), not through a queue' % type(self).__name__)

    def __repr__(self):
        return '<%s(value=%s)>' % (type(self).__name__, self.get_value())


class BoundedSemaphore(Semaphore):
    """As multiprocessing.BoundedSemaphore(value): releasing more than was
    acquired raises ValueError."""

    def __init__(self, value=1, *, ctx=None):
        super().__init__(value)
        self._value = value

    def release(self):
        if self._slots.qsize() >= self._value:
            raise ValueError('semaphore or lock released too many times')
        super().release()


class Lock(BoundedSemaphore):
    """As multiprocessing.Lock()."""

    def __init__(self, *, ctx=None):
        super().__init__(1)

    def __repr__(self):
        return '<Lock(%s)>' % ('unlocked' if self.get_value() else 'locked')


class RLock:
    """As multiprocessing.RLock(): the process holding it may acquire it
    again; it is free once released as many times."""

    def __init__(self, *, ctx=None):
        self._lock = Lock()
        self._owner = None
        self._count = 0

    def acquire(self, block=True, timeout=None):
        me = os.getpid()
        if self._owner == me:
            self._count += 1
            return True
        if not self._lock.acquire(block, timeout):
            return False
        # Only the owner reads or writes these: its own copy is the truth.
        self._owner, self._count = me, 1
        return True

    def release(self):
        if self._owner != os.getpid():
            raise AssertionError('attempt to release recursive lock not owned by thread')
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._lock.release()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    __getstate__ = Semaphore.__getstate__
