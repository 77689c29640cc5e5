//! CURVE for remote links (issue 20, item 2): keys, per-role allow-lists, a ZAP handler and an
//! authentication-failure monitor.
//!
//! libzmq is built with libsodium (the vendored `zmq-sys` of `vendor/zmq-sys`), so
//! `zmq::has("curve")` is true. A server socket ([`make_server`]) uses CURVE with the server's
//! secret key and sets its ZAP domain to its role ([`zap_domain`]). Every CURVE handshake then
//! asks the ZAP handler ([`ZapHandler`], ZAP 1.0 on `inproc://zeromq.zap.01` of the same
//! context) whether the client's public key is in *that role's* allow-list: a key allowed for
//! the bus is denied on the teacher input. Denials are printed (stderr) and counted
//! ([`AuthCounts`]); an [`AuthMonitor`] on a socket prints and counts every failed handshake
//! (a denied key, a client without CURVE, a wrong server key). What libzmq does then, as
//! measured here: a client whose key ZAP denied gets the server's ERROR and is not reconnected;
//! a client without CURVE (NULL) is reconnected a few times (7–23 attempts) and then stops; a
//! client holding a wrong server key is retried every 100 ms. Every attempt is printed and
//! counted, so nothing is retried silently, and none gets a message through.
//!
//! [`CurveServer`] serves one socket and refuses an empty allow-list (`teach --keys`);
//! [`CurveServers`] serves the sockets of one context under one handler and only warns about an
//! empty allow-list (the flight's own endpoints and the parameter / LED servers).
//!
//! Key files (written by `depthpilot keygen`): `NAME.pub` holds the public key and `NAME.key`
//! the secret key (mode 0600), each as one line of Z85 (40 characters, ZMQ RFC 32). A keys
//! directory for a server is laid out as
//! - `server.key`, `server.pub`: the server's key pair (clients need `server.pub`);
//! - `allow/<domain>/<client>.pub`: the clients each role accepts, one public key per file; the
//!   file's stem is the client's name (the ZAP user id, printed in messages). Domains:
//!   `teacher`, `bus`, `param`, `led`, `bridge`, `state`, `detector`, `setpoints`, `cfzmq`.

use crate::RuntimeError;
use depthpilot_types::netpolicy::Role;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where libzmq sends ZAP requests (RFC 27), per context.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
/// A CURVE key in Z85: 32 bytes → 40 characters.
pub const KEY_Z85_LEN: usize = 40;
/// How often the handler and monitor threads look at their stop flag.
const POLL_MS: i64 = 50;

const Z85: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// The ZAP domain (and allow-list directory) of a socket role.
pub fn zap_domain(role: Role) -> &'static str {
    match role {
        Role::Teacher => "teacher",
        Role::Measurements | Role::Truth => "bus",
        Role::Param => "param",
        Role::Led => "led",
        Role::Bridge => "bridge",
        Role::State => "state",
        Role::Detector => "detector",
        Role::SetPoints => "setpoints",
        Role::CfZmq => "cfzmq",
    }
}

/// Every ZAP domain, in [`zap_domain`]'s order.
pub const DOMAINS: [&str; 9] = [
    "teacher",
    "bus",
    "param",
    "led",
    "bridge",
    "state",
    "detector",
    "setpoints",
    "cfzmq",
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{}: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} exists: refusing to overwrite it (pass --force)", path.display())]
    Exists { path: PathBuf },
    #[error(
        "bad key name `{0}`: use letters, digits, `-`, `_` and `.`, not starting with `.` \
         (e.g. vision-host)"
    )]
    BadName(String),
    #[error("cannot make a CURVE key pair: {0}")]
    Zmq(#[from] zmq::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Z85-encodes 32 bytes (ZMQ RFC 32).
pub fn z85_encode(bytes: &[u8; 32]) -> String {
    let mut out = String::with_capacity(KEY_Z85_LEN);
    for chunk in bytes.chunks_exact(4) {
        let mut v = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut five = [0u8; 5];
        for c in five.iter_mut().rev() {
            *c = Z85[(v % 85) as usize];
            v /= 85;
        }
        out.extend(five.iter().map(|&c| c as char));
    }
    out
}

/// Decodes a 40-character Z85 key, strictly: the length, every character and every group's
/// value are checked (libzmq's own decoder accepts garbage).
pub fn z85_decode(text: &str) -> Result<[u8; 32], String> {
    let bytes = text.as_bytes();
    if bytes.len() != KEY_Z85_LEN {
        return Err(format!(
            "a CURVE key is {KEY_Z85_LEN} Z85 characters, this is {}",
            text.chars().count()
        ));
    }
    let mut out = [0u8; 32];
    for (i, group) in bytes.chunks_exact(5).enumerate() {
        let mut v: u64 = 0;
        for &c in group {
            let Some(digit) = Z85.iter().position(|&z| z == c) else {
                return Err(format!(
                    "`{}` is not a Z85 character",
                    (c as char).escape_default()
                ));
            };
            v = v * 85 + digit as u64;
        }
        let v = u32::try_from(v).map_err(|_| format!("Z85 group {} overflows", i + 1))?;
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    Ok(out)
}

/// A CURVE public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// A CURVE secret key (its `Debug` does not show it).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&z85_encode(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Reads one Z85 key from a file (surrounding whitespace ignored).
fn read_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    z85_decode(text.trim()).map_err(|reason| KeyError::Bad {
        path: path.to_path_buf(),
        reason,
    })
}

impl PublicKey {
    /// Reads `DIR/NAME.pub` (e.g. a client's copy of `server.pub`).
    pub fn load(dir: &Path, name: &str) -> Result<Self, KeyError> {
        Ok(PublicKey(read_key(&dir.join(format!("{name}.pub")))?))
    }
}

/// A CURVE key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    pub public: PublicKey,
    pub secret: SecretKey,
}

