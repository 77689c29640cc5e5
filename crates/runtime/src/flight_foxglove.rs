//! Foxglove's well-known schemas on a flight log, so that Foxglove (<https://foxglove.dev>) opens
//! an MCAP flight log in 3D. Beside depthpilot's own topics (which stay, for `plot`, the viewer
//! and older logs), the recorder writes, JSON-encoded with Foxglove's schema texts verbatim
//! (`schemas/foxglove/`, MIT, from foxglove-sdk at commit ca8a1ced7):
//!
//! | topic | schema | when |
//! |---|---|---|
//! | `/tf` | `foxglove.FrameTransforms` | every row: world→quad; first row and about once a second also the static world→kinect, world→kinect_optical |
//! | `/quad/pose` | `foxglove.PoseInFrame` | every 4th row (25 Hz): the true pose |
//! | `/quad/estimate` | `foxglove.PoseInFrame` | likewise, when there is an estimate: its position (identity orientation: the estimate has no attitude) |
//! | `/quad/setpoint` | `foxglove.PoseInFrame` | likewise: the setpoint, oriented by the trajectory's yaw at that time |
//! | `/kinect/calibration` | `foxglove.CameraCalibration` | Kinect scenes, with the static transforms |
//! | `/scene` | `foxglove.SceneUpdate` | the room, the Kinect and the quad's body with the static transforms; at 5 Hz a trail segment (each fades after 3 s) and the detection, if any |
//! | `/log` | `foxglove.Log` | safety and firmware state changes, stale vision, a crash |
//!
//! Frames: `world` (z up), `quad` (body: x nose, z up), `kinect` (x along the optical axis, z
//! towards the image's top) and `kinect_optical` (x right, y down, z forward: the camera model's
//! frame). Every timestamp is the message's MCAP log time. Lengths are rounded to 1 µm and
//! quaternion components to 1e-6, which shortens the JSON without losing anything a viewer shows.
//!
//! Static things (room, calibration, static transforms) are repeated once a second, not written
//! once, so that a player that seeks and then shows only the newest message of each topic before
//! the new time still has them (within a second of playing).

use crate::recorder::{Recorder, RecorderError};
use depthpilot_sim::trajectory::setpoint_at;
use depthpilot_sim::{LogRow, Summary};
use depthpilot_types::scene::{Intrinsics, Sensing, Trajectory, WorldConfig};
use depthpilot_types::{Rot, Scene, Vec3};

use crate::foxglove_messages::{
    Arrow, CAMERA_CALIBRATION_SCHEMA, CameraCalibration, Duration, FRAME_TRANSFORMS_SCHEMA,
    FrameTransform, FrameTransforms, KeyValuePair, LOG_SCHEMA, Line, Log, LogLevel,
    POSE_IN_FRAME_SCHEMA, Pose, PoseInFrame, Quaternion, SCENE_UPDATE_SCHEMA, SceneEntity,
    SceneUpdate, Solid, Time, Vector3, rgba,
};

pub const TOPIC_TF: &str = "/tf";
pub const TOPIC_QUAD_POSE: &str = "/quad/pose";
pub const TOPIC_QUAD_ESTIMATE: &str = "/quad/estimate";
pub const TOPIC_QUAD_SETPOINT: &str = "/quad/setpoint";
pub const TOPIC_KINECT_CALIBRATION: &str = "/kinect/calibration";
pub const TOPIC_SCENE: &str = "/scene";
pub const TOPIC_LOG: &str = "/log";

pub const FRAME_WORLD: &str = "world";
pub const FRAME_QUAD: &str = "quad";
pub const FRAME_KINECT: &str = "kinect";
pub const FRAME_KINECT_OPTICAL: &str = "kinect_optical";

/// Kinect v2 depth image size.
pub const KINECT_WIDTH: u32 = 512;
pub const KINECT_HEIGHT: u32 = 424;

/// Static transforms, calibration and room: repeated this often.
const STATIC_EVERY_NS: u64 = 1_000_000_000;
/// Pose topics (`/quad/*`): at most this often (25 Hz: smooth in 3D; `/flight/state` has every
/// row for plots).
const POSE_EVERY_NS: u64 = 40_000_000;
/// Trail and detection: at most this often.
const SCENE_EVERY_NS: u64 = 200_000_000;
/// Rows' stamps are rounded to the ns: a period counts as elapsed within this.
const SLACK_NS: u64 = 1_000_000;
/// How long a trail segment stays; its id is reused after that.
const TRAIL_LIFETIME_NS: u64 = 3_000_000_000;
const TRAIL_SLOTS: u64 = TRAIL_LIFETIME_NS / SCENE_EVERY_NS;
/// A detection sphere stays this long unless replaced.
const DETECTION_LIFETIME_NS: u64 = 300_000_000;
/// A fused measurement older than this is "stale vision" on `/log`.
pub const STALE_VISION_S: f64 = 0.2;

