//! Gamepad mapping: which stick and button of a gamepad is which client input, with scales,
//! deadbands and inversion, as a RON file (`hil/gamepad_mode2.ron`). Pure: the device is read by
//! `depthpilot-runtime`, which hands the raw stick values (−1…1) and buttons here.

use crate::frame::InputFrame;
use serde::{Deserialize, Serialize};

/// Gamepad axes (gilrs' standard layout names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StickAxis {
    LeftStickX,
    LeftStickY,
    RightStickX,
    RightStickY,
    LeftZ,
    RightZ,
}

/// Gamepad buttons (gilrs' standard layout names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PadButton {
    South,
    East,
    North,
    West,
    LeftTrigger,
    LeftTrigger2,
    RightTrigger,
    RightTrigger2,
    Select,
    Start,
    Mode,
    LeftThumb,
    RightThumb,
}

/// A stick mapped to an angle or a rate: full deflection = `full_scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickMap {
    pub axis: StickAxis,
    pub full_scale: f64,
    #[serde(default)]
    pub invert: bool,
    #[serde(default = "default_deadband")]
    pub deadband: f64,
}

/// The thrust stick: centre and below = 0 %, the upper half from `min_pct` to `max_pct`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrustStickMap {
    pub axis: StickAxis,
    pub min_pct: f64,
    pub max_pct: f64,
    #[serde(default)]
    pub invert: bool,
    #[serde(default = "default_deadband")]
    pub deadband: f64,
}

fn default_deadband() -> f64 {
    0.05
}

/// A whole mapping file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GamepadMapping {
    pub name: String,
    pub roll: StickMap,
    pub pitch: StickMap,
    pub yaw: StickMap,
    pub thrust: ThrustStickMap,
    pub muxswitch: PadButton,
    pub estop: PadButton,
    #[serde(default)]
    pub alt1: Option<PadButton>,
    #[serde(default)]
    pub alt2: Option<PadButton>,
}

/// A mapping file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: &'static str,
        message: String,
    },
}

fn shape(v: f64, invert: bool, deadband: f64) -> f64 {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let v = if invert { -v } else { v };
    if v.abs() <= deadband {
        0.0
    } else {
        // Rescale so that output starts at 0 at the edge of the deadband.
        v.signum() * (v.abs() - deadband) / (1.0 - deadband)
    }
}

impl GamepadMapping {
    /// Parses a mapping file's text; `file` names it in errors.
    pub fn from_ron(text: &str, file: &str) -> Result<Self, MappingError> {
        let m: Self = ron::from_str(text).map_err(|e| MappingError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        let invalid = |field, message: String| MappingError::Invalid {
            file: file.to_string(),
            field,
            message,
        };
        for (field, s) in [("roll", &m.roll), ("pitch", &m.pitch), ("yaw", &m.yaw)] {
            if !(s.full_scale.is_finite() && s.full_scale > 0.0) {
                return Err(invalid(
                    field,
                    format!("full_scale must be > 0, got {}", s.full_scale),
                ));
            }
            if !(0.0..1.0).contains(&s.deadband) {
                return Err(invalid(
                    field,
                    format!("deadband must be in [0, 1), got {}", s.deadband),
                ));
            }
        }
        let t = &m.thrust;
        if !(0.0..=100.0).contains(&t.min_pct) || !(t.min_pct..=100.0).contains(&t.max_pct) {
            return Err(invalid(
                "thrust",
                format!(
                    "need 0 <= min_pct <= max_pct <= 100, got {} and {}",
                    t.min_pct, t.max_pct
                ),
            ));
        }
        if !(0.0..1.0).contains(&t.deadband) {
            return Err(invalid(
                "thrust",
                format!("deadband must be in [0, 1), got {}", t.deadband),
            ));
        }
        Ok(m)
    }

    /// The input frame for raw stick values (−1…1, up/right positive) and button states.
    pub fn map(
        &self,
        stamp_ns: u64,
        axis: impl Fn(StickAxis) -> f64,
        button: impl Fn(PadButton) -> bool,
    ) -> InputFrame {
        let stick = |s: &StickMap| s.full_scale * shape(axis(s.axis), s.invert, s.deadband);
        let t = &self.thrust;
        let up = shape(axis(t.axis), t.invert, t.deadband);
        let thrust_pct = if up > 0.0 {
            t.min_pct + (t.max_pct - t.min_pct) * up
        } else {
            0.0
        };
        InputFrame {
            stamp_ns,
            roll_deg: stick(&self.roll),
            pitch_deg: stick(&self.pitch),
            yaw_rate_deg_s: stick(&self.yaw),
            thrust_pct,
            estop: button(self.estop),
            muxswitch: button(self.muxswitch),
            alt1: self.alt1.is_some_and(&button),
            alt2: self.alt2.is_some_and(&button),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODE2: &str = include_str!("../../../hil/gamepad_mode2.ron");

    #[test]
    fn the_bundled_mode2_mapping_loads_and_maps() {
        let m = GamepadMapping::from_ron(MODE2, "hil/gamepad_mode2.ron").expect("loads");
        let f = m.map(
            7,
            |a| match a {
                StickAxis::RightStickX => 1.0,
                StickAxis::RightStickY => -0.5,
                StickAxis::LeftStickX => 0.02,
                StickAxis::LeftStickY => 1.0,
                _ => 0.0,
            },
            |b| b == PadButton::RightTrigger,
        );
        assert!((f.roll_deg - m.roll.full_scale).abs() < 1e-9, "{f:?}");
        // Pushing the right stick forward pitches forward: the mode-2 file inverts Y.
        assert!(f.pitch_deg > 0.0, "{f:?}");
        assert_eq!(f.yaw_rate_deg_s, 0.0, "inside the deadband");
        assert_eq!(f.thrust_pct, m.thrust.max_pct);
        assert!(f.muxswitch && !f.estop);
        assert_eq!(f.stamp_ns, 7);
    }

    #[test]
    fn thrust_stick_at_rest_is_zero_and_non_finite_is_centred() {
        let m = GamepadMapping::from_ron(MODE2, "m").expect("loads");
        let f = m.map(0, |_| f64::NAN, |_| false);
        assert_eq!((f.roll_deg, f.thrust_pct), (0.0, 0.0));
    }

    #[test]
    fn a_bad_mapping_names_the_file_and_field() {
        let e = GamepadMapping::from_ron("(name: 3)", "pad.ron").expect_err("bad");
        assert!(e.to_string().starts_with("pad.ron:"), "{e}");
        let bad = MODE2.replace("full_scale: 30.0", "full_scale: -30.0");
        let e = GamepadMapping::from_ron(&bad, "pad.ron").expect_err("bad");
        assert!(e.to_string().contains("full_scale must be > 0"), "{e}");
    }
}