impl KeyPair {
    /// A new random key pair (libzmq's `zmq_curve_keypair`, libsodium's random source).
    pub fn generate() -> Result<Self, KeyError> {
        let pair = zmq::CurveKeyPair::new()?;
        Ok(KeyPair {
            public: PublicKey(pair.public_key),
            secret: SecretKey(pair.secret_key),
        })
    }

    /// Reads `DIR/NAME.pub` and `DIR/NAME.key`.
    pub fn load(dir: &Path, name: &str) -> Result<Self, KeyError> {
        Ok(KeyPair {
            public: PublicKey(read_key(&dir.join(format!("{name}.pub")))?),
            secret: SecretKey(read_key(&dir.join(format!("{name}.key")))?),
        })
    }
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_string()))
    }
}

/// Writes a new key pair as `DIR/NAME.key` (secret; created with mode 0600, so never readable
/// by others even for a moment) and `DIR/NAME.pub` (0644), creating `DIR` (0700). Refuses when either
/// file exists unless `force` (then the old files are removed first, never rewritten in place,
/// so an old file's looser mode is not kept). Returns the (secret, public) paths.
pub fn write_keypair(
    dir: &Path,
    name: &str,
    force: bool,
) -> Result<(PathBuf, PathBuf, KeyPair), KeyError> {
    check_name(name)?;
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for path in [&secret_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            if !force {
                return Err(KeyError::Exists { path: path.clone() });
            }
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
    }
    // A new directory is the owner's alone (an existing one is left as it is).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let pair = KeyPair::generate()?;
    let write = |path: &Path, mode: u32, key: &[u8; 32]| -> Result<(), KeyError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(io_err(path))?;
        // The umask may only have narrowed `mode`; state it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_err(path))?;
        writeln!(file, "{}", z85_encode(key)).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))
    };
    write(&secret_path, 0o600, &pair.secret.0)?;
    write(&public_path, 0o644, &pair.public.0)?;
    Ok((secret_path, public_path, pair))
}

/// The client keys each ZAP domain accepts, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    by_domain: BTreeMap<String, BTreeMap<PublicKey, String>>,
}

impl AllowList {
    /// Accepts `key` (named `name`) in `domain`.
    pub fn allow(&mut self, domain: &str, name: &str, key: PublicKey) {
        self.by_domain
            .entry(domain.to_string())
            .or_default()
            .insert(key, name.to_string());
    }

    /// The name of `key` if `domain` accepts it.
    pub fn lookup(&self, domain: &str, key: &PublicKey) -> Option<&str> {
        self.by_domain.get(domain)?.get(key).map(String::as_str)
    }

    /// How many keys `domain` accepts.
    pub fn len(&self, domain: &str) -> usize {
        self.by_domain.get(domain).map_or(0, BTreeMap::len)
    }

