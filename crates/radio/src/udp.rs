//! CRTP over UDP, exactly as cflib 0.1.34's `cflib/crtp/udpdriver.py`: one raw CRTP packet
//! (header byte + 0–30 data bytes) per datagram, no handshake, no checksum, the socket
//! `connect`ed to `host:port`. Simulators (CrazySim, our SITL) answer from the same address.
//!
//! [`UdpConnection`] implements `crazyflie_link::ConnectionTrait` so that
//! `crazyflie_lib::Crazyflie::connect_from_link` works over UDP. It needs no runtime of its own:
//! like cflib's driver it receives on a plain thread, so it can be built outside tokio.
//!
//! Byte-level details: outgoing headers get link bits 3–2 set to `11`, as cflib's `CRTPPacket`
//! does (crazyflie-link leaves them 0); incoming null packets (port 15 channel 3, no data) are
//! dropped, as the radio link's ACK filter does. The UDP transport has no retransmission and
//! crazyflie-lib none at the request level: a lost datagram during the TOC fetch stalls the
//! connection until the caller's timeout.

use crate::LinkError;
use crate::uri::LinkUri;
use async_trait::async_trait;
use crazyflie_link::{Connection, ConnectionStatus, ConnectionTrait, Packet, RadioLinkStatistics};
use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// The ports cflib's udp driver scans (19850–19859).
pub const UDP_SCAN_PORTS: std::ops::Range<u16> = 19850..19860;
/// How long a scan waits for any answer (cflib's `_SCAN_TIMEOUT`).
pub const UDP_SCAN_TIMEOUT: Duration = Duration::from_millis(100);

const RECV_POLL: Duration = Duration::from_millis(100);
const LINK_BITS: u8 = 0b0000_1100;

/// State shared between the connection and its receive thread.
struct Shared {
    closed: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Shared {
    fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn close_with(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
        self.closed.store(true, Ordering::SeqCst);
    }
}

/// Why a UDP connection ended, readable after it was handed to crazyflie-lib.
#[derive(Clone)]
pub struct UdpCloseReason(Arc<Shared>);

impl UdpCloseReason {
    /// `None` while the connection is open.
    pub fn get(&self) -> Option<String> {
        self.0.reason()
    }
}

/// A CRTP link over one connected UDP socket.
pub struct UdpConnection {
    peer: SocketAddr,
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    downlink: tokio::sync::Mutex<mpsc::UnboundedReceiver<Packet>>,
    receiver_done: watch::Receiver<bool>,
}

impl UdpConnection {
    /// Opens `udp://host:port`: binds an ephemeral local port, connects it to the peer and
    /// starts the receive thread. Sends nothing (cflib's driver sends nothing either).
    pub fn open(uri: &str) -> Result<Self, LinkError> {
        let LinkUri::Udp { host, port } = LinkUri::parse(uri)? else {
            return Err(LinkError::bad_uri(uri, "not a udp:// URI"));
        };
        let peer = resolve(uri, &host, port)?;
        let io = |source| LinkError::Io {
            uri: uri.to_owned(),
            source,
        };
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(io)?;
        socket.connect(peer).map_err(io)?;
        socket.set_read_timeout(Some(RECV_POLL)).map_err(io)?;
        let socket = Arc::new(socket);
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            reason: Mutex::new(None),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(false);
        let thread_socket = socket.clone();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("udp-crtp-{peer}"))
            .spawn(move || receive_loop(&thread_socket, peer, &thread_shared, &tx, &done_tx))
            .map_err(io)?;
        Ok(Self {
            peer,
            socket,
            shared,
            downlink: tokio::sync::Mutex::new(rx),
            receiver_done: done_rx,
        })
    }

    /// The simulator's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// A handle that tells why the connection closed, usable after `self` was boxed.
    pub fn close_reason(&self) -> UdpCloseReason {
        UdpCloseReason(self.shared.clone())
    }

    fn link_closed() -> crazyflie_link::Error {
        // crazyflie_link::Error has no variant for "closed" that we can build without flume;
        // the reason is in `status()` / `wait_close()`.
        crazyflie_link::Error::Timeout
    }

    async fn wait_receiver_done(&self) {
        let mut done = self.receiver_done.clone();
        let _ = done.wait_for(|d| *d).await;
    }
}

fn resolve(uri: &str, host: &str, port: u16) -> Result<SocketAddr, LinkError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|source| LinkError::Io {
            uri: uri.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| LinkError::bad_uri(uri, format!("host `{host}` has no address")))
}

