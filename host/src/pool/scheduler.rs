//! A pool's round of progress: send queued chunks, read replies, notice
//! dead workers and overdue tasks, retire spent workers. All on the
//! calling thread, in one `poll(2)` over the workers' sockets.

use super::batch::Outcome;
use super::chunk::Chunk;
use super::worker::{Read, Worker};
use super::{
    frame, Cause, Pool, Wait, PIPELINE_BELOW, PIPELINE_COVER, PIPELINE_DEPTH, PIPELINE_MAX,
    RESTART_BACKOFF,
};
use crate::errno::BridgeResult;
use std::time::{Duration, Instant};

/// How many chunks a worker may hold, given how long a chunk takes: one
/// for long ones; for short ones enough to cover [`PIPELINE_COVER`] of work
/// (the parent's wake-up and round trip), at least [`PIPELINE_DEPTH`] and
/// at most [`PIPELINE_MAX`].
fn pipeline_depth(service: Option<Duration>) -> usize {
    match service {
        Some(service) if service < PIPELINE_BELOW => {
            let cover = PIPELINE_COVER.as_nanos() / service.as_nanos().max(1);
            usize::try_from(cover)
                .unwrap_or(PIPELINE_MAX)
                .clamp(PIPELINE_DEPTH, PIPELINE_MAX)
        }
        _ => 1,
    }
}

impl Pool {
    /// One round of progress; blocks in `poll` at most as `wait` allows.
    pub(crate) fn step(&mut self, wait: Wait) -> BridgeResult<()> {
        self.last_step = Instant::now();
        self.retired
            .retain_mut(|child| matches!(child.try_wait(), Ok(None)));
        // A spent worker with nothing in flight sends nothing more: retire
        // it now, and do not sleep on the others while its replacement
        // waits to be started (by the caller, which has the guest).
        self.retire_spent();
        let wait = if self.missing_workers() > 0 {
            Wait::Never
        } else {
            wait
        };
        self.dispatch();
        let mut ended: Vec<(usize, Cause)> = Vec::new();
        for (index, worker) in self.workers.iter_mut().enumerate() {
            if worker.wants_write() && worker.flush().is_err() {
                ended.push((index, Cause::Closed));
            }
        }
        if ended.is_empty() {
            self.poll_round(wait, &mut ended)?;
        }
        self.check_deadlines(&mut ended);
        // Stable: a death seen by `poll` wins over a deadline.
        ended.sort_by_key(|&(index, _)| std::cmp::Reverse(index));
        ended.dedup_by_key(|&mut (index, _)| index);
        for (index, cause) in ended {
            let worker = self.workers.remove(index);
            self.bury(worker, cause);
        }
        self.retire_spent();
        self.dispatch();
        self.write_out();
        Ok(())
    }

    /// Writes what each worker was sent, as far as its socket takes it now.
    /// A worker whose socket failed is buried by the next round.
    pub(super) fn write_out(&mut self) {
        for worker in &mut self.workers {
            if worker.wants_write() {
                let _ = worker.flush();
            }
        }
    }

    fn poll_round(&mut self, wait: Wait, ended: &mut Vec<(usize, Cause)>) -> BridgeResult<()> {
        let mut fds: Vec<libc::pollfd> = self
            .workers
            .iter()
            .map(|w| libc::pollfd {
                fd: w.fd(),
                events: libc::POLLIN | if w.wants_write() { libc::POLLOUT } else { 0 },
                revents: 0,
            })
            .collect();
        let mut timeout = self.poll_timeout(wait);
        if fds.is_empty() && timeout.is_none() {
            // Nothing can wake an endless wait on no worker: look again
            // later (the callers' loops end once the state says so).
            timeout = Some(RESTART_BACKOFF);
        }
        let ts = crate::timespec::Timespec::new(timeout);
        let ts_ptr = ts.as_ptr();
        // SAFETY: `fds` is a valid array; `ts_ptr` is null or a local.
        let ready = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        if ready <= 0 {
            return Ok(());
        }
        for (index, pfd) in fds.iter().enumerate() {
            if pfd.revents == 0 {
                continue;
            }
            if pfd.revents & libc::POLLOUT != 0 && self.workers[index].flush().is_err() {
                ended.push((index, Cause::Closed));
                continue;
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let read = self.workers[index].read();
                if !self.take_replies(index) {
                    ended.push((index, Cause::Broken));
                } else if read == Read::Closed {
                    ended.push((index, Cause::Closed));
                }
            }
        }
        Ok(())
    }

