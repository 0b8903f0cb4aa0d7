//! Pools beyond one machine (issue: Pool workers and Queues through NATS
//! JetStream): a NATS server and `procbridge worker`s on this machine, and
//! jobs run with `procbridge run --nats`.
//!
//! Needs `nats-server` (2.10 or later): `tests/install-nats-server`
//! installs it where these tests look (or set `PROCBRIDGE_NATS_SERVER`, or
//! have one in `PATH`).
//! Each test starts a server of its own on a free port of 127.0.0.1.

#[allow(dead_code)]
#[path = "../all/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::*;

mod python;

/// One test at a time: each starts a server and workers, and some assert
/// on timing (tasks dropped after their job ended).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A NATS server with JetStream, its store in a directory of its own.
struct Server {
    port: u16,
    store: tempfile::TempDir,
    /// Its other flags (TLS, a login).
    flags: Vec<String>,
    child: Child,
}

/// `$PROCBRIDGE_NATS_SERVER`, else the one `tests/install-nats-server`
/// installed, else `nats-server` from `PATH`.
fn nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("PROCBRIDGE_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let data = std::env::var_os("PROCBRIDGE_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("procbridge")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/procbridge"))
        });
    data.map(|d| d.join("nats-server/2.15.1/nats-server"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl Server {
    fn start() -> Server {
        Server::start_with(&[])
    }

    fn start_with(flags: &[&str]) -> Server {
        let store = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let child = Server::spawn(port, store.path(), &flags);
        Server {
            port,
            store,
            flags,
            child,
        }
    }

    fn spawn(port: u16, store: &Path, flags: &[String]) -> Child {
        let child = Command::new(nats_server())
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): install it with tests/install-nats-server",
                    nats_server().display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts it again on the same port and store.
    fn restart(&mut self, down_for: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down_for);
        self.child = Server::spawn(self.port, self.store.path(), &self.flags);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `procbridge worker`, its audit log in a directory of its own.
struct Worker {
    child: Child,
    logs: tempfile::TempDir,
}

impl Worker {
    fn start(server: &Server, flags: &[&str]) -> Worker {
        Worker::start_at(&server.url(), flags)
    }

    /// A worker of the server at `url` (which may hold a login).
    fn start_at(url: &str, flags: &[&str]) -> Worker {
        let logs = tempfile::tempdir().expect("tempdir");
        let mut child = procbridge()
            .args(["worker", "--nats", url, "--audit"])
            .arg(logs.path().join("audit.jsonl"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start procbridge worker");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr
            .read_line(&mut line)
            .expect("read the worker's stderr");
        assert!(line.contains("taking tasks from"), "worker said {line:?}");
        // Keep reading, so the worker never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Worker { child, logs }
    }

    /// The chunks of tasks it ran (its audit records of them).
    fn chunks_run(&self) -> Vec<String> {
        std::fs::read_to_string(self.logs.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"remote_task\""))
            .map(str::to_string)
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn probe() -> String {
    guest("cluster_probe").display().to_string()
}

/// `procbridge run [--nats URL] FLAGS cluster_probe.wasm ARGS`.
fn run_job(server: Option<&Server>, flags: &[&str], args: &[&str]) -> Output {
    let mut cmd = procbridge();
    cmd.arg("run");
    if let Some(server) = server {
        cmd.args(["--nats", &server.url()]);
    }
    cmd.args(flags).arg(probe()).args(args);
    let output = cmd.output().expect("run procbridge");
    assert!(
        output.status.success(),
        "{:?} {args:?}: {:?}\n{}",
        server.map(Server::url),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Starts `procbridge run --nats URL cluster_probe.wasm ARGS` with its
/// stdout and stderr piped.
fn start_job(server: &Server, args: &[&str]) -> Child {
    procbridge()
        .args(["run", "--nats", &server.url()])
        .arg(probe())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the job")
}

/// A job's stdout, and the first line of it.
fn first_line(job: &mut Child) -> (BufReader<std::process::ChildStdout>, String) {
    let mut out = BufReader::new(job.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    (out, line)
}

/// What the job prints run locally, checked to be what it prints through
/// `server` (with the same flags).
fn same_here_and_there(server: &Server, args: &[&str]) -> String {
    let local = stdout(&run_job(None, &[], args));
    let remote = stdout(&run_job(Some(server), &[], args));
    assert_eq!(remote, local, "{args:?}");
    local
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn three_workers_give_the_results_of_the_local_run() {
    let _serial = serial();
    let server = Server::start();
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&server, &[])).collect();
    let local = same_here_and_there(&server, &["map", "30"]);
    assert!(local.contains("map 0,1,4,9,16,"), "{local}");
    assert!(
        local.contains("fail Err(Task(\"failed on purpose: here\"))"),
        "{local}"
    );
    assert!(
        local.contains("trap is an error true\nexit is an error true\nafter 144"),
        "{local}"
    );
    let chunks: Vec<String> = workers.iter().flat_map(Worker::chunks_run).collect();
    // map's own chunks (15 of 2, as Python's chunksize for 30 items and 4
    // workers), 5 of 7, 5 single tasks: every one remote.
    assert!(chunks.len() >= 25, "{} chunks ran remotely", chunks.len());
    assert!(
        workers
            .iter()
            .filter(|w| !w.chunks_run().is_empty())
            .count()
            >= 2,
        "the tasks were spread over the workers"
    );
    let record = &chunks[0];
    assert!(record.contains("\"command\":\"job "), "{record}");
    assert!(record.contains("uid "), "the job's identity: {record}");
    assert!(record.contains("\"outcome\":\"module "), "{record}");
}

#[test]
fn the_seed_pool_story_runs_on_the_cluster_and_its_output_reaches_the_job() {
    let _serial = serial();
    let server = Server::start();
    let _workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let output = procbridge()
        .args(["run", "--nats", &server.url()])
        .arg(guest("pool"))
        .arg("0.1")
        .output()
        .expect("run");
    assert_the_pool_story(&output);
}

/// What the seed's pool story prints, every line of it.
fn assert_the_pool_story(output: &Output) {
    assert!(output.status.success(), "{output:?}");
    let out = stdout(output);
    assert!(out.starts_with("Parent process "), "{out}");
    for task in 0..5 {
        assert!(out.contains(&format!("Run task {task} (")), "{out}");
        assert!(out.contains(&format!("Task {task} runs ")), "{out}");
    }
    assert!(out.ends_with("All subprocesses done.\n"), "{out}");
}

/// Kills the first of `workers` to take a task; returns which it was.
fn kill_the_first_busy_worker(workers: &mut [Worker]) -> usize {
    let started = Instant::now();
    let busy = loop {
        if let Some(at) = workers.iter().position(|w| !w.chunks_run().is_empty()) {
            break at;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no worker took a task"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    workers[busy].kill();
    busy
}

/// A pool whose lost tasks must not run again: the task of the killed
/// worker fails with worker-lost instead of running on the other.
#[test]
fn a_pool_that_does_not_retry_gets_worker_lost_for_a_killed_worker_s_task() {
    let _serial = serial();
    let server = Server::start();
    let mut workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let job = start_job(&server, &["slow", "6", "1500", "3", "once"]);
    let busy = kill_the_first_busy_worker(&mut workers);
    let output = job.wait_with_output().expect("wait for the job");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output).lines().last(),
        Some(
            "slow failed: worker lost: the worker running this chunk ended, and its pool \
             does not run lost tasks again"
        ),
        "{}",
        stdout(&output)
    );
    // The killed worker's chunk never ran on the other.
    let survivor = workers[1 - busy].chunks_run();
    assert!(survivor.len() <= 5, "{survivor:?}");
}

#[test]
fn a_worker_killed_mid_task_leaves_its_task_to_another() {
    let _serial = serial();
    let server = Server::start();
    let mut workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let job = start_job(&server, &["slow", "6", "1500"]);
    let started = Instant::now();
    let busy = kill_the_first_busy_worker(&mut workers);
    let output = job.wait_with_output().expect("wait for the job");
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).ends_with("slow 0,1,4,9,16,25\n"),
        "{}",
        stdout(&output)
    );
    // Six tasks of 1.5 s on one worker, plus the redelivery after the
    // killed worker's acknowledgement window.
    assert!(started.elapsed() < Duration::from_secs(30));
    let survivor = &workers[1 - busy];
    assert!(
        survivor.chunks_run().len() >= 4,
        "{:?}",
        survivor.chunks_run()
    );
}

#[test]
fn a_server_restarted_mid_job_loses_no_task_and_no_result() {
    let _serial = serial();
    let mut server = Server::start();
    let _workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let mut job = start_job(&server, &["slow", "9", "700"]);
    let (mut out, line) = first_line(&mut job);
    assert!(line.starts_with("task "), "{line:?}");
    server.restart(Duration::from_millis(500));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let (status, err) = stderr_and_status(&mut job);
    assert!(status.success(), "{status:?}: {err}");
    assert!(
        rest.ends_with("slow 0,1,4,9,16,25,36,49,64\n"),
        "{line}{rest}{err}"
    );
}

/// The job's queues left in the server's store (JetStream keeps a
/// directory per stream).
fn queue_streams(server: &Server) -> Vec<String> {
    let mut names = Vec::new();
    for account in std::fs::read_dir(server.store.path().join("jetstream")).expect("store") {
        let streams = account.expect("account").path().join("streams");
        for stream in std::fs::read_dir(streams).into_iter().flatten() {
            let name = stream.expect("stream").file_name();
            let name = name.to_string_lossy();
            if name.starts_with("PROCBRIDGE_Q_") {
                names.push(name.into_owned());
            }
        }
    }
    names
}

#[test]
fn queues_in_jetstream_reach_remote_tasks_and_behave_as_local_ones() {
    let _serial = serial();
    let server = Server::start();
    let workers: Vec<Worker> = (0..2).map(|_| Worker::start(&server, &[])).collect();
    let local = same_here_and_there(&server, &["queues", "12"]);
    assert_eq!(
        local,
        "queue 0 0,1 1,2 4,3 9,4 16,5 25,6 36,7 49,8 64,9 81,10 100,11 121\n\
         empty after true\njoined\nsquares 0,1,4,9,16,25,36,49,64,81,100,121\n\
         taken 12\ntask_done once more Err(Inval)\n"
    );
    // The tasks that put and took ran on the workers.
    let chunks: usize = workers.iter().map(|w| w.chunks_run().len()).sum();
    assert!(chunks >= 3, "{chunks} chunks ran remotely");
    // Full, timed out, shut down, too big: as a local queue says.
    let local = same_here_and_there(&server, &["bounded"]);
    assert!(
        local.starts_with(
            "full true qsize 2\nput_nowait Err(Again)\nput_timeout Err(TimedOut) after true\n"
        ),
        "{local}"
    );
    assert!(
        local.ends_with("get when empty Err(Pipe)\ntoo big Err(TooBig)\n"),
        "{local}"
    );
    // Two forked readers of one queue each open their own connection;
    // every message reaches one of them.
    let readers = stdout(&run_job(Some(&server), &[], &["readers", "40"]));
    assert!(readers.starts_with("each once true\n"), "{readers}");
    // The job's streams went with it.
    assert_eq!(queue_streams(&server), Vec::<String>::new());
}

/// Two processes calling `task_done` at once for the last task: one is
/// counted, the other refused, as with a local queue; and a process cannot
/// fill the server with queues.
#[test]
fn queue_counts_and_sizes_hold_under_races_and_greed() {
    let _serial = serial();
    let server = Server::start();
    let both = same_here_and_there(&server, &["done-race", "6"]);
    assert_eq!(both, "one task_done counted in every round true\n");
    // Their streams stay until the job ends: 256 a process.
    let greedy = stdout(&run_job(Some(&server), &[], &["many-queues"]));
    assert_eq!(greedy, "made 256 then NoMem\n");
}

#[test]
fn with_local_pools_the_queues_are_still_the_cluster_s() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let out = stdout(&run_job(
        Some(&server),
        &["--pool", "local"],
        &["queues", "4"],
    ));
    assert!(out.starts_with("queue 0 0,1 1,2 4,3 9\n"), "{out}");
    assert!(worker.chunks_run().is_empty(), "{:?}", worker.chunks_run());
    // And local queues with cluster pools: a task cannot reach a queue
    // that lives in the job's memory, and says so.
    let output = procbridge()
        .args(["run", "--nats", &server.url(), "--queues", "local"])
        .args([&probe(), "queues", "2"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("not an open queue handle"), "{err}");
}

/// A remote task waiting on a queue of a job that ended is let go (the
/// queue is deleted with the job), and its worker serves the next job.
#[test]
fn a_task_waiting_on_the_queue_of_a_job_that_ended_lets_its_worker_go() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let left = stdout(&run_job(Some(&server), &[], &["abandon-get", "1500"]));
    assert_eq!(left, "leaving\n");
    assert_eq!(
        worker.chunks_run().len(),
        1,
        "the waiting task ran remotely"
    );
    let mut next = start_job(&server, &["map", "3"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while next.try_wait().expect("wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "the worker is still held by the abandoned task"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut next.stdout.take().expect("stdout"), &mut out)
        .expect("read");
    assert!(out.starts_with("map 0,1,4\n"), "{out}");
}

/// Spawn-method processes run on the workers with `--processes cluster`,
/// and behave as local ones: exit codes, a failing target, the grants a
/// process dropped.
#[test]
fn spawn_method_processes_run_on_the_workers_as_they_would_locally() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &["--allow-run", "echo"]);
    let flags = ["--allow-run", "echo"];
    let local = stdout(&run_job(None, &flags, &["spawned", "5"]));
    assert_eq!(
        local,
        "exit codes [Some(0), Some(0), Some(0), Some(0), Some(0)]\n\
         spawned 0 0,1 1,2 4,3 9,4 16\n\
         failing exit code Some(1)\n\
         without commands false: ran, exit code Some(0)\n\
         without commands true: refused, exit code Some(0)\n\
         calls 1,1\n\
         exit(0) exit code Some(0)\n"
    );
    // Without the flag they stay here.
    let here = run_job(Some(&server), &flags, &["spawned", "5"]);
    assert_eq!(stdout(&here), local);
    assert!(worker.chunks_run().is_empty());
    let output = run_job(
        Some(&server),
        &["--processes", "cluster", "--allow-run", "echo"],
        &["spawned", "5"],
    );
    assert_eq!(stdout(&output), local);
    // Five, the failing one, the two that ran echo, two counting, one
    // exiting.
    assert_eq!(worker.chunks_run().len(), 11, "{:?}", worker.chunks_run());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("Process fails_now ("), "{err}");
    assert!(err.contains("on purpose"), "{err}");
}

/// A pool made in a process that dropped its commands asks the workers
/// for no more than that process holds: its task is refused `echo`, as a
/// local pool worker of that process is, though the job and the worker
/// grant it.
#[test]
fn a_pool_in_a_process_without_commands_gets_none_on_the_workers() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &["--allow-run", "echo"]);
    let flags = ["--allow-run", "echo"];
    let local = stdout(&run_job(None, &flags, &["narrower-pool"]));
    assert_eq!(
        local,
        "pool in a process without commands true: refused\n\
         pool in a process without commands false: ran\n"
    );
    assert_eq!(
        stdout(&run_job(Some(&server), &flags, &["narrower-pool"])),
        local
    );
    assert_eq!(worker.chunks_run().len(), 2, "{:?}", worker.chunks_run());
}

#[test]
fn queued_messages_survive_a_server_restart() {
    let _serial = serial();
    let mut server = Server::start();
    let mut job = start_job(&server, &["hold", "6", "2500"]);
    let (mut out, line) = first_line(&mut job);
    assert_eq!(line, "queued 6\n");
    // They wait in the server's store (the queue and its control stream),
    // not in the job.
    assert_eq!(
        queue_streams(&server).len(),
        2,
        "{:?}",
        queue_streams(&server)
    );
    server.restart(Duration::from_millis(500));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("read");
    let (status, err) = stderr_and_status(&mut job);
    assert!(status.success(), "{status:?}: {err}");
    assert_eq!(rest, "got 0,1,2,3,4,5\nthen Err(TimedOut)\n", "{err}");
}

#[test]
fn a_remote_task_gets_no_more_than_both_the_job_and_the_worker_hold() {
    let _serial = serial();
    let server = Server::start();
    let _worker = Worker::start(&server, &["--allow-run", "echo"]);
    let both = run_job(
        Some(&server),
        &["--allow-run", "echo,true"],
        &["run", "echo"],
    );
    assert_eq!(stdout(&both), "Ok(\"ran: ran\")\n");
    let worker_lacks = run_job(
        Some(&server),
        &["--allow-run", "echo,true"],
        &["run", "true"],
    );
    assert!(
        stdout(&worker_lacks).contains("refused: PermissionError"),
        "{}",
        stdout(&worker_lacks)
    );
    let job_lacks = run_job(Some(&server), &[], &["run", "echo"]);
    assert!(
        stdout(&job_lacks).contains("refused: PermissionError"),
        "{}",
        stdout(&job_lacks)
    );
    // Locally the job's own grant is what counts.
    let local = run_job(None, &["--allow-run", "echo,true"], &["run", "true"]);
    assert_eq!(stdout(&local), "Ok(\"ran: \")\n");
}

#[test]
fn tasks_left_by_a_job_that_ended_are_cancelled() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let output = run_job(Some(&server), &[], &["abandon", "16", "400"]);
    assert!(stdout(&output).contains("first 0"), "{}", stdout(&output));
    let at_end = worker.chunks_run().len();
    std::thread::sleep(Duration::from_secs(3));
    let after = worker.chunks_run().len() - at_end;
    // Eight were in the stream while the job ran; without cancellation the
    // one worker goes on through those left (0.4 s each). Only the chunk it
    // had started may finish.
    assert!(after <= 1, "{after} tasks started after their job ended");
}

#[test]
fn tasks_left_by_a_killed_job_are_dropped() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    // Eight relays: eight chunks in the stream at a time.
    let mut job = procbridge()
        .args(["run", "--nats", &server.url()])
        .args([&probe(), "slow", "16", "400", "8"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the job");
    let started = Instant::now();
    while worker.chunks_run().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "no task ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // No cancellation can be sent: the worker finds the job's relays gone.
    job.kill().expect("kill the job");
    job.wait().expect("wait");
    std::thread::sleep(Duration::from_secs(3));
    let ran = worker.chunks_run().len();
    assert!(
        ran <= 2,
        "{ran} tasks ran, though their job was killed during the first"
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let _serial = serial();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let job = run_cli(&["run", "--nats", &url, &probe(), "map", "3"]);
    assert_eq!(job.status.code(), Some(69), "{job:?}");
    let err = String::from_utf8_lossy(&job.stderr);
    assert!(
        err.contains(&format!("cannot reach the NATS server at {url}")),
        "{err}"
    );
    let worker = run_cli(&["worker", "--nats", &url]);
    assert_eq!(worker.status.code(), Some(69), "{worker:?}");
    let python = run_cli(&["python", "--nats", &url, "-c", "pass"]);
    assert_eq!(python.status.code(), Some(69), "{python:?}");
    assert!(
        String::from_utf8_lossy(&python.stderr)
            .contains(&format!("cannot reach the NATS server at {url}")),
        "{python:?}"
    );
    // A login flag needs a server to log in to.
    let creds_alone = run_cli(&["run", "--nats-creds", "x.creds", &probe(), "map", "3"]);
    assert_eq!(creds_alone.status.code(), Some(2), "{creds_alone:?}");
    assert!(
        String::from_utf8_lossy(&creds_alone.stderr).contains("--nats <URL>"),
        "{creds_alone:?}"
    );
    let no_url = run_cli(&["worker"]);
    assert_eq!(no_url.status.code(), Some(2), "{no_url:?}");
    assert!(String::from_utf8_lossy(&no_url.stderr).contains("--nats URL is required"));
}

/// A CA and a certificate for 127.0.0.1 it signed, made with openssl in
/// `dir`: (ca.pem, server.pem, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn jobs_and_workers_reach_a_server_over_tls_and_with_a_login() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let server = Server::start_with(&[
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--user",
        "job",
        "--pass",
        "s3cret",
    ]);
    let url = format!("tls://job:s3cret@127.0.0.1:{}", server.port);
    let ca = ca.display().to_string();
    let mut worker = Worker::start_at(&url, &["--nats-ca", &ca]);
    let job = run_cli(&[
        "run",
        "--nats",
        &url,
        "--nats-ca",
        &ca,
        &probe(),
        "map",
        "5",
    ]);
    worker.kill();
    assert!(job.status.success(), "{job:?}");
    assert!(
        stdout(&job).starts_with("map 0,1,4,9,16\n"),
        "{}",
        stdout(&job)
    );

    // A server whose certificate the job does not trust; a wrong password;
    // a credentials file that is not there: each a clear error, exit 69.
    let untrusted = run_cli(&["run", "--nats", &url, &probe(), "map", "5"]);
    assert_eq!(untrusted.status.code(), Some(69), "{untrusted:?}");
    let wrong = format!("tls://job:wrong@127.0.0.1:{}", server.port);
    let refused = run_cli(&[
        "run",
        "--nats",
        &wrong,
        "--nats-ca",
        &ca,
        &probe(),
        "map",
        "5",
    ]);
    assert_eq!(refused.status.code(), Some(69), "{refused:?}");
    let missing = dir.path().join("no.creds").display().to_string();
    let no_creds = run_cli(&["run", "--nats", &url, "--nats-creds", &missing, &probe()]);
    assert_eq!(no_creds.status.code(), Some(69), "{no_creds:?}");
    assert!(
        String::from_utf8_lossy(&no_creds.stderr).contains("no.creds"),
        "{no_creds:?}"
    );
}

/// Hostile or broken messages on the task stream, sent as another job
/// could: each is refused, and the worker goes on serving.
#[test]
fn hostile_task_messages_are_refused_and_the_worker_goes_on() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let module = std::fs::read(guest("cluster_probe")).expect("read the module");
    let replies = nats::hostile_round(&server.url(), &module);
    // The reply frame's one item: status 0, then "9".
    assert!(
        replies.after_junk.ends_with("\u{0}9"),
        "{:?}",
        replies.after_junk
    );
    assert!(
        replies.oversized_len > 150_000 * 5 && replies.oversized_len <= 1 << 20,
        "{}",
        replies.oversized_len
    );
    assert!(
        replies.mismatch.contains("hashes to") && replies.mismatch.contains("refused"),
        "{:?}",
        replies.mismatch
    );
    assert!(replies.missing.contains("module"), "{:?}", replies.missing);
    // The worker is still there, and still right.
    a_good_job_runs_on(&server, &worker);
}

