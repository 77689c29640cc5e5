//! Issue 20: `depthpilot run --keys DIR` (CURVE on the split's bus) names a missing or garbage
//! key file and a wrong combination of flags with exit status 2, before touching the network.
//! (The denial of a vision without an allowed key is tested over TCP in
//! `depthpilot_runtime::split::curve_tests`; the flight with CURVE in tests/realtime/split.rs.)

use crate::refused;

use std::path::Path;
use std::process::Output;

fn rig() -> std::path::PathBuf {
    crate::root().join("hil").join("split.ron")
}

fn run(role: &str, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .arg("run")
        .arg(rig())
        .args(["--role", role, "--duration", "1"])
        .args(extra)
        .output()
        .expect("run depthpilot")
}

fn keys(dir: &Path, name: &str) {
    depthpilot_runtime::curve::write_keypair(dir, name, false).expect("keygen");
}

#[test]
fn run_keys_names_missing_and_garbage_key_files() {
    let dir = crate::temp_dir("run-curve");
    let d = |p: &str| dir.join(p).to_str().expect("utf-8").to_string();
    // Control: no server key; then a garbage one; then no allow-list for the bus.
    let ctl = dir.join("ctl");
    std::fs::create_dir_all(&ctl).expect("mkdir");
    refused(&run("control", &["--keys", &d("ctl")]), &["server.pub"]);
    keys(&ctl, "server");
    std::fs::write(ctl.join("server.key"), "not a key\n").expect("write");
    refused(
        &run("control", &["--keys", &d("ctl")]),
        &["server.key", "40 Z85 characters"],
    );
    std::fs::remove_file(ctl.join("server.key")).expect("rm");
    std::fs::remove_file(ctl.join("server.pub")).expect("rm");
    keys(&ctl, "server");
    std::fs::create_dir_all(ctl.join("allow/teacher")).expect("mkdir");
    refused(
        &run("control", &["--keys", &d("ctl")]),
        &["allow/bus", "empty"],
    );
    refused(
        &run("control", &["--keys", &d("ctl"), "--key", "vision"]),
        &["--key", "--role vision"],
    );

    // Vision: its pair (default name `vision`, or --key) and the server's public key.
    let vis = dir.join("vis");
    std::fs::create_dir_all(&vis).expect("mkdir");
    refused(&run("vision", &["--keys", &d("vis")]), &["vision.pub"]);
    keys(&vis, "cam2");
    refused(
        &run("vision", &["--keys", &d("vis"), "--key", "cam2"]),
        &["server.pub"],
    );
    std::fs::write(vis.join("server.pub"), "HelloWorld\n").expect("write");
    refused(
        &run("vision", &["--keys", &d("vis"), "--key", "cam2"]),
        &["server.pub", "40 Z85 characters"],
    );
    std::fs::write(vis.join("cam2.key"), format!("{}\n", "\"".repeat(40))).expect("write");
    refused(
        &run("vision", &["--keys", &d("vis"), "--key", "cam2"]),
        &["cam2.key", "not a Z85 character"],
    );

    // Flags that do not fit.
    refused(&run("vision", &["--key", "cam2"]), &["--keys"]);
    refused(
        &run("all", &["--keys", &d("ctl")]),
        &["--role all", "no bus"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
