//! What an environment is: its scene, task, action mode and observation keys, and the registry
//! of the environments the Python package registers with gymnasium.

use crate::EnvError;
use depthpilot_types::Scene;
use depthpilot_types::scene::{OracleConfig, Sensing};
use std::path::Path;

/// How an action reaches the quad. Every mode ends as CRTP bytes on the simulated radio link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionMode {
    /// `[roll_deg, pitch_deg, yaw_rate_deg_s, thrust]`: exactly the arguments of cflib's
    /// `Commander.send_setpoint(roll, pitch, yawrate, thrust)` and the legacy commander packet it
    /// sends (`struct.pack('<fffH', roll, -pitch, yawrate, thrust)` on port 3, channel 0).
    /// Thrust is rounded to the nearest integer count.
    Rpyt,
    /// `[x_m, y_m, z_m, yaw_deg]`: a position setpoint (the generic commander's position packet)
    /// to the firmware's own estimator and position controller, fed the vision's positions as
    /// external positions: the on-board architecture. When tracking is lost the pilot holds,
    /// lands and stops as in every on-board flight.
    Position,
    /// `[roll_deg, pitch_deg, yaw_rate_deg_s, thrust]` added, in cflib's units, to the packet the
    /// scene's cascade controller sends to follow the scene's setpoints.
    Residual,
}

impl ActionMode {
    pub fn parse(s: &str) -> Result<Self, EnvError> {
        match s {
            "rpyt" => Ok(Self::Rpyt),
            "position" => Ok(Self::Position),
            "residual" => Ok(Self::Residual),
            other => Err(EnvError::BadInput(format!(
                "action `{other}`: expected `rpyt`, `position` or `residual`"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rpyt => "rpyt",
            Self::Position => "position",
            Self::Residual => "residual",
        }
    }

    /// The action space's bounds (low, high). Actions outside them are clamped to them.
    pub fn bounds(self) -> ([f64; 4], [f64; 4]) {
        match self {
            // Roll and pitch: cfclient's default max angle is 30° (its input device config);
            // yaw rate 200°/s is cfclient's default max yaw rate; thrust is the u16 the packet
            // carries.
            Self::Rpyt => ([-30.0, -30.0, -200.0, 0.0], [30.0, 30.0, 200.0, 65535.0]),
            // A room: ±3 m around the camera, up to 3 m high.
            Self::Position => ([-3.0, -3.0, 0.0, -180.0], [3.0, 3.0, 3.0, 180.0]),
            // A third of the rpyt range on the angles, about a quarter of hover thrust.
            Self::Residual => ([-10.0, -10.0, -90.0, -15000.0], [10.0, 10.0, 90.0, 15000.0]),
        }
    }

    /// The names of the action's four components.
    pub fn names(self) -> [&'static str; 4] {
        match self {
            Self::Rpyt | Self::Residual => ["roll_deg", "pitch_deg", "yaw_rate_deg_s", "thrust"],
            Self::Position => ["x_m", "y_m", "z_m", "yaw_deg"],
        }
    }
}

/// What the episode asks of the quad; it decides the start, the reward's target and the ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Start in the air at the first setpoint, hold the scene's setpoints. Touching the floor or
    /// a crash ends the episode.
    Hover,
    /// Start on the floor where the scene puts the quad, climb to the setpoints and hold them.
    Takeoff,
    /// The scene's moving setpoints (figure-8 or waypoints), from the air.
    Track,
    /// Start 1.5 m up, at rest but tumbled: roll and pitch drawn per episode within ±150° (yaw
    /// within ±180°); level out and hold the setpoint.
    Recovery,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hover => "hover",
            Self::Takeoff => "takeoff",
            Self::Track => "track",
            Self::Recovery => "recovery",
        }
    }

    pub fn parse(s: &str) -> Result<Self, EnvError> {
        match s {
            "hover" => Ok(Self::Hover),
            "takeoff" => Ok(Self::Takeoff),
            "track" => Ok(Self::Track),
            "recovery" => Ok(Self::Recovery),
            other => Err(EnvError::BadInput(format!(
                "task `{other}`: expected hover, takeoff, track or recovery"
            ))),
        }
    }

    /// Whether the episode starts in the air (and so ends when the quad touches the floor).
    pub fn airborne(self) -> bool {
        !matches!(self, Self::Takeoff)
    }
}