/// With a cluster key, a member of the server's account who does not hold
/// it can neither forge tasks (a worker would run them with the grants they
/// claim) nor slip results or output lines into a job; a job and workers
/// that disagree about the key say so.
#[test]
fn with_a_cluster_key_forged_tasks_results_output_and_queue_items_are_refused() {
    let _serial = serial();
    let server = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("cluster.key");
    std::fs::write(&key_file, "a secret the job and its workers share\n").expect("key");
    let key_path = key_file.display().to_string();
    let keyed = ["--cluster-key", key_path.as_str()];
    let worker = Worker::start(&server, &keyed);

    let module = std::fs::read(guest("cluster_probe")).expect("read the module");
    let forged = nats::forged_tasks(&server.url(), &module);
    for (reply, why) in [
        (&forged.unsigned, "it is not signed"),
        (&forged.wrong_key, "its signature does not match"),
    ] {
        assert!(
            reply.contains("refused by the worker") && reply.contains(why),
            "{reply:?}"
        );
        assert!(!reply.ends_with("\u{0}9"), "the task ran: {reply:?}");
    }
    let audited = worker.chunks_run();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(
        audited.iter().all(|line| line.contains("refused")),
        "{audited:?}"
    );

    // The job that holds the key runs, its output lines passed on; so do
    // its spawn-method processes.
    let good = run_job(Some(&server), &keyed, &["map", "5"]);
    assert!(
        stdout(&good).starts_with("map 0,1,4,9,16\n"),
        "{}",
        stdout(&good)
    );
    let local = stdout(&run_job(None, &[], &["spawned", "3"]));
    let spawned = run_job(
        Some(&server),
        &[keyed[0], keyed[1], "--processes", "cluster"],
        &["spawned", "3"],
    );
    assert_eq!(stdout(&spawned), local);

    // A result and an output line forged while its task runs.
    let forger = nats::forge_results_of_the_next_job(&server.url());
    let attacked = stdout(&run_job(Some(&server), &keyed, &["slow", "1", "3000", "1"]));
    assert!(forger.join().expect("forger"), "nothing was forged");
    assert!(
        attacked.contains("slow failed") && attacked.contains("refused: it is not signed"),
        "{attacked}"
    );
    assert!(
        !attacked.contains("666") && !attacked.contains("forged line"),
        "{attacked}"
    );

    // A message forged onto one of its queues never reaches it.
    let local = stdout(&run_job(None, &[], &["queues", "6"]));
    let forger = nats::forge_a_queue_item_of_the_next_job(&server.url());
    let queued = run_job(Some(&server), &keyed, &["queues", "6"]);
    assert!(forger.join().expect("forger"), "nothing was forged");
    assert_eq!(stdout(&queued), local);
    assert!(
        String::from_utf8_lossy(&queued.stderr).contains("was dropped: it is not signed"),
        "{queued:?}"
    );

    // A job without the key hears the keyed worker's refusal.
    let unkeyed = stdout(&run_job(Some(&server), &[], &["slow", "1", "10", "1"]));
    assert!(
        unkeyed.contains("slow failed") && unkeyed.contains("--cluster-key"),
        "{unkeyed}"
    );
    // A keyed job on a worker without the key refuses its results.
    drop(worker);
    let _plain = Worker::start(&server, &[]);
    let keyed_job = stdout(&run_job(Some(&server), &keyed, &["slow", "1", "10", "1"]));
    assert!(
        keyed_job.contains("slow failed") && keyed_job.contains("--cluster-key"),
        "{keyed_job}"
    );

    // A key file too short to be a secret.
    std::fs::write(&key_file, "short\n").expect("key");
    let refused = procbridge()
        .args(["run", "--nats", &server.url(), "--cluster-key", &key_path])
        .arg(probe())
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at least 16 bytes"),
        "{refused:?}"
    );
}

