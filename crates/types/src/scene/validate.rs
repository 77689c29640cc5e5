//! Field validators used with `#[serde(deserialize_with = ...)]`: a bad value fails while it is
//! parsed, so the error carries its line, column and field path.

use crate::Vec3;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

pub fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "must be a finite number, got {v}"
        )))
    }
}

pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be > 0, got {v}")))
    }
}

pub fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be >= 0, got {v}")))
    }
}

pub fn optional_non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        Some(v) => Err(D::Error::custom(format!(
            "must be a finite number >= 0, got {v}"
        ))),
    }
}

pub fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "must be a probability in [0, 1], got {v}"
        )))
    }
}

pub fn finite_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Vec3, D::Error> {
    let v = Vec3::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "every component must be finite, got ({}, {}, {})",
            v.x, v.y, v.z
        )))
    }
}

pub fn positive_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Vec3, D::Error> {
    let v = finite_vec3(d)?;
    if v.x > 0.0 && v.y > 0.0 && v.z > 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "every component must be > 0, got ({}, {}, {})",
            v.x, v.y, v.z
        )))
    }
}

pub fn optional_finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.is_finite() => Ok(Some(v)),
        Some(v) => Err(D::Error::custom(format!(
            "must be a finite number, got {v}"
        ))),
    }
}

// `present_*`: for fields that may be left out (`#[serde(default)]` gives None); a value that
// is written is a plain value, not `Some(...)`.

pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Writes a `present_*` field as its bare value (what its deserialiser reads); `None` is
/// skipped (`skip_serializing_if`), so a serialised scene reads back.
pub fn write_present<T: serde::Serialize, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_none(),
    }
}

pub fn present_positive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    positive(d).map(Some)
}

pub fn present_non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    non_negative(d).map(Some)
}

pub fn present_finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    finite(d).map(Some)
}

pub fn present_finite_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec3>, D::Error> {
    finite_vec3(d).map(Some)
}

pub fn present_positive_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec3>, D::Error> {
    positive_vec3(d).map(Some)
}

pub fn present_thrust_curve<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<super::ThrustCurve>, D::Error> {
    use super::ThrustCurve;
    let curve = ThrustCurve::deserialize(d)?;
    let ok = match curve {
        ThrustCurve::PwmQuadratic { a, b, c } => [a, b, c].iter().all(|v| v.is_finite()),
        ThrustCurve::VoltageCubic { c0, c1, c2, c3 } => {
            [c0, c1, c2, c3].iter().all(|v| v.is_finite())
        }
    };
    if ok {
        Ok(Some(curve))
    } else {
        Err(D::Error::custom(
            "every thrust_curve coefficient must be finite",
        ))
    }
}

/// The C type of a firmware parameter, for checking scene values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareParamKind {
    U8,
    U16,
    U32,
    F32,
}

/// The writable parameters of the simulated firmware and their C types. The firmware model
/// (`depthpilot_firmware::firmware_params`) owns them; this copy lets a scene be checked
/// when it is loaded, and a test in the sim crate keeps the two equal.
pub const FIRMWARE_PARAMS: &[(&str, FirmwareParamKind)] = {
    use FirmwareParamKind::*;
    &[
        ("flightmode.althold", U8),
        ("flightmode.yawMode", U8),
        ("flightmode.yawRst", U8),
        ("flightmode.stabModeRoll", U8),
        ("flightmode.stabModePitch", U8),
        ("flightmode.stabModeYaw", U8),
        ("sitAw.FFActive", U8),
        ("sitAw.FFTriggerCount", U32),
        ("sitAw.FFaccWZ", F32),
        ("sitAw.ARActive", U8),
        ("sitAw.ARTriggerCount", U32),
        ("sitAw.ARaccZ", F32),
        ("sitAw.TuActive", U8),
        ("sitAw.TuTriggerCount", U32),
        ("sitAw.TuAngle", F32),
        ("autoTO.TargetAdjust", F32),
        ("autoTO.Thresh", F32),
        ("autoTO.Alpha", F32),
        ("altHold.kp", F32),
        ("altHold.ki", F32),
        ("altHold.baseThrust", U16),
        ("altHold.maxThrust", U16),
        ("supervisor.tmblChckEn", U8),
        ("pid_attitude.roll_kp", F32),
        ("pid_attitude.roll_ki", F32),
        ("pid_attitude.roll_kd", F32),
        ("pid_attitude.pitch_kp", F32),
        ("pid_attitude.pitch_ki", F32),
        ("pid_attitude.pitch_kd", F32),
        ("pid_attitude.yaw_kp", F32),
        ("pid_attitude.yaw_ki", F32),
        ("pid_attitude.yaw_kd", F32),
        ("pid_rate.roll_kp", F32),
        ("pid_rate.roll_ki", F32),
        ("pid_rate.roll_kd", F32),
        ("pid_rate.pitch_kp", F32),
        ("pid_rate.pitch_ki", F32),
        ("pid_rate.pitch_kd", F32),
        ("pid_rate.yaw_kp", F32),
        ("pid_rate.yaw_ki", F32),
        ("pid_rate.yaw_kd", F32),
    ]
};

/// Why a firmware parameter in a scene is refused (None: it is fine).
pub fn firmware_param_problem(name: &str, value: f64) -> Option<String> {
    let Some(&(_, kind)) = FIRMWARE_PARAMS.iter().find(|(n, _)| *n == name) else {
        return Some(format!(
            "unknown firmware parameter `{name}` (known: {})",
            FIRMWARE_PARAMS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let max = match kind {
        FirmwareParamKind::U8 => f64::from(u8::MAX),
        FirmwareParamKind::U16 => f64::from(u16::MAX),
        FirmwareParamKind::U32 => f64::from(u32::MAX),
        FirmwareParamKind::F32 => f64::from(f32::MAX),
    };
    let integer = kind != FirmwareParamKind::F32;
    if !value.is_finite() || (integer && (value < 0.0 || value.fract() != 0.0)) || value.abs() > max
    {
        return Some(format!(
            "`{name}` is a {kind:?}; {value} does not fit (integers 0..={max} for integer types)"
        ));
    }
    None
}
