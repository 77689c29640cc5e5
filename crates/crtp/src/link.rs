//! Link service, port 15: channel 0 echo, 1 source, 2 sink (channel 3 is the null packet,
//! handled in `message.rs`).
//!
//! Sources: firmware `src/modules/src/crtpservice.c` (echo returns the packet; source answers
//! 30 bytes: `"Bitcraze Crazyflie"` zero-padded; sink ignores); cflib 0.1.34
//! `crazyflie/platformservice.py` `_request_protocol_version` (sends 15:1 `[0]` and checks the
//! first 18 reply bytes); crazyflie-lib 0.8.2 `subsystems/link_service.rs` (echo/sink/source
//! tests with `0xAA` fill).

use crate::wire::Writer;
use crate::{CrtpError, MAX_DATA, Packet, Port};

const ECHO: u8 = 0;
const SOURCE: u8 = 1;
const SINK: u8 = 2;

/// What the firmware's source channel starts with; cflib requires it before asking for the
/// protocol version.
pub const SOURCE_BANNER: &[u8] = b"Bitcraze Crazyflie";

/// Host → Crazyflie on port 15.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkRequest {
    /// Channel 0: answered with the same bytes.
    Echo(Vec<u8>),
    /// Channel 1: answered with [`LinkReply::Source`]. cflib sends `[0]`.
    Source(Vec<u8>),
    /// Channel 2: discarded (bandwidth tests).
    Sink(Vec<u8>),
}

/// Crazyflie → host on port 15.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkReply {
    /// Channel 0.
    Echo(Vec<u8>),
    /// Channel 1: see [`LinkReply::firmware_source`].
    Source(Vec<u8>),
}

impl LinkReply {
    /// The source reply exactly as the firmware sends it: the banner zero-padded to 30 bytes.
    pub fn firmware_source() -> Self {
        let mut data = vec![0u8; MAX_DATA];
        data[..SOURCE_BANNER.len()].copy_from_slice(SOURCE_BANNER);
        Self::Source(data)
    }
}

fn unknown(channel: u8) -> CrtpError {
    CrtpError::UnknownChannel {
        port: Port::Link as u8,
        channel,
    }
}

impl LinkRequest {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        match channel {
            ECHO => Ok(Self::Echo(data.to_vec())),
            SOURCE => Ok(Self::Source(data.to_vec())),
            SINK => Ok(Self::Sink(data.to_vec())),
            _ => Err(unknown(channel)),
        }
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let (channel, data) = match self {
            Self::Echo(d) => (ECHO, d),
            Self::Source(d) => (SOURCE, d),
            Self::Sink(d) => (SINK, d),
        };
        Writer::new().bytes(data).packet(Port::Link as u8, channel)
    }
}

impl LinkReply {
    pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Self, CrtpError> {
        match channel {
            ECHO => Ok(Self::Echo(data.to_vec())),
            SOURCE => Ok(Self::Source(data.to_vec())),
            _ => Err(unknown(channel)),
        }
    }

    pub(crate) fn encode(&self) -> Result<Packet, CrtpError> {
        let (channel, data) = match self {
            Self::Echo(d) => (ECHO, d),
            Self::Source(d) => (SOURCE, d),
        };
        Writer::new().bytes(data).packet(Port::Link as u8, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::wire_check::{downlink, uplink};
    use crate::{Downlink, Uplink};

    #[test]
    fn source_matches_cflib_and_firmware() {
        // cflib PlatformService._request_protocol_version: data (0,) on 15:1.
        uplink(Uplink::Link(LinkRequest::Source(vec![0])), &[0xFD, 0x00]);
        // crtpservice.c linkSource: 30 bytes, "Bitcraze Crazyflie" then zeros.
        let mut wire = vec![0xF1];
        wire.extend_from_slice(b"Bitcraze Crazyflie");
        wire.resize(31, 0);
        downlink(Downlink::Link(LinkReply::firmware_source()), &wire);
        // crazyflie-lib LinkService::ping: [0x01] on 15:0, echoed.
        uplink(Uplink::Link(LinkRequest::Echo(vec![1])), &[0xF0, 0x01]);
        downlink(Downlink::Link(LinkReply::Echo(vec![1])), &[0xF0, 0x01]);
    }
}
