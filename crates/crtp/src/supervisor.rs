//! Supervisor, port 9: channel 0 state queries, channel 1 commands; replies echo the command
//! byte with bit 7 set.
//!
//! Sources: firmware `src/modules/src/crtp_supervisor.c` and
//! `src/modules/interface/crtp_supervisor.h` (info commands 0x01–0x0B answer one state bit
//! `[0x80|cmd][0|1]`, `CMD_GET_STATE_BITFIELD 0x0C` answers `[0x8C][bitfield u16]`; arm answers
//! `[0x81][success][is_armed]`, recover `[0x82][success][recovered]`; e-stop and its watchdog
//! are not answered); cflib 0.1.34 `crazyflie/supervisor.py` (`CMD_*`, bit positions,
//! `send_arming_request` `(1, do_arm)`); crazyflie-lib 0.8.2 `subsystems/supervisor.rs`
//! (`read_bitfield` sends 9:0 `[0x0C]`).

use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const INFO: u8 = 0;
const COMMAND: u8 = 1;

const ARM: u8 = 0x01;
const RECOVER: u8 = 0x02;
const EMERGENCY_STOP: u8 = 0x03;
const EMERGENCY_STOP_WATCHDOG: u8 = 0x04;
const GET_STATE_BITFIELD: u8 = 0x0C;
const RESPONSE: u8 = 0x80;

/// One supervisor state bit; the discriminant is the info command that queries it, and
/// `discriminant - 1` its bit in the state bitfield.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SupervisorState {
    CanBeArmed = 0x01,
    IsArmed = 0x02,
    IsAutoArmed = 0x03,
    CanFly = 0x04,
    IsFlying = 0x05,
    IsTumbled = 0x06,
    IsLocked = 0x07,
    IsCrashed = 0x08,
    HlControlActive = 0x09,
    HlTrajFinished = 0x0A,
    HlControlDisabled = 0x0B,
}

impl SupervisorState {
    pub const ALL: [Self; 11] = [
        Self::CanBeArmed,
        Self::IsArmed,
        Self::IsAutoArmed,
        Self::CanFly,
        Self::IsFlying,
        Self::IsTumbled,
        Self::IsLocked,
        Self::IsCrashed,
        Self::HlControlActive,
        Self::HlTrajFinished,
        Self::HlControlDisabled,
    ];

    fn from_command(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u8 == c)
    }

    /// This state's bit in the [`SupervisorReply::StateBitfield`] value.
    pub fn bit(self) -> u16 {
        1 << (self as u8 - 1)
    }
}

/// Host → Crazyflie on port 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupervisorCommand {
    /// 0:`[0x0C]` (what crazyflie-lib's `read_bitfield` and cflib's properties send).
    GetStateBitfield,
    /// 0:`[state]`: one bit.
    QueryState(SupervisorState),
    /// 1:`[0x01][arm]`.
    Arm(bool),
    /// 1:`[0x02]`: crash recovery.
    Recover,
    /// 1:`[0x03]`: stop the motors and lock until reboot.
    EmergencyStop,
    /// 1:`[0x04]`: arms a 1 s watchdog that must then be refreshed.
    EmergencyStopWatchdog,
}

/// Crazyflie → host on port 9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SupervisorReply {
    /// 0:`[0x8C][bitfield u16]`.
    StateBitfield(u16),
    /// 0:`[0x80|state][value]`.
    State { state: SupervisorState, value: bool },
    /// 1:`[0x81][success][is_armed]`.
    Arm { success: bool, is_armed: bool },
    /// 1:`[0x82][success][recovered]`.
    Recover { success: bool, recovered: bool },
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::Supervisor as u8,
        channel,
        command,
    }
}

fn unknown_channel(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Supervisor as u8,
        channel,
    }
}

