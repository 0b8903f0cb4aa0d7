"""multiprocessing.Pool: worker processes forked by procbridge, fed through
procbridge queues.

Each worker has a queue of its own and holds a few tasks, so a free worker
finds its next task waiting while the rest stay with the parent and go to
whichever worker finishes first. Tasks go out idle workers first. How many
a worker holds follows how long tasks take: while they take over a
millisecond, the one it runs and the next, each in a message of its own;
while they are quicker, up to eight, in messages of up to four (a
worker that has one is sent more only four at a time), and a worker
sends the results of quick tasks together (never holding one back for
more than a millisecond of other quick tasks). All workers send results
on one shared queue. Because the parent knows which
tasks each worker holds, a worker that dies fails the tasks it had taken
and not answered (`multiprocessing.pool.WorkerLostError`), the batches it
had not started go to the others, and it is replaced; a worker that
reached `maxtasksperchild` is replaced too.

This interpreter has no threads, so the parent hands out tasks, collects
results and runs callbacks while it is inside a pool call: `get`, `wait`,
`ready`, `join`, iterating `imap`, or submitting more work; and while it
waits on a Queue, a Connection or a Process with tasks out (see
multiprocessing._pump), so that tasks held back still start.
"""
import collections
import errno
import itertools
import os
import pickle
import queue as _queue
import sys
import time
import traceback

from multiprocessing import _pump
from multiprocessing.process import Process
from multiprocessing.queues import Queue
from procbridge._door import (I64, bind, fd as _door, receiver, result_len, ret_of as _ret_of,
                              take as _take, write as _write)

__all__ = ['Pool', 'ThreadPool', 'AsyncResult', 'ApplyResult', 'MapResult',
           'IMapIterator', 'WorkerLostError']

RUN, CLOSE, TERMINATE = 0, 1, 2

# How long the parent waits for a result before it looks at its workers.
_CHECK_EVERY = 0.05

# Tasks quicker than this (seconds) travel in batches.
_QUICK = 0.001

# (tasks in one message, tasks a worker holds) for slow and quick tasks.
_SLOW_SHAPE = (1, 2)
_QUICK_SHAPE = (4, 8)

# What the last _dispatch found, until results come or workers change:
# nothing (look again), every worker has a task and the backlog is short
# of a batch, or no worker has room.
_LOOK, _WAITING, _FULL = 0, 1, 2

# Results up to this size come back in one call.
_CAP = 512
# The same, waiting on a bound descriptor (see procbridge._door.bind).
_WAIT_CAP = 64 * 1024 + 256
_read = os.read
_EMSGSIZE = errno.EMSGSIZE
_EMPTY = (errno.EAGAIN, errno.ETIMEDOUT)

_job_ids = itertools.count()
_worker_ids = itertools.count()
_dumps = pickle.dumps
_loads = pickle.loads


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


# How a worker runs a task: runner(func, payload).

def _apply(func, args):
    return func(*args)


def _apply_kw(func, payload):
    args, kwds = payload
    return func(*args, **kwds)


def _mapstar(func, chunk):
    return list(map(func, chunk))


def _starmapstar(func, chunk):
    return list(itertools.starmap(func, chunk))


# A task is (job, index, ref, payload): `ref` is the pickled (runner, func),
# made once per function in the parent and unpickled once per function in
# each worker; only the payload is pickled with every task.
_REFS_KEPT = 256


def _run_task(refs, ref, payload):
    """One task's outcome: (True, its result) or (False, (exception,
    traceback))."""
    try:
        runner, func = refs.get(ref) or _unpack_ref(refs, ref)
        return (True, runner(func, payload))
    except Exception as e:
        return (False, (e, traceback.format_exc()))


def _worker(wid, inqueue, outqueue, initializer, initargs, maxtasks):
    """A worker's life: run the batches of its own queue until the sentinel
    or `maxtasks`, sending results tagged with its id."""
    if initializer is not None:
        initializer(*initargs)
    done = 0
    refs = {}
    clock = time.monotonic
    while maxtasks is None or done < maxtasks:
        batch = inqueue.get()
        if batch is None:
            break
        results = []
        last = len(batch) - 1
        began = clock()
        for n, (job, i, ref, payload) in enumerate(batch):
            results.append((job, i, _run_task(refs, ref, payload)))
            done += 1
            now = clock()
            if n == last or now - began >= _QUICK:
                # With the time the tasks took, for the parent's estimate.
                _send_results(outqueue, wid, results, now - began)
                results = []
                began = now