fn receive_loop(
    socket: &UdpSocket,
    peer: SocketAddr,
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Packet>,
    done: &watch::Sender<bool>,
) {
    let mut buf = [0u8; 1024];
    while !shared.closed.load(Ordering::SeqCst) {
        match socket.recv(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                let bytes = &buf[..n];
                let null = n == 1 && (bytes[0] & 0xF3) == 0xF3;
                if !null && tx.send(Packet::from(bytes.to_vec())).is_err() {
                    shared.close_with("the connection was dropped".to_owned());
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => shared.close_with(format!(
                "nothing answers at udp {peer} (connection refused): is the simulator running?"
            )),
            Err(e) => shared.close_with(format!("receiving from {peer}: {e}")),
        }
    }
    shared.close_with("closed by the host".to_owned());
    let _ = done.send(true);
}

#[async_trait]
impl ConnectionTrait for UdpConnection {
    async fn wait_close(&self) -> String {
        self.wait_receiver_done().await;
        self.shared.reason().unwrap_or_default()
    }

    async fn close(&self) {
        self.shared.close_with("closed by the host".to_owned());
        self.wait_receiver_done().await;
    }

    async fn status(&self) -> ConnectionStatus {
        match self.shared.reason() {
            Some(reason) => ConnectionStatus::Disconnected(reason),
            None => ConnectionStatus::Connected,
        }
    }

    async fn wait_disconnect(&self) {
        self.wait_receiver_done().await;
    }

    async fn send_packet(&self, packet: Packet) -> crazyflie_link::error::Result<()> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Self::link_closed());
        }
        let mut bytes: Vec<u8> = packet.into();
        if let Some(header) = bytes.first_mut() {
            *header |= LINK_BITS;
        }
        match self.socket.send(&bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                self.shared.close_with(format!(
                    "nothing answers at udp {} (connection refused): is the simulator running?",
                    self.peer
                ));
                Err(Self::link_closed())
            }
            Err(e) => {
                self.shared
                    .close_with(format!("sending to {}: {e}", self.peer));
                Err(Self::link_closed())
            }
        }
    }

    async fn recv_packet(&self) -> crazyflie_link::error::Result<Packet> {
        let mut downlink = self.downlink.lock().await;
        downlink.recv().await.ok_or_else(Self::link_closed)
    }

    async fn link_statistics(&self) -> Option<RadioLinkStatistics> {
        None
    }
}

impl Drop for UdpConnection {
    fn drop(&mut self) {
        self.shared.close_with("closed by the host".to_owned());
    }
}

/// A `crazyflie_link::Connection` over UDP, ready for
/// `crazyflie_lib::Crazyflie::connect_from_link(connection, crazyflie_lib::NoTocCache)`.
pub fn udp_connection(uri: &str) -> Result<Connection, LinkError> {
    Ok(Connection::new(Box::new(UdpConnection::open(uri)?)))
}

/// cflib's UDP scan: sends a lone `0xFF` (null packet) to each port of `host`; every port that
/// answers anything within 100 ms is returned as `udp://host:port`. All ports are probed at
/// once, so the scan takes 100 ms whatever the number of ports.
pub fn scan_udp(host: &str, ports: impl IntoIterator<Item = u16>) -> Vec<String> {
    let mut probes = Vec::new();
    for port in ports {
        let Some(peer) = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        else {
            continue;
        };
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = UdpSocket::bind(local) else {
            continue;
        };
        if socket.connect(peer).is_err()
            || socket.set_nonblocking(true).is_err()
            || socket.send(&[0xFF]).is_err()
        {
            continue;
        }
        probes.push((port, socket, false));
    }
    let deadline = Instant::now() + UDP_SCAN_TIMEOUT;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline && probes.iter().any(|(_, _, seen)| !seen) {
        for (_, socket, seen) in probes.iter_mut().filter(|(_, _, seen)| !seen) {
            if socket.recv(&mut buf).is_ok() {
                *seen = true;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    probes
        .into_iter()
        .filter(|(_, _, seen)| *seen)
        .map(|(port, _, _)| format!("udp://{host}:{port}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (UdpSocket, u16) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let port = s.local_addr().expect("addr").port();
        (s, port)
    }

    #[test]
    fn one_datagram_per_packet_with_cflib_link_bits() {
        let (server, port) = echo_server();
        let conn = UdpConnection::open(&format!("udp://127.0.0.1:{port}")).expect("open");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            conn.send_packet(Packet::new(3, 0, vec![1, 2, 3]))
                .await
                .expect("send");
            let mut buf = [0u8; 64];
            let (n, from) = server.recv_from(&mut buf).expect("datagram");
            assert_eq!(&buf[..n], &[0x3C, 1, 2, 3]);
            // Replies: a null packet is dropped, a log packet comes through with its raw header.
            server.send_to(&[0xF3], from).expect("null");
            server.send_to(&[0x52, 9, 8], from).expect("reply");
            let pk = conn.recv_packet().await.expect("packet");
            assert_eq!((pk.get_port(), pk.get_channel()), (5, 2));
            assert_eq!(pk.get_data(), &[9, 8]);
            assert!(matches!(conn.status().await, ConnectionStatus::Connected));
            conn.close().await;
            assert!(matches!(
                conn.status().await,
                ConnectionStatus::Disconnected(_)
            ));
            assert!(conn.send_packet(Packet::new(3, 0, vec![])).await.is_err());
        });
    }

    #[test]
    fn refused_peer_closes_the_connection_with_a_reason() {
        // Bind then drop to get a port nobody listens on.
        let port = {
            let (s, port) = echo_server();
            drop(s);
            port
        };
        let conn = UdpConnection::open(&format!("udp://127.0.0.1:{port}")).expect("open");
        let reason = conn.close_reason();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let _ = conn.send_packet(Packet::new(13, 1, vec![0])).await;
            let why = tokio::time::timeout(Duration::from_secs(2), conn.wait_close())
                .await
                .expect("closes");
            assert!(why.contains("connection refused"), "{why}");
            assert!(conn.recv_packet().await.is_err());
        });
        assert!(reason.get().is_some());
    }

    #[test]
    fn scan_finds_only_answering_ports() {
        let (server, port) = echo_server();
        let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let silent_port = silent.local_addr().expect("addr").port();
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let (n, from) = server.recv_from(&mut buf).expect("probe");
            assert_eq!(&buf[..n], &[0xFF], "cflib's probe is a lone 0xFF");
            server.send_to(&[0xF3], from).expect("answer");
        });
        let found = scan_udp("127.0.0.1", [port, silent_port]);
        responder.join().expect("responder");
        assert_eq!(found, vec![format!("udp://127.0.0.1:{port}")]);
    }
}
