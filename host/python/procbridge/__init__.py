"""procbridge's Python library: os.fork, multiprocessing and subprocess for
CPython on WASI, carried out by procbridge with real OS processes.

Every process call goes through the door (`_door.call`): a call of one of
procbridge's host functions (docs/abi.md), the very functions a Rust guest
imports, under the same policy. Nothing here grants anything.

* `_door`  the door, error mapping, the ABI's list encoding
* `_os`    os.fork, getppid, waitpid, kill, register_at_fork, W* (installed
           into `os` at start-up by sitecustomize)
* `_locks` `_at_fork_reinit` for locks, which WASI builds lack
* `_main`  runs the script, `-c` code or `-m` module as python3 does
"""
