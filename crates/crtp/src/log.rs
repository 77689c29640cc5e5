//! Logging, port 5: channel 0 TOC, 1 control, 2 data. V2 (16-bit id) formats only.
//!
//! Sources: firmware `src/modules/src/log.c` (`logTOCProcess`: info `[3][count u16][crc32]
//! [LOG_MAX_BLOCKS 16][LOG_MAX_OPS 128]`, item `[2][id][type & 0x0f][group\0][name\0]` or `[2]`
//! out of range; `logControlProcess`: every command answered `[cmd][block][errno]`, including
//! `CONTROL_START_BLOCK_V2 8` whose argument is `uint16_t period_in_ms` (the V1 start multiplies
//! its `u8` by 10); `struct ops_setting_v2 { u8 logType; u16 id; }` packed; `logRunBlock`:
//! `[block][timestamp ms, 24 bits LE][values]`, values at most `LOG_MAX_LEN` 26 bytes); cflib
//! 0.1.34 `crazyflie/log.py` (`LogConfig.create/start/stop/delete`, `_send_reset_packet`,
//! `LogTocElement.types`; fetch-as type in the low nibble, storage type in the high nibble of
//! the type byte); crazyflie-lib 0.8.2 `subsystems/log.rs` (creates an empty block, then one
//! `APPEND_BLOCK_V2` per variable). Neither library sends `START_BLOCK_V2`; the firmware
//! supports it.

use crate::toc::TocItem;
use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const TOC: u8 = 0;
const CONTROL: u8 = 1;
const DATA: u8 = 2;

const TOC_ITEM_V2: u8 = 2;
const TOC_INFO_V2: u8 = 3;

const DELETE_BLOCK: u8 = 2;
const START_BLOCK: u8 = 3;
const STOP_BLOCK: u8 = 4;
const RESET: u8 = 5;
const CREATE_BLOCK_V2: u8 = 6;
const APPEND_BLOCK_V2: u8 = 7;
const START_BLOCK_V2: u8 = 8;

/// Largest log-data timestamp: the wire carries 24 bits of milliseconds (wraps every ~4.7 h).
pub const MAX_LOG_TIMESTAMP_MS: u32 = 0x00FF_FFFF;

/// One variable of a block: `[log_type u8][var_id u16]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogVarSpec {
    /// Fetch-as type (log numbering, see [`crate::ValueType`]) in the low nibble; cflib puts the
    /// storage type in the high nibble, crazyflie-lib sends the TOC type alone.
    pub log_type: u8,
    /// TOC id (`0xFFFF` would mean a raw memory address, which we do not model).
    pub var_id: u16,
}

/// Host → Crazyflie on port 5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRequest {
    /// 0:`[3]`.
    TocInfoV2,
    /// 0:`[2][id u16]`.
    TocItemV2 { id: u16 },
    /// 1:`[6][block]{[type][id u16]}*` (crazyflie-lib sends it with no variables).
    CreateBlockV2 { block_id: u8, vars: Vec<LogVarSpec> },
    /// 1:`[7][block]{[type][id u16]}*`.
    AppendBlockV2 { block_id: u8, vars: Vec<LogVarSpec> },
    /// 1:`[2][block]`.
    DeleteBlock { block_id: u8 },
    /// 1:`[3][block][period in units of 10 ms]` (0 = send once).
    StartBlock { block_id: u8, period_10ms: u8 },
    /// 1:`[8][block][period ms u16]` (0 = send once).
    StartBlockV2 { block_id: u8, period_ms: u16 },
    /// 1:`[4][block]`.
    StopBlock { block_id: u8 },
    /// 1:`[5]`: delete every block (cflib and crazyflie-lib send it on connect).
    Reset,
}

/// Crazyflie → host on port 5.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogReply {
    /// 0:`[3][count u16][crc32 u32][max_blocks][max_ops]`.
    TocInfoV2 {
        count: u16,
        crc32: u32,
        max_blocks: u8,
        max_ops: u8,
    },
    /// 0:`[2][id u16][type][group\0][name\0]`.
    /// `item: None` is the firmware's out-of-range reply, `[2]` alone. That reply carries no
    /// id, so it decodes with `id: 0` whatever id was asked for.
    TocItemV2 { id: u16, item: Option<TocItem> },
    /// 1:`[command][block][result]`: the request's first two bytes echoed (for `Reset` the
    /// block byte is whatever the firmware's buffer held), result 0 or an errno (ENOENT 2,
    /// ENOEXEC 8, ENOMEM 12, EEXIST 17, E2BIG 7).
    ControlReply {
        command: u8,
        block_id: u8,
        result: u8,
    },
    /// 2:`[block][timestamp 24-bit LE][values]`.
    Data {
        block_id: u8,
        /// At most [`MAX_LOG_TIMESTAMP_MS`].
        timestamp_ms: u32,
        /// Packed little-endian in the block's fetch-as types.
        values: Vec<u8>,
    },
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::Log as u8,
        channel,
        command,
    }
}

