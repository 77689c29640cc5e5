//! The Crazyflie client's ZMQ parameter and LED-ring servers (`cfclient/utils/zmq_param.py`,
//! `zmq_led_driver.py`; `reference/protocols.md` §1.2, §1.3), in front of any Crazyflie that
//! implements [`ClientAccess`] (the simulated one in `depthpilot sitl`, or one behind a link).
//!
//! - Parameters: a REP socket (cfclient binds `tcp://*:1213`; ours defaults to loopback).
//!   `{"version":1,"cmd":"toc"}` → `{"version":1,"toc":[…]}` (cfclient always answers an empty
//!   list; we list every parameter as `{"name","type","access","value"}`, still a list);
//!   `{"version":1,"cmd":"set","name":"group.name","value":"…"}` → after the Crazyflie confirmed
//!   the write, `{"version":1,"cmd":"set","name":…,"value":"<value as a string>"}`. Where cfclient
//!   would never answer (unknown name, malformed request), we answer
//!   `{"version":1,"error":"…"}`: a REQ client must get a reply or it is stuck.
//! - LED ring: a PULL socket (cfclient: `tcp://*:1214`), `{"version":1,"rgbleds":[[r,g,b] × 12]}`
//!   → RGB565 big-endian, 24 bytes, into the LED driver memory at address 0, converted exactly as
//!   cflib's `LEDDriverMemory.write_data` does. Malformed messages are skipped and counted.
//!
//! With CURVE ([`ClientServers::bind_curve`], issue 20) each server takes only the client keys
//! of its own role's allow-list: a key allowed on `led` (or on the bus) sets no parameter.

use crate::RuntimeError;
use crate::curve::{CurveServers, DomainCounts, ServerKeys};
use crate::netpolicy::{BindPolicy, Role, bind_checked, limit_size};
use serde_json::{Value, json};

/// cfclient's endpoints, on loopback.
pub const DEFAULT_PARAM_ENDPOINT: &str = "tcp://127.0.0.1:1213";
pub const DEFAULT_LED_ENDPOINT: &str = "tcp://127.0.0.1:1214";
/// LEDs on the ring deck.
pub const RING_LEDS: usize = 12;

/// One parameter as the TOC reply lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamEntry {
    /// `group.name`
    pub name: String,
    /// The C type name cflib uses (`uint8_t`, `float`, …).
    pub type_name: &'static str,
    pub writable: bool,
    /// The current value as a string (cflib's formatting).
    pub value: String,
}

/// What the servers need from a Crazyflie.
pub trait ClientAccess {
    fn param_toc(&mut self) -> Vec<ParamEntry>;
    /// Writes a parameter and returns the value the Crazyflie confirmed, as a string.
    fn param_set(&mut self, name: &str, value: &str) -> Result<String, String>;
    /// Sets the LED ring (each Crazyflie side converts to RGB565 as cflib does: [`rgb565_be`]).
    fn led_write(&mut self, rgb: &[[u8; 3]; RING_LEDS]) -> Result<(), String>;
}

/// A Crazyflie behind any link (`depthpilot bridge`): parameters through the link's parameter
/// access, the LED ring through its memory.
pub struct LinkAccess<'a>(pub &'a mut dyn depthpilot_radio::Link);

impl ClientAccess for LinkAccess<'_> {
    fn param_toc(&mut self) -> Vec<ParamEntry> {
        let Some(p) = self.0.params() else {
            return Vec::new();
        };
        let Ok(list) = p.param_list() else {
            return Vec::new();
        };
        list.into_iter()
            .map(|(name, ty, writable)| {
                let is_float = matches!(ty.as_str(), "float" | "double" | "FP16");
                let value = p
                    .param_get(&name)
                    .map(|v| format_value(v, is_float))
                    .unwrap_or_default();
                ParamEntry {
                    name,
                    type_name: c_type_name(&ty),
                    writable,
                    value,
                }
            })
            .collect()
    }

    fn param_set(&mut self, name: &str, value: &str) -> Result<String, String> {
        let p = self
            .0
            .params()
            .ok_or_else(|| "this link has no parameter access".to_string())?;
        let v: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("value {value:?} is not a number"))?;
        p.param_set(name, v).map_err(|e| e.to_string())?;
        let is_float = p
            .param_list()
            .ok()
            .and_then(|l| l.into_iter().find(|(n, _, _)| n == name))
            .is_some_and(|(_, t, _)| matches!(t.as_str(), "float" | "double" | "FP16"));
        let confirmed = p.param_get(name).map_err(|e| e.to_string())?;
        Ok(format_value(confirmed, is_float))
    }

    fn led_write(&mut self, rgb: &[[u8; 3]; RING_LEDS]) -> Result<(), String> {
        self.0.set_led_ring(rgb).map_err(|e| e.to_string())
    }
}