impl SupervisorCommand {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match (channel, r.u8()?) {
            (INFO, GET_STATE_BITFIELD) => Self::GetStateBitfield,
            (INFO, c) => match SupervisorState::from_command(c) {
                Some(s) => Self::QueryState(s),
                None => return Err(unknown_command(channel, c)),
            },
            (COMMAND, ARM) => Self::Arm(r.u8()? != 0),
            (COMMAND, RECOVER) => Self::Recover,
            (COMMAND, EMERGENCY_STOP) => Self::EmergencyStop,
            (COMMAND, EMERGENCY_STOP_WATCHDOG) => Self::EmergencyStopWatchdog,
            (COMMAND, c) => return Err(unknown_command(channel, c)),
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::GetStateBitfield => (INFO, w.u8(GET_STATE_BITFIELD)),
            Self::QueryState(s) => (INFO, w.u8(*s as u8)),
            Self::Arm(arm) => (COMMAND, w.u8(ARM).u8(u8::from(*arm))),
            Self::Recover => (COMMAND, w.u8(RECOVER)),
            Self::EmergencyStop => (COMMAND, w.u8(EMERGENCY_STOP)),
            Self::EmergencyStopWatchdog => (COMMAND, w.u8(EMERGENCY_STOP_WATCHDOG)),
        };
        w.packet(Port::Supervisor as u8, channel)
    }
}

impl SupervisorReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match (channel, r.u8()?) {
            (INFO, c) if c == RESPONSE | GET_STATE_BITFIELD => Self::StateBitfield(r.u16()?),
            (INFO, c) => match SupervisorState::from_command(c & !RESPONSE) {
                Some(state) if c & RESPONSE != 0 => Self::State {
                    state,
                    value: r.u8()? != 0,
                },
                _ => return Err(unknown_command(channel, c)),
            },
            (COMMAND, c) if c == RESPONSE | ARM => Self::Arm {
                success: r.u8()? != 0,
                is_armed: r.u8()? != 0,
            },
            (COMMAND, c) if c == RESPONSE | RECOVER => Self::Recover {
                success: r.u8()? != 0,
                recovered: r.u8()? != 0,
            },
            (COMMAND, c) => return Err(unknown_command(channel, c)),
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::StateBitfield(bits) => (INFO, w.u8(RESPONSE | GET_STATE_BITFIELD).u16(*bits)),
            Self::State { state, value } => {
                (INFO, w.u8(RESPONSE | *state as u8).u8(u8::from(*value)))
            }
            Self::Arm { success, is_armed } => (
                COMMAND,
                w.u8(RESPONSE | ARM)
                    .u8(u8::from(*success))
                    .u8(u8::from(*is_armed)),
            ),
            Self::Recover { success, recovered } => (
                COMMAND,
                w.u8(RESPONSE | RECOVER)
                    .u8(u8::from(*success))
                    .u8(u8::from(*recovered)),
            ),
        };
        w.packet(Port::Supervisor as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn commands_match_cflib_and_crazyflie_lib() {
        // cflib Supervisor.send_emergency_stop (protocol >= 12): (CMD_EMERGENCY_STOP,) on 9:1.
        uplink(
            Uplink::Supervisor(SupervisorCommand::EmergencyStop),
            &[0x9D, 0x03],
        );
        // cflib Supervisor.send_arming_request(True): (CMD_ARM_SYSTEM, True).
        uplink(
            Uplink::Supervisor(SupervisorCommand::Arm(true)),
            &[0x9D, 0x01, 0x01],
        );
        // crazyflie-lib Supervisor::send_emergency_stop_watchdog, link bits 0.
        uplink(
            Uplink::Supervisor(SupervisorCommand::EmergencyStopWatchdog),
            &[0x91, 0x04],
        );
        // crazyflie-lib Supervisor::read_bitfield: [CMD_GET_STATE_BITFIELD] on 9:0.
        uplink(
            Uplink::Supervisor(SupervisorCommand::GetStateBitfield),
            &[0x90, 0x0C],
        );
    }

    #[test]
    fn replies_match_firmware() {
        // crtp_supervisor.c sendSupervisorResponse(CH_INFO, 0x0C, &bitfield, 2).
        downlink(
            Downlink::Supervisor(SupervisorReply::StateBitfield(0x001B)),
            &[0x90, 0x8C, 0x1B, 0x00],
        );
        // CMD_ARM_SYSTEM: [0x81][success][isArmed].
        downlink(
            Downlink::Supervisor(SupervisorReply::Arm {
                success: true,
                is_armed: true,
            }),
            &[0x91, 0x81, 0x01, 0x01],
        );
        // CMD_IS_FLYING (0x05): [0x85][bit 4].
        downlink(
            Downlink::Supervisor(SupervisorReply::State {
                state: SupervisorState::IsFlying,
                value: false,
            }),
            &[0x90, 0x85, 0x00],
        );
        assert_eq!(SupervisorState::IsFlying.bit(), 1 << 4);
    }
}
