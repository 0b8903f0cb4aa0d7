//! The frames a pool and its workers exchange over their socket.
//!
//! Every frame is a little-endian `u32` payload length, then the payload:
//!
//! * request (pool → worker): `u64` chunk id, `u32` export name length, the
//!   name, `u32` item count, then each item's arguments as a `u32` length
//!   and bytes. The chunk id [`STOP`] asks the worker to exit.
//! * reply (worker → pool): `u64` chunk id, `u8` fatal flag (the worker
//!   exits after this reply: its instance cannot go on), `u32` item count,
//!   then per item a `u32` length and that many bytes: a `u8` status
//!   (`procbridge_abi::pool::STATUS_*`) and the return bytes or message.
//!   That is the list encoding the guest receives results in, so the pool
//!   keeps a reply's items as they came and copies them out in one piece.

/// The chunk id of the request that stops a worker.
pub(crate) const STOP: u64 = u64::MAX;

/// The largest frame accepted (a bigger one means a broken peer).
pub(crate) const MAX_FRAME: usize = 256 << 20;

/// A frame that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameError;

/// A decoded request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) id: u64,
    pub(crate) name: &'a str,
    pub(crate) items: Vec<&'a [u8]>,
}

/// A decoded reply.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Reply<'a> {
    pub(crate) id: u64,
    pub(crate) fatal: bool,
    /// The items, each a `u32` length then status and payload.
    pub(crate) items: &'a [u8],
    /// Where each item ends in `items`.
    pub(crate) ends: Vec<usize>,
}

/// Finds the first complete frame in `buf`: its payload and the bytes it
/// takes in `buf`. `Ok(None)` when more bytes are needed.
pub(crate) fn next_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError);
    }
    Ok(buf.get(4..4 + len).map(|payload| (payload, 4 + len)))
}

/// Appends a request frame to `out`: `count` items, already in the list
/// encoding in `items`.
pub(crate) fn push_request(out: &mut Vec<u8>, id: u64, name: &str, count: usize, items: &[u8]) {
    let start = begin(out);
    out.extend_from_slice(&id.to_le_bytes());
    push_bytes(out, name.as_bytes());
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(items);
    end(out, start);
}

/// Appends the frame that stops a worker.
pub(crate) fn push_stop(out: &mut Vec<u8>) {
    push_request(out, STOP, "", 0, &[]);
}

/// Appends a reply frame to `out`.
pub(crate) fn push_reply(out: &mut Vec<u8>, id: u64, fatal: bool, items: &[(u8, Vec<u8>)]) {
    let start = begin(out);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(u8::from(fatal));
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for (status, bytes) in items {
        out.extend_from_slice(&(bytes.len() as u32 + 1).to_le_bytes());
        out.push(*status);
        out.extend_from_slice(bytes);
    }
    end(out, start);
}

/// Encodes a reply whose items are already encoded as `push_reply` would
/// (each a `u32` length, a status byte and the payload): `count` of them in
/// `items`.
pub(crate) fn push_reply_encoded(out: &mut Vec<u8>, id: u64, count: usize, items: &[u8]) {
    let start = begin(out);
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&(count as u32).to_le_bytes());
    out.extend_from_slice(items);
    end(out, start);
}

/// Decodes a request payload.
pub(crate) fn request(payload: &[u8]) -> Result<Request<'_>, FrameError> {
    let mut r = Reader(payload);
    let id = r.u64()?;
    let name = std::str::from_utf8(r.bytes()?).map_err(|_| FrameError)?;
    let count = r.u32()? as usize;
    let mut items = Vec::with_capacity(count.min(r.0.len() / 4));
    for _ in 0..count {
        items.push(r.bytes()?);
    }
    r.end()?;
    Ok(Request { id, name, items })
}

/// Decodes a reply payload.
pub(crate) fn reply(payload: &[u8]) -> Result<Reply<'_>, FrameError> {
    let mut r = Reader(payload);
    let id = r.u64()?;
    let fatal = r.take(1)?[0] != 0;
    let count = r.u32()? as usize;
    let items = r.0;
    let mut ends = Vec::with_capacity(count.min(items.len() / 5));
    for _ in 0..count {
        if r.bytes()?.is_empty() {
            return Err(FrameError);
        }
        ends.push(items.len() - r.0.len());
    }
    r.end()?;
    Ok(Reply {
        id,
        fatal,
        items,
        ends,
    })
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    start
}

fn end(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let mut buf = Vec::new();
        let items = procbridge_abi::list::encode(&[&b"3"[..], b""]);
        push_request(&mut buf, 7, "square", 2, &items);
        push_stop(&mut buf);
        let (payload, used) = next_frame(&buf).unwrap().unwrap();
        let req = request(payload).unwrap();
        assert_eq!(req.id, 7);
        assert_eq!(req.name, "square");
        assert_eq!(req.items, vec![&b"3"[..], &b""[..]]);
        let (payload, rest) = next_frame(&buf[used..]).unwrap().unwrap();
        assert_eq!(request(payload).unwrap().id, STOP);
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn replies_round_trip() {
        let mut buf = Vec::new();
        push_reply(
            &mut buf,
            9,
            true,
            &[(0, b"9".to_vec()), (1, b"boom".to_vec())],
        );
        let (payload, _) = next_frame(&buf).unwrap().unwrap();
        let rep = reply(payload).unwrap();
        assert_eq!(rep.id, 9);
        assert!(rep.fatal);
        assert_eq!(rep.ends, vec![6, 15]);
        assert_eq!(
            procbridge_abi::list::decode(rep.items).unwrap(),
            vec![b"\09".to_vec(), b"\x01boom".to_vec()]
        );
    }

    #[test]
    fn partial_and_corrupt_frames() {
        let mut buf = Vec::new();
        push_request(&mut buf, 1, "f", 1, &procbridge_abi::list::encode(&[b"x"]));
        assert_eq!(next_frame(&buf[..buf.len() - 1]), Ok(None));
        assert_eq!(next_frame(&buf[..2]), Ok(None));
        let (payload, _) = next_frame(&buf).unwrap().unwrap();
        assert_eq!(request(&payload[..payload.len() - 1]), Err(FrameError));
        assert_eq!(reply(&[1, 2, 3]), Err(FrameError));
        // An item without its status byte.
        let mut empty_item = vec![0; 9];
        empty_item.extend_from_slice(&1u32.to_le_bytes());
        empty_item.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(reply(&empty_item), Err(FrameError));
        assert_eq!(next_frame(&u32::MAX.to_le_bytes()), Err(FrameError));
    }
}
