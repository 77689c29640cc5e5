//! Memory access, port 4: channel 0 info, 1 read, 2 write.
//!
//! Sources: cflib 0.1.34 `crazyflie/mem/__init__.py` (`CMD_INFO_NBR 1`, `CMD_INFO_DETAILS 2`;
//! `_ReadRequest`: `<BIB` id, addr, len; `_WriteRequest`: `<BI` id, addr, then data; details
//! reply parsed as id, type, `size u32`, 8 address bytes, and treated as "no info" when shorter
//! than 5 payload bytes); firmware `src/modules/src/crtp_mem.c` (`createInfoResponse`:
//! `[2][id][type][size u32][serial]`, the serial padded to at least 8 bytes and up to
//! `MEMORY_SERIAL_LENGTH` (12 in current firmware); read reply `[id][addr u32][status][data]`,
//! no data on error; write reply `[id][addr u32][status]`); crazyflie-lib 0.8.2
//! `subsystems/memory/mod.rs` (takes every byte after the size as the serial).

use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const INFO: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;

const INFO_NUMBER: u8 = 1;
const INFO_DETAILS: u8 = 2;

/// Host → Crazyflie on port 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemRequest {
    /// 0:`[1]`.
    GetNumber,
    /// 0:`[2][id]`.
    GetDetails { id: u8 },
    /// 1:`[id][addr u32][len]`.
    Read { id: u8, addr: u32, len: u8 },
    /// 2:`[id][addr u32][data]` (at most 25 bytes).
    Write { id: u8, addr: u32, data: Vec<u8> },
}

/// Crazyflie → host on port 4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemReply {
    /// 0:`[1][count]`.
    Number(u8),
    /// 0:`[2][id][type][size u32][addr u64]`. Serial bytes past the first 8 (current firmware
    /// may send up to 12) are ignored on decode, as cflib does; encode sends exactly 8.
    Details {
        id: u8,
        /// `MemoryType_t` (e.g. 0x10 LED driver, 0x12 trajectory).
        mem_type: u8,
        size: u32,
        /// The first 8 serial/address bytes (1-wire ROM id; zero for most memories), read
        /// little-endian.
        addr: u64,
    },
    /// 0:`[2][id]` alone: no details for this memory (old firmware, cflib's 1-wire workaround).
    DetailsInvalid { id: u8 },
    /// 1:`[id][addr u32][status][data]`; status 0 with the data, or EIO (5) and no data.
    Read {
        id: u8,
        addr: u32,
        status: u8,
        data: Vec<u8>,
    },
    /// 2:`[id][addr u32][status]`.
    Write { id: u8, addr: u32, status: u8 },
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::Mem as u8,
        channel,
        command,
    }
}

fn unknown_channel(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Mem as u8,
        channel,
    }
}

impl MemRequest {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            INFO => match r.u8()? {
                INFO_NUMBER => Self::GetNumber,
                INFO_DETAILS => Self::GetDetails { id: r.u8()? },
                c => return Err(unknown_command(channel, c)),
            },
            READ => Self::Read {
                id: r.u8()?,
                addr: r.u32()?,
                len: r.u8()?,
            },
            WRITE => Self::Write {
                id: r.u8()?,
                addr: r.u32()?,
                data: r.rest().to_vec(),
            },
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::GetNumber => (INFO, w.u8(INFO_NUMBER)),
            Self::GetDetails { id } => (INFO, w.u8(INFO_DETAILS).u8(*id)),
            Self::Read { id, addr, len } => (READ, w.u8(*id).u32(*addr).u8(*len)),
            Self::Write { id, addr, data } => (WRITE, w.u8(*id).u32(*addr).bytes(data)),
        };
        w.packet(Port::Mem as u8, channel)
    }
}

