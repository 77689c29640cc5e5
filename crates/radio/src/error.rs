//! One error type for every link, with a coarse [`LinkErrorKind`] generic code can react to
//! (embedded-hal style: the variant carries the details, the kind carries the decision).

use std::fmt;

/// What a user must do to give their account access to the Crazyradio. The rule file ships in
/// this repository (`hil/99-crazyradio.rules`); commands are run from the repository root.
pub const UDEV_HINT: &str = "install the udev rule: sudo cp hil/99-crazyradio.rules /etc/udev/rules.d/ && sudo udevadm control --reload-rules && sudo udevadm trigger, then re-plug the dongle";

/// The dongle, as a user reads it on the box and in `lsusb`.
pub const CRAZYRADIO_NAME: &str = "Crazyradio PA / 2.0, USB 1915:7777";

/// What went wrong, coarsely: enough for generic code to decide (retry, fall back to
/// simulation, stop the flight, report a configuration error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkErrorKind {
    /// The URI is malformed or names an unknown scheme: a configuration error.
    InvalidUri,
    /// No USB subsystem or no Crazyradio: the hardware is missing.
    NoHardware,
    /// The hardware is there but the user may not open it (udev rule missing).
    Permission,
    /// This link cannot do what was asked (e.g. external position over cfclient's ZMQ input).
    Unsupported,
    /// Connecting failed (the Crazyflie or the server did not answer properly).
    ConnectFailed,
    /// A request got no answer in time.
    Timeout,
    /// The link was lost or nobody is listening.
    Disconnected,
    /// An emergency stop was sent earlier on this link; it refuses to fly again.
    EmergencyStopped,
    /// A log variable or parameter name is not in the Crazyflie's TOC.
    NotFound,
    /// An argument is out of range (non-finite setpoint, log period, …).
    InvalidArgument,
    /// The Crazyflie or the server answered with an error status.
    Rejected,
    /// The peer answered something that does not follow the protocol.
    Protocol,
    /// Operating-system, USB or ZMQ error.
    Io,
}

/// An error from a link. Every variant names the link URI (or the device) it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    #[error("malformed link URI `{uri}`: {reason}")]
    BadUri { uri: String, reason: String },

    #[error(
        "unknown link scheme `{scheme}` in `{uri}`; supported: radio://, udp://, cfclient://, cfzmq://"
    )]
    UnknownScheme { uri: String, scheme: String },

    #[error(
        "no USB subsystem usable on this machine ({detail}), so no {CRAZYRADIO_NAME} can be reached; on a machine with the dongle plugged in, {UDEV_HINT}"
    )]
    NoUsb { detail: String },

    #[error(
        "no {CRAZYRADIO_NAME} found (radio index {index}; {found} present{}); plug the dongle in, or {UDEV_HINT}",
        bootloader_note(*.bootloader_present)
    )]
    NoDongle {
        /// The dongle index asked for (`radio://<index>/…`).
        index: usize,
        /// How many Crazyradios are present in total.
        found: usize,
        /// A Crazyradio in bootloader mode (USB 1915:0101) is present.
        bootloader_present: bool,
    },

    #[error(
        "the {CRAZYRADIO_NAME} on USB bus {bus} address {address} is present but cannot be opened ({detail}); {UDEV_HINT}"
    )]
    Permission {
        bus: u8,
        address: u8,
        detail: String,
    },

    #[error("USB error on the {CRAZYRADIO_NAME}: {detail}")]
    Usb { detail: String },

    #[error("{what} is not supported by the link {uri}")]
    Unsupported { what: &'static str, uri: String },

    #[error("connecting to {uri} failed: {reason}")]
    Connect { uri: String, reason: String },

    #[error("{uri}: no answer to {what} within {timeout_ms} ms")]
    Timeout {
        uri: String,
        what: String,
        timeout_ms: u64,
    },

    #[error("{uri} is disconnected: {reason}")]
    Disconnected { uri: String, reason: String },

    #[error(
        "an emergency stop was sent on {uri}; the link refuses further commands (reboot the Crazyflie and reconnect to fly again)"
    )]
    EmergencyStopped { uri: String },

    #[error("{what} `{name}` not found on {uri}")]
    NotFound {
        uri: String,
        what: &'static str,
        name: String,
    },

    #[error("invalid {what}: {reason}")]
    InvalidArgument { what: &'static str, reason: String },

    #[error("{uri} refused {what}: {reason}")]
    Rejected {
        uri: String,
        what: String,
        reason: String,
    },

    #[error("protocol error on {uri}: {reason}")]
    Protocol { uri: String, reason: String },

    #[error("I/O error on {uri}: {source}")]
    Io {
        uri: String,
        #[source]
        source: std::io::Error,
    },

    #[error("ZMQ error on {uri} ({endpoint}): {source}")]
    Zmq {
        uri: String,
        endpoint: String,
        #[source]
        source: zmq::Error,
    },
}

