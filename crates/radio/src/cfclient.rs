//! `cfclient://host:port`: a running cfclient's ZMQ input device (`zmqpull.py`, PULL bound on
//! `tcp://127.0.0.1:1212`, enabled by `"enable_zmq_input": true` in cfclient's config). We PUSH
//! `{"version":1,"client_name":…,"ctrl":{"roll","pitch","yaw","thrust"}}`.
//!
//! What cfclient does with it (`utils/input/__init__.py`, `JoystickReader.read_input`): values
//! latch until overwritten, are re-sampled at 100 Hz, get the user's roll/pitch trims added
//! (keep them at 0), thrust goes through `p2t(pct) = int(65000 * (pct / 100.0))` and is clamped
//! to 0..=0xFFFF, then `cf.commander.send_setpoint(roll, pitch, yaw, thrust)`, which negates the
//! pitch on the wire. So from a wire setpoint we send roll as is, pitch un-negated, yaw as is
//! (cfclient passes it straight through, so the wire gets the same inverted legacy rate), and
//! the smallest percentage that `p2t` maps back to the same raw thrust.
//!
//! Limits: no external position, position setpoints or logs through this socket
//! (`LinkError::Unsupported`); no acknowledgement either — a PUSH with `ZMQ_IMMEDIATE` refuses
//! to queue while no cfclient is connected, which is reported as `Disconnected`, so stale
//! setpoints never pile up for a cfclient that starts later. `emergency_stop` sends
//! `"estop": true` (cfclient reacts on the toggle with the supervisor e-stop) with thrust 0.

use crate::link::{Link, LinkStats, LogSample};
use crate::uri::LinkUri;
use crate::{LinkError, check_finite};
use depthpilot_crtp::RpytSetpoint;
use serde_json::json;
use std::time::Duration;

/// cfclient's `MAX_THRUST`: 100 % in `p2t`.
pub const CFCLIENT_MAX_THRUST: f64 = 65000.0;

/// How long `open` waits for the TCP connection before returning (a cfclient started later is
/// picked up automatically).
const CONNECT_WAIT: Duration = Duration::from_millis(300);

/// cfclient's `JoystickReader.p2t` followed by its clamp, in the same IEEE arithmetic as Python.
pub fn cfclient_p2t(percent: f64) -> u16 {
    let raw = (CFCLIENT_MAX_THRUST * (percent / 100.0)).trunc();
    raw.clamp(0.0, f64::from(u16::MAX)) as u16
}

/// The thrust percentage to put in `ctrl.thrust` so that cfclient sends `raw` on the wire:
/// `raw·100/65000`, nudged up by a few ulps where `p2t`'s truncation would otherwise lose one.
pub fn thrust_percent_for_raw(raw: u16) -> f64 {
    let mut pct = f64::from(raw) * 100.0 / CFCLIENT_MAX_THRUST;
    while cfclient_p2t(pct) < raw {
        pct = pct.next_up();
    }
    pct
}

/// The `ctrl` object cfclient would turn into exactly `sp` on the wire.
pub fn cfclient_ctrl(sp: &RpytSetpoint) -> serde_json::Value {
    json!({
        "roll": f64::from(sp.roll_deg),
        "pitch": f64::from(-sp.pitch_deg),
        "yaw": f64::from(sp.yaw_rate_deg_s),
        "thrust": thrust_percent_for_raw(sp.thrust),
    })
}

/// A PUSH socket to cfclient's ZMQ input device.
pub struct CfclientLink {
    uri: String,
    endpoint: String,
    client_name: String,
    socket: zmq::Socket,
    _context: zmq::Context,
    stats: LinkStats,
    estopped: bool,
}

impl CfclientLink {
    /// Opens `cfclient://host[:port]`. Succeeds even if cfclient is not running yet; sends then
    /// fail with `Disconnected` until it is.
    pub fn open(uri: &str) -> Result<Self, LinkError> {
        let LinkUri::Cfclient { host, port } = LinkUri::parse(uri)? else {
            return Err(LinkError::bad_uri(uri, "not a cfclient:// URI"));
        };
        let endpoint = format!("tcp://{}:{port}", bracket_v6(&host));
        let context = zmq::Context::new();
        let zerr = |e| LinkError::zmq(uri, &endpoint, e);
        let socket = context.socket(zmq::PUSH).map_err(zerr)?;
        socket.set_linger(0).map_err(zerr)?;
        socket.set_immediate(true).map_err(zerr)?;
        socket.set_sndhwm(10).map_err(zerr)?;
        socket.set_ipv6(host.contains(':')).map_err(zerr)?;
        socket.connect(&endpoint).map_err(zerr)?;
        // Give the TCP connection a moment so the first setpoint is not refused.
        let _ = socket.poll(
            zmq::POLLOUT,
            i64::try_from(CONNECT_WAIT.as_millis()).unwrap_or(300),
        );
        Ok(Self {
            uri: uri.to_owned(),
            endpoint,
            client_name: "depthpilot".to_owned(),
            socket,
            _context: context,
            stats: LinkStats::default(),
            estopped: false,
        })
    }

