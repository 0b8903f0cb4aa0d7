//! The values a typed task takes and returns, and how they travel as bytes
//! (the SDK's answer to pickle).
//!
//! [`Value`] is implemented for the numbers, `bool`, `char`, `String`,
//! `()`, `Option`s, `Vec`s and tuples (up to eight) of values, and for the
//! handles [`Queue`](crate::multiprocessing::Queue),
//! [`JoinableQueue`](crate::multiprocessing::JoinableQueue) and
//! [`Connection`](crate::multiprocessing::Connection), which travel by
//! their handle number as a task's arguments: the receiving process uses its
//! own copy of the handle, and dropping what it received never closes that
//! copy. A task cannot return one (its number means nothing to the caller).
//!
//! The encoding is fixed-width little-endian for numbers, a `u32` length or
//! count before strings and `Vec`s, a `0`/`1` byte before an `Option`'s
//! value, and nothing between the fields of a tuple.
//!
//! ```
//! use procbridge_sdk::task::{Decoder, Encoder, Value};
//! let mut enc = Encoder::new();
//! (7i64, vec![String::from("A")]).encode(&mut enc);
//! let bytes = enc.into_bytes();
//! let mut dec = Decoder::new(&bytes);
//! let back: (i64, Vec<String>) = Value::decode(&mut dec).unwrap();
//! assert_eq!(back, (7, vec![String::from("A")]));
//! ```

use crate::error::{Error, ErrorKind, Result};
use procbridge_abi::Errno;

/// Bytes being written, and the handles among them.
#[derive(Debug, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
    handles: Vec<i32>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Appends raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Appends a handle's number and remembers it, so that a pool can make
    /// sure its workers hold the handle.
    pub fn write_handle(&mut self, handle: i32) {
        self.write(&handle.to_le_bytes());
        if !self.handles.contains(&handle) {
            self.handles.push(handle);
        }
    }

    /// The handles written so far.
    pub fn handles(&self) -> &[i32] {
        &self.handles
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Appends an item of the ABI's list encoding (`procbridge_abi::list`):
    /// its `u32` length, then what `write` writes.
    pub(crate) fn list_item(&mut self, write: impl FnOnce(&mut Encoder)) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        write(self);
        let len = (self.bytes.len() - at - 4) as u32;
        self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// The bytes written and the handles among them.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<i32>) {
        (self.bytes, self.handles)
    }
}

