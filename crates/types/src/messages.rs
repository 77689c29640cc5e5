//! Messages of one control cycle (DESIGN §2). Every message carries the virtual or wall time at
//! which it describes the world (`stamp_ns`), so pure components never read a clock.

use crate::Vec3;
use serde::{Deserialize, Serialize};

/// A position (and optionally yaw) measurement of the quad in the world frame, as a sensor saw it
/// at `stamp_ns` (capture time, not arrival time).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub stamp_ns: u64,
    pub seq: u64,
    pub pos_in_world_m: Vec3,
    /// Measured yaw, if the sensor can see it.
    pub yaw_rad: Option<f64>,
}

/// Where the quad should be at a given time, with trajectory feed-forward terms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setpoint {
    pub pos_in_world_m: Vec3,
    pub vel_in_world_m_s: Vec3,
    pub acc_in_world_m_s2: Vec3,
    pub yaw_rad: f64,
}

impl Setpoint {
    pub fn hold(pos_in_world_m: Vec3, yaw_rad: f64) -> Self {
        Self {
            pos_in_world_m,
            vel_in_world_m_s: Vec3::ZERO,
            acc_in_world_m_s2: Vec3::ZERO,
            yaw_rad,
        }
    }
}

/// What an off-board controller asks of the Crazyflie's on-board attitude controller: the
/// semantics of the legacy RPYT commander, in SI units and right-handed angles.
///
/// `thrust_frac` is the fraction of the firmware's full-scale thrust command (raw 65535); the
/// conversion to the wire's u16 happens in `depthpilot-crtp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttitudeCommand {
    pub roll_rad: f64,
    pub pitch_rad: f64,
    pub yaw_rate_rad_s: f64,
    pub thrust_frac: f64,
}

impl AttitudeCommand {
    /// Motors off, level. Also the packet that unlocks the firmware's thrust lock.
    pub const ZERO: Self = Self {
        roll_rad: 0.0,
        pitch_rad: 0.0,
        yaw_rate_rad_s: 0.0,
        thrust_frac: 0.0,
    };

    pub fn is_finite(&self) -> bool {
        self.roll_rad.is_finite()
            && self.pitch_rad.is_finite()
            && self.yaw_rate_rad_s.is_finite()
            && self.thrust_frac.is_finite()
    }
}
