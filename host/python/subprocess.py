"""subprocess for CPython on WASI: granted commands run as real OS processes
by procbridge (`popen` and friends, docs/abi.md).

The standard module's API: Popen (pipes, communicate with a timeout, poll,
wait, send_signal, terminate, kill, text mode, pipelines from one Popen's
stdout to the next one's stdin), run, call, check_call, check_output,
getoutput, getstatusoutput, CompletedProcess, CalledProcessError,
TimeoutExpired. A command the policy does not grant raises PermissionError
naming the grant to add. There is no shell unless one is granted:
`shell=True` runs `sh -c`.
"""
import io
import os
import signal
import struct
import sys


from procbridge._door import Buf, I64, check, error, pack_list, take, timeout_us
from procbridge._door import call as _call
from procbridge import _door as door

_i32_at = struct.Struct('<i').unpack_from

__all__ = ['Popen', 'PIPE', 'STDOUT', 'DEVNULL', 'call', 'check_call', 'check_output',
           'run', 'getoutput', 'getstatusoutput', 'CalledProcessError',
           'TimeoutExpired', 'SubprocessError', 'CompletedProcess', 'list2cmdline']

PIPE = -1
STDOUT = -2
DEVNULL = -3

# The ABI's stdio arguments.
_INHERIT, _PIPE, _NULL, _TO_STDOUT = 0, -1, -2, -3
_ENV_INHERIT = -1
_KILL_ON_TIMEOUT = 1
_STDOUT_STREAM, _STDERR_STREAM = 1, 2
_READ_CHUNK = 65536


class SubprocessError(Exception):
    pass


class _CommandError(SubprocessError):
    """What CalledProcessError and TimeoutExpired share: `stdout` is
    another name for `output`."""

    @property
    def stdout(self):
        return self.output

    @stdout.setter
    def stdout(self, value):
        self.output = value


class CalledProcessError(_CommandError):
    def __init__(self, returncode, cmd, output=None, stderr=None):
        self.returncode = returncode
        self.cmd = cmd
        self.output = output
        self.stderr = stderr

    def __str__(self):
        if self.returncode and self.returncode < 0:
            try:
                return "Command '%s' died with %r." % (self.cmd, signal.Signals(-self.returncode))
            except ValueError:
                return "Command '%s' died with unknown signal %d." % (self.cmd, -self.returncode)
        return "Command '%s' returned non-zero exit status %d." % (self.cmd, self.returncode)


class TimeoutExpired(_CommandError):
    def __init__(self, cmd, timeout, output=None, stderr=None):
        self.cmd = cmd
        self.timeout = timeout
        self.output = output
        self.stderr = stderr

    def __str__(self):
        return "Command '%s' timed out after %s seconds" % (self.cmd, self.timeout)


class CompletedProcess:
    def __init__(self, args, returncode, stdout=None, stderr=None):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self):
        args = ['args={!r}'.format(self.args), 'returncode={!r}'.format(self.returncode)]
        if self.stdout is not None:
            args.append('stdout={!r}'.format(self.stdout))
        if self.stderr is not None:
            args.append('stderr={!r}'.format(self.stderr))
        return '{}({})'.format(type(self).__name__, ', '.join(args))

    def check_returncode(self):
        if self.returncode:
            raise CalledProcessError(self.returncode, self.args, self.stdout, self.stderr)


class _Pipe(io.RawIOBase):
    """One end of a command's pipe, as a raw stream (wrapped in a buffered
    and, in text mode, a text stream, as in CPython)."""

    def __init__(self, popen, stream):
        self._popen = popen
        self._stream = stream       # 0 stdin, 1 stdout, 2 stderr

    def readable(self):
        return self._stream != 0

    def writable(self):
        return self._stream == 0

    def readinto(self, b):
        self._popen._read_by_python = True
        ret, (data,) = _call('popen_read', self._popen._handle, self._stream,
                            Buf(min(len(b), _READ_CHUNK)), I64(-1))
        if ret < 0:
            raise error('read', ret)
        b[:ret] = data[:ret]
        return ret

    def write(self, b):
        ret, _ = _call('popen_write', self._popen._handle, Buf(bytes(b)), I64(-1))
        if ret < 0:
            raise error('write', ret)
        return ret

    def close(self):
        if not self.closed and self._stream == 0 and self._popen._handle is not None:
            _call('popen_close_stdin', self._popen._handle)
        super().close()

    def fileno(self):
        raise OSError('procbridge pipes have no file descriptor')


