//! Foxglove's well-known message types (<https://docs.foxglove.dev/docs/visualization/message-schemas>)
//! as depthpilot writes them, JSON-encoded, and their schema texts: verbatim copies of
//! foxglove-sdk's `schemas/jsonschema/*.json` at commit ca8a1ced7 (MIT; `schemas/foxglove/`).
//! Only the fields and primitives depthpilot uses are typed; the others serialise as the empty
//! arrays the schemas require. Lengths are rounded to 1 µm and quaternion components to 1e-6.

use depthpilot_sim::LogRow;
use depthpilot_types::Rot;
use serde::Serialize;

pub const FRAME_TRANSFORMS_SCHEMA: &str = include_str!("../schemas/foxglove/FrameTransforms.json");
pub const POSE_IN_FRAME_SCHEMA: &str = include_str!("../schemas/foxglove/PoseInFrame.json");
pub const CAMERA_CALIBRATION_SCHEMA: &str =
    include_str!("../schemas/foxglove/CameraCalibration.json");
pub const SCENE_UPDATE_SCHEMA: &str = include_str!("../schemas/foxglove/SceneUpdate.json");
pub const LOG_SCHEMA: &str = include_str!("../schemas/foxglove/Log.json");
pub const RAW_IMAGE_SCHEMA: &str = include_str!("../schemas/foxglove/RawImage.json");
pub const IMAGE_ANNOTATIONS_SCHEMA: &str =
    include_str!("../schemas/foxglove/ImageAnnotations.json");

/// `time`: seconds and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Time {
    pub sec: u64,
    pub nsec: u32,
}

