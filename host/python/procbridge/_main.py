"""Runs what `procbridge python` was given, as python3 would run it.

procbridge starts the interpreter as
`python [-u] -c "import procbridge._main" MODE ARGV0 FILE PAYLOAD ARGS...`:

* `script ARGV0 FILE SOURCE`: the script's source; `sys.argv[0]` is ARGV0,
  the path as the user gave it; `__file__` and tracebacks show FILE, that
  path made absolute (as python3's do); `sys.path[0]` is its directory;
* `code -c <string> CODE`: `python3 -c CODE`;
* `module MODULE - -`: `python3 -m MODULE`.

Importing this module runs the program. An uncaught exception prints its
traceback (without this module's frames) and exits with 1, as python3 does.
"""
import sys


def _run():
    import __main__
    mode, argv0, filename, payload = sys.argv[1:5]
    sys.argv = [argv0] + sys.argv[5:]
    main = __main__.__dict__
    main.pop('procbridge', None)
    if mode == 'module':
        import runpy
        # As `python3 -m`: the working directory first on sys.path.
        sys.path[0] = ''
        runpy._run_module_as_main(argv0, alter_argv=True)
        return
    if mode == 'script':
        import linecache
        import os
        sys.path[0] = os.path.dirname(filename)
        main['__file__'] = filename
        main['__cached__'] = None
        # Tracebacks show the script's lines, as they would from the file.
        linecache.cache[filename] = (len(payload), None, payload.splitlines(True), filename)
    code = compile(payload, filename, 'exec')
    exec(code, main)


def _report(exc):
    """Prints an uncaught exception as python3 does, without our frames."""
    import traceback
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)


try:
    _run()
except SystemExit:
    raise
except BaseException as exc:
    _report(exc)
    sys.stderr.flush()
    code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    sys.exit(code)
