"""multiprocessing.Pool: worker processes forked by procbridge, fed through
procbridge queues.

Workers take tasks from one shared queue, so a free worker takes the next
task. This interpreter has no threads, so the parent collects results (and
runs callbacks) while it is inside a pool call: `get`, `wait`, `ready`,
`join`, iterating `imap`, or submitting more work. A worker that dies fails
the task it was running (`multiprocessing.pool.WorkerLostError`) and is
replaced; so is one that reached `maxtasksperchild`.
"""
import itertools
import os
import queue as _queue
import signal
import time
import traceback

from multiprocessing.process import Process
from multiprocessing.queues import Queue, SimpleQueue

__all__ = ['Pool', 'ThreadPool', 'AsyncResult', 'ApplyResult', 'MapResult',
           'IMapIterator', 'WorkerLostError']

RUN, CLOSE, TERMINATE = 0, 1, 2

# How long the parent waits for a result before it looks at its workers.
_CHECK_EVERY = 0.05

_job_ids = itertools.count()


class TimeoutError(Exception):
    pass


class WorkerLostError(Exception):
    """The worker running the task died (killed, out of memory, os._exit)."""


class MaybeEncodingError(Exception):
    """A task's result (or exception) could not be pickled."""

    def __init__(self, exc, value):
        self.exc = repr(exc)
        self.value = repr(value)
        super().__init__(self.exc, self.value)

    def __str__(self):
        return "Error sending result: '%s'. Reason: '%s'" % (self.value, self.exc)


class RemoteTraceback(Exception):
    def __init__(self, tb):
        self.tb = tb

    def __str__(self):
        return self.tb


def _rebuild(exc, tb):
    exc.__cause__ = RemoteTraceback('\n"""\n%s"""' % tb)
    return exc


def _mapstar(args):
    return list(map(*args))


def _starmapstar(args):
    return list(itertools.starmap(args[0], args[1]))


def _worker(inqueue, outqueue, initializer, initargs, maxtasks):
    """A worker's life: run tasks until the sentinel or `maxtasks`."""
    if initializer is not None:
        initializer(*initargs)
    pid = os.getpid()
    done = 0
    while maxtasks is None or done < maxtasks:
        task = inqueue.get()
        if task is None:
            break
        job, i, func, args, kwds = task
        outqueue.put(('start', job, i, pid))
        try:
            result = (True, func(*args, **kwds))
        except Exception as e:
            result = (False, (e, traceback.format_exc()))
        try:
            outqueue.put(('done', job, i, result))
        except Exception as e:
            wrapped = MaybeEncodingError(e, result[1])
            outqueue.put(('done', job, i, (False, (wrapped, ''))))
        done += 1


