"""Serves a job's Pool tasks on a cluster's worker (`procbridge worker`).

The worker starts the interpreter as
`python -c "import procbridge._serve" MODE ARGV0 FILE PAYLOAD`, with what
the job itself was started with (see procbridge._main), and keeps it for
the job's later batches.

The job's main is imported first as `__mp_main__`, which is also
`__main__` here, as Python's spawn start method does: functions pickled by
reference from the job's `__main__` are found, and code under
`if __name__ == '__main__':` does not run. As with spawn, `-c` code is not
run again. When the import fails, every
batch fails with its traceback.

Then each call (`task_next`) is a batch that one of the job's pool workers
(`multiprocessing.pool._relay`) sent; its reply (`task_return`) is what a
local worker would have put on the results' queue. Once the worker drops
the job, `task_next` fails with EPIPE and the interpreter ends.
"""
import errno
import sys
import traceback
import types

from procbridge._door import Buf, call, check, error, take

# Batches up to this size come in one call.
_CAP = 64 * 1024


def _import_main():
    mode, argv0, filename, payload = sys.argv[1:5]
    sys.argv = [argv0] + sys.argv[5:]
    main = types.ModuleType('__mp_main__')
    sys.modules['__mp_main__'] = sys.modules['__main__'] = main
    if mode == 'module':
        import runpy
        main.__dict__.update(runpy.run_module(argv0, run_name='__mp_main__'))
    elif mode == 'script':
        import os
        sys.path[0] = os.path.dirname(filename)
        main.__file__ = filename
        exec(compile(payload, filename, 'exec'), main.__dict__)
    # `-c` code is not run again (it has no `__main__` guard to stop at), as
    # Python's spawn start method does not: its functions are not found.


def _next():
    """The next batch; None once the worker serves no more."""
    n, (buf,) = call('task_next', Buf(_CAP))
    if n < 0:
        err = error('task_next', n)
        if err.errno == errno.EPIPE:
            return None
        raise err
    return buf[:n] if n <= _CAP else take(n)


def _serve():
    try:
        _import_main()
        broken = None
    except BaseException:
        broken = ("the job's main could not be imported on the worker:\n"
                  + traceback.format_exc())
    from multiprocessing.pool import serve_batch
    refs, initialized = {}, set()
    while True:
        request = _next()
        if request is None:
            return
        if broken is not None:
            _hand_back('task_error', broken.encode())
            continue
        try:
            reply = serve_batch(request, refs, initialized)
        except Exception:
            # Not its tasks' exceptions, which are their results: the batch
            # could not be read, or the initializer failed. A task's
            # SystemExit ends the interpreter, and its batch's tasks are
            # lost, as a local worker's are.
            _hand_back('task_error', traceback.format_exc().encode())
            continue
        _hand_back('task_return', reply)


def _hand_back(how, data):
    # The batch's output goes out before its result.
    sys.stdout.flush()
    sys.stderr.flush()
    check(how, Buf(data))


_serve()
