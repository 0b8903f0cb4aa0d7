//! What the host and the jail's helper say to each other.
//!
//! * The **control socket** (`SOCK_SEQPACKET`, one per job, shared by every
//!   process of the job's tree) carries one message per spawn: the tag
//!   [`SPAWN`] and, as `SCM_RIGHTS`, a fresh channel, the three standard
//!   streams and (where Landlock is enforced) the ruleset. At start-up the
//!   helper answers [`READY`] or [`FAILED`] with its reason on it.
//! * Each command's **channel** (`SOCK_STREAM`, one per command) carries
//!   the [`Request`] (any size), then [`Record`]s: `Started` with the
//!   command's pidfd, or `Refused` with an errno; later `Exited` with its
//!   wait status. The host sends `Kill` to have the command's process group
//!   killed; closing the channel does the same.

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The tag of a spawn request on the control socket.
pub(super) const SPAWN: &[u8; 4] = b"SPWN";
/// The helper's start-up answer: ready to spawn.
pub(super) const READY: &[u8; 4] = b"REDY";
/// The helper's start-up answer: the jail could not be built (a reason
/// follows the tag).
pub(super) const FAILED: &[u8; 4] = b"FAIL";

/// The most descriptors one control message carries.
pub(super) const MAX_FDS: usize = 5;
/// The largest request accepted (argv and environment included).
const MAX_REQUEST: usize = 16 << 20;

/// A command to start, as the helper needs it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Request {
    /// The program, by its path inside the jail.
    pub(crate) path: Vec<u8>,
    pub(crate) argv: Vec<Vec<u8>>,
    /// `KEY=VALUE` entries.
    pub(crate) env: Vec<Vec<u8>>,
    /// The working directory: a grant's mount in the jail, a NUL, and the
    /// path beneath it (empty: the default).
    pub(crate) cwd: Vec<u8>,
    /// CPU seconds, address space, open files, processes, file size
    /// (`u64::MAX`: no limit).
    pub(crate) limits: [u64; 5],
}

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut bytes = |b: &[u8]| {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        };
        bytes(&self.path);
        bytes(&self.cwd);
        for list in [&self.argv, &self.env] {
            bytes(&(list.len() as u32).to_le_bytes());
            for item in list.iter() {
                bytes(item);
            }
        }
        for limit in self.limits {
            bytes(&limit.to_le_bytes());
        }
        out
    }

    fn decode(mut data: &[u8]) -> io::Result<Request> {
        let mut bytes = || -> io::Result<Vec<u8>> {
            let len = take(&mut data, 4)?;
            let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
            Ok(take(&mut data, len)?.to_vec())
        };
        let path = bytes()?;
        let cwd = bytes()?;
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let count = u32::from_le_bytes(bytes()?.try_into().map_err(|_| malformed())?);
            for _ in 0..count {
                list.push(bytes()?);
            }
        }
        let mut limits = [0u64; 5];
        for limit in &mut limits {
            *limit = u64::from_le_bytes(bytes()?.try_into().map_err(|_| malformed())?);
        }
        let [argv, env] = lists;
        Ok(Request {
            path,
            argv,
            env,
            cwd,
            limits,
        })
    }

    /// The request as it goes on a channel: its length, then its body.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let body = self.encode();
        let mut bytes = Vec::with_capacity(4 + body.len());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes
    }

    /// Writes the request on a channel.
    #[cfg(test)]
    pub(super) fn send(&self, channel: &mut impl Write) -> io::Result<()> {
        channel.write_all(&self.to_bytes())
    }

    /// Reads a request from a channel.
    pub(super) fn receive(channel: &mut impl Read) -> io::Result<Request> {
        let mut len = [0u8; 4];
        channel.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_REQUEST {
            return Err(malformed());
        }
        let mut body = vec![0u8; len];
        channel.read_exact(&mut body)?;
        Request::decode(&body)
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
    if data.len() < n {
        return Err(malformed());
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Ok(head)
}

fn malformed() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed jail request")
}

/// One fixed-size message on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The command runs; its pid inside the jail (its pidfd travels with
    /// the record).
    Started(i32),
    /// It could not be started: the errno of the step that failed.
    Refused(i32),
    /// It ended: its wait status.
    Exited(i32),
    /// From the host: kill the command and its process group.
    Kill,
}

const RECORD_LEN: usize = 8;

impl Record {
    fn encode(self) -> [u8; RECORD_LEN] {
        let (kind, value) = match self {
            Record::Started(v) => (1u32, v),
            Record::Refused(v) => (2, v),
            Record::Exited(v) => (3, v),
            Record::Kill => (4, 0),
        };
        let mut out = [0u8; RECORD_LEN];
        out[..4].copy_from_slice(&kind.to_le_bytes());
        out[4..].copy_from_slice(&value.to_le_bytes());
        out
    }

    fn decode(bytes: [u8; RECORD_LEN]) -> io::Result<Record> {
        let kind = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let value = i32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Ok(match kind {
            1 => Record::Started(value),
            2 => Record::Refused(value),
            3 => Record::Exited(value),
            4 => Record::Kill,
            _ => return Err(malformed()),
        })
    }

    /// Sends the record on a channel, with `fd` attached.
    pub(crate) fn send(
        self,
        channel: BorrowedFd<'_>,
        fd: Option<BorrowedFd<'_>>,
    ) -> io::Result<()> {
        let data = self.encode();
        let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
        send_with_fds(channel, &data, &fds)
    }