    /// How long `poll` may block: what `wait` allows, cut short by the
    /// nearest task deadline and the next restart attempt.
    fn poll_timeout(&self, wait: Wait) -> Option<Duration> {
        let now = Instant::now();
        let mut limit = match wait {
            Wait::Never => return Some(Duration::ZERO),
            Wait::Until(deadline) => Some(deadline.saturating_duration_since(now)),
            Wait::Forever => None,
        };
        let mut cut = |d: Duration| limit = Some(limit.map_or(d, |l| l.min(d)));
        for worker in &self.workers {
            if let Some(deadline) = self.deadline_of(worker) {
                cut(deadline.saturating_duration_since(now));
            }
        }
        if let Some(at) = self.start_failed_at {
            if self.workers.len() < self.config.processes {
                cut((at + RESTART_BACKOFF).saturating_duration_since(now));
            }
        }
        limit
    }

    /// When the chunk a worker is running times out.
    fn deadline_of(&self, worker: &Worker) -> Option<Instant> {
        let timeout = self.config.task_timeout?;
        let head = worker.in_flight.front()?;
        let items = u32::try_from(head.count).unwrap_or(u32::MAX).max(1);
        worker.head_since.checked_add(timeout.saturating_mul(items))
    }

    fn check_deadlines(&self, ended: &mut Vec<(usize, Cause)>) {
        let now = Instant::now();
        for (index, worker) in self.workers.iter().enumerate() {
            if self.deadline_of(worker).is_some_and(|d| now >= d) {
                ended.push((index, Cause::TimedOut));
            }
        }
    }

    /// Sends queued chunks: first one to each free worker, then (for short
    /// tasks) more to busy ones.
    fn dispatch(&mut self) {
        self.fill_workers(pipeline_depth(self.service));
    }

    /// Sends queued chunks until each worker holds `depth`, a level at a
    /// time: one to each free worker first, then a second to each, ...
    pub(super) fn fill_workers(&mut self, depth: usize) {
        let max_tasks = self.config.max_tasks;
        for level in 1..=depth {
            for worker in &mut self.workers {
                while worker.in_flight.len() < level && worker.takes_chunks(max_tasks) {
                    let Some(chunk) = self.queue.pop_front() else {
                        return;
                    };
                    self.queued_bytes = self.queued_bytes.saturating_sub(chunk.size());
                    worker.send(chunk);
                }
            }
        }
    }

    /// Decodes the replies worker `index` sent. `false` if it sent garbage.
    fn take_replies(&mut self, index: usize) -> bool {
        let input = self.workers[index].take_input();
        let since = self.workers[index].head_since;
        let mut used = 0;
        let mut replies: u32 = 0;
        let mut valid = true;
        loop {
            match frame::next_frame(&input[used..]) {
                Ok(None) => break,
                Ok(Some((payload, len))) => {
                    let accepted = match frame::reply(payload) {
                        Ok(reply) => self.on_reply(index, &reply),
                        Err(_) => false,
                    };
                    if !accepted {
                        valid = false;
                        break;
                    }
                    replies += 1;
                    used += len;
                }
                Err(_) => {
                    valid = false;
                    break;
                }
            }
        }
        self.workers[index].keep_unread(input, used);
        if replies > 0 {
            // Replies read together came one service time apart (the worker
            // had them queued): share the time since the first began.
            self.note_service(Instant::now().saturating_duration_since(since) / replies);
        }
        valid
    }

    /// Folds one chunk's service time into the pool's running estimate.
    fn note_service(&mut self, took: Duration) {
        self.service = Some(match self.service {
            Some(avg) => (avg * 7 + took) / 8,
            None => took,
        });
    }

