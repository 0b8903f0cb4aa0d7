//! Messages are bytes: [`Encode`] and [`Decode`] convert the values guests
//! send (strings, byte strings, numbers) to and from them.

use crate::error::{check, take_result, Error, Result};
use procbridge_abi::Errno;
use std::borrow::Cow;
use std::cell::Cell;

/// A value that can be sent as a message.
///
/// ```
/// use procbridge_sdk::multiprocessing::Encode;
/// assert_eq!("hi".encode().as_ref(), b"hi");
/// assert_eq!(7u32.encode().as_ref(), &7u32.to_le_bytes());
/// ```
pub trait Encode {
    /// The message's bytes.
    fn encode(&self) -> Cow<'_, [u8]>;
}

/// A value that can be received from a message.
///
/// ```
/// use procbridge_sdk::multiprocessing::Decode;
/// assert_eq!(String::decode(b"hi".to_vec()).unwrap(), "hi");
/// assert!(u32::decode(vec![1, 2]).is_err());
/// ```
pub trait Decode: Sized {
    /// The value a message holds.
    ///
    /// # Errors
    /// `EINVAL` when the bytes are not such a value.
    fn decode(bytes: Vec<u8>) -> Result<Self>;
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self) -> Cow<'_, [u8]> {
        (**self).encode()
    }
}

impl Encode for [u8] {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl<const N: usize> Encode for [u8; N] {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl Encode for Vec<u8> {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl Encode for str {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl Encode for String {
    fn encode(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl Decode for Vec<u8> {
    fn decode(bytes: Vec<u8>) -> Result<Self> {
        Ok(bytes)
    }
}

impl Decode for String {
    fn decode(bytes: Vec<u8>) -> Result<Self> {
        String::from_utf8(bytes)
            .map_err(|_| Error::new(Errno::Inval, "the message is not a UTF-8 string"))
    }
}

/// Numbers are sent as their little-endian bytes.
macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Encode for $t {
            fn encode(&self) -> Cow<'_, [u8]> {
                Cow::Owned(self.to_le_bytes().to_vec())
            }
        }

        impl Decode for $t {
            fn decode(bytes: Vec<u8>) -> Result<Self> {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                if bytes.len() != raw.len() {
                    return Err(Error::new(
                        Errno::Inval,
                        format!(
                            "a message of {} bytes is not a {}",
                            bytes.len(),
                            stringify!($t)
                        ),
                    ));
                }
                raw.copy_from_slice(&bytes);
                Ok(<$t>::from_le_bytes(raw))
            }
        }
    )*};
}

numbers!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

const MIN_BUFFER: usize = 256;
const MAX_BUFFER: usize = 1 << 20;

/// Receives a message with `call(buf)` (`sys::queue_get`/`sys::pipe_recv`):
/// into a buffer sized like the previous message (`hint`), or, when it is
/// larger, through `take_result`.
pub(crate) fn receive(
    hint: &Cell<usize>,
    call: impl FnOnce(&mut Vec<u8>) -> i32,
) -> Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(hint.get().clamp(MIN_BUFFER, MAX_BUFFER));
    let len = check(call(&mut buf))? as usize;
    hint.set(len);
    if len == buf.len() {
        Ok(buf)
    } else {
        take_result(len as i32)
    }
}

pub(crate) use crate::time::micros;
