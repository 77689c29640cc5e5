//! Generic setpoints, port 7: channel 0 `[type][payload]`, channel 1 meta commands.
//!
//! Sources: firmware `src/modules/src/crtp_commander_generic.c` (`enum packet_type` 0–11 and
//! the packed structs of each decoder; `cppmEmuPacket_s` with a 4-bit aux count, at most
//! `MAX_AUX_RC_CHANNELS` 10; `manualPacket_s.rate` compared `== true`; the legacy types 1, 2
//! and 5 negate the yaw rate); cflib 0.1.34 `crazyflie/commander.py` (`send_*_setpoint`,
//! `send_notify_setpoint_stop` `<BI`, full state `<BhhhhhhhhhIhhh`, manual `<BfffHB` with the
//! pitch negated); crazyflie-lib 0.8.2 `subsystems/commander.rs` (same layouts; its
//! `setpoint_manual` does not negate pitch).
//!
//! Values are exactly what the wire carries (degrees, deg/s, metres, raw thrust); every float
//! must be finite, on decode and on encode.

use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const SETPOINT: u8 = 0;
const META: u8 = 1;

const STOP: u8 = 0;
const VELOCITY_WORLD_LEGACY: u8 = 1;
const Z_DISTANCE_LEGACY: u8 = 2;
const CPPM_EMU: u8 = 3;
const ALT_HOLD: u8 = 4;
const HOVER_LEGACY: u8 = 5;
const FULL_STATE: u8 = 6;
const POSITION: u8 = 7;
const VELOCITY_WORLD: u8 = 8;
const Z_DISTANCE: u8 = 9;
const HOVER: u8 = 10;
const MANUAL: u8 = 11;

const META_NOTIFY_SETPOINTS_STOP: u8 = 0;

/// Largest number of auxiliary CPPM channels (`MAX_AUX_RC_CHANNELS`).
pub const MAX_CPPM_AUX_CHANNELS: usize = 10;

/// Full-state setpoint (type 6), fixed-point as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FullStateSetpoint {
    pub pos_mm: [i16; 3],
    pub vel_mm_s: [i16; 3],
    pub acc_mm_s2: [i16; 3],
    /// Compressed quaternion (firmware `quatcompress.h`, cflib `compress_quaternion`).
    pub quat_compressed: u32,
    /// Roll, pitch, yaw rates.
    pub rate_mrad_s: [i16; 3],
}

/// A generic setpoint (port 7 channel 0), one variant per firmware type id.
#[derive(Clone, Debug, PartialEq)]
pub enum GenericSetpoint {
    /// 0: motors off.
    Stop,
    /// 1: world-frame velocity; the firmware negates the yaw rate (protocol ≤ 8 clients).
    VelocityWorldLegacy {
        vx_m_s: f32,
        vy_m_s: f32,
        vz_m_s: f32,
        yaw_rate_deg_s: f32,
    },
    /// 2: attitude and absolute height; the firmware negates the yaw rate.
    ZDistanceLegacy {
        roll_deg: f32,
        pitch_deg: f32,
        yaw_rate_deg_s: f32,
        z_m: f32,
    },
    /// 3: emulated RC channels, 1000–2000 µs, plus up to 10 aux channels.
    CppmEmulation {
        roll_us: u16,
        pitch_us: u16,
        yaw_us: u16,
        thrust_us: u16,
        aux_us: Vec<u16>,
        /// The header's upper nibble (reserved; 0 in practice).
        reserved: u8,
    },
    /// 4: attitude and vertical velocity. The firmware struct comments roll/pitch as "rad" but
    /// assigns them to the degree-valued attitude setpoint.
    AltHold {
        roll_deg: f32,
        pitch_deg: f32,
        yaw_rate_deg_s: f32,
        vz_m_s: f32,
    },
    /// 5: body-frame velocity and absolute height; the firmware negates the yaw rate.
    HoverLegacy {
        vx_m_s: f32,
        vy_m_s: f32,
        yaw_rate_deg_s: f32,
        z_m: f32,
    },
    /// 6.
    FullState(FullStateSetpoint),
    /// 7: absolute position and yaw.
    Position {
        x_m: f32,
        y_m: f32,
        z_m: f32,
        yaw_deg: f32,
    },
    /// 8: as 1, yaw rate not negated.
    VelocityWorld {
        vx_m_s: f32,
        vy_m_s: f32,
        vz_m_s: f32,
        yaw_rate_deg_s: f32,
    },
    /// 9: as 2, yaw rate not negated.
    ZDistance {
        roll_deg: f32,
        pitch_deg: f32,
        yaw_rate_deg_s: f32,
        z_m: f32,
    },
    /// 10: as 5, yaw rate not negated.
    Hover {
        vx_m_s: f32,
        vy_m_s: f32,
        yaw_rate_deg_s: f32,
        z_m: f32,
    },
    /// 11: roll/pitch (angles, or rates when `rate`), yaw rate, raw thrust. cflib negates the
    /// pitch before packing; crazyflie-lib does not.
    Manual {
        roll_deg: f32,
        pitch_deg: f32,
        yaw_rate_deg_s: f32,
        thrust: u16,
        /// The wire byte is 1 for rate mode; any other byte means angle mode (the firmware
        /// compares `== true`).
        rate: bool,
    },
}

