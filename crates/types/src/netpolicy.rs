//! Network policy for every ZMQ socket (issue 20, step 1: safe defaults).
//!
//! Every endpoint here uses ZMQ's NULL mechanism: no authentication, no encryption. So:
//! - a bind is loopback unless the operator says otherwise: [`check_bind`] refuses a
//!   non-loopback bind unless the policy is [`BindPolicy::AllowInsecure`] (`--insecure`), and
//!   then returns a warning to print;
//! - every receiving socket has a maximum message size ([`Role::max_message_bytes`], set as
//!   `ZMQ_MAXMSGSIZE` before connect or bind): libzmq drops the connection of a peer that sends
//!   more, before allocating the message.
//!
//! Pure: classifies strings, prints nothing, touches no socket (the crates with sockets apply it).
//! Out of scope (later steps of the issue): CURVE keys, key generation.

use std::fmt;

/// A JSON control message (teacher input, set-points, parameter and LED requests, bus truth,
/// measurements and status, the flight rows a live viewer reads): the largest real one is a
/// flight row of a few hundred bytes, the teacher parser refuses anything over 16 kB
/// (`depthpilot_mux::MAX_MESSAGE_BYTES`, reported and counted); 64 kB leaves four times that
/// head room and bounds what a stranger can make us allocate per message.
pub const MAX_JSON_MESSAGE_BYTES: i64 = 64 * 1024;

/// One part of a Kinect bridge message (ZMQ_MAXMSGSIZE applies per part): the largest is one
/// 512 × 424 × 2-byte image, 434 176 bytes (depth and IR travel as separate parts, so a whole
/// frame is about 0.9 MB); 1 MiB leaves room for a header and nothing like a second image.
pub const MAX_BRIDGE_PART_BYTES: i64 = 1 << 20;

/// A reply of the client's ZMQ server (`cfzmq://`): its log and parameter TOCs list every
/// variable of the firmware (several hundred entries, tens of kB of JSON); 1 MiB keeps ten times
/// that and still bounds a stranger's message.
pub const MAX_CFZMQ_MESSAGE_BYTES: i64 = 1 << 20;

/// What a socket is for: names it in messages and picks its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The teacher input (the client's ZMQ input device: PULL).
    Teacher,
    /// The control side's measurement SUB of a split flight.
    Measurements,
    /// The control side's truth PUB (split flight, fake bridge).
    Truth,
    /// The client's parameter server (REP).
    Param,
    /// The client's LED-ring server (PULL).
    Led,
    /// A Kinect bridge's (or fake bridge's) PUB, and a bridge client's SUB.
    Bridge,
    /// The flight rows for a live viewer (PUB; the viewer's SUB).
    State,
    /// The 2015 detector output (PUSH).
    Detector,
    /// The 2015 set-point UI's input (PULL).
    SetPoints,
    /// A `cfzmq://` link's REQ and SUB, connected to the client's ZMQ server.
    CfZmq,
}

impl Role {
    /// The largest message (part) a receiving socket of this role takes.
    pub fn max_message_bytes(self) -> i64 {
        match self {
            Role::Bridge => MAX_BRIDGE_PART_BYTES,
            Role::CfZmq => MAX_CFZMQ_MESSAGE_BYTES,
            _ => MAX_JSON_MESSAGE_BYTES,
        }
    }

    /// What a stranger who reaches this socket can do.
    pub fn exposure(self) -> &'static str {
        match self {
            Role::Teacher => "take all four axes or latch the e-stop",
            Role::Measurements => "start the flight and steer the quad with fake positions",
            Role::Truth => "read the flight's true position, and feed a fake bridge",
            Role::Param => "set any firmware parameter",
            Role::Led => "drive the LED ring",
            Role::Bridge => "watch live depth and IR video of the room",
            Role::State => "watch the flight's state",
            Role::Detector => "read the detector's positions",
            Role::SetPoints => "move the quad's target",
            Role::CfZmq => "answer for the Crazyflie",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Teacher => "teacher input",
            Role::Measurements => "bus measurements",
            Role::Truth => "bus truth",
            Role::Param => "parameter server",
            Role::Led => "LED server",
            Role::Bridge => "Kinect bridge",
            Role::State => "flight state",
            Role::Detector => "detector output",
            Role::SetPoints => "set-point input",
            Role::CfZmq => "cfzmq link",
        })
    }
}

