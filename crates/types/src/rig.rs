//! A rig (DESIGN §4): which backend each seam of a flight uses — the scene it flies, the link to
//! the Crazyflie, the flight architecture, the camera — validated before anything starts.
//!
//! ```ron
//! (
//!     name: "bench",
//!     scene: "../scenes/hover_kinect.ron",   // relative to the rig file
//!     link: "radio://0/80/2M/E7E7E7E7E7",     // radio://, udp://, cfclient://, cfzmq://
//!     architecture: Offboard,                 // or Onboard
//!     camera: KinectBridge(endpoint: "tcp://127.0.0.1:7720"),  // or Simulated
//!     shadow: false,
//! )
//! ```

use crate::scene::{Scene, SceneError, parse_ron};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Who closes the position loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// Our controller sends roll / pitch / yaw-rate / thrust (the 2015 demo).
    #[default]
    Offboard,
    /// We send the vision position as external position plus position setpoints; the firmware's
    /// own estimator and position controller fly.
    Onboard,
}

/// Where depth frames come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum CameraSource {
    /// The synthetic Kinect v2 of the scene, rendered from the simulated world.
    #[default]
    Simulated,
    /// A Kinect v2 acquisition bridge publishing frames over ZMQ.
    KinectBridge { endpoint: String },
}

/// Link schemes and whether they reach real hardware.
const SCHEMES: [(&str, bool); 5] = [
    ("sim", false),
    ("radio", true),
    ("cfclient", true),
    ("cfzmq", true),
    ("udp", false),
];

/// See the module doc.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rig {
    pub name: String,
    /// The scene the rig flies (setpoints, camera geometry), relative to the rig file.
    pub scene: PathBuf,
    /// URI of the link to the Crazyflie.
    pub link: String,
    #[serde(default)]
    pub architecture: Architecture,
    #[serde(default)]
    pub camera: CameraSource,
    /// Bench mode: the real Crazyflie (propellers off) only receives what a simulated loop
    /// computes.
    #[serde(default)]
    pub shadow: bool,
    /// The realism layer for every simulated part of the rig (the simulated Crazyflie behind
    /// `sim://` or `depthpilot sitl`, the synthetic camera, a shadow flight); replaces the scene's
    /// `realism`. Every rig in `hil/` says `Bench`: a bench rehearsal should meet the bench.
    #[serde(default)]
    pub realism: Option<crate::scene::Realism>,
}