    /// Reads `DIR/<domain>/*.pub` for every domain of [`DOMAINS`] (a missing domain directory
    /// accepts no one). Anything else in `DIR` or a domain directory is an error naming it (a
    /// misspelt domain would otherwise silently deny its clients), as is a bad key.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let mut list = AllowList::default();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let path = entry.map_err(io_err(dir))?.path();
            let domain = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !DOMAINS.contains(&domain) || !path.is_dir() {
                return Err(KeyError::Bad {
                    path,
                    reason: format!(
                        "not a role's allow-list directory (expected one of: {})",
                        DOMAINS.join(", ")
                    ),
                });
            }
            let domain = domain.to_string();
            for entry in std::fs::read_dir(&path).map_err(io_err(&path))? {
                let file = entry.map_err(io_err(&path))?.path();
                let name = match (
                    file.extension().and_then(|e| e.to_str()),
                    file.file_stem().and_then(|s| s.to_str()),
                ) {
                    (Some("pub"), Some(stem)) if check_name(stem).is_ok() => stem.to_string(),
                    _ => {
                        return Err(KeyError::Bad {
                            path: file,
                            reason: "not a client's public key (expected NAME.pub)".into(),
                        });
                    }
                };
                let key = PublicKey(read_key(&file)?);
                list.allow(&domain, &name, key);
            }
        }
        Ok(list)
    }
}

/// A server's keys: its key pair and who may connect to each role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeys {
    pub server: KeyPair,
    pub allow: AllowList,
}

impl ServerKeys {
    /// Reads `DIR/server.{key,pub}` and `DIR/allow/` (see the module's documentation).
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        Ok(ServerKeys {
            server: KeyPair::load(dir, "server")?,
            allow: AllowList::load(&dir.join("allow"))?,
        })
    }
}

/// Makes `socket` a CURVE server for `role`: its handshakes are checked against `role`'s
/// allow-list by the context's [`ZapHandler`]. Call before bind.
pub fn make_server(socket: &zmq::Socket, role: Role, server: &KeyPair) -> Result<(), zmq::Error> {
    socket.set_zap_domain(zap_domain(role))?;
    socket.set_curve_server(true)?;
    socket.set_curve_secretkey(&server.secret.0)
}

/// Makes `socket` a CURVE client of the server whose public key is `server`. Call before
/// connect.
pub fn make_client(
    socket: &zmq::Socket,
    server: &PublicKey,
    client: &KeyPair,
) -> Result<(), zmq::Error> {
    socket.set_curve_serverkey(&server.0)?;
    socket.set_curve_publickey(&client.public.0)?;
    socket.set_curve_secretkey(&client.secret.0)
}

/// Authentication counts of one ZAP domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DomainCounts {
    /// Handshakes the ZAP handler accepted.
    pub accepted: u64,
    /// Handshakes the ZAP handler denied (unknown key, key of another role, not CURVE).
    pub denied: u64,
    /// Failed handshakes an [`AuthMonitor`] saw on a socket of this domain (denials, and
    /// clients that could not even ask: no CURVE, a wrong server key).
    pub handshake_failures: u64,
}

/// Authentication counts per ZAP domain, shared by the handler and the monitors.
#[derive(Debug, Default)]
pub struct AuthCounts {
    by_domain: Mutex<BTreeMap<String, DomainCounts>>,
}

impl AuthCounts {
    /// The counts of `domain` (zero if never seen).
    pub fn get(&self, domain: &str) -> DomainCounts {
        self.by_domain
            .lock()
            .map(|m| m.get(domain).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    fn bump(&self, domain: &str, f: impl FnOnce(&mut DomainCounts)) {
        if let Ok(mut m) = self.by_domain.lock() {
            f(m.entry(domain.to_string()).or_default());
        }
    }
}

/// A background thread stopped (and joined) on drop.
struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panicked worker has already printed its panic; nothing more to do here.
            let _ = t.join();
        }
    }
}

/// Runs `step` on `socket` whenever it has a message, until `stop` (or `step` returns false or
/// the context ends).
fn spawn_worker(
    name: &str,
    socket: zmq::Socket,
    mut step: impl FnMut(&zmq::Socket) -> bool + Send + 'static,
) -> Result<Worker, std::io::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match socket.poll(zmq::POLLIN, POLL_MS) {
                    Ok(0) => {}
                    Ok(_) => {
                        if !step(&socket) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        })?;
    Ok(Worker {
        stop,
        thread: Some(thread),
    })
}

/// The ZAP 1.0 handler of one context: answers every CURVE handshake of the context's server
/// sockets from the per-domain allow-list. Stops on drop.
pub struct ZapHandler {
    counts: Arc<AuthCounts>,
    _worker: Worker,
}

