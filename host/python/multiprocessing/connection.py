"""multiprocessing.Pipe: a pair of procbridge connections (a socket pair
carrying whole messages)."""
import errno
import os
import pickle

from multiprocessing import _pump
from procbridge._door import Buf, I64, bind, call, check, error, result_len, take, timeout_us

__all__ = ['Pipe', 'Connection']

_write = os.write
_read = os.read
_EMSGSIZE = errno.EMSGSIZE
_FOREVER = I64(-1)
# Messages up to this size are received in one call.
_CAP = 64 * 1024 + 256
# The same in a frame (the slow path).
_FRAME_CAP = 512


class _NotYet(Exception):
    """Nothing to receive yet (a slice of a wait ended)."""


class Connection:
    def __init__(self, handle, readable, writable):
        self._handle = handle
        self._readable = readable
        self._writable = writable
        # Descriptors bound to send and blocking receive (see
        # procbridge._door.bind); None: calls in frames.
        self._send_fd = bind('pipe_send', handle) if writable else None
        self._recv_fd = bind('pipe_recv', handle) if readable else None

    @property
    def closed(self):
        return self._handle is None

    @property
    def readable(self):
        return self._readable

    @property
    def writable(self):
        return self._writable

    def _check(self, want):
        if self._handle is None:
            raise OSError('handle is closed')
        if want == 'r' and not self._readable:
            raise OSError('connection is write-only')
        if want == 'w' and not self._writable:
            raise OSError('connection is read-only')

    def send_bytes(self, buf, offset=0, size=None):
        self._check('w')
        data = bytes(memoryview(buf))
        if offset < 0 or offset > len(data):
            raise ValueError('offset is out of bounds')
        if size is None:
            size = len(data) - offset
        if size < 0 or offset + size > len(data):
            raise ValueError('size is out of bounds')
        ret = self._send(data[offset:offset + size])
        if ret < 0:
            raise _pipe_error('send', ret)

    def send(self, obj):
        self._check('w')
        ret = self._send(pickle.dumps(obj))
        if ret < 0:
            raise _pipe_error('send', ret)

    def _send(self, data):
        if self._send_fd is not None:
            try:
                _write(self._send_fd, data)
                return 0
            except OSError:
                pass    # the same call in a frame says why
        return call('pipe_send', self._handle, Buf(data))[0]

    def recv_bytes(self, maxlength=None):
        self._check('r')
        if _pump.active and _pump.busy():
            # A pool at work may hold back the task that would send.
            _pump.wait(self._ready, None, _NotYet)
        data = self._recv()
        if maxlength is not None and len(data) > maxlength:
            self.close()
            raise OSError('bad message length')
        return data

    def _recv(self):
        if self._recv_fd is not None:
            try:
                return _read(self._recv_fd, _CAP)
            except OSError as e:
                if e.errno == _EMSGSIZE:
                    return take(result_len())
                # The same call in a frame says why.
        ret, (frame,) = call('pipe_recv', self._handle, Buf(_FRAME_CAP), _FOREVER)
        if ret < 0:
            raise _pipe_error('recv', ret)
        if ret <= _FRAME_CAP:
            return frame[:ret]
        return take(ret)

    def recv(self):
        return pickle.loads(self.recv_bytes())

    def poll(self, timeout=0.0):
        self._check('r')
        if (timeout is None or timeout > 0) and _pump.active and _pump.busy():
            try:
                return _pump.wait(self._ready, timeout, _NotYet)
            except _NotYet:
                return False
        return bool(check('pipe_poll', self._handle, timeout_us(True, timeout))[0])

    def _ready(self, timeout):
        """True once a message (or the end) is there within `timeout`
        seconds (None: forever), else raises _NotYet."""
        if check('pipe_poll', self._handle, timeout_us(True, timeout))[0]:
            return True
        raise _NotYet

    def fileno(self):
        raise OSError('procbridge connections have no file descriptor')

    def close(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._unbind()
            call('pipe_close', handle)

    def _unbind(self):
        for fd in (self._send_fd, self._recv_fd):
            if fd is not None:
                os.close(fd)
        self._send_fd = self._recv_fd = None

    def __del__(self):
        if getattr(self, '_send_fd', None) is not None or getattr(self, '_recv_fd', None) is not None:
            self._unbind()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):
        raise TypeError('a procbridge Connection is shared by inheritance: pass it '
                        'to Process(args=...), not through a queue')


def _pipe_error(what, ret):
    if -ret == 32:          # EPIPE: the other end is closed
        return EOFError() if what == 'recv' else BrokenPipeError(32, 'broken pipe')
    return error(what, ret)


def Pipe(duplex=True):
    """Two connections: (receiving, sending) ends, or two duplex ones."""
    _, (pair,) = check('pipe_new', int(bool(duplex)), Buf(8, with_len=False))
    a = int.from_bytes(pair[:4], 'little')
    b = int.from_bytes(pair[4:], 'little')
    if duplex:
        return Connection(a, True, True), Connection(b, True, True)
    return Connection(a, True, False), Connection(b, False, True)
