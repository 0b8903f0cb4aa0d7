//! The door's frame: one call of a procbridge host function, built by the
//! Python side in a `bytearray` and answered in place.
//!
//! ```text
//! offset  field
//! 0       b"PBD1"
//! 4       i32   the function's return value (written by the host)
//! 8       u8    N, then N bytes: the function's name (module `procbridge`)
//! 9+N     u8    the argument count, then each argument:
//!                 b'i' i32                      an i32
//!                 b'I' i64                      an i64
//!                 b'b' u32 LEN, LEN bytes       a buffer: passes its address
//!                 b'B' u32 LEN, LEN bytes       a buffer: passes address, LEN
//!                 b'R'                          the rest of the frame, after
//!                                               the last argument: passes
//!                                               its address and length
//! ```
//!
//! Everything is little-endian; the frame is exactly the bytes written (the
//! write's length is the frame's). A buffer lives inside the frame, so a
//! host function that writes to it writes into the frame, where the Python
//! side reads it back. `R` (at most one) lets the hot paths (`Queue.put`,
//! `send_bytes`) append a message to a prebuilt frame without packing its
//! length. Decoding checks every length against the frame; the arguments it
//! produces are exactly what a Rust guest could pass to the same import,
//! and the host function checks them as it checks a Rust guest's.

/// The frame's first four bytes.
pub const MAGIC: &[u8; 4] = b"PBD1";
/// Where the host writes the return value.
pub const RET_OFFSET: usize = 4;
/// The most arguments a frame carries (no host function takes more).
const MAX_ARGS: usize = 16;

/// A decoded frame: the function to call and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The host function's name.
    pub name: String,
    /// Its arguments, with buffer addresses in guest memory.
    pub args: Vec<Arg>,
}

/// One argument as the host function receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// An `i32` (a buffer's address or length too).
    I32(i32),
    /// An `i64`.
    I64(i64),
}

/// Why a frame cannot be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not a frame: shorter than its header, or the wrong magic (nothing
    /// is written back).
    #[error("not a door frame")]
    NotAFrame,
    /// A field runs past the end, bytes left after the last argument, an
    /// unknown tag, two `R`s, too many arguments, a name that is not UTF-8
    /// (the return value says `-EINVAL`).
    #[error("malformed door frame")]
    Malformed,
}

/// The header: the magic and the return value.
const HEADER: usize = 8;

/// Decodes `frame`, which lies at guest address `base`.
///
/// # Errors
/// [`FrameError`] for anything but a well-formed frame.
pub fn decode(frame: &[u8], base: u32) -> Result<Call, FrameError> {
    // Too short to hold the header (and so the return value) is no frame.
    if frame.len() < HEADER || frame.get(..4) != Some(MAGIC.as_slice()) {
        return Err(FrameError::NotAFrame);
    }
    // The frame lies inside guest memory (a u32 space): its offsets added
    // to its address cannot overflow unless the caller lied about either.
    let address = |offset: usize| {
        u32::try_from(offset)
            .ok()
            .and_then(|offset| base.checked_add(offset))
            .map(|address| Arg::I32(address as i32))
            .ok_or(FrameError::Malformed)
    };
    let length = |len: usize| {
        i32::try_from(len)
            .map(Arg::I32)
            .map_err(|_| FrameError::Malformed)
    };
    let mut reader = Reader { frame, at: HEADER };
    let name_len = reader.u8()? as usize;
    let name = std::str::from_utf8(reader.bytes(name_len)?)
        .map_err(|_| FrameError::Malformed)?
        .to_string();
    let argc = reader.u8()? as usize;
    if argc > MAX_ARGS {
        return Err(FrameError::Malformed);
    }
    let mut args = Vec::with_capacity(argc + 2);
    // Where the rest of the frame goes among the arguments.
    let mut rest = None;
    for _ in 0..argc {
        match reader.u8()? {
            b'i' => args.push(Arg::I32(reader.i32()?)),
            b'I' => args.push(Arg::I64(reader.i64()?)),
            tag @ (b'b' | b'B') => {
                let len = reader.u32()? as usize;
                let offset = reader.at;
                reader.bytes(len)?;
                args.push(address(offset)?);
                if tag == b'B' {
                    args.push(length(len)?);
                }
            }
            b'R' if rest.is_none() => rest = Some(args.len()),
            _ => return Err(FrameError::Malformed),
        }
    }
    match rest {
        Some(slot) => {
            let len = frame.len() - reader.at;
            args.splice(slot..slot, [address(reader.at)?, length(len)?]);
        }
        None if reader.at != frame.len() => return Err(FrameError::Malformed),
        None => {}
    }
    Ok(Call { name, args })
}

