//! Python jobs on the cluster: `procbridge python --nats URL job.py`, whose
//! `multiprocessing.Pool` tasks run in the workers' own interpreters
//! (`tests/cluster/python/pool_job.py`).

use super::*;

fn pool_job() -> String {
    root()
        .join("tests/cluster/python/pool_job.py")
        .display()
        .to_string()
}

/// `procbridge python [--nats URL] FLAGS pool_job.py ARGS`.
fn python_job(server: Option<&Server>, flags: &[&str], args: &[&str]) -> Output {
    let mut cmd = procbridge();
    cmd.arg("python").env_remove("PYTHONUNBUFFERED");
    if let Some(server) = server {
        cmd.args(["--nats", &server.url()]);
    }
    cmd.args(flags).arg(pool_job()).args(args);
    let output = cmd.output().expect("run procbridge python");
    assert!(
        output.status.success(),
        "{args:?}: {:?}\n{}\n{}",
        output.status,
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn python_pools_give_the_results_errors_and_callbacks_of_the_local_run() {
    let _serial = serial();
    let server = Server::start();
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&server, &[])).collect();
    let local = stdout(&python_job(None, &[], &["results"]));
    let remote = stdout(&python_job(Some(&server), &[], &["results"]));
    assert_eq!(remote, local);
    for expected in [
        "map [0, 1, 4, 9, 16, 25,",
        "chunks [9409, 9604, 9801]",
        "raised Refused no 3",
        "raised TypeError can't multiply sequence",
        "callback [[0, 1, 4, 9]]",
        "initializer ['ready']",
    ] {
        assert!(local.contains(expected), "{expected}: {local}");
    }
    let chunks: Vec<String> = workers.iter().flat_map(Worker::chunks_run).collect();
    assert!(chunks.len() >= 20, "{} chunks ran remotely", chunks.len());
    assert!(
        chunks.iter().all(|c| c.contains("\"target\":\"python\"")),
        "{chunks:?}"
    );
}

#[test]
fn python_tasks_run_in_the_workers_and_their_output_reaches_the_job() {
    let _serial = serial();
    let server = Server::start();
    let workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let pids = stdout(&python_job(Some(&server), &[], &["pids"]));
    assert_eq!(pids, "ran elsewhere\n");
    let busy: Vec<&Worker> = workers
        .iter()
        .filter(|w| !w.chunks_run().is_empty())
        .collect();
    assert!(!busy.is_empty());

    let output = python_job(Some(&server), &[], &["output"]);
    let out = stdout(&output);
    let err = String::from_utf8_lossy(&output.stderr);
    for task in 0..3 {
        assert!(out.contains(&format!("line from task {task}\n")), "{out}");
        assert!(err.contains(&format!("err from task {task}\n")), "{err}");
    }
    assert!(out.ends_with("returned [0, 1, 2]\n"), "{out}");
}

/// What a remote task prints reaches the job before its result does, as
/// a local worker's writes do: a job that prints each result as it comes
/// (and a pool that ends right after) loses none of them and gets them in
/// order.
#[test]
fn a_remote_task_s_output_reaches_the_job_before_its_result() {
    const TASKS: usize = 10;
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &[]);
    let output = python_job(Some(&server), &[], &["ordered"]);
    let out = stdout(&output);
    let err = String::from_utf8_lossy(&output.stderr);
    let mut expected = Vec::new();
    for task in 0..TASKS {
        expected.extend((0..100).map(|line| format!("task {task} line {line}")));
        expected.push(format!("returned {task}"));
    }
    let lines: Vec<&str> = out.lines().collect();
    let first_amiss = lines.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        first_amiss.is_none() && lines.len() == expected.len(),
        "line {first_amiss:?} of {} is amiss: {:?}",
        lines.len(),
        first_amiss.map(|at| &lines[at.saturating_sub(2)..(at + 3).min(lines.len())])
    );
    for task in 0..TASKS {
        assert!(err.contains(&format!("task {task} err\n")), "{err}");
    }
}