/// Who can reach an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only this host: tcp on 127.0.0.0/8, `[::1]` or `localhost`; `ipc://`; `inproc://`.
    Loopback,
    /// Anything else: `*`, `0.0.0.0`, `[::]`, another address, a host or interface name.
    Exposed,
}

/// Whether a non-loopback bind is allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindPolicy {
    /// The default: non-loopback binds are refused.
    #[default]
    LoopbackOnly,
    /// `--insecure`: allowed, with a warning.
    AllowInsecure,
}

impl BindPolicy {
    /// The policy of an `--insecure` flag.
    pub fn from_insecure(insecure: bool) -> Self {
        if insecure {
            BindPolicy::AllowInsecure
        } else {
            BindPolicy::LoopbackOnly
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetPolicyError {
    #[error(
        "`{endpoint}` is not a ZMQ endpoint: {reason} (e.g. tcp://127.0.0.1:7720, \
         ipc:///tmp/name, inproc://name)"
    )]
    BadEndpoint { endpoint: String, reason: String },
    #[error(
        "refusing to bind the {role} socket to `{endpoint}`: it is not loopback, and the socket \
         has no authentication or encryption (ZMQ NULL mechanism), so anyone who reaches this \
         host could {exposure}. Authenticate it with CURVE keys where the command takes \
         `--keys DIR` (`depthpilot keygen`; README \"Security\"), or bind loopback \
         (tcp://127.0.0.1:PORT) and tunnel from the other host (`ssh -L PORT:127.0.0.1:PORT \
         THIS_HOST`), or pass --insecure to accept the risk",
        exposure = role.exposure()
    )]
    Refused { endpoint: String, role: Role },
}

/// Classifies `endpoint` (the grammar of `zmq_bind`/`zmq_connect` for tcp, ipc and inproc).
pub fn classify(endpoint: &str) -> Result<Scope, NetPolicyError> {
    let bad = |reason: &str| NetPolicyError::BadEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(bad("no `scheme://`"));
    };
    match scheme {
        "inproc" | "ipc" if rest.is_empty() => Err(bad("empty name")),
        "inproc" | "ipc" => Ok(Scope::Loopback),
        "tcp" => {
            let Some((host, port)) = rest.rsplit_once(':') else {
                return Err(bad("no `:port`"));
            };
            if port != "*" && port.parse::<u16>().is_err() {
                return Err(bad("the port is not `*` or a number 0–65535"));
            }
            if host.is_empty() {
                return Err(bad("no host"));
            }
            if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("whitespace in the host"));
            }
            let host = match host.strip_prefix('[') {
                Some(h) => h.strip_suffix(']').ok_or_else(|| bad("unclosed `[`"))?,
                None => host,
            };
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            Ok(if loopback {
                Scope::Loopback
            } else {
                Scope::Exposed
            })
        }
        _ => Err(bad(&format!(
            "scheme `{scheme}` is not one we use (tcp, ipc, inproc)"
        ))),
    }
}