/// Streams made before the cluster's first member, with settings that
/// would break its promises (acknowledged tasks kept and run again, results
/// of other subjects), are refused with what to do, not used.
#[test]
fn streams_made_with_other_settings_are_refused_not_used() {
    let _serial = serial();
    let server = Server::start();
    for (stream, subjects, said) in [
        (
            "PROCBRIDGE_TASKS",
            "procbridge.task.*",
            "retention Limits, not WorkQueue",
        ),
        (
            "PROCBRIDGE_RESULTS",
            "procbridge.result.>",
            "subjects [\"procbridge.result.>\"], not [\"procbridge.result.*.*\"]",
        ),
    ] {
        nats::plant_stream(&server.url(), stream, subjects);
        let job = procbridge()
            .args(["run", "--nats", &server.url()])
            .arg(probe())
            .args(["map", "3"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&job.stderr);
        assert_eq!(job.status.code(), Some(69), "{stderr}");
        assert!(
            stderr.contains(&format!("the stream {stream} exists with other settings"))
                && stderr.contains(said)
                && stderr.contains(&format!("nats stream rm {stream}")),
            "{stderr}"
        );
        let worker = procbridge()
            .args(["worker", "--nats", &server.url()])
            .output()
            .expect("worker");
        assert!(!worker.status.success());
        assert!(
            String::from_utf8_lossy(&worker.stderr).contains("exists with other settings"),
            "{worker:?}"
        );
        nats::delete_stream(&server.url(), stream);
    }
    let worker = Worker::start(&server, &[]);
    a_good_job_runs_on(&server, &worker);
}

/// A small job runs, its tasks on `worker`.
fn a_good_job_runs_on(server: &Server, worker: &Worker) {
    let good = run_job(Some(server), &[], &["map", "5"]);
    assert!(
        stdout(&good).starts_with("map 0,1,4,9,16\n"),
        "{}",
        stdout(&good)
    );
    assert!(!worker.chunks_run().is_empty());
}

/// A member stored junk under the job's module's name before the job
/// started: the job replaces it, and its tasks run.
#[test]
fn a_module_poisoned_in_the_store_is_replaced_by_the_job() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let module = std::fs::read(guest("cluster_probe")).expect("read the module");
    nats::poison(&server.url(), &module);
    a_good_job_runs_on(&server, &worker);
}

