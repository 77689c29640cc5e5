//! A teacher on a gamepad (gilrs), mapped by a `GamepadMapping` file.

use crate::RuntimeError;
use depthpilot_mux::InputFrame;
use depthpilot_mux::gamepad::{GamepadMapping, PadButton, StickAxis};
use gilrs::{Axis, Button, Gilrs};

/// See the module doc.
pub struct GamepadTeacher {
    gilrs: Gilrs,
    mapping: GamepadMapping,
    name: String,
}

fn axis(a: StickAxis) -> Axis {
    match a {
        StickAxis::LeftStickX => Axis::LeftStickX,
        StickAxis::LeftStickY => Axis::LeftStickY,
        StickAxis::RightStickX => Axis::RightStickX,
        StickAxis::RightStickY => Axis::RightStickY,
        StickAxis::LeftZ => Axis::LeftZ,
        StickAxis::RightZ => Axis::RightZ,
    }
}

fn button(b: PadButton) -> Button {
    match b {
        PadButton::South => Button::South,
        PadButton::East => Button::East,
        PadButton::North => Button::North,
        PadButton::West => Button::West,
        PadButton::LeftTrigger => Button::LeftTrigger,
        PadButton::LeftTrigger2 => Button::LeftTrigger2,
        PadButton::RightTrigger => Button::RightTrigger,
        PadButton::RightTrigger2 => Button::RightTrigger2,
        PadButton::Select => Button::Select,
        PadButton::Start => Button::Start,
        PadButton::Mode => Button::Mode,
        PadButton::LeftThumb => Button::LeftThumb,
        PadButton::RightThumb => Button::RightThumb,
    }
}

impl GamepadTeacher {
    /// Opens the first connected gamepad. No gamepad (or no input subsystem at all, as in a
    /// container) is a clear error, not a silent zero input.
    pub fn open(mapping: GamepadMapping) -> Result<Self, RuntimeError> {
        let gilrs = Gilrs::new().map_err(|e| RuntimeError::NoGamepad {
            detail: Some(e.to_string()),
        })?;
        let name = gilrs
            .gamepads()
            .next()
            .map(|(_, g)| g.name().to_string())
            .ok_or(RuntimeError::NoGamepad { detail: None })?;
        Ok(Self {
            gilrs,
            mapping,
            name,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Processes pending events and returns the mapped frame of the first connected gamepad
    /// (None if it was unplugged).
    pub fn poll(&mut self, now_ns: u64) -> Option<InputFrame> {
        while self.gilrs.next_event().is_some() {}
        let (_, pad) = self.gilrs.gamepads().next()?;
        Some(self.mapping.map(
            now_ns,
            |a| f64::from(pad.value(axis(a))),
            |b| pad.is_pressed(button(b)),
        ))
    }
}