/// The check before every bind: Ok(None) for loopback, Ok(Some(warning)) for a non-loopback
/// bind under [`BindPolicy::AllowInsecure`] (the caller prints it to stderr), Err otherwise.
pub fn check_bind(
    endpoint: &str,
    role: Role,
    policy: BindPolicy,
) -> Result<Option<String>, NetPolicyError> {
    match (classify(endpoint)?, policy) {
        (Scope::Loopback, _) => Ok(None),
        (Scope::Exposed, BindPolicy::AllowInsecure) => Ok(Some(format!(
            "WARNING: --insecure: the {role} socket is bound to `{endpoint}` without \
             authentication or encryption; anyone who reaches this host can {}",
            role.exposure()
        ))),
        (Scope::Exposed, BindPolicy::LoopbackOnly) => Err(NetPolicyError::Refused {
            endpoint: endpoint.to_string(),
            role,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of endpoint, garbage included.
    #[test]
    fn classify_table() {
        use Scope::{Exposed, Loopback};
        let ok = [
            ("tcp://127.0.0.1:7720", Loopback),
            ("tcp://127.0.0.1:*", Loopback),
            ("tcp://127.1.2.3:0", Loopback),
            ("tcp://[::1]:7720", Loopback),
            ("tcp://localhost:1212", Loopback),
            ("ipc:///tmp/depthpilot", Loopback),
            ("inproc://kinect-test", Loopback),
            ("tcp://*:7720", Exposed),
            ("tcp://*:*", Exposed),
            ("tcp://0.0.0.0:1213", Exposed),
            ("tcp://[::]:7720", Exposed),
            ("tcp://192.168.1.20:7711", Exposed),
            ("tcp://eth0:7720", Exposed),
            ("tcp://example.com:7720", Exposed),
            // Conservative: an IPv4-mapped address counts as exposed (std's `is_loopback`).
            ("tcp://[::ffff:127.0.0.1]:7720", Exposed),
        ];
        for (e, want) in ok {
            assert_eq!(classify(e), Ok(want), "{e}");
        }
        let garbage = [
            ("", "no `scheme://`"),
            ("127.0.0.1:7720", "no `scheme://`"),
            ("tcp://", "no `:port`"),
            ("tcp://127.0.0.1", "no `:port`"),
            ("tcp://127.0.0.1:abc", "the port"),
            ("tcp://127.0.0.1:70000", "the port"),
            ("tcp://:7720", "no host"),
            ("tcp://[::1:7720", "unclosed"),
            ("tcp://local host:7720", "whitespace"),
            ("udp://127.0.0.1:7720", "scheme `udp`"),
            ("ipc://", "empty name"),
            ("inproc://", "empty name"),
        ];
        for (e, why) in garbage {
            let err = classify(e).expect_err(e).to_string();
            assert!(err.contains(&format!("`{e}`")), "{err}");
            assert!(err.contains(why), "{e}: {err}");
        }
    }

    #[test]
    fn non_loopback_bind_refused_unless_insecure() {
        assert_eq!(
            check_bind(
                "tcp://127.0.0.1:1212",
                Role::Teacher,
                BindPolicy::LoopbackOnly
            ),
            Ok(None)
        );
        let err = check_bind("tcp://*:1212", Role::Teacher, BindPolicy::LoopbackOnly)
            .expect_err("refused")
            .to_string();
        for part in [
            "tcp://*:1212",
            "teacher input",
            "e-stop",
            "ssh -L",
            "--insecure",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        let warning = check_bind("tcp://0.0.0.0:1213", Role::Param, BindPolicy::AllowInsecure)
            .expect("allowed")
            .expect("a warning");
        assert!(warning.starts_with("WARNING"), "{warning}");
        assert!(warning.contains("`tcp://0.0.0.0:1213`"), "{warning}");
        // Garbage stays garbage, insecure or not.
        assert!(matches!(
            check_bind("tcp://*", Role::Led, BindPolicy::AllowInsecure),
            Err(NetPolicyError::BadEndpoint { .. })
        ));
    }

    #[test]
    fn size_limits() {
        assert!(Role::Bridge.max_message_bytes() > 512 * 424 * 2);
        assert!(Role::Teacher.max_message_bytes() > 16 * 1024);
        assert!(Role::Teacher.max_message_bytes() < 1024 * 1024);
    }
}