#[test]
fn a_cancelled_job_s_tasks_are_dropped_though_its_relays_still_answer() {
    let _serial = serial();
    let server = Server::start();
    let worker = Worker::start(&server, &[]);
    let module = std::fs::read(guest("cluster_probe")).expect("read the module");
    let got = nats::cancelled_round(&server.url(), &module);
    assert_eq!(
        got.before_cancel.as_deref().map(|r| r.ends_with("\u{0}9")),
        Some(true)
    );
    assert!(got.after_cancel.is_none(), "{:?}", got.after_cancel);
    assert_eq!(worker.chunks_run().len(), 1, "{:?}", worker.chunks_run());
}

#[test]
fn a_chunk_whose_workers_keep_dying_fails_with_worker_lost() {
    let _serial = serial();
    let server = Server::start();
    // The first worker sets up the streams, then goes.
    Worker::start(&server, &[]).kill();
    let module = std::fs::read(guest("cluster_probe")).expect("read the module");
    let reply = nats::dying_workers_round(&server.url(), &module, || Worker::start(&server, &[]));
    assert!(reply.contains("worker lost"), "{reply:?}");
    assert!(reply.contains("handed out 4 times"), "{reply:?}");
}

/// Talking to the server directly, as a hostile job would.
mod nats {
    use async_nats::jetstream::{self, consumer};
    use futures_util::StreamExt;
    use std::time::Duration;