fn unknown_channel(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Log as u8,
        channel,
    }
}

fn read_vars(r: &mut Reader<'_>) -> Result<Vec<LogVarSpec>, CrtpError> {
    let rest = r.rest();
    if !rest.len().is_multiple_of(3) {
        return Err(CrtpError::BadLength {
            expected: rest.len() / 3 * 3,
            got: rest.len(),
        });
    }
    rest.chunks_exact(3)
        .map(|c| {
            let mut v = Reader::new(c);
            Ok(LogVarSpec {
                log_type: v.u8()?,
                var_id: v.u16()?,
            })
        })
        .collect()
}

fn write_vars(w: Writer, vars: &[LogVarSpec]) -> Writer {
    vars.iter().fold(w, |w, v| w.u8(v.log_type).u16(v.var_id))
}

impl LogRequest {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            TOC => match r.u8()? {
                TOC_INFO_V2 => Self::TocInfoV2,
                TOC_ITEM_V2 => Self::TocItemV2 { id: r.u16()? },
                c => return Err(unknown_command(channel, c)),
            },
            CONTROL => match r.u8()? {
                CREATE_BLOCK_V2 => Self::CreateBlockV2 {
                    block_id: r.u8()?,
                    vars: read_vars(&mut r)?,
                },
                APPEND_BLOCK_V2 => Self::AppendBlockV2 {
                    block_id: r.u8()?,
                    vars: read_vars(&mut r)?,
                },
                DELETE_BLOCK => Self::DeleteBlock { block_id: r.u8()? },
                START_BLOCK => Self::StartBlock {
                    block_id: r.u8()?,
                    period_10ms: r.u8()?,
                },
                START_BLOCK_V2 => Self::StartBlockV2 {
                    block_id: r.u8()?,
                    period_ms: r.u16()?,
                },
                STOP_BLOCK => Self::StopBlock { block_id: r.u8()? },
                RESET => Self::Reset,
                c => return Err(unknown_command(channel, c)),
            },
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::TocInfoV2 => (TOC, w.u8(TOC_INFO_V2)),
            Self::TocItemV2 { id } => (TOC, w.u8(TOC_ITEM_V2).u16(*id)),
            Self::CreateBlockV2 { block_id, vars } => (
                CONTROL,
                write_vars(w.u8(CREATE_BLOCK_V2).u8(*block_id), vars),
            ),
            Self::AppendBlockV2 { block_id, vars } => (
                CONTROL,
                write_vars(w.u8(APPEND_BLOCK_V2).u8(*block_id), vars),
            ),
            Self::DeleteBlock { block_id } => (CONTROL, w.u8(DELETE_BLOCK).u8(*block_id)),
            Self::StartBlock {
                block_id,
                period_10ms,
            } => (CONTROL, w.u8(START_BLOCK).u8(*block_id).u8(*period_10ms)),
            Self::StartBlockV2 {
                block_id,
                period_ms,
            } => (CONTROL, w.u8(START_BLOCK_V2).u8(*block_id).u16(*period_ms)),
            Self::StopBlock { block_id } => (CONTROL, w.u8(STOP_BLOCK).u8(*block_id)),
            Self::Reset => (CONTROL, w.u8(RESET)),
        };
        w.packet(Port::Log as u8, channel)
    }
}

