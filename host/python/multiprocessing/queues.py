"""Queue, SimpleQueue and JoinableQueue on procbridge's shared-memory queues.

Objects are pickled in the putting process and unpickled in the getting
one; the queue itself is procbridge's (`queue_*`), shared by every process
forked after it was made.
"""
import errno
import pickle
import queue as _queue

from procbridge._door import (I64, Buf, call, check, error, fd as _door, receiver, ret_of as _ret_of,
                              sender, take, timeout_us, write as _write)

__all__ = ['Queue', 'SimpleQueue', 'JoinableQueue']

_dumps = pickle.dumps
_loads = pickle.loads

# The first try: messages up to this size come back in one call (longer
# ones take a second, `take_result`).
_CAP = 512
_FOREVER = I64(-1)


class Queue:
    def __init__(self, maxsize=0, *, ctx=None):
        if maxsize < 0:
            maxsize = 0
        self._maxsize = maxsize
        self._handle = check('queue_new', maxsize, 0, int(self._joinable))[0]
        self._closed = False
        # Prebuilt frames of the blocking put and get (see procbridge._door).
        self._put_head = sender('queue_put', self._handle, _FOREVER)
        self._get_frame, self._get_at = receiver('queue_get', self._handle, _CAP, _FOREVER)

    _joinable = False

    def put(self, obj, block=True, timeout=None):
        if block and timeout is None and not self._closed:
            frame = bytearray(self._put_head + _dumps(obj))
            _write(_door, frame)
            ret = _ret_of(frame, 4)[0]
            if not ret:
                return
        else:
            self._check_closed()
            ret, _ = call('queue_put', self._handle, Buf(_dumps(obj)),
                          timeout_us(block, timeout))
        if ret < 0:
            code = -ret
            if code in (11, 110):    # EAGAIN, ETIMEDOUT
                raise _queue.Full
            if code == 105:          # ENOBUFS: over the queue's byte limit
                raise _queue.Full(error('put', ret).strerror)
            raise error('put', ret)

    def get(self, block=True, timeout=None):
        if block and timeout is None and not self._closed:
            frame = bytearray(self._get_frame)
            _write(_door, frame)
            ret = _ret_of(frame, 4)[0]
            if 0 <= ret <= _CAP:
                at = self._get_at
                return _loads(frame[at:at + ret])
        else:
            self._check_closed()
            ret, (frame,) = call('queue_get', self._handle, Buf(_CAP),
                                 timeout_us(block, timeout))
            if 0 <= ret <= _CAP:
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
            call('queue_close', self._handle)

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
