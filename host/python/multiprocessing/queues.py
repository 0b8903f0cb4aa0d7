"""Queue, SimpleQueue and JoinableQueue on procbridge's shared-memory queues.

Objects are pickled in the putting process and unpickled in the getting
one; the queue itself is procbridge's (`queue_*`), shared by every process
forked after it was made.
"""
import errno
import os
import pickle
import queue as _queue

from multiprocessing import _pump
from procbridge._door import Buf, bind, call, check, error, result_len, take, timeout_us

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue']

_dumps = pickle.dumps
_loads = pickle.loads
_write = os.write
_read = os.read
_EMSGSIZE = errno.EMSGSIZE

# Messages up to this size come back in one call (longer ones take two
# more: their length and `take_result`).
_CAP = 64 * 1024 + 256
# The same in a frame (the slow path: a timeout, or no bound descriptor).
_FRAME_CAP = 512


# queue_new flags.
_JOINABLE = 1
_LOCAL = 2


class Queue:
    def __init__(self, maxsize=0, *, ctx=None, _local=False):
        if maxsize < 0:
            maxsize = 0
        self._maxsize = maxsize
        flags = (_JOINABLE if self._joinable else 0) | (_LOCAL if _local else 0)
        self._handle = check('queue_new', maxsize, 0, flags)[0]
        self._closed = False
        # Descriptors bound to the blocking put and get (see
        # procbridge._door.bind); None: calls in frames.
        self._put_fd = bind('queue_put', self._handle)
        self._get_fd = bind('queue_get', self._handle)

    _joinable = False

    def put(self, obj, block=True, timeout=None):
        data = _dumps(obj)
        if block:
            if _pump.active and _pump.busy():
                # A pool at work may hold back the task that would make room.
                return _pump.wait(lambda t: self._put(data, True, t), timeout, _queue.Full)
            if timeout is None and self._put_fd is not None:
                # The common case: one write of the bound door.
                try:
                    _write(self._put_fd, data)
                    return
                except OSError:
                    pass    # the same call in a frame says why
        self._put(data, block, timeout)

    def _put(self, data, block, timeout):
        """A put in a frame: with a timeout, or saying why the bound door
        failed."""
        self._check_closed()
        ret, _ = call('queue_put', self._handle, Buf(data), timeout_us(block, timeout))
        if ret < 0:
            code = -ret
            if code in (11, 110):    # EAGAIN, ETIMEDOUT
                raise _queue.Full
            if code == 105:          # ENOBUFS: over the queue's byte limit
                raise _queue.Full(error('put', ret).strerror)
            raise error('put', ret)

    def get(self, block=True, timeout=None):
        if block:
            if _pump.active and _pump.busy():
                # A pool at work may hold back the task that would put.
                return _pump.wait(lambda t: self._get(True, t), timeout, _queue.Empty)
            if timeout is None and self._get_fd is not None:
                # The common case: one read of the bound door.
                try:
                    data = _read(self._get_fd, _CAP)
                except OSError as e:
                    if e.errno == _EMSGSIZE:
                        return _loads(take(result_len()))
                    # The same call in a frame says why.
                else:
                    return _loads(data)
        return self._get(block, timeout)

    def _get(self, block, timeout):
        """A get in a frame: with a timeout, or saying why the bound door
        failed."""
        self._check_closed()
        ret, (frame,) = call('queue_get', self._handle, Buf(_FRAME_CAP),
                             timeout_us(block, timeout))
        if 0 <= ret <= _FRAME_CAP:
            return _loads(frame[:ret])
        if ret < 0:
            if -ret in (11, 110):
                raise _queue.Empty
            raise error('get', ret)
        # Longer than the first try: it waits for `take_result`.
        return _loads(take(ret))

    def put_nowait(self, obj):
        return self.put(obj, False)

    def get_nowait(self):
        return self.get(False)

    def qsize(self):
        return check('queue_qsize', self._handle)[0]

    def empty(self):
        return bool(check('queue_empty', self._handle)[0])

    def full(self):
        return bool(check('queue_full', self._handle)[0])

    def close(self):
        if not self._closed:
            self._closed = True
            self._unbind()
            call('queue_close', self._handle)

    def _unbind(self):
        for fd in (self._put_fd, self._get_fd):
            if fd is not None:
                os.close(fd)
        self._put_fd = self._get_fd = None

    def __del__(self):
        if getattr(self, '_put_fd', None) is not None:
            self._unbind()

    def join_thread(self):
        pass

    def cancel_join_thread(self):
        pass

    def _check_closed(self):
        if self._closed:
            raise ValueError('Queue %r is closed' % self)

    def __getstate__(self):
        raise TypeError('a procbridge Queue is shared by inheritance: pass it to '
                        'Process(args=...) or to a Pool initializer, not through a queue')


class JoinableQueue(Queue):
    _joinable = True

    def task_done(self):
        ret, _ = call('queue_task_done', self._handle)
        if ret < 0:
            if -ret == 22:
                raise ValueError('task_done() called too many times')
            raise error('task_done', ret)

    def join(self):
        check('queue_join', self._handle, timeout_us())


class SimpleQueue(Queue):
    def __init__(self, *, ctx=None):
        super().__init__(0)

    def get(self):
        return super().get(True)

    def put(self, obj):
        return super().put(obj, True)


del errno
