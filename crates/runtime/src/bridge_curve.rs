//! CURVE on the Kinect bridge link (issue 20): the bridge's PUB is a CURVE server of the ZAP
//! domain `bridge` (`DIR/allow/bridge/*.pub`), and a [`BridgeClient`](depthpilot_camera::BridgeClient)
//! holding an allowed key is its client.
//!
//! Why here and not in `depthpilot-camera`: the key files, the ZAP handler and the monitor live
//! in [`crate::curve`], and the camera crate cannot depend on the runtime (the runtime depends
//! on it). So the camera crate takes what a socket needs: a client's three raw keys
//! ([`CurveClientKeys`] in its `BridgeConfig`), and an unbound PUB that the caller binds
//! ([`BridgePublisher::socket`], [`BridgePublisher::from_bound`]); this module loads the keys
//! and binds that PUB with [`CurveServer::bind`] (ZAP handler, monitor, an empty allow-list
//! refused). A subscriber without a key, or with a key allowed only on another role, gets no
//! frame; each denial and failed handshake is printed and counted
//! ([`BridgeServer::auth_counts`]).

use crate::RuntimeError;
use crate::curve::{CurveServer, DomainCounts, KeyError, KeyPair, PublicKey, ServerKeys};
use crate::netpolicy::{BindPolicy, Role};
use depthpilot_camera::{BridgePublisher, CurveClientKeys};
use std::path::Path;

/// The name of a bridge client's key pair in its keys directory when none is given.
pub const DEFAULT_CLIENT_KEY: &str = "vision";

/// The bridge's PUB socket: NULL (loopback unless `--insecure`) or, with keys, a CURVE server.
pub struct BridgeServer {
    publisher: BridgePublisher,
    curve: Option<CurveServer>,
}

impl BridgeServer {
    /// Binds the bridge's PUB at `endpoint` (in `ctx`, a context with no other CURVE server:
    /// the ZAP handler is per context). Without `keys`: [`BridgePublisher::bind_with`] under
    /// `policy`. With `keys`: a CURVE server of the `bridge` role, on any interface without
    /// `--insecure`; an empty `allow/bridge/` is refused.
    pub fn bind(
        ctx: &zmq::Context,
        endpoint: &str,
        policy: BindPolicy,
        keys: Option<&ServerKeys>,
    ) -> Result<Self, RuntimeError> {
        let Some(keys) = keys else {
            let publisher = BridgePublisher::bind_with(ctx, endpoint, policy)
                .map_err(|e| RuntimeError::Setup(e.to_string()))?;
            return Ok(Self {
                publisher,
                curve: None,
            });
        };
        let socket = BridgePublisher::socket(ctx, endpoint)
            .map_err(|e| RuntimeError::Setup(e.to_string()))?;
        let curve = CurveServer::bind(ctx, &socket, "PUB", Role::Bridge, endpoint, keys)?;
        Ok(Self {
            publisher: BridgePublisher::from_bound(socket, endpoint),
            curve: Some(curve),
        })
    }

    pub fn publisher(&self) -> &BridgePublisher {
        &self.publisher
    }

    /// With CURVE: the `bridge` role's handshake counts so far.
    pub fn auth_counts(&self) -> Option<DomainCounts> {
        self.curve.as_ref().map(CurveServer::counts)
    }
}

impl std::ops::Deref for BridgeServer {
    type Target = BridgePublisher;
    fn deref(&self) -> &BridgePublisher {
        &self.publisher
    }
}

/// A client's keys for [`BridgeConfig::curve`](depthpilot_camera::BridgeConfig::curve).
pub fn client_keys(server: &PublicKey, client: &KeyPair) -> CurveClientKeys {
    CurveClientKeys {
        server_public: server.0,
        client_public: client.public.0,
        client_secret: client.secret.0,
    }
}

