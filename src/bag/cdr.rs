//! CDR (OMG Common Data Representation, the plain XCDR1 encoding ROS 2 puts on the wire and
//! in bags): a bounds-checked reader and a writer for the primitive, string, sequence and
//! fixed-array fields of ROS 2 messages.
//!
//! A serialised message starts with a 4-byte encapsulation header (`00 01 00 00` for little
//! endian, `00 00 00 00` for big endian); every primitive of size n is aligned to n bytes
//! (at most 8) counted from the end of that header. Strings are a `u32` length that includes
//! a terminating NUL, then the bytes and the NUL. Sequences are a `u32` element count then
//! the elements; fixed arrays are the elements alone.
//!
//! Reading never panics and never allocates more than the input can justify: every length
//! is checked against the bytes that remain (times the smallest encoded size of one
//! element) before anything is reserved. Errors carry the byte offset inside the message.

use std::fmt;

/// Size of the encapsulation header in front of the CDR payload.
pub const ENCAPSULATION_LEN: usize = 4;

/// A decoding or encoding failure and where (byte offset from the start of the serialised
/// message, encapsulation header included) it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrError {
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for CdrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {} of the message", self.what, self.offset)
    }
}

impl std::error::Error for CdrError {}

pub type CdrResult<T> = Result<T, CdrError>;

/// Reads CDR primitives from one serialised message.
pub struct CdrReader<'a> {
    /// The payload (after the encapsulation header).
    buf: &'a [u8],
    pos: usize,
    little: bool,
    /// Name of the field being read, for error messages.
    field: &'static str,
}

impl<'a> CdrReader<'a> {
    /// Start reading a serialised message (encapsulation header included).
    pub fn new(message: &'a [u8]) -> CdrResult<Self> {
        if message.len() < ENCAPSULATION_LEN {
            return Err(CdrError {
                offset: 0,
                what: format!("message of {} bytes is shorter than the 4-byte CDR header", message.len()),
            });
        }
        let little = match (message[0], message[1]) {
            (0, 1) => true,
            (0, 0) => false,
            (a, b) => {
                return Err(CdrError {
                    offset: 0,
                    what: format!(
                        "unsupported CDR encapsulation {a:#04x} {b:#04x} (expected plain CDR, 00 00 or 00 01)"
                    ),
                })
            }
        };
        Ok(Self { buf: &message[ENCAPSULATION_LEN..], pos: 0, little, field: "" })
    }

