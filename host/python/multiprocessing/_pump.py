"""Keeps pools going while the script waits on something else.

This interpreter has no threads: a Pool hands out its tasks and collects
their results inside its own calls. A script that submits tasks and then
waits on something else (a Queue the tasks fill, a Pipe, a Process) would
wait forever for the tasks the pool still holds back. So while a pool has
work out, the waits of Queue, Connection and Process, and `time.sleep`,
wait in slices of a few milliseconds and let the pools hand out tasks,
collect results and run callbacks in between, which Python's pool does in
its helper threads. With no pool at work they wait as before, in one call.
"""
import os
import time
import weakref

# The pools of this process (a fork child starts with none).
_pools = weakref.WeakSet()

# The longest one slice of a wait.
_SLICE = 0.005

_pumping = False

# Whether a pool of this process may be alive: what waits check before they
# call busy() (a WeakSet's length is Python code, which the hottest waits,
# a Queue's put and get, would pay on every message).
active = False


def register(pool):
    global active
    _pools.add(pool)
    active = True


def _forget():
    global active
    _pools.clear()
    active = False


os.register_at_fork(after_in_child=_forget)


def busy():
    """Whether a pool of this process holds tasks back or has tasks out."""
    global active
    if not active:
        return False
    if not _pools:
        active = False
        return False
    for pool in list(_pools):
        if pool._outstanding():
            return True
    return False


def pump():
    """Lets every pool at work hand out tasks and collect results (not from
    inside a callback the pools run)."""
    global _pumping
    if _pumping or not _pools:
        return
    _pumping = True
    try:
        for pool in list(_pools):
            if pool._outstanding():
                pool._pump()
    finally:
        _pumping = False


_plain_sleep = time.sleep


def sleep(secs):
    """time.sleep, pumping the pools at work while it sleeps (a script
    that sleeps until its callbacks have run)."""
    if secs > 0 and busy():
        deadline = time.monotonic() + secs
        while busy():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            _plain_sleep(min(_SLICE, left))
            pump()
        left = deadline - time.monotonic()
        if left > 0:
            _plain_sleep(left)
        return
    _plain_sleep(secs)


sleep.__doc__ = _plain_sleep.__doc__
time.sleep = sleep


def wait(attempt, timeout, nothing):
    """What `attempt(seconds)` gives: it waits at most that long (None:
    forever) and raises `nothing` when nothing came. While pools are at
    work it is called in slices, the pools pumped in between; once they are
    not, or always when none is, the rest of `timeout` goes in one call.
    Raises `nothing` when `timeout` passes."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
    while busy():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            return attempt(_SLICE if left is None else min(_SLICE, left))
        except nothing:
            pass
        pump()
    left = None if deadline is None else max(deadline - time.monotonic(), 0)
    return attempt(left)
