//! Legacy commander packet (port 3, channel 0): `{float roll; float pitch; float yaw; uint16_t
//! thrust}` packed little-endian, 14 bytes (firmware `crtp_commander_rpyt.c`; cflib 0.1.34
//! `crazyflie/commander.py` `send_setpoint`; crazyflie-lib 0.8.2 `subsystems/commander.rs`
//! `setpoint_rpyt`).
//!
//! Wire semantics, pinned by the tests below:
//! - roll in degrees, right-handed (positive lowers the right side);
//! - pitch in degrees in the firmware's legacy frame (positive raises the nose). cflib negates the
//!   user's pitch before packing, so the wire carries `-pitch`; our right-handed pitch (positive
//!   lowers the nose) therefore goes on the wire negated;
//! - yaw as a rate in deg/s, inverted: the firmware sets `attitudeRate.yaw = -values->yaw`;
//! - thrust raw 0..65535 (the firmware zeroes < 1000 and caps at 60000).

use crate::{CrtpError, Port, header::Header, header_byte};
use depthpilot_types::AttitudeCommand;

/// Raw thrust that `AttitudeCommand::thrust_frac == 1.0` maps to.
pub const FULL_SCALE_THRUST: f64 = 65535.0;

const PAYLOAD_LEN: usize = 14;

/// The legacy setpoint exactly as on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RpytSetpoint {
    pub roll_deg: f32,
    /// Legacy-frame pitch (positive = nose up): what the wire carries.
    pub pitch_deg: f32,
    /// Inverted legacy yaw rate: positive turns the quad clockwise seen from above.
    pub yaw_rate_deg_s: f32,
    pub thrust: u16,
}

impl RpytSetpoint {
    /// From a right-handed SI command (the client side of the boundary). Non-finite angles become
    /// 0 and non-finite thrust becomes 0: the safe reading of a broken command.
    pub fn from_command(cmd: &AttitudeCommand) -> Self {
        let deg = |rad: f64| {
            if rad.is_finite() {
                rad.to_degrees() as f32
            } else {
                0.0
            }
        };
        let thrust = if cmd.thrust_frac.is_finite() {
            (cmd.thrust_frac * FULL_SCALE_THRUST)
                .round()
                .clamp(0.0, FULL_SCALE_THRUST) as u16
        } else {
            0
        };
        Self {
            roll_deg: deg(cmd.roll_rad),
            pitch_deg: -deg(cmd.pitch_rad),
            yaw_rate_deg_s: -deg(cmd.yaw_rate_rad_s),
            thrust,
        }
    }

    /// Back to right-handed SI (the inverse of [`Self::from_command`] up to f32 rounding).
    pub fn to_command(&self) -> AttitudeCommand {
        AttitudeCommand {
            roll_rad: f64::from(self.roll_deg).to_radians(),
            pitch_rad: -f64::from(self.pitch_deg).to_radians(),
            yaw_rate_rad_s: -f64::from(self.yaw_rate_deg_s).to_radians(),
            thrust_frac: f64::from(self.thrust) / FULL_SCALE_THRUST,
        }
    }

    /// Header byte plus the 14-byte payload.
    pub fn encode(&self) -> [u8; 1 + PAYLOAD_LEN] {
        let mut out = [0u8; 1 + PAYLOAD_LEN];
        out[0] = header_byte(Port::Commander, 0);
        out[1..5].copy_from_slice(&self.roll_deg.to_le_bytes());
        out[5..9].copy_from_slice(&self.pitch_deg.to_le_bytes());
        out[9..13].copy_from_slice(&self.yaw_rate_deg_s.to_le_bytes());
        out[13..15].copy_from_slice(&self.thrust.to_le_bytes());
        out
    }

    /// Decodes a whole packet (header included). Link bits are ignored.
    pub fn decode(packet: &[u8]) -> Result<Self, CrtpError> {
        let (&first, payload) = packet.split_first().ok_or(CrtpError::Empty)?;
        let h = Header::decode(first);
        if h.port != Port::Commander as u8 || h.channel != 0 {
            return Err(CrtpError::WrongPort {
                expected_port: Port::Commander as u8,
                expected_channel: 0,
                got_port: h.port,
                got_channel: h.channel,
            });
        }
        Self::from_payload(payload)
    }

    /// Decodes the 14-byte payload (no header).
    pub(crate) fn from_payload(payload: &[u8]) -> Result<Self, CrtpError> {
        if payload.len() != PAYLOAD_LEN {
            return Err(CrtpError::BadLength {
                expected: PAYLOAD_LEN,
                got: payload.len(),
            });
        }
        let f = |i: usize| {
            f32::from_le_bytes([payload[i], payload[i + 1], payload[i + 2], payload[i + 3]])
        };
        let sp = Self {
            roll_deg: f(0),
            pitch_deg: f(4),
            yaw_rate_deg_s: f(8),
            thrust: u16::from_le_bytes([payload[12], payload[13]]),
        };
        sp.check_finite()?;
        Ok(sp)
    }