/// cflib's C type names as `'static` strings.
fn c_type_name(ty: &str) -> &'static str {
    [
        "uint8_t", "uint16_t", "uint32_t", "uint64_t", "int8_t", "int16_t", "int32_t", "int64_t",
        "FP16", "float", "double",
    ]
    .into_iter()
    .find(|t| *t == ty)
    .unwrap_or("unknown")
}

/// A value as cflib prints it (`str()` of the Python value): integers bare, floats with a point.
pub fn format_value(v: f64, is_float: bool) -> String {
    if is_float {
        let f = v as f32;
        if f.fract() == 0.0 && f.abs() < 1e16 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }
    } else {
        format!("{}", v as i64)
    }
}

/// A parameter request.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamRequest {
    Toc,
    Set { name: String, value: String },
}

/// Parses a parameter request; the error says what was wrong.
pub fn parse_param_request(bytes: &[u8]) -> Result<ParamRequest, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let cmd = v
        .get("cmd")
        .and_then(Value::as_str)
        .ok_or("no string field `cmd` (expected \"toc\" or \"set\")")?;
    match cmd {
        "toc" => Ok(ParamRequest::Toc),
        "set" => {
            let name = v
                .get("name")
                .and_then(Value::as_str)
                .ok_or("`set` needs a string field `name` (\"group.name\")")?;
            if name.split('.').count() != 2 {
                return Err(format!(
                    "`name` must be \"group.name\", got {:?}",
                    crate::bus::clip(name)
                ));
            }
            // cfclient passes str(value): numbers and strings alike.
            let value = match v.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => u8::from(*b).to_string(),
                _ => return Err("`set` needs a field `value` (a number or a string)".into()),
            };
            Ok(ParamRequest::Set {
                name: name.to_string(),
                value,
            })
        }
        // The peer's text is clipped: errors go back to it and into logs.
        other => Err(format!(
            "unknown cmd {:?} (expected \"toc\" or \"set\")",
            crate::bus::clip(other)
        )),
    }
}

/// Parses an LED message into 12 colours.
pub fn parse_led_message(bytes: &[u8]) -> Result<[[u8; 3]; RING_LEDS], String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let leds = v
        .get("rgbleds")
        .and_then(Value::as_array)
        .ok_or("no array field `rgbleds`")?;
    if leds.len() > RING_LEDS {
        return Err(format!("{} LEDs; the ring has {RING_LEDS}", leds.len()));
    }
    // cfclient sets the LEDs it is given and leaves the others as they were in its own copy
    // (off at start); we do the same with off.
    let mut out = [[0u8; 3]; RING_LEDS];
    for (i, led) in leds.iter().enumerate() {
        let rgb = led
            .as_array()
            .filter(|a| a.len() == 3)
            .ok_or_else(|| format!("rgbleds[{i}] is not [r, g, b]"))?;
        for (c, value) in rgb.iter().enumerate() {
            out[i][c] = value
                .as_u64()
                .filter(|x| *x <= 255)
                .ok_or_else(|| format!("rgbleds[{i}][{c}] is not an integer 0-255"))?
                as u8;
        }
    }
    Ok(out)
}

/// cflib's RGB888 → RGB565 conversion (`LEDDriverMemory.write_data`, intensity 100), big-endian.
pub fn rgb565_be(leds: &[[u8; 3]; RING_LEDS]) -> [u8; 2 * RING_LEDS] {
    let mut out = [0u8; 2 * RING_LEDS];
    for (i, [r, g, b]) in leds.iter().enumerate() {
        let r5 = ((u32::from(*r) * 249 + 1014) >> 11) & 0x1F;
        let g6 = ((u32::from(*g) * 253 + 505) >> 10) & 0x3F;
        let b5 = ((u32::from(*b) * 249 + 1014) >> 11) & 0x1F;
        let v = (r5 << 11) | (g6 << 5) | b5;
        out[2 * i] = (v >> 8) as u8;
        out[2 * i + 1] = (v & 0xFF) as u8;
    }
    out
}

