//! Link URIs, validated once when parsed.
//!
//! - `radio://<dongle>/<channel>/2M/<address>[?safelink=0&ackfilter=0&timeout=ms]` — all three
//!   path segments are required (crazyflie-link's rule); channel 0–125; address up to 10 hex
//!   digits (left-padded with zeros, sent in string order). crazyflie-link 0.5.1 only drives
//!   2 Mbit/s, so `250K`/`1M` are rejected instead of being silently flown at 2M.
//! - `udp://<host>:<port>` — CRTP over UDP (cflib ≥ 0.1.32's udp driver, CrazySim, our SITL).
//! - `cfclient://<host>[:<port>]` — cfclient's ZMQ input device (default port 1212).
//! - `cfzmq://<host>[:<port>]?uri=<crazyflie uri>` — the cfzmq server (default base port 2000);
//!   `uri=` must be the last query parameter (the Crazyflie URI may contain `?` and `&`).

use crate::LinkError;

/// cfclient's ZMQ input device port (`1024 + 188`).
pub const CFCLIENT_DEFAULT_PORT: u16 = 1212;
/// cfzmq's default base port (command socket; log PUB is +1, control PULL is +4).
pub const CFZMQ_DEFAULT_PORT: u16 = 2000;

/// A parsed link URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkUri {
    Radio {
        dongle_index: usize,
        channel: u8,
        address: [u8; 5],
        /// Query string without `?` (passed to crazyflie-link as is).
        query: String,
    },
    Udp {
        host: String,
        port: u16,
    },
    Cfclient {
        host: String,
        port: u16,
    },
    Cfzmq {
        host: String,
        port: u16,
        crazyflie_uri: String,
    },
}

impl LinkUri {
    /// Parses and validates `uri`; the error says what is wrong.
    pub fn parse(uri: &str) -> Result<Self, LinkError> {
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| LinkError::bad_uri(uri, "expected `<scheme>://…`"))?;
        match scheme {
            "radio" => parse_radio(uri, rest),
            "udp" => {
                let (host, port) = host_port(uri, rest, None)?;
                Ok(Self::Udp { host, port })
            }
            "cfclient" => {
                let (host, port) = host_port(uri, rest, Some(CFCLIENT_DEFAULT_PORT))?;
                Ok(Self::Cfclient { host, port })
            }
            "cfzmq" => {
                let (authority, query) = rest.split_once('?').ok_or_else(|| {
                    LinkError::bad_uri(
                        uri,
                        "cfzmq needs the Crazyflie to connect to: cfzmq://127.0.0.1:2000?uri=radio://0/80/2M/E7E7E7E7E7",
                    )
                })?;
                let (host, port) = host_port(uri, authority, Some(CFZMQ_DEFAULT_PORT))?;
                if port > u16::MAX - 4 {
                    return Err(LinkError::bad_uri(
                        uri,
                        "cfzmq uses base port to base port + 4",
                    ));
                }
                let crazyflie_uri = query
                    .split_once("uri=")
                    .filter(|(before, _)| before.is_empty() || before.ends_with('&'))
                    .map(|(_, after)| after.to_owned())
                    .filter(|u| u.contains("://"))
                    .ok_or_else(|| {
                        LinkError::bad_uri(
                            uri,
                            "missing `uri=<crazyflie uri>` (e.g. ?uri=radio://0/80/2M/E7E7E7E7E7)",
                        )
                    })?;
                Ok(Self::Cfzmq {
                    host,
                    port,
                    crazyflie_uri,
                })
            }
            "" => Err(LinkError::bad_uri(uri, "empty scheme")),
            other => Err(LinkError::UnknownScheme {
                uri: uri.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }
}

fn parse_radio(uri: &str, rest: &str) -> Result<LinkUri, LinkError> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parts: Vec<&str> = path.split('/').collect();
    let [index, channel, rate, address] = parts.as_slice() else {
        return Err(LinkError::bad_uri(
            uri,
            "expected radio://<dongle>/<channel>/2M/<address>, e.g. radio://0/80/2M/E7E7E7E7E7",
        ));
    };
    let dongle_index = index.parse::<usize>().map_err(|_| {
        LinkError::bad_uri(
            uri,
            format!("dongle index `{index}` is not a number (serial numbers are not supported)"),
        )
    })?;
    let channel = channel
        .parse::<u8>()
        .ok()
        .filter(|c| *c <= 125)
        .ok_or_else(|| LinkError::bad_uri(uri, format!("channel `{channel}` is not 0-125")))?;
    match *rate {
        "2M" => {}
        "250K" | "1M" => {
            return Err(LinkError::bad_uri(
                uri,
                format!(
                    "data rate {rate}: crazyflie-link 0.5.1 only drives 2M; set the Crazyflie to 2M (its default)"
                ),
            ));
        }
        other => {
            return Err(LinkError::bad_uri(
                uri,
                format!("data rate `{other}` is not 250K, 1M or 2M"),
            ));
        }
    }
    let address = parse_address(address).ok_or_else(|| {
        LinkError::bad_uri(uri, format!("address `{address}` is not 1-10 hex digits"))
    })?;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let ok = match key {
            "safelink" | "ackfilter" => value == "0" || value == "1",
            "timeout" => value.parse::<u64>().is_ok(),
            _ => false,
        };
        if !ok {
            return Err(LinkError::bad_uri(
                uri,
                format!("option `{pair}` (known: safelink=0|1, ackfilter=0|1, timeout=<ms>)"),
            ));
        }
    }
    Ok(LinkUri::Radio {
        dongle_index,
        channel,
        address,
        query: query.to_owned(),
    })
}