/// ZAP reply frames for a request (RFC 27), counting and reporting the decision.
fn zap_reply(allow: &AllowList, counts: &AuthCounts, request: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let text = |i: usize| {
        request
            .get(i)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default()
    };
    let request_id = request.get(1).cloned().unwrap_or_default();
    let reply = |status: &str, why: &str, user: &str| {
        vec![
            b"1.0".to_vec(),
            request_id.clone(),
            status.as_bytes().to_vec(),
            why.as_bytes().to_vec(),
            user.as_bytes().to_vec(),
            Vec::new(),
        ]
    };
    if request.len() < 6 || request[0] != b"1.0" {
        eprintln!(
            "depthpilot: CURVE: malformed ZAP request ({} frames)",
            request.len()
        );
        return reply("500", "malformed ZAP request", "");
    }
    let (domain, address, mechanism) = (text(2), text(3), text(5));
    let key = match (mechanism.as_str(), request.get(6)) {
        ("CURVE", Some(k)) => <[u8; 32]>::try_from(k.as_slice()).ok().map(PublicKey),
        _ => None,
    };
    let Some(key) = key else {
        counts.bump(&domain, |c| c.denied += 1);
        eprintln!(
            "depthpilot: CURVE: denied a {mechanism} client at {address} on the `{domain}` \
             role: only CURVE clients are accepted"
        );
        return reply("400", "CURVE required", "");
    };
    match allow.lookup(&domain, &key) {
        Some(name) => {
            counts.bump(&domain, |c| c.accepted += 1);
            reply("200", "OK", name)
        }
        None => {
            counts.bump(&domain, |c| c.denied += 1);
            eprintln!(
                "depthpilot: CURVE: denied client key {key} at {address} on the `{domain}` \
                 role: not in its allow-list (keys/allow/{domain}/)"
            );
            reply("400", "key not allowed for this role", "")
        }
    }
}

impl ZapHandler {
    /// Binds the handler in `ctx` (one per context; a second one fails with "address in use")
    /// and starts its thread. Start it before the server sockets handshake.
    pub fn start(ctx: &zmq::Context, allow: AllowList) -> Result<Self, RuntimeError> {
        let socket = ctx.socket(zmq::REP)?;
        socket.set_linger(0)?;
        socket
            .bind(ZAP_ENDPOINT)
            .map_err(|source| RuntimeError::Bind {
                kind: "ZAP REP",
                endpoint: ZAP_ENDPOINT.to_string(),
                source,
            })?;
        let counts = Arc::new(AuthCounts::default());
        let c = counts.clone();
        let worker = spawn_worker("zap-handler", socket, move |s| {
            let Ok(request) = s.recv_multipart(0) else {
                return false;
            };
            s.send_multipart(zap_reply(&allow, &c, &request), 0).is_ok()
        })
        .map_err(|e| RuntimeError::Setup(format!("cannot start the ZAP handler: {e}")))?;
        Ok(ZapHandler {
            counts,
            _worker: worker,
        })
    }

    /// The counts the handler (and monitors given them) keep.
    pub fn counts(&self) -> Arc<AuthCounts> {
        self.counts.clone()
    }
}

/// Reports (stderr) and counts every failed handshake on one socket. Stops on drop, or when
/// the socket closes.
pub struct AuthMonitor {
    _worker: Worker,
}

static MONITORS: AtomicU64 = AtomicU64::new(0);

