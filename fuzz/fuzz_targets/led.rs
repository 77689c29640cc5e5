//! Feeds arbitrary bytes to the cfclient LED-ring message decoder:
//! `depthpilot_runtime::zmq_client::parse_led_message`, then the RGB565 conversion.
//! Invariants: nothing panics; decoded colours written back as cfclient's JSON decode to the
//! same colours; a rejection says why.
#![no_main]

use depthpilot_runtime::zmq_client::{parse_led_message, rgb565_be};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    match parse_led_message(data) {
        Ok(leds) => {
            let _ = rgb565_be(&leds);
            let again = json!({"version": 1, "rgbleds": leds});
            assert_eq!(parse_led_message(again.to_string().as_bytes()), Ok(leds));
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