fn parse_address(text: &str) -> Option<[u8; 5]> {
    if text.is_empty() || text.len() > 10 || !text.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{text:0>10}");
    let mut out = [0u8; 5];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// `host:port`, `host` (with a default port) or `[v6]:port`; no path.
fn host_port(
    uri: &str,
    authority: &str,
    default_port: Option<u16>,
) -> Result<(String, u16), LinkError> {
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains('/') {
        return Err(LinkError::bad_uri(uri, "unexpected path after host:port"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| LinkError::bad_uri(uri, "unclosed `[` in IPv6 host"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| LinkError::bad_uri(uri, "expected `:port` after `]`"))?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(LinkError::bad_uri(uri, "missing host"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| LinkError::bad_uri(uri, format!("port `{p}` is not 1-65535")))?,
        (None, Some(d)) => d,
        (None, None) => return Err(LinkError::bad_uri(uri, "missing `:port`")),
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkErrorKind;

    #[test]
    fn good_uris() {
        assert_eq!(
            LinkUri::parse("radio://0/80/2M/E7E7E7E7E7").expect("valid"),
            LinkUri::Radio {
                dongle_index: 0,
                channel: 80,
                address: [0xE7; 5],
                query: String::new()
            }
        );
        assert!(matches!(
            LinkUri::parse("radio://1/125/2M/E7?safelink=0&timeout=500").expect("valid"),
            LinkUri::Radio {
                dongle_index: 1,
                channel: 125,
                address: [0, 0, 0, 0, 0xE7],
                ..
            }
        ));
        assert_eq!(
            LinkUri::parse("udp://127.0.0.1:19850").expect("valid"),
            LinkUri::Udp {
                host: "127.0.0.1".into(),
                port: 19850
            }
        );
        assert_eq!(
            LinkUri::parse("udp://[::1]:19850").expect("valid"),
            LinkUri::Udp {
                host: "::1".into(),
                port: 19850
            }
        );
        assert_eq!(
            LinkUri::parse("cfclient://127.0.0.1").expect("valid"),
            LinkUri::Cfclient {
                host: "127.0.0.1".into(),
                port: 1212
            }
        );
        assert_eq!(
            LinkUri::parse("cfzmq://127.0.0.1:2000?uri=radio://0/80/2M/E7E7E7E7E7?safelink=0")
                .expect("valid"),
            LinkUri::Cfzmq {
                host: "127.0.0.1".into(),
                port: 2000,
                crazyflie_uri: "radio://0/80/2M/E7E7E7E7E7?safelink=0".into()
            }
        );
    }

    #[test]
    fn bad_uris_say_why() {
        let cases = [
            ("", "expected `<scheme>://"),
            ("radio", "expected `<scheme>://"),
            ("://x", "empty scheme"),
            ("radio://0/80", "expected radio://"),
            ("radio://0/80/2M", "expected radio://"),
            ("radio://x/80/2M/E7E7E7E7E7", "dongle index"),
            ("radio://0/126/2M/E7E7E7E7E7", "channel `126`"),
            ("radio://0/-1/2M/E7E7E7E7E7", "channel `-1`"),
            ("radio://0/80/250K/E7E7E7E7E7", "only drives 2M"),
            ("radio://0/80/3M/E7E7E7E7E7", "data rate `3M`"),
            ("radio://0/80/2M/E7E7E7E7E7E7", "address"),
            ("radio://0/80/2M/XYZ", "address"),
            ("radio://0/80/2M/", "address"),
            ("radio://0/80/2M/E7E7E7E7E7?bogus=1", "option `bogus=1`"),
            (
                "radio://0/80/2M/E7E7E7E7E7?timeout=abc",
                "option `timeout=abc`",
            ),
            ("udp://127.0.0.1", "missing `:port`"),
            ("udp://:19850", "missing host"),
            ("udp://127.0.0.1:0", "port `0`"),
            ("udp://127.0.0.1:70000", "port `70000`"),
            ("udp://127.0.0.1:19850/x", "unexpected path"),
            ("udp://[::1:19850", "unclosed"),
            ("cfclient://", "missing host"),
            ("cfclient://127.0.0.1:abc", "port `abc`"),
            ("cfzmq://127.0.0.1:2000", "needs the Crazyflie"),
            ("cfzmq://127.0.0.1:2000?foo=1", "missing `uri="),
            ("cfzmq://127.0.0.1:2000?uri=", "missing `uri="),
            (
                "cfzmq://127.0.0.1:65533?uri=radio://0/80/2M/E7",
                "base port",
            ),
        ];
        for (uri, needle) in cases {
            let e = LinkUri::parse(uri).expect_err(uri);
            assert_eq!(e.kind(), LinkErrorKind::InvalidUri, "{uri}: {e}");
            assert!(e.to_string().contains(needle), "{uri}: {e}");
        }
        let e = LinkUri::parse("usb://0").expect_err("unknown");
        assert!(matches!(e, LinkError::UnknownScheme { ref scheme, .. } if scheme == "usb"));
        assert!(
            e.to_string()
                .contains("radio://, udp://, cfclient://, cfzmq://")
        );
    }
}
