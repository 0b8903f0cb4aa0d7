"""The door into procbridge's host functions.

A call is one frame written to the door (`/dev/procbridge/door`); the host
answers in place (layout in host/src/python/frame.rs):

    b"PBD1", i32 return value, u8 name length, name, u8 argument count,
    then per argument a tag and its value:
    b"i" i32 | b"I" i64 | b"b" u32 len + bytes (passes the address)
    | b"B" u32 len + bytes (passes the address and the length)
    | b"R" (the frame's rest, after the last argument: address and length)
"""
import errno as _errno
import os as _os
import struct as _struct

# The door, and the two calls every frame takes (the hot paths of
# multiprocessing.queues and .connection use them directly).
fd = _os.open('/dev/procbridge/door', _os.O_RDWR)

_i32 = _struct.Struct('<i')
_u32 = _struct.Struct('<I')
_i64 = _struct.Struct('<q')


class I64(int):
    """An argument passed as an i64 (timeouts)."""
    __slots__ = ()


class Buf:
    """A buffer in the frame: its address is passed (with its length, as
    two arguments, when `with_len`). `data` is bytes to send, or an int: that
    many zero bytes for the host to fill."""
    __slots__ = ('data', 'with_len')

    def __init__(self, data, with_len=True):
        self.data = bytes(data) if isinstance(data, int) else data
        self.with_len = with_len


_heads = {}
_arg_i32 = _struct.Struct('<ci').pack
_arg_i64 = _struct.Struct('<cq').pack
_arg_buf = _struct.Struct('<cI').pack
write = _os.write
ret_of = _i32.unpack_from


def _head(name, argc):
    n = name.encode()
    head = b'PBD1' + bytes(4) + bytes((len(n),)) + n + bytes((argc,))
    _heads[name, argc] = head
    return head


# A frame's pieces, for a hot path that builds its frame in one join
# (`subprocess.call`): the start for a function and its argument count,
# then per argument its tag and value.
head = _head
arg_i32 = _arg_i32
arg_i64 = _arg_i64
arg_buf = _arg_buf


def call(name, *args):
    """Calls the host function `name`; returns its i32 result and the bytes
    of every `Buf` argument as the host left them."""
    head = _heads.get((name, len(args))) or _head(name, len(args))
    if not args:
        frame = bytearray(head)
        write(fd, frame)
        return ret_of(frame, 4)[0], ()
    parts = [head]
    spans = None
    at = len(head)
    for a in args:
        t = type(a)
        if t is int:
            parts.append(_arg_i32(b'i', a))
            at += 5
        elif t is I64:
            parts.append(_arg_i64(b'I', a))
            at += 9
        else:
            data = a.data
            parts.append(_arg_buf(b'B' if a.with_len else b'b', len(data)))
            parts.append(data)
            if spans is None:
                spans = []
            spans.append((at + 5, len(data)))
            at += 5 + len(data)
    frame = bytearray(b''.join(parts))
    write(fd, frame)
    ret = ret_of(frame, 4)[0]
    if spans is None:
        return ret, ()
    return ret, [bytes(frame[o:o + n]) for o, n in spans]


def bind(name, handle, timeout=None):
    """A descriptor bound to host function `name` and `handle`, or None when
    the host has none to give: each `os.write(fd, data)` or
    `os.read(fd, cap)` of it is one call `name(handle, ptr, len[, timeout])`
    (an I64 timeout as `timeout_us` makes it; none: -1, for the functions
    that take one) — the hot path of Queue.put and .get:

        os.write(fd, message)          # returns the function's result
        message = os.read(fd, cap)     # its first `result` bytes

    A failed call raises OSError (its message: the same call in a frame);
    a result longer than `cap` raises OSError(EMSGSIZE) and waits for
    `take(result_len())`.
    """
    path = '/dev/procbridge/bind/%s/%d' % (name, handle)
    if timeout is not None:
        path += '/%d' % timeout
    try:
        return _os.open(path, _os.O_RDWR)
    except OSError:
        return None


def result_len():
    """The length of the result waiting for `take`."""
    return check('result_len')[0]


def sender(name, handle, timeout=None):
    """The frame of `name(handle, ptr, len[, timeout])` without its message,
    which the caller appends (`R`: the rest of the frame) — the hot path
    of Queue.put and send_bytes:

        frame = bytearray(head + message)
        os.write(door, frame)
        ret = ret_of(frame, 4)[0]
    """
    if timeout is None:
        return _head(name, 2) + _arg_i32(b'i', handle) + b'R'
    return _head(name, 3) + _arg_i32(b'i', handle) + b'R' + _arg_i64(b'I', timeout)


def receiver(name, handle, cap, timeout):
    """The frame of `name(handle, ptr, cap, timeout)` with room for a
    message of `cap` bytes, and where the message starts — the hot path of
    Queue.get and recv_bytes:

        frame = bytearray(template)
        os.write(door, frame)
        ret = ret_of(frame, 4)[0]     # the message is frame[start:start + ret]
    """
    head = _head(name, 3) + _arg_i32(b'i', handle) + _arg_buf(b'B', cap)
    return head + bytes(cap) + _arg_i64(b'I', timeout), len(head)


# The ABI's codes are Linux errno numbers; this interpreter's errno module
# numbers them its own way (WASI's).
_LINUX = {1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 4: 'EINTR', 5: 'EIO', 7: 'E2BIG',
          8: 'ENOEXEC', 9: 'EBADF', 10: 'ECHILD', 11: 'EAGAIN', 12: 'ENOMEM',
          14: 'EFAULT', 22: 'EINVAL', 24: 'EMFILE', 32: 'EPIPE', 38: 'ENOSYS',
          105: 'ENOBUFS', 110: 'ETIMEDOUT', 130: 'EOWNERDEAD'}


def errno_of(ret):
    """This interpreter's errno for a negative ABI return value."""
    return getattr(_errno, _LINUX.get(-ret, ''), -ret)


def message():
    """The host's message for the last failed call."""
    n, (text,) = call('last_error', Buf(512))
    if n > 512:
        n, (text,) = call('last_error', Buf(n))
    return text[:max(n, 0)].decode('utf-8', 'replace')


def error(what, ret):
    """The OSError (a PermissionError for EPERM, ...) for a failed call."""
    return OSError(errno_of(ret), '%s: %s' % (what, message()))


def check(name, *args):
    """`call`, raising OSError on failure."""
    ret, bufs = call(name, *args)
    if ret < 0:
        raise error(name, ret)
    return ret, bufs


def take(n):
    """The result waiting for `take_result`, `n` bytes."""
    return check('take_result', Buf(n))[1][0]


def pack_list(items):
    """The ABI's list encoding: each item a u32 length and its bytes."""
    out = bytearray()
    for item in items:
        out += _u32.pack(len(item))
        out += item
    return bytes(out)


def timeout_us(block=True, timeout=None):
    """The ABI's timeout: -1 waits forever, 0 does not wait."""
    if not block:
        return I64(0)
    if timeout is None:
        return I64(-1)
    if timeout <= 0:
        # As multiprocessing's and subprocess's own waits: a deadline that
        # has passed (`deadline - time.monotonic()`) is a look, not an error.
        return I64(0)
    return I64(int(timeout * 1e6 + 0.999))
