//! The two directions of CRTP as typed messages: [`Uplink`] (host → Crazyflie) and [`Downlink`]
//! (Crazyflie → host), each with one `decode` and one `to_packet`.
//!
//! Port 15 channel 3 is the null packet: with no data it is [`Uplink::Null`] /
//! [`Downlink::Null`] (a lone `0xFF` or `0xF3` byte — the radio poll and the UDP scan probe).
//! With data it is radio-layer traffic (Safelink's `[0xFF, 0x05, 0x01]`, crazyflie-lib's nRF
//! power commands `[0xFF, 0xFE, cmd]`) and decodes as `Other`, untouched.
//!
//! `Other(Packet)` carries the ports this crate does not model in that direction. `decode` never
//! returns `Other` for a modelled port; an `Other` built by hand for a modelled port re-decodes
//! as the typed variant.
//!
//! Sources: as named in each port's module; port numbers from firmware
//! `src/modules/interface/crtp.h` and cflib 0.1.34 `crtp/crtpstack.py` (`CRTPPort`).

use crate::generic::{META_CHANNEL, SETPOINT_CHANNEL};
use crate::{
    CrtpError, GenericSetpoint, LinkReply, LinkRequest, LocalizationPacket, LocalizationReply,
    LogReply, LogRequest, MemReply, MemRequest, MetaCommand, Packet, ParamReply, ParamRequest,
    PlatformReply, PlatformRequest, Port, RpytSetpoint, SupervisorCommand, SupervisorReply,
    console,
};

/// Host → Crazyflie.
#[derive(Clone, Debug, PartialEq)]
pub enum Uplink {
    /// 15:3 with no data.
    Null,
    /// Port 15 channels 0–2.
    Link(LinkRequest),
    /// Port 13.
    Platform(PlatformRequest),
    /// Port 2.
    Param(ParamRequest),
    /// Port 5.
    Log(LogRequest),
    /// Port 4.
    Mem(MemRequest),
    /// Port 3 channel 0, the legacy roll/pitch/yaw-rate/thrust setpoint.
    Commander(RpytSetpoint),
    /// Port 7 channel 0.
    Generic(GenericSetpoint),
    /// Port 7 channel 1.
    Meta(MetaCommand),
    /// Port 6.
    Localization(LocalizationPacket),
    /// Port 9.
    Supervisor(SupervisorCommand),
    /// Ports 0, 1, 8 (high-level commander), 10–12, 14 (debug), and 15:3 with data.
    Other(Packet),
}

/// Crazyflie → host.
#[derive(Clone, Debug, PartialEq)]
pub enum Downlink {
    /// 15:3 with no data (an empty ACK).
    Null,
    /// Port 15 channels 0–1.
    Link(LinkReply),
    /// Port 0 channel 0: console bytes (print with `String::from_utf8_lossy`; a UTF-8
    /// character may straddle two packets).
    Console(Vec<u8>),
    /// Port 13.
    Platform(PlatformReply),
    /// Port 2.
    Param(ParamReply),
    /// Port 5.
    Log(LogReply),
    /// Port 4.
    Mem(MemReply),
    /// Port 9.
    Supervisor(SupervisorReply),
    /// Port 6 channel 1.
    Localization(LocalizationReply),
    /// Ports 1, 3, 7, 8, 10–12, 14, and 15:3 with data.
    Other(Packet),
}

const CONSOLE: u8 = Port::Console as u8;
const PARAM: u8 = Port::Param as u8;
const COMMANDER: u8 = Port::Commander as u8;
const MEM: u8 = Port::Mem as u8;
const LOG: u8 = Port::Log as u8;
const LOCALIZATION: u8 = Port::Localization as u8;
const GENERIC: u8 = Port::GenericSetpoint as u8;
const SUPERVISOR: u8 = Port::Supervisor as u8;
const PLATFORM: u8 = Port::Platform as u8;
const LINK: u8 = Port::Link as u8;

/// Rejects a hand-built packet outside the header's range; sorts out the null port.
fn precheck(p: &Packet) -> Result<Option<bool>, CrtpError> {
    if p.port > 15 || p.channel > 3 || p.data.len() > crate::MAX_DATA {
        // Packet::new/raw/decode never build such a packet; only a struct literal can.
        return Err(CrtpError::BadHeader {
            port: p.port,
            channel: p.channel,
        });
    }
    Ok(p.is_null().then_some(p.data.is_empty()))
}