/// Port 7 channel 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaCommand {
    /// `[0][remain_valid_ms u32]`: lower the setpoint priority so the high-level commander can
    /// take over once the last setpoint has been valid this long.
    NotifySetpointsStop { remain_valid_ms: u32 },
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::GenericSetpoint as u8,
        channel,
        command,
    }
}

/// Four finite floats, the layout shared by types 1, 2, 4, 5, 7–10.
fn read4(r: &mut Reader<'_>, names: [&'static str; 4]) -> Result<[f32; 4], CrtpError> {
    Ok([
        r.finite_f32(names[0])?,
        r.finite_f32(names[1])?,
        r.finite_f32(names[2])?,
        r.finite_f32(names[3])?,
    ])
}

fn write4(w: Writer, names: [&'static str; 4], v: [f32; 4]) -> Result<Writer, CrtpError> {
    w.finite_f32(names[0], v[0])?
        .finite_f32(names[1], v[1])?
        .finite_f32(names[2], v[2])?
        .finite_f32(names[3], v[3])
}

const VEL_WORLD: [&str; 4] = ["vx_m_s", "vy_m_s", "vz_m_s", "yaw_rate_deg_s"];
const Z_DIST: [&str; 4] = ["roll_deg", "pitch_deg", "yaw_rate_deg_s", "z_m"];
const ALT: [&str; 4] = ["roll_deg", "pitch_deg", "yaw_rate_deg_s", "vz_m_s"];
const HOVER_NAMES: [&str; 4] = ["vx_m_s", "vy_m_s", "yaw_rate_deg_s", "z_m"];
const POS: [&str; 4] = ["x_m", "y_m", "z_m", "yaw_deg"];

fn i16x3(r: &mut Reader<'_>) -> Result<[i16; 3], CrtpError> {
    Ok([r.i16()?, r.i16()?, r.i16()?])
}

fn write_i16x3(w: Writer, v: [i16; 3]) -> Writer {
    w.i16(v[0]).i16(v[1]).i16(v[2])
}

impl GenericSetpoint {
    /// The firmware's type id.
    pub fn type_id(&self) -> u8 {
        match self {
            Self::Stop => STOP,
            Self::VelocityWorldLegacy { .. } => VELOCITY_WORLD_LEGACY,
            Self::ZDistanceLegacy { .. } => Z_DISTANCE_LEGACY,
            Self::CppmEmulation { .. } => CPPM_EMU,
            Self::AltHold { .. } => ALT_HOLD,
            Self::HoverLegacy { .. } => HOVER_LEGACY,
            Self::FullState(_) => FULL_STATE,
            Self::Position { .. } => POSITION,
            Self::VelocityWorld { .. } => VELOCITY_WORLD,
            Self::ZDistance { .. } => Z_DISTANCE,
            Self::Hover { .. } => HOVER,
            Self::Manual { .. } => MANUAL,
        }
    }

    pub(crate) fn decode(data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match r.u8()? {
            STOP => Self::Stop,
            VELOCITY_WORLD_LEGACY => {
                let [vx_m_s, vy_m_s, vz_m_s, yaw_rate_deg_s] = read4(&mut r, VEL_WORLD)?;
                Self::VelocityWorldLegacy {
                    vx_m_s,
                    vy_m_s,
                    vz_m_s,
                    yaw_rate_deg_s,
                }
            }
            Z_DISTANCE_LEGACY => {
                let [roll_deg, pitch_deg, yaw_rate_deg_s, z_m] = read4(&mut r, Z_DIST)?;
                Self::ZDistanceLegacy {
                    roll_deg,
                    pitch_deg,
                    yaw_rate_deg_s,
                    z_m,
                }
            }
            CPPM_EMU => {
                let header = r.u8()?;
                let aux_count = usize::from(header & 0x0F);
                if aux_count > MAX_CPPM_AUX_CHANNELS {
                    return Err(CrtpError::OutOfRange { field: "aux_us" });
                }
                let roll_us = r.u16()?;
                let pitch_us = r.u16()?;
                let yaw_us = r.u16()?;
                let thrust_us = r.u16()?;
                let aux_us = (0..aux_count)
                    .map(|_| r.u16())
                    .collect::<Result<Vec<_>, _>>()?;
                Self::CppmEmulation {
                    roll_us,
                    pitch_us,
                    yaw_us,
                    thrust_us,
                    aux_us,
                    reserved: header >> 4,
                }
            }
            ALT_HOLD => {
                let [roll_deg, pitch_deg, yaw_rate_deg_s, vz_m_s] = read4(&mut r, ALT)?;
                Self::AltHold {
                    roll_deg,
                    pitch_deg,
                    yaw_rate_deg_s,
                    vz_m_s,
                }
            }
            HOVER_LEGACY => {
                let [vx_m_s, vy_m_s, yaw_rate_deg_s, z_m] = read4(&mut r, HOVER_NAMES)?;
                Self::HoverLegacy {
                    vx_m_s,
                    vy_m_s,
                    yaw_rate_deg_s,
                    z_m,
                }
            }
            FULL_STATE => Self::FullState(FullStateSetpoint {
                pos_mm: i16x3(&mut r)?,
                vel_mm_s: i16x3(&mut r)?,
                acc_mm_s2: i16x3(&mut r)?,
                quat_compressed: r.u32()?,
                rate_mrad_s: i16x3(&mut r)?,
            }),
            POSITION => {
                let [x_m, y_m, z_m, yaw_deg] = read4(&mut r, POS)?;
                Self::Position {
                    x_m,
                    y_m,
                    z_m,
                    yaw_deg,
                }
            }
            VELOCITY_WORLD => {
                let [vx_m_s, vy_m_s, vz_m_s, yaw_rate_deg_s] = read4(&mut r, VEL_WORLD)?;
                Self::VelocityWorld {
                    vx_m_s,
                    vy_m_s,
                    vz_m_s,
                    yaw_rate_deg_s,
                }
            }
            Z_DISTANCE => {
                let [roll_deg, pitch_deg, yaw_rate_deg_s, z_m] = read4(&mut r, Z_DIST)?;
                Self::ZDistance {
                    roll_deg,
                    pitch_deg,
                    yaw_rate_deg_s,
                    z_m,
                }
            }
            HOVER => {
                let [vx_m_s, vy_m_s, yaw_rate_deg_s, z_m] = read4(&mut r, HOVER_NAMES)?;
                Self::Hover {
                    vx_m_s,
                    vy_m_s,
                    yaw_rate_deg_s,
                    z_m,
                }
            }
            MANUAL => Self::Manual {
                roll_deg: r.finite_f32("roll_deg")?,
                pitch_deg: r.finite_f32("pitch_deg")?,
                yaw_rate_deg_s: r.finite_f32("yaw_rate_deg_s")?,
                thrust: r.u16()?,
                rate: r.u8()? == 1,
            },
            c => return Err(unknown_command(SETPOINT, c)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new().u8(self.type_id());
        let w = match self {
            Self::Stop => w,
            Self::VelocityWorldLegacy {
                vx_m_s,
                vy_m_s,
                vz_m_s,
                yaw_rate_deg_s,
            }
            | Self::VelocityWorld {
                vx_m_s,
                vy_m_s,
                vz_m_s,
                yaw_rate_deg_s,
            } => write4(w, VEL_WORLD, [*vx_m_s, *vy_m_s, *vz_m_s, *yaw_rate_deg_s])?,
            Self::ZDistanceLegacy {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                z_m,
            }
            | Self::ZDistance {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                z_m,
            } => write4(w, Z_DIST, [*roll_deg, *pitch_deg, *yaw_rate_deg_s, *z_m])?,
            Self::CppmEmulation {
                roll_us,
                pitch_us,
                yaw_us,
                thrust_us,
                aux_us,
                reserved,
            } => {
                if aux_us.len() > MAX_CPPM_AUX_CHANNELS {
                    return Err(CrtpError::OutOfRange { field: "aux_us" });
                }
                if *reserved > 0x0F {
                    return Err(CrtpError::OutOfRange { field: "reserved" });
                }
                let header = (reserved << 4) | aux_us.len() as u8;
                aux_us.iter().fold(
                    w.u8(header)
                        .u16(*roll_us)
                        .u16(*pitch_us)
                        .u16(*yaw_us)
                        .u16(*thrust_us),
                    |w, a| w.u16(*a),
                )
            }
            Self::AltHold {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                vz_m_s,
            } => write4(w, ALT, [*roll_deg, *pitch_deg, *yaw_rate_deg_s, *vz_m_s])?,
            Self::HoverLegacy {
                vx_m_s,
                vy_m_s,
                yaw_rate_deg_s,
                z_m,
            }
            | Self::Hover {
                vx_m_s,
                vy_m_s,
                yaw_rate_deg_s,
                z_m,
            } => write4(w, HOVER_NAMES, [*vx_m_s, *vy_m_s, *yaw_rate_deg_s, *z_m])?,
            Self::FullState(s) => {
                let w = write_i16x3(w, s.pos_mm);
                let w = write_i16x3(w, s.vel_mm_s);
                let w = write_i16x3(w, s.acc_mm_s2);
                write_i16x3(w.u32(s.quat_compressed), s.rate_mrad_s)
            }
            Self::Position {
                x_m,
                y_m,
                z_m,
                yaw_deg,
            } => write4(w, POS, [*x_m, *y_m, *z_m, *yaw_deg])?,
            Self::Manual {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                thrust,
                rate,
            } => w
                .finite_f32("roll_deg", *roll_deg)?
                .finite_f32("pitch_deg", *pitch_deg)?
                .finite_f32("yaw_rate_deg_s", *yaw_rate_deg_s)?
                .u16(*thrust)
                .u8(u8::from(*rate)),
        };
        w.packet(Port::GenericSetpoint as u8, SETPOINT)
    }
}

impl MetaCommand {
    pub(crate) fn decode(data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match r.u8()? {
            META_NOTIFY_SETPOINTS_STOP => Self::NotifySetpointsStop {
                remain_valid_ms: r.u32()?,
            },
            c => return Err(unknown_command(META, c)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let Self::NotifySetpointsStop { remain_valid_ms } = self;
        Writer::new()
            .u8(META_NOTIFY_SETPOINTS_STOP)
            .u32(*remain_valid_ms)
            .packet(Port::GenericSetpoint as u8, META)
    }
}

/// Channel of port 7 that carries setpoints / meta commands.
pub(crate) const SETPOINT_CHANNEL: u8 = SETPOINT;
pub(crate) const META_CHANNEL: u8 = META;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Uplink;
    use crate::message::wire_check::uplink;

    #[test]
    fn setpoints_match_cflib() {
        // cflib Commander.send_position_setpoint(1.0, -2.0, 0.5, 90.0): '<Bffff' on 7:0.
        uplink(
            Uplink::Generic(GenericSetpoint::Position {
                x_m: 1.0,
                y_m: -2.0,
                z_m: 0.5,
                yaw_deg: 90.0,
            }),
            &[
                0x7C, 0x07, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x3F,
                0x00, 0x00, 0xB4, 0x42,
            ],
        );
        // cflib send_velocity_world_setpoint(0.5, 0, -0.25, 10) at protocol >= 9: type 8.
        uplink(
            Uplink::Generic(GenericSetpoint::VelocityWorld {
                vx_m_s: 0.5,
                vy_m_s: 0.0,
                vz_m_s: -0.25,
                yaw_rate_deg_s: 10.0,
            }),
            &[
                0x7C, 0x08, 0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0xBE,
                0x00, 0x00, 0x20, 0x41,
            ],
        );
        // cflib send_setpoint_manual(1, 2, 3, 50 %, rate=True): '<BfffHB', pitch negated,
        // thrust int(10001 + 0.5 * 49999) = 35000.
        uplink(
            Uplink::Generic(GenericSetpoint::Manual {
                roll_deg: 1.0,
                pitch_deg: -2.0,
                yaw_rate_deg_s: 3.0,
                thrust: 35000,
                rate: true,
            }),
            &[
                0x7C, 0x0B, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x40, 0x40,
                0xB8, 0x88, 0x01,
            ],
        );
        // cflib send_stop_setpoint and send_notify_setpoint_stop(100) ('<BI' on 7:1).
        uplink(Uplink::Generic(GenericSetpoint::Stop), &[0x7C, 0x00]);
        uplink(
            Uplink::Meta(MetaCommand::NotifySetpointsStop {
                remain_valid_ms: 100,
            }),
            &[0x7D, 0x00, 0x64, 0x00, 0x00, 0x00],
        );
    }

    #[test]
    fn full_state_and_cppm_layouts() {
        // cflib send_full_state_setpoint: '<BhhhhhhhhhIhhh' (29 bytes).
        let fs = GenericSetpoint::FullState(FullStateSetpoint {
            pos_mm: [1000, -1, 2],
            vel_mm_s: [0; 3],
            acc_mm_s2: [0; 3],
            quat_compressed: 0x8000_0001,
            rate_mrad_s: [0, 0, -3],
        });
        let p = Uplink::Generic(fs.clone()).to_packet().expect("encodes");
        assert_eq!(p.data.len(), 29);
        assert_eq!(&p.data[..5], &[0x06, 0xE8, 0x03, 0xFF, 0xFF]);
        assert_eq!(&p.data[19..23], &[0x01, 0x00, 0x00, 0x80]);
        assert_eq!(GenericSetpoint::decode(&p.data), Ok(fs));
        // crtp_commander_generic.c cppmEmuPacket_s: header nibble = aux count, 9 + 2n bytes.
        let cppm = [
            0x03, 0x11, 0xDC, 0x05, 0xDC, 0x05, 0xDC, 0x05, 0xE8, 0x03, 0xD0, 0x07,
        ];
        assert_eq!(
            GenericSetpoint::decode(&cppm),
            Ok(GenericSetpoint::CppmEmulation {
                roll_us: 1500,
                pitch_us: 1500,
                yaw_us: 1500,
                thrust_us: 1000,
                aux_us: vec![2000],
                reserved: 1,
            })
        );
        assert_eq!(
            GenericSetpoint::decode(&[0x03, 0x0B]),
            Err(CrtpError::OutOfRange { field: "aux_us" })
        );
    }

    #[test]
    fn non_finite_setpoints_are_rejected_both_ways() {
        let nan = Uplink::Generic(GenericSetpoint::Position {
            x_m: 0.0,
            y_m: f32::NAN,
            z_m: 0.0,
            yaw_deg: 0.0,
        });
        assert_eq!(nan.to_packet(), Err(CrtpError::NonFinite { field: "y_m" }));
        let mut bytes = vec![0x07];
        bytes.extend_from_slice(&f32::INFINITY.to_le_bytes());
        bytes.extend_from_slice(&[0; 12]);
        assert_eq!(
            GenericSetpoint::decode(&bytes),
            Err(CrtpError::NonFinite { field: "x_m" })
        );
    }
}
