//! The simulated firmware's tables of contents: the log variables and the parameters it serves,
//! with their wire types, as the firmware's `LOG_GROUP_START`/`PARAM_GROUP_START` macros would
//! declare them. Type numbers: log TOC 1 u8, 2 u16, 3 u32, 4 i8, 5 i16, 6 i32, 7 float, 8 fp16;
//! param TOC low nibble 0x08 u8, 0x09 u16, 0x0A u32, 0x00 i8, 0x01 i16, 0x02 i32, 0x06 float, flag
//! 0x40 read-only (cflib `crazyflie/log.py: LogTocElement.types`, `param.py: ParamTocElement`).

use depthpilot_firmware::{ParamType, firmware_params};
use std::sync::LazyLock;

/// A value type with its byte encoding (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    U8,
    U16,
    U32,
    I8,
    I16,
    I32,
    F32,
    F16,
}

impl Ty {
    /// The log TOC's type number (also the low nibble of a log block's fetch byte).
    pub fn log_code(self) -> u8 {
        match self {
            Ty::U8 => 1,
            Ty::U16 => 2,
            Ty::U32 => 3,
            Ty::I8 => 4,
            Ty::I16 => 5,
            Ty::I32 => 6,
            Ty::F32 => 7,
            Ty::F16 => 8,
        }
    }

    pub fn from_log_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Ty::U8,
            2 => Ty::U16,
            3 => Ty::U32,
            4 => Ty::I8,
            5 => Ty::I16,
            6 => Ty::I32,
            7 => Ty::F32,
            8 => Ty::F16,
            _ => return None,
        })
    }

    /// The param TOC's type nibble.
    pub fn param_code(self) -> u8 {
        match self {
            Ty::U8 => 0x08,
            Ty::U16 => 0x09,
            Ty::U32 => 0x0A,
            Ty::I8 => 0x00,
            Ty::I16 => 0x01,
            Ty::I32 => 0x02,
            Ty::F32 => 0x06,
            Ty::F16 => 0x05,
        }
    }

    pub fn size(self) -> usize {
        match self {
            Ty::U8 | Ty::I8 => 1,
            Ty::U16 | Ty::I16 | Ty::F16 => 2,
            Ty::U32 | Ty::I32 | Ty::F32 => 4,
        }
    }

    /// `v` in this type, as the firmware's C cast would store it (saturating for integers).
    pub fn encode(self, v: f64) -> Vec<u8> {
        let v = if v.is_nan() { 0.0 } else { v };
        match self {
            Ty::U8 => vec![v as u8],
            Ty::U16 => (v as u16).to_le_bytes().to_vec(),
            Ty::U32 => (v as u32).to_le_bytes().to_vec(),
            Ty::I8 => (v as i8).to_le_bytes().to_vec(),
            Ty::I16 => (v as i16).to_le_bytes().to_vec(),
            Ty::I32 => (v as i32).to_le_bytes().to_vec(),
            Ty::F32 => (v as f32).to_le_bytes().to_vec(),
            Ty::F16 => f16_bits(v as f32).to_le_bytes().to_vec(),
        }
    }

    /// Reads a value of this type from the front of `b` (None: too short).
    pub fn decode(self, b: &[u8]) -> Option<f64> {
        let a = b.get(..self.size())?;
        Some(match self {
            Ty::U8 => f64::from(a[0]),
            Ty::I8 => f64::from(a[0] as i8),
            Ty::U16 => f64::from(u16::from_le_bytes([a[0], a[1]])),
            Ty::I16 => f64::from(i16::from_le_bytes([a[0], a[1]])),
            Ty::U32 => f64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            Ty::I32 => f64::from(i32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            Ty::F32 => f64::from(f32::from_le_bytes([a[0], a[1], a[2], a[3]])),
            Ty::F16 => f64::from(f16_to_f32(u16::from_le_bytes([a[0], a[1]]))),
        })
    }
}

/// IEEE 754 half precision, round to nearest (enough for telemetry).
fn f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xFF) as i32;
    let man = b & 0x7F_FFFF;
    if exp == 0xFF {
        return sign | 0x7C00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1F {
        sign | 0x7C00
    } else if e <= 0 {
        if e < -10 {
            sign
        } else {
            let m = (man | 0x80_0000) >> (14 - e);
            sign | ((m + 0x1000) >> 13) as u16
        }
    } else {
        let v = (((e as u32) << 10) | (man >> 13)) + ((man >> 12) & 1);
        sign | v as u16
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1F);
    let man = u32::from(h & 0x3FF);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3FF) << 13)
        }
        (0x1F, m) => sign | 0x7F80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// What the log variables read: one snapshot of the simulated Crazyflie per physics step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Attitude estimate, firmware frame (degrees; pitch positive = nose up, as `stabilizer.pitch`).
    pub roll_deg: f64,
    pub pitch_deg: f64,
    pub yaw_deg: f64,
    /// The thrust the stabiliser used (raw).
    pub thrust: f64,
    pub estimate_pos_m: [f64; 3],
    pub estimate_vel_m_s: [f64; 3],
    pub motors: [u16; 4],
    pub acc_g: [f64; 3],
    pub gyro_deg_s: [f64; 3],
    pub vbat_v: f64,
    pub can_fly: bool,
    pub is_flying: bool,
    pub is_tumbled: bool,
    /// The simulation's truth, right-handed (not on a real Crazyflie: group `sim`).
    pub true_pos_m: [f64; 3],
    pub true_rpy_deg: [f64; 3],
}

