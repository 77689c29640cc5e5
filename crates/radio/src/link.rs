//! The seam: one small blocking trait every Crazyflie link implements.

use crate::LinkError;
use depthpilot_crtp::RpytSetpoint;

/// A link to one Crazyflie. Blocking and fallible; never blocks for a round trip to the
/// Crazyflie when sending a setpoint (fire and forget, like cflib).
///
/// Configuration (timeouts, client name, …) lives on each implementation, not here.
///
/// After [`Link::emergency_stop`] every implementation refuses further commands with
/// [`LinkError::EmergencyStopped`] (the firmware's supervisor e-stop latches until reboot; the
/// links mirror that locally so generic code gets a clear error instead of silence).
pub trait Link: Send {
    /// The URI this link was opened with.
    fn uri(&self) -> &str;

    /// Legacy roll/pitch/yaw-rate/thrust setpoint (CRTP 3:0) exactly as on the wire: `pitch_deg`
    /// is already negated and `yaw_rate_deg_s` is the inverted legacy rate (see
    /// `depthpilot_crtp::RpytSetpoint`). Non-finite values are rejected, never sent.
    fn send_setpoint(&mut self, sp: &RpytSetpoint) -> Result<(), LinkError>;

    /// External position for the on-board estimator (CRTP 6:0, `<fff>` metres).
    fn send_external_position(&mut self, pos_in_world_m: [f32; 3]) -> Result<(), LinkError>;

    /// Absolute position setpoint (generic setpoint 7:0, type 7, `<ffff>` metres and degrees).
    fn send_position_setpoint(
        &mut self,
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    ) -> Result<(), LinkError>;

    /// Stops the motors now. On CRTP links this is the supervisor e-stop (9:1 `0x03`), which
    /// latches in the firmware until reboot.
    fn emergency_stop(&mut self) -> Result<(), LinkError>;

    /// Starts a log block named `name` sampling `variables` ("group.name") every `period_ms`.
    fn start_log(
        &mut self,
        name: &str,
        variables: &[&str],
        period_ms: u32,
    ) -> Result<(), LinkError>;

    /// The log samples that arrived since the last call. Never blocks.
    fn poll_log(&mut self) -> Result<Vec<LogSample>, LinkError>;

    /// Counters since the link was opened.
    fn stats(&self) -> LinkStats;

    /// Parameter access, when this link offers it.
    fn params(&mut self) -> Option<&mut dyn ParamAccess> {
        None
    }

    /// Writes the LED-ring deck's driver memory (12 LEDs, RGB; converted to RGB565 as cflib does).
    fn set_led_ring(&mut self, rgb: &[[u8; 3]; 12]) -> Result<(), LinkError> {
        let _ = rgb;
        Err(LinkError::Unsupported {
            what: "LED-ring memory writes",
            uri: self.uri().to_string(),
        })
    }
}

/// Read and write Crazyflie parameters by name ("group.name"), as `f64` whatever the
/// parameter's type (integers are truncated to the parameter's width by the Crazyflie side).
pub trait ParamAccess {
    /// Reads the parameter's current value.
    fn param_get(&mut self, name: &str) -> Result<f64, LinkError>;
    /// Writes the parameter and waits for the Crazyflie to confirm it.
    fn param_set(&mut self, name: &str, value: f64) -> Result<(), LinkError>;
    /// Every parameter: name, cflib's C type name, writable.
    fn param_list(&mut self) -> Result<Vec<(String, String, bool)>, LinkError> {
        Err(LinkError::InvalidArgument {
            what: "parameter list",
            reason: "this link cannot list parameters".to_string(),
        })
    }
}

/// One sample of a log block.
#[derive(Clone, Debug, PartialEq)]
pub struct LogSample {
    /// The block name given to [`Link::start_log`].
    pub block: String,
    /// The Crazyflie's clock when the sample was taken (24-bit on the wire for CRTP).
    pub timestamp_ms: u32,
    /// `("group.name", value)` in the order the variables were requested.
    pub values: Vec<(String, f64)>,
}

impl LogSample {
    /// The value of one variable, if this sample has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .find_map(|(n, v)| (n == name).then_some(*v))
    }
}

/// Counters kept by every link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// Packets (or ZMQ messages) handed to the transport.
    pub packets_sent: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Log samples received.
    pub log_samples_received: u64,
    /// Radio link quality 0–1 (share of acknowledged packets), on Crazyradio links only.
    pub link_quality: Option<f32>,
}

impl LinkStats {
    pub(crate) fn record_send<T>(&mut self, result: &Result<T, LinkError>) {
        match result {
            Ok(_) => self.packets_sent += 1,
            Err(_) => self.send_errors += 1,
        }
    }
}
