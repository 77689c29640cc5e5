//! Console, port 0 channel 0 (Crazyflie → host only): raw bytes of the firmware's text output.
//!
//! Sources: firmware `src/modules/src/console.c` (the console is a byte stream cut into packets of
//! up to 30 bytes, so one UTF-8 character may straddle two packets); crazyflie-lib 0.8.2
//! `subsystems/console.rs` (decodes each packet with `String::from_utf8_lossy`). We keep the bytes:
//! decoding is total and re-encoding exact; print with `String::from_utf8_lossy`.

use crate::wire::Writer;
use crate::{CrtpError, Packet, Port};

const CHANNEL: u8 = 0;

pub(crate) fn decode(channel: u8, data: &[u8]) -> Result<Vec<u8>, CrtpError> {
    if channel != CHANNEL {
        return Err(CrtpError::UnknownChannel {
            port: Port::Console as u8,
            channel,
        });
    }
    Ok(data.to_vec())
}

pub(crate) fn encode(text: &[u8]) -> Result<Packet, CrtpError> {
    Writer::new()
        .bytes(text)
        .packet(Port::Console as u8, CHANNEL)
}

#[cfg(test)]
mod tests {
    use crate::Downlink;
    use crate::message::wire_check::downlink;

    #[test]
    fn console_bytes_pass_through() {
        // console.c consolePutchar buffers bytes and sends them on 0:0.
        downlink(Downlink::Console(b"SYS: ok\n".to_vec()), b"\x00SYS: ok\n");
        // Half of a two-byte UTF-8 character is still carried as is.
        downlink(Downlink::Console(vec![b'a', 0xC3]), &[0x00, b'a', 0xC3]);
    }
}
