"""The ``cluster`` scenario's runner: one bench guest run with its pool
local, then through a NATS server with 1, 2 and 3 ``procbridge worker``s
on this machine.

The guest prints ``BENCH cluster_map_task_us``; the runner reports it as
``cluster_map_local_task_us`` and ``cluster_map_<n>w_task_us``. Then the
guest's ``queue-bench`` mode runs locally and through the server (no
workers: a queue needs none), and its ``cluster_queue_put_msg_s`` and
``cluster_queue_get_msg_s`` are reported with ``_local`` or ``_nats`` in
their names. The NATS
server is the one ``tests/install-nats-server`` installs (or
``$PROCBRIDGE_NATS_SERVER``, or ``nats-server`` in ``PATH``); without one the
procbridge side fails with a note saying so.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .measure import ProgramFailed, run_bench_program

#: The key the guest prints.
GUEST_KEY = "cluster_map_task_us"
#: How many workers each round has.
WORKER_COUNTS = (1, 2, 3)
_NATS_VERSION = "2.15.1"


def nats_server():
    """The ``nats-server`` to start, or None."""
    named = os.environ.get("PROCBRIDGE_NATS_SERVER")
    if named:
        return named
    data = os.environ.get("PROCBRIDGE_DATA_DIR")
    if not data:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        data = str(Path(xdg) / "procbridge")
    installed = Path(data) / "nats-server" / _NATS_VERSION / "nats-server"
    if installed.is_file():
        return str(installed)
    return shutil.which("nats-server")


def with_nats(argv, url):
    """``procbridge run ...`` with ``--nats URL`` after ``run``."""
    at = argv.index("run") + 1
    return [*argv[:at], "--nats", url, *argv[at:]]


def queue_bench(argv):
    """The same run in the guest's ``queue-bench`` mode."""
    at = next(i for i, arg in enumerate(argv) if arg.endswith(".wasm")) + 1
    return [*argv[:at], "queue-bench", *(["--quick"] if "--quick" in argv[at:] else [])]


def _queue_figures(measured, where):
    return {
        f"cluster_queue_{side}_{where}_msg_s": measured[f"cluster_queue_{side}_msg_s"]
        for side in ("put", "get")
    }


def worker_command(argv, url):
    """``procbridge worker`` with the run's cache directory."""
    command = [argv[0], "worker", "--nats", url]
    if "--cache-dir" in argv:
        at = argv.index("--cache-dir")
        command += argv[at : at + 2]
    return command


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProgramFailed(f"nats-server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise ProgramFailed("nats-server did not start")


@contextmanager
def _stopped_at_exit(proc):
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@contextmanager
def nats(binary):
    """A NATS server with JetStream on a free port; yields its URL."""
    with tempfile.TemporaryDirectory() as store:
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with _stopped_at_exit(proc):
            _wait_for_port(port, proc)
            yield f"nats://127.0.0.1:{port}"


def _start_worker(command):
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    line = proc.stderr.readline()
    if "taking tasks" not in line:
        proc.kill()
        proc.wait()
        raise ProgramFailed(f"procbridge worker said {line.strip()!r}")
    # Nothing reads the rest: the workers say nothing more unless a task
    # fails, and they are stopped after each round.
    return proc


def run_cluster_program(argv, cwd=None):
    """Runs the bench guest ``argv`` (``procbridge run ...``) locally and
    with 1, 2 and 3 workers; returns the time per task of each."""
    binary = nats_server()
    if binary is None:
        raise ProgramFailed(
            "no nats-server (install it with tests/install-nats-server)"
        )
    values = {"cluster_map_local_task_us": run_bench_program(argv, cwd)[GUEST_KEY]}
    with nats(binary) as url:
        for count in WORKER_COUNTS:
            with ExitStack() as workers:
                for _ in range(count):
                    workers.enter_context(
                        _stopped_at_exit(_start_worker(worker_command(argv, url)))
                    )
                measured = run_bench_program(with_nats(argv, url), cwd)
            values[f"cluster_map_{count}w_task_us"] = measured[GUEST_KEY]
        queues = queue_bench(argv)
        values.update(_queue_figures(run_bench_program(queues, cwd), "local"))
        values.update(_queue_figures(run_bench_program(with_nats(queues, url), cwd), "nats"))
    return values