/// The schema name (the schema's `title`) and JSON Schema text of a Foxglove topic.
pub fn foxglove_schema(topic: &str) -> Option<(&'static str, &'static str)> {
    match topic {
        TOPIC_TF => Some(("foxglove.FrameTransforms", FRAME_TRANSFORMS_SCHEMA)),
        TOPIC_QUAD_POSE | TOPIC_QUAD_ESTIMATE | TOPIC_QUAD_SETPOINT => {
            Some(("foxglove.PoseInFrame", POSE_IN_FRAME_SCHEMA))
        }
        TOPIC_KINECT_CALIBRATION => Some(("foxglove.CameraCalibration", CAMERA_CALIBRATION_SCHEMA)),
        TOPIC_SCENE => Some(("foxglove.SceneUpdate", SCENE_UPDATE_SCHEMA)),
        TOPIC_LOG => Some(("foxglove.Log", LOG_SCHEMA)),
        _ => None,
    }
}

/// Where the Kinect stands: `world_from_kinect` (x along the optical axis, y left, z up in the
/// image) and `world_from_optical` (x right, y down, z forward), both at the optical centre.
#[derive(Clone, Debug, PartialEq)]
pub struct KinectFrames {
    pub position_m: Vec3,
    pub world_from_kinect: Rot,
    pub world_from_optical: Rot,
    pub intrinsics: Intrinsics,
}

impl KinectFrames {
    /// `None` for an oracle scene, or a pose whose look-at and up hint are degenerate (which
    /// the flight itself rejects).
    pub fn of_scene(scene: &Scene) -> Option<Self> {
        let Sensing::Kinect(k) = &scene.sensing else {
            return None;
        };
        Self::at(k.position_m, k.look_at_m, k.up_hint, k.intrinsics.resolve())
    }

    /// A Kinect at `position_m` looking at `look_at_m` (as a scene or a camera session's
    /// header says); `None` if the look-at and up hint are degenerate.
    pub fn at(
        position_m: Vec3,
        look_at_m: Vec3,
        up_hint: Vec3,
        intrinsics: Intrinsics,
    ) -> Option<Self> {
        // The camera model's frame (`Rot::look_along`): x right, y down, z forward.
        let world_from_optical = Rot::look_along(look_at_m - position_m, up_hint)?;
        let [x, y, z] = [0, 1, 2].map(|j| {
            let m = &world_from_optical.m;
            Vec3::new(m[0][j], m[1][j], m[2][j])
        });
        Some(Self {
            position_m,
            world_from_kinect: Rot::from_columns(z, -x, -y),
            world_from_optical,
            intrinsics,
        })
    }

    /// world→kinect and world→kinect_optical, stamped `stamp_ns`.
    pub fn transforms(&self, stamp_ns: u64) -> [FrameTransform; 2] {
        let at = |child, r: &Rot| FrameTransform {
            timestamp: Time::from_ns(stamp_ns),
            parent_frame_id: FRAME_WORLD,
            child_frame_id: child,
            translation: Vector3::from_m(self.position_m.to_array()),
            rotation: Quaternion::of(r),
        };
        [
            at(FRAME_KINECT, &self.world_from_kinect),
            at(FRAME_KINECT_OPTICAL, &self.world_from_optical),
        ]
    }
}