impl AuthMonitor {
    /// Monitors `socket` (of `role`, in `ctx`); counts go to `counts` under `role`'s domain.
    /// Call before bind or connect, so that no handshake is missed.
    pub fn start(
        ctx: &zmq::Context,
        socket: &zmq::Socket,
        role: Role,
        counts: Arc<AuthCounts>,
    ) -> Result<Self, RuntimeError> {
        let endpoint = format!(
            "inproc://depthpilot-auth-monitor-{}-{}",
            std::process::id(),
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::HANDSHAKE_FAILED_AUTH.to_raw()
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL.to_raw()
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL.to_raw()
            | zmq::SocketEvent::MONITOR_STOPPED.to_raw();
        socket.monitor(&endpoint, i32::from(events))?;
        let pair = ctx.socket(zmq::PAIR)?;
        pair.set_linger(0)?;
        pair.connect(&endpoint)
            .map_err(|source| RuntimeError::Connect {
                kind: "monitor PAIR",
                endpoint: endpoint.clone(),
                source,
            })?;
        let domain = zap_domain(role);
        let side = if socket.is_curve_server()? {
            "server socket at"
        } else {
            "client socket to"
        };
        let worker = spawn_worker("auth-monitor", pair, move |s| {
            let Ok(frames) = s.recv_multipart(0) else {
                return false;
            };
            let Some(head) = frames.first().filter(|f| f.len() >= 6) else {
                return true;
            };
            let event = u16::from_le_bytes([head[0], head[1]]);
            let value = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
            let at = frames
                .get(1)
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .unwrap_or_default();
            let what = match zmq::SocketEvent::from_raw(event) {
                zmq::SocketEvent::MONITOR_STOPPED => return false,
                zmq::SocketEvent::HANDSHAKE_FAILED_AUTH => {
                    format!("authentication failed (ZAP status {value})")
                }
                zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL => match value {
                    // ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH (zmq.h)
                    0x1100_0002 => "the peer does not use CURVE (mechanism mismatch)".into(),
                    // ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
                    0x1100_0001 => {
                        "cryptographic error (the client has the wrong server key?)".into()
                    }
                    _ => format!("protocol error {value:#x} (ZMQ_PROTOCOL_ERROR_* in zmq.h)"),
                },
                _ => format!(
                    "the connection ended during the handshake ({}; refused by the server?)",
                    std::io::Error::from_raw_os_error(i32::try_from(value).unwrap_or(0))
                ),
            };
            counts.bump(domain, |c| c.handshake_failures += 1);
            eprintln!("depthpilot: CURVE: {role} {side} {at}: handshake failed: {what}");
            true
        })
        .map_err(|e| RuntimeError::Setup(format!("cannot start an auth monitor: {e}")))?;
        Ok(AuthMonitor { _worker: worker })
    }
}

/// What keeps one CURVE server socket authenticated: its context's [`ZapHandler`] and the
/// socket's [`AuthMonitor`]. Keep it as long as the socket.
pub struct CurveServer {
    domain: &'static str,
    zap: ZapHandler,
    _monitor: AuthMonitor,
}

impl CurveServer {
    /// Makes `socket` (of `ctx`, a context of its own: the ZAP handler is per context) a CURVE
    /// server for `role` with `keys`, starts its ZAP handler and monitor, and binds it (a ZMQ
    /// `kind`) to `endpoint`. A non-loopback endpoint needs no `--insecure`: every peer must
    /// hold a key on `role`'s allow-list, and the link is encrypted. Refuses an empty
    /// allow-list (nobody could connect) and names a malformed endpoint.
    pub fn bind(
        ctx: &zmq::Context,
        socket: &zmq::Socket,
        kind: &'static str,
        role: Role,
        endpoint: &str,
        keys: &ServerKeys,
    ) -> Result<Self, RuntimeError> {
        depthpilot_types::netpolicy::classify(endpoint)?;
        let domain = zap_domain(role);
        let allowed = keys.allow.len(domain);
        if allowed == 0 {
            return Err(RuntimeError::Setup(format!(
                "the {role} socket has CURVE keys but no client may connect: its allow-list \
                 (allow/{domain}/ in the keys directory) is empty; copy a client's .pub there \
                 (`depthpilot keygen` makes one)"
            )));
        }
        let zap = ZapHandler::start(ctx, keys.allow.clone())?;
        make_server(socket, role, &keys.server)?;
        let monitor = AuthMonitor::start(ctx, socket, role, zap.counts())?;
        socket.bind(endpoint).map_err(|source| RuntimeError::Bind {
            kind,
            endpoint: endpoint.to_string(),
            source,
        })?;
        eprintln!(
            "depthpilot: the {role} socket is bound to `{endpoint}` with CURVE: {allowed} \
             client key(s) allowed (allow/{domain}/), server key {}",
            keys.server.public
        );
        Ok(CurveServer {
            domain,
            zap,
            _monitor: monitor,
        })
    }

    /// This socket's authentication counts.
    pub fn counts(&self) -> DomainCounts {
        self.zap.counts().get(self.domain)
    }
}

/// The CURVE server sockets of one ZMQ context (issue 20: the parameter and LED servers, the
/// flight's state PUB, the teacher inside a flight): the context's one [`ZapHandler`] and a
/// [`AuthMonitor`] per socket. Unlike [`CurveServer::bind`], an empty allow-list is not an
/// error: it is said at start (a `WARNING` naming the role and its `allow/<domain>/`), and the
/// socket is bound anyway, refusing every client. Keep it as long as the sockets.
pub struct CurveServers {
    zap: ZapHandler,
    keys: ServerKeys,
    monitors: Vec<AuthMonitor>,
    domains: Vec<&'static str>,
}

impl CurveServers {
    /// Starts the ZAP handler of `ctx` (a context whose other sockets are not CURVE servers
    /// of another allow-list: the handler is per context) with `keys`' allow-lists.
    pub fn start(ctx: &zmq::Context, keys: &ServerKeys) -> Result<Self, RuntimeError> {
        Ok(CurveServers {
            zap: ZapHandler::start(ctx, keys.allow.clone())?,
            keys: keys.clone(),
            monitors: Vec::new(),
            domains: Vec::new(),
        })
    }