#[test]
fn the_seed_pool_story_in_python_runs_on_the_cluster() {
    let _serial = serial();
    let server = Server::start();
    let _workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let output = procbridge()
        .args(["python", "--nats", &server.url()])
        .arg(root().join("examples/python/pool_story.py"))
        .output()
        .expect("run");
    assert_the_pool_story(&output);
}

#[test]
fn a_python_task_that_ends_its_interpreter_is_worker_lost_and_the_pool_goes_on() {
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &[]);
    let remote = stdout(&python_job(Some(&server), &[], &["lost"]));
    assert_eq!(remote, "lost die\nlost leave\nthen 25\n");
    assert_eq!(stdout(&python_job(None, &[], &["lost"])), remote);
}

/// A wall time stops wasm code, not a task blocked in a host call (a
/// sleep): the worker gives such an instance up rather than wait for it.
#[test]
fn a_python_task_stuck_past_the_worker_s_wall_time_is_worker_lost() {
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &["--wall-time", "1"]);
    // The interpreter compiled (on a first run) before the clock starts.
    python_job(Some(&server), &[], &["slow", "0"]);
    let started = Instant::now();
    assert_eq!(
        stdout(&python_job(Some(&server), &[], &["stuck"])),
        "lost\n"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn python_tasks_see_the_job_s_arguments_and_bad_pools_fail_clearly() {
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &[]);
    let args = ["argv", "one", "", "three four"];
    let local = stdout(&python_job(None, &[], &args));
    assert_eq!(local, "argv ['argv', 'one', '', 'three four']\n");
    assert_eq!(stdout(&python_job(Some(&server), &[], &args)), local);
    // A batch over the server's message limit (1 MiB by default) is
    // refused with what it is, not lost.
    assert_eq!(stdout(&python_job(None, &[], &["big"])), "big 2000000\n");
    assert_eq!(
        stdout(&python_job(Some(&server), &[], &["big"])),
        "too big: True\n"
    );
    // An initializer that cannot travel is refused when the pool is made.
    assert_eq!(stdout(&python_job(None, &[], &["lambda"])), "made\n");
    let remote = stdout(&python_job(Some(&server), &[], &["lambda"]));
    assert!(remote.starts_with("refused "), "{remote}");
}

#[test]
fn a_python_task_gets_no_more_than_both_the_job_and_the_worker_hold() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret"), "the secret\n").expect("write");
    let secret = dir.path().join("secret").display().to_string();
    let grant = format!("{}", dir.path().display());
    let server = Server::start();

    // Both hold it: the task reads it.
    let worker = Worker::start(&server, &["--dir-ro", &grant]);
    let both = python_job(Some(&server), &["--dir-ro", &grant], &["read", &secret]);
    assert_eq!(stdout(&both), "read the secret\n");
    // The job holds it, the worker does not.
    drop(worker);
    let _worker = Worker::start(&server, &[]);
    let worker_lacks = python_job(Some(&server), &["--dir-ro", &grant], &["read", &secret]);
    // As a local job without the grant: the file is not there for it.
    assert_eq!(stdout(&worker_lacks), "read FileNotFoundError\n");
    // The worker would hold it, the job does not.
    drop(_worker);
    let _worker = Worker::start(&server, &["--dir-ro", &grant]);
    let job_lacks = python_job(Some(&server), &[], &["read", &secret]);
    assert_eq!(stdout(&job_lacks), "read FileNotFoundError\n");
    let local = python_job(None, &[], &["read", &secret]);
    assert_eq!(stdout(&local), "read FileNotFoundError\n");
}

#[test]
fn a_python_task_of_a_killed_worker_runs_again_on_another() {
    let _serial = serial();
    let server = Server::start();
    // One worker first, so the interpreter is compiled before the clock
    // that matters starts.
    let mut first = Worker::start(&server, &[]);
    python_job(Some(&server), &[], &["slow", "0"]);
    first.kill();
    let mut workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let job = procbridge()
        .args(["python", "--nats", &server.url()])
        .arg(pool_job())
        .args(["slow", "2", "0.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the job");
    let busy = kill_the_first_busy_worker(&mut workers);
    let output = job.wait_with_output().expect("wait for the job");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "started\nslow [2.0, 0.5]\n");
    assert!(!workers[1 - busy].chunks_run().is_empty());
}

