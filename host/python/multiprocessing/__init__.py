"""multiprocessing for CPython on WASI, on procbridge's real OS processes.

The API of the standard module, with the "fork" start method: Process,
Pool, Queue, SimpleQueue, JoinableQueue, Pipe, Lock, RLock, Semaphore,
BoundedSemaphore, current_process, parent_process, active_children,
cpu_count. Processes are forked by
procbridge (`os.fork`); queues and pipes are procbridge's, shared by every
process forked after they were made.
"""
import os as _os

from multiprocessing.process import (Process, current_process, active_children,
                                     parent_process)
from multiprocessing.queues import Queue, SimpleQueue, JoinableQueue
from multiprocessing.connection import Pipe
from multiprocessing.synchronize import Lock, RLock, Semaphore, BoundedSemaphore

__all__ = ['Process', 'current_process', 'active_children', 'parent_process',
           'Queue', 'SimpleQueue', 'JoinableQueue', 'Pipe', 'Pool', 'cpu_count',
           'Lock', 'RLock', 'Semaphore', 'BoundedSemaphore',
           'get_context', 'get_start_method', 'set_start_method',
           'get_all_start_methods', 'TimeoutError', 'ProcessError',
           'AuthenticationError', 'BufferTooShort', 'freeze_support']


class ProcessError(Exception):
    pass


class BufferTooShort(ProcessError):
    pass


class AuthenticationError(ProcessError):
    pass


def cpu_count():
    """The number of CPUs of the machine procbridge runs on."""
    n = _os.cpu_count()
    if n is None:
        raise NotImplementedError('cannot determine number of cpus')
    return n


def Pool(processes=None, initializer=None, initargs=(), maxtasksperchild=None):
    """A pool of worker processes (see multiprocessing.pool)."""
    from multiprocessing.pool import Pool
    return Pool(processes, initializer, initargs, maxtasksperchild)


def __getattr__(name):
    if name == 'TimeoutError':
        from multiprocessing.pool import TimeoutError
        return TimeoutError
    raise AttributeError("module 'multiprocessing' has no attribute %r" % name)


def get_all_start_methods():
    return ['fork']


def get_start_method(allow_none=False):
    return 'fork'


def set_start_method(method, force=False):
    if method != 'fork':
        raise ValueError('only the "fork" start method is available here '
                         '(this interpreter cannot start a fresh one)')


def get_context(method=None):
    set_start_method(method or 'fork')
    import multiprocessing
    return multiprocessing


def freeze_support():
    pass
