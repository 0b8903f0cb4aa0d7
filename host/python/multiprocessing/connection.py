"""multiprocessing.Pipe: a pair of procbridge connections (a socket pair
carrying whole messages)."""
import pickle

from procbridge._door import (I64, Buf, call, check, error, fd as _door, receiver, ret_of as _ret_of,
                              sender, take, timeout_us, write as _write)

__all__ = ['Pipe', 'Connection']

_CAP = 512


class Connection:
    def __init__(self, handle, readable, writable):
        self._handle = handle
        self._readable = readable
        self._writable = writable
        # Prebuilt frames of send and blocking receive (see procbridge._door).
        self._send_head = sender('pipe_send', handle)
        self._recv_frame, self._recv_at = receiver('pipe_recv', handle, _CAP, I64(-1))

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
        frame = bytearray(self._send_head + data)
        _write(_door, frame)
        return _ret_of(frame, 4)[0]

    def recv_bytes(self, maxlength=None):
        self._check('r')
        frame = bytearray(self._recv_frame)
        _write(_door, frame)
        ret = _ret_of(frame, 4)[0]
        if ret < 0:
            raise _pipe_error('recv', ret)
        if ret <= _CAP:
            at = self._recv_at
            data = bytes(frame[at:at + ret])
        else:
            data = take(ret)
        if maxlength is not None and len(data) > maxlength:
            self.close()
            raise OSError('bad message length')
        return data

    def recv(self):
        return pickle.loads(self.recv_bytes())

    def poll(self, timeout=0.0):
        self._check('r')
        return bool(check('pipe_poll', self._handle, timeout_us(True, timeout))[0])

    def fileno(self):
        raise OSError('procbridge connections have no file descriptor')

    def close(self):
        if self._handle is not None:
            handle, self._handle = self._handle, None
            call('pipe_close', handle)

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