struct Reader<'a> {
    frame: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.at.checked_add(n).ok_or(FrameError::Malformed)?;
        let bytes = self.frame.get(self.at..end).ok_or(FrameError::Malformed)?;
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        self.bytes(N)?.try_into().map_err(|_| FrameError::Malformed)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i32(&mut self) -> Result<i32, FrameError> {
        self.array().map(i32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, FrameError> {
        self.array().map(i64::from_le_bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a frame as the Python side does.
    pub(crate) fn frame(name: &str, args: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&[0; 4]);
        f.push(name.len() as u8);
        f.extend_from_slice(name.as_bytes());
        f.push(args.len() as u8);
        let mut rest = Vec::new();
        for (tag, value) in args {
            f.push(*tag);
            match tag {
                b'b' | b'B' => {
                    f.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    f.extend_from_slice(value);
                }
                b'R' => rest = value.clone(),
                _ => f.extend_from_slice(value),
            }
        }
        f.extend_from_slice(&rest);
        f
    }

    #[test]
    fn a_frame_decodes_into_the_call_a_rust_guest_would_make() {
        let f = frame(
            "waitpid",
            &[
                (b'i', 7i32.to_le_bytes().to_vec()),
                (b'I', (-2i64).to_le_bytes().to_vec()),
                (b'b', vec![0; 4]),
                (b'B', b"abc".to_vec()),
            ],
        );
        let call = decode(&f, 1000).unwrap();
        assert_eq!(call.name, "waitpid");
        // name 7 bytes: header 8 + 1 + 7 + argc 1 = 17; i32 arg 5 bytes,
        // i64 arg 9: the first buffer's bytes start at 17+5+9+5 = 36.
        assert_eq!(
            call.args,
            [
                Arg::I32(7),
                Arg::I64(-2),
                Arg::I32(1036),
                Arg::I32(1000 + 36 + 4 + 5),
                Arg::I32(3)
            ]
        );
    }

    #[test]
    fn the_rest_of_the_frame_is_a_buffer_in_its_argument_place() {
        // queue_put(q, ptr, len, timeout) with the message appended.
        let f = frame(
            "queue_put",
            &[
                (b'i', 5i32.to_le_bytes().to_vec()),
                (b'R', b"message".to_vec()),
                (b'I', (-1i64).to_le_bytes().to_vec()),
            ],
        );
        let call = decode(&f, 100).unwrap();
        // header 8 + 1 + 9 + argc 1 = 19; then 'i' 5, 'R' 1, 'I' 9: 34.
        assert_eq!(
            call.args,
            [Arg::I32(5), Arg::I32(134), Arg::I32(7), Arg::I64(-1)]
        );
        // An empty rest is an empty buffer; two rests are refused.
        let empty = frame("queue_put", &[(b'R', vec![])]);
        assert_eq!(
            decode(&empty, 0).unwrap().args,
            [Arg::I32(empty.len() as i32), Arg::I32(0)]
        );
        let two = frame("x", &[(b'R', vec![]), (b'R', vec![])]);
        assert_eq!(decode(&two, 0), Err(FrameError::Malformed));
    }

    #[test]
    fn every_truncation_and_every_lie_is_refused() {
        let f = frame("popen", &[(b'B', vec![1; 10]), (b'i', vec![0; 4])]);
        assert!(decode(&f, 0).is_ok());
        for cut in 0..f.len() {
            assert!(decode(&f[..cut], 0).is_err(), "{cut}");
        }
        // Shorter than the header: nothing to answer in.
        assert_eq!(decode(b"PBD1", 0), Err(FrameError::NotAFrame));
        assert_eq!(decode(&f[..7], 0), Err(FrameError::NotAFrame));
        let mut lying = f.clone();
        let at = 8 + 1 + 5 + 1 + 1;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&lying, 0), Err(FrameError::Malformed));
        let mut tag = f.clone();
        tag[8 + 1 + 5 + 1] = b'x';
        assert_eq!(decode(&tag, 0), Err(FrameError::Malformed));
        let mut magic = f.clone();
        magic[0] = b'X';
        assert_eq!(decode(&magic, 0), Err(FrameError::NotAFrame));
        // Bytes after the last argument, without `R`.
        let mut extra = f.clone();
        extra.push(0);
        assert_eq!(decode(&extra, 0), Err(FrameError::Malformed));
        let many = frame("x", &vec![(b'i', vec![0; 4]); MAX_ARGS + 1]);
        assert_eq!(decode(&many, 0), Err(FrameError::Malformed));
        let mut bad_name = frame("\u{ff}", &[]);
        bad_name[9] = 0xff;
        assert_eq!(decode(&bad_name, 0), Err(FrameError::Malformed));
        // A buffer near the top of the address space cannot wrap.
        assert_eq!(decode(&f, u32::MAX - 4), Err(FrameError::Malformed));
        let rest = frame("x", &[(b'R', vec![1; 8])]);
        assert_eq!(decode(&rest, u32::MAX - 4), Err(FrameError::Malformed));
    }
}