impl Rig {
    /// Reads and validates a rig file and the scene it names.
    pub fn load(path: &Path) -> Result<(Rig, Scene), SceneError> {
        let text = std::fs::read_to_string(path).map_err(|source| SceneError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let rig: Rig = parse_ron(&text, path)?;
        rig.check(path)?;
        let scene_path = path.parent().unwrap_or(Path::new(".")).join(&rig.scene);
        let mut scene = Scene::load(&scene_path)?;
        if let Some(realism) = &rig.realism {
            scene.realism = realism.clone();
        }
        Ok((rig, scene))
    }

    /// The link's scheme (`radio`, `udp`, …).
    pub fn link_scheme(&self) -> &str {
        self.link.split_once("://").map_or("", |(s, _)| s)
    }

    /// True when the link reaches a real Crazyflie (not a simulator).
    pub fn link_is_real(&self) -> bool {
        SCHEMES
            .iter()
            .any(|(s, real)| *real && *s == self.link_scheme())
    }

    /// The checks that protect hardware and catch nonsense before a flight starts.
    pub fn check(&self, file: &Path) -> Result<(), SceneError> {
        let invalid = |field: &str, message: String| SceneError::Invalid {
            file: file.to_path_buf(),
            field: field.to_string(),
            message,
        };
        let scheme = self.link_scheme();
        if !SCHEMES.iter().any(|(s, _)| *s == scheme) {
            return Err(invalid(
                "link",
                format!(
                    "`{}` is not a link URI; use radio://0/80/2M/E7E7E7E7E7, \
                     udp://127.0.0.1:19850, cfclient://127.0.0.1:1212, cfzmq://127.0.0.1:2000 \
                     or sim:// (the simulated Crazyflie in this process, `depthpilot run`)",
                    self.link
                ),
            ));
        }
        if self.camera == CameraSource::Simulated && self.link_is_real() && !self.shadow {
            return Err(invalid(
                "camera",
                format!(
                    "a simulated camera cannot drive a real Crazyflie ({}); set `shadow: true` \
                     (propellers off: the Crazyflie only receives what the simulated loop \
                     computes) or use `camera: KinectBridge(endpoint: ...)`",
                    self.link
                ),
            ));
        }
        if self.architecture == Architecture::Onboard && matches!(scheme, "cfclient" | "cfzmq") {
            return Err(invalid(
                "architecture",
                format!(
                    "`Onboard` needs external-position and position-setpoint packets, which the \
                     {scheme} link cannot carry (it only takes roll/pitch/yaw/thrust); use a \
                     radio:// or udp:// link, or `Offboard`"
                ),
            ));
        }
        if let CameraSource::KinectBridge { endpoint } = &self.camera
            && !endpoint.contains("://")
        {
            return Err(invalid(
                "camera.endpoint",
                format!("`{endpoint}` is not a ZMQ endpoint (e.g. tcp://127.0.0.1:7720)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rig(text: &str) -> Result<Rig, SceneError> {
        let file = Path::new("<memory>");
        let r: Rig = parse_ron(text, file)?;
        r.check(file)?;
        Ok(r)
    }

    #[test]
    fn a_bench_rig_parses_with_defaults() {
        let r = rig(
            r#"(name: "b", scene: "s.ron", link: "radio://0/80/2M/E7E7E7E7E7",
            camera: KinectBridge(endpoint: "tcp://127.0.0.1:5555"))"#,
        )
        .expect("valid rig");
        assert_eq!(r.architecture, Architecture::Offboard);
        assert!(!r.shadow);
        assert!(r.link_is_real());
    }

    #[test]
    fn a_simulated_camera_may_not_drive_a_real_quad_unless_shadow() {
        let text = r#"(name: "b", scene: "s.ron", link: "radio://0/80/2M/E7E7E7E7E7")"#;
        let e = rig(text).expect_err("refused").to_string();
        assert!(e.contains("shadow"), "{e}");
        rig(r#"(name: "b", scene: "s.ron", link: "radio://0/80/2M/E7E7E7E7E7", shadow: true)"#)
            .expect("shadow is allowed");
        rig(r#"(name: "b", scene: "s.ron", link: "udp://127.0.0.1:19850")"#)
            .expect("a simulated camera may drive a simulated quad");
    }

    #[test]
    fn bad_rigs_name_the_field() {
        for (text, field) in [
            (r#"(name: "b", scene: "s.ron", link: "usb://0")"#, "link"),
            (
                r#"(name: "b", scene: "s.ron", link: "cfclient://127.0.0.1:1212", shadow: true, architecture: Onboard)"#,
                "architecture",
            ),
            (
                r#"(name: "b", scene: "s.ron", link: "udp://h:1", camera: KinectBridge(endpoint: "nowhere"))"#,
                "camera.endpoint",
            ),
            (
                r#"(name: "b", scene: "s.ron", link: "udp://h:1", wings: 2)"#,
                "",
            ),
        ] {
            let e = rig(text).expect_err(text).to_string();
            assert!(e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn a_rigs_realism_parses_and_garbage_is_named() {
        let r =
            rig(r#"(name: "b", scene: "s.ron", link: "udp://127.0.0.1:1", realism: Some(Bench))"#)
                .expect("valid rig");
        assert!(r.realism.as_ref().is_some_and(|x| x.imu && x.kinect_props));
        let r = rig(
            r#"(name: "b", scene: "s.ron", link: "udp://127.0.0.1:1", realism: Some((preset: Bench, imu: false)))"#,
        )
        .expect("valid rig");
        assert!(r.realism.as_ref().is_some_and(|x| !x.imu && x.battery));
        let e = rig(
            r#"(name: "b", scene: "s.ron", link: "udp://127.0.0.1:1", realism: Some(Realistic))"#,
        )
        .expect_err("garbage")
        .to_string();
        assert!(e.contains("realism") && e.contains("`Bench`"), "{e}");
    }
}
