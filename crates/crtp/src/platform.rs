//! Platform service, port 13: channel 0 commands, channel 1 version queries, channel 2 app
//! channel.
//!
//! Sources: firmware `src/modules/src/platformservice.c` (command packets are echoed back;
//! `getProtocolVersion` answers `*(int*)&data[1] = PROTOCOL_VERSION; size = 5`, i.e.
//! `[0, v, 0, 0, 0]`; firmware version / device type answer `[cmd][text]` without a NUL);
//! cflib 0.1.34 `crazyflie/platformservice.py` (`PLATFORM_SET_CONT_WAVE 0`,
//! `PLATFORM_REQUEST_ARMING 1`, `PLATFORM_REQUEST_CRASH_RECOVERY 2`,
//! `PLATFORM_REQUEST_USER_NOTIFICATION 3`; reads the version from byte 1); crazyflie-lib 0.8.2
//! `subsystems/platform.rs` (`VERSION_GET_DEVICE_TYPE 2`, app channel MTU).

use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const COMMAND: u8 = 0;
const VERSION: u8 = 1;
const APP: u8 = 2;

const SET_CONT_WAVE: u8 = 0;
const REQUEST_ARMING: u8 = 1;
const REQUEST_CRASH_RECOVERY: u8 = 2;
const USER_NOTIFICATION: u8 = 3;

const GET_PROTOCOL: u8 = 0;
const GET_FIRMWARE: u8 = 1;
const GET_DEVICE_TYPE: u8 = 2;

/// Host → Crazyflie on port 13.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformRequest {
    /// 0:`[0, on]` — radio continuous-wave test mode.
    SetContinuousWave(bool),
    /// 0:`[1, arm]` — legacy arming (cflib falls back to it below protocol 12; use the supervisor).
    RequestArming(bool),
    /// 0:`[2]` — legacy crash recovery (likewise superseded by the supervisor).
    RequestCrashRecovery,
    /// 0:`[3, success]` — blink/beep to notify the user.
    UserNotification { success: bool },
    /// 1:`[0]`.
    GetProtocolVersion,
    /// 1:`[1]`.
    GetFirmwareVersion,
    /// 1:`[2]`.
    GetDeviceTypeName,
    /// 2: opaque bytes for an on-board app.
    AppChannel(Vec<u8>),
}

/// Crazyflie → host on port 13.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformReply {
    /// 0: the firmware echoes every command packet verbatim.
    CommandEcho(Vec<u8>),
    /// 1:`[0, v, 0, 0, 0]` (an `int` on the wire). Decoding also accepts the short `[0, v]`.
    ProtocolVersion(u8),
    /// 1:`[1][text]`, e.g. `"2025.02"`.
    FirmwareVersion(String),
    /// 1:`[2][text]`, e.g. `"Crazyflie 2.1"`.
    DeviceTypeName(String),
    /// 2.
    AppChannel(Vec<u8>),
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::Platform as u8,
        channel,
        command,
    }
}

fn unknown_channel(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Platform as u8,
        channel,
    }
}

/// Text without NUL, as the firmware's `strncpy` leaves it.
fn text(field: &'static str, bytes: &[u8]) -> Result<String, CrtpError> {
    if bytes.contains(&0) {
        return Err(CrtpError::BadString { field });
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| CrtpError::BadString { field })
}

fn write_text(w: Writer, field: &'static str, s: &str) -> Result<Writer, CrtpError> {
    if s.as_bytes().contains(&0) {
        return Err(CrtpError::BadString { field });
    }
    Ok(w.bytes(s.as_bytes()))
}

impl PlatformRequest {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            COMMAND => match r.u8()? {
                SET_CONT_WAVE => Self::SetContinuousWave(r.u8()? != 0),
                REQUEST_ARMING => Self::RequestArming(r.u8()? != 0),
                REQUEST_CRASH_RECOVERY => Self::RequestCrashRecovery,
                USER_NOTIFICATION => Self::UserNotification {
                    success: r.u8()? != 0,
                },
                c => return Err(unknown_command(channel, c)),
            },
            VERSION => match r.u8()? {
                GET_PROTOCOL => Self::GetProtocolVersion,
                GET_FIRMWARE => Self::GetFirmwareVersion,
                GET_DEVICE_TYPE => Self::GetDeviceTypeName,
                c => return Err(unknown_command(channel, c)),
            },
            APP => return Ok(Self::AppChannel(data.to_vec())),
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::SetContinuousWave(on) => (COMMAND, w.u8(SET_CONT_WAVE).u8(u8::from(*on))),
            Self::RequestArming(arm) => (COMMAND, w.u8(REQUEST_ARMING).u8(u8::from(*arm))),
            Self::RequestCrashRecovery => (COMMAND, w.u8(REQUEST_CRASH_RECOVERY)),
            Self::UserNotification { success } => {
                (COMMAND, w.u8(USER_NOTIFICATION).u8(u8::from(*success)))
            }
            Self::GetProtocolVersion => (VERSION, w.u8(GET_PROTOCOL)),
            Self::GetFirmwareVersion => (VERSION, w.u8(GET_FIRMWARE)),
            Self::GetDeviceTypeName => (VERSION, w.u8(GET_DEVICE_TYPE)),
            Self::AppChannel(d) => (APP, w.bytes(d)),
        };
        w.packet(Port::Platform as u8, channel)
    }
}

