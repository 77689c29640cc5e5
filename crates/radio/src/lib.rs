//! Links to a Crazyflie: one small blocking trait ([`Link`]), several backends.
//!
//! In scope:
//! - `radio://0/80/2M/E7E7E7E7E7` — a Crazyradio PA / 2.0 (USB 1915:7777) through Bitcraze's
//!   crazyflie-link + crazyflie-lib ([`CrtpLink`]). The dongle is probed with a private
//!   `rusb::Context` first ([`probe_crazyradio`]), so machines without USB get
//!   [`LinkError::NoUsb`] / [`LinkError::NoDongle`] instead of the `crazyradio` crate's
//!   global-context panic.
//! - `udp://127.0.0.1:19850` — CRTP over UDP to any SITL (CrazySim, our simulated Crazyflie),
//!   byte for byte like cflib 0.1.34's udp driver ([`UdpConnection`], [`scan_udp`]), also
//!   driven by crazyflie-lib ([`CrtpLink`]).
//! - `cfclient://127.0.0.1:1212` — a running cfclient's ZMQ input device ([`CfclientLink`]).
//! - `cfzmq://127.0.0.1:2000?uri=radio://…` — the headless cfzmq server ([`CfzmqLink`]).
//! - [`MemoryLink`], a scripted fake for tests of generic code.
//!
//! Out of scope: the simulated Crazyflie itself (it lives with the simulator and answers on
//! UDP), the control loop, and the typed CRTP messages (`depthpilot-crtp`).
//!
//! CRTP links own a tokio runtime (one worker thread) and never call `block_on`, so they can be
//! used from plain threads and from inside actix actors alike. Setpoints are fire and forget:
//! a send waits only for the packet to be queued, never for the Crazyflie.
//!
//! Facts and sources: `reference/protocols.md` §1.1 (cfclient ZMQ input), §1.4 (cfzmq), §2
//! (CRTP), §3 (Crazyradio), §4 (Bitcraze crates, UDP SITL links).

mod cfclient;
mod cfzmq;
mod crtp_link;
mod error;
mod link;
mod memory;
mod rt;
mod udp;
mod uri;
mod usb;

pub use cfclient::{
    CFCLIENT_MAX_THRUST, CfclientLink, cfclient_ctrl, cfclient_p2t, thrust_percent_for_raw,
};
pub use cfzmq::{CfzmqConfig, CfzmqLink};
pub use crtp_link::{CrtpLink, CrtpLinkConfig};
pub(crate) use error::check_finite;
pub use error::{CRAZYRADIO_NAME, LinkError, LinkErrorKind, UDEV_HINT};
pub use link::{Link, LinkStats, LogSample, ParamAccess};
pub use memory::{MemoryLink, MemoryLinkHandle, Sent};
pub use udp::{
    UDP_SCAN_PORTS, UDP_SCAN_TIMEOUT, UdpCloseReason, UdpConnection, scan_udp, udp_connection,
};
pub use uri::{CFCLIENT_DEFAULT_PORT, CFZMQ_DEFAULT_PORT, LinkUri};
pub use usb::{
    CRAZYFLIE_USB_VID_PID, CRAZYRADIO_BOOTLOADER_VID_PID, CRAZYRADIO_VID_PID, DongleInfo,
    probe_crazyradio, probe_crazyradio_nth,
};

/// Opens a link by URI: `radio://`, `udp://` (both connect a Crazyflie through crazyflie-lib
/// and fetch its TOCs), `cfclient://`, `cfzmq://`. Unknown schemes and malformed URIs are
/// rejected before anything is opened.
pub fn open(uri: &str) -> Result<Box<dyn Link>, LinkError> {
    match LinkUri::parse(uri)? {
        LinkUri::Radio { .. } | LinkUri::Udp { .. } => Ok(Box::new(CrtpLink::connect(uri)?)),
        LinkUri::Cfclient { .. } => Ok(Box::new(CfclientLink::open(uri)?)),
        LinkUri::Cfzmq { .. } => Ok(Box::new(CfzmqLink::open(uri)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rejects_bad_uris_before_touching_anything() {
        for (uri, kind) in [
            ("", LinkErrorKind::InvalidUri),
            ("radio://0/80", LinkErrorKind::InvalidUri),
            ("radio://0/80/1M/E7E7E7E7E7", LinkErrorKind::InvalidUri),
            ("udp://localhost", LinkErrorKind::InvalidUri),
            ("tcp://127.0.0.1:1212", LinkErrorKind::InvalidUri),
            ("usb://0", LinkErrorKind::InvalidUri),
            ("cfzmq://127.0.0.1:2000", LinkErrorKind::InvalidUri),
        ] {
            let e = open(uri).err().unwrap_or_else(|| panic!("{uri} opened"));
            assert_eq!(e.kind(), kind, "{uri}: {e}");
        }
    }

    /// Without a dongle (or without USB, like this machine) a radio URI fails cleanly and says
    /// how to fix it; no panic from rusb's global context.
    #[test]
    fn radio_without_dongle_is_a_hardware_error() {
        if probe_crazyradio().is_ok() {
            eprintln!("skipped: a Crazyradio is plugged in");
            return;
        }
        let e = open("radio://0/80/2M/E7E7E7E7E7")
            .err()
            .expect("no dongle here");
        assert!(
            matches!(
                e.kind(),
                LinkErrorKind::NoHardware | LinkErrorKind::Permission
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains("1915:7777"), "{msg}");
        assert!(msg.contains("hil/99-crazyradio.rules"), "{msg}");
    }
}