impl Uplink {
    /// Decodes one packet. Errors are typed; nothing panics.
    pub fn decode(p: &Packet) -> Result<Self, CrtpError> {
        match precheck(p)? {
            Some(true) => return Ok(Self::Null),
            Some(false) => return Ok(Self::Other(p.clone())),
            None => {}
        }
        let (ch, data) = (p.channel, p.data.as_slice());
        let unknown_channel = CrtpError::UnknownChannel {
            port: p.port,
            channel: ch,
        };
        Ok(match p.port {
            LINK => Self::Link(LinkRequest::decode(ch, data)?),
            PLATFORM => Self::Platform(PlatformRequest::decode(ch, data)?),
            PARAM => Self::Param(ParamRequest::decode(ch, data)?),
            LOG => Self::Log(LogRequest::decode(ch, data)?),
            MEM => Self::Mem(MemRequest::decode(ch, data)?),
            COMMANDER if ch == 0 => Self::Commander(RpytSetpoint::from_payload(data)?),
            COMMANDER => return Err(unknown_channel),
            GENERIC if ch == SETPOINT_CHANNEL => Self::Generic(GenericSetpoint::decode(data)?),
            GENERIC if ch == META_CHANNEL => Self::Meta(MetaCommand::decode(data)?),
            GENERIC => return Err(unknown_channel),
            LOCALIZATION => Self::Localization(LocalizationPacket::decode(ch, data)?),
            SUPERVISOR => Self::Supervisor(SupervisorCommand::decode(ch, data)?),
            _ => Self::Other(p.clone()),
        })
    }

    /// Encodes to a packet (link bits are added by [`Packet::encode`]). Errors if a field does
    /// not fit the wire: more than 30 bytes, a NUL in a name, a non-finite setpoint, a value
    /// out of its wire range.
    pub fn to_packet(&self) -> Result<Packet, CrtpError> {
        match self {
            Self::Null => Ok(Packet::null()),
            Self::Link(m) => m.encode(),
            Self::Platform(m) => m.encode(),
            Self::Param(m) => m.encode(),
            Self::Log(m) => m.encode(),
            Self::Mem(m) => m.encode(),
            Self::Commander(sp) => Packet::new(Port::Commander, 0, sp.payload()?),
            Self::Generic(m) => m.encode(),
            Self::Meta(m) => m.encode(),
            Self::Localization(m) => m.encode(),
            Self::Supervisor(m) => m.encode(),
            Self::Other(p) => Packet::raw(p.port, p.channel, p.data.clone()),
        }
    }
}

impl Downlink {
    /// Decodes one packet. Errors are typed; nothing panics.
    pub fn decode(p: &Packet) -> Result<Self, CrtpError> {
        match precheck(p)? {
            Some(true) => return Ok(Self::Null),
            Some(false) => return Ok(Self::Other(p.clone())),
            None => {}
        }
        let (ch, data) = (p.channel, p.data.as_slice());
        Ok(match p.port {
            LINK => Self::Link(LinkReply::decode(ch, data)?),
            CONSOLE => Self::Console(console::decode(ch, data)?),
            PLATFORM => Self::Platform(PlatformReply::decode(ch, data)?),
            PARAM => Self::Param(ParamReply::decode(ch, data)?),
            LOG => Self::Log(LogReply::decode(ch, data)?),
            MEM => Self::Mem(MemReply::decode(ch, data)?),
            SUPERVISOR => Self::Supervisor(SupervisorReply::decode(ch, data)?),
            LOCALIZATION => Self::Localization(LocalizationReply::decode(ch, data)?),
            _ => Self::Other(p.clone()),
        })
    }

    /// Encodes to a packet; errors as [`Uplink::to_packet`].
    pub fn to_packet(&self) -> Result<Packet, CrtpError> {
        match self {
            Self::Null => Ok(Packet::null()),
            Self::Link(m) => m.encode(),
            Self::Console(text) => console::encode(text),
            Self::Platform(m) => m.encode(),
            Self::Param(m) => m.encode(),
            Self::Log(m) => m.encode(),
            Self::Mem(m) => m.encode(),
            Self::Supervisor(m) => m.encode(),
            Self::Localization(m) => m.encode(),
            Self::Other(p) => Packet::raw(p.port, p.channel, p.data.clone()),
        }
    }
}

/// Byte-exact checks against reference wire bytes (header link bits ignored, as receivers do).
#[cfg(test)]
pub(crate) mod wire_check {
    use super::*;

    fn same_wire(encoded: &[u8], wire: &[u8]) {
        assert_eq!(encoded[0] & 0xF3, wire[0] & 0xF3, "header");
        assert_eq!(&encoded[1..], &wire[1..], "payload");
    }

    /// `wire` decodes to `msg`, and `msg` encodes to `wire`.
    pub(crate) fn uplink(msg: Uplink, wire: &[u8]) {
        let packet = Packet::decode(wire).expect("fits a packet");
        assert_eq!(Uplink::decode(&packet), Ok(msg.clone()));
        same_wire(&msg.to_packet().expect("encodes").encode(), wire);
    }