class Pool:
    """As multiprocessing.Pool(processes, initializer, initargs,
    maxtasksperchild)."""

    Process = Process

    def __init__(self, processes=None, initializer=None, initargs=(),
                 maxtasksperchild=None, context=None):
        if processes is None:
            processes = os.cpu_count() or 1
        if processes < 1:
            raise ValueError('Number of processes must be at least 1')
        if maxtasksperchild is not None and (
                not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0):
            raise ValueError('maxtasksperchild must be a positive int or None')
        if initializer is not None and not callable(initializer):
            raise TypeError('initializer must be a callable')
        self._processes = processes
        self._initializer = initializer
        self._initargs = initargs
        self._maxtasks = maxtasksperchild
        self._inqueue = SimpleQueue()
        self._outqueue = Queue()
        self._cache = {}
        self._running = {}          # worker pid -> (job, index) it started
        self._workers = []
        self._state = RUN
        self._checked = time.monotonic()
        for _ in range(processes):
            self._add_worker()

    def _add_worker(self):
        w = Process(target=_worker, daemon=True,
                    args=(self._inqueue, self._outqueue, self._initializer,
                          self._initargs, self._maxtasks))
        w.name = w.name.replace('Process', 'PoolWorker')
        w.start()
        self._workers.append(w)

    # --- the parent's side: collecting results

    def _collect(self, timeout):
        """Takes what the workers sent for up to `timeout` seconds (at least
        one message if one comes), and looks at the workers now and then."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                message = self._outqueue.get(True, max(0.0, min(left, _CHECK_EVERY)))
            except _queue.Empty:
                self._check_workers()
                if time.monotonic() >= deadline:
                    return
                continue
            self._handle(message)
            # Take whatever else is already there without waiting.
            while True:
                try:
                    self._handle(self._outqueue.get(False))
                except _queue.Empty:
                    break
            if time.monotonic() - self._checked >= _CHECK_EVERY:
                self._check_workers()
            return

    def _handle(self, message):
        kind, job, i, rest = message
        if kind == 'start':
            self._running[rest] = (job, i)
            return
        for pid, started in list(self._running.items()):
            if started == (job, i):
                del self._running[pid]
        result = self._cache.get(job)
        if result is not None:
            result._set(i, rest)

    def _check_workers(self):
        """Reaps workers that ended: fails the task a dead one was running,
        and replaces it while the pool runs (or tasks are still queued)."""
        for w in list(self._workers):
            if w.exitcode is None:
                continue
            self._workers.remove(w)
            lost = self._running.pop(w.pid, None)
            if lost is not None:
                job, i = lost
                # Its result may still be on its way: take what arrived.
                while True:
                    try:
                        self._handle(self._outqueue.get(False))
                    except _queue.Empty:
                        break
                result = self._cache.get(job)
                if result is not None and not result._has(i):
                    err = WorkerLostError(
                        'the worker running this task (pid %s) died with exit code %s'
                        % (w.pid, w.exitcode))
                    result._set(i, (False, (err, '')))
            if self._state == RUN or (self._state == CLOSE and self._cache):
                self._add_worker()
                if self._state == CLOSE:
                    self._inqueue.put(None)

    # --- submitting work

    def _check_running(self):
        if self._state != RUN:
            raise ValueError('Pool not running')

    def _submit(self, result, tasks):
        for task in tasks:
            self._inqueue.put(task)
        self._collect(0)

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        self._submit(result, [(result._job, 0, func, args, kwds)])
        return result

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, _mapstar, chunksize).get()

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, _starmapstar, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, _mapstar, chunksize, callback, error_callback)

    def starmap_async(self, func, iterable, chunksize=None, callback=None,
                      error_callback=None):
        return self._map_async(func, iterable, _starmapstar, chunksize, callback,
                               error_callback)

    def _map_async(self, func, iterable, mapper, chunksize=None, callback=None,
                   error_callback=None):
        self._check_running()
        if not hasattr(iterable, '__len__'):
            iterable = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(iterable), len(self._workers) * 4)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        chunks = list(_chunks(iterable, chunksize))
        result = MapResult(self, chunksize, len(iterable), len(chunks), callback,
                           error_callback)
        self._submit(result, [(result._job, i, mapper, ((func, chunk),), {})
                              for i, chunk in enumerate(chunks)])
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, kind, func, iterable, chunksize):
        self._check_running()
        if chunksize < 1:
            raise ValueError('Chunksize must be 1+, not {0:n}'.format(chunksize))
        chunks = list(_chunks(list(iterable), chunksize))
        result = kind(self, len(chunks))
        self._submit(result, [(result._job, i, _mapstar, ((func, chunk),), {})
                              for i, chunk in enumerate(chunks)])
        return result

    # --- ending

    def close(self):
        if self._state == RUN:
            self._state = CLOSE
            for _ in self._workers:
                self._inqueue.put(None)

    def terminate(self):
        self._state = TERMINATE
        for w in self._workers:
            w.terminate()
        for w in self._workers:
            w.join()
        self._workers = []
        for result in list(self._cache.values()):
            result._abandon()

    def join(self):
        if self._state == RUN:
            raise ValueError('Pool is still running')
        while self._workers:
            self._collect(_CHECK_EVERY)

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, *exc):
        self.terminate()

    def __repr__(self):
        state = {RUN: 'RUN', CLOSE: 'CLOSE', TERMINATE: 'TERMINATE'}[self._state]
        return '<%s.%s state=%s pool_size=%d>' % (
            type(self).__module__, type(self).__qualname__, state, len(self._workers))


def _chunks(items, size):
    it = iter(items)
    while size:
        chunk = tuple(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


class ApplyResult:
    def __init__(self, pool, callback, error_callback):
        self._pool = pool
        self._job = next(_job_ids)
        self._callback = callback
        self._error_callback = error_callback
        self._value = None
        self._ready = False
        pool._cache[self._job] = self

    def _has(self, i):
        return self._ready

    def _set(self, i, outcome):
        self._ready = True
        self._success, value = outcome
        self._value = value if self._success else _rebuild(*value)
        self._finish()

    def _finish(self):
        self._pool._cache.pop(self._job, None)
        if self._success and self._callback:
            self._callback(self._value)
        if not self._success and self._error_callback:
            self._error_callback(self._value)

    def _abandon(self):
        if not self._ready:
            self._set(0, (False, (RuntimeError('the pool was terminated'), '')))

    def ready(self):
        if not self._ready:
            self._pool._collect(0)
        return self._ready

    def successful(self):
        if not self.ready():
            raise ValueError('{0!r} not ready'.format(self))
        return self._success

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            left = _CHECK_EVERY if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            self._pool._collect(min(left, _CHECK_EVERY))

    def get(self, timeout=None):
        self.wait(timeout)
        if not self._ready:
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    def __init__(self, pool, chunksize, length, chunks, callback, error_callback):
        super().__init__(pool, callback, error_callback)
        self._success = True
        self._value = [None] * length
        self._chunksize = chunksize
        self._left = chunks
        self._seen = set()
        if chunks == 0:
            self._ready = True
            self._finish()

    def _has(self, i):
        return i in self._seen

    def _abandon(self):
        if not self._ready:
            self._success = False
            self._value = RuntimeError('the pool was terminated')
            self._ready = True
            self._finish()

    def _set(self, i, outcome):
        if i in self._seen or self._ready:
            return
        self._seen.add(i)
        success, value = outcome
        if success and self._success:
            self._value[i * self._chunksize:(i + 1) * self._chunksize] = value
        elif not success and self._success:
            self._success = False
            self._value = _rebuild(*value)
        self._left -= 1
        if self._left == 0 or not self._success:
            self._ready = True
            self._finish()


class IMapIterator:
    def __init__(self, pool, chunks):
        self._pool = pool
        self._job = next(_job_ids)
        self._chunks = chunks
        self._arrived = {}
        self._order = []
        self._next_chunk = 0
        self._pending = []
        pool._cache[self._job] = self
        if chunks == 0:
            del pool._cache[self._job]

    def _has(self, i):
        return i in self._arrived

    def _set(self, i, outcome):
        self._arrived[i] = outcome
        self._order.append(i)
        if len(self._arrived) == self._chunks:
            self._pool._cache.pop(self._job, None)

    def _abandon(self):
        for i in range(self._chunks):
            if i not in self._arrived:
                self._set(i, (False, (RuntimeError('the pool was terminated'), '')))

    def __iter__(self):
        return self

    def _take(self):
        """The next chunk's outcome, in submission order."""
        return self._arrived.get(self._next_chunk)

    def next(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self._next_chunk >= self._chunks:
                raise StopIteration
            outcome = self._take()
            if outcome is None:
                left = _CHECK_EVERY if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self._pool._collect(min(left, _CHECK_EVERY))
                continue
            self._next_chunk += 1
            success, value = outcome
            if not success:
                raise _rebuild(*value)
            self._pending.extend(value)
        return self._pending.pop(0)

    __next__ = next


class IMapUnorderedIterator(IMapIterator):
    def _take(self):
        if self._next_chunk < len(self._order):
            return self._arrived[self._order[self._next_chunk]]
        return None


def ThreadPool(*args, **kwargs):
    raise NotImplementedError('this interpreter has no threads: use Pool')
