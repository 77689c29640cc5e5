//! `cfzmq://host:port?uri=<crazyflie uri>`: the headless cfzmq server (`src/cfzmq/__init__.py`
//! in crazyflie-clients-python). Sockets (server side → ours):
//! base+0 REP → REQ (commands: `connect`, `log`, `param`), base+1 PUB → SUB (log events and
//! data), base+4 PULL → PUSH (control). Base+2 (param PUB) and base+3 (connection PUB) are not
//! used.
//!
//! Control is the flat `{"version":1,"roll","pitch","yaw","thrust"}` handed straight to cflib's
//! `send_setpoint`, which negates the pitch: we send the user pitch (the wire pitch negated) and
//! the raw thrust as an integer (cflib's `struct.pack('H')` refuses a float).
//!
//! `emergency_stop`: cfzmq has no e-stop command. We send a zero setpoint (thrust 0 stops the
//! motors at once; the firmware's watchdog levels after 500 ms and cuts after 2 s without
//! setpoints) and latch locally: every later command is refused with `EmergencyStopped`. The
//! firmware itself is *not* latched, unlike the supervisor e-stop of CRTP links.
//!
//! Every request has a deadline (`ZMQ_RCVTIMEO`); after a timeout the REQ socket is replaced,
//! since a REQ that missed its reply can never send again. Parameters: `param_set` uses the
//! `param` command; `param_get` answers from the values cfzmq returned at `connect` and from
//! later confirmed writes (cfzmq has no read command).

use crate::link::{Link, LinkStats, LogSample, ParamAccess};
use crate::uri::LinkUri;
use crate::{LinkError, check_finite};
use depthpilot_crtp::RpytSetpoint;
use depthpilot_types::netpolicy::Role;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Deadlines of a cfzmq link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfzmqConfig {
    /// The `connect` command: cfzmq answers after cflib fetched the TOCs and all param values.
    pub connect_timeout: Duration,
    /// Every other command (cfzmq's own limits: log 10 s, param 2 s).
    pub request_timeout: Duration,
}

impl Default for CfzmqConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(12),
        }
    }
}

/// A cfzmq server and the Crazyflie it is connected to.
pub struct CfzmqLink {
    uri: String,
    crazyflie_uri: String,
    cmd_endpoint: String,
    log_endpoint: String,
    ctrl_endpoint: String,
    config: CfzmqConfig,
    req: zmq::Socket,
    sub: zmq::Socket,
    push: zmq::Socket,
    context: zmq::Context,
    /// Log block name → variables in the order requested.
    blocks: HashMap<String, Vec<String>>,
    /// "group.name" → value as cfzmq reported it (a string).
    params: HashMap<String, String>,
    stats: LinkStats,
    estopped: bool,
}

impl CfzmqLink {
    /// Opens the sockets and asks cfzmq to connect to the Crazyflie named by `?uri=`.
    pub fn open(uri: &str) -> Result<Self, LinkError> {
        Self::open_with(uri, CfzmqConfig::default())
    }