/// Counters, for the status line and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientServerStats {
    pub param_requests: u64,
    pub param_errors: u64,
    pub led_writes: u64,
    pub led_errors: u64,
    pub last_error: Option<String>,
}

/// The two servers; either may be off.
pub struct ClientServers {
    param: Option<zmq::Socket>,
    led: Option<zmq::Socket>,
    pub stats: ClientServerStats,
    /// With CURVE (`bind_curve`): the ZAP handler and monitors (after the sockets: dropped
    /// last).
    curve: Option<CurveServers>,
    _ctx: zmq::Context,
}

fn bind(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    name: &'static str,
    role: Role,
    endpoint: &str,
    policy: BindPolicy,
) -> Result<zmq::Socket, RuntimeError> {
    let s = ctx.socket(kind)?;
    s.set_linger(0)?;
    limit_size(&s, role)?;
    bind_checked(&s, name, role, endpoint, policy)?;
    Ok(s)
}

impl ClientServers {
    /// Binds the servers asked for, loopback only.
    pub fn bind(param: Option<&str>, led: Option<&str>) -> Result<Self, RuntimeError> {
        Self::bind_with(param, led, BindPolicy::LoopbackOnly)
    }

    /// Binds the servers asked for under `policy` (a non-loopback endpoint needs `--insecure`).
    pub fn bind_with(
        param: Option<&str>,
        led: Option<&str>,
        policy: BindPolicy,
    ) -> Result<Self, RuntimeError> {
        let ctx = zmq::Context::new();
        Ok(Self {
            param: param
                .map(|e| bind(&ctx, zmq::REP, "REP", Role::Param, e, policy))
                .transpose()?,
            led: led
                .map(|e| bind(&ctx, zmq::PULL, "PULL", Role::Led, e, policy))
                .transpose()?,
            stats: ClientServerStats::default(),
            curve: None,
            _ctx: ctx,
        })
    }

