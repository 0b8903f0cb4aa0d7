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

/// One argument of a frame being built with [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    /// `i`: an i32.
    I32(i32),
    /// `I`: an i64.
    I64(i64),
    /// `b`: a buffer; the function gets its address.
    Buf(&'a [u8]),
    /// `B`: a buffer; the function gets its address and length.
    BufLen(&'a [u8]),
    /// `R`: the rest of the frame; the function gets its address and length.
    Rest(&'a [u8]),
}

/// A frame calling `name` with `parts`, as the Python side builds it (for
/// tests, fuzzing, and guests in other languages). The name is bytes so
/// that a frame with a name that is not UTF-8 can be built too.
///
/// # Panics
/// With more than 255 parts, a name longer than 255 bytes or a buffer
/// longer than 4 GiB, which no frame can say.
pub fn encode(name: &[u8], parts: &[Part<'_>]) -> Vec<u8> {
    let byte = |n: usize| u8::try_from(n).expect("at most 255");
    let mut frame = MAGIC.to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.push(byte(name.len()));
    frame.extend_from_slice(name);
    frame.push(byte(parts.len()));
    let mut rest: &[u8] = &[];
    for part in parts {
        match *part {
            Part::I32(v) => {
                frame.push(b'i');
                frame.extend_from_slice(&v.to_le_bytes());
            }
            Part::I64(v) => {
                frame.push(b'I');
                frame.extend_from_slice(&v.to_le_bytes());
            }
            Part::Buf(bytes) | Part::BufLen(bytes) => {
                frame.push(if matches!(part, Part::Buf(_)) {
                    b'b'
                } else {
                    b'B'
                });
                let len = u32::try_from(bytes.len()).expect("at most 4 GiB");
                frame.extend_from_slice(&len.to_le_bytes());
                frame.extend_from_slice(bytes);
            }
            Part::Rest(bytes) => {
                frame.push(b'R');
                rest = bytes;
            }
        }
    }
    frame.extend_from_slice(rest);
    frame
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
mod tests {
    use super::*;

    #[test]
    fn a_frame_decodes_into_the_call_a_rust_guest_would_make() {
        let f = encode(
            b"waitpid",
            &[
                Part::I32(7),
                Part::I64(-2),
                Part::Buf(&[0; 4]),
                Part::BufLen(b"abc"),
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
        let f = encode(
            b"queue_put",
            &[Part::I32(5), Part::Rest(b"message"), Part::I64(-1)],
        );
        let call = decode(&f, 100).unwrap();
        // header 8 + 1 + 9 + argc 1 = 19; then 'i' 5, 'R' 1, 'I' 9: 34.
        assert_eq!(
            call.args,
            [Arg::I32(5), Arg::I32(134), Arg::I32(7), Arg::I64(-1)]
        );
        // An empty rest is an empty buffer; two rests are refused.
        let empty = encode(b"queue_put", &[Part::Rest(b"")]);
        assert_eq!(
            decode(&empty, 0).unwrap().args,
            [Arg::I32(empty.len() as i32), Arg::I32(0)]
        );
        let two = encode(b"x", &[Part::Rest(b""), Part::Rest(b"")]);
        assert_eq!(decode(&two, 0), Err(FrameError::Malformed));
    }

    #[test]
    fn every_truncation_and_every_lie_is_refused() {
        let f = encode(b"popen", &[Part::BufLen(&[1; 10]), Part::I32(0)]);
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
        let many = encode(b"x", &[Part::I32(0); MAX_ARGS + 1]);
        assert_eq!(decode(&many, 0), Err(FrameError::Malformed));
        let bad_name = encode(&[0xff], &[]);
        assert_eq!(decode(&bad_name, 0), Err(FrameError::Malformed));
        // A buffer near the top of the address space cannot wrap.
        assert_eq!(decode(&f, u32::MAX - 4), Err(FrameError::Malformed));
        let rest = encode(b"x", &[Part::Rest(&[1; 8])]);
        assert_eq!(decode(&rest, u32::MAX - 4), Err(FrameError::Malformed));
    }
}