impl LogReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            TOC => match r.u8()? {
                TOC_INFO_V2 => Self::TocInfoV2 {
                    count: r.u16()?,
                    crc32: r.u32()?,
                    max_blocks: r.u8()?,
                    max_ops: r.u8()?,
                },
                TOC_ITEM_V2 if data.len() == 1 => Self::TocItemV2 { id: 0, item: None },
                TOC_ITEM_V2 => Self::TocItemV2 {
                    id: r.u16()?,
                    item: Some(TocItem::read(&mut r)?),
                },
                c => return Err(unknown_command(channel, c)),
            },
            CONTROL => Self::ControlReply {
                command: r.u8()?,
                block_id: r.u8()?,
                result: r.u8()?,
            },
            DATA => Self::Data {
                block_id: r.u8()?,
                timestamp_ms: r.u24()?,
                values: r.rest().to_vec(),
            },
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::TocInfoV2 {
                count,
                crc32,
                max_blocks,
                max_ops,
            } => (
                TOC,
                w.u8(TOC_INFO_V2)
                    .u16(*count)
                    .u32(*crc32)
                    .u8(*max_blocks)
                    .u8(*max_ops),
            ),
            Self::TocItemV2 {
                id,
                item: Some(item),
            } => (TOC, item.write(w.u8(TOC_ITEM_V2).u16(*id))?),
            Self::TocItemV2 { item: None, .. } => (TOC, w.u8(TOC_ITEM_V2)),
            Self::ControlReply {
                command,
                block_id,
                result,
            } => (CONTROL, w.u8(*command).u8(*block_id).u8(*result)),
            Self::Data {
                block_id,
                timestamp_ms,
                values,
            } => {
                if *timestamp_ms > MAX_LOG_TIMESTAMP_MS {
                    return Err(CrtpError::OutOfRange {
                        field: "timestamp_ms",
                    });
                }
                (DATA, w.u8(*block_id).u24(*timestamp_ms).bytes(values))
            }
        };
        w.packet(Port::Log as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn control_requests_match_cflib() {
        // cflib LogConfig.create (V2) for block 1 with 'stabilizer.roll' (id 0x10, float) and
        // 'pm.vbat' (id 0x123, fetched as FP16, stored as float): type = fetch | stored << 4.
        uplink(
            Uplink::Log(LogRequest::CreateBlockV2 {
                block_id: 1,
                vars: vec![
                    LogVarSpec {
                        log_type: 0x77,
                        var_id: 0x0010,
                    },
                    LogVarSpec {
                        log_type: 0x78,
                        var_id: 0x0123,
                    },
                ],
            }),
            &[0x5D, 0x06, 0x01, 0x77, 0x10, 0x00, 0x78, 0x23, 0x01],
        );
        // cflib LogConfig.start with period_in_ms = 100: (CMD_START_LOGGING, id, 10).
        uplink(
            Uplink::Log(LogRequest::StartBlock {
                block_id: 1,
                period_10ms: 10,
            }),
            &[0x5D, 0x03, 0x01, 0x0A],
        );
        // cflib LogConfig.stop / delete, Log._send_reset_packet.
        uplink(
            Uplink::Log(LogRequest::StopBlock { block_id: 1 }),
            &[0x5D, 0x04, 0x01],
        );
        uplink(
            Uplink::Log(LogRequest::DeleteBlock { block_id: 1 }),
            &[0x5D, 0x02, 0x01],
        );
        uplink(Uplink::Log(LogRequest::Reset), &[0x5D, 0x05]);
        // crazyflie-lib Log::create_block: [CREATE_BLOCK_V2, id], link bits 0.
        uplink(
            Uplink::Log(LogRequest::CreateBlockV2 {
                block_id: 5,
                vars: vec![],
            }),
            &[0x51, 0x06, 0x05],
        );
        // crazyflie-lib LogBlock::add_variable: [APPEND_BLOCK_V2, id, type, var id u16].
        uplink(
            Uplink::Log(LogRequest::AppendBlockV2 {
                block_id: 5,
                vars: vec![LogVarSpec {
                    log_type: 7,
                    var_id: 0x0010,
                }],
            }),
            &[0x51, 0x07, 0x05, 0x07, 0x10, 0x00],
        );
        // log.c CONTROL_START_BLOCK_V2: struct control_start_block_v2 { uint16_t period_in_ms; }.
        uplink(
            Uplink::Log(LogRequest::StartBlockV2 {
                block_id: 5,
                period_ms: 250,
            }),
            &[0x51, 0x08, 0x05, 0xFA, 0x00],
        );
    }

    #[test]
    fn replies_match_firmware() {
        // log.c logRunBlock: [block][timestamp & 0xffffff LE][float 1.0][fp16 1.0].
        downlink(
            Downlink::Log(LogReply::Data {
                block_id: 1,
                timestamp_ms: 1000,
                values: vec![0x00, 0x00, 0x80, 0x3F, 0x00, 0x3C],
            }),
            &[
                0x52, 0x01, 0xE8, 0x03, 0x00, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x3C,
            ],
        );
        // logControlProcess: [cmd][block][ret].
        downlink(
            Downlink::Log(LogReply::ControlReply {
                command: 6,
                block_id: 1,
                result: 0,
            }),
            &[0x51, 0x06, 0x01, 0x00],
        );
        // logTOCProcess CMD_GET_INFO_V2: [3][count][crc][LOG_MAX_BLOCKS 16][LOG_MAX_OPS 128].
        downlink(
            Downlink::Log(LogReply::TocInfoV2 {
                count: 320,
                crc32: 0x1234_5678,
                max_blocks: 16,
                max_ops: 128,
            }),
            &[0x50, 0x03, 0x40, 0x01, 0x78, 0x56, 0x34, 0x12, 0x10, 0x80],
        );
    }

    #[test]
    fn timestamp_is_24_bits() {
        let too_big = Downlink::Log(LogReply::Data {
            block_id: 0,
            timestamp_ms: MAX_LOG_TIMESTAMP_MS + 1,
            values: vec![],
        });
        assert_eq!(
            too_big.to_packet(),
            Err(CrtpError::OutOfRange {
                field: "timestamp_ms"
            })
        );
    }

    #[test]
    fn partial_var_spec_is_an_error() {
        let p = Packet::decode(&[0x5D, 0x06, 0x01, 0x07, 0x10]).expect("fits");
        assert_eq!(
            Uplink::decode(&p),
            Err(CrtpError::BadLength {
                expected: 0,
                got: 2
            })
        );
    }
}