    /// [`CfzmqLink::open`] with explicit deadlines.
    pub fn open_with(uri: &str, config: CfzmqConfig) -> Result<Self, LinkError> {
        let LinkUri::Cfzmq {
            host,
            port,
            crazyflie_uri,
        } = LinkUri::parse(uri)?
        else {
            return Err(LinkError::bad_uri(uri, "not a cfzmq:// URI"));
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let endpoint = |offset: u16| format!("tcp://{host}:{}", port + offset);
        let (cmd_endpoint, log_endpoint, ctrl_endpoint) = (endpoint(0), endpoint(1), endpoint(4));
        let context = zmq::Context::new();
        let req = new_req(&context, uri, &cmd_endpoint, config.connect_timeout)?;
        let sub = (|| {
            let s = context.socket(zmq::SUB)?;
            s.set_linger(0)?;
            s.set_subscribe(b"")?;
            s.set_maxmsgsize(Role::CfZmq.max_message_bytes())?;
            s.connect(&log_endpoint)?;
            Ok(s)
        })()
        .map_err(|e| LinkError::zmq(uri, &log_endpoint, e))?;
        let push = (|| {
            let s = context.socket(zmq::PUSH)?;
            s.set_linger(0)?;
            s.set_immediate(true)?;
            s.set_sndhwm(10)?;
            s.connect(&ctrl_endpoint)?;
            Ok(s)
        })()
        .map_err(|e| LinkError::zmq(uri, &ctrl_endpoint, e))?;
        let mut link = Self {
            uri: uri.to_owned(),
            crazyflie_uri,
            cmd_endpoint,
            log_endpoint,
            ctrl_endpoint,
            config,
            req,
            sub,
            push,
            context,
            blocks: HashMap::new(),
            params: HashMap::new(),
            stats: LinkStats::default(),
            estopped: false,
        };
        let reply = link.request(
            "connect",
            &json!({"version": 1, "cmd": "connect", "uri": link.crazyflie_uri}),
            config.connect_timeout,
        )?;
        link.params = flatten_params(&reply);
        Ok(link)
    }

    /// The Crazyflie URI cfzmq was asked to connect to.
    pub fn crazyflie_uri(&self) -> &str {
        &self.crazyflie_uri
    }

    /// One command on the REQ socket; `status` must be 0.
    fn request(&mut self, what: &str, body: &Value, timeout: Duration) -> Result<Value, LinkError> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let zerr = |uri: &str, endpoint: &str, e| LinkError::zmq(uri, endpoint, e);
        self.req
            .set_rcvtimeo(ms)
            .map_err(|e| zerr(&self.uri, &self.cmd_endpoint, e))?;
        let sent = self.req.send(body.to_string().as_bytes(), 0);
        let received = sent.and_then(|()| self.req.recv_bytes(0));
        let bytes = match received {
            Ok(bytes) => bytes,
            Err(zmq::Error::EAGAIN) => {
                // A REQ that missed its reply is stuck; start over with a fresh socket.
                self.req = new_req(&self.context, &self.uri, &self.cmd_endpoint, timeout)?;
                return Err(LinkError::Timeout {
                    uri: self.uri.clone(),
                    what: format!("the cfzmq `{what}` command on {}", self.cmd_endpoint),
                    timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Err(e) => return Err(zerr(&self.uri, &self.cmd_endpoint, e)),
        };
        let reply: Value = serde_json::from_slice(&bytes).map_err(|e| LinkError::Protocol {
            uri: self.uri.clone(),
            reason: format!("cfzmq answered `{what}` with non-JSON: {e}"),
        })?;
        match reply.get("status").and_then(Value::as_i64) {
            Some(0) => Ok(reply),
            Some(status) => {
                let msg = reply
                    .get("msg")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned();
                Err(if what == "connect" {
                    LinkError::Connect {
                        uri: self.uri.clone(),
                        reason: format!("cfzmq could not connect to {}: {msg}", self.crazyflie_uri),
                    }
                } else {
                    LinkError::Rejected {
                        uri: self.uri.clone(),
                        what: format!("the `{what}` command"),
                        reason: format!("status {status}: {msg}"),
                    }
                })
            }
            None => Err(LinkError::Protocol {
                uri: self.uri.clone(),
                reason: format!("cfzmq answered `{what}` without a status: {reply}"),
            }),
        }
    }

    fn push(&mut self, message: &Value) -> Result<(), LinkError> {
        let result = match self
            .push
            .send(message.to_string().as_bytes(), zmq::DONTWAIT)
        {
            Ok(()) => Ok(()),
            Err(zmq::Error::EAGAIN) => Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason: format!(
                    "cfzmq's control socket {} is not reachable",
                    self.ctrl_endpoint
                ),
            }),
            Err(e) => Err(LinkError::zmq(&self.uri, &self.ctrl_endpoint, e)),
        };
        self.stats.record_send(&result);
        result
    }

    fn parse_log_message(&self, bytes: &[u8]) -> Option<LogSample> {
        let msg: Value = serde_json::from_slice(bytes).ok()?;
        if msg.get("event")?.as_str()? != "data" {
            return None;
        }
        let block = msg.get("name")?.as_str()?;
        let wanted = self.blocks.get(block)?;
        let variables = msg.get("variables")?;
        let values = wanted
            .iter()
            .map(|v| {
                let value = variables.get(v).and_then(Value::as_f64).unwrap_or(f64::NAN);
                (v.clone(), value)
            })
            .collect();
        let timestamp_ms = msg
            .get("timestamp")
            .and_then(Value::as_u64)
            .map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX));
        Some(LogSample {
            block: block.to_owned(),
            timestamp_ms,
            values,
        })
    }
}

fn new_req(
    context: &zmq::Context,
    uri: &str,
    endpoint: &str,
    timeout: Duration,
) -> Result<zmq::Socket, LinkError> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    (|| {
        let s = context.socket(zmq::REQ)?;
        s.set_linger(0)?;
        s.set_rcvtimeo(ms)?;
        s.set_sndtimeo(ms)?;
        s.set_maxmsgsize(Role::CfZmq.max_message_bytes())?;
        s.connect(endpoint)?;
        Ok(s)
    })()
    .map_err(|e| LinkError::zmq(uri, endpoint, e))
}

/// `{"param": {group: {name: {"value": "…"}}}}` → `{"group.name": "…"}`.
fn flatten_params(reply: &Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(groups) = reply.get("param").and_then(Value::as_object) else {
        return out;
    };
    for (group, names) in groups {
        let Some(names) = names.as_object() else {
            continue;
        };
        for (name, info) in names {
            let value = match info.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            out.insert(format!("{group}.{name}"), value);
        }
    }
    out
}