impl MemReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            INFO => match r.u8()? {
                INFO_NUMBER => Self::Number(r.u8()?),
                INFO_DETAILS if data.len() == 2 => Self::DetailsInvalid { id: r.u8()? },
                INFO_DETAILS => {
                    let details = Self::Details {
                        id: r.u8()?,
                        mem_type: r.u8()?,
                        size: r.u32()?,
                        addr: r.u64()?,
                    };
                    let _longer_serial = r.rest();
                    details
                }
                c => return Err(unknown_command(channel, c)),
            },
            READ => Self::Read {
                id: r.u8()?,
                addr: r.u32()?,
                status: r.u8()?,
                data: r.rest().to_vec(),
            },
            WRITE => Self::Write {
                id: r.u8()?,
                addr: r.u32()?,
                status: r.u8()?,
            },
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::Number(n) => (INFO, w.u8(INFO_NUMBER).u8(*n)),
            Self::Details {
                id,
                mem_type,
                size,
                addr,
            } => (
                INFO,
                w.u8(INFO_DETAILS)
                    .u8(*id)
                    .u8(*mem_type)
                    .u32(*size)
                    .u64(*addr),
            ),
            Self::DetailsInvalid { id } => (INFO, w.u8(INFO_DETAILS).u8(*id)),
            Self::Read {
                id,
                addr,
                status,
                data,
            } => (READ, w.u8(*id).u32(*addr).u8(*status).bytes(data)),
            Self::Write { id, addr, status } => (WRITE, w.u8(*id).u32(*addr).u8(*status)),
        };
        w.packet(Port::Mem as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn requests_match_cflib() {
        // cflib Memory._handle_cmd_info_nbr → (CMD_INFO_DETAILS, id) on 4:0.
        uplink(
            Uplink::Mem(MemRequest::GetDetails { id: 3 }),
            &[0x4C, 0x02, 0x03],
        );
        uplink(Uplink::Mem(MemRequest::GetNumber), &[0x4C, 0x01]);
        // cflib _ReadRequest: struct.pack('<BIB', id, addr, len) on 4:1.
        uplink(
            Uplink::Mem(MemRequest::Read {
                id: 3,
                addr: 0x10,
                len: 24,
            }),
            &[0x4D, 0x03, 0x10, 0x00, 0x00, 0x00, 0x18],
        );
        // cflib _WriteRequest: struct.pack('<BI', id, addr) + data on 4:2.
        uplink(
            Uplink::Mem(MemRequest::Write {
                id: 3,
                addr: 0,
                data: vec![0xF8, 0x00],
            }),
            &[0x4E, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x00],
        );
    }

    #[test]
    fn replies_match_firmware() {
        // crtp_mem.c createInfoResponse: [2][id][type][size u32][serial, padded to 8 bytes];
        // here the LED driver memory (MEM_TYPE_DRIVER_LED 0x10), 256 bytes, no serial.
        downlink(
            Downlink::Mem(MemReply::Details {
                id: 3,
                mem_type: 0x10,
                size: 256,
                addr: 0,
            }),
            &[
                0x40, 0x02, 0x03, 0x10, 0x00, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        );
        // A 12-byte serial (MEMORY_SERIAL_LENGTH 12): the first 8 bytes land in addr.
        let long = Packet::decode(&[
            0x40, 0x02, 0x00, 0x01, 0x40, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ])
        .expect("fits");
        assert_eq!(
            Downlink::decode(&long),
            Ok(Downlink::Mem(MemReply::Details {
                id: 0,
                mem_type: 0x01,
                size: 64,
                addr: 0x0807_0605_0403_0201,
            }))
        );
        // Shorter than the 8 padded serial bytes the firmware always sends: an error.
        let short =
            Packet::decode(&[0x40, 0x02, 0x00, 0x01, 0x40, 0x00, 0x00, 0x00, 1]).expect("fits");
        assert!(matches!(
            Downlink::decode(&short),
            Err(CrtpError::TooShort { .. })
        ));
        // createNbrResponse: [1][count].
        downlink(Downlink::Mem(MemReply::Number(4)), &[0x40, 0x01, 0x04]);
        // memReadProcess failure: [id][addr][EIO], no data; memWriteProcess: [id][addr][0].
        downlink(
            Downlink::Mem(MemReply::Read {
                id: 3,
                addr: 0x10,
                status: 5,
                data: vec![],
            }),
            &[0x41, 0x03, 0x10, 0x00, 0x00, 0x00, 0x05],
        );
        downlink(
            Downlink::Mem(MemReply::Write {
                id: 3,
                addr: 0,
                status: 0,
            }),
            &[0x42, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00],
        );
    }
}