    /// Makes `socket` (of the context given to [`CurveServers::start`]) a CURVE server for
    /// `role`, monitors it and binds it (a ZMQ `kind`) to `endpoint`. Any endpoint, loopback or
    /// not, without `--insecure`; a malformed one is named.
    pub fn bind(
        &mut self,
        ctx: &zmq::Context,
        socket: &zmq::Socket,
        kind: &'static str,
        role: Role,
        endpoint: &str,
    ) -> Result<(), RuntimeError> {
        depthpilot_types::netpolicy::classify(endpoint)?;
        let domain = zap_domain(role);
        make_server(socket, role, &self.keys.server)?;
        self.monitors
            .push(AuthMonitor::start(ctx, socket, role, self.zap.counts())?);
        socket.bind(endpoint).map_err(|source| RuntimeError::Bind {
            kind,
            endpoint: endpoint.to_string(),
            source,
        })?;
        if !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
        match self.keys.allow.len(domain) {
            0 => eprintln!(
                "depthpilot: WARNING: the {role} socket `{endpoint}` has CURVE keys but no client \
                 may connect: its allow-list (allow/{domain}/ in the keys directory) is empty, so \
                 it refuses everyone; copy a client's .pub there (`depthpilot keygen`)"
            ),
            allowed => eprintln!(
                "depthpilot: the {role} socket is bound to `{endpoint}` with CURVE: {allowed} \
                 client key(s) allowed (allow/{domain}/), server key {}",
                self.keys.server.public
            ),
        }
        Ok(())
    }

    /// The authentication counts of `role`'s domain.
    pub fn counts(&self, role: Role) -> DomainCounts {
        self.zap.counts().get(zap_domain(role))
    }