    /// What came back for each hostile message that gets a reply.
    #[derive(Debug)]
    pub struct Replies {
        /// A module stored under a digest its content does not have.
        pub mismatch: String,
        /// A module that is not in the store.
        pub missing: String,
        /// A good chunk of the real module, after a junk frame naming it.
        pub after_junk: String,
        /// The size of the reply to a chunk of 150,000 items.
        pub oversized_len: usize,
    }

    /// A hand-made member of the cluster, sending the tasks of `job`: a
    /// connection that stands in for the job's relays.
    struct Member {
        client: async_nats::Client,
        js: jetstream::Context,
        job: &'static str,
    }

    impl Member {
        async fn join(url: &str, job: &'static str) -> Member {
            let client = async_nats::connect(url).await.expect("connect");
            stand_in_for_relays(&client, job).await;
            let js = jetstream::new(client.clone());
            Member { client, js, job }
        }

        /// Puts `bytes` in the module store under `name`.
        async fn store(&self, name: &str, mut bytes: &[u8]) {
            self.js
                .get_object_store("procbridge-modules")
                .await
                .expect("store")
                .put(name, &mut bytes)
                .await
                .expect("put");
        }

        /// A member of job `job` that stored `module` and sent one chunk
        /// (`request(1)`) of it, its results going to relay 1; and the
        /// module's digest.
        async fn sent_first_chunk(url: &str, job: &'static str, module: &[u8]) -> (Member, String) {
            let member = Member::join(url, job).await;
            let digest = digest(module);
            member.store(&digest, module).await;
            member
                .send(Some(member.headers(&digest, 1)), request(1))
                .await;
            (member, digest)
        }

