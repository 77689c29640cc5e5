//! The ZMQ ends of the frame protocol: [`BridgeClient`] (a SUB that the runtime polls) and
//! [`BridgePublisher`] (a PUB, for fake bridges and tests; the real bridge is Python).
//!
//! The client never blocks in [`poll`](BridgeClient::poll): it drains what has arrived (at most
//! [`MAX_MESSAGES_PER_POLL`]), decodes it, counts garbage, and applies the stale rule against the
//! `now` it is given. ZMQ reconnects by itself when the bridge restarts; frames sent before the
//! subscription reaches the bridge are lost (ZMQ's slow joiner), which shows as nothing, not as
//! garbage.

use std::time::{Duration, Instant};

use crate::protocol::{
    BridgeMessage, FrameError, FrameHeader, ReceivedFrame, StatusMsg, TOPIC_PREFIX, decode,
    encode_frame, encode_status,
};
use crate::report::{BridgeReport, StaleWatch};
use depthpilot_types::netpolicy::{BindPolicy, Role, check_bind};

/// Three Kinect frames at 30 Hz.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_millis(100);
/// How soon the SUB retries a bridge that is not (or no longer) there.
pub const DEFAULT_RECONNECT_IVL: Duration = Duration::from_millis(50);
/// Frames queued in the client before ZMQ drops new ones (each is ~0.4–0.9 MB).
pub const DEFAULT_RECEIVE_HWM: i32 = 8;
/// Largest part the client accepts; a peer sending more is disconnected by ZMQ (bytes). See
/// [`MAX_BRIDGE_PART_BYTES`](depthpilot_types::netpolicy::MAX_BRIDGE_PART_BYTES) for why.
pub const MAX_PART_BYTES: i64 = depthpilot_types::netpolicy::MAX_BRIDGE_PART_BYTES;
/// Messages one [`BridgeClient::poll`] reads at most, so that a poll stays short.
pub const MAX_MESSAGES_PER_POLL: usize = 64;

/// Where and how a [`BridgeClient`] connects.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeConfig {
    /// A ZMQ endpoint the bridge binds, e.g. `tcp://127.0.0.1:7720`.
    pub endpoint: String,
    /// No frame for this long (after frames had arrived) is a [`BridgeEvent::Stale`].
    pub stale_after: Duration,
    pub reconnect_ivl: Duration,
    /// ZMQ receive high-water mark (messages).
    pub receive_hwm: i32,
    /// CURVE (issue 20): the bridge is a CURVE server and this client holds a key it allows.
    /// None: the NULL mechanism (a loopback bridge, or one behind a tunnel).
    pub curve: Option<CurveClientKeys>,
}

/// A CURVE client's keys, as raw 32-byte keys (this crate has no key files: the runtime's
/// `curve` module loads them): the server's public key and the client's key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveClientKeys {
    pub server_public: [u8; 32],
    pub client_public: [u8; 32],
    pub client_secret: [u8; 32],
}

impl std::fmt::Debug for CurveClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret key.
        f.write_str("CurveClientKeys(…)")
    }
}

impl BridgeConfig {
    /// The defaults above, at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            stale_after: DEFAULT_STALE_AFTER,
            reconnect_ivl: DEFAULT_RECONNECT_IVL,
            receive_hwm: DEFAULT_RECEIVE_HWM,
            curve: None,
        }
    }
}

/// A bridge socket could not be set up or used. Every variant names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot bind the Kinect bridge's PUB socket to `{endpoint}`: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    #[error("cannot connect a SUB socket to the Kinect bridge at `{endpoint}`: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
    /// A non-loopback bind without `--insecure`, or an endpoint that is not one.
    #[error(transparent)]
    Policy(#[from] depthpilot_types::netpolicy::NetPolicyError),
    #[error("Kinect bridge socket `{endpoint}`: {action} failed: {source}")]
    Socket {
        endpoint: String,
        action: &'static str,
        #[source]
        source: zmq::Error,
    },
}