/// The Kinect's calibration in Foxglove's (ROS `CameraInfo`, OpenCV) convention.
///
/// Pixel centres: our camera model (`depthpilot_vision::camera`, like libfreenect2's
/// `getPointXYZ`) puts the centre of pixel (column c, row r) at continuous (c + 0.5, r + 0.5), and
/// the scene's `cx`, `cy` are in those coordinates (the synthetic Kinect renders pixel (c, r)
/// along the ray through (c + 0.5, r + 0.5)). OpenCV and ROS put the centre of pixel (c, r) at
/// (c, r). So a point our model projects to u lands at u − 0.5 in OpenCV's coordinates:
/// `cx_opencv = cx − 0.5`, `cy_opencv = cy − 0.5`; focal lengths and distortion do not change.
/// Distortion: ours is OpenCV's Brown model term for term, so `plumb_bob` D = [k1, k2, p1, p2, k3].
pub fn calibration(k: &Intrinsics, stamp_ns: u64) -> CameraCalibration {
    let (cx, cy) = (k.cx - 0.5, k.cy - 0.5);
    CameraCalibration {
        timestamp: Time::from_ns(stamp_ns),
        frame_id: FRAME_KINECT_OPTICAL,
        width: KINECT_WIDTH,
        height: KINECT_HEIGHT,
        distortion_model: "plumb_bob",
        d: [k.k1, k.k2, k.p1, k.p2, k.k3],
        k: [k.fx, 0.0, cx, 0.0, k.fy, cy, 0.0, 0.0, 1.0],
        r: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p: [k.fx, 0.0, cx, 0.0, 0.0, k.fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    }
}

/// Whether `every_ns` has passed since `last` (first time: yes); if so, `last` becomes now.
fn due(last: &mut Option<u64>, stamp_ns: u64, every_ns: u64) -> bool {
    let due = last.is_none_or(|t| stamp_ns + SLACK_NS >= t + every_ns);
    if due {
        *last = Some(stamp_ns);
    }
    due
}

fn safety_level(state: &str) -> LogLevel {
    match state {
        "holding" | "landing" | "cut" => LogLevel::Warning,
        _ => LogLevel::Info,
    }
}

fn firmware_level(state: &str) -> LogLevel {
    match state {
        "fresh" => LogLevel::Info,
        "levelling" | "disabled" => LogLevel::Warning,
        _ => LogLevel::Error,
    }
}

/// Writes the Foxglove topics of one flight, row by row (see the module doc).
#[derive(Debug)]
pub struct FlightTopics {
    trajectory: Trajectory,
    kinect: Option<KinectFrames>,
    world: WorldConfig,
    quad_arm_m: f64,
    last_static_ns: Option<u64>,
    last_scene_ns: Option<u64>,
    last_pose_ns: Option<u64>,
    trail_updates: u64,
    trail_from: Option<Vector3>,
    safety: Option<&'static str>,
    firmware: Option<&'static str>,
    /// Since when (flight time) vision has been stale, if it is.
    stale_since_s: Option<f64>,
}

impl FlightTopics {
    pub fn new(scene: &Scene) -> Self {
        Self {
            trajectory: scene.setpoints.clone(),
            kinect: KinectFrames::of_scene(scene),
            world: scene.world.clone(),
            quad_arm_m: scene.quad.arm_m,
            last_static_ns: None,
            last_scene_ns: None,
            last_pose_ns: None,
            trail_updates: 0,
            trail_from: None,
            safety: None,
            firmware: None,
            stale_since_s: None,
        }
    }

    /// Records this row's Foxglove messages at log time `stamp_ns`.
    pub(crate) fn row(
        &mut self,
        rec: &mut Recorder,
        row: &LogRow,
        stamp_ns: u64,
    ) -> Result<(), RecorderError> {
        let time = Time::from_ns(stamp_ns);
        let pose = Pose::of_row(row);
        let finite = pose.position.is_finite();
        let statics_due = due(&mut self.last_static_ns, stamp_ns, STATIC_EVERY_NS);

        let mut transforms = Vec::with_capacity(3);
        if finite {
            transforms.push(FrameTransform {
                timestamp: time,
                parent_frame_id: FRAME_WORLD,
                child_frame_id: FRAME_QUAD,
                translation: pose.position,
                rotation: pose.orientation,
            });
        }
        if statics_due && let Some(k) = &self.kinect {
            transforms.extend(k.transforms(stamp_ns));
        }
        if !transforms.is_empty() {
            rec.record(TOPIC_TF, stamp_ns, &FrameTransforms { transforms })?;
        }
        if statics_due {
            if let Some(k) = &self.kinect {
                rec.record(
                    TOPIC_KINECT_CALIBRATION,
                    stamp_ns,
                    &calibration(&k.intrinsics, stamp_ns),
                )?;
            }
            let entities = self.static_entities(stamp_ns);
            rec.record(
                TOPIC_SCENE,
                stamp_ns,
                &SceneUpdate {
                    deletions: [],
                    entities,
                },
            )?;
        }

        let in_world = |pose| PoseInFrame {
            timestamp: time,
            frame_id: FRAME_WORLD,
            pose,
        };
        if due(&mut self.last_pose_ns, stamp_ns, POSE_EVERY_NS) {
            self.poses(rec, row, pose, in_world, stamp_ns)?;
        }
        if finite && due(&mut self.last_scene_ns, stamp_ns, SCENE_EVERY_NS) {
            let entities = self.moving_entities(row, pose.position, stamp_ns);
            rec.record(
                TOPIC_SCENE,
                stamp_ns,
                &SceneUpdate {
                    deletions: [],
                    entities,
                },
            )?;
        }

        for log in self.changes(row, time) {
            rec.record(TOPIC_LOG, stamp_ns, &log)?;
        }
        Ok(())
    }

    /// `/quad/pose`, `/quad/estimate` (if any), `/quad/setpoint`.
    fn poses(
        &self,
        rec: &mut Recorder,
        row: &LogRow,
        pose: Pose,
        in_world: impl Fn(Pose) -> PoseInFrame,
        stamp_ns: u64,
    ) -> Result<(), RecorderError> {
        if pose.position.is_finite() {
            rec.record(TOPIC_QUAD_POSE, stamp_ns, &in_world(pose))?;
        }
        if let Some(e) = row.estimate_m.map(Pose::at)
            && e.position.is_finite()
        {
            rec.record(TOPIC_QUAD_ESTIMATE, stamp_ns, &in_world(e))?;
        }
        let setpoint = Pose {
            position: Vector3::from_m(row.setpoint_m),
            orientation: Quaternion::from_yaw(setpoint_at(&self.trajectory, row.t_s).yaw_rad),
        };
        if setpoint.position.is_finite() {
            rec.record(TOPIC_QUAD_SETPOINT, stamp_ns, &in_world(setpoint))?;
        }
        Ok(())
    }

    /// Records a crash from the flight's summary, at the impact's time.
    pub(crate) fn summary(
        &mut self,
        rec: &mut Recorder,
        summary: &Summary,
        end_ns: u64,
    ) -> Result<(), RecorderError> {
        if !summary.crashed {
            return Ok(());
        }
        let (stamp_ns, message) = match &summary.crash {
            Some(i) => (
                (i.t_s * 1e9).round() as u64,
                format!(
                    "crash at {:.2} s: {:.2} m/s into the {}, tilted {:.0}°",
                    i.t_s,
                    i.speed_m_s,
                    if i.with_floor { "floor" } else { "obstacle" },
                    i.tilt_deg
                ),
            ),
            None => (end_ns, "the flight crashed".to_string()),
        };
        let log = Log {
            timestamp: Time::from_ns(stamp_ns),
            level: LogLevel::Error,
            message,
            name: "sim",
            file: "",
            line: 0,
        };
        rec.record(TOPIC_LOG, stamp_ns, &log)
    }

    /// Room (floor, boxes), the Kinect's body and the quad's body; kept until replaced.
    fn static_entities(&self, stamp_ns: u64) -> Vec<SceneEntity> {
        let solid = |center: [f64; 3], size: [f64; 3], color| Solid {
            pose: Pose::at(center),
            size: Vector3::from_m(size),
            color,
        };
        let mut room = SceneEntity::new(stamp_ns, FRAME_WORLD, "room", Duration::FOREVER, false);
        if self.world.floor {
            room.cubes.push(solid(
                [0.0, 0.0, -0.005],
                [4.0, 4.0, 0.01],
                rgba(0.5, 0.5, 0.5, 0.4),
            ));
        }
        for b in &self.world.boxes {
            room.cubes.push(solid(
                b.center_m.to_array(),
                (b.half_extents_m * 2.0).to_array(),
                rgba(0.6, 0.45, 0.3, 0.8),
            ));
        }
        let arrow = |length_m: f64, color| Arrow {
            pose: Pose::at([0.0; 3]),
            shaft_length: length_m * 0.75,
            shaft_diameter: length_m * 0.05,
            head_length: length_m * 0.25,
            head_diameter: length_m * 0.12,
            color,
        };
        let mut quad = SceneEntity::new(stamp_ns, FRAME_QUAD, "quad", Duration::FOREVER, true);
        // Motors at 45° on arms of `arm_m`: adjacent motors are arm·√2 apart.
        let side_m = self.quad_arm_m * std::f64::consts::SQRT_2;
        quad.cubes.push(solid(
            [0.0; 3],
            [side_m, side_m, 0.02],
            rgba(0.2, 0.6, 1.0, 0.9),
        ));
        quad.arrows.push(arrow(0.12, rgba(1.0, 0.2, 0.2, 1.0)));
        let mut out = vec![room, quad];
        if self.kinect.is_some() {
            // The Kinect v2's body: 67 mm deep, 249 mm wide, 66 mm tall; the arrow is its view.
            let mut kinect =
                SceneEntity::new(stamp_ns, FRAME_KINECT, "kinect", Duration::FOREVER, true);
            kinect.cubes.push(solid(
                [-0.0335, 0.0, 0.0],
                [0.067, 0.249, 0.066],
                rgba(0.15, 0.15, 0.15, 1.0),
            ));
            kinect.arrows.push(arrow(0.3, rgba(0.2, 1.0, 0.3, 1.0)));
            out.push(kinect);
        }
        out
    }

    /// The newest trail segment (they fade after 3 s) and the detection, if this row has one.
    fn moving_entities(&mut self, row: &LogRow, at: Vector3, stamp_ns: u64) -> Vec<SceneEntity> {
        let mut out = Vec::with_capacity(2);
        let from = self.trail_from.replace(at).unwrap_or(at);
        let slot = self.trail_updates % TRAIL_SLOTS;
        self.trail_updates += 1;
        let mut trail = SceneEntity::new(
            stamp_ns,
            FRAME_WORLD,
            &format!("trail/{slot}"),
            Duration::from_ns(TRAIL_LIFETIME_NS),
            false,
        );
        trail.lines.push(Line {
            kind: 0,
            pose: Pose::at([0.0; 3]),
            thickness: 0.01,
            scale_invariant: false,
            points: vec![from, at],
            color: rgba(1.0, 0.8, 0.1, 1.0),
            colors: [],
            indices: [],
        });
        out.push(trail);
        if let (Some(pixels), Some(e)) = (row.detection_pixels, row.estimate_m) {
            // The row has no measured position: the sphere sits at the estimate the measurement
            // was fused into (within a few mm of it when tracking).
            let mut d = SceneEntity::new(
                stamp_ns,
                FRAME_WORLD,
                "detection",
                Duration::from_ns(DETECTION_LIFETIME_NS),
                false,
            );
            d.metadata.push(KeyValuePair {
                key: "pixels",
                value: pixels.to_string(),
            });
            d.spheres.push(Solid {
                pose: Pose::at(e),
                size: Vector3::from_m([0.06; 3]),
                color: rgba(0.1, 1.0, 0.4, 0.5),
            });
            out.push(d);
        }
        out
    }

    /// Safety and firmware state changes and stale vision, as log lines.
    fn changes(&mut self, row: &LogRow, timestamp: Time) -> Vec<Log> {
        let mut out = Vec::new();
        let mut say = |level, name, message: String| {
            out.push(Log {
                timestamp,
                level,
                message,
                name,
                file: "",
                line: 0,
            })
        };
        if self.safety != Some(row.safety) {
            let msg = match self.safety {
                None => format!("safety: {}", row.safety),
                Some(old) => format!("safety: {old} → {}", row.safety),
            };
            say(safety_level(row.safety), "safety", msg);
            self.safety = Some(row.safety);
        }
        if self.firmware != Some(row.firmware) {
            let msg = match self.firmware {
                None => format!("firmware: {}", row.firmware),
                Some(old) => format!("firmware: {old} → {}", row.firmware),
            };
            say(firmware_level(row.firmware), "firmware", msg);
            self.firmware = Some(row.firmware);
        }
        // While acquiring (a blind take-off from a known spot) no measurement is expected yet.
        if let Some(age_s) = row.measurement_age_s {
            match self.stale_since_s {
                None if age_s > STALE_VISION_S && row.safety != "acquiring" => {
                    say(
                        LogLevel::Warning,
                        "vision",
                        format!("vision stale: the newest measurement is {age_s:.2} s old"),
                    );
                    self.stale_since_s = Some(row.t_s);
                }
                Some(since) if age_s <= STALE_VISION_S => {
                    say(
                        LogLevel::Info,
                        "vision",
                        format!("vision fresh again after {:.2} s", row.t_s - since),
                    );
                    self.stale_since_s = None;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::{CameraIntrinsics, KinectConfig};
    use depthpilot_vision::camera::CameraModel;

    fn oracle_scene() -> Scene {
        depthpilot_types::scene::parse(
            r#"Scene(name: "t", duration_s: 5.0, setpoints: Hover(position_m: (0.0, 0.0, 1.0)))"#,
        )
        .expect("scene")
    }

    fn kinect_scene(position_m: Vec3, look_at_m: Vec3, up_hint: Vec3) -> Scene {
        let mut scene = oracle_scene();
        scene.sensing = Sensing::Kinect(KinectConfig {
            intrinsics: CameraIntrinsics::KinectV2Checkerboard,
            position_m,
            look_at_m,
            up_hint,
            ..KinectConfig::default()
        });
        scene
    }

    fn rot_of(q: &Quaternion) -> Rot {
        Rot::from_quat(q.w, q.x, q.y, q.z)
    }

    /// kinect_optical maps the camera's look direction to +z, and agrees with the camera model;
    /// kinect's +x is the look direction and +z the image's up.
    #[test]
    fn kinect_frames_follow_the_camera_model() {
        let (p, look, up) = (
            Vec3::new(2.5, 0.3, 0.8),
            Vec3::new(0.0, 0.0, 1.0),
            Vec3::new(0.0, 0.0, 1.0),
        );
        let scene = kinect_scene(p, look, up);
        let k = KinectFrames::of_scene(&scene).expect("kinect scene");
        let t = k.transforms(0);
        assert_eq!(t[0].child_frame_id, FRAME_KINECT);
        assert_eq!(t[1].child_frame_id, FRAME_KINECT_OPTICAL);
        let dir = {
            let d = look - p;
            d * (1.0 / d.norm())
        };
        let optical = rot_of(&t[1].rotation);
        let z = optical.apply(Vec3::new(0.0, 0.0, 1.0));
        assert!((z - dir).norm() < 1e-5, "optical +z {z:?} vs look {dir:?}");
        let model = CameraModel::new(Intrinsics::KINECT_V2_DEVICE2, p, look, up).expect("pose");
        // A point ahead of the camera, through the optical transform and through the model.
        let in_cam = Vec3::new(0.2, -0.1, 1.5);
        let via_tf = optical.apply(in_cam)
            + Vec3::new(t[1].translation.x, t[1].translation.y, t[1].translation.z);
        assert!((via_tf - model.world_from_camera_point(in_cam)).norm() < 1e-5);
        // The image's y goes down, so the up hint points to optical −y and kinect +z.
        assert!(optical.apply(Vec3::new(0.0, -1.0, 0.0)).dot(up) > 0.0);
        let body = rot_of(&t[0].rotation);
        assert!((body.apply(Vec3::new(1.0, 0.0, 0.0)) - dir).norm() < 1e-5);
        assert!(body.apply(Vec3::new(0.0, 0.0, 1.0)).dot(up) > 0.0);
        for q in [&t[0].rotation, &t[1].rotation] {
            assert!((q.norm() - 1.0).abs() < 2e-6);
        }
        let oracle = oracle_scene();
        assert!(matches!(oracle.sensing, Sensing::Oracle(_)));
        assert!(KinectFrames::of_scene(&oracle).is_none());
    }

    /// The calibration's K, P and D are the intrinsics with the principal point moved by half a
    /// pixel (pixel centres at c + 0.5 in our model, at c in OpenCV's), and K projects a point
    /// to where our model does, less half a pixel, when there is no distortion.
    #[test]
    fn calibration_matches_the_intrinsics() {
        let k = Intrinsics::KINECT_V2_CHECKERBOARD;
        let c = calibration(&k, 1_500_000_000);
        assert_eq!(
            c.timestamp,
            Time {
                sec: 1,
                nsec: 500_000_000
            }
        );
        assert_eq!((c.width, c.height), (512, 424));
        assert_eq!(c.distortion_model, "plumb_bob");
        assert_eq!(c.d, [k.k1, k.k2, k.p1, k.p2, k.k3]);
        assert_eq!(c.k[0], k.fx);
        assert_eq!(c.k[4], k.fy);
        assert_eq!(c.k[2], k.cx - 0.5);
        assert_eq!(c.k[5], k.cy - 0.5);
        assert_eq!(c.k[8], 1.0);
        assert_eq!(c.r, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(&c.p[0..3], &c.k[0..3]);
        assert_eq!(&c.p[4..7], &c.k[3..6]);
        assert_eq!(&c.p[8..11], &c.k[6..9]);
        assert_eq!([c.p[3], c.p[7], c.p[11]], [0.0; 3]);
        let flat = Intrinsics {
            k1: 0.0,
            k2: 0.0,
            k3: 0.0,
            p1: 0.0,
            p2: 0.0,
            ..k
        };
        let model = CameraModel::new(
            flat,
            Vec3::ZERO,
            Vec3::new(0.0, 0.0, 1.0),
            Vec3::new(1.0, 0.0, 0.0),
        )
        .expect("pose");
        let c = calibration(&flat, 0);
        let p = Vec3::new(0.3, -0.2, 2.0);
        let (u, v) = model.pixel_of(p).expect("in front");
        let (u_cv, v_cv) = (c.k[0] * p.x / p.z + c.k[2], c.k[4] * p.y / p.z + c.k[5]);
        assert!((u - 0.5 - u_cv).abs() < 1e-9 && (v - 0.5 - v_cv).abs() < 1e-9);
        // The centre of pixel (0, 0): (0.5, 0.5) for our model, (0, 0) for OpenCV.
        let ray = model.ray_of(0.5, 0.5);
        let u_cv = c.k[0] * ray.x / ray.z + c.k[2];
        assert!(u_cv.abs() < 1e-9, "{u_cv}");
    }

    /// Schema names are the schemas' titles, and every message kind serialises with the
    /// fields its schema requires.
    #[test]
    fn schema_names_are_the_titles() {
        for topic in [
            TOPIC_TF,
            TOPIC_QUAD_POSE,
            TOPIC_QUAD_ESTIMATE,
            TOPIC_QUAD_SETPOINT,
            TOPIC_KINECT_CALIBRATION,
            TOPIC_SCENE,
            TOPIC_LOG,
        ] {
            let (name, text) = foxglove_schema(topic).expect("schema");
            let schema: serde_json::Value = serde_json::from_str(text).expect("JSON");
            assert_eq!(schema["title"], name, "{topic}");
        }
        assert!(foxglove_schema("/flight/state").is_none());
        let (_, text) = foxglove_schema(TOPIC_SCENE).expect("schema");
        let schema: serde_json::Value = serde_json::from_str(text).expect("JSON");
        let required = &schema["properties"]["entities"]["items"]["required"];
        let entity = serde_json::to_value(SceneEntity::new(
            0,
            FRAME_WORLD,
            "x",
            Duration::FOREVER,
            false,
        ))
        .expect("json");
        for field in required.as_array().expect("array") {
            let f = field.as_str().expect("string");
            assert!(entity.get(f).is_some(), "entity lacks {f}");
        }
    }

    fn row(t_s: f64, safety: &'static str, age_s: Option<f64>) -> LogRow {
        LogRow {
            safety,
            measurement_age_s: age_s,
            ..crate::recorder::tests::row(t_s)
        }
    }

    fn summary(crash_t_s: Option<f64>) -> Summary {
        Summary {
            scene: "t".to_string(),
            seed: 1,
            controller: "cascade",
            sim_seconds: 3.0,
            physics_steps: 0,
            frames: 0,
            detections: 0,
            rms_error_m: 0.0,
            max_error_m: 0.0,
            rms_estimate_error_m: 0.0,
            crashed: crash_t_s.is_some(),
            crash: crash_t_s.map(|t_s| depthpilot_sim::world::Impact {
                t_s,
                speed_m_s: 2.5,
                tilt_deg: 80.0,
                with_floor: true,
                crash: true,
            }),
            touchdowns: 0,
            final_position_m: [0.0; 3],
            final_safety_state: "cut",
            firmware_lockout: false,
            radio_packets_sent: 0,
            radio_packets_dropped: 0,
            radio_decode_errors: 0,
            gusts: 0,
            steps: Vec::new(),
            vision: None,
            safety_events: Vec::new(),
            realism: Vec::new(),
        }
    }

    /// Every `timestamp` object in a JSON value, as ns.
    fn stamps(v: &serde_json::Value, out: &mut Vec<u64>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    if k == "timestamp" {
                        let sec = x["sec"].as_u64().expect("sec");
                        let nsec = x["nsec"].as_u64().expect("nsec");
                        out.push(sec * 1_000_000_000 + nsec);
                    } else {
                        stamps(x, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| stamps(x, out)),
            _ => {}
        }
    }

    /// Through a recorder: the Foxglove topics beside the rows (which keep their topic and
    /// count), timestamps equal to log times, the static Kinect transforms once a second,
    /// stale vision said once per episode, the crash at the impact's time before the summary;
    /// and without `with_foxglove`, none of it.
    #[test]
    fn a_recorded_flight_has_the_foxglove_topics() {
        use crate::recorder::{
            FlightClock, FlightHeader, TOPIC_STATE, TOPIC_SUMMARY, read_recording,
        };
        use depthpilot_sim::LogSink;
        let scene = kinect_scene(
            Vec3::ZERO,
            Vec3::new(0.0, 0.0, 1.0),
            Vec3::new(1.0, 0.0, 0.0),
        );
        let header = FlightHeader::new("t", 1, scene.rates.clone(), FlightClock::Virtual, "x");
        let path = std::env::temp_dir().join(format!("depthpilot-fox-{}.mcap", std::process::id()));
        let mut rec = Recorder::start_flight(&path, &header)
            .expect("create")
            .with_foxglove(&scene);
        for i in 0..300 {
            let t_s = 0.01 * f64::from(i);
            // Stale from 0.5 s to 1.0 s and from 2.0 s to 2.5 s; holding in the first stretch;
            // acquiring (not said stale) for the first 0.3 s.
            let stale = t_s < 0.3 || (0.5..1.0).contains(&t_s) || (2.0..2.5).contains(&t_s);
            let safety = if t_s < 0.3 {
                "acquiring"
            } else if (0.6..1.1).contains(&t_s) {
                "holding"
            } else {
                "tracking"
            };
            rec.row(&row(t_s, safety, Some(if stale { 0.3 } else { 0.03 })));
        }
        rec.record_summary(&summary(Some(1.234))).expect("summary");
        rec.finish().expect("finish");
        let r = read_recording(&std::fs::read(&path).expect("read"));
        let _ = std::fs::remove_file(&path);
        assert!(r.damage.is_none(), "{:?}", r.damage);
        assert_eq!(r.topic(TOPIC_STATE).count(), 300);
        assert_eq!(r.topic(TOPIC_TF).count(), 300);
        for m in &r.messages {
            if foxglove_schema(&m.topic).is_none() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&m.data).expect("json");
            let mut found = Vec::new();
            stamps(&v, &mut found);
            assert!(!found.is_empty(), "{}", m.topic);
            assert!(
                found.iter().all(|&t| t == m.log_time_ns),
                "{}: {found:?} vs {}",
                m.topic,
                m.log_time_ns
            );
        }
        let statics: Vec<u64> = r
            .topic(TOPIC_TF)
            .filter(|m| String::from_utf8_lossy(&m.data).contains(FRAME_KINECT_OPTICAL))
            .map(|m| m.log_time_ns)
            .collect();
        assert_eq!(statics, [0, 1_000_000_000, 2_000_000_000]);
        assert_eq!(r.topic(TOPIC_KINECT_CALIBRATION).count(), 3);
        assert_eq!(r.topic(TOPIC_QUAD_POSE).count(), 75);
        assert_eq!(r.topic(TOPIC_QUAD_ESTIMATE).count(), 75);
        let logs: Vec<(u64, serde_json::Value)> = r
            .topic(TOPIC_LOG)
            .map(|m| {
                (
                    m.log_time_ns,
                    serde_json::from_slice(&m.data).expect("json"),
                )
            })
            .collect();
        let said = |what: &str| {
            logs.iter()
                .filter(|(_, l)| l["message"].as_str().is_some_and(|s| s.contains(what)))
                .count()
        };
        assert_eq!(said("vision stale"), 2, "{logs:?}");
        assert_eq!(said("vision fresh again"), 2, "{logs:?}");
        assert_eq!(said("safety: tracking → holding"), 1, "{logs:?}");
        assert_eq!(said("safety: holding → tracking"), 1, "{logs:?}");
        let (t, crash) = logs.last().expect("logs");
        assert_eq!(
            (*t, crash["level"].as_u64()),
            (1_234_000_000, Some(4)),
            "{crash}"
        );
        assert_eq!(
            r.messages.last().map(|m| m.topic.as_str()),
            Some(TOPIC_SUMMARY)
        );

        // Without `with_foxglove`: depthpilot's topics only, as before.
        let mut rec = Recorder::start_flight(&path, &header).expect("create");
        rec.row(&row(0.0, "tracking", None));
        rec.finish().expect("finish");
        let r = read_recording(&std::fs::read(&path).expect("read"));
        let _ = std::fs::remove_file(&path);
        assert!(
            r.messages
                .iter()
                .all(|m| foxglove_schema(&m.topic).is_none())
        );
    }
}