def _send_results(outqueue, wid, results, took):
    try:
        outqueue.put((wid, results, took))
    except Exception:
        # One of them cannot be pickled: it fails, the others go.
        for job, i, result in results:
            try:
                outqueue.put((wid, [(job, i, result)], took))
            except Exception as e:
                outqueue.put((wid, [(job, i, _unsendable(e, result))], took))


def _unsendable(error, result):
    """The outcome of a task whose result could not be pickled."""
    return (False, (MaybeEncodingError(error, result[1]), ''))


# --- pools whose tasks run on the cluster's workers (`procbridge python
# --nats`): each worker here is a relay, which sends each batch it is given
# to a worker there (host function `cluster_call`, task 'python') and puts
# the results on the results' queue as a local worker would. On the worker,
# procbridge._serve runs the batch with `serve_batch`.

_ON_CLUSTER = os.environ.get('PROCBRIDGE_POOLS') == 'cluster'
_EOWNERDEAD = 130       # the ABI's code (Linux's) for a lost worker


def _relay(wid, inqueue, outqueue, init, maxtasks):
    """A worker's life on the cluster: the batches of its own queue run
    there, the initializer first on each instance that has not run it
    (`init`: the pickled initializer and its arguments, or b'')."""
    done = 0
    clock = time.monotonic
    while maxtasks is None or done < maxtasks:
        batch = inqueue.get()
        if batch is None:
            break
        began = clock()
        try:
            reply = _cluster_call(_dumps((init, batch)))
            results, took = _loads(reply)
        except Exception as e:
            lost = isinstance(e, OSError) and e.errno == _door_errno(_EOWNERDEAD)
            error = WorkerLostError(str(e)) if lost else e
            results = [(job, i, (False, (error, ''))) for job, i, _, _ in batch]
            took = clock() - began
        _send_results(outqueue, wid, results, took)
        done += len(batch)


def _door_errno(code):
    from procbridge._door import errno_of
    return errno_of(-code)


def _cluster_call(request):
    from procbridge._door import Buf, check, take
    n = check('cluster_call', Buf(b'python'), Buf(request))[0]
    return take(n)


def serve_batch(request, refs, initialized):
    """Runs a batch sent by `_relay` (on a cluster's worker): the pickled
    results and the time they took, as `_relay` reads them."""
    init, batch = _loads(request)
    if init and init not in initialized:
        initializer, initargs = _loads(init)
        initializer(*initargs)
        initialized.add(init)
    began = time.monotonic()
    results = [(job, i, _run_task(refs, ref, payload)) for job, i, ref, payload in batch]
    took = time.monotonic() - began
    try:
        return _dumps((results, took))
    except Exception:
        # One of them cannot be pickled: it fails, the others go.
        sendable = []
        for job, i, result in results:
            try:
                _dumps(result)
            except Exception as e:
                result = _unsendable(e, result)
            sendable.append((job, i, result))
        return _dumps((sendable, took))


def _unpack_ref(refs, ref):
    if len(refs) >= _REFS_KEPT:
        refs.clear()
    refs[ref] = unpacked = pickle.loads(ref)
    return unpacked


