//! Table-of-contents items and value types shared by the parameter (port 2) and log (port 5)
//! TOCs.
//!
//! Sources: cflib 0.1.34 `crazyflie/param.py` (`ParamTocElement.types`, flag bits),
//! `crazyflie/log.py` (`LogTocElement.types`), `crazyflie/toc.py` (item layout); firmware
//! `src/modules/interface/param.h` (`PARAM_EXTENDED 0x10`, `PARAM_CORE 0x20`, `PARAM_RONLY 0x40`),
//! `src/modules/src/log.c` (`typeLength`, `LOG_TYPE_MASK 0x0f`), `param_logic.c`
//! (`CMD_GET_ITEM_V2` reply: `[type][group\0][name\0]`).
//!
//! The two TOCs number their types differently: param types are a bit field (bits 0–1 size,
//! bit 2 float, bit 3 unsigned), log types are 1..=8.

use crate::CrtpError;
use crate::wire::{Reader, Writer};

/// Param type flag: extended type information is available (`MISC_GET_EXTENDED_TYPE_V2`).
pub const PARAM_FLAG_EXTENDED: u8 = 0x10;
/// Param type flag: core parameter (part of the stable API).
pub const PARAM_FLAG_CORE: u8 = 0x20;
/// Param type flag: read-only; the firmware silently ignores writes.
pub const PARAM_FLAG_READ_ONLY: u8 = 0x40;

/// Which TOC a type byte comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TocKind {
    Param,
    Log,
}

/// One TOC entry as on the wire. `group.name` is the variable's full name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TocItem {
    /// The raw type byte, flags included (for params: type in the low nibble, flags above).
    pub type_byte: u8,
    /// NUL-free.
    pub group: String,
    /// NUL-free.
    pub name: String,
}

impl TocItem {
    /// The value type, if the low nibble names one in this TOC's numbering.
    pub fn value_type(&self, kind: TocKind) -> Option<ValueType> {
        ValueType::from_type_byte(kind, self.type_byte)
    }

    /// Param read-only flag (meaningless for log items).
    pub fn is_read_only(&self) -> bool {
        self.type_byte & PARAM_FLAG_READ_ONLY != 0
    }

    /// `[type][group\0][name\0]`, the name's NUL being the last byte of the payload.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CrtpError> {
        let type_byte = r.u8()?;
        let group = r.cstr("group")?;
        let name = r.cstr("name")?;
        Ok(Self {
            type_byte,
            group,
            name,
        })
    }

    pub(crate) fn write(&self, w: Writer) -> Result<Writer, CrtpError> {
        w.u8(self.type_byte)
            .cstr("group", &self.group)?
            .cstr("name", &self.name)
    }
}

/// A TOC variable's storage type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    /// IEEE 754 half precision.
    F16,
    F32,
    F64,
}

const ALL: [ValueType; 11] = [
    ValueType::U8,
    ValueType::U16,
    ValueType::U32,
    ValueType::U64,
    ValueType::I8,
    ValueType::I16,
    ValueType::I32,
    ValueType::I64,
    ValueType::F16,
    ValueType::F32,
    ValueType::F64,
];

impl ValueType {
    /// Reads the low nibble of a TOC type byte (flags ignored) in `kind`'s numbering.
    pub fn from_type_byte(kind: TocKind, byte: u8) -> Option<Self> {
        let nibble = byte & 0x0F;
        ALL.into_iter().find(|t| t.type_byte(kind) == Some(nibble))
    }

    /// The type number in `kind`'s numbering; `None` for 64-bit types in the log TOC (it has none).
    pub fn type_byte(self, kind: TocKind) -> Option<u8> {
        use ValueType::*;
        match kind {
            TocKind::Param => Some(match self {
                I8 => 0x00,
                I16 => 0x01,
                I32 => 0x02,
                I64 => 0x03,
                F16 => 0x05,
                F32 => 0x06,
                F64 => 0x07,
                U8 => 0x08,
                U16 => 0x09,
                U32 => 0x0A,
                U64 => 0x0B,
            }),
            TocKind::Log => match self {
                U8 => Some(1),
                U16 => Some(2),
                U32 => Some(3),
                I8 => Some(4),
                I16 => Some(5),
                I32 => Some(6),
                F32 => Some(7),
                F16 => Some(8),
                U64 | I64 | F64 => None,
            },
        }
    }