impl Time {
    pub fn from_ns(ns: u64) -> Self {
        Self {
            sec: ns / 1_000_000_000,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// `duration` (a lifetime; zero: forever).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Duration {
    pub sec: i64,
    pub nsec: u32,
}

impl Duration {
    pub const FOREVER: Self = Self { sec: 0, nsec: 0 };

    pub fn from_ns(ns: u64) -> Self {
        let t = Time::from_ns(ns);
        Self {
            sec: t.sec as i64,
            nsec: t.nsec,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Vector3 {
    pub x: f64,
    pub y: f64,
    pub z: f64,
}

impl Vector3 {
    /// Rounded to 1 µm.
    pub fn from_m(v: [f64; 3]) -> Self {
        Self {
            x: round6(v[0]),
            y: round6(v[1]),
            z: round6(v[2]),
        }
    }

    pub fn is_finite(&self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Quaternion {
    pub x: f64,
    pub y: f64,
    pub z: f64,
    pub w: f64,
}

impl Quaternion {
    pub const IDENTITY: Self = Self {
        x: 0.0,
        y: 0.0,
        z: 0.0,
        w: 1.0,
    };

    /// The rotation's unit quaternion, normalised, components rounded to 1e-6 (so its norm is 1
    /// within 2e-6); identity for a non-finite rotation.
    pub fn of(r: &Rot) -> Self {
        let [w, x, y, z] = r.to_quat();
        let n = (w * w + x * x + y * y + z * z).sqrt();
        if !n.is_finite() || n < 1e-12 {
            return Self::IDENTITY;
        }
        // The same rotation with w ≥ 0, so that equal poses give equal bytes.
        let s = if w < 0.0 { -1.0 / n } else { 1.0 / n };
        Self {
            x: round6(x * s),
            y: round6(y * s),
            z: round6(z * s),
            w: round6(w * s),
        }
    }

    /// Rotation about world z by `yaw_rad`.
    pub fn from_yaw(yaw_rad: f64) -> Self {
        Self::of(&Rot::from_rpy(0.0, 0.0, yaw_rad))
    }

    pub fn norm(&self) -> f64 {
        (self.x * self.x + self.y * self.y + self.z * self.z + self.w * self.w).sqrt()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Pose {
    pub position: Vector3,
    pub orientation: Quaternion,
}

impl Pose {
    /// The quad's pose from a log row's true position and roll, pitch, yaw.
    pub fn of_row(row: &LogRow) -> Self {
        let [r, p, y] = row.rpy_rad;
        Self {
            position: Vector3::from_m(row.pos_m),
            orientation: Quaternion::of(&Rot::from_rpy(r, p, y)),
        }
    }

    /// At `position_m`, unrotated.
    pub fn at(position_m: [f64; 3]) -> Self {
        Self {
            position: Vector3::from_m(position_m),
            orientation: Quaternion::IDENTITY,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoseInFrame {
    pub timestamp: Time,
    pub frame_id: &'static str,
    pub pose: Pose,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameTransform {
    pub timestamp: Time,
    pub parent_frame_id: &'static str,
    pub child_frame_id: &'static str,
    pub translation: Vector3,
    pub rotation: Quaternion,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrameTransforms {
    pub transforms: Vec<FrameTransform>,
}

/// `foxglove.CameraCalibration`, in the ROS / OpenCV pixel convention (see [`calibration`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraCalibration {
    pub timestamp: Time,
    pub frame_id: &'static str,
    pub width: u32,
    pub height: u32,
    pub distortion_model: &'static str,
    #[serde(rename = "D")]
    pub d: [f64; 5],
    #[serde(rename = "K")]
    pub k: [f64; 9],
    #[serde(rename = "R")]
    pub r: [f64; 9],
    #[serde(rename = "P")]
    pub p: [f64; 12],
}

/// `foxglove.LogLevel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Info = 2,
    Warning = 3,
    Error = 4,
}

impl Serialize for LogLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Log {
    pub timestamp: Time,
    pub level: LogLevel,
    pub message: String,
    /// What said it: `safety`, `firmware`, `vision` or `sim`.
    pub name: &'static str,
    pub file: &'static str,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Color {
    pub r: f64,
    pub g: f64,
    pub b: f64,
    pub a: f64,
}

pub const fn rgba(r: f64, g: f64, b: f64, a: f64) -> Color {
    Color { r, g, b, a }
}

/// A cube or a sphere.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Solid {
    pub pose: Pose,
    pub size: Vector3,
    pub color: Color,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arrow {
    pub pose: Pose,
    pub shaft_length: f64,
    pub shaft_diameter: f64,
    pub head_length: f64,
    pub head_diameter: f64,
    pub color: Color,
}

/// A line strip (`type` 0).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    #[serde(rename = "type")]
    pub kind: u8,
    pub pose: Pose,
    pub thickness: f64,
    pub scale_invariant: bool,
    pub points: Vec<Vector3>,
    pub color: Color,
    pub colors: [Color; 0],
    pub indices: [u32; 0],
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyValuePair {
    pub key: &'static str,
    pub value: String,
}

/// `foxglove.SceneEntity` with the primitives depthpilot uses (the others are always empty).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SceneEntity {
    pub timestamp: Time,
    pub frame_id: &'static str,
    pub id: String,
    pub lifetime: Duration,
    pub frame_locked: bool,
    pub metadata: Vec<KeyValuePair>,
    pub arrows: Vec<Arrow>,
    pub cubes: Vec<Solid>,
    pub spheres: Vec<Solid>,
    pub cylinders: [(); 0],
    pub lines: Vec<Line>,
    pub triangles: [(); 0],
    pub texts: [(); 0],
    pub models: [(); 0],
}

impl SceneEntity {
    /// An entity without primitives; `frame_locked`: it follows its frame as /tf moves it.
    pub fn new(
        stamp_ns: u64,
        frame_id: &'static str,
        id: &str,
        lifetime: Duration,
        frame_locked: bool,
    ) -> Self {
        Self {
            timestamp: Time::from_ns(stamp_ns),
            frame_id,
            id: id.to_string(),
            lifetime,
            frame_locked,
            metadata: Vec::new(),
            arrows: Vec::new(),
            cubes: Vec::new(),
            spheres: Vec::new(),
            cylinders: [],
            lines: Vec::new(),
            triangles: [],
            texts: [],
            models: [],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SceneUpdate {
    pub deletions: [(); 0],
    pub entities: Vec<SceneEntity>,
}

/// `foxglove.RawImage`: `data` is the pixels, base64 in JSON ([`base64`]), `step` bytes a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawImage {
    pub timestamp: Time,
    pub frame_id: &'static str,
    pub width: u32,
    pub height: u32,
    /// E.g. `16UC1`: one little-endian u16 a pixel.
    pub encoding: &'static str,
    pub step: u32,
    pub data: String,
}

/// `foxglove.Point2`, in image coordinates with the origin at the top-left corner of the
/// top-left pixel (so the centre of pixel (c, r) is (c + 0.5, r + 0.5), as in our camera model).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point2 {
    pub x: f64,
    pub y: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CircleAnnotation {
    pub timestamp: Time,
    pub position: Point2,
    pub diameter: f64,
    pub thickness: f64,
    pub fill_color: Color,
    pub outline_color: Color,
}

/// `foxglove.PointsAnnotation`; `type` 1 is `POINTS`, 2 `LINE_LOOP`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointsAnnotation {
    pub timestamp: Time,
    #[serde(rename = "type")]
    pub kind: u8,
    pub points: Vec<Point2>,
    pub outline_color: Color,
    pub outline_colors: Vec<Color>,
    pub fill_color: Color,
    pub thickness: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextAnnotation {
    pub timestamp: Time,
    pub position: Point2,
    pub text: String,
    pub font_size: f64,
    pub text_color: Color,
    pub background_color: Color,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageAnnotations {
    pub timestamp: Time,
    pub circles: Vec<CircleAnnotation>,
    pub points: Vec<PointsAnnotation>,
    pub texts: Vec<TextAnnotation>,
}

/// `bytes` in standard base64 (RFC 4648 §4, padded), as JSON carries a schema's bytes field.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rot_of(q: &Quaternion) -> Rot {
        Rot::from_quat(q.w, q.x, q.y, q.z)
    }

    /// RawImage and ImageAnnotations (circle, points, text) carry every field their schemas
    /// require, and the schemas are the ones titled so.
    #[test]
    fn image_messages_have_the_required_fields() {
        let t = Time::from_ns(5);
        let c = rgba(1.0, 0.0, 0.0, 1.0);
        let at = Point2 { x: 1.5, y: 2.5 };
        let a = ImageAnnotations {
            timestamp: t,
            circles: vec![CircleAnnotation {
                timestamp: t,
                position: at,
                diameter: 3.0,
                thickness: 1.0,
                fill_color: c,
                outline_color: c,
            }],
            points: vec![PointsAnnotation {
                timestamp: t,
                kind: 1,
                points: vec![at],
                outline_color: c,
                outline_colors: Vec::new(),
                fill_color: c,
                thickness: 1.0,
            }],
            texts: vec![TextAnnotation {
                timestamp: t,
                position: at,
                text: "x".to_string(),
                font_size: 12.0,
                text_color: c,
                background_color: c,
            }],
        };
        let image = RawImage {
            timestamp: t,
            frame_id: "kinect_optical",
            width: 1,
            height: 1,
            encoding: "16UC1",
            step: 2,
            data: base64(&[1, 2]),
        };
        let required = |schema: &serde_json::Value, value: &serde_json::Value, what: &str| {
            for f in schema["required"].as_array().expect("required") {
                let f = f.as_str().expect("string");
                assert!(value.get(f).is_some(), "{what} lacks {f}");
            }
        };
        let schema: serde_json::Value = serde_json::from_str(RAW_IMAGE_SCHEMA).expect("JSON");
        assert_eq!(schema["title"], "foxglove.RawImage");
        required(
            &schema,
            &serde_json::to_value(&image).expect("json"),
            "RawImage",
        );
        let schema: serde_json::Value =
            serde_json::from_str(IMAGE_ANNOTATIONS_SCHEMA).expect("JSON");
        assert_eq!(schema["title"], "foxglove.ImageAnnotations");
        let v = serde_json::to_value(&a).expect("json");
        required(&schema, &v, "ImageAnnotations");
        for list in ["circles", "points", "texts"] {
            required(&schema["properties"][list]["items"], &v[list][0], list);
        }
        assert_eq!(v["points"][0]["type"], 1);
    }

    /// base64 is RFC 4648's: its test vectors, and every byte value through a 3-byte group.
    #[test]
    fn base64_matches_rfc_4648() {
        for (raw, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), want, "{raw:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x3e, 0x3f]), "//4APj8=");
        let all: Vec<u8> = (0..=255).collect();
        let text = base64(&all);
        assert_eq!(text.len(), 344);
        assert!(text.ends_with("/P3+/w=="), "{text}");
    }

    /// Every pose's quaternion is a unit quaternion and turns the body as roll, pitch, yaw do.
    #[test]
    fn pose_quaternions_are_normalised_and_right() {
        for (i, rpy) in [
            [0.0, 0.0, 0.0],
            [0.3, -0.2, 2.5],
            [3.1, 0.1, -3.1],
            [-1.2, 1.4, 0.7],
        ]
        .into_iter()
        .enumerate()
        {
            let q = Quaternion::of(&Rot::from_rpy(rpy[0], rpy[1], rpy[2]));
            assert!((q.norm() - 1.0).abs() < 2e-6, "{i}: |q| = {}", q.norm());
            assert!(q.w >= 0.0);
            let want = Rot::from_rpy(rpy[0], rpy[1], rpy[2]);
            let got = rot_of(&q);
            for r in 0..3 {
                for c in 0..3 {
                    assert!((want.m[r][c] - got.m[r][c]).abs() < 1e-5, "{i}: {got:?}");
                }
            }
        }
        let yaw = Quaternion::from_yaw(std::f64::consts::FRAC_PI_2);
        assert!(
            (yaw.z - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6,
            "{yaw:?}"
        );
        assert!((yaw.norm() - 1.0).abs() < 2e-6);
    }
}