fn bootloader_note(present: bool) -> &'static str {
    if present {
        "; a Crazyradio in bootloader mode (USB 1915:0101) is present: re-flash or re-plug it"
    } else {
        ""
    }
}

impl LinkError {
    /// The coarse kind of this error.
    pub fn kind(&self) -> LinkErrorKind {
        use LinkErrorKind as K;
        match self {
            Self::BadUri { .. } | Self::UnknownScheme { .. } => K::InvalidUri,
            Self::NoUsb { .. } | Self::NoDongle { .. } => K::NoHardware,
            Self::Permission { .. } => K::Permission,
            Self::Unsupported { .. } => K::Unsupported,
            Self::Connect { .. } => K::ConnectFailed,
            Self::Timeout { .. } => K::Timeout,
            Self::Disconnected { .. } => K::Disconnected,
            Self::EmergencyStopped { .. } => K::EmergencyStopped,
            Self::NotFound { .. } => K::NotFound,
            Self::InvalidArgument { .. } => K::InvalidArgument,
            Self::Rejected { .. } => K::Rejected,
            Self::Protocol { .. } => K::Protocol,
            Self::Usb { .. } | Self::Io { .. } | Self::Zmq { .. } => K::Io,
        }
    }

    pub(crate) fn bad_uri(uri: &str, reason: impl Into<String>) -> Self {
        Self::BadUri {
            uri: uri.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(what: &'static str, uri: &str) -> Self {
        Self::Unsupported {
            what,
            uri: uri.to_owned(),
        }
    }

    pub(crate) fn estopped(uri: &str) -> Self {
        Self::EmergencyStopped {
            uri: uri.to_owned(),
        }
    }

    pub(crate) fn zmq(uri: &str, endpoint: &str, source: zmq::Error) -> Self {
        Self::Zmq {
            uri: uri.to_owned(),
            endpoint: endpoint.to_owned(),
            source,
        }
    }
}

impl fmt::Display for LinkErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Rejects non-finite numbers before they reach a wire (a NaN setpoint is never sent).
pub(crate) fn check_finite(what: &'static str, values: &[f32]) -> Result<(), LinkError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(LinkError::InvalidArgument {
            what,
            reason: format!("non-finite value in {values:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_errors_name_the_device_and_the_udev_fix() {
        let errors = [
            LinkError::NoUsb {
                detail: "Other".into(),
            },
            LinkError::NoDongle {
                index: 0,
                found: 0,
                bootloader_present: true,
            },
            LinkError::Permission {
                bus: 1,
                address: 4,
                detail: "Access".into(),
            },
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(msg.contains("1915:7777"), "{msg}");
            assert!(msg.contains("Crazyradio PA / 2.0"), "{msg}");
            assert!(
                msg.contains("sudo cp hil/99-crazyradio.rules /etc/udev/rules.d/"),
                "{msg}"
            );
            assert!(msg.contains("re-plug the dongle"), "{msg}");
        }
    }

    #[test]
    fn kinds() {
        assert_eq!(
            LinkError::bad_uri("x", "y").kind(),
            LinkErrorKind::InvalidUri
        );
        assert_eq!(
            LinkError::unsupported("log", "cfclient://").kind(),
            LinkErrorKind::Unsupported
        );
        assert_eq!(
            LinkError::estopped("udp://").kind(),
            LinkErrorKind::EmergencyStopped
        );
        assert!(check_finite("setpoint", &[1.0, f32::NAN]).is_err());
        assert!(check_finite("setpoint", &[1.0, -2.0]).is_ok());
    }
}
