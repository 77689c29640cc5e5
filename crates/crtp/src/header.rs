//! The CRTP header byte: bits 7–4 port, bits 3–2 link bits, bits 1–0 channel.

/// CRTP ports (`crtp.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Port {
    Console = 0,
    Param = 2,
    Commander = 3,
    Mem = 4,
    Log = 5,
    Localization = 6,
    GenericSetpoint = 7,
    HighLevelCommander = 8,
    Supervisor = 9,
    Platform = 13,
    ClientDebug = 14,
    Link = 15,
}

/// A decoded header. Receivers ignore the link bits (mask `0xF3`), as the firmware does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub port: u8,
    pub channel: u8,
}

impl Header {
    pub fn decode(byte: u8) -> Self {
        let masked = byte & 0xF3;
        Self {
            port: masked >> 4,
            channel: masked & 0x03,
        }
    }

    /// The null packet (port 15, channel 3) polls the downlink and carries nothing.
    pub fn is_null(self) -> bool {
        self.port == 15 && self.channel == 3
    }
}

/// Encodes a header as cflib does: link bits set to `11` (legacy bootloader support).
pub fn header_byte(port: Port, channel: u8) -> u8 {
    ((port as u8 & 0x0F) << 4) | (0b11 << 2) | (channel & 0x03)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commander_header_matches_cflib() {
        assert_eq!(header_byte(Port::Commander, 0), 0x3C);
    }

    #[test]
    fn receivers_mask_link_bits() {
        for link in 0..4u8 {
            let h = Header::decode(0x30 | (link << 2));
            assert_eq!(
                h,
                Header {
                    port: 3,
                    channel: 0
                }
            );
        }
        assert!(Header::decode(0xF3).is_null());
        assert!(Header::decode(0xFF).is_null());
    }
}