def _stream(raw, mode, text, encoding, errors, bufsize):
    """The file object of one end, as CPython's Popen makes it: `bufsize` 0
    is the raw stream (every write goes out at once), 1 line-buffers a
    text stream, other values are the buffer's size."""
    line_buffering = False
    if bufsize == 1:
        line_buffering = text
        bufsize = -1
    if bufsize == 0:
        stream = raw
    else:
        size = io.DEFAULT_BUFFER_SIZE if bufsize < 0 else bufsize
        stream = io.BufferedWriter(raw, size) if mode == 'w' else io.BufferedReader(raw, size)
    if not text:
        return stream
    return io.TextIOWrapper(stream, encoding=encoding or 'utf-8', errors=errors,
                            write_through=mode == 'w', line_buffering=line_buffering)


def _argv(args, shell, executable):
    if type(args) is list and not shell and not executable:
        # The usual case, without the ABC check below.
        if all(type(a) is str for a in args):
            return list(args)
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    else:
        args = list(args)
    args = [os.fsdecode(a) for a in args]
    if shell:
        args = [executable or 'sh', '-c'] + args[:1] + args[1:]
    elif executable:
        args[0] = os.fsdecode(executable)
    return args


def _command_args(args, shell, executable, env, cwd, stdin, stdout, stderr):
    """The arguments `popen` takes for a command: argv, env, cwd and the
    three stdio codes."""
    argv, env, env_len, cwd, codes = _command(args, shell, executable, env, cwd,
                                              stdin, stdout, stderr)
    return (Buf(argv), Buf(env, with_len=False), env_len, Buf(cwd)) + codes


def _command(args, shell, executable, env, cwd, stdin, stdout, stderr):
    """A command's argv and env lists, its cwd and its stdio codes, in the
    ABI's encoding."""
    argv = pack_list([a.encode() for a in _argv(args, shell, executable)])
    if env is None:
        env_list, env_len = b'', _ENV_INHERIT
    else:
        items = [('%s=%s' % (os.fsdecode(k), os.fsdecode(v))).encode() for k, v in env.items()]
        env_list = pack_list(items)
        env_len = len(env_list)
    cwd = b'' if cwd is None else os.fsencode(cwd)
    if stdin is None and stdout is None and stderr is None:
        codes = _INHERIT_ALL
    else:
        codes = (_stdio(stdin, True), _stdio(stdout, False), _stdio(stderr, False))
    return argv, env_list, env_len, cwd, codes


_INHERIT_ALL = (_INHERIT, _INHERIT, _INHERIT)


def _stdio(choice, is_stdin):
    if choice is None:
        return _INHERIT
    if choice == PIPE:
        return _PIPE
    if choice == DEVNULL:
        return _NULL
    if choice == STDOUT and not is_stdin:
        return _TO_STDOUT
    # Another command's pipe: its stdout feeds this one's stdin (a
    # pipeline), without passing through Python.
    raw = getattr(getattr(choice, 'buffer', choice), 'raw', None)
    if isinstance(raw, _Pipe) and raw._popen._handle is not None:
        return raw._popen._handle
    raise ValueError('procbridge commands take PIPE, DEVNULL, STDOUT, None or '
                     "another Popen's pipe as stdio, not %r" % (choice,))


