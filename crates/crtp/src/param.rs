//! Parameters, port 2: channel 0 TOC, 1 read, 2 write, 3 misc. V2 (16-bit id) formats only
//! (cflib uses them from protocol 4; the firmware is at 12).
//!
//! Sources: cflib 0.1.34 `crazyflie/param.py` (`_ParamUpdater.request_param_update`,
//! `set_value`, `set_value_raw`, `persistent_*`, `get_default_value`, `_ExtendedTypeFetcher`;
//! `MISC_*` numbers), `crazyflie/toc.py` (`CMD_TOC_ITEM_V2 2`, `CMD_TOC_INFO_V2 3`); firmware
//! `src/modules/src/param_logic.c` (`paramTOCProcess`, `paramReadProcess`: `[id][0][value]` or
//! `[id][ENOENT]`; `paramWriteProcess`: echo, or `[id][ENOENT]`; `paramSetByName`:
//! `[0][group\0][name\0][result]`; `paramSetInt`: `[1][id][value]`; persistent/extended replies
//! `[cmd][id][status][...]`); crazyflie-lib 0.8.2 `subsystems/param.rs`, `crtp_utils.rs`.

use crate::toc::TocItem;
use crate::wire::{Reader, Writer};
use crate::{CrtpError, Packet, Port};

const TOC: u8 = 0;
const READ: u8 = 1;
const WRITE: u8 = 2;
const MISC: u8 = 3;

const TOC_ITEM_V2: u8 = 2;
const TOC_INFO_V2: u8 = 3;

const MISC_SET_BY_NAME: u8 = 0;
const MISC_VALUE_UPDATED: u8 = 1;

/// The misc-channel commands that take a parameter id: request `[cmd][id u16]`, reply
/// `[cmd][id u16][firmware-defined bytes]` (usually a status byte then values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ParamMisc {
    /// V1, reply `[2][id][ext type or ENOENT]`.
    GetExtendedType = 2,
    /// Reply `[3][id][status]`.
    PersistentStore = 3,
    /// Reply `[4][id][stored? or ENOENT][default][stored]`.
    PersistentGetState = 4,
    /// Reply `[5][id][status]`.
    PersistentClear = 5,
    /// V1, reply `[6][id][value]` or `[6][id][ENOENT]`.
    GetDefaultValue = 6,
    /// Reply `[7][id][status][ext type]`.
    GetExtendedTypeV2 = 7,
    /// Reply `[8][id][status][value]`.
    GetDefaultValueV2 = 8,
}

impl ParamMisc {
    fn from_u8(b: u8) -> Option<Self> {
        use ParamMisc::*;
        [
            GetExtendedType,
            PersistentStore,
            PersistentGetState,
            PersistentClear,
            GetDefaultValue,
            GetExtendedTypeV2,
            GetDefaultValueV2,
        ]
        .into_iter()
        .find(|m| *m as u8 == b)
    }
}

/// Host → Crazyflie on port 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamRequest {
    /// 0:`[3]`.
    TocInfoV2,
    /// 0:`[2][id u16]`.
    TocItemV2 { id: u16 },
    /// 1:`[id u16]`.
    Read { id: u16 },
    /// 2:`[id u16][value]`, value little-endian in the parameter's type.
    Write { id: u16, value: Vec<u8> },
    /// 3:`[0][group\0][name\0][type][value]` — set without knowing the TOC.
    SetByName {
        group: String,
        name: String,
        type_byte: u8,
        value: Vec<u8>,
    },
    /// 3:`[cmd][id u16]`.
    Misc { command: ParamMisc, id: u16 },
}

/// Crazyflie → host on port 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamReply {
    /// 0:`[3][count u16][crc32 u32]`.
    TocInfoV2 { count: u16, crc32: u32 },
    /// 0:`[2][id u16][type][group\0][name\0]`.
    /// `item: None` is the firmware's out-of-range reply, `[2]` alone. That reply carries no
    /// id, so it decodes with `id: 0` whatever id was asked for.
    TocItemV2 { id: u16, item: Option<TocItem> },
    /// 1:`[id u16][status][value]`: status 0 with the value, or `ENOENT` (2) and no value.
    ReadValue { id: u16, status: u8, value: Vec<u8> },
    /// 2: echo of the write `[id u16][value]`; `[id][2]` (ENOENT) for an unknown id.
    WriteAck { id: u16, value: Vec<u8> },
    /// 3:`[1][id u16][value]`, unsolicited after an on-board change.
    ValueUpdated { id: u16, value: Vec<u8> },
    /// 3:`[0][group\0][name\0][result]`, result 0 or an errno (ENOENT, EINVAL, EACCES).
    SetByNameReply {
        group: String,
        name: String,
        result: u8,
    },
    /// 3:`[cmd][id u16][data]`.
    MiscReply {
        command: ParamMisc,
        id: u16,
        data: Vec<u8>,
    },
}