impl Link for CfzmqLink {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn send_setpoint(&mut self, sp: &RpytSetpoint) -> Result<(), LinkError> {
        if self.estopped {
            return Err(LinkError::estopped(&self.uri));
        }
        check_finite("setpoint", &[sp.roll_deg, sp.pitch_deg, sp.yaw_rate_deg_s])?;
        self.push(&json!({
            "version": 1,
            "roll": f64::from(sp.roll_deg),
            "pitch": f64::from(-sp.pitch_deg),
            "yaw": f64::from(sp.yaw_rate_deg_s),
            "thrust": sp.thrust,
        }))
    }

    fn send_external_position(&mut self, _pos_in_world_m: [f32; 3]) -> Result<(), LinkError> {
        Err(LinkError::unsupported(
            "external position (cfzmq's control socket only takes roll/pitch/yaw/thrust)",
            &self.uri,
        ))
    }

    fn send_position_setpoint(
        &mut self,
        _pos_in_world_m: [f32; 3],
        _yaw_deg: f32,
    ) -> Result<(), LinkError> {
        Err(LinkError::unsupported(
            "position setpoint (cfzmq's control socket only takes roll/pitch/yaw/thrust)",
            &self.uri,
        ))
    }

    fn emergency_stop(&mut self) -> Result<(), LinkError> {
        self.estopped = true;
        self.push(&json!({"version": 1, "roll": 0.0, "pitch": 0.0, "yaw": 0.0, "thrust": 0}))
    }

    fn start_log(
        &mut self,
        name: &str,
        variables: &[&str],
        period_ms: u32,
    ) -> Result<(), LinkError> {
        if self.estopped {
            return Err(LinkError::estopped(&self.uri));
        }
        if variables.is_empty() {
            return Err(LinkError::InvalidArgument {
                what: "log block",
                reason: format!("block `{name}` has no variables"),
            });
        }
        let timeout = self.config.request_timeout;
        let create = json!({"version": 1, "cmd": "log", "action": "create", "name": name,
            "period": period_ms, "variables": variables});
        self.request("log create", &create, timeout)
            .map_err(|e| match e {
                LinkError::Rejected { ref reason, .. } if reason.starts_with("status 1") => {
                    LinkError::NotFound {
                        uri: self.uri.clone(),
                        what: "log variable",
                        name: variables.join(", "),
                    }
                }
                other => other,
            })?;
        self.blocks.insert(
            name.to_owned(),
            variables.iter().map(|v| (*v).to_owned()).collect(),
        );
        let start = json!({"version": 1, "cmd": "log", "action": "start", "name": name});
        self.request("log start", &start, timeout)?;
        Ok(())
    }

    fn poll_log(&mut self) -> Result<Vec<LogSample>, LinkError> {
        let mut samples = Vec::new();
        loop {
            match self.sub.recv_bytes(zmq::DONTWAIT) {
                Ok(bytes) => {
                    if let Some(sample) = self.parse_log_message(&bytes) {
                        samples.push(sample);
                    }
                }
                Err(zmq::Error::EAGAIN) => break,
                Err(e) => return Err(LinkError::zmq(&self.uri, &self.log_endpoint, e)),
            }
        }
        self.stats.log_samples_received += samples.len() as u64;
        Ok(samples)
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }

    fn params(&mut self) -> Option<&mut dyn ParamAccess> {
        Some(self)
    }
}

impl ParamAccess for CfzmqLink {
    fn param_get(&mut self, name: &str) -> Result<f64, LinkError> {
        let text = self.params.get(name).ok_or_else(|| LinkError::NotFound {
            uri: self.uri.clone(),
            what: "parameter",
            name: name.to_owned(),
        })?;
        text.trim().parse::<f64>().map_err(|_| LinkError::Protocol {
            uri: self.uri.clone(),
            reason: format!("parameter `{name}` has the non-numeric value `{text}`"),
        })
    }

    fn param_set(&mut self, name: &str, value: f64) -> Result<(), LinkError> {
        if self.estopped {
            return Err(LinkError::estopped(&self.uri));
        }
        if !value.is_finite() {
            return Err(LinkError::InvalidArgument {
                what: "parameter value",
                reason: format!("{name} = {value}"),
            });
        }
        // cflib parses the string cfzmq makes of the value with int() for integer params:
        // send integers as JSON integers.
        let json_value = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            json!(value as i64)
        } else {
            json!(value)
        };
        let body = json!({"version": 1, "cmd": "param", "name": name, "value": json_value});
        let reply = self
            .request("param", &body, self.config.request_timeout)
            .map_err(|e| match e {
                LinkError::Rejected { ref reason, .. } if reason.starts_with("status 1") => {
                    LinkError::NotFound {
                        uri: self.uri.clone(),
                        what: "parameter",
                        name: name.to_owned(),
                    }
                }
                other => other,
            })?;
        let confirmed = match reply.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => json_value.to_string(),
        };
        self.params.insert(name.to_owned(), confirmed);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