    /// Sends `Started(pid)` with the command's pidfd and, as credentials,
    /// its pid: the kernel translates it into the receiver's PID namespace
    /// when the host receives it (even if the command has ended by then).
    pub(super) fn send_started(
        channel: BorrowedFd<'_>,
        pid: i32,
        pidfd: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let creds = rustix::net::UCred {
            pid: rustix::process::Pid::from_raw(pid).ok_or_else(malformed)?,
            uid: rustix::process::getuid(),
            gid: rustix::process::getgid(),
        };
        send_message(
            channel,
            &Record::Started(pid).encode(),
            &[pidfd],
            Some(creds),
        )
    }

    /// Receives one record and the descriptor attached to it. `None` at end
    /// of file. A `Started` record carries the command's pid in this
    /// process's PID namespace (the channel must have `SO_PASSCRED`).
    pub(crate) fn receive(
        channel: BorrowedFd<'_>,
        flags: RecvFlags,
    ) -> io::Result<Option<(Record, Option<OwnedFd>)>> {
        let mut data = [0u8; RECORD_LEN];
        let mut filled = 0;
        let mut fd = None;
        let mut pid = None;
        while filled < RECORD_LEN {
            let (n, mut fds, creds) = receive_message(channel, &mut data[filled..], flags)?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            filled += n;
            fd = fd.or_else(|| fds.pop());
            pid = pid.or(creds.map(|c| c.pid.as_raw_nonzero().get()));
        }
        Ok(Some(match (Record::decode(data)?, pid) {
            (Record::Started(_), Some(pid)) => (Record::Started(pid), fd),
            (record, _) => (record, fd),
        }))
    }
}

/// Sends `data` with `fds` as `SCM_RIGHTS`.
pub(super) fn send_with_fds(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<()> {
    send_message(socket, data, fds, None)
}

fn send_message(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    creds: Option<rustix::net::UCred>,
) -> io::Result<()> {
    let mut space =
        [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS), ScmCredentials(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    if let Some(creds) = creds {
        if !control.push(SendAncillaryMessage::ScmCredentials(creds)) {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
    }
    loop {
        match sendmsg(
            socket,
            &[IoSlice::new(data)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) if n == data.len() => return Ok(()),
            Ok(_) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Receives into `data` and the descriptors sent with it (close-on-exec).
pub(super) fn receive_with_fds(
    socket: BorrowedFd<'_>,
    data: &mut [u8],
    flags: RecvFlags,
) -> io::Result<(usize, Vec<OwnedFd>)> {
    receive_message(socket, data, flags).map(|(n, fds, _)| (n, fds))
}

fn receive_message(
    socket: BorrowedFd<'_>,
    data: &mut [u8],
    flags: RecvFlags,
) -> io::Result<(usize, Vec<OwnedFd>, Option<rustix::net::UCred>)> {
    let mut space =
        [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS), ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match recvmsg(
            socket,
            &mut [IoSliceMut::new(data)],
            &mut control,
            flags | RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(r) => break r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    };
    let mut fds = Vec::new();
    let mut creds = None;
    for message in control.drain() {
        match message {
            RecvAncillaryMessage::ScmRights(rights) => fds.extend(rights),
            RecvAncillaryMessage::ScmCredentials(c) => creds = Some(c),
            _ => {}
        }
    }
    Ok((received.bytes, fds, creds))
}

/// Writes as much of `bytes` as `channel` takes now, without waiting: how
/// many bytes.
pub(super) fn send_now(channel: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(channel, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A borrowed descriptor as a `Read`/`Write` stream (a channel).
pub(super) struct Stream<'a>(pub(super) BorrowedFd<'a>);

impl Read for Stream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match rustix::io::read(self.0, &mut *buf) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }
}

impl Write for Stream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(self.0, buf, SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> Stream<'a> {
    pub(super) fn new(fd: &'a impl AsFd) -> Stream<'a> {
        Stream(fd.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let request = Request {
            path: b"/usr/bin/sort".to_vec(),
            argv: vec![b"sort".to_vec(), b"-r".to_vec(), Vec::new()],
            env: vec![b"LANG=C".to_vec()],
            cwd: b"/work".to_vec(),
            limits: [1, u64::MAX, 3, 4, 5],
        };
        let mut wire = Vec::new();
        request.send(&mut wire).unwrap();
        assert_eq!(Request::receive(&mut &wire[..]).unwrap(), request);
        // Truncated or lying lengths are errors, not panics.
        for cut in 0..wire.len() {
            assert!(Request::receive(&mut &wire[..cut]).is_err(), "{cut}");
        }
        let mut lying = wire.clone();
        lying[4] = 0xff;
        assert!(Request::receive(&mut &lying[..]).is_err());
    }

    #[test]
    fn records_carry_descriptors() {
        let (a, b) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        Record::Started(7)
            .send(a.as_fd(), Some(null.as_fd()))
            .unwrap();
        Record::Exited(256).send(a.as_fd(), None).unwrap();
        let (record, fd) = Record::receive(b.as_fd(), RecvFlags::empty())
            .unwrap()
            .unwrap();
        assert_eq!(record, Record::Started(7));
        assert!(fd.is_some());
        let (record, fd) = Record::receive(b.as_fd(), RecvFlags::empty())
            .unwrap()
            .unwrap();
        assert_eq!((record, fd.is_none()), (Record::Exited(256), true));
        drop(a);
        assert!(Record::receive(b.as_fd(), RecvFlags::empty())
            .unwrap()
            .is_none());
    }
}