    /// True for a little-endian message.
    pub fn is_little_endian(&self) -> bool {
        self.little
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Offset from the start of the message (encapsulation header included).
    pub fn offset(&self) -> usize {
        self.pos + ENCAPSULATION_LEN
    }

    /// Name the field whose bytes follow (used in error messages).
    pub fn set_field(&mut self, name: &'static str) {
        self.field = name;
    }

    pub fn error(&self, what: impl Into<String>) -> CdrError {
        let what = what.into();
        let what = if self.field.is_empty() { what } else { format!("field `{}`: {what}", self.field) };
        CdrError { offset: self.offset(), what }
    }

    #[inline]
    fn align(&mut self, n: usize) -> CdrResult<()> {
        let p = (self.pos + n - 1) & !(n - 1);
        if p > self.buf.len() {
            return Err(self.error("message ends inside alignment padding"));
        }
        self.pos = p;
        Ok(())
    }

    /// The next `n` raw bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> CdrResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!("needs {n} bytes but only {} remain", self.remaining())));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> CdrResult<[u8; N]> {
        self.align(N)?;
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub fn u8(&mut self) -> CdrResult<u8> {
        Ok(self.bytes(1)?[0])
    }
    pub fn i8(&mut self) -> CdrResult<i8> {
        Ok(self.u8()? as i8)
    }
    pub fn bool(&mut self) -> CdrResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => {
                self.pos -= 1;
                Err(self.error(format!("boolean byte is {v}, not 0 or 1")))
            }
        }
    }
    pub fn u16(&mut self) -> CdrResult<u16> {
        let a = self.array::<2>()?;
        Ok(if self.little { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) })
    }
    pub fn i16(&mut self) -> CdrResult<i16> {
        Ok(self.u16()? as i16)
    }
    pub fn u32(&mut self) -> CdrResult<u32> {
        let a = self.array::<4>()?;
        Ok(if self.little { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) })
    }
    pub fn i32(&mut self) -> CdrResult<i32> {
        Ok(self.u32()? as i32)
    }
    pub fn u64(&mut self) -> CdrResult<u64> {
        let a = self.array::<8>()?;
        Ok(if self.little { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
    }
    pub fn i64(&mut self) -> CdrResult<i64> {
        Ok(self.u64()? as i64)
    }
    pub fn f32(&mut self) -> CdrResult<f32> {
        Ok(f32::from_bits(self.u32()?))
    }
    pub fn f64(&mut self) -> CdrResult<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// A string: length with NUL, bytes, NUL. The bytes must be UTF-8.
    pub fn string(&mut self) -> CdrResult<String> {
        let at = self.offset();
        let n = self.u32()? as usize;
        if n == 0 {
            // Some writers encode the empty string without its NUL.
            return Ok(String::new());
        }
        if n > self.remaining() {
            return Err(self.error(format!("string length {n} exceeds the {} bytes that remain", self.remaining())));
        }
        let b = self.bytes(n)?;
        let text = &b[..n - 1];
        if b[n - 1] != 0 {
            return Err(CdrError {
                offset: at,
                what: format!("field `{}`: string of length {n} is not NUL-terminated", self.field),
            });
        }
        match std::str::from_utf8(text) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(CdrError { offset: at, what: format!("field `{}`: string is not UTF-8 ({e})", self.field) }),
        }
    }

    /// A sequence length, checked against the remaining bytes: `min_elem_size` is the
    /// smallest number of bytes one element can occupy.
    pub fn seq_len(&mut self, min_elem_size: usize) -> CdrResult<usize> {
        let n = self.u32()? as usize;
        self.check_count(n, min_elem_size)?;
        Ok(n)
    }

    /// Check that `n` elements of at least `min_elem_size` bytes each can still follow.
    pub fn check_count(&self, n: usize, min_elem_size: usize) -> CdrResult<()> {
        let need = n.saturating_mul(min_elem_size.max(1));
        if need > self.remaining() {
            return Err(
                self.error(format!("{n} elements need at least {need} bytes but only {} remain", self.remaining()))
            );
        }
        Ok(())
    }

    /// `n` primitive elements of `size` bytes each as one aligned slice.
    pub fn primitive_run(&mut self, n: usize, size: usize) -> CdrResult<&'a [u8]> {
        if n == 0 {
            return Ok(&[]);
        }
        self.align(size)?;
        self.check_count(n, size)?;
        self.bytes(n * size)
    }
}

/// Writes CDR (little endian, like every ROS 2 rmw on x86/ARM).
pub struct CdrWriter {
    buf: Vec<u8>,
    /// Value of alignment padding bytes (0; tests use another to locate the padding).
    pad: u8,
}