    /// `wire` decodes to `msg`, and `msg` encodes to `wire`.
    pub(crate) fn downlink(msg: Downlink, wire: &[u8]) {
        let packet = Packet::decode(wire).expect("fits a packet");
        assert_eq!(Downlink::decode(&packet), Ok(msg.clone()));
        same_wire(&msg.to_packet().expect("encodes").encode(), wire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::{arb_downlink, arb_uplink};
    use proptest::prelude::*;

    fn any_packet() -> impl Strategy<Value = Packet> {
        (
            0u8..16,
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..=30),
        )
            .prop_map(|(port, ch, data)| Packet::raw(port, ch, data).expect("in range"))
    }

    /// Packets biased towards well-formed prefixes: a modelled port and a known first byte.
    fn plausible_packet() -> impl Strategy<Value = Packet> {
        (
            prop::sample::select(vec![0u8, 2, 3, 4, 5, 6, 7, 9, 13, 15]),
            0u8..4,
            0u8..16,
            proptest::collection::vec(any::<u8>(), 0..=29),
        )
            .prop_map(|(port, ch, first, mut data)| {
                data.insert(0, first);
                Packet::raw(port, ch, data).expect("in range")
            })
    }

    #[test]
    fn null_and_radio_layer_packets() {
        let null = Packet::decode(&[0xFF]).expect("header only");
        assert_eq!(Uplink::decode(&null), Ok(Uplink::Null));
        assert_eq!(Downlink::decode(&null), Ok(Downlink::Null));
        assert_eq!(Uplink::Null.to_packet().expect("null").encode(), vec![0xFF]);
        let safelink = Packet::decode(&[0xFF, 0x05, 0x01]).expect("fits");
        assert_eq!(Uplink::decode(&safelink), Ok(Uplink::Other(safelink)));
        let hl = Packet::decode(&[0x8C, 7, 0]).expect("fits");
        assert_eq!(Uplink::decode(&hl), Ok(Uplink::Other(hl)));
    }

    #[test]
    fn garbage_on_modelled_ports_is_a_typed_error() {
        let p = |bytes: &[u8]| Packet::decode(bytes).expect("fits");
        assert_eq!(
            Uplink::decode(&p(&[0x2C, 0x09])),
            Err(CrtpError::UnknownCommand {
                port: 2,
                channel: 0,
                command: 9
            })
        );
        assert_eq!(
            Uplink::decode(&p(&[0x2C])),
            Err(CrtpError::TooShort {
                expected_at_least: 1,
                got: 0
            })
        );
        assert_eq!(
            Uplink::decode(&p(&[0x3D, 1])),
            Err(CrtpError::UnknownChannel {
                port: 3,
                channel: 1
            })
        );
        assert_eq!(
            Downlink::decode(&p(&[0x5C, 2, 1, 0, 6, b'g', 0, b'n'])),
            Err(CrtpError::BadString { field: "name" })
        );
        assert_eq!(
            Uplink::decode(&p(&[0x9D, 0x03, 0x00])),
            Err(CrtpError::BadLength {
                expected: 1,
                got: 2
            })
        );
        let bad = Packet {
            port: 16,
            channel: 0,
            data: vec![],
        };
        assert!(matches!(
            Uplink::decode(&bad),
            Err(CrtpError::BadHeader { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Every uplink message survives to_packet → bytes → Packet::decode → Uplink::decode.
        #[test]
        fn uplink_round_trip(msg in arb_uplink(), link in 0u8..4) {
            let packet = msg.to_packet().expect("strategy builds encodable messages");
            let mut bytes = packet.encode();
            bytes[0] = (bytes[0] & 0xF3) | (link << 2);
            let back = Packet::decode(&bytes).expect("at most 31 bytes");
            prop_assert_eq!(Uplink::decode(&back), Ok(msg));
        }

        /// Every downlink message survives to_packet → bytes → Packet::decode → Downlink::decode.
        #[test]
        fn downlink_round_trip(msg in arb_downlink(), link in 0u8..4) {
            let packet = msg.to_packet().expect("strategy builds encodable messages");
            let mut bytes = packet.encode();
            bytes[0] = (bytes[0] & 0xF3) | (link << 2);
            let back = Packet::decode(&bytes).expect("at most 31 bytes");
            prop_assert_eq!(Downlink::decode(&back), Ok(msg));
        }

        /// Decoding any byte string (0..40 bytes, any header) in either direction never panics.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::decode(&bytes) {
                let _ = Uplink::decode(&p);
                let _ = Downlink::decode(&p);
            }
        }

        /// Whatever decodes re-encodes without error and decodes to the same message (uplink).
        #[test]
        fn uplink_decode_is_stable(p in prop_oneof![any_packet(), plausible_packet()]) {
            if let Ok(msg) = Uplink::decode(&p) {
                let again = msg.to_packet().expect("decoded messages re-encode");
                prop_assert_eq!(Uplink::decode(&again), Ok(msg));
            }
        }

        /// Whatever decodes re-encodes without error and decodes to the same message (downlink).
        #[test]
        fn downlink_decode_is_stable(p in prop_oneof![any_packet(), plausible_packet()]) {
            if let Ok(msg) = Downlink::decode(&p) {
                let again = msg.to_packet().expect("decoded messages re-encode");
                prop_assert_eq!(Downlink::decode(&again), Ok(msg));
            }
        }
    }
}
