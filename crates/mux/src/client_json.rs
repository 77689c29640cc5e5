//! The Crazyflie client's ZMQ input-device messages (`zmqpull.py`):
//! `{"version":1,"client_name":…,"ctrl":{"roll":deg,"pitch":deg,"yaw":deg/s,"thrust":pct,
//! "estop":bool,"muxswitch":bool,…}}`. Values are latched per key; unknown keys are ignored.
//!
//! Unlike the client, whose reader thread dies on the first bad message, a bad message here is
//! rejected whole with a typed reason and the latched values stay as they were.

use crate::frame::InputFrame;
use serde_json::Value;

/// Largest message accepted (the client's are ~150 bytes).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Why a message was skipped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("message of {len} bytes is larger than {max}")]
    TooLarge { len: usize, max: usize },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("no `ctrl` object in the message")]
    NoCtrl,
    #[error("`ctrl.{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
}

/// The latched state of one client-format input device.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientInput {
    frame: InputFrame,
    /// Time of the last accepted message (none yet: no input).
    last_ns: Option<u64>,
}

impl Default for ClientInput {
    fn default() -> Self {
        Self {
            frame: InputFrame::initial(0),
            last_ns: None,
        }
    }
}

impl ClientInput {
    /// The latched frame, stamped with the last accepted message's time; None before any.
    pub fn frame(&self) -> Option<InputFrame> {
        self.last_ns.map(|t| InputFrame {
            stamp_ns: t,
            ..self.frame
        })
    }

    /// Applies one message received at `now_ns`: all of it, or none of it.
    pub fn apply(&mut self, bytes: &[u8], now_ns: u64) -> Result<(), InputError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(InputError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| InputError::NotJson(e.to_string()))?;
        let ctrl = v
            .get("ctrl")
            .and_then(Value::as_object)
            .ok_or(InputError::NoCtrl)?;
        let mut next = self.frame;
        for (key, value) in ctrl {
            let number = || {
                value
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| InputError::WrongType {
                        key: key.clone(),
                        expected: "a finite number",
                    })
            };
            let flag = || {
                value
                    .as_bool()
                    .or_else(|| value.as_f64().map(|x| x != 0.0))
                    .ok_or_else(|| InputError::WrongType {
                        key: key.clone(),
                        expected: "a boolean",
                    })
            };
            match key.as_str() {
                "roll" => next.roll_deg = number()?,
                "pitch" => next.pitch_deg = number()?,
                "yaw" => next.yaw_rate_deg_s = number()?,
                "thrust" => next.thrust_pct = number()?,
                "estop" => next.estop = flag()?,
                "muxswitch" => next.muxswitch = flag()?,
                "alt1" => next.alt1 = flag()?,
                "alt2" => next.alt2 = flag()?,
                _ => {}
            }
        }
        self.frame = next;
        self.last_ns = Some(now_ns);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn latches_per_key_and_ignores_unknown_keys() {
        let mut c = ClientInput::default();
        assert_eq!(c.frame(), None);
        c.apply(
            br#"{"version":1,"client_name":"x","ctrl":{"roll":5.0,"thrust":40}}"#,
            10,
        )
        .expect("good");
        c.apply(br#"{"ctrl":{"pitch":-2.5,"exit":false,"hat":[1,2]}}"#, 20)
            .expect("good");
        let f = c.frame().expect("latched");
        assert_eq!(
            (f.roll_deg, f.pitch_deg, f.thrust_pct, f.stamp_ns),
            (5.0, -2.5, 40.0, 20)
        );
    }

    #[test]
    fn bad_messages_are_rejected_whole_and_the_next_good_one_works() {
        let mut c = ClientInput::default();
        c.apply(br#"{"ctrl":{"roll":1.0}}"#, 1).expect("good");
        let bad: [(&[u8], &str); 5] = [
            (b"{not json", "not JSON"),
            (br#"{"version":1}"#, "no `ctrl`"),
            (br#"{"ctrl":{"roll":"fast","pitch":3}}"#, "ctrl.roll"),
            (br#"{"ctrl":{"estop":"yes"}}"#, "ctrl.estop"),
            (br#"{"ctrl":[1,2,3]}"#, "no `ctrl`"),
        ];
        for (msg, why) in bad {
            let e = c.apply(msg, 2).expect_err("bad");
            assert!(e.to_string().contains(why), "{e}");
        }
        let huge = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            c.apply(&huge, 2),
            Err(InputError::TooLarge { .. })
        ));
        let f = c.frame().expect("still latched");
        assert_eq!((f.roll_deg, f.pitch_deg, f.stamp_ns), (1.0, 0.0, 1));
        c.apply(br#"{"ctrl":{"roll":-7.0}}"#, 3)
            .expect("good again");
        assert_eq!(c.frame().map(|f| f.roll_deg), Some(-7.0));
    }

    proptest! {
        /// Arbitrary bytes never panic the parser, and a rejected message changes nothing.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut c = ClientInput::default();
            c.apply(br#"{"ctrl":{"roll":1.0}}"#, 1).expect("good");
            let before = c.clone();
            if c.apply(&bytes, 2).is_err() {
                prop_assert_eq!(c, before);
            }
        }
    }
}