fn unknown_command(channel: u8, command: u8) -> CrtpError {
    CrtpError::UnknownCommand {
        port: Port::Param as u8,
        channel,
        command,
    }
}

fn unknown_channel(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Param as u8,
        channel,
    }
}

impl ParamRequest {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            TOC => match r.u8()? {
                TOC_INFO_V2 => Self::TocInfoV2,
                TOC_ITEM_V2 => Self::TocItemV2 { id: r.u16()? },
                c => return Err(unknown_command(channel, c)),
            },
            READ => Self::Read { id: r.u16()? },
            WRITE => Self::Write {
                id: r.u16()?,
                value: r.rest().to_vec(),
            },
            MISC => match r.u8()? {
                MISC_SET_BY_NAME => Self::SetByName {
                    group: r.cstr("group")?,
                    name: r.cstr("name")?,
                    type_byte: r.u8()?,
                    value: r.rest().to_vec(),
                },
                c => match ParamMisc::from_u8(c) {
                    Some(command) => Self::Misc {
                        command,
                        id: r.u16()?,
                    },
                    None => return Err(unknown_command(channel, c)),
                },
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
            Self::Read { id } => (READ, w.u16(*id)),
            Self::Write { id, value } => (WRITE, w.u16(*id).bytes(value)),
            Self::SetByName {
                group,
                name,
                type_byte,
                value,
            } => (
                MISC,
                w.u8(MISC_SET_BY_NAME)
                    .cstr("group", group)?
                    .cstr("name", name)?
                    .u8(*type_byte)
                    .bytes(value),
            ),
            Self::Misc { command, id } => (MISC, w.u8(*command as u8).u16(*id)),
        };
        w.packet(Port::Param as u8, channel)
    }
}

