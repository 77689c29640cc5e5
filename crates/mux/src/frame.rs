//! One input in the Crazyflie client's units, with the time it was last updated.

use serde::{Deserialize, Serialize};

/// The client's thrust scale: 100 % is raw 65000 (`JoystickReader.p2t`).
pub const CLIENT_FULL_THRUST: f64 = 65000.0;

/// Percent → raw thrust as the client does it (`int(65000 · pct / 100)`, clamped to u16);
/// non-finite → 0.
pub fn percent_to_raw(pct: f64) -> u16 {
    if !pct.is_finite() {
        return 0;
    }
    (CLIENT_FULL_THRUST * pct / 100.0)
        .trunc()
        .clamp(0.0, 65535.0) as u16
}

/// Roll/pitch in degrees, yaw rate in deg/s, thrust in percent; buttons. Pitch is the user's
/// (positive = nose down, forward), as cflib's `send_setpoint` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputFrame {
    pub stamp_ns: u64,
    pub roll_deg: f64,
    pub pitch_deg: f64,
    pub yaw_rate_deg_s: f64,
    pub thrust_pct: f64,
    pub estop: bool,
    pub muxswitch: bool,
    pub alt1: bool,
    pub alt2: bool,
}

impl InputFrame {
    /// The client's initial ZMQ state: zero, thrust −1 % (clamps to 0), no buttons.
    pub fn initial(stamp_ns: u64) -> Self {
        Self {
            stamp_ns,
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust_pct: -1.0,
            estop: false,
            muxswitch: false,
            alt1: false,
            alt2: false,
        }
    }

    pub fn is_finite(&self) -> bool {
        self.roll_deg.is_finite()
            && self.pitch_deg.is_finite()
            && self.yaw_rate_deg_s.is_finite()
            && self.thrust_pct.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_maps_like_the_client() {
        assert_eq!(percent_to_raw(100.0), 65000);
        assert_eq!(percent_to_raw(50.0), 32500);
        assert_eq!(percent_to_raw(-1.0), 0);
        assert_eq!(percent_to_raw(200.0), 65535);
        assert_eq!(percent_to_raw(f64::NAN), 0);
    }
}
