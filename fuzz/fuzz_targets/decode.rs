//! Feeds arbitrary bytes to `Packet::decode`, `Uplink::decode` and `Downlink::decode`.
//! Invariants: nothing panics; a decoded packet re-encodes and re-decodes to itself; a decoded
//! message re-encodes without error and decodes to the same message.
#![no_main]

use depthpilot_crtp::{Downlink, Packet, Uplink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    let again = Packet::decode(&packet.encode()).expect("a decoded packet re-decodes");
    assert_eq!(again, packet);

    if let Ok(msg) = Uplink::decode(&packet) {
        let p = msg.to_packet().expect("a decoded uplink re-encodes");
        assert_eq!(Uplink::decode(&p), Ok(msg));
    }
    if let Ok(msg) = Downlink::decode(&packet) {
        let p = msg.to_packet().expect("a decoded downlink re-encodes");
        assert_eq!(Downlink::decode(&p), Ok(msg));
    }
});