/// One log TOC entry.
pub struct LogVar {
    pub group: &'static str,
    pub name: &'static str,
    pub ty: Ty,
    pub read: fn(&Snapshot) -> f64,
}

const fn lv(group: &'static str, name: &'static str, ty: Ty, read: fn(&Snapshot) -> f64) -> LogVar {
    LogVar {
        group,
        name,
        ty,
        read,
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The log TOC, in TOC order (ids are indices).
pub static LOG_VARS: &[LogVar] = &[
    lv("stabilizer", "roll", Ty::F32, |s| s.roll_deg),
    lv("stabilizer", "pitch", Ty::F32, |s| s.pitch_deg),
    lv("stabilizer", "yaw", Ty::F32, |s| s.yaw_deg),
    lv("stabilizer", "thrust", Ty::F32, |s| s.thrust),
    lv("stateEstimate", "x", Ty::F32, |s| s.estimate_pos_m[0]),
    lv("stateEstimate", "y", Ty::F32, |s| s.estimate_pos_m[1]),
    lv("stateEstimate", "z", Ty::F32, |s| s.estimate_pos_m[2]),
    lv("stateEstimate", "vx", Ty::F32, |s| s.estimate_vel_m_s[0]),
    lv("stateEstimate", "vy", Ty::F32, |s| s.estimate_vel_m_s[1]),
    lv("stateEstimate", "vz", Ty::F32, |s| s.estimate_vel_m_s[2]),
    lv("stateEstimate", "roll", Ty::F32, |s| s.roll_deg),
    lv("stateEstimate", "pitch", Ty::F32, |s| s.pitch_deg),
    lv("stateEstimate", "yaw", Ty::F32, |s| s.yaw_deg),
    lv("motor", "m1", Ty::U32, |s| f64::from(s.motors[0])),
    lv("motor", "m2", Ty::U32, |s| f64::from(s.motors[1])),
    lv("motor", "m3", Ty::U32, |s| f64::from(s.motors[2])),
    lv("motor", "m4", Ty::U32, |s| f64::from(s.motors[3])),
    lv("acc", "x", Ty::F32, |s| s.acc_g[0]),
    lv("acc", "y", Ty::F32, |s| s.acc_g[1]),
    lv("acc", "z", Ty::F32, |s| s.acc_g[2]),
    lv("gyro", "x", Ty::F32, |s| s.gyro_deg_s[0]),
    lv("gyro", "y", Ty::F32, |s| s.gyro_deg_s[1]),
    lv("gyro", "z", Ty::F32, |s| s.gyro_deg_s[2]),
    lv("pm", "vbat", Ty::F32, |s| s.vbat_v),
    lv("pm", "state", Ty::I8, |_| 0.0),
    lv("pm", "batteryLevel", Ty::U8, |s| {
        ((s.vbat_v - 3.0) / 1.2 * 100.0).clamp(0.0, 100.0)
    }),
    lv("sys", "canfly", Ty::U8, |s| flag(s.can_fly)),
    lv("sys", "isFlying", Ty::U8, |s| flag(s.is_flying)),
    lv("sys", "isTumbled", Ty::U8, |s| flag(s.is_tumbled)),
    lv("sim", "x", Ty::F32, |s| s.true_pos_m[0]),
    lv("sim", "y", Ty::F32, |s| s.true_pos_m[1]),
    lv("sim", "z", Ty::F32, |s| s.true_pos_m[2]),
    lv("sim", "roll", Ty::F32, |s| s.true_rpy_deg[0]),
    lv("sim", "pitch", Ty::F32, |s| s.true_rpy_deg[1]),
    lv("sim", "yaw", Ty::F32, |s| s.true_rpy_deg[2]),
];

/// One parameter declaration: name, type, access and default value.
pub struct ParamDecl {
    pub group: &'static str,
    pub name: &'static str,
    pub ty: Ty,
    pub read_only: bool,
    pub default: f64,
    /// The value lives in the firmware model (`depthpilot_firmware::firmware_params`):
    /// reads and writes go there. Otherwise it belongs to the simulated Crazyflie itself.
    pub firmware: bool,
}

const fn rw(group: &'static str, name: &'static str, ty: Ty, default: f64) -> ParamDecl {
    ParamDecl {
        group,
        name,
        ty,
        read_only: false,
        default,
        firmware: false,
    }
}

const fn ro(group: &'static str, name: &'static str, ty: Ty, default: f64) -> ParamDecl {
    ParamDecl {
        group,
        name,
        ty,
        read_only: true,
        default,
        firmware: false,
    }
}

/// The simulated Crazyflie's own parameters before the firmware model's (`stabilizer.c`,
/// `commander.c`).
const OWN_BEFORE: [ParamDecl; 4] = [
    rw("stabilizer", "estimator", Ty::U8, 2.0),
    rw("stabilizer", "controller", Ty::U8, 1.0),
    rw("stabilizer", "stop", Ty::U8, 0.0),
    rw("commander", "enHighLevel", Ty::U8, 0.0),
];

/// ... and after them (`estimator_kalman.c`, `led_ring`/`ledring12.c`, the deck, build and
/// system groups).
const OWN_AFTER: [ParamDecl; 11] = [
    rw("kalman", "resetEstimation", Ty::U8, 0.0),
    rw("ring", "effect", Ty::U8, 6.0),
    rw("ring", "solidRed", Ty::U8, 20.0),
    rw("ring", "solidGreen", Ty::U8, 20.0),
    rw("ring", "solidBlue", Ty::U8, 20.0),
    rw("ring", "headlightEnable", Ty::U8, 0.0),
    ro("deck", "bcLedRing", Ty::U8, 1.0),
    ro("firmware", "revision0", Ty::U32, 0.0),
    ro("firmware", "modified", Ty::U8, 0.0),
    ro("cpu", "flash", Ty::U16, 1024.0),
    ro("system", "selftestPassed", Ty::U8, 1.0),
];

/// The wire type of a firmware-model parameter.
pub fn ty_of(t: ParamType) -> Ty {
    match t {
        ParamType::U8 => Ty::U8,
        ParamType::U16 => Ty::U16,
        ParamType::U32 => Ty::U32,
        ParamType::I8 => Ty::I8,
        ParamType::I16 => Ty::I16,
        ParamType::I32 => Ty::I32,
        ParamType::F32 => Ty::F32,
    }
}

/// The param TOC, in TOC order: the Crazyflie's own parameters around the firmware model's
/// ([`firmware_params`], whose defaults are the CF2 firmware's, `platform_defaults_cf2.h`).
pub static PARAMS: LazyLock<Vec<ParamDecl>> = LazyLock::new(|| {
    let firmware = firmware_params().iter().map(|p| ParamDecl {
        group: p.group,
        name: p.name,
        ty: ty_of(p.ty),
        read_only: p.read_only,
        default: p.default,
        firmware: true,
    });
    OWN_BEFORE
        .into_iter()
        .chain(firmware)
        .chain(OWN_AFTER)
        .collect()
});

/// CRC-32 (IEEE, as `crc32fast` and the firmware's `crc32CalculateBuffer`).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The CRC a TOC is announced with: over each entry's type byte and `group\0name\0`, so any
/// change of the table changes it and clients' TOC caches are refreshed.
pub fn toc_crc<'a>(entries: impl Iterator<Item = (u8, &'a str, &'a str)>) -> u32 {
    let mut bytes = Vec::new();
    for (ty, group, name) in entries {
        bytes.push(ty);
        bytes.extend_from_slice(group.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
    }
    crc32(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn names_are_unique_and_fit_a_packet() {
        let mut seen = std::collections::HashSet::new();
        for v in LOG_VARS {
            assert!(seen.insert(format!("log {}.{}", v.group, v.name)));
            // [cmd][id u16][type][group\0][name\0] must fit 30 bytes.
            assert!(4 + v.group.len() + 1 + v.name.len() < 30);
        }
        for p in PARAMS.iter() {
            assert!(seen.insert(format!("param {}.{}", p.group, p.name)));
            assert!(4 + p.group.len() + 1 + p.name.len() < 30);
        }
    }

    #[test]
    fn the_toc_holds_every_firmware_param_and_the_old_names() {
        let has = |g: &str, n: &str| PARAMS.iter().any(|p| p.group == g && p.name == n);
        for p in firmware_params() {
            assert!(has(p.group, p.name), "{}", p.full_name());
        }
        for (g, n) in [
            ("ring", "effect"),
            ("deck", "bcLedRing"),
            ("pid_rate", "roll_kp"),
            ("flightmode", "stabModeRoll"),
            ("kalman", "resetEstimation"),
            ("stabilizer", "stop"),
            ("commander", "enHighLevel"),
        ] {
            assert!(has(g, n), "{g}.{n}");
        }
        let firmware = PARAMS.iter().filter(|p| p.firmware).count();
        assert_eq!(firmware, firmware_params().len());
    }

    #[test]
    fn values_round_trip_through_their_types() {
        for (ty, v) in [
            (Ty::U8, 200.0),
            (Ty::I8, -100.0),
            (Ty::U16, 60000.0),
            (Ty::I16, -30000.0),
            (Ty::U32, 4e9),
            (Ty::I32, -2e9),
            (Ty::F32, 1.5),
            (Ty::F16, -2.25),
        ] {
            let b = ty.encode(v);
            assert_eq!(b.len(), ty.size());
            assert_eq!(ty.decode(&b), Some(v), "{ty:?}");
        }
        assert_eq!(Ty::U8.encode(300.0), vec![255], "saturates");
        assert_eq!(Ty::F16.decode(&[0]), None);
    }
}
