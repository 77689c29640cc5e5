//! Localization, port 6: channel 0 external position, channel 1 generic `[kind][payload]`.
//!
//! Sources: firmware `src/modules/src/crtp_localization_service.c`; cflib 0.1.34
//! `crazyflie/localization.py` (`send_extpos` `<fff`, `send_extpose` `<Bfffffff` kind 8,
//! `EMERGENCY_STOP 3` / `EMERGENCY_STOP_WATCHDOG 4` as a lone kind byte, the kind numbers, and
//! `_incoming`: the Crazyflie sends generic-channel packets back, e.g. range streams (0), LH angle
//! streams (10) and the LH persist result (11)); crazyflie-lib 0.8.2
//! `subsystems/localization.rs`.

use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const POSITION: u8 = 0;
const GENERIC: u8 = 1;

const EMERGENCY_STOP: u8 = 3;
const EMERGENCY_STOP_WATCHDOG: u8 = 4;
const EXT_POSE: u8 = 8;

/// Host → Crazyflie on port 6.
#[derive(Clone, Debug, PartialEq)]
pub enum LocalizationPacket {
    /// 0:`<fff>` — a position measurement for the on-board estimator (mocap, our depth camera).
    ExternalPosition { x_m: f32, y_m: f32, z_m: f32 },
    /// 1:`[8]<fffffff>` — position (m) and attitude quaternion `[qx, qy, qz, qw]`.
    ExternalPose { pos: [f32; 3], quat: [f32; 4] },
    /// 1:`[3]` — deprecated e-stop (protocol < 12; use the supervisor).
    EmergencyStop,
    /// 1:`[4]` — deprecated e-stop watchdog.
    EmergencyStopWatchdog,
    /// 1:`[kind][data]` for every other kind (LPP short packets, GNSS, packed poses, LH
    /// persist...). `kind` is never 3, 4 or 8 when decoded.
    Other { kind: u8, data: Vec<u8> },
}

/// Crazyflie → host on port 6: generic-channel `[kind][data]` (range stream, LH angles, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalizationReply {
    pub kind: u8,
    pub data: Vec<u8>,
}

impl LocalizationPacket {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            POSITION => Self::ExternalPosition {
                x_m: r.finite_f32("x_m")?,
                y_m: r.finite_f32("y_m")?,
                z_m: r.finite_f32("z_m")?,
            },
            GENERIC => match r.u8()? {
                EMERGENCY_STOP => Self::EmergencyStop,
                EMERGENCY_STOP_WATCHDOG => Self::EmergencyStopWatchdog,
                EXT_POSE => Self::ExternalPose {
                    pos: [
                        r.finite_f32("pos")?,
                        r.finite_f32("pos")?,
                        r.finite_f32("pos")?,
                    ],
                    quat: [
                        r.finite_f32("quat")?,
                        r.finite_f32("quat")?,
                        r.finite_f32("quat")?,
                        r.finite_f32("quat")?,
                    ],
                },
                kind => Self::Other {
                    kind,
                    data: r.rest().to_vec(),
                },
            },
            _ => {
                return Err(CrtpError::UnknownChannel {
                    port: Port::Localization as u8,
                    channel,
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::ExternalPosition { x_m, y_m, z_m } => (
                POSITION,
                w.finite_f32("x_m", *x_m)?
                    .finite_f32("y_m", *y_m)?
                    .finite_f32("z_m", *z_m)?,
            ),
            Self::ExternalPose { pos, quat } => {
                let w = pos
                    .iter()
                    .try_fold(w.u8(EXT_POSE), |w, v| w.finite_f32("pos", *v))?;
                (
                    GENERIC,
                    quat.iter().try_fold(w, |w, v| w.finite_f32("quat", *v))?,
                )
            }
            Self::EmergencyStop => (GENERIC, w.u8(EMERGENCY_STOP)),
            Self::EmergencyStopWatchdog => (GENERIC, w.u8(EMERGENCY_STOP_WATCHDOG)),
            Self::Other { kind, data } => (GENERIC, w.u8(*kind).bytes(data)),
        };
        w.packet(Port::Localization as u8, channel)
    }
}

impl LocalizationReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        if channel != GENERIC {
            return Err(CrtpError::UnknownChannel {
                port: Port::Localization as u8,
                channel,
            });
        }
        let mut r = Reader::new(data);
        Ok(Self {
            kind: r.u8()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        Writer::new()
            .u8(self.kind)
            .bytes(&self.data)
            .packet(Port::Localization as u8, GENERIC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn external_position_and_pose_match_cflib() {
        // cflib Localization.send_extpos([1.0, 2.0, 0.5]): '<fff' on 6:0.
        uplink(
            Uplink::Localization(LocalizationPacket::ExternalPosition {
                x_m: 1.0,
                y_m: 2.0,
                z_m: 0.5,
            }),
            &[
                0x6C, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x3F,
            ],
        );
        // cflib Localization.send_extpose([1, 2, 0.5], [0, 0, 0, 1]): '<Bfffffff' on 6:1.
        uplink(
            Uplink::Localization(LocalizationPacket::ExternalPose {
                pos: [1.0, 2.0, 0.5],
                quat: [0.0, 0.0, 0.0, 1.0],
            }),
            &[
                0x6D, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x3F,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3F,
            ],
        );
        // cflib legacy send_emergency_stop (protocol < 12): '<B' 3 on 6:1.
        uplink(
            Uplink::Localization(LocalizationPacket::EmergencyStop),
            &[0x6D, 0x03],
        );
        // cflib send_lh_persist_data_packet: '<BHH' kind 11 → passed through as Other.
        uplink(
            Uplink::Localization(LocalizationPacket::Other {
                kind: 11,
                data: vec![0x03, 0x00, 0x01, 0x00],
            }),
            &[0x6D, 0x0B, 0x03, 0x00, 0x01, 0x00],
        );
        // The LH persist result the Crazyflie sends back (cflib _incoming: bool(data[0])).
        downlink(
            Downlink::Localization(LocalizationReply {
                kind: 11,
                data: vec![1],
            }),
            &[0x61, 0x0B, 0x01],
        );
    }

    #[test]
    fn nan_position_is_rejected() {
        let mut bytes = vec![0x6C];
        bytes.extend_from_slice(&f32::NAN.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let p = Packet::decode(&bytes).expect("fits");
        assert_eq!(
            Uplink::decode(&p),
            Err(CrtpError::NonFinite { field: "x_m" })
        );
    }
}