    fn on_reply(&mut self, index: usize, reply: &frame::Reply<'_>) -> bool {
        let worker = &mut self.workers[index];
        let chunk = match worker.in_flight.front() {
            Some(chunk) if chunk.id == reply.id => worker.in_flight.pop_front(),
            _ => None,
        };
        let Some(chunk) = chunk else {
            return false;
        };
        worker.answered += 1;
        worker.head_since = Instant::now();
        worker.dying |= reply.fatal;
        if let Some(batch) = self.batches.get_mut(&chunk.batch) {
            let answered = reply.ends.len().min(chunk.count);
            let items = match answered.checked_sub(1) {
                Some(last) => &reply.items[..reply.ends[last]],
                None => &[],
            };
            batch.finish_encoded(chunk.first, items, &reply.ends[..answered]);
            if answered < chunk.count {
                batch.finish(
                    chunk.first + answered,
                    chunk.count - answered,
                    &Outcome::WorkerLost(String::from("the worker's reply was incomplete")),
                );
            }
        }
        true
    }

    /// Removes a worker that ended (or must): fails the chunk it was
    /// running and queues the ones behind it again.
    fn bury(&mut self, mut worker: Worker, cause: Cause) {
        let pid = worker.pid();
        let how = match cause {
            Cause::Closed => worker.reap(),
            Cause::Broken | Cause::TimedOut => worker.kill(),
        };
        let mut chunks = std::mem::take(&mut worker.in_flight);
        // The chunks it began (in the order they were sent) have run, in
        // part or whole: they fail, and never run again. The last of them
        // was running; a worker that holds its replies (see `serve`) took
        // those of the ones before it along. One that overran its timeout
        // or sent garbage fails its first chunk in any case.
        let begun = if worker.relay {
            // The first chunk it was sent, unless it said it ends.
            u64::from(!worker.dying)
        } else {
            worker.progress.begun().saturating_sub(worker.answered)
        };
        let begun = usize::try_from(begun).unwrap_or(usize::MAX);
        let begun = match cause {
            Cause::Closed => begun,
            Cause::Broken | Cause::TimedOut => begun.max(1),
        };
        let mut ran: Vec<Chunk> = chunks.drain(..begun.min(chunks.len())).collect();
        let running = ran.pop();
        let unanswered = Outcome::WorkerLost(format!(
            "worker {pid} ran the task, then died before its reply was sent ({how})"
        ));
        for chunk in &ran {
            self.fail_chunk(chunk, &unanswered);
        }
        if let Some(chunk) = running {
            let outcome = match cause {
                Cause::TimedOut => Outcome::TimedOut(format!(
                    "the task ran over its timeout of {:?} (worker {pid} was killed)",
                    self.config.task_timeout.unwrap_or_default()
                )),
                Cause::Broken => Outcome::WorkerLost(format!(
                    "worker {pid} sent a malformed reply and was killed"
                )),
                Cause::Closed => {
                    Outcome::WorkerLost(format!("worker {pid} died while running the task ({how})"))
                }
            };
            self.fail_chunk(&chunk, &outcome);
        }
        for chunk in chunks.into_iter().rev() {
            self.queued_bytes += chunk.size();
            self.queue.push_front(chunk);
        }
    }

    pub(super) fn fail_chunk(&mut self, chunk: &Chunk, outcome: &Outcome) {
        if let Some(batch) = self.batches.get_mut(&chunk.batch) {
            batch.finish(chunk.first, chunk.count, outcome);
        }
    }

    /// Retires idle workers that ran `maxtasksperchild` chunks or lack a
    /// shared handle (see [`Pool::share`]).
    fn retire_spent(&mut self) {
        let max_tasks = self.config.max_tasks;
        let mut index = 0;
        while index < self.workers.len() {
            let worker = &self.workers[index];
            if worker.is_spent(max_tasks) && worker.in_flight.is_empty() {
                let worker = self.workers.remove(index);
                self.retired.push(worker.retire());
            } else {
                index += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_chunks_are_sent_ahead_to_cover_a_wake_up_and_long_ones_are_not() {
        let us = Duration::from_micros;
        assert_eq!(pipeline_depth(None), 1);
        assert_eq!(pipeline_depth(Some(us(2_000))), 1);
        assert_eq!(pipeline_depth(Some(PIPELINE_BELOW)), 1);
        assert_eq!(pipeline_depth(Some(us(400))), PIPELINE_DEPTH);
        assert_eq!(pipeline_depth(Some(us(20))), 10);
        assert_eq!(pipeline_depth(Some(us(2))), PIPELINE_MAX);
        assert_eq!(pipeline_depth(Some(Duration::ZERO)), PIPELINE_MAX);
    }
}