# What call() and run() may be given for a command started, waited for and
# given back in one host call (`popen_call`); anything else takes a Popen.
_CALL_KEYWORDS = frozenset(('stdin', 'stdout', 'stderr', 'cwd', 'env', 'shell',
                            'executable', 'close_fds', 'text', 'encoding', 'errors',
                            'universal_newlines'))


def _call_at_once(popenargs, kwargs, timeout):
    """The return code of a command that reads and writes no pipe of ours,
    started, waited for (killed at the timeout, raising TimeoutExpired) and
    given back in one host call; None when the arguments need a Popen."""
    if len(popenargs) != 1:
        return None
    if kwargs:
        for key in kwargs:
            if key not in _CALL_KEYWORDS:
                return None
        g = kwargs.get
        if PIPE in (g('stdin'), g('stdout'), g('stderr')):
            return None
        command = _command(popenargs[0], g('shell', False), g('executable'), g('env'),
                           g('cwd'), g('stdin'), g('stdout'), g('stderr'))
    else:
        command = _command(popenargs[0], False, None, None, None, None, None, None)
    ret, code = _popen_call(command, timeout_us(True, timeout))
    if ret < 0:
        if -ret == 110:
            raise TimeoutExpired(popenargs[0], timeout)
        raise error('popen', ret)
    return code


_CALL_HEAD = door.head('popen_call', 9)
_call_tail = struct.Struct('<cicicicqcI4x').pack


def _popen_call(command, timeout):
    """`popen_call` of an encoded command, its frame built in one join (the
    generic door call spends more on twelve arguments than the host does
    starting the command): its result and the return code."""
    argv, env, env_len, cwd, (stdin, stdout, stderr) = command
    frame = bytearray(b''.join((
        _CALL_HEAD, door.arg_buf(b'B', len(argv)), argv,
        door.arg_buf(b'b', len(env)), env, door.arg_i32(b'i', env_len),
        door.arg_buf(b'B', len(cwd)), cwd,
        _call_tail(b'i', stdin, b'i', stdout, b'i', stderr, b'I', timeout, b'b', 4))))
    door.write(door.fd, frame)
    return door.ret_of(frame, 4)[0], _i32_at(frame, len(frame) - 4)[0]


