//! Hardware-in-the-loop tests: a real Crazyradio and a real Crazyflie on the bench.
//!
//! They run only with `DEPTHPILOT_HIL=1` and a Crazyradio plugged in; otherwise they print why
//! they were skipped and pass. URI: `radio://0/80/2M/E7E7E7E7E7` (the firmware defaults),
//! override with `DEPTHPILOT_HIL_URI`. PROPS OFF: the setpoint test sends thrust 0 only, but
//! the bench checklist (`hil/checklist.md`) applies.
//!
//! `probe_reports_missing_hardware_without_panicking` always runs: on a machine without USB
//! (CI, this VM) or without a dongle it checks the error names the device and the udev fix.

use depthpilot_crtp::RpytSetpoint;
use depthpilot_radio::{LinkErrorKind, open, probe_crazyradio};
use std::time::{Duration, Instant};

const DEFAULT_URI: &str = "radio://0/80/2M/E7E7E7E7E7";
const SKIP: &str =
    "skipped: set DEPTHPILOT_HIL=1 with a Crazyradio and a Crazyflie on channel 80 to run";

/// The URI to test against, or `None` (after printing the reason) when HIL is off.
fn hil_uri() -> Option<String> {
    if std::env::var("DEPTHPILOT_HIL").as_deref() != Ok("1") {
        eprintln!("{SKIP}");
        return None;
    }
    match probe_crazyradio() {
        Ok(info) => eprintln!(
            "Crazyradio found: bus {} address {}, firmware {}, serial {:?}",
            info.bus, info.address, info.firmware_version, info.serial
        ),
        Err(e) => {
            eprintln!("{SKIP} ({e})");
            return None;
        }
    }
    Some(std::env::var("DEPTHPILOT_HIL_URI").unwrap_or_else(|_| DEFAULT_URI.to_owned()))
}

#[test]
fn probe_reports_missing_hardware_without_panicking() {
    match probe_crazyradio() {
        Ok(info) => eprintln!("a Crazyradio is present: {info:?}"),
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    LinkErrorKind::NoHardware | LinkErrorKind::Permission
                ),
                "{e}"
            );
            let msg = e.to_string();
            eprintln!("{msg}");
            assert!(msg.contains("1915:7777"), "{msg}");
            assert!(msg.contains("hil/99-crazyradio.rules"), "{msg}");
            assert!(msg.contains("udevadm"), "{msg}");
            // The hint points at a file that exists.
            let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hil/99-crazyradio.rules");
            assert!(std::path::Path::new(rules).is_file(), "{rules} is missing");
        }
    }
}

/// One sequence on the one Crazyflie (the harness runs tests in parallel; two connections to
/// the same Crazyflie would fight): battery by log, a param read and write-back, zero
/// setpoints.
#[test]
fn bench_crazyflie() {
    let Some(uri) = hil_uri() else { return };
    let mut link = open(&uri).unwrap_or_else(|e| panic!("connecting {uri}: {e}"));

    // Battery voltage by log.
    link.start_log("battery", &["pm.vbat"], 100)
        .expect("log block");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut vbat = None;
    while vbat.is_none() && Instant::now() < deadline {
        vbat = link
            .poll_log()
            .expect("poll")
            .iter()
            .find_map(|s| s.get("pm.vbat"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let vbat = vbat.expect("no pm.vbat sample within 3 s");
    eprintln!("pm.vbat = {vbat:.2} V");
    assert!(
        (2.5..4.5).contains(&vbat),
        "implausible battery voltage {vbat}"
    );

    // A param: read, write the same value back (harmless), read again.
    let params = link.params().expect("CRTP links have params");
    let estimator = params.param_get("stabilizer.estimator").expect("read");
    params
        .param_set("stabilizer.estimator", estimator)
        .expect("write");
    assert_eq!(
        params.param_get("stabilizer.estimator").expect("read"),
        estimator
    );

    // Zero setpoints at 100 Hz for half a second (thrust 0: also the thrust-lock release).
    let zero = RpytSetpoint {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        yaw_rate_deg_s: 0.0,
        thrust: 0,
    };
    for _ in 0..50 {
        link.send_setpoint(&zero).expect("setpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = link.stats();
    eprintln!("{stats:?}");
    assert!(stats.packets_sent >= 50);
    assert_eq!(stats.send_errors, 0);
    assert!(stats.log_samples_received >= 1);
}