    /// The `client_name` sent with every message (cfclient ignores it). Default "depthpilot".
    pub fn with_client_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.client_name);
        self
    }

    fn push(&mut self, ctrl: serde_json::Value) -> Result<(), LinkError> {
        let message = json!({"version": 1, "client_name": self.client_name, "ctrl": ctrl});
        let result = match self
            .socket
            .send(message.to_string().as_bytes(), zmq::DONTWAIT)
        {
            Ok(()) => Ok(()),
            Err(zmq::Error::EAGAIN) => Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason: format!(
                    "no cfclient input device is listening on {} (start cfclient with \"enable_zmq_input\": true and select the ZMQ input device)",
                    self.endpoint
                ),
            }),
            Err(e) => Err(LinkError::zmq(&self.uri, &self.endpoint, e)),
        };
        self.stats.record_send(&result);
        result
    }
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

impl Link for CfclientLink {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn send_setpoint(&mut self, sp: &RpytSetpoint) -> Result<(), LinkError> {
        if self.estopped {
            return Err(LinkError::estopped(&self.uri));
        }
        check_finite("setpoint", &[sp.roll_deg, sp.pitch_deg, sp.yaw_rate_deg_s])?;
        self.push(cfclient_ctrl(sp))
    }

    fn send_external_position(&mut self, _pos_in_world_m: [f32; 3]) -> Result<(), LinkError> {
        Err(LinkError::unsupported(
            "external position (cfclient's ZMQ input only takes roll/pitch/yaw/thrust)",
            &self.uri,
        ))
    }

    fn send_position_setpoint(
        &mut self,
        _pos_in_world_m: [f32; 3],
        _yaw_deg: f32,
    ) -> Result<(), LinkError> {
        Err(LinkError::unsupported(
            "position setpoint (cfclient's ZMQ input only takes roll/pitch/yaw/thrust)",
            &self.uri,
        ))
    }

    fn emergency_stop(&mut self) -> Result<(), LinkError> {
        self.estopped = true;
        self.push(json!({"roll": 0.0, "pitch": 0.0, "yaw": 0.0, "thrust": 0.0, "estop": true}))
    }

    fn start_log(
        &mut self,
        _name: &str,
        _variables: &[&str],
        _period_ms: u32,
    ) -> Result<(), LinkError> {
        Err(LinkError::unsupported(
            "logging (cfclient's ZMQ input is one-way; use cfzmq:// for logs)",
            &self.uri,
        ))
    }

    fn poll_log(&mut self) -> Result<Vec<LogSample>, LinkError> {
        Ok(Vec::new())
    }

    fn stats(&self) -> LinkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkErrorKind;