/// What one [`BridgeClient::poll`] found, in order of arrival.
#[derive(Clone, Debug, PartialEq)]
pub enum BridgeEvent {
    Frame(Box<ReceivedFrame>),
    /// A dropped message (already counted in the report); its `Display` is the log line.
    Garbage(FrameError),
    /// No frame for `for_ms` (≥ the stale time); reported once per stretch.
    Stale {
        for_ms: u64,
    },
    /// Frames are back, `after_ms` after the previous one; comes just before that frame.
    Recovered {
        after_ms: u64,
    },
    Status(StatusMsg),
}

/// A SUB connected to a Kinect bridge.
pub struct BridgeClient {
    socket: zmq::Socket,
    watch: StaleWatch,
    report: BridgeReport,
}

impl BridgeClient {
    /// Connects (ZMQ connects in the background: a bridge that is not up yet is fine).
    pub fn connect(ctx: &zmq::Context, config: &BridgeConfig) -> Result<Self, BridgeError> {
        let endpoint = config.endpoint.as_str();
        let socket = ctx
            .socket(zmq::SUB)
            .map_err(|source| socket_error(endpoint, "creating the SUB socket", source))?;
        let ivl_ms = i32::try_from(config.reconnect_ivl.as_millis()).unwrap_or(i32::MAX);
        let configure = || -> Result<(), zmq::Error> {
            socket.set_linger(0)?;
            socket.set_rcvhwm(config.receive_hwm)?;
            socket.set_maxmsgsize(MAX_PART_BYTES)?;
            socket.set_reconnect_ivl(ivl_ms)?;
            socket.set_reconnect_ivl_max(ivl_ms)?;
            if let Some(k) = &config.curve {
                socket.set_curve_serverkey(&k.server_public)?;
                socket.set_curve_publickey(&k.client_public)?;
                socket.set_curve_secretkey(&k.client_secret)?;
            }
            socket.set_subscribe(TOPIC_PREFIX.as_bytes())
        };
        configure()
            .map_err(|source| socket_error(endpoint, "configuring the SUB socket", source))?;
        socket
            .connect(endpoint)
            .map_err(|source| BridgeError::Connect {
                endpoint: endpoint.to_string(),
                source,
            })?;
        Ok(Self {
            socket,
            watch: StaleWatch::new(config.stale_after),
            report: BridgeReport {
                endpoint: endpoint.to_string(),
                ..BridgeReport::default()
            },
        })
    }

    /// Reads what has arrived without blocking; `now` is taken as the arrival time of all of it
    /// and as the time for the stale rule.
    pub fn poll(&mut self, now: Instant) -> Result<Vec<BridgeEvent>, BridgeError> {
        let mut events = Vec::new();
        for _ in 0..MAX_MESSAGES_PER_POLL {
            match self.socket.recv_multipart(zmq::DONTWAIT) {
                Ok(parts) => self.handle(&parts, now, &mut events),
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
                Err(source) => {
                    return Err(socket_error(&self.report.endpoint, "receiving", source));
                }
            }
        }
        if let Some(for_ms) = self.watch.check(now) {
            self.report.stale_events = self.report.stale_events.saturating_add(1);
            self.report.stale = true;
            events.push(BridgeEvent::Stale { for_ms });
        }
        Ok(events)
    }

    /// Blocks up to `timeout` until a message is waiting. `Ok(false)`: none came.
    pub fn wait(&self, timeout: Duration) -> Result<bool, BridgeError> {
        let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        self.socket
            .poll(zmq::POLLIN, ms)
            .map(|n| n > 0)
            .map_err(|source| socket_error(&self.report.endpoint, "waiting", source))
    }

    pub fn report(&self) -> &BridgeReport {
        &self.report
    }

    pub fn endpoint(&self) -> &str {
        &self.report.endpoint
    }

