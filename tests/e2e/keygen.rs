//! Issue 20, item 2: `depthpilot keygen` writes a CURVE key pair with the right modes, refuses
//! to overwrite one, and names garbage arguments.

use crate::depthpilot;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "depthpilot-e2e-keygen-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn keygen_writes_a_pair_and_refuses_to_overwrite_it() {
    let dir = temp_dir("pair").join("keys");
    let d = dir.to_str().expect("utf-8 path");
    let o = depthpilot(&["keygen", "--dir", d, "--name", "vision-host"]);
    assert!(o.status.success(), "{}", text(&o));
    let (secret, public) = (dir.join("vision-host.key"), dir.join("vision-host.pub"));
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(mode(&public), 0o644);
    let public_text = std::fs::read_to_string(&public).expect("pub");
    let secret_text = std::fs::read_to_string(&secret).expect("key");
    // One Z85 line each, and what was printed is the public key.
    for key in [&public_text, &secret_text] {
        assert_eq!(key.trim().len(), 40, "{key:?}");
        assert_eq!(zmq::z85_decode(key.trim()).expect("z85").len(), 32);
    }
    assert!(text(&o).contains(public_text.trim()), "{}", text(&o));
    assert_ne!(public_text, secret_text);

    // Refused without --force (bad input), and the files are untouched.
    let o = depthpilot(&["keygen", "--dir", d, "--name", "vision-host"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&secret).expect("key"), secret_text);

    // --force writes a new pair, still 0600.
    let o = depthpilot(&["keygen", "--dir", d, "--name", "vision-host", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(std::fs::read_to_string(&secret).expect("key"), secret_text);
    assert_eq!(mode(&secret), 0o600);
    let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
}

#[test]
fn keygen_names_garbage_arguments() {
    let dir = temp_dir("garbage");
    let d = dir.to_str().expect("utf-8 path");
    for (args, want) in [
        (
            vec!["keygen", "--dir", d, "--name", "../escape"],
            "bad key name `../escape`",
        ),
        (vec!["keygen", "--dir", d, "--name", ""], "bad key name ``"),
        (vec!["keygen", "--dir", d], "--name"),
        (vec!["keygen", "--name", "x", "--bogus"], "--bogus"),
    ] {
        let o = depthpilot(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    assert!(!dir.join("../escape.key").exists());
    // A directory that cannot be created is named (exit 1, not a usage error).
    let file = temp_dir("not-a-dir");
    std::fs::write(&file, "").expect("write");
    let f = file.join("keys");
    let o = depthpilot(&["keygen", "--dir", f.to_str().expect("utf-8"), "--name", "a"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(f.to_str().expect("utf-8")),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_file(&file);
}