class Popen:
    """As subprocess.Popen, for a granted command."""

    def __init__(self, args, bufsize=-1, executable=None, stdin=None, stdout=None,
                 stderr=None, preexec_fn=None, close_fds=True, shell=False, cwd=None,
                 env=None, universal_newlines=None, startupinfo=None, creationflags=0,
                 restore_signals=True, start_new_session=False, pass_fds=(), *,
                 user=None, group=None, extra_groups=None, encoding=None, errors=None,
                 text=None, umask=-1, pipesize=-1, process_group=None):
        if preexec_fn is not None:
            raise ValueError('preexec_fn is not supported: commands start in procbridge')
        if pass_fds:
            raise ValueError('pass_fds is not supported: commands get their stdio only')
        self.args = args
        self.returncode = None
        self._handle = None
        self._text = bool(text or universal_newlines or encoding or errors)
        self._encoding = encoding
        self._errors = errors
        self._communicated = False
        self._stdin_choice = stdin
        ret, _ = _call('popen', *_command_args(args, shell, executable, env, cwd,
                                               stdin, stdout, stderr))
        if ret < 0:
            raise error('popen', ret)
        self._handle = ret
        self._pid = None
        # run() never shows its Popen: it does not ask the pid.
        self._pid_wanted = True
        self.stdin = self.stdout = self.stderr = None
        # Set once Python code read from stdout or stderr: their streams may
        # hold bytes read ahead, which communicate() must not skip.
        self._read_by_python = False
        if bufsize is None:
            bufsize = -1
        if stdin == PIPE:
            self.stdin = _stream(_Pipe(self, 0), 'w', self._text, encoding, errors, bufsize)
        if stdout == PIPE:
            self.stdout = _stream(_Pipe(self, 1), 'r', self._text, encoding, errors, bufsize)
        if stderr == PIPE:
            self.stderr = _stream(_Pipe(self, 2), 'r', self._text, encoding, errors, bufsize)

    def poll(self):
        if self.returncode is None and self._handle is not None:
            ret, (code,) = _call('popen_poll', self._handle, Buf(4, with_len=False))
            if ret < 0:
                raise error('poll', ret)
            if ret == 1:
                self.returncode = struct.unpack('<i', code)[0]
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is not None:
            return self.returncode
        ret, (code,) = _call('popen_wait', self._handle, timeout_us(True, timeout),
                            Buf(4, with_len=False))
        if ret < 0:
            if -ret == 110:
                raise TimeoutExpired(self.args, timeout)
            raise error('wait', ret)
        self.returncode = struct.unpack('<i', code)[0]
        return self.returncode

    def communicate(self, input=None, timeout=None):
        if self._communicated and input:
            raise ValueError('Cannot send input after starting communication')
        if input is not None and self._stdin_choice != PIPE:
            raise ValueError('stdin is not a pipe')
        data = b'' if input is None else (input.encode(self._encoding or 'utf-8', self._errors or 'strict')
                                          if isinstance(input, str) else bytes(input))
        if self.stdin is not None:
            # What Python code wrote to stdin so far goes first.
            self.stdin.flush()
        if self._read_by_python:
            return self._communicate_through_streams(data)
        self._communicated = True
        ret, (_, head) = _call('popen_communicate', self._handle, Buf(data),
                               timeout_us(True, timeout), 0, Buf(8, with_len=False))
        if ret < 0:
            if -ret == 110:
                raise TimeoutExpired(self.args, timeout)
            raise error('communicate', ret)
        out_len, code = struct.unpack('<ii', head)
        both = take(ret) if ret else b''
        self.returncode = code
        return self._results(both, out_len)

    def _communicate_through_streams(self, data):
        """communicate() once Python code has read from stdout or stderr:
        what their streams read ahead comes first, so the rest is read
        through them too (stdout to its end, then stderr), then the command
        is waited for. (The host's communicate reads both at once, from the
        pipes: it would skip what the streams hold.)"""
        self._communicated = True
        if self.stdin is not None and not self.stdin.closed:
            if data:
                try:
                    self.stdin.write(data.decode(self._encoding or 'utf-8', self._errors or 'strict')
                                     if self._text else data)
                except BrokenPipeError:
                    pass
            try:
                self.stdin.close()
            except BrokenPipeError:
                pass
        out = self.stdout.read() if self.stdout is not None else None
        err = self.stderr.read() if self.stderr is not None else None
        self.wait()
        return out, err

    def _results(self, both, out_len):
        out, err = both[:out_len], both[out_len:]
        if self._text:
            # Universal newlines, as a text stream reads them.
            enc, errs = self._encoding or 'utf-8', self._errors or 'strict'
            out = out.decode(enc, errs).replace('\r\n', '\n').replace('\r', '\n')
            err = err.decode(enc, errs).replace('\r\n', '\n').replace('\r', '\n')
        return (out if self.stdout is not None else None,
                err if self.stderr is not None else None)

    def _take_output(self):
        """What a timed-out communicate collected (for TimeoutExpired)."""
        ret, (head,) = _call('popen_take_output', self._handle, Buf(4, with_len=False))
        if ret <= 0:
            return None, None
        out_len = struct.unpack('<i', head)[0]
        return self._results(take(ret), out_len)

    def send_signal(self, sig):
        if self.returncode is None and self._handle is not None:
            check('popen_send_signal', self._handle, int(sig))

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for stream in (self.stdout, self.stderr, self.stdin):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.wait()
        self._close()

    @property
    def pid(self):
        """The command's process id (asked of the host once, when first
        wanted; kept after the handle is given back)."""
        if self._pid is None and self._handle is not None:
            self._pid = check('popen_pid', self._handle)[0]
        return self._pid

    def _close(self):
        """Gives the handle back (the command has ended)."""
        if self._handle is not None:
            if self._pid_wanted:
                self.pid
            handle, self._handle = self._handle, None
            _call('popen_close', handle)

    def __del__(self):
        # As in CPython, a command still running when its Popen goes away
        # keeps running (procbridge reaps it when the guest ends).
        try:
            if self._handle is not None and self.poll() is not None:
                self._close()
        except Exception:
            pass

    def __repr__(self):
        return '<%s: returncode: %s args: %r>' % (type(self).__name__, self.returncode, self.args)