impl Default for CdrWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CdrWriter {
    pub fn new() -> Self {
        Self::with_capacity(64)
    }
    pub fn with_capacity(n: usize) -> Self {
        let mut buf = Vec::with_capacity(n + ENCAPSULATION_LEN);
        buf.extend_from_slice(&[0, 1, 0, 0]);
        Self { buf, pad: 0 }
    }
    /// A writer that fills alignment padding with `pad` instead of zeros (to locate the
    /// padding bytes when comparing with serialisers that leave them uninitialised).
    pub fn with_padding_byte(pad: u8) -> Self {
        Self { pad, ..Self::new() }
    }
    /// The serialised message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
    #[inline]
    fn align(&mut self, n: usize) {
        let pos = self.buf.len() - ENCAPSULATION_LEN;
        let pad = ((pos + n - 1) & !(n - 1)) - pos;
        self.buf.resize(self.buf.len() + pad, self.pad);
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn u16(&mut self, v: u16) {
        self.align(2);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i16(&mut self, v: i16) {
        self.u16(v as u16)
    }
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.u32(v as u32)
    }
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.u64(v as u64)
    }
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits())
    }
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits())
    }
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// A sequence or array length.
    pub fn len(&mut self, n: usize) -> CdrResult<()> {
        let n = u32::try_from(n).map_err(|_| CdrError {
            offset: self.buf.len(),
            what: format!("sequence of {n} elements exceeds the CDR limit of 2^32-1"),
        })?;
        self.u32(n);
        Ok(())
    }
    /// Raw bytes after aligning to `align`.
    pub fn raw(&mut self, align: usize, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.align(align);
        }
        self.buf.extend_from_slice(bytes);
    }
    /// Bytes written so far (encapsulation header included).
    pub fn position(&self) -> usize {
        self.buf.len()
    }
}

/// A type that can be a field of a message: primitives, strings, nested messages.
pub trait CdrField: Sized {
    /// The type as written in a `.msg` file (`float64`, `string`, `std_msgs/Header`).
    fn ros_type() -> String;
    /// The smallest number of bytes one value occupies (alignment not counted).
    fn min_size() -> usize;
    /// Nested message types this type uses (full names, `pkg/msg/Type`), depth first.
    fn dependencies(_out: &mut Vec<&'static str>) {}
    fn read(r: &mut CdrReader<'_>) -> CdrResult<Self>;
    fn write(&self, w: &mut CdrWriter) -> CdrResult<()>;

    /// `n` consecutive values (a sequence's or fixed array's elements); the count has been
    /// checked against the remaining bytes.
    fn read_many(r: &mut CdrReader<'_>, n: usize) -> CdrResult<Vec<Self>> {
        r.check_count(n, Self::min_size())?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Self::read(r)?);
        }
        Ok(v)
    }
    fn write_many(values: &[Self], w: &mut CdrWriter) -> CdrResult<()> {
        for v in values {
            v.write(w)?;
        }
        Ok(())
    }
}

macro_rules! primitive {
    ($t:ty, $name:literal, $size:literal, $read:ident, $write:ident) => {
        impl CdrField for $t {
            fn ros_type() -> String {
                $name.into()
            }
            fn min_size() -> usize {
                $size
            }
            #[inline]
            fn read(r: &mut CdrReader<'_>) -> CdrResult<Self> {
                r.$read()
            }
            #[inline]
            fn write(&self, w: &mut CdrWriter) -> CdrResult<()> {
                w.$write(*self);
                Ok(())
            }
        }
    };
}