    /// Binds the servers asked for with CURVE (issue 20): the parameter server is a CURVE
    /// server of the ZAP domain `param`, the LED server of `led`, each taking only the client
    /// keys of its own allow-list (`allow/param/`, `allow/led/`); failed handshakes are printed
    /// and counted ([`ClientServers::auth_counts`]). Any endpoint, loopback or not, without
    /// `--insecure`. An empty allow-list is said at start and that server refuses everyone.
    pub fn bind_curve(
        param: Option<&str>,
        led: Option<&str>,
        keys: &ServerKeys,
    ) -> Result<Self, RuntimeError> {
        let ctx = zmq::Context::new();
        let mut curve = CurveServers::start(&ctx, keys)?;
        let mut open = |kind: zmq::SocketType, name: &'static str, role: Role, endpoint: &str| {
            let s = ctx.socket(kind)?;
            s.set_linger(0)?;
            limit_size(&s, role)?;
            curve.bind(&ctx, &s, name, role, endpoint)?;
            Ok::<_, RuntimeError>(s)
        };
        let param = param
            .map(|e| open(zmq::REP, "REP", Role::Param, e))
            .transpose()?;
        let led = led
            .map(|e| open(zmq::PULL, "PULL", Role::Led, e))
            .transpose()?;
        Ok(Self {
            param,
            led,
            stats: ClientServerStats::default(),
            curve: Some(curve),
            _ctx: ctx,
        })
    }

    /// With CURVE: the handshakes of `role`'s domain (`Role::Param` or `Role::Led`) so far.
    pub fn auth_counts(&self, role: Role) -> Option<DomainCounts> {
        self.curve.as_ref().map(|c| c.counts(role))
    }

    fn error(&mut self, msg: String) {
        self.stats.last_error = Some(msg);
    }

    /// Serves everything waiting, without blocking. Returns the problems met (already counted).
    pub fn poll(&mut self, cf: &mut dyn ClientAccess) -> Vec<String> {
        let mut problems = Vec::new();
        while let Some(bytes) = self
            .param
            .as_ref()
            .and_then(|s| s.recv_bytes(zmq::DONTWAIT).ok())
        {
            self.stats.param_requests += 1;
            let reply = match parse_param_request(&bytes) {
                Ok(ParamRequest::Toc) => {
                    let toc: Vec<Value> = cf
                        .param_toc()
                        .into_iter()
                        .map(|p| {
                            json!({"name": p.name, "type": p.type_name,
                                   "access": if p.writable { "RW" } else { "RO" }, "value": p.value})
                        })
                        .collect();
                    json!({"version": 1, "toc": toc})
                }
                Ok(ParamRequest::Set { name, value }) => match cf.param_set(&name, &value) {
                    Ok(confirmed) => {
                        json!({"version": 1, "cmd": "set", "name": name, "value": confirmed})
                    }
                    Err(e) => {
                        self.stats.param_errors += 1;
                        let msg = format!("param set {name}: {e}");
                        problems.push(msg.clone());
                        self.error(msg);
                        json!({"version": 1, "cmd": "set", "name": name, "error": e})
                    }
                },
                Err(e) => {
                    self.stats.param_errors += 1;
                    let msg = format!("param request skipped: {e}");
                    problems.push(msg.clone());
                    self.error(msg);
                    json!({"version": 1, "error": e})
                }
            };
            if let Some(s) = &self.param {
                // A REP socket must answer before it can receive again.
                let _ = s.send(reply.to_string().as_bytes(), 0);
            }
        }
        while let Some(bytes) = self
            .led
            .as_ref()
            .and_then(|s| s.recv_bytes(zmq::DONTWAIT).ok())
        {
            match parse_led_message(&bytes) {
                Ok(leds) => match cf.led_write(&leds) {
                    Ok(()) => self.stats.led_writes += 1,
                    Err(e) => {
                        self.stats.led_errors += 1;
                        problems.push(format!("LED write: {e}"));
                    }
                },
                Err(e) => {
                    self.stats.led_errors += 1;
                    let msg = format!("LED message skipped: {e}");
                    problems.push(msg.clone());
                    self.error(msg);
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_peers_long_text_is_clipped_in_the_error() {
        let long = "x".repeat(60_000);
        for msg in [
            format!(r#"{{"cmd":"{long}"}}"#),
            format!(r#"{{"cmd":"set","name":"{long}","value":1}}"#),
        ] {
            let e = super::parse_param_request(msg.as_bytes()).expect_err("garbage");
            assert!(e.len() < 400, "{} bytes: {}", e.len(), &e[..80]);
            assert!(e.contains("xxx…"), "{}", &e[..80]);
        }
    }

    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_param_request(br#"{"version":1,"cmd":"toc"}"#),
            Ok(ParamRequest::Toc)
        );
        assert_eq!(
            parse_param_request(br#"{"version":1,"cmd":"set","name":"ring.effect","value":"7"}"#),
            Ok(ParamRequest::Set {
                name: "ring.effect".into(),
                value: "7".into()
            })
        );
        assert_eq!(
            parse_param_request(br#"{"cmd":"set","name":"pid_rate.roll_kp","value":250.5}"#),
            Ok(ParamRequest::Set {
                name: "pid_rate.roll_kp".into(),
                value: "250.5".into()
            })
        );
        for (bad, why) in [
            (&b"nope"[..], "not JSON"),
            (br#"{"version":1}"#, "cmd"),
            (br#"{"cmd":"fly"}"#, "unknown cmd"),
            (br#"{"cmd":"set","value":1}"#, "name"),
            (br#"{"cmd":"set","name":"effect","value":1}"#, "group.name"),
            (br#"{"cmd":"set","name":"ring.effect"}"#, "value"),
        ] {
            let e = parse_param_request(bad).expect_err("bad");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn led_messages_parse_and_convert_as_cflib() {
        let mut msg =
            json!({"version": 1, "rgbleds": [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]});
        let leds = parse_led_message(msg.to_string().as_bytes()).expect("valid");
        let mem = rgb565_be(&leds);
        // cflib: red 0xF800, green 0x07E0, blue 0x001F; (10,20,30) → R5 1, G6 5, B5 4 = 0x08A4.
        assert_eq!(mem[..8], [0xF8, 0x00, 0x07, 0xE0, 0x00, 0x1F, 0x08, 0xA4]);
        assert!(mem[8..].iter().all(|b| *b == 0), "unlisted LEDs off");
        msg["rgbleds"][0] = json!([256, 0, 0]);
        assert!(parse_led_message(msg.to_string().as_bytes()).is_err());
        assert!(parse_led_message(br#"{"rgbleds":[[1,2]]}"#).is_err());
        assert!(parse_led_message(br#"{"leds":[]}"#).is_err());
        let thirteen = json!({"rgbleds": vec![[0, 0, 0]; 13]});
        assert!(parse_led_message(thirteen.to_string().as_bytes()).is_err());
    }
}
