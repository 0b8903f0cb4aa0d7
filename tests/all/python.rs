//! Python guests: real Python programs under `procbridge python`, compared
//! with `python3` running the same file. Needs the interpreter installed by
//! `guests/install-python` (the README's set-up command).

use crate::support::*;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn examples() -> PathBuf {
    root().join("examples/python")
}

/// The commands the examples run.
const GRANTS: &[&str] = &[
    "--allow-run",
    "echo",
    "--allow-run",
    "sort",
    "--allow-run",
    "sh",
    "--allow-run",
    "wc",
    "--allow-run",
    "sleep",
];

/// `procbridge python ARGS` (Python's own buffering: PYTHONUNBUFFERED is
/// removed from both sides' environments).
fn procbridge_python(args: &[&str]) -> Output {
    procbridge()
        .arg("python")
        .args(args)
        .env_remove("PYTHONUNBUFFERED")
        .stdin(Stdio::null())
        .output()
        .expect("run procbridge python")
}

fn python3(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .env_remove("PYTHONUNBUFFERED")
        .stdin(Stdio::null())
        .output()
        .expect("run python3")
}

/// Output with what differs by nature masked: numbers (pids, durations)
/// and where the standard library lives.
fn normalize(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let line = match (line.find("File \""), line.find("multiprocessing/")) {
                (Some(start), Some(lib)) if lib > start => {
                    format!("{}File \"<lib>/{}", &line[..start], &line[lib..])
                }
                _ => line.to_string(),
            };
            let mut out = String::new();
            let mut in_number = false;
            for c in line.chars() {
                if c.is_ascii_digit() {
                    if !in_number {
                        out.push('N');
                    }
                    in_number = true;
                } else {
                    in_number = false;
                    out.push(c);
                }
            }
            out
        })
        .collect()
}

/// Runs one example under both and compares: line by line, or as sorted
/// lines where processes interleave by nature.
fn compare(example: &str, interleaved: bool) {
    let path = examples().join(example);
    let path = path.to_str().unwrap();
    let mut args = GRANTS.to_vec();
    args.push(path);
    let ours = procbridge_python(&args);
    let theirs = python3(&[path]);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{example}: exit codes\n{}",
        stderr(&ours)
    );
    for (what, a, b) in [
        ("stdout", stdout(&ours), stdout(&theirs)),
        ("stderr", stderr(&ours), stderr(&theirs)),
    ] {
        let (mut a, mut b) = (normalize(&a), normalize(&b));
        if interleaved {
            a.sort();
            b.sort();
        }
        assert_eq!(a, b, "{example}: {what} differs from python3's");
    }
}

#[test]
fn the_seed_stories_print_what_python3_prints() {
    compare("fork_story.py", true);
    compare("process_story.py", false);
    compare("pool_story.py", true);
    compare("queue_story.py", true);
    compare("call_story.py", false);
    compare("communicate_story.py", false);
}

#[test]
fn more_programs_print_what_python3_prints() {
    compare("pool_map.py", false);
    compare("subprocess_tour.py", false);
    compare("channels.py", false);
    compare("locks.py", false);
    // Before the waits kept pools going, the first wait timed out.
    compare("pool_while_waiting.py", false);
    // Each part differed before: a hang (bufsize), lost output (readline
    // then communicate), a lone \r, ValueError for a past deadline, EINVAL
    // for signal 0, wall time as CPU time, callbacks that never ran.
    compare("streams_and_clocks.py", false);
}