    /// The 14-byte payload, or [`CrtpError::NonFinite`] (what decode would reject).
    pub(crate) fn payload(self) -> Result<Vec<u8>, CrtpError> {
        self.check_finite()?;
        Ok(self.encode()[1..].to_vec())
    }

    fn check_finite(&self) -> Result<(), CrtpError> {
        for (field, v) in [
            ("roll", self.roll_deg),
            ("pitch", self.pitch_deg),
            ("yaw", self.yaw_rate_deg_s),
        ] {
            if !v.is_finite() {
                return Err(CrtpError::NonFinite { field });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_cflib_struct_pack() {
        // cflib: struct.pack('<BfffH', 0x3C, roll, -pitch, yawrate, thrust) for
        // send_setpoint(roll=10, pitch=5, yawrate=-20, thrust=36000).
        let sp = RpytSetpoint {
            roll_deg: 10.0,
            pitch_deg: -5.0,
            yaw_rate_deg_s: -20.0,
            thrust: 36000,
        };
        let bytes = sp.encode();
        let expected: [u8; 15] = [
            0x3C, 0x00, 0x00, 0x20, 0x41, 0x00, 0x00, 0xA0, 0xC0, 0x00, 0x00, 0xA0, 0xC1, 0xA0,
            0x8C,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn right_handed_nose_down_pitch_goes_on_the_wire_negated() {
        let cmd = AttitudeCommand {
            roll_rad: 0.1,
            pitch_rad: 0.2,
            yaw_rate_rad_s: 0.5,
            thrust_frac: 0.5,
        };
        let sp = RpytSetpoint::from_command(&cmd);
        assert!(sp.roll_deg > 0.0);
        assert!(
            sp.pitch_deg < 0.0,
            "nose-down pitch is negative on the wire"
        );
        assert!(
            sp.yaw_rate_deg_s < 0.0,
            "counter-clockwise yaw rate is negative on the wire"
        );
        assert_eq!(sp.thrust, 32768);
    }

    #[test]
    fn non_finite_command_is_safe() {
        let cmd = AttitudeCommand {
            roll_rad: f64::NAN,
            pitch_rad: f64::INFINITY,
            yaw_rate_rad_s: 0.0,
            thrust_frac: f64::NAN,
        };
        let sp = RpytSetpoint::from_command(&cmd);
        assert_eq!((sp.roll_deg, sp.pitch_deg, sp.thrust), (0.0, 0.0, 0));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(RpytSetpoint::decode(&[]), Err(CrtpError::Empty));
        assert!(matches!(
            RpytSetpoint::decode(&[0x3C, 1, 2]),
            Err(CrtpError::BadLength {
                expected: 14,
                got: 2
            })
        ));
        assert!(matches!(
            RpytSetpoint::decode(&[0x70; 15]),
            Err(CrtpError::WrongPort { got_port: 7, .. })
        ));
        let mut nan = RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust: 0,
        }
        .encode();
        nan[1..5].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(
            RpytSetpoint::decode(&nan),
            Err(CrtpError::NonFinite { field: "roll" })
        );
    }

    proptest! {
        /// Encoding then decoding a finite setpoint gives it back exactly.
        #[test]
        fn round_trip(r in -90f32..90.0, p in -90f32..90.0, y in -400f32..400.0, t in any::<u16>(), link in 0u8..4) {
            let sp = RpytSetpoint { roll_deg: r, pitch_deg: p, yaw_rate_deg_s: y, thrust: t };
            let mut bytes = sp.encode();
            bytes[0] = (bytes[0] & 0xF3) | (link << 2);
            prop_assert_eq!(RpytSetpoint::decode(&bytes), Ok(sp));
        }

        /// Any byte string decodes or fails with a typed error; it never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = RpytSetpoint::decode(&bytes);
        }

        /// SI → wire → SI keeps the command within f32 rounding.
        #[test]
        fn si_round_trip(r in -1.0f64..1.0, p in -1.0f64..1.0, y in -5.0f64..5.0, t in 0.0f64..1.0) {
            let cmd = AttitudeCommand { roll_rad: r, pitch_rad: p, yaw_rate_rad_s: y, thrust_frac: t };
            let back = RpytSetpoint::from_command(&cmd).to_command();
            prop_assert!((back.roll_rad - r).abs() < 1e-6);
            prop_assert!((back.pitch_rad - p).abs() < 1e-6);
            prop_assert!((back.yaw_rate_rad_s - y).abs() < 1e-5);
            prop_assert!((back.thrust_frac - t).abs() <= 0.5 / FULL_SCALE_THRUST + 1e-12);
        }
    }
}