    /// The counts of every domain bound so far, by domain (in bind order).
    pub fn all_counts(&self) -> Vec<(&'static str, DomainCounts)> {
        let counts = self.zap.counts();
        self.domains.iter().map(|d| (*d, counts.get(d))).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn temp_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("depthpilot-curve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// The acceptance line of the issue: this build's libzmq has CURVE (libsodium).
    #[test]
    fn libzmq_has_curve() {
        assert_eq!(zmq::has("curve"), Some(true));
        KeyPair::generate().expect("zmq_curve_keypair works only with CURVE");
    }

    #[test]
    fn z85_round_trip_and_garbage() {
        for _ in 0..20 {
            let pair = KeyPair::generate().expect("keypair");
            let text = z85_encode(&pair.public.0);
            assert_eq!(text.len(), KEY_Z85_LEN);
            // Same encoding as libzmq's.
            assert_eq!(zmq::z85_encode(&pair.public.0).expect("z85"), text);
            assert_eq!(z85_decode(&text), Ok(pair.public.0));
        }
        // RFC 32's test vector.
        let mut v = [0u8; 32];
        v[..8].copy_from_slice(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]);
        assert!(z85_encode(&v).starts_with("HelloWorld"));
        for (bad, why) in [
            (String::new(), "40 Z85 characters"),
            ("HelloWorld".into(), "40 Z85 characters"),
            (
                format!("HelloWorld\"{}", "0".repeat(29)),
                "not a Z85 character",
            ),
            (format!("#####{}", "0".repeat(36)), "40 Z85 characters"),
            (format!("#####{}", "0".repeat(35)), "overflows"),
        ] {
            let e = z85_decode(&bad).expect_err(&bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn keygen_writes_modes_and_refuses_to_overwrite() {
        let dir = temp_dir("keygen").join("sub");
        let (secret, public, pair) = write_keypair(&dir, "vision", false).expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&secret), 0o600);
        assert_eq!(mode(&public), 0o644);
        assert_eq!(KeyPair::load(&dir, "vision").expect("load"), pair);
        // Refused without --force, and the old key is untouched.
        let e = write_keypair(&dir, "vision", false).expect_err("exists");
        assert!(matches!(e, KeyError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(KeyPair::load(&dir, "vision").expect("load"), pair);
        // Forced over a secret file someone made world-readable: the new one is 0600 again.
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (_, _, new) = write_keypair(&dir, "vision", true).expect("force");
        assert_ne!(new, pair);
        assert_eq!(mode(&secret), 0o600);
        for bad in ["", ".hidden", "a/b", "../x", "sp ace"] {
            let e = write_keypair(&dir, bad, false).expect_err(bad);
            assert!(matches!(e, KeyError::BadName(_)), "{bad}: {e}");
        }
        let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
    }

    #[test]
    fn allow_list_loads_per_role_and_names_garbage() {
        let dir = temp_dir("allow");
        let (secret, public, vision) =
            write_keypair(&dir.join("clients"), "vision", false).expect("write");
        std::fs::create_dir_all(dir.join("allow/bus")).expect("mkdir");
        std::fs::copy(&public, dir.join("allow/bus/vision.pub")).expect("copy");
        let e = ServerKeys::load(&dir).expect_err("no server key yet");
        assert!(e.to_string().contains("server.pub"), "{e}");
        write_keypair(&dir, "server", false).expect("server");
        let keys = ServerKeys::load(&dir).expect("load");
        assert_eq!(keys.allow.lookup("bus", &vision.public), Some("vision"));
        assert_eq!(keys.allow.lookup("teacher", &vision.public), None);
        assert_eq!(keys.allow.len("bus"), 1);
        // A secret key copied into an allow-list by mistake is named, not read.
        std::fs::copy(&secret, dir.join("allow/bus/vision.key")).expect("copy");
        let e = AllowList::load(&dir.join("allow")).expect_err("secret key");
        assert!(e.to_string().contains("vision.key"), "{e}");
        std::fs::remove_file(dir.join("allow/bus/vision.key")).expect("rm");
        // A misspelt role is named, with the right spellings.
        std::fs::create_dir_all(dir.join("allow/teachr")).expect("mkdir");
        let e = AllowList::load(&dir.join("allow")).expect_err("misspelt role");
        assert!(e.to_string().contains("teachr"), "{e}");
        assert!(e.to_string().contains("teacher"), "{e}");
        std::fs::remove_dir(dir.join("allow/teachr")).expect("rmdir");
        std::fs::write(dir.join("allow/bus/junk.pub"), "not a key\n").expect("write");
        let e = AllowList::load(&dir.join("allow")).expect_err("junk");
        assert!(e.to_string().contains("junk.pub"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Polls `ok` every 10 ms until it holds; fails the test naming `what` after 5 s.
    pub(crate) fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let start = Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Over real TCP on 127.0.0.1: the teacher role takes its own key only; the bus key, an
    /// unknown key and a client without CURVE get nothing through, and each is counted.
    #[test]
    fn zap_handler_checks_each_role_over_tcp() {
        let ctx = zmq::Context::new();
        let server = KeyPair::generate().expect("server");
        let pilot = KeyPair::generate().expect("pilot");
        let vision = KeyPair::generate().expect("vision");
        let stranger = KeyPair::generate().expect("stranger");
        let mut allow = AllowList::default();
        allow.allow("teacher", "pilot", pilot.public);
        allow.allow("bus", "vision", vision.public);
        let zap = ZapHandler::start(&ctx, allow.clone()).expect("zap");
        assert!(ZapHandler::start(&ctx, allow).is_err(), "one per context");
        let counts = zap.counts();

        let pull = ctx.socket(zmq::PULL).expect("pull");
        pull.set_linger(0).expect("linger");
        make_server(&pull, Role::Teacher, &server).expect("server");
        let _monitor = AuthMonitor::start(&ctx, &pull, Role::Teacher, counts.clone()).expect("m");
        pull.bind("tcp://127.0.0.1:*").expect("bind");
        let endpoint = pull.get_last_endpoint().expect("endpoint").expect("utf-8");
        let push = |client: Option<&KeyPair>, server_key: &PublicKey| {
            let s = ctx.socket(zmq::PUSH).expect("push");
            s.set_linger(0).expect("linger");
            if let Some(c) = client {
                make_client(&s, server_key, c).expect("client");
            }
            s.connect(&endpoint).expect("connect");
            s
        };
        let recv = |ms: i64| {
            (pull.poll(zmq::POLLIN, ms).expect("poll") > 0)
                .then(|| pull.recv_bytes(0).expect("recv"))
        };

        // The allowed key: its message arrives, user id "pilot".
        let ok = push(Some(&pilot), &server.public);
        ok.send("from pilot", 0).expect("send");
        assert_eq!(recv(5000).as_deref(), Some(&b"from pilot"[..]));
        assert_eq!(counts.get("teacher").accepted, 1);

        // Denied: a key allowed for another role, an unknown key, no CURVE at all, the right
        // key with a wrong server key.
        let cases: [(&str, Option<&KeyPair>, PublicKey, bool); 4] = [
            ("the bus's key", Some(&vision), server.public, true),
            ("an unknown key", Some(&stranger), server.public, true),
            ("a NULL client", None, server.public, false),
            ("a wrong server key", Some(&pilot), stranger.public, false),
        ];
        let client_counts = Arc::new(AuthCounts::default());
        let mut denied = Vec::new();
        for (what, client, server_key, asks_zap) in cases {
            let before = counts.get("teacher");
            let s = push(client, &server_key);
            let m = AuthMonitor::start(&ctx, &s, Role::Teacher, client_counts.clone());
            // Queued, or refused at once if the denied handshake already dropped the pipe.
            match s.send(what, zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::EAGAIN) => {}
                Err(e) => panic!("{what}: {e}"),
            }
            wait_for(what, || {
                counts.get("teacher").handshake_failures > before.handshake_failures
            });
            let after = counts.get("teacher");
            assert_eq!(after.denied, before.denied + u64::from(asks_zap), "{what}");
            assert_eq!(after.accepted, before.accepted, "{what}");
            assert_eq!(recv(300), None, "{what} got a message through");
            denied.push((s, m));
        }
        // The clients saw it too (ZAP's ERROR reaches the two denied keys), and libzmq does
        // not retry a denied client behind our back: no new ZAP request.
        assert!(client_counts.get("teacher").handshake_failures >= 2);
        let denied_before = counts.get("teacher").denied;
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            counts.get("teacher").denied,
            denied_before,
            "a denied client retried"
        );
        drop(denied);
        // The allowed client still works.
        ok.send("again", 0).expect("send");
        assert_eq!(recv(5000).as_deref(), Some(&b"again"[..]));

        // The bus role takes the vision key.
        let sub = ctx.socket(zmq::PULL).expect("pull");
        sub.set_linger(0).expect("linger");
        make_server(&sub, Role::Measurements, &server).expect("server");
        sub.bind("tcp://127.0.0.1:*").expect("bind");
        let bus = sub.get_last_endpoint().expect("e").expect("utf-8");
        let v = ctx.socket(zmq::PUSH).expect("push");
        v.set_linger(0).expect("linger");
        make_client(&v, &server.public, &vision).expect("client");
        v.connect(&bus).expect("connect");
        v.send("measurement", 0).expect("send");
        assert_eq!(sub.poll(zmq::POLLIN, 5000).expect("poll"), 1);
        assert_eq!(counts.get("bus").accepted, 1);
    }

    /// The teacher input with CURVE: any interface without `--insecure`, its counts exposed,
    /// and only the teacher's key reaches the mux's input.
    #[test]
    fn the_teacher_input_binds_any_interface_with_curve() {
        let server = KeyPair::generate().expect("server");
        let pilot = KeyPair::generate().expect("pilot");
        let stranger = KeyPair::generate().expect("stranger");
        let mut allow = AllowList::default();
        allow.allow("teacher", "pilot", pilot.public);
        let keys = ServerKeys { server, allow };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut teacher = crate::ZmqTeacher::bind_curve(&format!("tcp://0.0.0.0:{port}"), &keys)
            .expect("CURVE needs no --insecure");
        assert_eq!(teacher.auth_counts(), Some(DomainCounts::default()));
        let ctx = zmq::Context::new();
        let send = |client: &KeyPair, roll: f64| {
            let s = ctx.socket(zmq::PUSH).expect("push");
            s.set_linger(0).expect("linger");
            make_client(&s, &keys.server.public, client).expect("client");
            s.connect(&format!("tcp://127.0.0.1:{port}"))
                .expect("connect");
            let msg = format!(r#"{{"version":1,"ctrl":{{"roll":{roll},"thrust":40.0}}}}"#);
            let _ = s.send(msg.as_str(), zmq::DONTWAIT);
            s
        };
        let _stranger = send(&stranger, -9.0);
        wait_for("the stranger is denied", || {
            teacher.auth_counts().is_some_and(|c| c.denied == 1)
        });
        let _pilot = send(&pilot, 5.0);
        wait_for("the pilot's message", || {
            teacher.poll(0).expect("poll");
            teacher.frame().is_some()
        });
        assert_eq!(teacher.stats.accepted, 1);
        let c = teacher.auth_counts().expect("CURVE");
        assert_eq!((c.accepted, c.denied), (1, 1));
        // Without keys, the same bind is refused (step 1's policy is unchanged).
        assert!(crate::ZmqTeacher::bind(&format!("tcp://0.0.0.0:{port}")).is_err());
    }

    #[test]
    fn zap_reply_handles_malformed_requests() {
        let counts = AuthCounts::default();
        let allow = AllowList::default();
        let r = zap_reply(&allow, &counts, &[b"2.0".to_vec(), b"7".to_vec()]);
        assert_eq!(r[0], b"1.0");
        assert_eq!(r[1], b"7");
        assert_eq!(r[2], b"500");
        let short_key: Vec<Vec<u8>> = ["1.0", "1", "teacher", "1.2.3.4", "", "CURVE", "abc"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let r = zap_reply(&allow, &counts, &short_key);
        assert_eq!(r[2], b"400");
        assert_eq!(counts.get("teacher").denied, 1);
    }
}