    pub fn size_bytes(self) -> usize {
        use ValueType::*;
        match self {
            U8 | I8 => 1,
            U16 | I16 | F16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 => 8,
        }
    }

    /// The little-endian value as `f64` (64-bit integers may round). Errors unless
    /// `bytes.len() == self.size_bytes()`.
    pub fn decode_f64(self, bytes: &[u8]) -> Result<f64, CrtpError> {
        use ValueType::*;
        if bytes.len() != self.size_bytes() {
            return Err(CrtpError::BadLength {
                expected: self.size_bytes(),
                got: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        Ok(match self {
            U8 => f64::from(r.u8()?),
            I8 => f64::from(r.u8()? as i8),
            U16 => f64::from(r.u16()?),
            I16 => f64::from(r.i16()?),
            U32 => f64::from(r.u32()?),
            I32 => f64::from(r.u32()? as i32),
            U64 => r.u64()? as f64,
            I64 => r.u64()? as i64 as f64,
            F16 => f64::from(f16_to_f32(r.u16()?)),
            F32 => f64::from(f32::from_bits(r.u32()?)),
            F64 => f64::from_bits(r.u64()?),
        })
    }

    /// `value` in this type, little-endian. Integers are rounded and saturate at the type's
    /// bounds (NaN becomes 0); floats round to nearest.
    pub fn encode_f64(self, value: f64) -> Vec<u8> {
        use ValueType::*;
        let v = value.round();
        match self {
            U8 => vec![v as u8],
            I8 => vec![v as i8 as u8],
            U16 => (v as u16).to_le_bytes().to_vec(),
            I16 => (v as i16).to_le_bytes().to_vec(),
            U32 => (v as u32).to_le_bytes().to_vec(),
            I32 => (v as i32).to_le_bytes().to_vec(),
            U64 => (v as u64).to_le_bytes().to_vec(),
            I64 => (v as i64).to_le_bytes().to_vec(),
            F16 => f32_to_f16(value as f32).to_le_bytes().to_vec(),
            F32 => (value as f32).to_le_bytes().to_vec(),
            F64 => value.to_le_bytes().to_vec(),
        }
    }
}

/// IEEE 754 binary16 bits to `f32` (exact).
fn f16_to_f32(h: u16) -> f32 {
    let negative = h & 0x8000 != 0;
    let exp = u32::from((h >> 10) & 0x1F);
    let mant = u32::from(h & 0x03FF);
    let sign = if negative { 1u32 << 31 } else { 0 };
    let magnitude = match exp {
        // Zero and subnormals: mant * 2^-24.
        0 => mant as f32 * f32::from_bits(0x3380_0000),
        0x1F => f32::from_bits(0x7F80_0000 | (mant << 13)),
        _ => f32::from_bits(((exp + 112) << 23) | (mant << 13)),
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// Shifts right by `shift` (1..=31) rounding half to even.
fn shift_round(v: u32, shift: u32) -> u32 {
    let q = v >> shift;
    let rem = v & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// `f32` to IEEE 754 binary16 bits, rounding to nearest even; overflow gives infinity.
fn f32_to_f16(f: f32) -> u16 {
    let x = f.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xFF) as i32;
    let mant = x & 0x007F_FFFF;
    if exp == 0xFF {
        let nan = if mant != 0 { 0x0200 } else { 0 };
        return sign | 0x7C00 | nan;
    }
    let e = exp - 127 + 15;
    let bits = if e >= 0x1F {
        0x7C00
    } else if e <= 0 {
        if e < -10 {
            0
        } else {
            // Subnormal half: (1.mant * 2^(exp-127)) / 2^-24.
            shift_round(mant | 0x0080_0000, (14 - e) as u32)
        }
    } else {
        // A carry out of the mantissa correctly bumps the exponent (possibly to infinity).
        ((e as u32) << 10) + shift_round(mant, 13)
    };
    sign | bits.min(0x7C00) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn type_numbering_matches_cflib() {
        // cflib ParamTocElement.types and LogTocElement.types.
        assert_eq!(
            ValueType::from_type_byte(TocKind::Param, 0x08),
            Some(ValueType::U8)
        );
        assert_eq!(
            ValueType::from_type_byte(TocKind::Param, 0x06 | PARAM_FLAG_READ_ONLY),
            Some(ValueType::F32)
        );
        assert_eq!(
            ValueType::from_type_byte(TocKind::Param, 0x05),
            Some(ValueType::F16)
        );
        assert_eq!(ValueType::from_type_byte(TocKind::Param, 0x04), None);
        assert_eq!(
            ValueType::from_type_byte(TocKind::Log, 7),
            Some(ValueType::F32)
        );
        assert_eq!(
            ValueType::from_type_byte(TocKind::Log, 8),
            Some(ValueType::F16)
        );
        assert_eq!(ValueType::from_type_byte(TocKind::Log, 0), None);
        assert_eq!(ValueType::F64.type_byte(TocKind::Log), None);
        for t in ALL {
            for kind in [TocKind::Param, TocKind::Log] {
                if let Some(b) = t.type_byte(kind) {
                    assert_eq!(ValueType::from_type_byte(kind, b), Some(t));
                }
            }
        }
    }

    #[test]
    fn values_encode_like_struct_pack() {
        assert_eq!(ValueType::F32.encode_f64(1.0), vec![0x00, 0x00, 0x80, 0x3F]);
        assert_eq!(ValueType::I16.encode_f64(-2.0), vec![0xFE, 0xFF]);
        assert_eq!(ValueType::U8.encode_f64(300.0), vec![255]);
        assert_eq!(ValueType::F16.encode_f64(1.0), vec![0x00, 0x3C]);
        assert_eq!(ValueType::F16.decode_f64(&[0x00, 0xC0]), Ok(-2.0));
        assert_eq!(
            ValueType::U32.decode_f64(&[1, 0]),
            Err(CrtpError::BadLength {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(ValueType::I8.decode_f64(&[0xFF]), Ok(-1.0));
    }

    #[test]
    fn every_half_survives_f32_and_back() {
        for h in 0..=u16::MAX {
            let f = f16_to_f32(h);
            if f.is_nan() {
                assert!(f32_to_f16(f) & 0x7C00 == 0x7C00 && f32_to_f16(f) & 0x03FF != 0);
            } else {
                assert_eq!(f32_to_f16(f), h, "half {h:#06x}");
            }
        }
        assert_eq!(f32_to_f16(1e6), 0x7C00);
        assert_eq!(f32_to_f16(1e-10), 0);
        // 1 + 2^-11 is a tie between 1.0 and 1.0 + 2^-10: rounds to even (1.0).
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3C00);
    }

    proptest! {
        /// Encoding then decoding a value of any type gives the value back when it is exactly
        /// representable in that type.
        #[test]
        fn value_round_trip(v in -30000i32..30000) {
            for t in ALL {
                let v = if matches!(t, ValueType::U8 | ValueType::U16 | ValueType::U32 | ValueType::U64) {
                    f64::from(v.unsigned_abs() % 256)
                } else if matches!(t, ValueType::I8) {
                    f64::from(v % 128)
                } else if matches!(t, ValueType::F16) {
                    f64::from(v % 2048)
                } else {
                    f64::from(v)
                };
                prop_assert_eq!(t.decode_f64(&t.encode_f64(v)), Ok(v));
            }
        }
    }
}
