//! Issue 20: `--keys DIR` on `fly`, `run` and `hil` (CURVE on the control side's own server
//! sockets: the flight state PUB and the live teacher input). A missing directory or key file is
//! named with exit status 2 before any socket or device is opened; flags that do not fit are
//! refused; with keys, a non-loopback bind needs no --insecure, and an empty allow-list is said
//! at start while the flight goes on. (The denials themselves are tested over TCP in
//! `crates/runtime/tests/curve_control.rs`.)

use crate::{depthpilot, free_port, refused};

use std::path::Path;

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn keys_on_fly_run_and_hil_name_a_missing_dir_and_key_file() {
    let dir = crate::temp_dir("control-curve");
    let missing = dir.join("no-such-keys");
    let hover = crate::scene_path("hover.ron");
    let (hover, endpoint) = (path(&hover), format!("tcp://0.0.0.0:{}", free_port()));
    let split = crate::root().join("hil").join("split.ron");
    let bench = crate::root().join("hil").join("bench.ron");
    let (split, bench) = (path(&split), path(&bench));
    let fly = |keys: &Path, extra: &[&str]| {
        let mut args = vec!["fly", hover, "--keys", path(keys)];
        args.extend_from_slice(extra);
        depthpilot(&args)
    };

    // A missing directory, on each command.
    let missing_parts = [path(&missing), "no such directory", "depthpilot keygen"];
    refused(&fly(&missing, &["--teacher-in", &endpoint]), &missing_parts);
    refused(
        &depthpilot(&[
            "run",
            split,
            "--role",
            "all",
            "--teacher-in",
            &endpoint,
            "--keys",
            path(&missing),
        ]),
        &missing_parts,
    );
    refused(
        &depthpilot(&[
            "hil",
            bench,
            "--teacher-zmq",
            &endpoint,
            "--keys",
            path(&missing),
        ]),
        &missing_parts,
    );

    // server.pub without server.key: the missing file is named.
    let keys = dir.join("keys");
    depthpilot_runtime::curve::write_keypair(&keys, "server", false).expect("keygen");
    std::fs::remove_file(keys.join("server.key")).expect("rm");
    refused(
        &fly(&keys, &["--state-out", &endpoint]),
        &["server.key", "No such file"],
    );
    refused(
        &depthpilot(&[
            "hil",
            bench,
            "--teacher-zmq",
            &endpoint,
            "--keys",
            path(&keys),
        ]),
        &["server.key"],
    );

    // Flags that do not fit.
    refused(&fly(&keys, &[]), &["--keys", "--state-out", "--teacher-in"]);
    refused(&fly(&keys, &["--view"]), &["--view", "viewer"]);
    refused(
        &fly(&keys, &["--state-out", &endpoint, "--insecure"]),
        &["--insecure"],
    );
    refused(
        &depthpilot(&["hil", bench, "--keys", path(&keys)]),
        &["--teacher-zmq"],
    );
    refused(
        &depthpilot(&["run", split, "--role", "vision", "--teacher-in", &endpoint]),
        &["--teacher-in", "--role control"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// With keys, the state output binds every interface without --insecure; its allow-list is
/// empty, which is said, and the flight flies.
#[test]
fn fly_keys_bind_any_interface_and_say_an_empty_allow_list() {
    let dir = crate::temp_dir("control-curve-empty");
    let keys = dir.join("keys");
    depthpilot_runtime::curve::write_keypair(&keys, "server", false).expect("keygen");
    std::fs::create_dir_all(keys.join("allow").join("teacher")).expect("mkdir");
    let endpoint = format!("tcp://0.0.0.0:{}", free_port());
    let hover = crate::scene_path("hover.ron");
    let o = depthpilot(&[
        "fly",
        path(&hover),
        "--state-out",
        &endpoint,
        "--keys",
        path(&keys),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    for part in [
        "WARNING",
        "state",
        &endpoint,
        "allow/state/",
        "no client may connect",
    ] {
        assert!(stderr.contains(part), "`{part}` not in: {stderr}");
    }
    assert!(!stderr.contains("--insecure"), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("no crash"), "{stdout}");
    // Without keys the same bind is refused (step 1's policy is unchanged).
    let o = depthpilot(&["fly", path(&hover), "--state-out", &endpoint]);
    refused(&o, &["--insecure", &endpoint]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `bridge --keys` and `sitl --keys` serve the parameter and LED servers with CURVE: a missing
/// keys directory is named before any link is opened; `sitl --keys` without a ZMQ server says
/// there is nothing to protect; with keys both bind all interfaces without --insecure, run
/// (`bridge` in front of the `sitl`), and report their handshakes when they stop.
#[test]
fn bridge_and_sitl_take_keys_for_the_parameter_and_led_servers() {
    let dir = crate::temp_dir("param-led-curve");
    let missing = dir.join("no-such-keys");
    let any = |port: u16| format!("tcp://0.0.0.0:{port}");
    let (param, led) = (any(free_port()), any(free_port()));
    let udp_port = free_port().to_string();
    let uri = format!("udp://127.0.0.1:{udp_port}");
    let bridge = |keys: &Path| {
        depthpilot(&[
            "bridge",
            &uri,
            "--zmq-param",
            &param,
            "--zmq-led",
            &led,
            "--duration",
            "0.5",
            "--keys",
            path(keys),
        ])
    };
    refused(&bridge(&missing), &[path(&missing), "no such directory"]);
    refused(
        &depthpilot(&["sitl", "--keys", path(&missing)]),
        &["--keys", "--zmq-param", "UDP"],
    );

    let keys = dir.join("keys");
    depthpilot_runtime::curve::write_keypair(&keys, "server", false).expect("keygen");
    depthpilot_runtime::curve::write_keypair(&dir.join("client"), "cfclient", false)
        .expect("keygen");
    for role in ["param", "led"] {
        let allow = keys.join("allow").join(role);
        std::fs::create_dir_all(&allow).expect("mkdir");
        std::fs::copy(
            dir.join("client").join("cfclient.pub"),
            allow.join("cfclient.pub"),
        )
        .expect("copy");
    }
    // The client holds its own key pair and the server's public key.
    std::fs::copy(
        keys.join("server.pub"),
        dir.join("client").join("server.pub"),
    )
    .expect("copy");
    let (sitl_param, sitl_led) = (any(free_port()), any(free_port()));
    let sitl = std::process::Command::new(env!("CARGO_BIN_EXE_depthpilot"))
        .args([
            "sitl",
            "--port",
            &udp_port,
            "--duration",
            "5",
            "--status-every",
            "0",
            "--zmq-param",
            &sitl_param,
            "--zmq-led",
            &sitl_led,
            "--keys",
            path(&keys),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sitl");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let o = bridge(&keys);
    // cfclient's parameter and LED protocols from pyzmq, with the client's keys, against the sitl.
    let local = |ep: &str| ep.replace("0.0.0.0", "127.0.0.1");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let client = std::process::Command::new(&python)
        .arg(crate::root().join("tests/zmq_param_led_client.py"))
        .args([&local(&sitl_param), &local(&sitl_led)])
        .args(["--keys", path(&dir.join("client")), "--key", "cfclient"])
        .output()
        .expect("run the pyzmq client");
    let reply = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success(),
        "{reply}{}",
        String::from_utf8_lossy(&client.stderr)
    );
    let reply: serde_json::Value = serde_json::from_str(reply.trim()).expect("the client's JSON");
    assert!(reply["toc_len"].as_u64().is_some_and(|n| n > 10), "{reply}");
    let sitl = sitl.wait_with_output().expect("sitl ends");
    for (who, o, accepted) in [("bridge", &o, 0), ("sitl", &sitl, 1)] {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{who}: {stderr}");
        assert!(!stderr.contains("refusing"), "{who}: {stderr}");
        for part in [
            format!("CURVE `param`: {accepted} handshake(s) accepted, 0 denied"),
            format!("CURVE `led`: {accepted} handshake(s) accepted, 0 denied"),
        ] {
            assert!(stderr.contains(&part), "{who}: `{part}` not in: {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