    fn handle(&mut self, parts: &[Vec<u8>], now: Instant, events: &mut Vec<BridgeEvent>) {
        match decode(parts) {
            Ok(BridgeMessage::Frame(frame)) => {
                let (gap_ms, recovered) = self.watch.frame(now);
                let r = &mut self.report;
                if let Some(gap_ms) = gap_ms {
                    r.longest_gap_ms = r.longest_gap_ms.max(gap_ms);
                    if recovered {
                        r.recoveries = r.recoveries.saturating_add(1);
                        events.push(BridgeEvent::Recovered { after_ms: gap_ms });
                    }
                }
                r.stale = false;
                r.frames.observe(frame.header.seq);
                events.push(BridgeEvent::Frame(frame));
            }
            Ok(BridgeMessage::Status(status)) => {
                self.report.statuses = self.report.statuses.saturating_add(1);
                self.report.last_status = Some(status.clone());
                events.push(BridgeEvent::Status(status));
            }
            Err(e) => {
                self.report.garbage.count(&e);
                events.push(BridgeEvent::Garbage(e));
            }
        }
    }
}

/// A PUB bound where a bridge would be: a fake bridge, or the other end of a test.
pub struct BridgePublisher {
    socket: zmq::Socket,
    endpoint: String,
}

impl BridgePublisher {
    /// Binds `endpoint`, loopback only; `tcp://127.0.0.1:*` picks a free port
    /// ([`endpoint`](Self::endpoint) says which).
    pub fn bind(ctx: &zmq::Context, endpoint: &str) -> Result<Self, BridgeError> {
        Self::bind_with(ctx, endpoint, BindPolicy::LoopbackOnly)
    }

    /// Binds `endpoint` under `policy`: a non-loopback endpoint is refused unless the policy
    /// allows it, and then a warning goes to stderr.
    pub fn bind_with(
        ctx: &zmq::Context,
        endpoint: &str,
        policy: BindPolicy,
    ) -> Result<Self, BridgeError> {
        if let Some(warning) = check_bind(endpoint, Role::Bridge, policy)? {
            eprintln!("{warning}");
        }
        let socket = Self::socket(ctx, endpoint)?;
        socket.bind(endpoint).map_err(|source| BridgeError::Bind {
            endpoint: endpoint.to_string(),
            source,
        })?;
        Ok(Self::from_bound(socket, endpoint))
    }

    /// The bridge's PUB socket, configured but not bound: for a caller that binds it itself
    /// (the runtime's CURVE server, `depthpilot_runtime::bridge_curve`), then hands it to
    /// [`from_bound`](Self::from_bound).
    pub fn socket(ctx: &zmq::Context, endpoint: &str) -> Result<zmq::Socket, BridgeError> {
        let socket = ctx
            .socket(zmq::PUB)
            .map_err(|source| socket_error(endpoint, "creating the PUB socket", source))?;
        socket
            .set_linger(0)
            .and_then(|()| socket.set_sndhwm(DEFAULT_RECEIVE_HWM))
            .map_err(|source| socket_error(endpoint, "configuring the PUB socket", source))?;
        Ok(socket)
    }

    /// A publisher on a socket from [`socket`](Self::socket) that the caller bound to
    /// `endpoint`.
    pub fn from_bound(socket: zmq::Socket, endpoint: &str) -> Self {
        let bound = match socket.get_last_endpoint() {
            Ok(Ok(bound)) => bound,
            _ => endpoint.to_string(),
        };
        Self {
            socket,
            endpoint: bound,
        }
    }

    /// The endpoint as bound (with the port the system chose, if it chose).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Publishes one frame ([`encode_frame`]). Never blocks: with no subscriber, or a full
    /// queue, ZMQ drops it.
    pub fn send(
        &self,
        header: &FrameHeader,
        depth_mm: &[u16],
        ir: Option<&[u16]>,
    ) -> Result<(), BridgeError> {
        self.send_raw(encode_frame(header, depth_mm, ir))
    }

    pub fn send_status(&self, status: &StatusMsg) -> Result<(), BridgeError> {
        self.send_raw(encode_status(status))
    }

    /// Publishes any parts as they are (to send garbage on purpose).
    pub fn send_raw(&self, parts: Vec<Vec<u8>>) -> Result<(), BridgeError> {
        self.socket
            .send_multipart(parts, zmq::DONTWAIT)
            .map_err(|source| socket_error(&self.endpoint, "sending", source))
    }
}

fn socket_error(endpoint: &str, action: &'static str, source: zmq::Error) -> BridgeError {
    BridgeError::Socket {
        endpoint: endpoint.to_string(),
        action,
        source,
    }
}

#[cfg(test)]
mod tests;