    /// A PULL bound where cfclient binds, on a free port.
    fn fake_cfclient() -> (zmq::Context, zmq::Socket, u16) {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).expect("pull");
        pull.set_linger(0).expect("linger");
        pull.bind("tcp://127.0.0.1:*").expect("bind");
        pull.set_rcvtimeo(3000).expect("timeout");
        let endpoint = pull.get_last_endpoint().expect("endpoint").expect("utf8");
        let port = endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        (ctx, pull, port)
    }

    /// What cfclient + cflib put on the wire for one received message:
    /// `send_setpoint(roll + 0, pitch + 0, yaw, clamp(p2t(thrust)))` →
    /// `struct.pack('<BfffH', 0x3C, roll, -pitch, yaw, thrust)`.
    fn cfclient_wire_bytes(message: &serde_json::Value) -> Vec<u8> {
        let ctrl = &message["ctrl"];
        let f = |k: &str| ctrl[k].as_f64().expect("number");
        let mut out = vec![0x3C];
        out.extend_from_slice(&(f("roll") as f32).to_le_bytes());
        out.extend_from_slice(&(-(f("pitch") as f32)).to_le_bytes());
        out.extend_from_slice(&(f("yaw") as f32).to_le_bytes());
        out.extend_from_slice(&cfclient_p2t(f("thrust")).to_le_bytes());
        out
    }

    #[test]
    fn every_raw_thrust_survives_p2t() {
        for raw in 0..=u16::MAX {
            let pct = thrust_percent_for_raw(raw);
            assert_eq!(cfclient_p2t(pct), raw, "raw {raw} -> {pct}%");
            // JSON carries the shortest repr that parses back to the same double.
            let back: f64 =
                serde_json::from_str(&serde_json::to_string(&pct).expect("json")).expect("parse");
            assert_eq!(back.to_bits(), pct.to_bits());
        }
        assert_eq!(thrust_percent_for_raw(0), 0.0);
        assert_eq!(thrust_percent_for_raw(65000), 100.0);
    }

    /// Python itself (json.loads + cfclient's p2t expression) gives back every raw thrust.
    /// Skipped without python3.
    #[test]
    fn python_p2t_gives_back_every_raw_thrust() {
        use std::io::Write;
        let percentages: Vec<f64> = (0..=u16::MAX).map(thrust_percent_for_raw).collect();
        let json = serde_json::to_string(&percentages).expect("json");
        let script = "import json,sys\nfor p in json.loads(sys.stdin.read()):\n    print(max(0, min(0xFFFF, int(65000 * (p / 100.0)))))";
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("skipped: no python3");
            return;
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(json.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("python");
        assert!(out.status.success());
        let raws: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.parse().expect("int"))
            .collect();
        assert_eq!(raws, (0..=u32::from(u16::MAX)).collect::<Vec<_>>());
    }

    #[test]
    fn setpoints_map_to_the_same_crtp_bytes_through_cfclient() {
        let (_ctx, pull, port) = fake_cfclient();
        let mut link = CfclientLink::open(&format!("cfclient://127.0.0.1:{port}")).expect("open");
        let setpoints = [
            RpytSetpoint {
                roll_deg: 10.0,
                pitch_deg: -5.0,
                yaw_rate_deg_s: -20.0,
                thrust: 36000,
            },
            RpytSetpoint {
                roll_deg: 0.1,
                pitch_deg: 3.3,
                yaw_rate_deg_s: 199.9,
                thrust: 0,
            },
            RpytSetpoint {
                roll_deg: -1.0e-3,
                pitch_deg: 0.0,
                yaw_rate_deg_s: 0.0,
                thrust: 65535,
            },
        ];
        for sp in &setpoints {
            link.send_setpoint(sp).expect("send");
            let bytes = pull.recv_bytes(0).expect("message");
            let message: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            assert_eq!(message["version"], 1);
            assert_eq!(message["client_name"], "depthpilot");
            assert_eq!(
                cfclient_wire_bytes(&message),
                sp.encode().to_vec(),
                "{message}"
            );
        }
        assert_eq!(link.stats().packets_sent, 3);

        link.emergency_stop().expect("estop");
        let message: serde_json::Value =
            serde_json::from_slice(&pull.recv_bytes(0).expect("estop message")).expect("json");
        assert_eq!(message["ctrl"]["estop"], true);
        assert_eq!(message["ctrl"]["thrust"], 0.0);
        let e = link.send_setpoint(&setpoints[0]).expect_err("latched");
        assert_eq!(e.kind(), LinkErrorKind::EmergencyStopped);
    }

    #[test]
    fn no_cfclient_is_a_clear_disconnected_error_and_nothing_is_queued() {
        let (ctx, pull, port) = fake_cfclient();
        drop(pull);
        drop(ctx);
        let mut link = CfclientLink::open(&format!("cfclient://127.0.0.1:{port}")).expect("open");
        let sp = RpytSetpoint {
            roll_deg: 0.0,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust: 0,
        };
        let e = link.send_setpoint(&sp).expect_err("nobody listens");
        assert_eq!(e.kind(), LinkErrorKind::Disconnected);
        assert!(e.to_string().contains("enable_zmq_input"), "{e}");
        assert_eq!(link.stats().send_errors, 1);
    }

    #[test]
    fn unsupported_and_non_finite() {
        let (_ctx, _pull, port) = fake_cfclient();
        let mut link = CfclientLink::open(&format!("cfclient://127.0.0.1:{port}")).expect("open");
        for e in [
            link.send_external_position([0.0; 3])
                .expect_err("unsupported"),
            link.send_position_setpoint([0.0; 3], 0.0)
                .expect_err("unsupported"),
            link.start_log("b", &["pm.vbat"], 100)
                .expect_err("unsupported"),
        ] {
            assert_eq!(e.kind(), LinkErrorKind::Unsupported, "{e}");
        }
        assert!(link.poll_log().expect("empty").is_empty());
        let nan = RpytSetpoint {
            roll_deg: f32::NAN,
            pitch_deg: 0.0,
            yaw_rate_deg_s: 0.0,
            thrust: 0,
        };
        assert_eq!(
            link.send_setpoint(&nan).expect_err("nan").kind(),
            LinkErrorKind::InvalidArgument
        );
    }
}
