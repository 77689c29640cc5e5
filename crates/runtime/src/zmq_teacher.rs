//! A teacher input in the Crazyflie client's ZMQ input-device format: a PULL socket bound (by
//! default) to `tcp://127.0.0.1:1212`, as `cfclient` binds it, so the same senders work
//! (`examples/zmqclientinput.py`, the 2015 `kctrl.py`). Bad messages are skipped with a reason;
//! the socket keeps running.

use crate::RuntimeError;
use crate::curve::{CurveServer, CurveServers, DomainCounts, ServerKeys};
use crate::netpolicy::{BindPolicy, Role, bind_checked, limit_size};
use depthpilot_mux::{ClientInput, InputError, InputFrame};

/// The client's default input endpoint (`ZMQ_PULL_PORT = 1024 + 188`).
pub const DEFAULT_ENDPOINT: &str = "tcp://127.0.0.1:1212";

/// Counters of what arrived.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TeacherStats {
    pub accepted: u64,
    pub rejected: u64,
}

/// How a CURVE teacher input is served.
enum Curve {
    /// `teach --keys`: an empty allow-list is refused.
    Strict(Box<CurveServer>),
    /// Inside a flight: an empty allow-list is said and refuses everyone.
    Flight(Box<CurveServers>),
}

/// See the module doc.
pub struct ZmqTeacher {
    socket: zmq::Socket,
    /// With CURVE (`bind_curve`, `bind_curve_flight`): the ZAP handler and monitor (after the
    /// socket: dropped last).
    curve: Option<Curve>,
    input: ClientInput,
    pub stats: TeacherStats,
    endpoint: String,
}

impl ZmqTeacher {
    /// Binds `endpoint`, loopback only.
    pub fn bind(endpoint: &str) -> Result<Self, RuntimeError> {
        Self::bind_with(endpoint, BindPolicy::LoopbackOnly)
    }

    /// Binds `endpoint` under `policy` (a non-loopback endpoint needs `--insecure`).
    pub fn bind_with(endpoint: &str, policy: BindPolicy) -> Result<Self, RuntimeError> {
        Self::open(endpoint, policy, None)
    }

    /// Binds `endpoint` with CURVE (issue 20): only clients whose public key is in
    /// `keys.allow`'s `teacher` list get through; failures are reported and counted. Any
    /// endpoint, loopback or not, without `--insecure`.
    pub fn bind_curve(endpoint: &str, keys: &ServerKeys) -> Result<Self, RuntimeError> {
        Self::open(endpoint, BindPolicy::LoopbackOnly, Some(keys))
    }

    /// [`ZmqTeacher::bind_curve`] for the teacher inside a flight (`fly`, `run`, `hil` with
    /// `--keys`): an empty `allow/teacher/` is not an error but said at start (a `WARNING`), and
    /// the input then refuses every client: the flight flies on its own, untouchable.
    pub fn bind_curve_flight(endpoint: &str, keys: &ServerKeys) -> Result<Self, RuntimeError> {
        Self::open_with(endpoint, BindPolicy::LoopbackOnly, Some(keys), false)
    }

    fn open(
        endpoint: &str,
        policy: BindPolicy,
        keys: Option<&ServerKeys>,
    ) -> Result<Self, RuntimeError> {
        Self::open_with(endpoint, policy, keys, true)
    }

    fn open_with(
        endpoint: &str,
        policy: BindPolicy,
        keys: Option<&ServerKeys>,
        strict: bool,
    ) -> Result<Self, RuntimeError> {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::PULL)?;
        // Messages over MAX_MESSAGE_BYTES (16 kB) are received, reported and skipped; ones over
        // the role's limit (64 kB) are refused by ZMQ itself, which drops that sender's
        // connection without allocating the message.
        limit_size(&socket, Role::Teacher)?;
        socket.set_linger(0)?;
        let curve = match keys {
            Some(keys) if strict => Some(Curve::Strict(Box::new(CurveServer::bind(
                &ctx,
                &socket,
                "PULL",
                Role::Teacher,
                endpoint,
                keys,
            )?))),
            Some(keys) => {
                let mut servers = CurveServers::start(&ctx, keys)?;
                servers.bind(&ctx, &socket, "PULL", Role::Teacher, endpoint)?;
                Some(Curve::Flight(Box::new(servers)))
            }
            None => {
                bind_checked(&socket, "PULL", Role::Teacher, endpoint, policy)?;
                None
            }
        };
        Ok(Self {
            socket,
            curve,
            input: ClientInput::default(),
            stats: TeacherStats::default(),
            endpoint: endpoint.to_string(),
        })
    }

    /// The authentication counts, with CURVE.
    pub fn auth_counts(&self) -> Option<DomainCounts> {
        self.curve.as_ref().map(|c| match c {
            Curve::Strict(s) => s.counts(),
            Curve::Flight(s) => s.counts(Role::Teacher),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Takes every message waiting (without blocking), at time `now_ns`. Returns the reasons
    /// of the messages that were skipped.
    pub fn poll(&mut self, now_ns: u64) -> Result<Vec<InputError>, RuntimeError> {
        let mut skipped = Vec::new();
        loop {
            match self.socket.recv_bytes(zmq::DONTWAIT) {
                Ok(bytes) => match self.input.apply(&bytes, now_ns) {
                    Ok(()) => self.stats.accepted += 1,
                    Err(e) => {
                        self.stats.rejected += 1;
                        skipped.push(e);
                    }
                },
                Err(zmq::Error::EAGAIN) => return Ok(skipped),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The latched teacher frame (None before the first good message).
    pub fn frame(&self) -> Option<InputFrame> {
        self.input.frame()
    }
}