def run(*popenargs, input=None, capture_output=False, timeout=None, check=False, **kwargs):
    if input is None and not capture_output:
        retcode = _call_at_once(popenargs, kwargs, timeout)
        if retcode is not None:
            args = popenargs[0]
            if check and retcode:
                raise CalledProcessError(retcode, args)
            return CompletedProcess(args, retcode)
    if input is not None:
        if kwargs.get('stdin') is not None:
            raise ValueError('stdin and input arguments may not both be used.')
        kwargs['stdin'] = PIPE
    if capture_output:
        if kwargs.get('stdout') is not None or kwargs.get('stderr') is not None:
            raise ValueError('stdout and stderr arguments may not be used with capture_output.')
        kwargs['stdout'] = PIPE
        kwargs['stderr'] = PIPE
    with Popen(*popenargs, **kwargs) as process:
        data = b'' if input is None else input
        try:
            if isinstance(data, str):
                data = data.encode(process._encoding or 'utf-8')
            ret, (_, head) = _call('popen_communicate', process._handle, Buf(data),
                                 timeout_us(True, timeout), _KILL_ON_TIMEOUT,
                                 Buf(8, with_len=False))
            if ret < 0:
                if -ret == 110:
                    out, err = process._take_output()
                    process.wait()
                    raise TimeoutExpired(process.args, timeout, output=out, stderr=err)
                raise error('communicate', ret)
            out_len, process.returncode = struct.unpack('<ii', head)
            stdout, stderr = process._results(take(ret) if ret else b'', out_len)
        finally:
            process.stdout = process.stderr = process.stdin = None
    retcode = process.returncode
    if check and retcode:
        raise CalledProcessError(retcode, process.args, output=stdout, stderr=stderr)
    return CompletedProcess(process.args, retcode, stdout, stderr)


def call(*popenargs, timeout=None, **kwargs):
    retcode = _call_at_once(popenargs, kwargs, timeout)
    if retcode is not None:
        return retcode
    with Popen(*popenargs, **kwargs) as p:
        p._pid_wanted = False
        try:
            return p.wait(timeout=timeout)
        except BaseException:
            p.kill()
            raise


def check_call(*popenargs, **kwargs):
    retcode = call(*popenargs, **kwargs)
    if retcode:
        cmd = kwargs.get('args')
        if cmd is None:
            cmd = popenargs[0]
        raise CalledProcessError(retcode, cmd)
    return 0


def check_output(*popenargs, timeout=None, **kwargs):
    if 'stdout' in kwargs:
        raise ValueError('stdout argument not allowed, it will be overridden.')
    if 'input' in kwargs and kwargs['input'] is None:
        kwargs['input'] = '' if kwargs.get('text') or kwargs.get('universal_newlines') else b''
    return run(*popenargs, stdout=PIPE, timeout=timeout, check=True, **kwargs).stdout


def getstatusoutput(cmd, *, encoding=None, errors=None):
    try:
        data = check_output(cmd, shell=True, text=True, stderr=STDOUT,
                            encoding=encoding, errors=errors)
        exitcode = 0
    except CalledProcessError as ex:
        data = ex.output
        exitcode = ex.returncode
    if data[-1:] == '\n':
        data = data[:-1]
    return exitcode, data


def getoutput(cmd, *, encoding=None, errors=None):
    return getstatusoutput(cmd, encoding=encoding, errors=errors)[1]


def list2cmdline(seq):
    import shlex
    return ' '.join(shlex.quote(arg) for arg in seq)



