//! The door's frame: one call of a procbridge host function, built by the
//! Python side in a `bytearray` and answered in place.
//!
//! ```text
//! offset  field
//! 0       b"PBD1"
//! 4       i32   the function's return value (written by the host)
//! 8       u32   the frame's length (the write's length)
//! 12      u8    N, then N bytes: the function's name (module `procbridge`)
//! 13+N    u8    the argument count, then each argument:
//!                 b'i' i32                      an i32
//!                 b'I' i64                      an i64
//!                 b'b' u32 LEN, LEN bytes       a buffer: passes its address
//!                 b'B' u32 LEN, LEN bytes       a buffer: passes address, LEN
//! ```
//!
//! Everything is little-endian. A buffer lives inside the frame, so a host
//! function that writes to it writes into the frame, where the Python side
//! reads it back. Decoding checks every length against the frame; the
//! arguments it produces are exactly what a Rust guest could pass to the
//! same import, and the host function checks them as it checks a Rust
//! guest's.

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
    /// Not a frame: shorter than its header, wrong magic, or its length
    /// field does not match (nothing is written back).
    #[error("not a door frame")]
    NotAFrame,
    /// A field runs past the end, an unknown tag, too many arguments, a
    /// name that is not UTF-8 (the return value says `-EINVAL`).
    #[error("malformed door frame")]
    Malformed,
}

/// Decodes `frame`, which lies at guest address `base`.
///
/// # Errors
/// [`FrameError`] for anything but a well-formed frame.
pub fn decode(frame: &[u8], base: u32) -> Result<Call, FrameError> {
    // Too short to hold the header (and so the return value) is no frame.
    if frame.len() < 12 || frame.get(..4) != Some(MAGIC.as_slice()) {
        return Err(FrameError::NotAFrame);
    }
    let mut reader = Reader { frame, at: 8 };
    if reader.u32()? as usize != frame.len() {
        return Err(FrameError::NotAFrame);
    }
    let name_len = reader.u8()? as usize;
    let name = std::str::from_utf8(reader.bytes(name_len)?)
        .map_err(|_| FrameError::Malformed)?
        .to_string();
    let argc = reader.u8()? as usize;
    if argc > MAX_ARGS {
        return Err(FrameError::Malformed);
    }
    let mut args = Vec::with_capacity(argc + 2);
    for _ in 0..argc {
        match reader.u8()? {
            b'i' => args.push(Arg::I32(reader.i32()?)),
            b'I' => args.push(Arg::I64(reader.i64()?)),
            tag @ (b'b' | b'B') => {
                let len = reader.u32()?;
                let offset = reader.at;
                reader.bytes(len as usize)?;
                // The frame lies inside guest memory (a u32 space), so its
                // offsets cannot overflow the address.
                let address = base
                    .checked_add(offset as u32)
                    .ok_or(FrameError::Malformed)?;
                args.push(Arg::I32(address as i32));
                if tag == b'B' {
                    args.push(Arg::I32(
                        i32::try_from(len).map_err(|_| FrameError::Malformed)?,
                    ));
                }
            }
            _ => return Err(FrameError::Malformed),
        }
    }
    if reader.at != frame.len() {
        return Err(FrameError::Malformed);
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
        f.extend_from_slice(&[0; 8]);
        f.push(name.len() as u8);
        f.extend_from_slice(name.as_bytes());
        f.push(args.len() as u8);
        for (tag, value) in args {
            f.push(*tag);
            if matches!(tag, b'b' | b'B') {
                f.extend_from_slice(&(value.len() as u32).to_le_bytes());
            }
            f.extend_from_slice(value);
        }
        let len = f.len() as u32;
        f[8..12].copy_from_slice(&len.to_le_bytes());
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
        // name 7 bytes: header 12 + 1 + 7 + argc 1 = 21; i32 arg 5 bytes,
        // i64 arg 9: the first buffer's bytes start at 21+5+9+5 = 40.
        assert_eq!(
            call.args,
            [
                Arg::I32(7),
                Arg::I64(-2),
                Arg::I32(1040),
                Arg::I32(1000 + 40 + 4 + 5),
                Arg::I32(3)
            ]
        );
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
        assert_eq!(decode(&f[..11], 0), Err(FrameError::NotAFrame));
        let mut lying = f.clone();
        let at = 12 + 1 + 5 + 1 + 1;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&lying, 0), Err(FrameError::Malformed));
        let mut tag = f.clone();
        tag[12 + 1 + 5 + 1] = b'x';
        assert_eq!(decode(&tag, 0), Err(FrameError::Malformed));
        let mut magic = f.clone();
        magic[0] = b'X';
        assert_eq!(decode(&magic, 0), Err(FrameError::NotAFrame));
        let mut extra = f.clone();
        extra.push(0);
        assert_eq!(decode(&extra, 0), Err(FrameError::NotAFrame));
        let many = frame("x", &vec![(b'i', vec![0; 4]); MAX_ARGS + 1]);
        assert_eq!(decode(&many, 0), Err(FrameError::Malformed));
        let bad_name = frame("\u{ff}", &[]);
        let mut bad_name = bad_name;
        bad_name[13] = 0xff;
        assert_eq!(decode(&bad_name, 0), Err(FrameError::Malformed));
        // A buffer near the top of the address space cannot wrap.
        assert_eq!(decode(&f, u32::MAX - 4), Err(FrameError::Malformed));
    }
}