/// One observation key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// Metric depth, uint16 millimetres, 0 = no return (the Kinect's frame as it reaches the
    /// host, every `stride`-th pixel of every `stride`-th row).
    Depth,
    /// Seconds since the capture of the newest frame that has reached the host.
    FrameAge,
    /// 1 when a frame reached the host during the last step.
    FrameNew,
    /// The vision's newest position: `[valid, x, y, z, age_s]`.
    Vision,
    /// The off-board estimator at this instant: `[valid, x, y, z, vx, vy, vz]`.
    Estimate,
    /// The privileged true state: position (3), velocity (3), attitude quaternion w x y z (4),
    /// body rates (3).
    State,
    /// The setpoint now: `[x, y, z]`.
    Target,
    /// The action of the last step, as clamped.
    LastAction,
}

impl Key {
    pub const ALL: [Key; 8] = [
        Key::Depth,
        Key::FrameAge,
        Key::FrameNew,
        Key::Vision,
        Key::Estimate,
        Key::State,
        Key::Target,
        Key::LastAction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depth => "depth",
            Self::FrameAge => "frame_age",
            Self::FrameNew => "frame_new",
            Self::Vision => "vision",
            Self::Estimate => "estimate",
            Self::State => "state",
            Self::Target => "target",
            Self::LastAction => "last_action",
        }
    }

    pub fn parse(s: &str) -> Result<Self, EnvError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                EnvError::BadInput(format!(
                    "observation key `{s}`: expected one of {}",
                    Self::ALL.map(Key::as_str).join(", ")
                ))
            })
    }

    /// Values per world (depth: see [`ObsSpec::depth_shape`]).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            Self::Depth => 0,
            Self::FrameAge | Self::FrameNew => 1,
            Self::Vision => 5,
            Self::Estimate => 7,
            Self::State => 13,
            Self::Target => 3,
            Self::LastAction => 4,
        }
    }

    /// Keys that need the synthetic Kinect's frames (without them a Kinect scene is flown with
    /// the oracle sensor in its place, and nothing is rendered).
    pub fn needs_camera(self) -> bool {
        matches!(
            self,
            Self::Depth | Self::FrameAge | Self::FrameNew | Self::Vision
        )
    }
}

/// Which keys the observation has, and the depth image's subsampling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObsSpec {
    pub keys: Vec<Key>,
    /// Take every `stride`-th pixel of every `stride`-th row (1: the full 512 × 424 frame).
    pub stride: usize,
}

impl ObsSpec {
    /// `state`: the true state, the target and the last action (no rendering).
    pub fn state() -> Self {
        Self {
            keys: vec![Key::State, Key::Target, Key::LastAction],
            stride: 1,
        }
    }

    /// `depth`: what a vision-based policy sees (no privileged state).
    pub fn depth(stride: usize) -> Self {
        Self {
            keys: vec![
                Key::Depth,
                Key::FrameAge,
                Key::FrameNew,
                Key::Vision,
                Key::Estimate,
                Key::Target,
                Key::LastAction,
            ],
            stride,
        }
    }

    /// From a preset name (`state`, `depth`) or a list of keys.
    pub fn parse(keys: &[String], stride: usize) -> Result<Self, EnvError> {
        if !(1..=64).contains(&stride) {
            return Err(EnvError::BadInput(format!(
                "depth downsampling {stride}: expected 1 (full frame) to 64"
            )));
        }
        match keys {
            [one] if one == "state" => return Ok(Self::state()),
            [one] if one == "depth" => return Ok(Self::depth(stride)),
            [] => {
                return Err(EnvError::BadInput(
                    "an observation needs at least one key".into(),
                ));
            }
            _ => {}
        }
        let mut out = Vec::new();
        for k in keys {
            let key = Key::parse(k)?;
            if out.contains(&key) {
                return Err(EnvError::BadInput(format!(
                    "observation key `{k}` is listed twice"
                )));
            }
            out.push(key);
        }
        // A fixed order, whatever the order asked for: the Dict space is sorted anyway.
        out.sort_by_key(|k| Key::ALL.iter().position(|a| a == k));
        Ok(Self { keys: out, stride })
    }

    pub fn has(&self, k: Key) -> bool {
        self.keys.contains(&k)
    }

    pub fn needs_camera(&self) -> bool {
        self.keys.iter().any(|k| k.needs_camera())
    }