/// Bytes being read.
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes }
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// `EINVAL` when fewer are left.
    pub fn read(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(malformed(format!(
                "{} bytes wanted, {} left",
                n,
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// `EINVAL` when fewer are left.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.read(N)?);
        Ok(out)
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The error for bytes that are not the value asked for.
pub(crate) fn malformed(what: impl std::fmt::Display) -> Error {
    Error::with_kind(
        ErrorKind::Value,
        Errno::Inval,
        format!("malformed task value: {}", what),
    )
}

/// A value that can be a task's argument or result.
pub trait Value: Sized {
    /// Writes the value.
    fn encode(&self, out: &mut Encoder);

    /// Reads a value written by [`encode`](Value::encode).
    ///
    /// # Errors
    /// `EINVAL` when the bytes are not such a value.
    fn decode(input: &mut Decoder<'_>) -> Result<Self>;
}

/// Encodes one value into bytes and the handles among them.
pub(crate) fn to_bytes<T: Value>(value: &T) -> (Vec<u8>, Vec<i32>) {
    let mut enc = Encoder::new();
    value.encode(&mut enc);
    enc.into_parts()
}

/// Decodes one value that must take all of `bytes`.
pub(crate) fn from_bytes<T: Value>(bytes: &[u8]) -> Result<T> {
    let mut dec = Decoder::new(bytes);
    let value = T::decode(&mut dec)?;
    if !dec.is_empty() {
        return Err(malformed("bytes left over"));
    }
    Ok(value)
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn encode(&self, out: &mut Encoder) {
                out.write(&self.to_le_bytes());
            }
            fn decode(input: &mut Decoder<'_>) -> Result<Self> {
                Ok(<$t>::from_le_bytes(input.read_array()?))
            }
        }
    )*};
}

numbers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

impl Value for usize {
    fn encode(&self, out: &mut Encoder) {
        (*self as u64).encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        usize::try_from(u64::decode(input)?).map_err(malformed)
    }
}

impl Value for isize {
    fn encode(&self, out: &mut Encoder) {
        (*self as i64).encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        isize::try_from(i64::decode(input)?).map_err(malformed)
    }
}

impl Value for bool {
    fn encode(&self, out: &mut Encoder) {
        out.write(&[u8::from(*self)]);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        match input.read(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(malformed(format!("{} is not a bool", other))),
        }
    }
}

impl Value for char {
    fn encode(&self, out: &mut Encoder) {
        u32::from(*self).encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        let code = u32::decode(input)?;
        char::from_u32(code).ok_or_else(|| malformed(format!("{} is not a char", code)))
    }
}

/// A length or count, as a `u32`.
fn encode_len(len: usize, out: &mut Encoder) {
    // Task arguments and results are far below 4 GiB (the host's limits).
    (len as u32).encode(out);
}

impl Value for String {
    fn encode(&self, out: &mut Encoder) {
        encode_len(self.len(), out);
        out.write(self.as_bytes());
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        let len = u32::decode(input)? as usize;
        let bytes = input.read(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string that is not UTF-8"))
    }
}

impl<T: Value> Value for Vec<T> {
    fn encode(&self, out: &mut Encoder) {
        encode_len(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        let count = u32::decode(input)? as usize;
        // Every item but `()` (and tuples of it) takes at least a byte: cap
        // what is reserved up front by what is left, so a forged count
        // cannot reserve gigabytes (zero-sized items allocate nothing).
        let mut out = Vec::with_capacity(count.min(input.bytes.len()));
        for _ in 0..count {
            out.push(T::decode(input)?);
        }
        Ok(out)
    }
}

impl<T: Value> Value for Option<T> {
    fn encode(&self, out: &mut Encoder) {
        match self {
            None => out.write(&[0]),
            Some(value) => {
                out.write(&[1]);
                value.encode(out);
            }
        }
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        match input.read(1)?[0] {
            0 => Ok(None),
            1 => Ok(Some(T::decode(input)?)),
            other => Err(malformed(format!("{} is not an Option tag", other))),
        }
    }
}

impl Value for () {
    fn encode(&self, _out: &mut Encoder) {}
    fn decode(_input: &mut Decoder<'_>) -> Result<Self> {
        Ok(())
    }
}

macro_rules! tuples {
    ($(($($name:ident),+)),*) => {$(
        impl<$($name: Value),+> Value for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Encoder) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
            fn decode(input: &mut Decoder<'_>) -> Result<Self> {
                Ok(($($name::decode(input)?,)+))
            }
        }
    )*};
}

tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Value + PartialEq + std::fmt::Debug>(value: T) {
        let (bytes, handles) = to_bytes(&value);
        assert!(handles.is_empty());
        assert_eq!(from_bytes::<T>(&bytes).unwrap(), value);
    }

    #[test]
    fn values_round_trip() {
        round_trip(());
        round_trip(-5i64);
        round_trip(u8::MAX);
        round_trip(1.5f64);
        round_trip(true);
        round_trip('é');
        round_trip(String::from("héllo"));
        round_trip(vec![String::new(), String::from("B")]);
        round_trip(Some(vec![1u32, 2, 3]));
        round_trip(None::<String>);
        round_trip((1i32, String::from("x"), vec![(2u8, false)]));
        round_trip(usize::MAX);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(from_bytes::<i64>(&[1, 2]).is_err());
        assert!(from_bytes::<bool>(&[7]).is_err());
        assert!(from_bytes::<String>(&[2, 0, 0, 0, 0xff, 0xfe]).is_err());
        assert!(from_bytes::<Vec<u64>>(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(from_bytes::<char>(&0xd800u32.to_le_bytes()).is_err());
        assert!(from_bytes::<u8>(&[1, 2]).is_err(), "bytes left over");
        let err = from_bytes::<i64>(&[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Value);
    }
}