/// Reads a bridge client's keys from `dir`: the bridge host's `server.pub` and this client's
/// `NAME.pub` and `NAME.key` (`depthpilot keygen --name NAME`).
pub fn load_client_keys(dir: &Path, name: &str) -> Result<CurveClientKeys, KeyError> {
    let server = PublicKey::load(dir, "server")?;
    let client = KeyPair::load(dir, name)?;
    Ok(client_keys(&server, &client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::AllowList;
    use crate::curve::tests::wait_for;
    use depthpilot_camera::{BridgeClient, BridgeConfig, BridgeEvent, FrameHeader};
    use depthpilot_types::scene::Intrinsics;
    use depthpilot_vision::{HEIGHT, WIDTH};
    use std::time::{Duration, Instant};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    fn frame(seq: u64) -> (FrameHeader, Vec<u16>) {
        let header = FrameHeader::kinect_v2(seq, seq * 33_333, 0, Intrinsics::KINECT_V2_DEVICE2);
        let depth = (0..WIDTH * HEIGHT)
            .map(|i| ((i as u64 + seq) % 4000) as u16 + 500)
            .collect();
        (header, depth)
    }

    /// Publishes a frame every 10 ms for `window` and returns the frames `client` got.
    fn frames_within(server: &BridgeServer, client: &mut BridgeClient, window: Duration) -> u64 {
        let end = Instant::now() + window;
        let mut seq = 0;
        let mut got = 0;
        while Instant::now() < end {
            seq += 1;
            let (h, d) = frame(seq);
            server.send(&h, &d, Some(&d)).expect("send");
            client.wait(Duration::from_millis(10)).expect("wait");
            got += client
                .poll(Instant::now())
                .expect("poll")
                .iter()
                .filter(|e| matches!(e, BridgeEvent::Frame(_)))
                .count() as u64;
        }
        got
    }

    /// Issue 20: a CURVE bridge bound on every interface (no --insecure) sends no frame to a
    /// subscriber without a key, nor to one whose key is allowed only on the bus (that denial
    /// is counted); a subscriber with a `bridge` key gets frames, IR included.
    #[test]
    fn only_a_bridge_key_gets_frames() {
        let server_keys = KeyPair::generate().expect("server");
        let vision = KeyPair::generate().expect("vision");
        let bus_only = KeyPair::generate().expect("bus");
        let mut allow = AllowList::default();
        allow.allow("bridge", "vision", vision.public);
        allow.allow("bus", "split-vision", bus_only.public);
        let keys = ServerKeys {
            server: server_keys.clone(),
            allow,
        };
        let port = free_port();
        let ctx = zmq::Context::new();
        let server = BridgeServer::bind(
            &ctx,
            &format!("tcp://0.0.0.0:{port}"),
            BindPolicy::LoopbackOnly,
            Some(&keys),
        )
        .expect("a CURVE bridge binds every interface without --insecure");
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let client_ctx = zmq::Context::new();
        let connect = |curve: Option<CurveClientKeys>| {
            let mut config = BridgeConfig::new(&endpoint);
            config.curve = curve;
            BridgeClient::connect(&client_ctx, &config).expect("connect")
        };

        // No key (NULL mechanism).
        let mut null = connect(None);
        assert_eq!(frames_within(&server, &mut null, Duration::from_secs(1)), 0);
        wait_for("the NULL client's failed handshake", || {
            server.auth_counts().expect("curve").handshake_failures >= 1
        });
        drop(null);

        // A key allowed on the bus, not on the bridge.
        let before = server.auth_counts().expect("curve");
        let mut wrong_role = connect(Some(client_keys(&server_keys.public, &bus_only)));
        assert_eq!(
            frames_within(&server, &mut wrong_role, Duration::from_secs(1)),
            0
        );
        wait_for("the bus key's denial", || {
            server.auth_counts().expect("curve").denied > before.denied
        });
        assert_eq!(server.auth_counts().expect("curve").accepted, 0);
        drop(wrong_role);

        // The bridge key.
        let mut allowed = connect(Some(client_keys(&server_keys.public, &vision)));
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while got < 5 && Instant::now() < deadline {
            got += frames_within(&server, &mut allowed, Duration::from_millis(100));
        }
        assert!(got >= 5, "the allowed client got {got} frames");
        let counts = server.auth_counts().expect("curve");
        assert_eq!(counts.accepted, 1, "{counts:?}");
        assert_eq!(allowed.report().garbage.total, 0);
    }

    /// An empty `allow/bridge/` is refused at bind, naming the directory.
    #[test]
    fn an_empty_bridge_allow_list_is_refused() {
        let mut allow = AllowList::default();
        allow.allow("bus", "v", KeyPair::generate().expect("k").public);
        let keys = ServerKeys {
            server: KeyPair::generate().expect("server"),
            allow,
        };
        let ctx = zmq::Context::new();
        let e = BridgeServer::bind(
            &ctx,
            "tcp://127.0.0.1:*",
            BindPolicy::LoopbackOnly,
            Some(&keys),
        )
        .err()
        .expect("refused");
        assert!(e.to_string().contains("allow/bridge/"), "{e}");
    }

    /// Without keys a non-loopback bind is still refused (NULL mechanism).
    #[test]
    fn without_keys_the_loopback_rule_holds() {
        let ctx = zmq::Context::new();
        let e = BridgeServer::bind(&ctx, "tcp://0.0.0.0:*", BindPolicy::LoopbackOnly, None)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("--insecure"), "{e}");
    }

    /// The client's keys come from `server.pub` and `NAME.{pub,key}`; a missing file is named.
    #[test]
    fn client_keys_load_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("dp-bridge-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (_, _, server) = crate::curve::write_keypair(&dir, "server", false).expect("server");
        let e = load_client_keys(&dir, "vision").expect_err("no vision key yet");
        assert!(e.to_string().contains("vision.pub"), "{e}");
        let (_, _, vision) = crate::curve::write_keypair(&dir, "vision", false).expect("vision");
        let k = load_client_keys(&dir, "vision").expect("load");
        assert_eq!(k, client_keys(&server.public, &vision));
        assert!(!format!("{k:?}").contains(&crate::curve::z85_encode(&vision.secret.0)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
