"""multiprocessing.Process: a real OS process, forked by procbridge."""
import os
import signal
import sys
import time

from multiprocessing import _pump

__all__ = ['Process', 'current_process', 'active_children', 'parent_process']

_counter = [0]
_children = set()


class Process:
    """As multiprocessing.Process (the 'fork' start method): `start()` forks
    this process; the child runs `run()` (the target) and exits with its
    exit code: 0, `sys.exit`'s code, or 1 after printing the traceback of an
    uncaught exception."""

    _start_method = 'fork'

    def __init__(self, group=None, target=None, name=None, args=(), kwargs=None,
                 *, daemon=None):
        assert group is None, 'group argument must be None for now'
        _counter[0] += 1
        parent = _current
        self._identity = parent._identity + (_counter[0],)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._name = name or 'Process-' + ':'.join(str(i) for i in self._identity)
        self._daemonic = parent.daemon if daemon is None else daemon
        self._parent_pid = os.getpid()
        self._pid = None
        self._popen = None
        self._exitcode = None
        self._closed = False

    def run(self):
        if self._target:
            self._target(*self._args, **self._kwargs)

    def start(self):
        self._check_closed()
        assert self._popen is None, 'cannot start a process twice'
        assert self._parent_pid == os.getpid(), \
            'can only start a process object created by current process'
        assert not _current.daemon, 'daemonic processes are not allowed to have children'
        _cleanup()
        _flush_std_streams()
        pid = os.fork()
        if pid == 0:
            os._exit(self._bootstrap())
        self._pid = pid
        self._popen = True
        _children.add(self)

    def _bootstrap(self):
        global _current, _parent
        _children.clear()
        _parent, _current = _current, self
        self._pid = os.getpid()
        try:
            self.run()
            code = 0
        except SystemExit as e:
            code = e.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                sys.stderr.write(str(code) + '\n')
                code = 1
        except BaseException:
            import traceback
            sys.stderr.write('Process %s:\n' % self.name)
            traceback.print_exc()
            code = 1
        finally:
            _exit_function()
            _flush_std_streams()
        return code

    def _poll(self, block=False):
        """The exit code once ended (reaped), else None."""
        if self._exitcode is None and self._pid is not None:
            pid, status = os.waitpid(self._pid, 0 if block else os.WNOHANG)
            if pid:
                self._exitcode = os.waitstatus_to_exitcode(status)
                _children.discard(self)
        return self._exitcode

    def join(self, timeout=None):
        self._check_closed()
        assert self._parent_pid == os.getpid(), 'can only join a child process'
        assert self._popen is not None, 'can only join a started process'
        if timeout is None and not _pump.busy():
            self._poll(block=True)
            return
        # In naps; a pool at work is pumped between them (it may hold back
        # the task this child waits for).
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        nap = 0.0002
        while self._poll() is None:
            if deadline is None and not _pump.busy():
                self._poll(block=True)
                return
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            _pump.pump()
            time.sleep(min(nap, left))
            nap = min(nap * 2, 0.005 if _pump.busy() else 0.02)

    def is_alive(self):
        self._check_closed()
        if self is _current:
            return True
        assert self._parent_pid == os.getpid(), 'can only test a child process'
        return self._popen is not None and self._poll() is None

    def terminate(self):
        self._signal(signal.SIGTERM)

    def kill(self):
        self._signal(signal.SIGKILL)

    def _signal(self, sig):
        self._check_closed()
        if self._popen is not None and self._poll() is None:
            try:
                os.kill(self._pid, sig)
            except ProcessLookupError:
                pass

    def close(self):
        if self._popen is not None and self._poll() is None:
            raise ValueError('Cannot close a process while it is still running. '
                             'You should first call join() or terminate().')
        _children.discard(self)
        self._closed = True

    def _check_closed(self):
        if self._closed:
            raise ValueError('process object is closed')

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, name):
        assert isinstance(name, str), 'name must be a string'
        self._name = name

    @property
    def daemon(self):
        return self._daemonic

    @daemon.setter
    def daemon(self, daemonic):
        assert self._popen is None, 'process has already started'
        self._daemonic = daemonic

    @property
    def exitcode(self):
        self._check_closed()
        if self._popen is None:
            return None
        return self._poll()

    @property
    def pid(self):
        self._check_closed()
        return self._pid

    ident = pid

    @property
    def sentinel(self):
        raise ValueError('procbridge processes have no sentinel descriptor')

    def __repr__(self):
        if self is _current:
            status = 'started'
        elif self._closed:
            status = 'closed'
        elif self._popen is None:
            status = 'initial'
        else:
            code = self._poll()
            status = 'started' if code is None else 'stopped'
        info = ['<%s name=%r' % (type(self).__name__, self._name)]
        if self._pid is not None:
            info.append('pid=%s' % self._pid)
        if self._popen is not None and self._exitcode is not None:
            info.append('exitcode=%s' % self._exitcode)
        info.insert(1, status)
        if self._daemonic:
            info.append('daemon')
        return ' '.join(info) + '>'


class _MainProcess(Process):
    def __init__(self):
        self._identity = ()
        self._name = 'MainProcess'
        self._daemonic = False
        self._parent_pid = None
        self._pid = None
        self._popen = None
        self._exitcode = None
        self._closed = False

    @property
    def pid(self):
        return os.getpid()

    ident = pid


_current = _MainProcess()
_parent = None


def current_process():
    return _current


def parent_process():
    return _parent


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass


def _cleanup():
    for p in list(_children):
        p._poll()


def active_children():
    _cleanup()
    return list(_children)


def _exit_function():
    """As multiprocessing's at exit: terminate daemonic children, then join
    the others."""
    for p in list(_children):
        if p.daemon and p._poll() is None:
            p.terminate()
    for p in list(_children):
        p.join()


import atexit  # noqa: E402
atexit.register(_exit_function)