class _Worker:
    """A worker process, its task queue and the tasks it holds, oldest
    first (the first is the one it runs)."""
    __slots__ = ('wid', 'process', 'tasks', 'held', 'sent', 'retired')

    def __init__(self, wid, process, tasks):
        self.wid = wid
        self.process = process
        self.tasks = tasks
        self.held = collections.deque()     # (job, i) of each task sent
        self.sent = 0
        self.retired = False                # reached maxtasksperchild


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
        if _ON_CLUSTER:
            # Classes and functions of the job's main pickled on a worker,
            # where it is `__mp_main__` (see procbridge._serve), are this
            # process's `__main__`'s.
            sys.modules.setdefault('__mp_main__', sys.modules['__main__'])
            # It travels to the workers: one that cannot fails here.
            self._init = b'' if initializer is None else _dumps((initializer, initargs))
        self._processes = processes
        self._initializer = initializer
        self._initargs = initargs
        self._maxtasks = maxtasksperchild
        self._outqueue = Queue(_local=True)
        # The results' queue read with a deadline of _CHECK_EVERY, or none.
        handle = self._outqueue._handle
        self._wait_fd = bind('queue_get', handle, I64(int(_CHECK_EVERY * 1e6)))
        self._wait_frame, self._wait_at = receiver(
            'queue_get', handle, _CAP, I64(int(_CHECK_EVERY * 1e6)))
        self._poll_frame, self._poll_at = receiver('queue_get', handle, _CAP, I64(0))
        self._cache = {}
        self._refs = {}                         # (runner, func) -> pickled
        self._last_ref = (None, None, None)     # (runner, func, ref), the last
        self._backlog = collections.deque()     # tasks no worker holds yet
        self._workers = {}                      # wid -> _Worker
        self._state = RUN
        self._stopping = False                  # sentinels sent
        self._task_time = None                  # seconds, a moving average
        self._shape = _SLOW_SHAPE               # until tasks prove quick
        self._settled = _LOOK                   # see _dispatch
        self._checked = time.monotonic()
        for _ in range(processes):
            self._add_worker()
        _pump.register(self)

    def _add_worker(self):
        wid = next(_worker_ids)
        tasks = Queue(_local=True)
        if _ON_CLUSTER:
            target, args = _relay, (wid, tasks, self._outqueue, self._init, self._maxtasks)
        else:
            target, args = _worker, (wid, tasks, self._outqueue, self._initializer,
                                     self._initargs, self._maxtasks)
        w = Process(target=target, daemon=True, args=args)
        w.name = w.name.replace('Process', 'PoolWorker')
        w.start()
        worker = self._workers[wid] = _Worker(wid, w, tasks)
        self._settled = _LOOK
        if self._stopping:
            tasks.put(None)
        return worker

    def _outstanding(self):
        """Whether tasks wait in the backlog or are out with workers
        (multiprocessing._pump pumps the pool while the script waits
        elsewhere)."""
        if self._state == TERMINATE:
            return False
        if self._backlog:
            return True
        for w in self._workers.values():
            if w.held:
                return True
        return False

    def _pump(self):
        """A pool call's work, from a wait elsewhere: results handled
        (callbacks run), tasks handed out, dead workers replaced."""
        self._poll()
        if time.monotonic() - self._checked >= _CHECK_EVERY:
            self._check_workers()

    def _has_work(self):
        return self._state == RUN or (self._state == CLOSE and (
            self._backlog or self._cache))

    # --- the parent's side: handing out tasks, collecting results

    def _dispatch(self):
        """Hands tasks from the backlog to workers with room for them, the
        least busy first, a batch each; once the pool is closed and nothing
        is left, tells the workers to end.

        An idle worker gets a task at once. While every worker holds one,
        tasks wait in the backlog until they fill a batch (tasks submitted
        one by one, as `apply_async` does, then travel together, and their
        results come back together): the workers have work meanwhile, and
        the backlog is handed out again whenever results come in or the
        parent waits for one.

        What it found holds until results come or workers change: a burst
        of `apply_async` calls does not look at every worker once per
        task."""
        backlog = self._backlog
        settled = self._settled
        if backlog and settled and (settled == _FULL or len(backlog) < self._shape[0]):
            return
        self._settled = _LOOK
        if len(backlog) == 1 and self._maxtasks is None:
            # One task (apply_async) and an idle worker: straight to it.
            for w in self._workers.values():
                if not w.held:
                    self._send(w, [backlog.popleft()])
                    break
        if backlog:
            batch, holds = self._shape
            workers = self._workers.values()
            maxtasks = self._maxtasks
            while backlog:
                best, least = None, holds
                for w in workers:
                    held = len(w.held)
                    if held < least and (maxtasks is None or w.sent < maxtasks):
                        best, least = w, held
                        if not held:
                            break
                if best is None:
                    self._settled = _FULL
                    break
                if least and len(backlog) < batch:
                    self._settled = _WAITING
                    break
                room = holds - least
                if maxtasks is not None:
                    # Never more than it will take before it ends.
                    room = min(room, maxtasks - best.sent)
                if not least:
                    # Idle workers share what there is.
                    take = min(room, batch, len(backlog) // len(workers)) or 1
                else:
                    take = min(room, batch, len(backlog))
                if take == 1:
                    self._send(best, [backlog.popleft()])
                else:
                    self._send(best, [backlog.popleft() for _ in range(take)])
        if self._state == CLOSE and not backlog and not self._stopping:
            self._stopping = True
            for w in self._workers.values():
                w.tasks.put(None)

    def _send(self, w, batch):
        """Puts a batch of tasks on `w`'s queue; a task whose arguments
        cannot be pickled fails alone."""
        try:
            data = _dumps(batch)
        except Exception:
            sendable = []
            for task in batch:
                try:
                    _dumps(task)
                except Exception as e:
                    self._fail(task[0], task[1], e)
                else:
                    sendable.append(task)
            if not sendable:
                return
            batch = sendable
            data = _dumps(batch)
        fd = w.tasks._put_fd
        try:
            _write(fd, data)
        except (OSError, TypeError):    # failed, or no descriptor (None)
            w.tasks.put(batch)          # puts it, or raises what went wrong
        held = w.held
        for task in batch:
            held.append((task[0], task[1]))
        w.sent += len(batch)

    def _fail(self, job, i, error):
        result = self._cache.get(job)
        if result is not None and not result._has(i):
            result._set(i, (False, (error, '')))

    def _receive(self, frame, at):
        """The next message of the results' queue, or None when the frame's
        deadline passed."""
        frame = bytearray(frame)
        _write(_door, frame)
        ret = _ret_of(frame, 4)[0]
        if 0 <= ret <= _CAP:
            return _loads(frame[at:at + ret])
        if ret > _CAP:
            return _loads(_take(ret))
        if -ret in (11, 110):       # EAGAIN, ETIMEDOUT
            return None
        raise OSError(-ret, 'the pool\'s result queue failed')

    def _wait(self):
        """The next message of the results' queue, or None after
        _CHECK_EVERY."""
        if self._wait_fd is None:
            return self._receive(self._wait_frame, self._wait_at)
        try:
            data = _read(self._wait_fd, _WAIT_CAP)
        except OSError as e:
            if e.errno == _EMSGSIZE:
                return _loads(_take(result_len()))
            if e.errno in _EMPTY:
                return None
            # The same call in a frame says why.
            return self._receive(self._wait_frame, self._wait_at)
        return _loads(data)

    def _collect(self, timeout):
        """Waits up to `timeout` seconds (at most _CHECK_EVERY: callers
        loop) for results, handles every one that came, and looks at the
        workers when none came or every _CHECK_EVERY."""
        if timeout >= _CHECK_EVERY:
            message = self._wait()
        elif timeout > 0:
            try:
                message = self._outqueue.get(True, timeout)
            except _queue.Empty:
                message = None
        else:
            message = self._receive(self._poll_frame, self._poll_at)
        if message is None:
            self._check_workers()
            return
        self._handle(message)
        self._poll()
        if time.monotonic() - self._checked >= _CHECK_EVERY:
            self._check_workers()

    def _handle(self, message):
        wid, results, took = message
        self._settled = _LOOK
        per_task = took / len(results)
        average = self._task_time
        average = per_task if average is None else 0.8 * average + 0.2 * per_task
        self._task_time = average
        self._shape = _QUICK_SHAPE if average < _QUICK else _SLOW_SHAPE
        w = self._workers.get(wid)
        if w is not None:
            for _ in range(min(len(results), len(w.held))):
                w.held.popleft()
            if (self._maxtasks is not None and w.sent >= self._maxtasks
                    and not w.held and not w.retired):
                # It ends now: its replacement starts without waiting to
                # see it gone.
                w.retired = True
                if self._has_work():
                    self._add_worker()
        cache = self._cache
        for job, i, outcome in results:
            result = cache.get(job)
            if result is not None:
                result._set(i, outcome)

    def _check_workers(self):
        """Reaps workers that ended: a dead one fails the task it was
        running, and the tasks it had not started go back to the backlog;
        each is replaced while there is work (or the pool runs)."""
        self._checked = time.monotonic()
        self._settled = _LOOK
        ended = [w for w in self._workers.values() if w.process.exitcode is not None]
        if not ended:
            return
        # Results sent before a worker died are still on their way: take
        # them first.
        while True:
            message = self._receive(self._poll_frame, self._poll_at)
            if message is None:
                break
            self._handle(message)
        for w in ended:
            del self._workers[w.wid]
            unstarted = []
            while True:
                try:
                    batch = w.tasks.get(False)
                except _queue.Empty:
                    break
                if batch is not None:
                    unstarted.extend(batch)
            w.tasks.close()
            # What it had taken and not answered: the oldest it held.
            for job, i in itertools.islice(w.held, len(w.held) - len(unstarted)):
                self._fail(job, i, WorkerLostError(
                    'the worker running this task (pid %s) died with exit code %s'
                    % (w.process.pid, w.process.exitcode)))
            self._backlog.extendleft(reversed(unstarted))
            if not w.retired and self._has_work():
                self._add_worker()
        self._dispatch()

    # --- submitting work

    def _check_running(self):
        if self._state != RUN:
            raise ValueError('Pool not running')

    def _ref(self, runner, func):
        """The pickled (runner, func) tasks name."""
        last = self._last_ref
        if last[1] is func and last[0] is runner:
            # The same again, as in a loop of apply_async.
            return last[2]
        ref = self._pickled_ref(runner, func)
        self._last_ref = (runner, func, ref)
        return ref

    def _pickled_ref(self, runner, func):
        key = (runner, func)
        try:
            ref = self._refs.get(key)
        except TypeError:           # an unhashable callable
            return pickle.dumps(key)
        if ref is None:
            if len(self._refs) >= _REFS_KEPT:
                self._refs.clear()
            ref = self._refs[key] = pickle.dumps(key)
        return ref

    def _submit(self, result, tasks):
        """Queues the tasks and hands out what workers have room for; looks
        at results only when every worker is full (not when tasks only wait
        to fill a batch)."""
        backlog = self._backlog
        backlog.extend(tasks)
        self._dispatch()
        if len(backlog) >= self._shape[0]:
            self._poll()

    def _poll(self):
        """Handles the results already there, without waiting, and hands
        out tasks."""
        while True:
            message = self._receive(self._poll_frame, self._poll_at)
            if message is None:
                break
            self._handle(message)
        self._dispatch()

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        if self._state != RUN:
            raise ValueError('Pool not running')
        if kwds:
            ref, payload = self._ref(_apply_kw, func), (tuple(args), dict(kwds))
        else:
            ref, payload = self._ref(_apply, func), tuple(args)
        result = ApplyResult(self, callback, error_callback)
        self._submit(result, [(result._job, 0, ref, payload)])
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
        ref = self._ref(mapper, func)
        chunks = list(_chunks(iterable, chunksize))
        result = MapResult(self, chunksize, len(iterable), len(chunks), callback,
                           error_callback)
        job = result._job
        self._submit(result, [(job, i, ref, chunk) for i, chunk in enumerate(chunks)])
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(IMapIterator, func, iterable, chunksize)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize)

    def _imap(self, kind, func, iterable, chunksize):
        self._check_running()
        if chunksize < 1:
            raise ValueError('Chunksize must be 1+, not {0:n}'.format(chunksize))
        ref = self._ref(_mapstar, func)
        chunks = list(_chunks(list(iterable), chunksize))
        result = kind(self, len(chunks))
        job = result._job
        self._submit(result, [(job, i, ref, chunk) for i, chunk in enumerate(chunks)])
        return result

    # --- ending

    def close(self):
        if self._state == RUN:
            self._state = CLOSE
            self._dispatch()

    def terminate(self):
        self._state = TERMINATE
        self._backlog.clear()
        workers = list(self._workers.values())
        for w in workers:
            w.process.terminate()
        for w in workers:
            w.process.join()
            w.tasks.close()
        self._workers = {}
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

    def __del__(self):
        fd = getattr(self, '_wait_fd', None)
        if fd is not None:
            self._wait_fd = None
            os.close(fd)

    def __repr__(self):
        state = {RUN: 'RUN', CLOSE: 'CLOSE', TERMINATE: 'TERMINATE'}[self._state]
        return '<%s.%s state=%s pool_size=%d>' % (
            type(self).__module__, type(self).__qualname__, state, len(self._workers))


def _chunks(items, size):
    if size == 1:
        yield from ((item,) for item in items)
        return
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