    /// Rows and columns of the depth image for a `width × height` camera.
    pub fn depth_shape(&self, width: usize, height: usize) -> (usize, usize) {
        (height.div_ceil(self.stride), width.div_ceil(self.stride))
    }
}

/// A registered environment.
#[derive(Clone, Copy, Debug)]
pub struct EnvSpec {
    /// The gymnasium id.
    pub id: &'static str,
    /// The bundled scene it flies (the text is compiled in; the name is for messages).
    pub scene_file: &'static str,
    scene_text: &'static str,
    pub task: Task,
    /// The default observation: `depth` for Kinect scenes, else `state`.
    pub depth: bool,
    pub summary: &'static str,
}

impl EnvSpec {
    /// The scene as bundled.
    pub fn scene(&self) -> Result<Scene, EnvError> {
        Scene::from_ron_str(self.scene_text, Path::new(self.scene_file))
            .map_err(|e| EnvError::BadInput(e.to_string()))
    }
}

const HOVER: &str = include_str!("../../../scenes/hover.ron");
const HOVER_KINECT: &str = include_str!("../../../scenes/hover_kinect.ron");
const FIGURE8: &str = include_str!("../../../scenes/figure8.ron");
const FIGURE8_KINECT: &str = include_str!("../../../scenes/figure8_kinect.ron");

/// The environments the Python package registers (`DepthPilot/…`).
pub const REGISTRY: &[EnvSpec] = &[
    EnvSpec {
        id: "DepthPilot/Hover-v0",
        scene_file: "scenes/hover.ron",
        scene_text: HOVER,
        task: Task::Hover,
        depth: false,
        summary: "hold 1 m from the air; oracle sensing, state observations",
    },
    EnvSpec {
        id: "DepthPilot/HoverKinect-v0",
        scene_file: "scenes/hover_kinect.ron",
        scene_text: HOVER_KINECT,
        task: Task::Hover,
        depth: true,
        summary: "hold 1 m from the air, seen by the synthetic Kinect v2 looking up",
    },
    EnvSpec {
        id: "DepthPilot/Takeoff-v0",
        scene_file: "scenes/hover.ron",
        scene_text: HOVER,
        task: Task::Takeoff,
        depth: false,
        summary: "take off from the floor to 1 m; oracle sensing",
    },
    EnvSpec {
        id: "DepthPilot/TakeoffKinect-v0",
        scene_file: "scenes/hover_kinect.ron",
        scene_text: HOVER_KINECT,
        task: Task::Takeoff,
        depth: true,
        summary: "take off from the floor beside the Kinect to 1 m above it",
    },
    EnvSpec {
        id: "DepthPilot/Figure8-v0",
        scene_file: "scenes/figure8.ron",
        scene_text: FIGURE8,
        task: Task::Track,
        depth: false,
        summary: "fly the figure-8 of scenes/figure8.ron; oracle sensing",
    },
    EnvSpec {
        id: "DepthPilot/Figure8Kinect-v0",
        scene_file: "scenes/figure8_kinect.ron",
        scene_text: FIGURE8_KINECT,
        task: Task::Track,
        depth: true,
        summary: "fly the figure-8 over the Kinect",
    },
    EnvSpec {
        id: "DepthPilot/Recovery-v0",
        scene_file: "scenes/hover.ron",
        scene_text: HOVER,
        task: Task::Recovery,
        depth: false,
        summary: "recover from a tumble 1.5 m up and hold 1 m; oracle sensing",
    },
];

/// The registered environment `id`.
pub fn spec(id: &str) -> Result<&'static EnvSpec, EnvError> {
    REGISTRY.iter().find(|s| s.id == id).ok_or_else(|| {
        EnvError::BadInput(format!(
            "no environment `{id}`; registered: {}",
            REGISTRY.iter().map(|s| s.id).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The oracle that stands in for a Kinect when no key needs the camera: the same rate and
/// latency, the oracle's default noise.
pub(crate) fn oracle_for(sensing: &Sensing) -> Option<Sensing> {
    match sensing {
        Sensing::Oracle(_) => None,
        Sensing::Kinect(k) => Some(Sensing::Oracle(OracleConfig {
            rate_hz: k.rate_hz,
            latency_s: k.latency_s,
            latency_jitter_s: k.latency_jitter_s.max(0.0),
            drop_probability: k.drop_probability,
            ..OracleConfig::default()
        })),
    }
}