#[test]
fn python_without_nats_or_a_pool_on_the_cluster_is_refused_a_cluster_call() {
    // `cluster_call` from a job that has no cluster says so.
    let output = procbridge()
        .args(["python", "-c"])
        .arg(
            "from procbridge._door import Buf, call, message\n\
             ret, _ = call('cluster_call', Buf(b'python'), Buf(b'x'))\n\
             print(ret, message())\n\
             ret, _ = call('task_next', Buf(16))\n\
             print(ret, message())",
        )
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "-38 this job's pools do not run on a cluster (run it with --nats)\n\
         -22 this process serves no calls\n"
    );
}

#[test]
fn a_script_the_worker_cannot_import_fails_every_task_with_the_import_s_traceback() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("reads_itself.py");
    std::fs::write(
        &script,
        "from multiprocessing import Pool\n\
         SOURCE = open(__file__).read()  # its directory is granted here only\n\
         def same(x):\n    return x\n\
         if __name__ == '__main__':\n\
         \x20   with Pool(1) as p:\n\
         \x20       try:\n\
         \x20           print(p.apply(same, (1,)))\n\
         \x20       except OSError as e:\n\
         \x20           print('failed', 'could not be imported on the worker' in str(e),\n\
         \x20                 'FileNotFoundError' in str(e))\n",
    )
    .expect("write");
    let server = Server::start();
    let _worker = Worker::start(&server, &[]);
    let grant = dir.path().display().to_string();
    let run = |nats: bool| {
        let mut cmd = procbridge();
        cmd.arg("python");
        if nats {
            cmd.args(["--nats", &server.url()]);
        }
        let output = cmd
            .args(["--dir-ro", &grant])
            .arg(&script)
            .output()
            .expect("run");
        assert!(output.status.success(), "{output:?}");
        stdout(&output)
    };
    assert_eq!(run(false), "1\n");
    assert_eq!(run(true), "failed True True\n");
}

#[test]
fn a_python_job_s_queues_live_in_jetstream_between_its_processes() {
    let _serial = serial();
    let server = Server::start();
    let code = "\
import sys
from multiprocessing import Process, Queue, JoinableQueue
def produce(q, n):
    for i in range(n):
        q.put(('item', i))
q, done = Queue(), JoinableQueue()
print('made', flush=True)
sys.stdin.readline()
p = Process(target=produce, args=(q, 5))
p.start()
print([q.get() for _ in range(5)])
p.join()
done.put('work')
print(done.get())
done.task_done()
done.join()
print('joined', p.exitcode)
";
    let mut job = procbridge()
        .args(["python", "--nats", &server.url(), "-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the job");
    let (mut out, line) = first_line(&mut job);
    assert_eq!(line, "made\n");
    // Each queue's messages, and its control stream.
    assert_eq!(
        queue_streams(&server).len(),
        4,
        "{:?}",
        queue_streams(&server)
    );
    use std::io::{Read, Write};
    job.stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("write");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    let (status, err) = stderr_and_status(&mut job);
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(
        rest,
        "[('item', 0), ('item', 1), ('item', 2), ('item', 3), ('item', 4)]\nwork\njoined 0\n"
    );
    // The job's queues go with it.
    assert!(queue_streams(&server).is_empty());
}

/// `-c` code has no `__main__` guard: the workers do not run it again (as
/// Python's spawn does not), and its pool's tasks may still be functions
/// found by name elsewhere.
#[test]
fn a_python_job_given_as_code_runs_once() {
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &[]);
    let output = procbridge()
        .args(["python", "--nats", &server.url(), "-c"])
        .arg(
            "from multiprocessing import Pool\n\
             print('start', flush=True)\n\
             with Pool(2) as p:\n\
             \x20   print(p.map(abs, [-1, -2, 3]))",
        )
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "start\n[1, 2, 3]\n");
}