        /// Publishes a task message of the job (with `headers`, if any)
        /// and waits until the server stored it.
        async fn send(&self, headers: Option<async_nats::HeaderMap>, payload: Vec<u8>) {
            let subject = format!("procbridge.task.{}", self.job);
            let ack = match headers {
                Some(h) => {
                    self.js
                        .publish_with_headers(subject, h, payload.into())
                        .await
                }
                None => self.js.publish(subject, payload.into()).await,
            };
            ack.expect("publish").await.expect("stored");
        }

        /// The headers of a task of the job with `module`, its results
        /// going to relay `relay`.
        fn headers(&self, module: &str, relay: u32) -> async_nats::HeaderMap {
            headers(self.job, module, relay)
        }
    }

    fn headers(job: &str, module: &str, relay: u32) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Procbridge-Job", job);
        h.insert("Procbridge-Module", module);
        h.insert(
            "Procbridge-Reply",
            format!("procbridge.result.{job}.{relay}").as_str(),
        );
        h.insert("Procbridge-Grants", "{\"commands\":[\"sh\"],\"dirs\":[[\"/\",true]],\"env\":[],\"network\":true,\"limits\":{\"max_processes\":1000000,\"max_memory_bytes\":1000000000000,\"max_total_memory_bytes\":1000000000000,\"max_queued_bytes\":1000000,\"max_output_bytes\":1000000,\"cpu_seconds\":null,\"wall_time_ms\":null}}");
        h.insert("Procbridge-Who", "an attacker");
        h.insert("Nats-Msg-Id", format!("{job}.{relay}").as_str());
        h
    }

    /// A request frame for one item of `square`.
    fn request(id: u64) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&id.to_le_bytes());
        payload.extend_from_slice(&6u32.to_le_bytes());
        payload.extend_from_slice(b"square");
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.push(b'3');
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&payload);
        frame
    }

    /// The replies to a chunk sent before its job was cancelled, and to
    /// one sent after (none expected).
    #[derive(Debug)]
    pub struct Cancelled {
        pub before_cancel: Option<String>,
        pub after_cancel: Option<String>,
    }

    /// A job whose relays stay (stood in for): one chunk, then a
    /// cancellation, then another chunk.
    pub fn cancelled_round(url: &str, module: &[u8]) -> Cancelled {
        runtime().block_on(async {
            let (member, digest) = Member::sent_first_chunk(url, "ca9ce1", module).await;
            let before_cancel =
                reply_within(&member.js, member.job, 1, Duration::from_secs(20)).await;
            member
                .client
                .publish(
                    format!("procbridge.cancel.{}", member.job),
                    Default::default(),
                )
                .await
                .expect("cancel");
            member.client.flush().await.expect("flush");
            member
                .send(Some(member.headers(&digest, 2)), request(2))
                .await;
            let after_cancel =
                reply_within(&member.js, member.job, 2, Duration::from_secs(3)).await;
            Cancelled {
                before_cancel,
                after_cancel,
            }
        })
    }

    /// Takes a chunk 4 times without finishing it, as workers that die
    /// would; then starts a real worker (`start`) and returns the reply.
    pub fn dying_workers_round<W>(url: &str, module: &[u8], start: impl FnOnce() -> W) -> String {
        runtime().block_on(async {
            let (member, _) = Member::sent_first_chunk(url, "d1e5", module).await;
            let (js, job) = (&member.js, member.job);
            let workers: consumer::PullConsumer = js
                .get_stream("PROCBRIDGE_TASKS")
                .await
                .expect("tasks")
                .get_consumer("workers")
                .await
                .expect("consumer");
            for delivery in 1..=4 {
                let mut batch = workers
                    .fetch()
                    .max_messages(1)
                    .expires(Duration::from_secs(10))
                    .messages()
                    .await
                    .expect("fetch");
                let message = batch.next().await.expect("a delivery").expect("no error");
                assert_eq!(message.info().expect("info").delivered, delivery);
                // Not acknowledged: the server hands it out again.
            }
            let _worker = start();
            reply(js, job, 1).await
        })
    }

    /// Answers for the relays of `job`, as live relays do (a worker drops
    /// the chunks of relays that are gone).
    async fn stand_in_for_relays(client: &async_nats::Client, job: &str) {
        let mut asked = client
            .subscribe(format!("procbridge.alive.{job}.*"))
            .await
            .expect("subscribe");
        let answers = client.clone();
        tokio::spawn(async move {
            while let Some(message) = asked.next().await {
                if let Some(reply) = message.reply {
                    let _ = answers.publish(reply, Default::default()).await;
                }
            }
        });
        client.flush().await.expect("flush");
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The first result on relay `relay`'s subject of `job`.
    async fn reply(js: &jetstream::Context, job: &str, relay: u32) -> String {
        reply_within(js, job, relay, Duration::from_secs(20))
            .await
            .expect("a reply in time")
    }

    /// The first result on relay `relay`'s subject of `job`, if one comes
    /// within `wait`.
    async fn reply_within(
        js: &jetstream::Context,
        job: &str,
        relay: u32,
        wait: Duration,
    ) -> Option<String> {
        let results = js.get_stream("PROCBRIDGE_RESULTS").await.expect("results");
        let consumer: consumer::PullConsumer = results
            .create_consumer(consumer::pull::Config {
                filter_subject: format!("procbridge.result.{job}.{relay}"),
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let message = tokio::time::timeout(wait, messages.next())
            .await
            .ok()?
            .expect("a message")
            .expect("no error");
        let _ = message.ack().await;
        Some(String::from_utf8_lossy(&message.payload).into_owned())
    }

    /// The SHA-256 of `bytes`, in hex.
    fn digest(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A request frame of `count` empty items for `square`.
    fn request_of(id: u64, count: u32) -> Vec<u8> {
        let mut payload = Vec::new();
        payload.extend_from_slice(&id.to_le_bytes());
        payload.extend_from_slice(&6u32.to_le_bytes());
        payload.extend_from_slice(b"square");
        payload.extend_from_slice(&count.to_le_bytes());
        for _ in 0..count {
            payload.extend_from_slice(&0u32.to_le_bytes());
        }
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&payload);
        frame
    }

    /// The replies to task messages forged by a member without the
    /// cluster's key.
    #[derive(Debug)]
    pub struct Forged {
        /// To a task message with no signature.
        pub unsigned: String,
        /// To one whose signature was made with another key.
        pub wrong_key: String,
    }

    /// Sends a keyed worker two task messages of a job of its own, one
    /// unsigned and one signed with another key, as a member of the
    /// server's account without the key could.
    pub fn forged_tasks(url: &str, module: &[u8]) -> Forged {
        runtime().block_on(async {
            let (member, digest) = Member::sent_first_chunk(url, "f0e1", module).await;
            let unsigned = reply(&member.js, member.job, 1).await;
            let mut signed = member.headers(&digest, 2);
            signed.insert("Procbridge-Signature", "00".repeat(32).as_str());
            member.send(Some(signed), request(2)).await;
            let wrong_key = reply(&member.js, member.job, 2).await;
            Forged {
                unsigned,
                wrong_key,
            }
        })
    }

    /// Runs `forge` on a thread of its own, given a connection and a
    /// subscription to every task message; returns once the subscription
    /// is in place. The thread ends with what `forge` returns.
    fn forger<F, Fut>(url: &str, forge: F) -> std::thread::JoinHandle<bool>
    where
        F: FnOnce(async_nats::Client, async_nats::Subscriber) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool>,
    {
        let url = url.to_string();
        let (watching, watches) = std::sync::mpsc::channel();
        let forger = std::thread::spawn(move || {
            runtime().block_on(async {
                let client = async_nats::connect(&url).await.expect("connect");
                let tasks = client
                    .subscribe("procbridge.task.>")
                    .await
                    .expect("subscribe");
                client.flush().await.expect("flush");
                watching.send(()).expect("watching");
                forge(client, tasks).await
            })
        });
        watches.recv().expect("the forger watches");
        forger
    }

    /// A message's header `name`.
    fn header(message: &async_nats::Message, name: &str) -> Option<String> {
        let value = message.headers.as_ref()?.get(name)?;
        Some(value.as_str().to_string())
    }

    /// The next task message, if one comes within a minute.
    async fn next_task(tasks: &mut async_nats::Subscriber) -> Option<async_nats::Message> {
        tokio::time::timeout(Duration::from_secs(60), tasks.next())
            .await
            .ok()
            .flatten()
    }

    /// Watches for the next job's first task message and, while its task
    /// runs, answers it with a forged result (`666`) and a forged output
    /// line (`forged line`), unsigned. The thread ends `true` once it
    /// forged both.
    pub fn forge_results_of_the_next_job(url: &str) -> std::thread::JoinHandle<bool> {
        forger(url, |client, mut tasks| async move {
            let Some(task) = next_task(&mut tasks).await else {
                return false;
            };
            let reply_to = header(&task, "Procbridge-Reply").expect("a reply subject");
            let id = u64::from_le_bytes(task.payload[4..12].try_into().expect("an id"));
            let mut payload = id.to_le_bytes().to_vec();
            payload.push(0);
            payload.extend_from_slice(&1u32.to_le_bytes());
            payload.extend_from_slice(&4u32.to_le_bytes());
            payload.push(0);
            payload.extend_from_slice(b"666");
            let mut forged = (payload.len() as u32).to_le_bytes().to_vec();
            forged.extend_from_slice(&payload);
            let js = jetstream::new(client.clone());
            js.publish(reply_to.clone(), forged.into())
                .await
                .expect("publish")
                .await
                .expect("stored");
            let output = reply_to.replacen("procbridge.result.", "procbridge.output.", 1);
            client
                .publish(output, b"\x01forged line\n".to_vec().into())
                .await
                .expect("publish");
            client.flush().await.expect("flush");
            true
        })
    }

    /// Watches for the next job's first task message that names a queue,
    /// and puts an unsigned message (`forged`) on that queue. The thread
    /// ends `true` once it put it.
    pub fn forge_a_queue_item_of_the_next_job(url: &str) -> std::thread::JoinHandle<bool> {
        forger(url, |client, mut tasks| async move {
            let queue = loop {
                let Some(task) = next_task(&mut tasks).await else {
                    return false;
                };
                if let Some(json) = header(&task, "Procbridge-Queues") {
                    let queues: serde_json::Value = serde_json::from_str(&json).expect("json");
                    break queues[0]["queue"].clone();
                }
            };
            let subject = format!(
                "procbridge.queue.{}.{}.items",
                queue["job"].as_str().expect("job"),
                queue["id"].as_str().expect("id")
            );
            jetstream::new(client)
                .publish(subject, b"forged".to_vec().into())
                .await
                .expect("publish")
                .await
                .expect("stored");
            true
        })
    }

    /// A JetStream context on the server at `url`.
    async fn js(url: &str) -> jetstream::Context {
        jetstream::new(async_nats::connect(url).await.expect("connect"))
    }

    /// Makes stream `name` before any member of the cluster did, keeping
    /// what is acknowledged (limits retention), on `subjects`.
    pub fn plant_stream(url: &str, name: &str, subjects: &str) {
        runtime().block_on(async {
            js(url)
                .await
                .create_stream(jetstream::stream::Config {
                    name: name.to_string(),
                    subjects: vec![subjects.to_string()],
                    ..Default::default()
                })
                .await
                .expect("create the stream");
        });
    }

    /// Deletes stream `name`.
    pub fn delete_stream(url: &str, name: &str) {
        runtime().block_on(async {
            js(url)
                .await
                .delete_stream(name)
                .await
                .expect("delete the stream");
        });
    }

    /// Stores junk under the digest of `module`, as a hostile member of
    /// the cluster could before any job sent it.
    pub fn poison(url: &str, module: &[u8]) {
        runtime().block_on(async {
            let member = Member::join(url, "b0150ed").await;
            member.store(&digest(module), b"(module junk)").await;
        })
    }

    pub fn hostile_round(url: &str, module: &[u8]) -> Replies {
        runtime().block_on(async {
            let member = Member::join(url, "6861636b6572").await;
            let (js, job) = (&member.js, member.job);
            // Content that does not hash to its name.
            let forged = "ab".repeat(32);
            member.store(&forged, b"(module)").await;
            let real = digest(module);
            member.store(&real, module).await;
            let send = |headers, payload| member.send(headers, payload);
            // No headers at all; a malformed frame; results sent to
            // another job's relay: each is dropped.
            send(None, request(1)).await;
            send(Some(headers(job, &real, 9)), b"junk".to_vec()).await;
            let mut elsewhere = headers(job, &forged, 8);
            elsewhere.insert("Procbridge-Reply", "procbridge.result.someone-else.1");
            send(Some(elsewhere), request(2)).await;
            // A forged module, and one that is not there: replies say why.
            send(Some(headers(job, &forged, 1)), request(3)).await;
            send(Some(headers(job, &"cd".repeat(32), 2)), request(4)).await;
            // After the junk frame, the real module still runs; a chunk
            // whose failure reply would be over the server's 1 MB message
            // limit still gets one.
            send(Some(headers(job, &real, 3)), request(5)).await;
            send(Some(headers(job, &forged, 4)), request_of(6, 150_000)).await;
            let mismatch = reply(js, job, 1).await;
            // Sent with the forged one: a module that is not there is
            // refused at once, not fetched again for seconds.
            let missing = reply_within(js, job, 2, Duration::from_secs(3))
                .await
                .expect("the missing module's reply at once");
            let after_junk = reply(js, job, 3).await;
            let oversized = reply(js, job, 4).await;
            Replies {
                mismatch,
                missing,
                after_junk,
                oversized_len: oversized.len(),
            }
        })
    }
}
