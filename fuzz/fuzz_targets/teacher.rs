//! Feeds arbitrary bytes to the cfclient ZMQ input-device decoder (the teacher's input):
//! `depthpilot_mux::ClientInput::apply`, on top of an already latched state.
//! Invariants: nothing panics; a rejected message changes nothing and says why; an accepted one
//! stamps the frame, leaves every axis finite, and applying it again changes nothing but the
//! stamp.
#![no_main]

use depthpilot_mux::ClientInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = ClientInput::default();
    input
        .apply(
            br#"{"version":1,"ctrl":{"roll":1.5,"pitch":-2.0,"yaw":10,"thrust":40,"estop":false}}"#,
            1,
        )
        .expect("the latched start state is valid");
    let before = input.clone();
    match input.apply(data, 2) {
        Ok(()) => {
            let f = input.frame().expect("an accepted message latches a frame");
            assert_eq!(f.stamp_ns, 2);
            for x in [f.roll_deg, f.pitch_deg, f.yaw_rate_deg_s, f.thrust_pct] {
                assert!(x.is_finite(), "{f:?}");
            }
            input
                .apply(data, 3)
                .expect("the same message is accepted again");
            let g = input.frame().expect("latched");
            assert_eq!(g, depthpilot_mux::InputFrame { stamp_ns: 3, ..f });
        }
        Err(e) => {
            assert_eq!(
                input, before,
                "a rejected message changed the latched state"
            );
            assert!(!e.to_string().is_empty());
        }
    }
});
