"""os.fork and friends for this interpreter, carried out by procbridge.

Installed into `os` at start-up (sitecustomize): `fork`, `getpid`,
`getppid`, `waitpid`, `wait`, `kill` (of this process's own fork children),
`register_at_fork`, `cpu_count`, `times`, `WNOHANG` and the `W*` status
functions, `waitstatus_to_exitcode`; and `time.process_time` (WASI has no
CPU clocks: wasi-libc's `times()` made them up from the monotonic clock).
"""
import os
import struct
import sys

from procbridge._door import Buf, check

WNOHANG = 1

_hooks = ([], [], [])   # before, after_in_parent, after_in_child


_pid = None


def getpid():
    # A process's pid changes only in a fork child, which forgets it.
    global _pid
    if _pid is None:
        _pid = check('getpid')[0]
    return _pid


def getppid():
    return check('getppid')[0]


def register_at_fork(*, before=None, after_in_parent=None, after_in_child=None):
    """As os.register_at_fork: called around every os.fork."""
    if before is None and after_in_parent is None and after_in_child is None:
        raise TypeError('At least one argument is required.')
    if getattr(after_in_child, '__module__', None) == 'threading':
        # CPython runs threading's own after-fork bookkeeping from C, for
        # the threads a fork leaves behind; this interpreter has one thread.
        after_in_child = None
    for hooks, func in zip(_hooks, (before, after_in_parent, after_in_child)):
        if func is not None:
            if not callable(func):
                raise TypeError("'%s' must be callable, not %s"
                                % (func, type(func).__name__))
            hooks.append(func)


def _run_hooks(hooks):
    for func in hooks:
        try:
            func()
        except Exception:
            # As CPython: a failing hook is reported, the fork goes on.
            import traceback
            print('Exception ignored in: %r' % (func,), file=sys.stderr)
            traceback.print_exc()


def fork():
    """A real fork of this process (procbridge's `fork`): 0 in the child,
    the child's pid in the parent. As CPython's, it does not flush
    sys.stdout: output still buffered is in both processes
    (multiprocessing flushes before it forks)."""
    _run_hooks(reversed(_hooks[0]))
    global _pid
    pid = check('fork')[0]
    if pid == 0:
        _pid = None
    _run_hooks(_hooks[2] if pid == 0 else _hooks[1])
    return pid


def waitpid(pid, options):
    """As os.waitpid, for this process's fork children: (pid, status)."""
    ret, (status,) = check('waitpid', pid, options, Buf(4, with_len=False))
    return ret, struct.unpack('<i', status)[0] if ret else 0


def wait():
    return waitpid(-1, 0)


def kill(pid, sig):
    """As os.kill, for this process's own fork children (others: ESRCH)."""
    check('kill', pid, int(sig))


def cpu_count():
    return check('cpu_count')[0] or None


def _times_ns():
    """(user, system, children_user, children_system, monotonic), in
    nanoseconds, from the host (`getrusage`)."""
    _, (raw,) = check('times', Buf(40))
    return struct.unpack('<5Q', raw)


def times():
    """As os.times(): CPU time of this process and its waited-for
    children, in seconds, and a monotonic clock."""
    return os.times_result(tuple(ns / 1e9 for ns in _times_ns()))


def process_time_ns():
    user, system = _times_ns()[:2]
    return user + system


def process_time():
    return process_time_ns() / 1e9


def WIFEXITED(status):
    return status & 0x7f == 0


def WEXITSTATUS(status):
    return (status >> 8) & 0xff


def WIFSIGNALED(status):
    return status & 0x7f not in (0, 0x7f)


def WTERMSIG(status):
    return status & 0x7f


def WIFSTOPPED(status):
    return status & 0xff == 0x7f


def WSTOPSIG(status):
    return WEXITSTATUS(status)


def WCOREDUMP(status):
    return bool(status & 0x80)


def waitstatus_to_exitcode(status):
    if WIFEXITED(status):
        return WEXITSTATUS(status)
    if WIFSIGNALED(status):
        return -WTERMSIG(status)
    raise ValueError('invalid wait status: %r' % status)


def _install():
    import time
    time.process_time = process_time
    time.process_time_ns = process_time_ns
    for name in ('fork', 'getpid', 'getppid', 'waitpid', 'wait', 'kill',
                 'register_at_fork', 'cpu_count', 'times', 'WNOHANG', 'WIFEXITED',
                 'WEXITSTATUS', 'WIFSIGNALED', 'WTERMSIG', 'WIFSTOPPED',
                 'WSTOPSIG', 'WCOREDUMP', 'waitstatus_to_exitcode'):
        setattr(os, name, globals()[name])
    from procbridge import _locks
    _locks.install()


_install()