#[test]
fn exit_codes_and_tracebacks_are_python3s() {
    for code in [
        "import sys; sys.exit(5)",
        "raise ValueError('bad value')",
        "import os; print('out'); os._exit(9)",
        "def f():\n    return 1 / 0\nf()",
        "import sys; print('to stderr', file=sys.stderr); sys.exit('message')",
    ] {
        let ours = procbridge_python(&["-c", code]);
        let theirs = python3(&["-c", code]);
        assert_eq!(ours.status.code(), theirs.status.code(), "{code}");
        assert_eq!(stdout(&ours), stdout(&theirs), "{code}");
        assert_eq!(stderr(&ours), stderr(&theirs), "{code}");
    }
    // A script's traceback shows its absolute path and its lines.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("job.py");
    std::fs::write(
        &script,
        "import sys\nprint(sys.argv)\nraise KeyError('k')\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let ours = procbridge_python(&[script, "a", "-b"]);
    let theirs = python3(&[script, "a", "-b"]);
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert_eq!(stderr(&ours), stderr(&theirs));
}

#[test]
fn code_modules_and_stdin_run_as_python3_runs_them() {
    let ours = procbridge_python(&["-m", "this"]);
    let theirs = python3(&["-m", "this"]);
    assert_eq!(stdout(&ours), stdout(&theirs));
    assert!(stdout(&ours).contains("Beautiful is better than ugly."));

    let ours = procbridge_python(&["-c", "import sys; print(sys.argv)", "x", "-y"]);
    assert_eq!(stdout(&ours), "['-c', 'x', '-y']\n");

    let mut child = procbridge()
        .args(["python", "-", "arg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"import sys\nprint('from stdin', sys.argv)\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "from stdin ['-', 'arg']\n");

    let out = procbridge_python(&["/nonexistent/job.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("can't open file '/nonexistent/job.py'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_denied_command_raises_permission_error_naming_the_grant() {
    let out = procbridge_python(&[
        "-c",
        "import subprocess\ntry:\n    subprocess.run(['sort'])\nexcept PermissionError as e:\n    print('PermissionError', e)",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("PermissionError [Errno"), "{text}");
    assert!(text.contains("add --allow-run sort"), "{text}");
}

#[test]
fn os_kill_reaches_only_the_scripts_own_children() {
    let code = "\
import os, signal, time
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
for target in (os.getppid(), 1):
    try:
        os.kill(target, signal.SIGTERM)
    except ProcessLookupError as e:
        print('refused', type(e).__name__)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print('child', os.waitstatus_to_exitcode(status), os.WIFSIGNALED(status), os.WTERMSIG(status))
";
    let out = procbridge_python(&["-c", code]);
    assert_eq!(
        stdout(&out),
        "refused ProcessLookupError\nrefused ProcessLookupError\nchild -15 True 15\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_dead_pool_worker_fails_its_task_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lost.py");
    std::fs::write(
        &script,
        "\
import os, signal, time
from multiprocessing import Pool
from multiprocessing.pool import WorkerLostError

def die(_):
    os.kill(os.getpid(), signal.SIGKILL)

def square(x):
    return x * x

if __name__ == '__main__':
    with Pool(2) as pool:
        started = time.monotonic()
        try:
            pool.apply(die, (1,))
        except WorkerLostError as e:
            print('lost:', 'died' in str(e), time.monotonic() - started < 5)
        print('still works:', pool.map(square, range(6)))
",
    )
    .unwrap();
    let out = procbridge_python(&[script.to_str().unwrap()]);
    assert_eq!(
        stdout(&out),
        "lost: True True\nstill works: [0, 1, 4, 9, 16, 25]\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_pool_hands_out_tasks_as_workers_free_up_and_survives_what_goes_wrong() {
    // Tasks a dead worker had not started run on the others; a worker that
    // reached maxtasksperchild is replaced; a task whose arguments cannot be
    // pickled fails alone; results come back in order, from every worker.
    let code = "\
import os, signal, time
from multiprocessing import Pool
from multiprocessing.pool import WorkerLostError

def slow_or_die(x):
    if x == 0:
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10

def pid(_):
    time.sleep(0.01)
    return os.getpid()

with Pool(2) as pool:
    results = [pool.apply_async(slow_or_die, (x,)) for x in range(8)]
    outcomes = []
    for r in results:
        try:
            outcomes.append(r.get(timeout=10))
        except WorkerLostError:
            outcomes.append('lost')
    print('outcomes', outcomes)
    try:
        pool.apply(pid, (lambda: 0,))
    except Exception as e:
        print('unpicklable argument:', type(e).__name__)
    print('still works', pool.map(abs, [-1, -2, -3]))

with Pool(2, maxtasksperchild=2) as pool:
    pids = pool.map(pid, range(12), chunksize=1)
    print('workers used', len(set(pids)) >= 6, 'results', len(pids))
";
    let out = procbridge_python(&["-c", code]);
    assert_eq!(
        stdout(&out),
        "outcomes ['lost', 10, 20, 30, 40, 50, 60, 70]\n\
         unpicklable argument: PicklingError\n\
         still works [1, 2, 3]\n\
         workers used True results 12\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_pool_gives_idle_workers_work_first() {
    // As many slow tasks as workers: each worker runs one, at the same
    // time (none waits behind another's task while a worker idles). Then
    // many quick tasks, sent in batches: every result arrives, in order,
    // and a slow task does not hold back the results before it.
    let code = "\
import os, time
from multiprocessing import Pool

def slow(_):
    time.sleep(0.3)
    return os.getpid()

def quick(x):
    return x + 1

with Pool(4) as pool:
    print('four workers', len(set(pool.map(slow, range(4), chunksize=1))))
    print('apply_async', len(set(r.get() for r in [pool.apply_async(slow, (0,)) for _ in range(4)])))
    print('quick', pool.map(quick, range(5000), chunksize=1) == list(range(1, 5001)))
    seen = list(pool.imap(quick, range(2000)))
    print('imap', seen == list(range(1, 2001)))
";
    let out = procbridge_python(&["-c", code]);
    assert_eq!(
        stdout(&out),
        "four workers 4\napply_async 4\nquick True\nimap True\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn quick_tasks_in_batches_fail_alone_and_a_dead_worker_fails_its_batch() {
    // Quick tasks travel in batches: a result that cannot be pickled fails
    // its own task (MaybeEncodingError) and no other; a worker killed in
    // the middle of a batch fails the map (WorkerLostError) instead of
    // hanging, and the pool goes on.
    let code = "\
import os, signal, time, threading
from multiprocessing import Pool
from multiprocessing.pool import MaybeEncodingError, WorkerLostError

def odd_lock(x):
    return threading.Lock() if x == 7 else x

def die_at(x):
    if x == 300:
        os.kill(os.getpid(), signal.SIGKILL)
    return x

with Pool(2) as pool:
    pool.map(abs, range(2000))                      # tasks are quick
    results = [pool.apply_async(odd_lock, (x,)) for x in range(20)]
    outcomes = []
    for r in results:
        try:
            outcomes.append(r.get(timeout=10))
        except MaybeEncodingError as e:
            outcomes.append('unpicklable')
    print(outcomes)
    try:
        pool.map(odd_lock, range(50), chunksize=1)
    except MaybeEncodingError as e:
        print('map:', 'Error sending result' in str(e))
    started = time.monotonic()
    try:
        pool.map(die_at, range(2000), chunksize=1)
    except WorkerLostError as e:
        print('lost:', time.monotonic() - started < 5)
    print('still works', pool.map(abs, [-1, -2, -3]))
";
    let out = procbridge_python(&["-c", code]);
    let expected = format!(
        "{:?}\nmap: True\nlost: True\nstill works [1, 2, 3]\n",
        (0..20)
            .map(|x| if x == 7 {
                "'unpicklable'".to_string()
            } else {
                x.to_string()
            })
            .collect::<Vec<_>>()
    )
    .replace('"', "");
    assert_eq!(stdout(&out), expected, "{}", stderr(&out));
}

#[test]
fn the_library_is_compiled_once_and_read_only_to_jobs() {
    // A fresh data directory: the first run writes procbridge's Python
    // library and compiles it to bytecode; jobs can read it, never write it.
    let data = tempfile::tempdir().unwrap();
    let interpreter = procbridge::python::data_dir()
        .unwrap()
        .join(procbridge::python::INTERPRETER.path);
    let code = "\
import os
import procbridge._door as door
try:
    open('/procbridge/lib/sitecustomize.py', 'a')
except OSError as e:
    print('write refused:', type(e).__name__)
print('bytecode:', os.path.exists(door.__cached__))
";
    let run = || {
        procbridge()
            .args(["python", "-c", code])
            .env("PROCBRIDGE_DATA_DIR", data.path())
            .env("PROCBRIDGE_PYTHON", &interpreter)
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(
        stdout(&out),
        "write refused: PermissionError\nbytecode: True\n",
        "{}",
        stderr(&out)
    );
    let libs: Vec<_> = std::fs::read_dir(data.path().join("python"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("lib-"))
        .collect();
    let [lib] = &libs[..] else { panic!("{libs:?}") };
    assert!(lib.join(".compiled").is_file());
    let compiled = lib.join("procbridge/__pycache__");
    let pycs = std::fs::read_dir(&compiled).unwrap().count();
    assert!(pycs >= 5, "{pycs} files in {}", compiled.display());
    // The second run finds it compiled: nothing is written.
    let before = std::fs::metadata(lib.join(".compiled"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(run().status.success());
    let after = std::fs::metadata(lib.join(".compiled"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn fork_hooks_randomness_and_the_stdlib_work_in_children() {
    let code = "\
import os, random, concurrent.futures, logging
order = []
os.register_at_fork(before=lambda: order.append('b1'), after_in_parent=lambda: order.append('p'))
os.register_at_fork(before=lambda: order.append('b2'), after_in_child=lambda: order.append('c'))
logging.basicConfig(format='%(message)s')
from multiprocessing import SimpleQueue
q = SimpleQueue()
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        logging.warning('child logs')
        q.put((random.random(), os.urandom(8), order))
        os._exit(0)
    os.waitpid(pid, 0)
got = [q.get() for _ in range(3)]
print('hooks', order[:3], got[0][2])
print('distinct', len({g[0] for g in got}), len({g[1] for g in got}))
";
    let out = procbridge_python(&["-c", code]);
    assert_eq!(
        stdout(&out),
        "hooks ['b2', 'b1', 'p'] ['b2', 'b1', 'c']\ndistinct 3 3\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "child logs\n".repeat(3));
}

#[test]
fn the_door_calls_procbridge_functions_and_nothing_else() {
    // Through the door: a procbridge function works; a WASI function, an
    // unknown name or a malformed frame does not.
    let code = "\
import os
from procbridge._door import call, Buf
print('getpid', call('getpid')[0] == os.getpid() > 0)
print('wasi', call('fd_write', 1, 0, 0, 0)[0])
print('unknown', call('no_such_function')[0])
print('wrong arguments', call('getpid', 1)[0])
fd = os.open('/dev/procbridge/door', os.O_RDWR)
for junk in (b'PBD1', b'junk' * 10, b'PBD1\\0\\0\\0'):
    try:
        os.write(fd, junk)
    except OSError as e:
        print('junk', e.errno == __import__('errno').EINVAL)
for bad in (bytes([6]) + b'getpid' + bytes([1]) + b'x', bytes(100)):
    frame = bytearray(b'PBD1' + bytes(4) + bad)
    os.write(fd, frame)
    print('malformed', int.from_bytes(frame[4:8], 'little', signed=True))
";
    let out = procbridge_python(&["-c", code]);
    assert_eq!(
        stdout(&out),
        "getpid True\nwasi -38\nunknown -38\nwrong arguments -22\njunk True\njunk True\njunk True\nmalformed -22\nmalformed -22\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_guest_that_is_not_python_has_no_door() {
    // The door's descriptor means nothing to a Rust (or any other) guest.
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "PBD1")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 4))
          (call $exit (call $w (i32.const 0x7fffff00) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
    // WASI's EBADF is 8.
    assert_eq!(run_wat(wat).unwrap(), 8);
}

#[test]
fn python_gets_the_policy_a_rust_guest_gets() {
    // No grants: no files outside, no commands; limits hold.
    let code = "\
import os, subprocess
try:
    open('/etc/passwd')
except OSError as e:
    print('no file', type(e).__name__)
try:
    subprocess.run(['true'])
except PermissionError:
    print('no command')
pids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            import time; time.sleep(5); os._exit(0)
        pids.append(pid)
except BlockingIOError as e:
    print('process limit after', len(pids))
for pid in pids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
";
    let out = procbridge_python(&["--max-processes", "3", "-c", code]);
    assert_eq!(
        stdout(&out),
        "no file FileNotFoundError\nno command\nprocess limit after 3\n",
        "{}",
        stderr(&out)
    );
}

/// `subprocess.call` and `run` without pipes take one host call
/// (`popen_call`), whose frame the module builds itself: the working
/// directory, the environment, the return code and a timeout all arrive
/// as `python3` would pass them.
#[test]
fn call_and_run_without_pipes_pass_cwd_env_and_timeouts() {
    let dir = tempfile::Builder::new()
        .prefix("pb-call")
        .tempdir()
        .unwrap();
    let grant = format!("{}::/data", dir.path().display());
    let script = "\
import subprocess, time
print('cwd', subprocess.call(['sh', '-c', 'pwd; exit 2'], cwd='/data'), flush=True)
print('env', subprocess.call(['sh', '-c', 'echo $PB_GREETING'], env={'PB_GREETING': 'hello'}), flush=True)
started = time.monotonic()
try:
    subprocess.run(['sleep', '30'], timeout=0.3)
except subprocess.TimeoutExpired as e:
    print('timeout', e.cmd, e.timeout, time.monotonic() - started < 10, flush=True)
print('after', subprocess.run(['sh', '-c', 'exit 0']).returncode, flush=True)
";
    let out = procbridge()
        .args(["python", "--allow-run", "sh", "--allow-run", "sleep"])
        .args(["--env", "PB_GREETING", "--dir", &grant, "-c", script])
        .env("PB_GREETING", "hello")
        .env_remove("PYTHONUNBUFFERED")
        .stdin(Stdio::null())
        .output()
        .expect("run procbridge python");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            "/data",
            "cwd 2",
            "hello",
            "env 0",
            "timeout ['sleep', '30'] 0.3 True",
            "after 0",
        ]
    );
}

#[test]
fn an_unbounded_queue_grows_like_pythons_up_to_the_queued_bytes_limit() {
    // 20 MiB waiting in a Queue nobody reads yet: it used to stop at 8 MiB.
    let script = "\
from multiprocessing import Queue
q = Queue()
for i in range(20):
    q.put(bytes([i]) * (1 << 20))
print('held', q.qsize(), flush=True)
print('order', all(q.get()[0] == i for i in range(20)), flush=True)
";
    let out = procbridge_python(&["-c", script]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["held 20", "order True"]
    );
    // Under a 1 MiB queued-bytes limit the same queue stops there.
    let out = under_one_mib_queued(script);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("does not fit in a queue of 1048576 bytes"),
        "{}",
        stderr(&out)
    );
    // At that limit a writer waits for the reader, as on a full queue (it
    // used to get queue.Full from an unbounded queue); put_nowait is Full.
    let script = "\
import multiprocessing as mp, queue, time
def write(q):
    for i in range(6):
        q.put(bytes([i]) * (600 << 10))
if __name__ == '__main__':
    q = mp.Queue()
    p = mp.Process(target=write, args=(q,))
    p.start()
    time.sleep(0.5)
    print('read', [q.get(timeout=10)[0] for _ in range(6)], flush=True)
    p.join()
    print('writer', p.exitcode, flush=True)
    q.put(b'x' * (600 << 10))
    try:
        q.put_nowait(b'x' * (600 << 10))
    except queue.Full:
        print('put_nowait Full', flush=True)
";
    let out = under_one_mib_queued(script);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["read [0, 1, 2, 3, 4, 5]", "writer 0", "put_nowait Full"]
    );
}

/// `procbridge python --max-queued 1 -c SCRIPT`.
fn under_one_mib_queued(script: &str) -> Output {
    procbridge()
        .args(["python", "--max-queued", "1", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("run procbridge python")
}

#[test]
fn a_fork_child_out_of_descriptors_fails_only_when_it_needs_its_runtime() {
    // The job fills its descriptor table, then forks. A child that only
    // exits needs no I/O runtime and ends as asked; one that prints needs
    // one, cannot make it, and ends with a clear error (exit code 1). The
    // host never panics and the parent goes on.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "x").unwrap();
    let code = "\
import os
fds = []
try:
    while True:
        fds.append(os.open('/data/f', os.O_RDONLY))
except OSError:
    print('full', flush=True)
quiet = os.fork()
if quiet == 0:
    os._exit(7)
print('quiet child:', os.waitpid(quiet, 0)[1] >> 8, flush=True)
loud = os.fork()
if loud == 0:
    print('child speaks', flush=True)
    os._exit(0)
print('loud child:', os.waitpid(loud, 0)[1] >> 8, flush=True)
";
    let dir = format!("{}::/data", data.path().display());
    let mut command = procbridge();
    command.args(["python", "--dir", &dir, "-c", code]);
    // SAFETY: only sets a resource limit between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        stdout(&out),
        "full\nquiet child: 7\nloud child: 1\n",
        "{err}"
    );
    assert!(
        err.contains("cannot start the I/O runtime: Too many open files"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
