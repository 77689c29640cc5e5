//! Keyboard teacher input in live mode (`--teacher ENDPOINT`, which `depthpilot fly --view`
//! passes): the keys become the Crazyflie client's ZMQ input-device messages
//! (`{"version":1,"client_name":…,"ctrl":{…}}`) pushed to the flight's mux, 50 a second, like a
//! gamepad. Hold Tab to take over (the mux switch); arrows tilt (roll/pitch), Q/E yaw, Page Up /
//! Page Down set the thrust; X is the e-stop (latched).

use bevy::prelude::*;
use std::time::{Duration, Instant};

/// What the keys say now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keys {
    pub takeover: bool,
    pub up: bool,
    pub down: bool,
    pub left: bool,
    pub right: bool,
    pub yaw_left: bool,
    pub yaw_right: bool,
    pub estop: bool,
}

/// Tilt for an arrow key (degrees) and yaw rate for Q / E (deg/s).
const TILT_DEG: f64 = 10.0;
const YAW_DEG_S: f64 = 60.0;
/// Thrust (percent) to start from: about a CF2's hover; Page Up / Down step it.
pub const HOVER_PCT: f64 = 55.9;
pub const THRUST_STEP_PCT: f64 = 1.0;

/// The client input message for `keys` at `thrust_pct`. Roll right and pitch forward positive
/// (the client's conventions).
pub fn message(keys: &Keys, thrust_pct: f64) -> String {
    let axis = |pos: bool, neg: bool, v: f64| f64::from(i8::from(pos) - i8::from(neg)) * v;
    serde_json::json!({
        "version": 1,
        "client_name": "depthpilot-viewer keyboard",
        "ctrl": {
            "roll": axis(keys.right, keys.left, TILT_DEG),
            "pitch": axis(keys.up, keys.down, TILT_DEG),
            "yaw": axis(keys.yaw_right, keys.yaw_left, YAW_DEG_S),
            "thrust": thrust_pct.clamp(0.0, 100.0),
            "muxswitch": keys.takeover,
            "estop": keys.estop,
        }
    })
    .to_string()
}

/// The PUSH to the flight's teacher input and the keyboard's state.
pub struct KeyboardTeacher {
    socket: zmq::Socket,
    thrust_pct: f64,
    estop: bool,
    last: Option<Instant>,
}

impl KeyboardTeacher {
    pub fn connect(endpoint: &str) -> Result<Self, String> {
        let fail = |e: zmq::Error| format!("--teacher {endpoint}: {e}");
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::PUSH).map_err(fail)?;
        socket.set_linger(0).map_err(fail)?;
        socket.set_sndhwm(10).map_err(fail)?;
        socket.connect(endpoint).map_err(fail)?;
        Ok(Self {
            socket,
            thrust_pct: HOVER_PCT,
            estop: false,
            last: None,
        })
    }
}

pub fn add(app: &mut App, teacher: KeyboardTeacher) {
    app.insert_non_send(teacher).add_systems(Update, send);
}

fn send(input: Res<ButtonInput<KeyCode>>, mut t: NonSendMut<KeyboardTeacher>) {
    if input.just_pressed(KeyCode::PageUp) {
        t.thrust_pct = (t.thrust_pct + THRUST_STEP_PCT).min(100.0);
    }
    if input.just_pressed(KeyCode::PageDown) {
        t.thrust_pct = (t.thrust_pct - THRUST_STEP_PCT).max(0.0);
    }
    if input.just_pressed(KeyCode::KeyX) {
        t.estop = true;
    }
    if t.last
        .is_some_and(|l| l.elapsed() < Duration::from_millis(20))
    {
        return;
    }
    t.last = Some(Instant::now());
    let keys = Keys {
        takeover: input.pressed(KeyCode::Tab),
        up: input.pressed(KeyCode::ArrowUp),
        down: input.pressed(KeyCode::ArrowDown),
        left: input.pressed(KeyCode::ArrowLeft),
        right: input.pressed(KeyCode::ArrowRight),
        yaw_left: input.pressed(KeyCode::KeyQ),
        yaw_right: input.pressed(KeyCode::KeyE),
        estop: t.estop,
    };
    // A slow or absent flight: the message is dropped, the window never waits.
    let _ = t
        .socket
        .send(message(&keys, t.thrust_pct).as_bytes(), zmq::DONTWAIT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_client_input_messages_the_mux_reads() {
        let idle = Keys {
            takeover: false,
            up: false,
            down: false,
            left: false,
            right: false,
            yaw_left: false,
            yaw_right: false,
            estop: false,
        };
        let mut input = depthpilot_mux::ClientInput::default();
        input
            .apply(message(&idle, HOVER_PCT).as_bytes(), 5)
            .expect("a valid client message");
        let f = input.frame().expect("a frame");
        assert!(!f.muxswitch && !f.estop);
        assert_eq!(
            (f.roll_deg, f.pitch_deg, f.thrust_pct),
            (0.0, 0.0, HOVER_PCT)
        );
        let held = Keys {
            takeover: true,
            up: true,
            right: true,
            yaw_left: true,
            estop: true,
            ..idle
        };
        input
            .apply(message(&held, 40.0).as_bytes(), 6)
            .expect("a valid client message");
        let f = input.frame().expect("a frame");
        assert!(f.muxswitch && f.estop);
        assert_eq!((f.roll_deg, f.pitch_deg), (TILT_DEG, TILT_DEG));
        assert_eq!(f.yaw_rate_deg_s, -YAW_DEG_S);
        assert_eq!(f.thrust_pct, 40.0);
    }
}
