//! A raw CRTP packet: port, channel and up to 30 data bytes. Every transport (radio, UDP, the
//! in-process link) carries these; the typed messages of each port are built on top.

use crate::{CrtpError, Header, Port};

/// Largest payload of one packet (`CRTP_MAX_DATA_SIZE`).
pub const MAX_DATA: usize = 30;

/// One CRTP packet. `data` never exceeds [`MAX_DATA`] bytes when built by [`Packet::new`] or
/// [`Packet::decode`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    pub port: u8,
    pub channel: u8,
    pub data: Vec<u8>,
}

impl Packet {
    /// A packet for a known port. Errors if `data` is longer than 30 bytes or `channel > 3`.
    pub fn new(port: Port, channel: u8, data: Vec<u8>) -> Result<Self, CrtpError> {
        Self::raw(port as u8, channel, data)
    }

    /// A packet for any port number 0–15.
    pub fn raw(port: u8, channel: u8, data: Vec<u8>) -> Result<Self, CrtpError> {
        if port > 15 {
            return Err(CrtpError::BadHeader { port, channel });
        }
        if channel > 3 {
            return Err(CrtpError::BadHeader { port, channel });
        }
        if data.len() > MAX_DATA {
            return Err(CrtpError::TooLong { got: data.len() });
        }
        Ok(Self {
            port,
            channel,
            data,
        })
    }

    /// The null packet (port 15, channel 3, no data), used to poll the downlink.
    pub fn null() -> Self {
        Self {
            port: 15,
            channel: 3,
            data: Vec::new(),
        }
    }

    pub fn header(&self) -> Header {
        Header {
            port: self.port,
            channel: self.channel,
        }
    }

    pub fn is_null(&self) -> bool {
        self.header().is_null()
    }

    /// Header byte (link bits `11`, as cflib sends) followed by the data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.data.len());
        out.push(((self.port & 0x0F) << 4) | (0b11 << 2) | (self.channel & 0x03));
        out.extend_from_slice(&self.data);
        out
    }

    /// Parses header + data. Link bits are ignored (mask `0xF3`).
    pub fn decode(bytes: &[u8]) -> Result<Self, CrtpError> {
        let (&first, data) = bytes.split_first().ok_or(CrtpError::Empty)?;
        if data.len() > MAX_DATA {
            return Err(CrtpError::TooLong { got: data.len() });
        }
        let h = Header::decode(first);
        Ok(Self {
            port: h.port,
            channel: h.channel,
            data: data.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_and_limits() {
        let p = Packet::new(Port::Commander, 0, vec![1, 2]).expect("valid");
        assert_eq!(p.encode(), vec![0x3C, 1, 2]);
        assert!(Packet::new(Port::Commander, 4, vec![]).is_err());
        assert!(Packet::new(Port::Commander, 0, vec![0; 31]).is_err());
        assert_eq!(Packet::decode(&[]), Err(CrtpError::Empty));
        assert!(Packet::decode(&[0xF3]).expect("null").is_null());
        assert!(matches!(
            Packet::decode(&[0x30; 32]),
            Err(CrtpError::TooLong { got: 31 })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(port in 0u8..16, ch in 0u8..4, data in proptest::collection::vec(any::<u8>(), 0..=30)) {
            let p = Packet::raw(port, ch, data).expect("valid");
            prop_assert_eq!(Packet::decode(&p.encode()).expect("decodes"), p);
        }

        #[test]
        fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = Packet::decode(&bytes);
        }
    }
}