impl PlatformReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        match channel {
            COMMAND => Ok(Self::CommandEcho(data.to_vec())),
            VERSION => match r.u8()? {
                GET_PROTOCOL => {
                    let v = r.u8()?;
                    let high = r.rest();
                    match high {
                        [] => {}
                        [0, 0, 0] => {}
                        [_, _, _] => {
                            return Err(CrtpError::OutOfRange {
                                field: "protocol_version",
                            });
                        }
                        _ => {
                            return Err(CrtpError::BadLength {
                                expected: 5,
                                got: data.len(),
                            });
                        }
                    }
                    Ok(Self::ProtocolVersion(v))
                }
                GET_FIRMWARE => Ok(Self::FirmwareVersion(text("firmware_version", r.rest())?)),
                GET_DEVICE_TYPE => Ok(Self::DeviceTypeName(text("device_type", r.rest())?)),
                c => Err(unknown_command(channel, c)),
            },
            APP => Ok(Self::AppChannel(data.to_vec())),
            _ => Err(unknown_channel(channel)),
        }
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::CommandEcho(d) => (COMMAND, w.bytes(d)),
            Self::ProtocolVersion(v) => (VERSION, w.u8(GET_PROTOCOL).u32(u32::from(*v))),
            Self::FirmwareVersion(s) => (
                VERSION,
                write_text(w.u8(GET_FIRMWARE), "firmware_version", s)?,
            ),
            Self::DeviceTypeName(s) => (
                VERSION,
                write_text(w.u8(GET_DEVICE_TYPE), "device_type", s)?,
            ),
            Self::AppChannel(d) => (APP, w.bytes(d)),
        };
        w.packet(Port::Platform as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn protocol_version_matches_cflib_and_firmware() {
        // cflib PlatformService._crt_service_callback: (VERSION_GET_PROTOCOL,) on 13:1.
        uplink(
            Uplink::Platform(PlatformRequest::GetProtocolVersion),
            &[0xDD, 0x00],
        );
        // platformservice.c: *(int*)&data[1] = PROTOCOL_VERSION; size = 5.
        downlink(
            Downlink::Platform(PlatformReply::ProtocolVersion(12)),
            &[0xD1, 0x00, 0x0C, 0x00, 0x00, 0x00],
        );
        // The short [0, v] form decodes too (and re-encodes as the firmware's 5 bytes).
        let short = Packet::decode(&[0xD1, 0x00, 0x0C]).expect("fits");
        assert_eq!(
            Downlink::decode(&short),
            Ok(Downlink::Platform(PlatformReply::ProtocolVersion(12)))
        );
    }

    #[test]
    fn strings_and_commands() {
        // platformservice.c getFirmwareVersion: [1][V_STAG], no NUL.
        downlink(
            Downlink::Platform(PlatformReply::FirmwareVersion("2025.02".into())),
            b"\xD1\x012025.02",
        );
        // crazyflie-lib Platform::device_type_name: [VERSION_GET_DEVICE_TYPE] on 13:1.
        uplink(
            Uplink::Platform(PlatformRequest::GetDeviceTypeName),
            &[0xD1, 0x02],
        );
        // cflib PlatformService.set_continous_wave(True): (0, True) on 13:0.
        uplink(
            Uplink::Platform(PlatformRequest::SetContinuousWave(true)),
            &[0xDC, 0x00, 0x01],
        );
        let bad = Packet::decode(b"\xD1\x01a\xFFb").expect("fits");
        assert_eq!(
            Downlink::decode(&bad),
            Err(CrtpError::BadString {
                field: "firmware_version"
            })
        );
    }
}
