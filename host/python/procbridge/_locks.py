"""Locks with `_at_fork_reinit`, which this interpreter's (built without
fork) lack: stdlib modules that register fork hooks call it in the child
(concurrent.futures, logging)."""
import _thread

_allocate = _thread.allocate_lock
_rlock = _thread.RLock


class Lock:
    """A lock whose `_at_fork_reinit` gives the child a fresh, unlocked one."""
    __slots__ = ('_lock', '__weakref__')

    def __init__(self):
        self._lock = _allocate()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    acquire_lock = acquire

    def release(self):
        self._lock.release()

    release_lock = release

    def locked(self):
        return self._lock.locked()

    locked_lock = locked

    def __enter__(self):
        return self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()

    def _at_fork_reinit(self):
        self._lock = _allocate()

    def __repr__(self):
        return '<%s %s object at %#x>' % (
            'locked' if self.locked() else 'unlocked', type(self).__name__, id(self))


class RLock:
    """A reentrant lock whose `_at_fork_reinit` gives the child a fresh one."""
    __slots__ = ('_lock', '__weakref__')

    def __init__(self):
        self._lock = _rlock()

    def acquire(self, blocking=True, timeout=-1):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self._lock.release()

    def _is_owned(self):
        return self._lock._is_owned()

    def _release_save(self):
        return self._lock._release_save()

    def _acquire_restore(self, state):
        self._lock._acquire_restore(state)

    def _at_fork_reinit(self):
        self._lock = _rlock()

    def __repr__(self):
        return repr(self._lock)


def install():
    """Makes `threading.Lock` and `threading.RLock` (and `_thread`'s) these
    locks, before `threading` is imported."""
    if not hasattr(_allocate(), '_at_fork_reinit'):
        _thread.allocate_lock = Lock
        _thread.LockType = Lock
    if not hasattr(_rlock(), '_at_fork_reinit'):
        _thread.RLock = RLock