/// Multi-byte numeric primitives: sequences are read and written in one pass over a slice.
macro_rules! numeric {
    ($t:ty, $name:literal, $size:literal, $read:ident, $write:ident) => {
        impl CdrField for $t {
            fn ros_type() -> String {
                $name.into()
            }
            fn min_size() -> usize {
                $size
            }
            #[inline]
            fn read(r: &mut CdrReader<'_>) -> CdrResult<Self> {
                r.$read()
            }
            #[inline]
            fn write(&self, w: &mut CdrWriter) -> CdrResult<()> {
                w.$write(*self);
                Ok(())
            }
            fn read_many(r: &mut CdrReader<'_>, n: usize) -> CdrResult<Vec<Self>> {
                let little = r.is_little_endian();
                let bytes = r.primitive_run(n, $size)?;
                Ok(bytes
                    .chunks_exact($size)
                    .map(|c| {
                        let a: [u8; $size] = c.try_into().expect("chunks_exact");
                        if little {
                            <$t>::from_le_bytes(a)
                        } else {
                            <$t>::from_be_bytes(a)
                        }
                    })
                    .collect())
            }
            fn write_many(values: &[Self], w: &mut CdrWriter) -> CdrResult<()> {
                if values.is_empty() {
                    return Ok(());
                }
                let mut bytes = Vec::with_capacity(values.len() * $size);
                for v in values {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                w.raw($size, &bytes);
                Ok(())
            }
        }
    };
}

primitive!(bool, "bool", 1, bool, bool);
primitive!(i8, "int8", 1, i8, i8);
numeric!(i16, "int16", 2, i16, i16);
numeric!(u16, "uint16", 2, u16, u16);
numeric!(i32, "int32", 4, i32, i32);
numeric!(u32, "uint32", 4, u32, u32);
numeric!(i64, "int64", 8, i64, i64);
numeric!(u64, "uint64", 8, u64, u64);
numeric!(f32, "float32", 4, f32, f32);
numeric!(f64, "float64", 8, f64, f64);

/// `uint8` (and `byte`/`char` fields, which ROS maps to the same byte): sequences are one
/// bounds check and one copy.
impl CdrField for u8 {
    fn ros_type() -> String {
        "uint8".into()
    }
    fn min_size() -> usize {
        1
    }
    #[inline]
    fn read(r: &mut CdrReader<'_>) -> CdrResult<Self> {
        r.u8()
    }
    #[inline]
    fn write(&self, w: &mut CdrWriter) -> CdrResult<()> {
        w.u8(*self);
        Ok(())
    }
    fn read_many(r: &mut CdrReader<'_>, n: usize) -> CdrResult<Vec<Self>> {
        Ok(r.bytes(n)?.to_vec())
    }
    fn write_many(values: &[Self], w: &mut CdrWriter) -> CdrResult<()> {
        w.raw(1, values);
        Ok(())
    }
}

impl CdrField for String {
    fn ros_type() -> String {
        "string".into()
    }
    fn min_size() -> usize {
        4
    }
    fn read(r: &mut CdrReader<'_>) -> CdrResult<Self> {
        r.string()
    }
    fn write(&self, w: &mut CdrWriter) -> CdrResult<()> {
        w.string(self);
        Ok(())
    }
}

/// Unbounded sequences (`T[]`).
impl<T: CdrField> CdrField for Vec<T> {
    fn ros_type() -> String {
        format!("{}[]", T::ros_type())
    }
    fn min_size() -> usize {
        4
    }
    fn dependencies(out: &mut Vec<&'static str>) {
        T::dependencies(out)
    }
    fn read(r: &mut CdrReader<'_>) -> CdrResult<Self> {
        let n = r.seq_len(T::min_size())?;
        T::read_many(r, n)
    }
    fn write(&self, w: &mut CdrWriter) -> CdrResult<()> {
        w.len(self.len())?;
        T::write_many(self, w)
    }
}

/// Fixed-size arrays (`T[N]`), which r2r represents as `Vec<T>` too.
pub fn read_fixed<T: CdrField>(r: &mut CdrReader<'_>, n: usize) -> CdrResult<Vec<T>> {
    T::read_many(r, n)
}

/// Write a fixed-size array; its length must be exactly `n`.
pub fn write_fixed<T: CdrField>(values: &[T], n: usize, w: &mut CdrWriter) -> CdrResult<()> {
    if values.len() != n {
        return Err(CdrError {
            offset: w.position(),
            what: format!("fixed-size array {}[{n}] has {} elements", T::ros_type(), values.len()),
        });
    }
    T::write_many(values, w)
}

/// A complete ROS 2 message type.
pub trait CdrMessage: CdrField {
    /// Full type name, `pkg/msg/Type`.
    const TYPE_NAME: &'static str;
    /// Field names and `.msg` types, in order.
    fn fields() -> Vec<(&'static str, String)>;

    /// Decode one serialised message (encapsulation header included). Bytes after the last
    /// field (alignment padding some writers add) are allowed.
    fn decode(bytes: &[u8]) -> CdrResult<Self> {
        let mut r = CdrReader::new(bytes)?;
        Self::read(&mut r)
    }

    /// Serialise (little endian, with the encapsulation header).
    fn encode(&self) -> CdrResult<Vec<u8>> {
        let mut w = CdrWriter::new();
        self.write(&mut w)?;
        Ok(w.finish())
    }

    /// Serialise into a buffer sized from a previous message of the same kind.
    fn encode_with_capacity(&self, capacity: usize) -> CdrResult<Vec<u8>> {
        let mut w = CdrWriter::with_capacity(capacity);
        self.write(&mut w)?;
        Ok(w.finish())
    }
}

/// Implement [`CdrField`] and [`CdrMessage`] for a message struct from its field list, in
/// declaration order. A field `name: T` is `T` on the wire (`Vec<T>` an unbounded sequence);
/// `name: T [N]` is a fixed array of N elements held in a `Vec<T>`.
#[macro_export]
macro_rules! cdr_message {
    ($ty:ty, $name:literal, { $($field:ident : $fty:ty $([$n:literal])?),* $(,)? }) => {
        impl $crate::bag::cdr::CdrField for $ty {
            fn ros_type() -> String {
                $name.replacen("/msg/", "/", 1)
            }
            fn min_size() -> usize {
                0 $(+ $crate::cdr_message!(@min $fty $(, $n)?))*
            }
            fn dependencies(out: &mut Vec<&'static str>) {
                $(
                    let mut inner = Vec::new();
                    <$fty as $crate::bag::cdr::CdrField>::dependencies(&mut inner);
                    for d in inner {
                        if !out.contains(&d) {
                            out.push(d);
                        }
                    }
                )*
                if !out.contains(&$name) {
                    out.push($name);
                }
            }
            fn read(r: &mut $crate::bag::cdr::CdrReader<'_>) -> $crate::bag::cdr::CdrResult<Self> {
                Ok(Self {
                    $($field: {
                        r.set_field(stringify!($field));
                        $crate::cdr_message!(@read r, $fty $(, $n)?)
                    },)*
                })
            }
            fn write(&self, w: &mut $crate::bag::cdr::CdrWriter) -> $crate::bag::cdr::CdrResult<()> {
                $($crate::cdr_message!(@write w, &self.$field, $fty $(, $n)?);)*
                Ok(())
            }
        }
        impl $crate::bag::cdr::CdrMessage for $ty {
            const TYPE_NAME: &'static str = $name;
            fn fields() -> Vec<(&'static str, String)> {
                vec![$((stringify!($field), $crate::cdr_message!(@rostype $fty $(, $n)?)),)*]
            }
        }
    };
    (@min $fty:ty) => { <$fty as $crate::bag::cdr::CdrField>::min_size() };
    (@min $fty:ty, $n:literal) => { $n * <$fty as $crate::bag::cdr::CdrField>::min_size() };
    (@read $r:ident, $fty:ty) => { <$fty as $crate::bag::cdr::CdrField>::read($r)? };
    (@read $r:ident, $fty:ty, $n:literal) => { $crate::bag::cdr::read_fixed::<$fty>($r, $n)? };
    (@write $w:ident, $v:expr, $fty:ty) => { <$fty as $crate::bag::cdr::CdrField>::write($v, $w)? };
    (@write $w:ident, $v:expr, $fty:ty, $n:literal) => { $crate::bag::cdr::write_fixed::<$fty>($v, $n, $w)? };
    (@rostype $fty:ty) => { <$fty as $crate::bag::cdr::CdrField>::ros_type() };
    (@rostype $fty:ty, $n:literal) => { format!("{}[{}]", <$fty as $crate::bag::cdr::CdrField>::ros_type(), $n) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Clone, PartialEq)]
    struct Inner {
        a: u8,
        b: f64,
    }
    crate::cdr_message!(Inner, "test_msgs/msg/Inner", { a: u8, b: f64 });

    #[derive(Debug, Default, Clone, PartialEq)]
    struct Outer {
        name: String,
        flag: bool,
        k: Vec<f64>,
        items: Vec<Inner>,
        data: Vec<u8>,
        small: Vec<u16>,
        last: i32,
    }
    crate::cdr_message!(Outer, "test_msgs/msg/Outer", {
        name: String, flag: bool, k: f64 [3], items: Vec<Inner>, data: Vec<u8>, small: Vec<u16>, last: i32
    });

    fn sample() -> Outer {
        Outer {
            name: "héllo".into(),
            flag: true,
            k: vec![1.0, -2.5, 3.25],
            items: vec![Inner { a: 7, b: 0.5 }, Inner { a: 9, b: -1e300 }],
            data: (0..=255).collect(),
            small: vec![1, 65535],
            last: -42,
        }
    }

    #[test]
    fn round_trip_and_alignment() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(&bytes[..4], &[0, 1, 0, 0]);
        // name: len 7 ("héllo" is 6 bytes + NUL) at payload offset 0.
        assert_eq!(&bytes[4..8], &7u32.to_le_bytes());
        // flag at payload 11, then k (float64[3]) aligned to 16: payload 12..16 is padding.
        assert_eq!(bytes[4 + 11], 1);
        assert_eq!(&bytes[4 + 16..4 + 24], &1.0f64.to_le_bytes());
        assert_eq!(Outer::decode(&bytes).unwrap(), m);
        assert_eq!(Outer::fields()[2], ("k", "float64[3]".to_string()));
        assert_eq!(Outer::fields()[3], ("items", "test_msgs/Inner[]".to_string()));
        let mut deps = Vec::new();
        Outer::dependencies(&mut deps);
        assert_eq!(deps, vec!["test_msgs/msg/Inner", "test_msgs/msg/Outer"]);
    }

    #[test]
    fn big_endian_is_read() {
        // Inner { a: 3, b: 2.0 } in big-endian CDR.
        let mut b = vec![0u8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&2.0f64.to_be_bytes());
        assert_eq!(Inner::decode(&b).unwrap(), Inner { a: 3, b: 2.0 });
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            let r = Outer::decode(&bytes[..n]);
            assert!(r.is_err(), "truncated to {n} bytes decoded");
            assert!(r.unwrap_err().offset <= n);
        }
    }

    #[test]
    fn huge_lengths_are_refused_before_allocating() {
        let mut bytes = sample().encode().unwrap();
        // The items count sits at payload offset 40 (after k ends at 40).
        assert_eq!(&bytes[44..48], &2u32.to_le_bytes());
        bytes[44..48].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = Outer::decode(&bytes).unwrap_err();
        assert!(e.what.contains("items") && e.what.contains("elements"), "{e}");
        assert_eq!(e.offset, 48);
        // A string length beyond the message.
        let mut bytes = sample().encode().unwrap();
        bytes[4..8].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        let e = Outer::decode(&bytes).unwrap_err();
        assert!(e.what.contains("string length"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut bytes = sample().encode().unwrap();
        bytes[4 + 11] = 7; // flag
        assert!(Outer::decode(&bytes).unwrap_err().what.contains("`flag`"));
        let mut bytes = sample().encode().unwrap();
        bytes[8 + 6] = 1; // the NUL of name
        assert!(Outer::decode(&bytes).unwrap_err().what.contains("NUL"));
        assert!(CdrReader::new(&[1, 2, 0, 0]).is_err());
    }

    #[test]
    fn fixed_array_length_is_checked_when_writing() {
        let mut m = sample();
        m.k.push(4.0);
        assert!(m.encode().unwrap_err().what.contains("float64[3]"));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let good = sample().encode().unwrap();
        for _ in 0..5000 {
            let mut b = good.clone();
            for _ in 0..rng.random_range(1..6) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            let _ = Outer::decode(&b);
            let n = rng.random_range(0..64);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = Outer::decode(&junk);
        }
    }
}
