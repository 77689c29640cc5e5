//! Little-endian byte cursor and writer shared by the port codecs. Every read is bounds-checked
//! and maps a short payload to [`CrtpError::TooShort`]; `finish` maps trailing bytes to
//! [`CrtpError::BadLength`].

use crate::{CrtpError, MAX_DATA, Packet};

/// Reads fields from a payload front to back.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CrtpError> {
        let end = self.pos.saturating_add(n);
        let out = self.data.get(self.pos..end).ok_or(CrtpError::TooShort {
            expected_at_least: end,
            got: self.data.len(),
        })?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CrtpError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CrtpError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CrtpError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, CrtpError> {
        Ok(i16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CrtpError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CrtpError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A little-endian 24-bit unsigned integer.
    pub(crate) fn u24(&mut self) -> Result<u32, CrtpError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// An `f32` that must be finite (setpoints, positions).
    pub(crate) fn finite_f32(&mut self, field: &'static str) -> Result<f32, CrtpError> {
        let v = f32::from_le_bytes(self.array()?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(CrtpError::NonFinite { field })
        }
    }

    /// A NUL-terminated UTF-8 string (the NUL is consumed, not returned).
    pub(crate) fn cstr(&mut self, field: &'static str) -> Result<String, CrtpError> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(CrtpError::BadString { field })?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| CrtpError::BadString { field })?;
        self.pos += len + 1;
        Ok(text.to_owned())
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        self.pos = self.data.len();
        rest
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(self) -> Result<(), CrtpError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(CrtpError::BadLength {
                expected: self.pos,
                got: self.data.len(),
            })
        }
    }
}

/// Builds a payload. Length is checked once, when the packet is made.
#[derive(Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(MAX_DATA))
    }

    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub(crate) fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// The low 24 bits of `v`; the caller has checked the range.
    pub(crate) fn u24(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes()[..3]);
        self
    }

    /// A finite `f32`, or [`CrtpError::NonFinite`]: what decode would reject is never written.
    pub(crate) fn finite_f32(mut self, field: &'static str, v: f32) -> Result<Self, CrtpError> {
        if !v.is_finite() {
            return Err(CrtpError::NonFinite { field });
        }
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(self)
    }

    pub(crate) fn bytes(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }

    /// `text` then a NUL; errors if `text` itself holds a NUL.
    pub(crate) fn cstr(mut self, field: &'static str, text: &str) -> Result<Self, CrtpError> {
        if text.as_bytes().contains(&0) {
            return Err(CrtpError::BadString { field });
        }
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(0);
        Ok(self)
    }

    /// The finished packet, or [`CrtpError::TooLong`] past 30 data bytes.
    pub(crate) fn packet(self, port: u8, channel: u8) -> Result<Packet, CrtpError> {
        Packet::raw(port, channel, self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(), Ok(0x0201));
        assert_eq!(
            r.u16(),
            Err(CrtpError::TooShort {
                expected_at_least: 4,
                got: 3
            })
        );
        let mut r = Reader::new(b"ab\0cd");
        assert_eq!(r.cstr("g").as_deref(), Ok("ab"));
        assert_eq!(r.cstr("n"), Err(CrtpError::BadString { field: "n" }));
        assert_eq!(
            Reader::new(&[0; 2]).finish(),
            Err(CrtpError::BadLength {
                expected: 0,
                got: 2
            })
        );
        let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(r.finite_f32("x"), Err(CrtpError::NonFinite { field: "x" }));
    }

    #[test]
    fn writer_rejects_what_decode_would() {
        assert!(Writer::new().finite_f32("x", f32::NAN).is_err());
        assert!(Writer::new().cstr("g", "a\0b").is_err());
        assert!(matches!(
            Writer::new().bytes(&[0; 31]).packet(2, 0),
            Err(CrtpError::TooLong { got: 31 })
        ));
    }
}