impl ParamReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        let mut r = Reader::new(data);
        let msg = match channel {
            TOC => match r.u8()? {
                TOC_INFO_V2 => Self::TocInfoV2 {
                    count: r.u16()?,
                    crc32: r.u32()?,
                },
                TOC_ITEM_V2 if data.len() == 1 => Self::TocItemV2 { id: 0, item: None },
                TOC_ITEM_V2 => Self::TocItemV2 {
                    id: r.u16()?,
                    item: Some(TocItem::read(&mut r)?),
                },
                c => return Err(unknown_command(channel, c)),
            },
            READ => Self::ReadValue {
                id: r.u16()?,
                status: r.u8()?,
                value: r.rest().to_vec(),
            },
            WRITE => Self::WriteAck {
                id: r.u16()?,
                value: r.rest().to_vec(),
            },
            MISC => match r.u8()? {
                MISC_SET_BY_NAME => Self::SetByNameReply {
                    group: r.cstr("group")?,
                    name: r.cstr("name")?,
                    result: r.u8()?,
                },
                MISC_VALUE_UPDATED => Self::ValueUpdated {
                    id: r.u16()?,
                    value: r.rest().to_vec(),
                },
                c => match ParamMisc::from_u8(c) {
                    Some(command) => Self::MiscReply {
                        command,
                        id: r.u16()?,
                        data: r.rest().to_vec(),
                    },
                    None => return Err(unknown_command(channel, c)),
                },
            },
            _ => return Err(unknown_channel(channel)),
        };
        r.finish()?;
        Ok(msg)
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let w = Writer::new();
        let (channel, w) = match self {
            Self::TocInfoV2 { count, crc32 } => (TOC, w.u8(TOC_INFO_V2).u16(*count).u32(*crc32)),
            Self::TocItemV2 {
                id,
                item: Some(item),
            } => (TOC, item.write(w.u8(TOC_ITEM_V2).u16(*id))?),
            Self::TocItemV2 { item: None, .. } => (TOC, w.u8(TOC_ITEM_V2)),
            Self::ReadValue { id, status, value } => (READ, w.u16(*id).u8(*status).bytes(value)),
            Self::WriteAck { id, value } => (WRITE, w.u16(*id).bytes(value)),
            Self::ValueUpdated { id, value } => {
                (MISC, w.u8(MISC_VALUE_UPDATED).u16(*id).bytes(value))
            }
            Self::SetByNameReply {
                group,
                name,
                result,
            } => (
                MISC,
                w.u8(MISC_SET_BY_NAME)
                    .cstr("group", group)?
                    .cstr("name", name)?
                    .u8(*result),
            ),
            Self::MiscReply { command, id, data } => {
                (MISC, w.u8(*command as u8).u16(*id).bytes(data))
            }
        };
        w.packet(Port::Param as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn toc_requests_match_cflib() {
        // cflib TocFetcher.start (protocol >= 4): pk.data = (CMD_TOC_INFO_V2,) on 2:0.
        uplink(Uplink::Param(ParamRequest::TocInfoV2), &[0x2C, 0x03]);
        // cflib TocFetcher._request_toc_element(261).
        uplink(
            Uplink::Param(ParamRequest::TocItemV2 { id: 261 }),
            &[0x2C, 0x02, 0x05, 0x01],
        );
    }

    #[test]
    fn read_and_write_match_cflib() {
        // cflib _ParamUpdater.request_param_update(258): struct.pack('<H', 258) on 2:1.
        uplink(
            Uplink::Param(ParamRequest::Read { id: 258 }),
            &[0x2D, 0x02, 0x01],
        );
        // cflib Param.set_value for a float param, id 7, value 0.5: '<H' + '<f' on 2:2.
        uplink(
            Uplink::Param(ParamRequest::Write {
                id: 7,
                value: 0.5f32.to_le_bytes().to_vec(),
            }),
            &[0x2E, 0x07, 0x00, 0x00, 0x00, 0x00, 0x3F],
        );
        // cflib Param.set_value_raw('ring.effect', 0x08, 7): '<B{n}sBB' on 2:3.
        uplink(
            Uplink::Param(ParamRequest::SetByName {
                group: "ring".into(),
                name: "effect".into(),
                type_byte: 0x08,
                value: vec![7],
            }),
            &[
                0x2F, 0x00, b'r', b'i', b'n', b'g', 0, b'e', b'f', b'f', b'e', b'c', b't', 0, 0x08,
                0x07,
            ],
        );
        // crazyflie-lib Param::persistent_store: [MISC_PERSISTENT_STORE, id lo, id hi] on 2:3.
        uplink(
            Uplink::Param(ParamRequest::Misc {
                command: ParamMisc::PersistentStore,
                id: 0x0102,
            }),
            &[0x23, 0x03, 0x02, 0x01],
        );
    }

    #[test]
    fn replies_match_firmware() {
        // param_logic.c paramTOCProcess CMD_GET_INFO_V2: [3][count u16][crc32].
        downlink(
            Downlink::Param(ParamReply::TocInfoV2 {
                count: 0x0123,
                crc32: 0xDEAD_BEEF,
            }),
            &[0x20, 0x03, 0x23, 0x01, 0xEF, 0xBE, 0xAD, 0xDE],
        );
        // CMD_GET_ITEM_V2: [2][id u16][type][group\0][name\0]; float | PARAM_CORE.
        let mut item = vec![0x20, 0x02, 0x05, 0x00, 0x26];
        item.extend_from_slice(b"pid_rate\0roll_kp\0");
        downlink(
            Downlink::Param(ParamReply::TocItemV2 {
                id: 5,
                item: Some(TocItem {
                    type_byte: 0x26,
                    group: "pid_rate".into(),
                    name: "roll_kp".into(),
                }),
            }),
            &item,
        );
        downlink(
            Downlink::Param(ParamReply::TocItemV2 { id: 0, item: None }),
            &[0x20, 0x02],
        );
        // paramReadProcess (V2): [id u16][0][value].
        downlink(
            Downlink::Param(ParamReply::ReadValue {
                id: 258,
                status: 0,
                value: vec![0x00, 0x00, 0x00, 0x3F],
            }),
            &[0x21, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x3F],
        );
        // paramWriteProcess, unknown id: [id u16][ENOENT].
        downlink(
            Downlink::Param(ParamReply::WriteAck {
                id: 7,
                value: vec![2],
            }),
            &[0x22, 0x07, 0x00, 0x02],
        );
        // paramSetByName: [0][group\0][name\0][result] (ENOENT).
        downlink(
            Downlink::Param(ParamReply::SetByNameReply {
                group: "ring".into(),
                name: "effect".into(),
                result: 2,
            }),
            b"\x23\x00ring\0effect\0\x02",
        );
        // paramSetInt: [MISC_VALUE_UPDATED][id u16][value].
        downlink(
            Downlink::Param(ParamReply::ValueUpdated {
                id: 9,
                value: vec![1],
            }),
            &[0x23, 0x01, 0x09, 0x00, 0x01],
        );
    }

    #[test]
    fn names_with_nul_do_not_encode() {
        let bad = Uplink::Param(ParamRequest::SetByName {
            group: "a\0b".into(),
            name: "c".into(),
            type_byte: 8,
            value: vec![],
        });
        assert_eq!(
            bad.to_packet(),
            Err(CrtpError::BadString { field: "group" })
        );
    }
}
