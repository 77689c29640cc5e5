//! The synthetic Kinect v2: renders depth (and IR) frames of the simulated world, runs the vision
//! stage on them and delivers the detections after the camera's latency.
//!
//! Rendering is split as DESIGN §6 asks: the static world (floor, boxes) is ray-cast once, and a
//! handful of noisy copies of it are made up front; each frame copies one and ray-casts only the
//! pixels of the quad's projected bounding box against its parts (body, arms, motor pods,
//! propeller discs), with axial noise growing with depth and incidence angle, lateral jitter,
//! invalid pixels at grazing angles and mixed ("flying") pixels at its silhouette. The IR image is
//! dark except for the 2015 retro-reflective markers under the quad (a centre ring and dots under
//! M2, M3, M4), visible from below.
//!
//! The scene's `realism` adds the Kinect v2's systematic errors (`crate::kinect_errors`): the
//! static ones (wiggling, multipath) are baked into the background once; the warm-up drift
//! re-bakes the background only when it has moved by a quarter millimetre; per frame only the
//! quad's pixels and their silhouette get them. With every item off nothing here changes.

use crate::delay::DelayLine;
use crate::kinect_errors::{self, KinectErrors, PropPixel};
use crate::noise::{FastGaussian, Noise, Stream};
use depthpilot_types::scene::{KinectConfig, Realism, WorldConfig};
use depthpilot_types::{Measurement, Rot, Vec3};
use depthpilot_vision::detector::{Detection, NoDetection};
use depthpilot_vision::{CameraModel, DepthFrame, Detector, DetectorConfig, HEIGHT, WIDTH};
use std::sync::{Arc, Mutex};

/// Noisy copies of the static background made up front (one is picked per frame).
const NOISY_BACKGROUNDS: usize = 8;
/// The background's noise is refreshed in this many row bands, one per frame.
const BACKGROUND_BANDS: u64 = 4;
/// ... and every frame within this many pixels of the quad.
const FRESH_MARGIN_PX: usize = 64;
/// Incidence angle beyond which a ToF pixel returns nothing.
const GRAZING_LIMIT_RAD: f64 = 1.45;
/// Lateral noise: sample-position jitter of the quad's pixels, in pixels (σ).
const LATERAL_SIGMA_PX: f64 = 0.5;
/// Probability that a silhouette pixel mixes foreground and background.
const FLYING_PIXEL_P: f64 = 0.3;
/// The background is baked again when the warm-up drift has moved this far from the baked value
/// (mm): depth is whole millimetres, so a quarter millimetre changes few pixels.
const DRIFT_REBAKE_MM: f64 = 0.25;
/// How much of a silhouette pixel the quad covers (mixed pixels) is sampled at the pixel's centre
/// (weight 1/2) and its four corners (1/8 each; a corner is shared by four pixels and cast once
/// per frame): the trapezoid rule over the pixel's area.
const COVERAGE_CENTRE_WEIGHT: f64 = 0.5;
const COVERAGE_CORNER_WEIGHT: f64 = 0.125;
/// A corner not yet cast this frame / cast and missing the quad.
const CORNER_UNKNOWN: f32 = -1.0;
const CORNER_MISS: f32 = f32::INFINITY;
/// Radius of the propeller discs (m): the Crazyflie's 46 mm propeller (reference/sim_vision.md §1.1,
/// gym cf2x.urdf prop radius 0.0231348 m).
const PROP_RADIUS_M: f64 = 0.0231;
const IR_BACKGROUND: u16 = 400;
const IR_QUAD: u16 = 2_500;
const IR_MARKER: u16 = 30_000;

/// Axial noise σ in mm at depth z (m) and incidence angle θ (rad) (Fankhauser et al. 2015, as
/// reproduced in public code; `reference/sim_vision.md` §4.4).
pub fn axial_sigma_mm(z_m: f64, theta_rad: f64) -> f64 {
    let t = theta_rad.min(1.5);
    let angle = 0.1 * z_m * z_m.sqrt() * t * t
        / ((std::f64::consts::FRAC_PI_2 - t) * (std::f64::consts::FRAC_PI_2 - t));
    (1.5 - 0.5 * z_m + 0.3 * z_m * z_m + angle).max(0.5)
}

/// acos for x in [0, 1] (Abramowitz & Stegun 4.4.45, error < 7e-5 rad): per-pixel incidence
/// angles do not need libm's precision.
fn fast_acos(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    (1.0 - x).sqrt() * (1.570_728_8 + x * (-0.212_114_4 + x * (0.074_261 - 0.018_729_3 * x)))
}

/// `x.round().clamp(1.0, 65535.0) as u16`, bit for bit (NaN gives 0, as the cast does), without
/// the libm call that `round` is on the baseline x86-64 target (no SSE4.1): `x - trunc(x)` is
/// exact for |x| < 2^52, so the half-away-from-zero test on it is too.
#[inline]
pub(crate) fn depth_u16(x: f64) -> u16 {
    if x.is_nan() {
        0
    } else if x < 0.5 {
        // round(x) <= 0 (or 1 for [0.5, 1), handled below) clamps to 1.
        1
    } else if x >= 65_534.5 {
        u16::MAX
    } else {
        let t = x as u32;
        let up = u32::from(x - f64::from(t) >= 0.5);
        (t + up).max(1) as u16
    }
}

/// A part of the quad, in the body frame.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Box with centre, half extents, rotated about body z by an angle (its sine and cosine).
    Box {
        c: Vec3,
        h: Vec3,
        sin: f64,
        cos: f64,
    },
    /// Vertical cylinder: centre of the axis (x, y), z range, radius.
    Cyl {
        x: f64,
        y: f64,
        z0: f64,
        z1: f64,
        r: f64,
    },
}

/// A sphere containing the part.
fn bounding_sphere(part: &Part) -> (Vec3, f64) {
    match *part {
        Part::Box { c, h, .. } => (c, h.norm() + 1e-6),
        Part::Cyl { x, y, z0, z1, r } => {
            let hz = 0.5 * (z1 - z0);
            (
                Vec3::new(x, y, 0.5 * (z0 + z1)),
                (r * r + hz * hz).sqrt() + 1e-6,
            )
        }
    }
}

/// A part with the terms of its ray test that depend only on the ray's origin (the camera, in
/// the body frame), computed once per frame: [`PartRay::intersect`] then gives what
/// [`intersect`] gives for that origin, bit for bit.
#[derive(Clone, Copy, Debug)]
enum PartRay {
    Box {
        /// The origin relative to the box's centre, in the box's frame.
        o: Vec3,
        h: Vec3,
        sin: f64,
        cos: f64,
    },
    Cyl {
        /// The origin relative to the axis.
        ox: f64,
        oy: f64,
        oz: f64,
        z0: f64,
        z1: f64,
        r: f64,
        /// ox² + oy² − r².
        c: f64,
    },
}

impl PartRay {
    fn new(part: &Part, o: Vec3) -> Self {
        match *part {
            Part::Box { c, h, sin, cos } => {
                let v = o - c;
                PartRay::Box {
                    o: Vec3::new(cos * v.x + sin * v.y, -sin * v.x + cos * v.y, v.z),
                    h,
                    sin,
                    cos,
                }
            }
            Part::Cyl { x, y, z0, z1, r } => {
                let (ox, oy) = (o.x - x, o.y - y);
                PartRay::Cyl {
                    ox,
                    oy,
                    oz: o.z,
                    z0,
                    z1,
                    r,
                    c: ox * ox + oy * oy - r * r,
                }
            }
        }
    }

    /// (t, normal) of the nearest hit with t > 0 of the ray with direction `d`.
    #[inline]
    fn intersect(&self, d: Vec3) -> Option<(f64, Vec3)> {
        match *self {
            PartRay::Box { o, h, sin, cos } => {
                let (s, co) = (sin, cos);
                let d = Vec3::new(co * d.x + s * d.y, -s * d.x + co * d.y, d.z);
                let (tn, n) = slab(o, d, h)?;
                Some((tn, Vec3::new(co * n.x - s * n.y, s * n.x + co * n.y, n.z)))
            }
            PartRay::Cyl {
                ox,
                oy,
                oz,
                z0,
                z1,
                r,
                c,
            } => {
                let mut best: Option<(f64, Vec3)> = None;
                let mut consider = |t: f64, n: Vec3| {
                    if t > 1e-9 && best.is_none_or(|(bt, _)| t < bt) {
                        best = Some((t, n));
                    }
                };
                if d.z.abs() > 1e-12 {
                    for (zc, nz) in [(z0, -1.0), (z1, 1.0)] {
                        let t = (zc - oz) / d.z;
                        let (px, py) = (ox + t * d.x, oy + t * d.y);
                        if px * px + py * py <= r * r {
                            consider(t, Vec3::new(0.0, 0.0, nz));
                        }
                    }
                }
                let a = d.x * d.x + d.y * d.y;
                if a > 1e-12 {
                    let b = 2.0 * (ox * d.x + oy * d.y);
                    let disc = b * b - 4.0 * a * c;
                    if disc >= 0.0 {
                        let sq = disc.sqrt();
                        for t in [(-b - sq) / (2.0 * a), (-b + sq) / (2.0 * a)] {
                            let z = oz + t * d.z;
                            if z >= z0 && z <= z1 {
                                let n = Vec3::new(ox + t * d.x, oy + t * d.y, 0.0) * (1.0 / r);
                                consider(t, n);
                            }
                        }
                    }
                }
                best
            }
        }
    }
}

/// Ray (origin o, direction d) against a part; returns (t, normal) of the nearest hit with t > 0.
#[cfg(test)]
fn intersect(part: &Part, o: Vec3, d: Vec3) -> Option<(f64, Vec3)> {
    match *part {
        Part::Box { c, h, sin, cos } => {
            let (s, co) = (sin, cos);
            let rot = |v: Vec3| Vec3::new(co * v.x + s * v.y, -s * v.x + co * v.y, v.z);
            let (o, d) = (rot(o - c), rot(d));
            let (tn, n) = slab(o, d, h)?;
            let unrot = Vec3::new(co * n.x - s * n.y, s * n.x + co * n.y, n.z);
            Some((tn, unrot))
        }
        Part::Cyl { x, y, z0, z1, r } => {
            let (ox, oy) = (o.x - x, o.y - y);
            let mut best: Option<(f64, Vec3)> = None;
            let mut consider = |t: f64, n: Vec3| {
                if t > 1e-9 && best.is_none_or(|(bt, _)| t < bt) {
                    best = Some((t, n));
                }
            };
            // Caps.
            if d.z.abs() > 1e-12 {
                for (zc, nz) in [(z0, -1.0), (z1, 1.0)] {
                    let t = (zc - o.z) / d.z;
                    let (px, py) = (ox + t * d.x, oy + t * d.y);
                    if px * px + py * py <= r * r {
                        consider(t, Vec3::new(0.0, 0.0, nz));
                    }
                }
            }
            // Side.
            let a = d.x * d.x + d.y * d.y;
            if a > 1e-12 {
                let b = 2.0 * (ox * d.x + oy * d.y);
                let c = ox * ox + oy * oy - r * r;
                let disc = b * b - 4.0 * a * c;
                if disc >= 0.0 {
                    let sq = disc.sqrt();
                    for t in [(-b - sq) / (2.0 * a), (-b + sq) / (2.0 * a)] {
                        let z = o.z + t * d.z;
                        if z >= z0 && z <= z1 {
                            let n = Vec3::new(ox + t * d.x, oy + t * d.y, 0.0) * (1.0 / r);
                            consider(t, n);
                        }
                    }
                }
            }
            best
        }
    }
}

/// Ray against an axis-aligned box centred at the origin with half extents h.
#[inline]
fn slab(o: Vec3, d: Vec3, h: Vec3) -> Option<(f64, Vec3)> {
    let mut t_near = f64::NEG_INFINITY;
    let mut t_far = f64::INFINITY;
    let mut normal = Vec3::ZERO;
    for (axis, (oa, da, ha)) in [(o.x, d.x, h.x), (o.y, d.y, h.y), (o.z, d.z, h.z)]
        .into_iter()
        .enumerate()
    {
        if da.abs() < 1e-12 {
            if oa.abs() > ha {
                return None;
            }
            continue;
        }
        let (t1, t2) = ((-ha - oa) / da, (ha - oa) / da);
        let (lo, hi, sign) = if t1 < t2 {
            (t1, t2, -1.0)
        } else {
            (t2, t1, 1.0)
        };
        if lo > t_near {
            t_near = lo;
            normal = match axis {
                0 => Vec3::new(sign, 0.0, 0.0),
                1 => Vec3::new(0.0, sign, 0.0),
                _ => Vec3::new(0.0, 0.0, sign),
            };
        }
        t_far = t_far.min(hi);
    }
    (t_near <= t_far && t_near > 1e-9).then_some((t_near, normal))
}

/// What a part looks like in the IR image.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reflect {
    Plain,
    /// Retro-reflective everywhere.
    Marker,
    /// Retro-reflective outside this radius from the part's axis (the 2015 centre "donut").
    Ring {
        inner_m: f64,
    },
}

/// The parts of a CF2.x (body frame, metres), motor positions M1..M4 at `arm_m`, with the 2015
/// markers: thin retro-reflective discs under the body (a ring) and under M2, M3 and M4.
fn quad_parts(arm_m: f64) -> Vec<(Part, Reflect)> {
    let a = arm_m / std::f64::consts::SQRT_2;
    let motors = [(a, -a), (-a, -a), (-a, a), (a, a)];
    let body = Part::Box {
        c: Vec3::ZERO,
        // PCB with the battery under it: 40 × 30 × 18 mm.
        h: Vec3::new(0.02, 0.015, 0.009),
        sin: 0.0,
        cos: 1.0,
    };
    let ring = Part::Cyl {
        x: 0.0,
        y: 0.0,
        z0: -0.011,
        z1: -0.009,
        r: 0.010,
    };
    let mut parts = vec![
        (body, Reflect::Plain),
        (ring, Reflect::Ring { inner_m: 0.005 }),
    ];
    for (i, &(x, y)) in motors.iter().enumerate() {
        let arm = Part::Box {
            c: Vec3::new(x / 2.0, y / 2.0, 0.0),
            h: Vec3::new(arm_m / 2.0, 0.003, 0.003),
            sin: y.atan2(x).sin(),
            cos: y.atan2(x).cos(),
        };
        let pod = Part::Cyl {
            x,
            y,
            z0: -0.010,
            z1: 0.006,
            r: 0.004,
        };
        let prop = Part::Cyl {
            x,
            y,
            z0: 0.008,
            z1: 0.010,
            r: PROP_RADIUS_M,
        };
        parts.extend([
            (arm, Reflect::Plain),
            (pod, Reflect::Plain),
            (prop, Reflect::Plain),
        ]);
        if i > 0 {
            // Dots under M2, M3, M4.
            let dot = Part::Cyl {
                x,
                y,
                z0: -0.012,
                z1: -0.010,
                r: 0.008,
            };
            parts.push((dot, Reflect::Marker));
        }
    }
    parts
}

/// Does the hit at body-frame point `p` on `part` reflect like a marker?
fn reflects(part: &Part, reflect: Reflect, p: Vec3) -> bool {
    match (reflect, part) {
        (Reflect::Plain, _) => false,
        (Reflect::Marker, _) => true,
        (Reflect::Ring { inner_m }, Part::Cyl { x, y, .. }) => {
            (p.x - x).powi(2) + (p.y - y).powi(2) >= inner_m * inner_m
        }
        (Reflect::Ring { .. }, Part::Box { .. }) => false,
    }
}

/// Statistics of the camera and the vision stage.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct VisionStats {
    pub frames_rendered: u64,
    pub frames_dropped: u64,
    pub frames_blacked_out: u64,
    /// Frames taken while the frame rate had collapsed (`rate_collapses`).
    pub frames_in_collapse: u64,
    /// Frames the camera streamed while the vision was dead (`faults.peer_deaths`).
    pub frames_while_dead: u64,
    /// Vision restarts, and how many of them learnt the background again.
    pub restarts: u64,
    pub relearnt: u64,
    pub detections: u64,
    pub with_yaw: u64,
    pub misses: u64,
    pub learning: u64,
    /// Count per reason of frames without a detection.
    pub miss_reasons: std::collections::BTreeMap<&'static str, u64>,
}

/// A pixel of pass 1: whether it sees the quad ([`Hit::SOME`]); then its Z-depth, incidence
/// angle and marker; whether it is a propeller disc, and then what is behind the disc (another
/// quad part), if the propeller item is on. 40 bytes, so that a frame's box is cheap to write.
#[derive(Clone, Copy, Debug)]
struct Hit {
    z: f64,
    theta: f64,
    behind_z: f64,
    behind_theta: f64,
    /// The part hit, and the part behind a propeller disc ([`Hit::NO_PART`]: none); mixed pixels
    /// look only at these.
    part: u8,
    behind_part: u8,
    flags: u8,
}

impl Hit {
    const SOME: u8 = 1;
    const MARKER: u8 = 2;
    const PROP: u8 = 4;
    const BEHIND_MARKER: u8 = 8;
    const NO_PART: u8 = u8::MAX;
    /// A pixel that misses the quad.
    const MISS: Hit = Hit {
        z: 0.0,
        theta: 0.0,
        behind_z: 0.0,
        behind_theta: 0.0,
        part: Hit::NO_PART,
        behind_part: Hit::NO_PART,
        flags: 0,
    };

    fn is_some(&self) -> bool {
        self.flags & Hit::SOME != 0
    }

    fn is_none(&self) -> bool {
        !self.is_some()
    }

    fn marker(&self) -> bool {
        self.flags & Hit::MARKER != 0
    }

    fn prop(&self) -> bool {
        self.flags & Hit::PROP != 0
    }

    /// (Z-depth, incidence angle, marker) of the quad part behind a propeller disc.
    fn behind(&self) -> Option<(f64, f64, bool)> {
        (self.behind_part != Hit::NO_PART).then_some((
            self.behind_z,
            self.behind_theta,
            self.flags & Hit::BEHIND_MARKER != 0,
        ))
    }

    fn behind_part(&self) -> Option<usize> {
        (self.behind_part != Hit::NO_PART).then_some(usize::from(self.behind_part))
    }
}

/// The camera, its renderer and the detector.
pub struct KinectSensor {
    cfg: KinectConfig,
    cam: CameraModel,
    parts: Vec<(Part, Reflect)>,
    arm_m: f64,
    /// Per pixel: camera-frame ray direction with z = 1 (shared by the sensors of one camera).
    rays: Arc<Vec<Vec3>>,
    background_mm: Vec<u16>,
    noisy: Vec<Vec<u16>>,
    frame: DepthFrame,
    detector: Detector,
    noise: Noise,
    pixel_noise: FastGaussian,
    /// Bounding sphere (centre, radius) of each part, body frame.
    spheres: Vec<(Vec3, f64)>,
    /// Pixels the quad was drawn on last frame (IR to reset).
    dirty: Option<(usize, usize, usize, usize)>,
    hits: Vec<Hit>,
    /// Per part, this frame's ray-independent terms: bounding-sphere test and ray test.
    part_rays: Vec<(Vec3, f64, PartRay)>,
    /// Per frame, the quad's depth at the pixel-grid corners (mixed pixels).
    corners: Vec<f32>,
    rects: Vec<(f64, f64, f64, f64)>,
    /// Per part, this frame: its sphere's direction and half-angle from the camera.
    cones: Vec<Option<(Vec3, f64, f64)>>,
    candidates: Vec<usize>,
    clock: CaptureClock,
    seq: u64,
    in_flight: DelayLine<Measurement>,
    /// The realism layer's systematic errors.
    errors: KinectErrors,
    /// Which parts are propeller discs.
    prop_part: Vec<bool>,
    /// The world, for the quad's multipath (only with that item on).
    world: Option<WorldConfig>,
    /// Pixels the static world returns, and per noisy background their depth before rounding
    /// (only with the warm-up item on, to re-bake the drift).
    returns: Vec<usize>,
    noisy_exact: Vec<Vec<f32>>,
    baked_drift_mm: f64,
    pub stats: VisionStats,
    pub last_detection: Option<Detection>,
    /// Blob size of the newest rendered frame's detection (None: that frame had none).
    pub last_frame_pixels: Option<usize>,
    /// Capture and arrival time of the newest rendered frame.
    last_shot: Option<(u64, u64)>,
}

impl KinectSensor {
    /// The camera with every realism item off.
    pub fn new(
        cfg: &KinectConfig,
        world: &WorldConfig,
        arm_m: f64,
        seed: u64,
    ) -> Result<Self, depthpilot_vision::VisionError> {
        Self::with_realism(cfg, world, arm_m, seed, &Realism::default())
    }

    /// The camera with the Kinect items of `realism` (`kinect_*`, `kinect_on_s`).
    pub fn with_realism(
        cfg: &KinectConfig,
        world: &WorldConfig,
        arm_m: f64,
        seed: u64,
        realism: &Realism,
    ) -> Result<Self, depthpilot_vision::VisionError> {
        let errors = KinectErrors::new(realism, seed);
        let cam = CameraModel::new(
            cfg.intrinsics.resolve(),
            cfg.position_m,
            cfg.look_at_m,
            cfg.up_hint,
        )?;
        let mut noise = Noise::new(seed, Stream::Camera);
        let key = format!(
            "{cam:?}|{world:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            cfg.min_depth_m,
            cfg.max_depth_m,
            cfg.noise_scale,
            errors.wiggle_phase_rad(),
            errors.multipath
        );
        let scene = static_scene(key, || {
            let rays = ray_table(&cam);
            let (background_mm, sigma) = render_static(&cam, world, cfg, &errors, &rays);
            StaticScene {
                rays: Arc::new(rays),
                background_mm,
                sigma,
            }
        });
        let rays = Arc::clone(&scene.rays);
        let background_mm = scene.background_mm.clone();
        let sigma = &scene.sigma;
        let mut pixel_noise = noise.fast_gaussians();
        // Noise only where the static world returns something (often a small part of the image).
        let returns: Vec<usize> = (0..background_mm.len())
            .filter(|&i| background_mm[i] != 0 && (sigma[i] > 0.0 || errors.warmup))
            .collect();
        let mut noisy_exact = Vec::new();
        let mut noisy: Vec<Vec<u16>> = (0..NOISY_BACKGROUNDS)
            .map(|_| {
                let mut frame = background_mm.clone();
                if errors.warmup {
                    // Kept before rounding, so that the drift can be baked in again later.
                    let exact: Vec<f32> = returns
                        .iter()
                        .map(|&i| {
                            (f64::from(background_mm[i]) + sigma[i] * pixel_noise.gaussian()) as f32
                        })
                        .collect();
                    noisy_exact.push(exact);
                    return frame;
                }
                for &i in &returns {
                    frame[i] =
                        depth_u16(f64::from(background_mm[i]) + sigma[i] * pixel_noise.gaussian());
                }
                frame
            })
            .collect();
        let baked_drift_mm = errors.drift_mm(0.0);
        if errors.warmup {
            bake_drift(&mut noisy, &noisy_exact, &returns, baked_drift_mm);
        }
        let detector = Detector::new(cam.clone(), DetectorConfig::default());
        let parts = quad_parts(arm_m);
        let spheres = parts.iter().map(|(p, _)| bounding_sphere(p)).collect();
        let prop_part = parts
            .iter()
            .map(|(p, _)| matches!(p, Part::Cyl { r, .. } if *r == PROP_RADIUS_M))
            .collect();
        Ok(Self {
            clock: CaptureClock {
                period_ns: (1e9 / cfg.rate_hz).round() as u64,
                next_capture_ns: 0,
                collapses: cfg.rate_collapses.clone(),
            },
            cfg: cfg.clone(),
            frame: DepthFrame {
                stamp_ns: 0,
                seq: 0,
                width: WIDTH,
                height: HEIGHT,
                // With the drift on, the first frames already show it everywhere.
                depth_mm: if errors.warmup {
                    noisy[0].clone()
                } else {
                    background_mm.clone()
                },
                ir: cfg.ir_markers.then(|| vec![IR_BACKGROUND; WIDTH * HEIGHT]),
            },
            cam,
            parts,
            spheres,
            dirty: None,
            hits: Vec::new(),
            part_rays: Vec::new(),
            corners: Vec::new(),
            rects: Vec::new(),
            cones: Vec::new(),
            candidates: Vec::new(),
            pixel_noise,
            arm_m,
            rays,
            background_mm,
            noisy,
            detector,
            noise,
            seq: 0,
            in_flight: DelayLine::default(),
            world: errors.multipath.then(|| world.clone()),
            errors,
            prop_part,
            returns,
            noisy_exact,
            baked_drift_mm,
            stats: VisionStats::default(),
            last_detection: None,
            last_frame_pixels: None,
            last_shot: None,
        })
    }

    pub fn camera(&self) -> &CameraModel {
        &self.cam
    }

    /// The noise-free render of the static world (mm, 0 = invalid).
    pub fn static_background(&self) -> &[u16] {
        &self.background_mm
    }

    pub fn due(&self, now_ns: u64) -> bool {
        self.clock.due(now_ns)
    }

    fn blacked_out(&self, t_s: f64) -> bool {
        self.cfg
            .blackouts
            .iter()
            .any(|b| t_s >= b.start_s && b.duration_s.is_none_or(|d| t_s < b.start_s + d))
    }

    /// Renders the frame at `now_ns` for the quad at `pos_m` with attitude `world_from_body`.
    pub fn render(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot) -> &DepthFrame {
        self.seq += 1;
        let t_s = now_ns as f64 * 1e-9;
        if self.errors.warmup {
            let drift_mm = self.errors.drift_mm(t_s);
            if (drift_mm - self.baked_drift_mm).abs() > DRIFT_REBAKE_MM {
                bake_drift(&mut self.noisy, &self.noisy_exact, &self.returns, drift_mm);
                self.baked_drift_mm = drift_mm;
            }
        }
        let pick = (self.noise.uniform() * NOISY_BACKGROUNDS as f64) as usize % NOISY_BACKGROUNDS;
        self.frame.stamp_ns = now_ns;
        self.frame.seq = self.seq;
        let around = self
            .quad_bbox(pos_m, world_from_body)
            .map(|(x0, y0, x1, y1)| {
                let m = FRESH_MARGIN_PX;
                (
                    x0.saturating_sub(m),
                    y0.saturating_sub(m),
                    (x1 + m).min(WIDTH),
                    (y1 + m).min(HEIGHT),
                )
            });
        let src = &self.noisy[pick];
        let depth = &mut self.frame.depth_mm;
        let mut copy_rect = |x0: usize, y0: usize, x1: usize, y1: usize| {
            for r in y0..y1 {
                depth[r * WIDTH + x0..r * WIDTH + x1]
                    .copy_from_slice(&src[r * WIDTH + x0..r * WIDTH + x1]);
            }
        };
        // Fresh background noise: a quarter of the rows per frame (each pixel every 4th frame),
        // and every frame around the quad, where the detector looks. Copying the whole frame
        // every time cost a tenth of a Kinect flight.
        let band = (self.seq % BACKGROUND_BANDS) as usize;
        let rows = HEIGHT.div_ceil(BACKGROUND_BANDS as usize);
        copy_rect(0, band * rows, WIDTH, ((band + 1) * rows).min(HEIGHT));
        let previous = self.dirty.take();
        // The quad's last box (its pixels must go) and the fresh rectangle around it now: the
        // two overlap almost wholly, so copy their bounding rectangle once when that costs no
        // more than copying each (same source, so the frame is the same).
        match (previous, around) {
            (Some(p), Some(a)) => {
                let u = (p.0.min(a.0), p.1.min(a.1), p.2.max(a.2), p.3.max(a.3));
                let area = |r: (usize, usize, usize, usize)| (r.2 - r.0) * (r.3 - r.1);
                if area(u) <= area(p) + area(a) {
                    copy_rect(u.0, u.1, u.2, u.3);
                } else {
                    copy_rect(p.0, p.1, p.2, p.3);
                    copy_rect(a.0, a.1, a.2, a.3);
                }
            }
            (Some(r), None) | (None, Some(r)) => copy_rect(r.0, r.1, r.2, r.3),
            (None, None) => {}
        }
        if let (Some(ir), Some((x0, y0, x1, y1))) = (self.frame.ir.as_mut(), previous) {
            for r in y0..y1 {
                ir[r * WIDTH + x0..r * WIDTH + x1].fill(IR_BACKGROUND);
            }
        }
        self.draw_quad(t_s, pos_m, world_from_body);
        &self.frame
    }

    /// Projected bounding box of the quad, in pixels, or None if not in front of the camera.
    fn quad_bbox(
        &self,
        pos_m: Vec3,
        world_from_body: &Rot,
    ) -> Option<(usize, usize, usize, usize)> {
        let e = self.arm_m / std::f64::consts::SQRT_2 + 0.025;
        let (mut u0, mut v0, mut u1, mut v1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for sx in [-1.0, 1.0] {
            for sy in [-1.0, 1.0] {
                for sz in [-0.012, 0.012] {
                    let w = pos_m + world_from_body.apply(Vec3::new(sx * e, sy * e, sz));
                    let (u, v) = self.cam.pixel_of(self.cam.camera_from_world(w))?;
                    u0 = u0.min(u);
                    v0 = v0.min(v);
                    u1 = u1.max(u);
                    v1 = v1.max(v);
                }
            }
        }
        let pad = 2.0;
        let cl = |x: f64, hi: usize| x.clamp(0.0, hi as f64) as usize;
        let b = (
            cl(u0 - pad, WIDTH),
            cl(v0 - pad, HEIGHT),
            cl(u1 + pad + 1.0, WIDTH),
            cl(v1 + pad + 1.0, HEIGHT),
        );
        (b.0 < b.2 && b.1 < b.3).then_some(b)
    }

    fn draw_quad(&mut self, t_s: f64, pos_m: Vec3, world_from_body: &Rot) {
        let Some((x0, y0, x1, y1)) = self.quad_bbox(pos_m, world_from_body) else {
            return;
        };
        self.dirty = Some((x0, y0, x1, y1));
        let body_from_world = world_from_body.transpose();
        let o_body = body_from_world.apply(self.cam.position_m - pos_m);
        let body_from_cam = body_from_world.mul(&self.cam.world_from_camera);
        let w = x1 - x0;
        // Screen-space rectangle of each part's bounding sphere (pixels), so that a pixel is
        // tested only against the parts that can cover it.
        let (fx, fy) = (self.cam.k.fx, self.cam.k.fy);
        let mut rects = std::mem::take(&mut self.rects);
        rects.clear();
        // Per part, for the cone test of each tile: the sphere's centre in the camera frame, and
        // the sine and cosine of the half-angle it subtends (None: the camera is inside it).
        let mut cones = std::mem::take(&mut self.cones);
        cones.clear();
        for &(sc, sr) in &self.spheres {
            let p_cam = self
                .cam
                .camera_from_world(pos_m + world_from_body.apply(sc));
            let dist = p_cam.norm();
            cones.push((dist > sr).then(|| {
                let sin = sr / dist;
                (p_cam * (1.0 / dist), sin, (1.0 - sin * sin).sqrt())
            }));
            let rect = match self.cam.pixel_of(p_cam) {
                Some((u, v)) if p_cam.z > sr + 1e-3 => {
                    let ru = 1.3 * fx * sr / (p_cam.z - sr) + 2.0;
                    let rv = 1.3 * fy * sr / (p_cam.z - sr) + 2.0;
                    (u - ru, v - rv, u + ru, v + rv)
                }
                _ => (f64::MIN, f64::MIN, f64::MAX, f64::MAX),
            };
            rects.push(rect);
        }
        // Pass 1: ray-cast the box (t = Z-depth because rays have z = 1), tile by tile: each
        // 8×8 tile tests only the parts whose screen rectangle overlaps it. Every pixel of the
        // box is written (a miss where no part can be), so `hits` is not cleared per frame.
        let mut hits = std::mem::take(&mut self.hits);
        let n_hits = w * (y1 - y0);
        if hits.len() < n_hits {
            hits.resize(n_hits, Hit::MISS);
        }
        let mut candidates = std::mem::take(&mut self.candidates);
        // Per part, the ray-independent terms of the bounding-sphere test and of the ray test.
        let mut part_rays = std::mem::take(&mut self.part_rays);
        part_rays.clear();
        part_rays.extend(
            self.spheres
                .iter()
                .zip(&self.parts)
                .map(|(&(sc, sr), (part, _))| {
                    let oc = o_body - sc;
                    (oc, oc.dot(oc) - sr * sr, PartRay::new(part, o_body))
                }),
        );
        let scale = self.cfg.noise_scale;
        let props = self.errors.props();
        // The farthest a pixel's jittered ray can lie from its own ray in the z = 1 plane.
        let jitter_max =
            LATERAL_SIGMA_PX * scale * self.pixel_noise.max_abs() * fx.recip().hypot(fy.recip());
        const TILE: usize = 8;
        for ty in (y0..y1).step_by(TILE) {
            for tx in (x0..x1).step_by(TILE) {
                let (tx1, ty1) = ((tx + TILE).min(x1), (ty + TILE).min(y1));
                // The tile's rays lie within angle α of its centre ray (the undistortion is
                // smooth across 8 pixels: the corners bound it, with 5 % to spare).
                let centre = self.rays[((ty + ty1) / 2) * WIDTH + (tx + tx1) / 2];
                let spread = [(tx, ty), (tx1 - 1, ty), (tx, ty1 - 1), (tx1 - 1, ty1 - 1)]
                    .iter()
                    .map(|&(c, r)| {
                        let d = self.rays[r * WIDTH + c] - centre;
                        d.x.hypot(d.y)
                    })
                    .fold(0.0f64, f64::max);
                let centre_norm = centre.norm();
                let sin_alpha = ((1.05 * spread + jitter_max) / centre_norm + 1e-6).min(1.0);
                let cos_alpha = (1.0 - sin_alpha * sin_alpha).sqrt();
                let axis = centre * (1.0 / centre_norm);
                candidates.clear();
                let mut in_rect = false;
                for (pi, &(ru0, rv0, ru1, rv1)) in rects.iter().enumerate() {
                    if !(ru1 >= tx as f64
                        && ru0 <= tx1 as f64
                        && rv1 >= ty as f64
                        && rv0 <= ty1 as f64)
                    {
                        continue;
                    }
                    in_rect = true;
                    // A ray within α of the axis meets the part's sphere (half-angle A) only if
                    // the sphere's centre lies within A + α of the axis.
                    let in_cone = match cones[pi] {
                        Some((c, sin_a, cos_a)) => {
                            let cos_sum = cos_a * cos_alpha - sin_a * sin_alpha;
                            let sum_below_right_angle =
                                sin_a * cos_alpha + cos_a * sin_alpha < 1.0 && cos_sum > 0.0;
                            !sum_below_right_angle || c.dot(axis) >= cos_sum - 1e-9
                        }
                        None => true,
                    };
                    if in_cone {
                        candidates.push(pi);
                    }
                }
                if candidates.is_empty() {
                    // A tile that only the cone test empties still takes its pixels' lateral
                    // jitter from the stream, as it did before that test (same frames).
                    if in_rect && scale > 0.0 {
                        self.pixel_noise.skip(2 * (tx1 - tx) * (ty1 - ty));
                    }
                    for r in ty..ty1 {
                        hits[(r - y0) * w + (tx - x0)..(r - y0) * w + (tx1 - x0)].fill(Hit::MISS);
                    }
                    continue;
                }
                for r in ty..ty1 {
                    let ray_row = &self.rays[r * WIDTH + tx..r * WIDTH + tx1];
                    let hit_row = &mut hits[(r - y0) * w + (tx - x0)..(r - y0) * w + (tx1 - x0)];
                    for (&ray0, hit_out) in ray_row.iter().zip(hit_row.iter_mut()) {
                        let mut ray = ray0;
                        if scale > 0.0 {
                            // Lateral jitter of the sample position (first order: the
                            // distortion's derivative is ~1 at a fraction of a pixel).
                            let s = LATERAL_SIGMA_PX * scale;
                            ray.x += s * self.pixel_noise.gaussian() / fx;
                            ray.y += s * self.pixel_noise.gaussian() / fy;
                        }
                        let d_body = body_from_cam.apply(ray);
                        let dd = d_body.dot(d_body);
                        let mut best: Option<(f64, Vec3, usize)> = None;
                        // The nearest part that is not a propeller disc (propeller item only).
                        let mut solid: Option<(f64, Vec3, usize)> = None;
                        for &pi in &candidates {
                            // Cheap rejection: the ray misses the part's bounding sphere.
                            let (oc, k, part_ray) = &part_rays[pi];
                            let b = oc.dot(d_body);
                            let disc = b * b - dd * k;
                            if disc < 0.0 {
                                continue;
                            }
                            // The part lies in its sphere, so it cannot be nearer than where
                            // the ray enters the sphere: skip it when that is already behind
                            // the nearest hit it could replace (with the propeller item, a
                            // solid part also competes for the nearest solid hit).
                            let competes = if props && !self.prop_part[pi] {
                                solid
                            } else {
                                best
                            };
                            // Without the square root: t0 > bt ⟺ -b - bt·dd > √disc.
                            if let Some((bt, _, _)) = competes {
                                let lhs = -b - bt * (1.0 + 1e-9) * dd;
                                if lhs > 0.0 && lhs * lhs > disc {
                                    continue;
                                }
                            }
                            if let Some((t, n)) = part_ray.intersect(d_body) {
                                if best.is_none_or(|(bt, _, _)| t < bt) {
                                    best = Some((t, n, pi));
                                }
                                if props
                                    && !self.prop_part[pi]
                                    && solid.is_none_or(|(bt, _, _)| t < bt)
                                {
                                    solid = Some((t, n, pi));
                                }
                            }
                        }
                        let shade = |(t, n, pi): (f64, Vec3, usize)| {
                            let cos = (n.dot(d_body).abs() / d_body.norm()).clamp(0.0, 1.0);
                            let (part, reflect) = &self.parts[pi];
                            let marker = reflects(part, *reflect, o_body + d_body * t);
                            (t, fast_acos(cos), marker)
                        };
                        *hit_out = match best {
                            None => Hit::MISS,
                            Some(b) => {
                                let (z, theta, marker) = shade(b);
                                let prop = props && self.prop_part[b.2];
                                let behind = if prop { solid } else { None };
                                let (behind_z, behind_theta, behind_marker) =
                                    behind.map_or((0.0, 0.0, false), shade);
                                Hit {
                                    z,
                                    theta,
                                    behind_z,
                                    behind_theta,
                                    part: b.2 as u8,
                                    behind_part: behind.map_or(Hit::NO_PART, |s| s.2 as u8),
                                    flags: Hit::SOME
                                        | if marker { Hit::MARKER } else { 0 }
                                        | if prop { Hit::PROP } else { 0 }
                                        | if behind_marker { Hit::BEHIND_MARKER } else { 0 },
                                }
                            }
                        };
                    }
                }
            }
        }
        hits.truncate(n_hits);
        self.part_rays = part_rays;
        self.candidates = candidates;
        self.cones = cones;
        // The systematic errors common to every quad pixel this frame: the warm-up drift and
        // the multipath from a nearby surface (gap from the quad's centre).
        let systematic = self.errors.wiggling() || self.errors.multipath || self.errors.warmup;
        let mut common_mm = self.errors.drift_mm(t_s);
        if let Some(world) = &self.world
            && let Some(gap) =
                kinect_errors::multipath_gap_m(world, self.cam.position_m, pos_m, None)
        {
            common_mm += kinect_errors::multipath_mm(gap);
        }
        let geo = QuadGeometry {
            body_from_cam,
            hits: &hits,
            x0,
            y0,
            w,
        };
        let mut corners = std::mem::take(&mut self.corners);
        if self.errors.mixed_pixels {
            corners.clear();
            corners.resize((w + 1) * (y1 - y0 + 1), CORNER_UNKNOWN);
        }
        // The wiggle, linear about the quad centre's range (its periods are ≥ 0.4 m; over the
        // quad's few centimetres of depth the second-order term is < 0.05 mm).
        let (wiggle0_mm, wiggle_slope, range0_m) = if self.errors.wiggling() {
            let range0 = (pos_m - self.cam.position_m).norm();
            let h = 1e-3;
            let e0 = self.errors.wiggle_mm(range0);
            let slope =
                (self.errors.wiggle_mm(range0 + h) - self.errors.wiggle_mm(range0 - h)) / (2.0 * h);
            (e0, slope, range0)
        } else {
            (0.0, 0.0, 0.0)
        };
        let wiggle_mm = |z: f64, ray: Vec3| {
            wiggle0_mm + wiggle_slope * (kinect_errors::range_m(z, ray) - range0_m)
        };

        // Pass 2: write depth with noise, silhouettes and IR.
        // Row by row: `k / w` and `k % w` per pixel were two integer divisions.
        let rows = hits.len() / w;
        for (kr, kc) in (0..rows).flat_map(|kr| (0..w).map(move |kc| (kr, kc))) {
            let k = kr * w + kc;
            let hit = hits[k];
            if hit.is_none() {
                continue;
            }
            let (c, r) = (x0 + kc, y0 + kr);
            let i = r * WIDTH + c;
            let (mut z, mut theta, mut marker) = (hit.z, hit.theta, hit.marker());
            if hit.prop() {
                match self.errors.prop_draw() {
                    PropPixel::Blade => {}
                    PropPixel::Invalid => {
                        self.frame.depth_mm[i] = 0;
                        continue;
                    }
                    PropPixel::SeeThrough => match hit.behind() {
                        Some(behind) => (z, theta, marker) = behind,
                        // Nothing of the quad behind the disc: the background shows.
                        None => continue,
                    },
                }
            }
            if z < self.cfg.min_depth_m || z > self.cfg.max_depth_m {
                self.frame.depth_mm[i] = 0;
                continue;
            }
            if theta > GRAZING_LIMIT_RAD {
                self.frame.depth_mm[i] = 0;
                continue;
            }
            let mut z_mm =
                z * 1000.0 + scale * axial_sigma_mm(z, theta) * self.pixel_noise.gaussian();
            if systematic {
                z_mm += wiggle_mm(z, self.rays[i]) + common_mm;
            }
            let edge = (kc == 0 || hits[k - 1].is_none())
                || (kc + 1 == w || hits[k + 1].is_none())
                || (k < w || hits[k - w].is_none())
                || (k + w >= hits.len() || hits[k + w].is_none());
            if self.errors.mixed_pixels {
                let bg = f64::from(self.frame.depth_mm[i]);
                // The centre sees the quad, so the coverage is at least a half; without a
                // background return the pixel reads the quad whatever the coverage.
                if edge && bg > 0.0 {
                    let (coverage, _) = self.coverage(&geo, &mut corners, c, r, Some(z));
                    match kinect_errors::mixed_depth_mm(coverage, z_mm, bg) {
                        Some(mixed) => z_mm = mixed,
                        None => {
                            self.frame.depth_mm[i] = 0;
                            continue;
                        }
                    }
                }
            } else if edge && scale > 0.0 && self.pixel_noise.uniform() < FLYING_PIXEL_P {
                let bg = f64::from(self.background_mm[i]);
                if bg > 0.0 {
                    z_mm += self.pixel_noise.uniform() * (bg - z_mm);
                } else {
                    self.frame.depth_mm[i] = 0;
                    continue;
                }
            }
            self.frame.depth_mm[i] = depth_u16(z_mm);
            if let Some(ir) = self.frame.ir.as_mut() {
                ir[i] = if marker { IR_MARKER } else { IR_QUAD };
            }
        }
        // Pass 3 (mixed pixels): the pixels just outside the silhouette that the quad partly
        // covers read between it and the background.
        if self.errors.mixed_pixels {
            for (kr, kc) in (0..rows).flat_map(|kr| (0..w).map(move |kc| (kr, kc))) {
                let k = kr * w + kc;
                let hit = &hits[k];
                let touches = (kc > 0 && hits[k - 1].is_some())
                    || (kc + 1 < w && hits[k + 1].is_some())
                    || (k >= w && hits[k - w].is_some())
                    || (k + w < hits.len() && hits[k + w].is_some());
                if hit.is_some() || !touches {
                    continue;
                }
                let (c, r) = (x0 + kc, y0 + kr);
                let i = r * WIDTH + c;
                let bg = f64::from(self.frame.depth_mm[i]);
                // Without a background return, a pixel the quad covers less than half of (its
                // centre misses) returns only a weak edge signal, which libfreenect2's edge-aware
                // filter, on by default ("Remove pixels on edges because ToF cameras produce
                // noisy edges", src/libfreenect2.cpp `Config::Config` @fd64c5d,
                // `reference/sim_vision.md` §4.1), takes out: it stays invalid, no corner rays.
                if bg <= 0.0 {
                    continue;
                }
                let (coverage, z) = self.coverage(&geo, &mut corners, c, r, None);
                if coverage <= 0.0 || z < self.cfg.min_depth_m || z > self.cfg.max_depth_m {
                    continue;
                }
                let mut z_mm =
                    z * 1000.0 + scale * axial_sigma_mm(z, 0.0) * self.pixel_noise.gaussian();
                if systematic {
                    z_mm += wiggle_mm(z, self.rays[i]) + common_mm;
                }
                if let Some(mixed) = kinect_errors::mixed_depth_mm(coverage, z_mm, bg) {
                    self.frame.depth_mm[i] = depth_u16(mixed);
                    if coverage >= 0.5
                        && let Some(ir) = self.frame.ir.as_mut()
                    {
                        ir[i] = IR_QUAD;
                    }
                }
            }
        }
        self.corners = corners;
        self.hits = hits;
        self.rects = rects;
    }

    /// Z-depth (m) at which the ray through the pixel-grid corner (cx, cy) (the top-left corner
    /// of pixel (cx, cy)) meets the quad, cast once per frame into `corners`. Only the parts the
    /// four pixels around the corner see are tested: at the silhouette a part thinner than a
    /// pixel between two missing centres is missed, as the centre rays miss it.
    fn corner(&self, geo: &QuadGeometry, corners: &mut [f32], cx: usize, cy: usize) -> f32 {
        let g = (cy - geo.y0) * (geo.w + 1) + (cx - geo.x0);
        if corners[g] != CORNER_UNKNOWN {
            return corners[g];
        }
        let skip_props = self.errors.props();
        let h = geo.hits.len() / geo.w;
        let mut parts = [usize::MAX; 4];
        let mut n = 0;
        for (px, py) in [
            (cx.wrapping_sub(1), cy.wrapping_sub(1)),
            (cx, cy.wrapping_sub(1)),
            (cx.wrapping_sub(1), cy),
            (cx, cy),
        ] {
            if px < geo.x0 || py < geo.y0 || px >= geo.x0 + geo.w || py >= geo.y0 + h {
                continue;
            }
            let hit = geo.hits[(py - geo.y0) * geo.w + (px - geo.x0)];
            if hit.is_none() {
                continue;
            }
            let part = if skip_props && self.prop_part[usize::from(hit.part)] {
                hit.behind_part()
            } else {
                Some(usize::from(hit.part))
            };
            if let Some(p) = part
                && !parts[..n].contains(&p)
            {
                parts[n] = p;
                n += 1;
            }
        }
        let mut best = CORNER_MISS;
        if n > 0 {
            let (fx, fy) = (self.cam.k.fx, self.cam.k.fy);
            // The ray of a pixel's centre moved half a pixel (first order, as the lateral
            // jitter: the distortion's derivative is ~1 across a pixel).
            let (c, r) = (cx.min(WIDTH - 1), cy.min(HEIGHT - 1));
            let mut ray = self.rays[r * WIDTH + c];
            ray.x += (cx as f64 - c as f64 - 0.5) / fx;
            ray.y += (cy as f64 - r as f64 - 0.5) / fy;
            let d_body = geo.body_from_cam.apply(ray);
            for &pi in &parts[..n] {
                if let Some((t, _)) = self.part_rays[pi].2.intersect(d_body)
                    && (t as f32) < best
                {
                    best = t as f32;
                }
            }
        }
        corners[g] = best;
        best
    }

    /// How much of pixel (c, r) the quad covers (the propeller discs do not count while the
    /// propeller item makes them see-through), from its centre hit `centre_m` and its corners,
    /// and the mean Z-depth of the samples that hit (m).
    fn coverage(
        &self,
        geo: &QuadGeometry,
        corners: &mut [f32],
        c: usize,
        r: usize,
        centre_m: Option<f64>,
    ) -> (f64, f64) {
        let (mut covered, mut z_sum, mut n) = (0.0, 0.0, 0usize);
        if let Some(z) = centre_m {
            covered += COVERAGE_CENTRE_WEIGHT;
            z_sum += z;
            n += 1;
        }
        for (cx, cy) in [(c, r), (c + 1, r), (c, r + 1), (c + 1, r + 1)] {
            let t = self.corner(geo, corners, cx, cy);
            if t.is_finite() {
                covered += COVERAGE_CORNER_WEIGHT;
                z_sum += f64::from(t);
                n += 1;
            }
        }
        if n == 0 {
            (0.0, 0.0)
        } else {
            (covered, z_sum / n as f64)
        }
    }

    /// Captures a frame at `now_ns` (render + vision), unless blacked out or dropped; its
    /// measurement arrives after the modelled latency.
    pub fn capture(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot) {
        if let Some((due_ns, m)) = self.capture_result(now_ns, pos_m, world_from_body) {
            self.in_flight.push(due_ns, m);
        }
    }

    /// [`KinectSensor::capture`], returning the measurement and the time it arrives instead of
    /// queueing it (for [`crate::kinect_pipeline`]).
    pub fn capture_result(
        &mut self,
        now_ns: u64,
        pos_m: Vec3,
        world_from_body: &Rot,
    ) -> Option<(u64, Measurement)> {
        let delay_ns = self.shoot(now_ns, pos_m, world_from_body)?;
        let result = self.detector.detect(&self.frame);
        self.detected(result).map(|m| (now_ns + delay_ns, m))
    }

    /// The capture clock (when frames are due), to run a copy of it elsewhere.
    pub(crate) fn clock(&self) -> &CaptureClock {
        &self.clock
    }

    /// The earliest a captured frame's measurement can arrive after its capture: the latency
    /// with the least jitter, rounded down.
    pub(crate) fn min_latency_ns(&self) -> u64 {
        ((self.cfg.latency_s + self.cfg.latency_jitter_s.min(0.0)).max(0.0) * 1e9).floor() as u64
    }

    /// Measurements captured and not delivered yet, handed over from a pipeline.
    pub(crate) fn requeue(&mut self, in_flight: DelayLine<Measurement>) {
        self.in_flight = in_flight;
    }

    /// The real-time path, first half: renders the frame of `now_ns` (unless blacked out or
    /// dropped) and returns it with the time it reaches the host (capture + modelled latency).
    /// The vision runs on it then ([`KinectSensor::detect_frame`]).
    pub fn capture_frame(
        &mut self,
        now_ns: u64,
        pos_m: Vec3,
        world_from_body: &Rot,
    ) -> Option<(u64, DepthFrame)> {
        let delay_ns = self.shoot(now_ns, pos_m, world_from_body)?;
        Some((now_ns + delay_ns, self.frame.clone()))
    }

    /// The real-time path, second half: the vision on a frame that has reached the host.
    pub fn detect_frame(&mut self, frame: &DepthFrame) -> Option<Measurement> {
        let result = self.detector.detect(frame);
        self.detected(result)
    }

    /// Advances the capture clock and renders the frame of `now_ns` into `self.frame`; returns
    /// its latency, or None when the frame is blacked out or dropped.
    fn shoot(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot) -> Option<u64> {
        self.advance_capture_clock(now_ns);
        if self.blacked_out(now_ns as f64 * 1e-9) {
            self.stats.frames_blacked_out += 1;
            return None;
        }
        let jitter = self.cfg.latency_jitter_s * self.noise.uniform();
        if self.noise.chance(self.cfg.drop_probability) {
            self.stats.frames_dropped += 1;
            return None;
        }
        self.stats.frames_rendered += 1;
        self.render(now_ns, pos_m, world_from_body);
        let delay_ns = ((self.cfg.latency_s + jitter) * 1e9).round() as u64;
        self.last_shot = Some((now_ns, now_ns + delay_ns));
        Some(delay_ns)
    }

    /// The newest frame rendered (its capture time is `stamp_ns`); see [`KinectSensor::last_shot`]
    /// for when it reaches the host.
    pub fn frame(&self) -> &DepthFrame {
        &self.frame
    }

    /// The newest frame that was rendered: its capture time and the time it reaches the host
    /// (capture + latency + jitter). None before the first.
    pub fn last_shot(&self) -> Option<(u64, u64)> {
        self.last_shot
    }

    /// Counts a detection result and turns it into a measurement.
    fn detected(&mut self, result: Result<Detection, NoDetection>) -> Option<Measurement> {
        match result {
            Ok(d) => {
                self.last_frame_pixels = Some(d.pixels);
                self.stats.detections += 1;
                self.stats.with_yaw += u64::from(d.yaw_rad.is_some());
                let m = Measurement {
                    stamp_ns: d.stamp_ns,
                    seq: d.seq,
                    pos_in_world_m: d.pos_in_world_m,
                    yaw_rad: d.yaw_rad,
                };
                self.last_detection = Some(d);
                Some(m)
            }
            Err(e) => {
                self.last_frame_pixels = None;
                if matches!(e, NoDetection::LearningBackground { .. }) {
                    self.stats.learning += 1;
                } else {
                    self.stats.misses += 1;
                }
                *self.stats.miss_reasons.entry(e.reason()).or_insert(0) += 1;
                None
            }
        }
    }

    /// The camera streams the frame of `now_ns`: the next one comes a period later, a longer one
    /// while the frame rate has collapsed.
    fn advance_capture_clock(&mut self, now_ns: u64) {
        if self.clock.advance(now_ns) {
            self.stats.frames_in_collapse += 1;
        }
    }

    /// A camera switched on at `now_ns` (a process started mid-flight): its first frame is then,
    /// not a burst of the frames it would have taken since 0.
    pub fn start_at(&mut self, now_ns: u64) {
        self.clock.start_at(now_ns);
    }

    /// The vision is dead: the camera streams the frame of `now_ns` and nobody takes it.
    pub fn skip_frame(&mut self, now_ns: u64) {
        self.advance_capture_clock(now_ns);
        self.stats.frames_while_dead += 1;
    }

    /// The vision died: what was in its pipeline is lost.
    pub fn lose_pipeline(&mut self) {
        self.in_flight = DelayLine::default();
        self.last_frame_pixels = None;
    }

    /// The vision restarted: a fresh detector (no track) with the background the dead one had
    /// learnt (as a vision process loads the one it saved), or learning it again.
    pub fn restart_vision(&mut self, relearn_background: bool) {
        let saved = self.detector.learnt_background();
        self.detector = Detector::new(self.cam.clone(), DetectorConfig::default());
        self.stats.restarts += 1;
        match saved {
            Some(b) if !relearn_background => self
                .detector
                .restore_background(b)
                .expect("a background this detector learnt fits it"),
            _ => self.stats.relearnt += 1,
        }
    }

    /// The detector (to save its learnt background).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// Loads a saved background into the detector.
    pub fn restore_background(
        &mut self,
        b: depthpilot_vision::detector::LearntBackground,
    ) -> Result<(), depthpilot_vision::detector::BackgroundError> {
        self.detector.restore_background(b)
    }

    /// The next measurement whose delivery time has come.
    pub fn deliver(&mut self, now_ns: u64) -> Option<Measurement> {
        self.in_flight.pop_due(now_ns)
    }
}

/// The static world as the camera sees it, without noise: per pixel the ray, the depth (mm, 0 =
/// no return) and the axial noise σ (mm). It depends only on the camera, the world and the
/// static errors, so the sensors of one process share it ([`static_scene`]): a batch, a tuning
/// run or a vector of environments computes it once, not per flight.
struct StaticScene {
    rays: Arc<Vec<Vec3>>,
    background_mm: Vec<u16>,
    sigma: Vec<f64>,
}

/// How many static scenes a process keeps (the most recently used).
const STATIC_SCENES_KEPT: usize = 4;

/// The static scene of `key` (everything it depends on, printed exactly), made by `make` if no
/// sensor of this process has made it.
fn static_scene(key: String, make: impl FnOnce() -> StaticScene) -> Arc<StaticScene> {
    static SCENES: Mutex<Vec<(String, Arc<StaticScene>)>> = Mutex::new(Vec::new());
    let found = SCENES.lock().ok().and_then(|mut kept| {
        let i = kept.iter().position(|(k, _)| *k == key)?;
        let hit = kept.remove(i);
        let scene = Arc::clone(&hit.1);
        kept.insert(0, hit);
        Some(scene)
    });
    if let Some(scene) = found {
        return scene;
    }
    let scene = Arc::new(make());
    if let Ok(mut kept) = SCENES.lock() {
        kept.insert(0, (key, Arc::clone(&scene)));
        kept.truncate(STATIC_SCENES_KEPT);
    }
    scene
}

/// Ray-casts the static world through every pixel: its depth (mm, with the static errors) and
/// the axial noise σ there (mm).
fn render_static(
    cam: &CameraModel,
    world: &WorldConfig,
    cfg: &KinectConfig,
    errors: &KinectErrors,
    rays: &[Vec3],
) -> (Vec<u16>, Vec<f64>) {
    let mut background_mm = vec![0u16; WIDTH * HEIGHT];
    let mut sigma = vec![0f64; WIDTH * HEIGHT];
    for (i, ray) in rays.iter().enumerate() {
        if let Some((z, theta, point, normal)) = static_hit(cam, world, *ray)
            && z >= cfg.min_depth_m
            && z <= cfg.max_depth_m
            && theta < GRAZING_LIMIT_RAD
        {
            background_mm[i] = if errors.static_bias() {
                let mut bias_mm = errors.wiggle_mm(kinect_errors::range_m(z, *ray));
                if errors.multipath
                    && let Some(gap) =
                        kinect_errors::multipath_gap_m(world, cam.position_m, point, Some(normal))
                {
                    bias_mm += kinect_errors::multipath_mm(gap);
                }
                (z * 1000.0 + bias_mm).round() as u16
            } else {
                (z * 1000.0).round() as u16
            };
            sigma[i] = axial_sigma_mm(z, theta) * cfg.noise_scale;
        }
    }
    (background_mm, sigma)
}

/// When the camera takes its frames: every period, a longer one while the frame rate has
/// collapsed (`rate_collapses`).
#[derive(Clone, Debug)]
pub(crate) struct CaptureClock {
    period_ns: u64,
    next_capture_ns: u64,
    collapses: Vec<depthpilot_types::scene::RateCollapse>,
}

impl CaptureClock {
    pub(crate) fn due(&self, now_ns: u64) -> bool {
        now_ns >= self.next_capture_ns
    }

    /// The camera streams the frame of `now_ns`: the next one comes a period later, a longer
    /// one while the frame rate has collapsed. True if it has.
    pub(crate) fn advance(&mut self, now_ns: u64) -> bool {
        let t_s = now_ns as f64 * 1e-9;
        match self.collapses.iter().find(|c| c.active(t_s)) {
            Some(c) => {
                self.next_capture_ns += ((1e9 / c.rate_hz).round() as u64).max(self.period_ns);
                true
            }
            None => {
                self.next_capture_ns += self.period_ns;
                false
            }
        }
    }

    pub(crate) fn start_at(&mut self, now_ns: u64) {
        self.next_capture_ns = self.next_capture_ns.max(now_ns);
    }
}

/// The quad's pose as the per-pixel ray casts need it.
struct QuadGeometry<'a> {
    body_from_cam: Rot,
    /// This frame's centre hits over the pixel box.
    hits: &'a [Hit],
    /// The pixel box [x0, x0 + w) × [y0, ...): corner (x0, y0) is grid index 0.
    x0: usize,
    y0: usize,
    w: usize,
}

/// The ray (z = 1) through every pixel centre: exact on a grid every `STEP` pixels, bilinear in
/// between (the undistortion is smooth; the interpolation error is far below a millipixel).
fn ray_table(cam: &CameraModel) -> Vec<Vec3> {
    const STEP: usize = 2;
    let (gw, gh) = (WIDTH / STEP + 2, HEIGHT / STEP + 2);
    let grid: Vec<Vec3> = (0..gh)
        .flat_map(|gy| (0..gw).map(move |gx| (gx, gy)))
        .map(|(gx, gy)| cam.ray_of((gx * STEP) as f64 + 0.5, (gy * STEP) as f64 + 0.5))
        .collect();
    let mut rays = Vec::with_capacity(WIDTH * HEIGHT);
    for r in 0..HEIGHT {
        let (gy, fy) = (r / STEP, (r % STEP) as f64 / STEP as f64);
        for c in 0..WIDTH {
            let (gx, fx) = (c / STEP, (c % STEP) as f64 / STEP as f64);
            let g = |x: usize, y: usize| grid[y * gw + x];
            let top = g(gx, gy) * (1.0 - fx) + g(gx + 1, gy) * fx;
            let bottom = g(gx, gy + 1) * (1.0 - fx) + g(gx + 1, gy + 1) * fx;
            rays.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    rays
}

/// Nearest static surface along a camera ray: (Z-depth, incidence angle, point, outward normal).
fn static_hit(
    cam: &CameraModel,
    world: &WorldConfig,
    ray_cam: Vec3,
) -> Option<(f64, f64, Vec3, Vec3)> {
    let d = cam.world_from_camera.apply(ray_cam);
    let o = cam.position_m;
    let mut best: Option<(f64, Vec3)> = None;
    let mut consider = |t: f64, n: Vec3| {
        if t > 1e-9 && best.is_none_or(|(bt, _)| t < bt) {
            best = Some((t, n));
        }
    };
    if world.floor && d.z < -1e-12 && o.z > 0.0 {
        consider(-o.z / d.z, Vec3::new(0.0, 0.0, 1.0));
    }
    for b in &world.boxes {
        if let Some((t, n)) = slab(o - b.center_m, d, b.half_extents_m) {
            consider(t, n);
        }
    }
    best.map(|(t, n)| {
        let cos = (n.dot(d).abs() / d.norm()).clamp(0.0, 1.0);
        (t, cos.acos(), o + d * t, n)
    })
}

/// Bakes the warm-up drift `drift_mm` into the noisy backgrounds (at the static world's pixels).
fn bake_drift(noisy: &mut [Vec<u16>], exact: &[Vec<f32>], returns: &[usize], drift_mm: f64) {
    for (frame, exact) in noisy.iter_mut().zip(exact) {
        for (&i, &v) in returns.iter().zip(exact) {
            frame[i] = (f64::from(v) + drift_mm).round().clamp(1.0, 65535.0) as u16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::BoxConfig;

    fn cfg(noise: f64) -> KinectConfig {
        KinectConfig {
            noise_scale: noise,
            ..KinectConfig::default()
        }
    }

    #[test]
    fn a_plane_at_known_depth_reads_back_that_depth_at_every_valid_pixel() {
        // Camera looking up at a huge box whose underside is 2.0 m above it; noise off.
        let world = WorldConfig {
            floor: false,
            boxes: vec![BoxConfig {
                center_m: Vec3::new(0.0, 0.0, 2.5),
                half_extents_m: Vec3::new(20.0, 20.0, 0.5),
            }],
            ..WorldConfig::default()
        };
        let k = KinectSensor::new(&cfg(0.0), &world, 0.046, 1).expect("camera");
        let valid: Vec<u16> = k
            .static_background()
            .iter()
            .copied()
            .filter(|&d| d != 0)
            .collect();
        assert_eq!(valid.len(), WIDTH * HEIGHT, "every pixel sees the plane");
        assert!(valid.iter().all(|&d| d == 2000), "Z-depth, not ray length");
    }

    #[test]
    fn the_quad_appears_where_the_camera_model_projects_it() {
        let mut k =
            KinectSensor::new(&cfg(0.0), &WorldConfig::default(), 0.046, 1).expect("camera");
        let pos = Vec3::new(0.1, -0.05, 1.5);
        let frame = k.render(0, pos, &Rot::IDENTITY).clone();
        let (u, v) = k
            .camera()
            .pixel_of(k.camera().camera_from_world(pos))
            .expect("in view");
        let d = frame.depth_at(u as usize, v as usize);
        assert!(
            (f64::from(d) - 1490.0).abs() < 5.0,
            "body underside at ~1.49 m: {d}"
        );
        let ir = frame.ir.as_ref().expect("ir");
        assert!(
            ir.iter().filter(|&&x| x >= IR_MARKER).count() > 10,
            "markers visible from below"
        );
    }

    #[test]
    fn yaw_is_measured_from_the_ir_markers() {
        for noise in [0.0, 1.0] {
            for yaw in [-2.5f64, -0.7, 0.0, 0.3, 1.9] {
                let mut k = KinectSensor::new(&cfg(noise), &WorldConfig::default(), 0.046, 3)
                    .expect("camera");
                let rot = Rot::from_rpy(0.0, 0.0, yaw);
                let mut got = None;
                for f in 0..12u64 {
                    // Out of view while the background is learnt, then 1.2 m above the camera.
                    let pos = if f < 9 {
                        Vec3::new(5.0, 0.0, 0.5)
                    } else {
                        Vec3::new(0.05, 0.02, 1.2)
                    };
                    k.capture(f * 33_250_000, pos, &rot);
                    got = k.last_detection.as_ref().and_then(|d| d.yaw_rad);
                }
                let got = got
                    .unwrap_or_else(|| panic!("no yaw at yaw {yaw}, noise {noise}: {:?}", k.stats));
                let err = depthpilot_types::math::wrap_pi(got - yaw);
                assert!(err.abs() < 0.1, "yaw {yaw}: measured {got} (noise {noise})");
            }
        }
    }

    #[test]
    fn interpolated_rays_match_the_camera_model() {
        let cam = CameraModel::new(
            depthpilot_types::scene::Intrinsics::KINECT_V2_DEVICE2,
            Vec3::ZERO,
            Vec3::new(0.0, 0.0, 1.0),
            Vec3::new(1.0, 0.0, 0.0),
        )
        .expect("camera");
        let rays = ray_table(&cam);
        let mut worst = 0.0f64;
        for r in (0..HEIGHT).step_by(7) {
            for c in (0..WIDTH).step_by(5) {
                let exact = cam.ray_of(c as f64 + 0.5, r as f64 + 0.5);
                let (u, v) = cam.pixel_of(rays[r * WIDTH + c]).expect("in front");
                let (ue, ve) = cam.pixel_of(exact).expect("in front");
                worst = worst.max((u - ue).abs()).max((v - ve).abs());
            }
        }
        assert!(worst < 0.01, "worst interpolation error {worst} px");
    }

    /// Issue 22: the per-frame terms of the ray tests change nothing: random rays from random
    /// origins give the same (t, normal) bit for bit, and `depth_u16` rounds as `round` does.
    #[test]
    fn per_frame_ray_terms_and_rounding_are_bit_identical() {
        let mut noise = Noise::new(7, Stream::Camera);
        let mut u = |a: f64, b: f64| a + (b - a) * noise.uniform();
        let mut hits = 0;
        for (part, _) in quad_parts(0.046) {
            for _ in 0..2000 {
                let o = Vec3::new(u(-0.3, 0.3), u(-0.3, 0.3), u(-1.5, -0.2));
                let d = Vec3::new(u(-0.3, 0.3), u(-0.3, 0.3), u(0.5, 1.5)) - o * 0.9;
                let want = intersect(&part, o, d);
                let got = PartRay::new(&part, o).intersect(d);
                hits += usize::from(want.is_some());
                assert_eq!(
                    want.map(|(t, n)| (t.to_bits(), n.x.to_bits(), n.y.to_bits(), n.z.to_bits())),
                    got.map(|(t, n)| (t.to_bits(), n.x.to_bits(), n.y.to_bits(), n.z.to_bits())),
                    "{part:?} o {o:?} d {d:?}"
                );
            }
        }
        assert!(hits > 100, "{hits} hits: the rays must test the parts");
        for x in [
            f64::NAN,
            -3.0,
            -0.5,
            0.0,
            0.49999999999999994,
            0.5,
            0.7,
            1.0,
            1.5,
            2.5,
            1234.4999,
            1234.5,
            65_534.49,
            65_534.5,
            65_535.0,
            70_000.0,
            f64::INFINITY,
        ] {
            assert_eq!(depth_u16(x), x.round().clamp(1.0, 65535.0) as u16, "{x}");
        }
        for _ in 0..100_000 {
            let x = u(-10.0, 66_000.0);
            assert_eq!(depth_u16(x), x.round().clamp(1.0, 65535.0) as u16, "{x}");
        }
    }

    #[test]
    fn fast_acos_is_close() {
        for i in 0..=100 {
            let x = f64::from(i) / 100.0;
            assert!((fast_acos(x) - x.acos()).abs() < 1e-4, "{x}");
        }
    }

    fn realism(items: &[&str], on_s: f64) -> Realism {
        let mut r = Realism::default();
        for item in items {
            r.set_item(item, true).expect("item");
        }
        r.kinect_on_s = on_s;
        r
    }

    /// A camera on the floor looking up at a ceiling `height_m` above it.
    fn under_ceiling(height_m: f64, r: &Realism, seed: u64) -> KinectSensor {
        let world = WorldConfig {
            floor: false,
            boxes: vec![BoxConfig {
                center_m: Vec3::new(0.0, 0.0, height_m + 0.5),
                half_extents_m: Vec3::new(20.0, 20.0, 0.5),
            }],
            ..WorldConfig::default()
        };
        KinectSensor::with_realism(&cfg(0.0), &world, 0.046, seed, r).expect("camera")
    }

    #[test]
    fn wiggling_biases_a_plane_by_the_wiggle_at_its_range() {
        let r = realism(&["kinect_wiggling"], 0.0);
        let errors = KinectErrors::new(&r, 9);
        let mut seen = Vec::new();
        for h in [1.0, 2.0, 3.3] {
            let k = under_ceiling(h, &r, 9);
            let bg = k.static_background();
            for (c, row) in [(256, 212), (40, 30), (480, 400)] {
                let i = row * WIDTH + c;
                let want = h * 1000.0 + errors.wiggle_mm(kinect_errors::range_m(h, k.rays[i]));
                let got = f64::from(bg[i]);
                assert!(
                    (got - want).abs() <= 0.5 + 1e-9,
                    "{h} m ({c},{row}): {got} vs {want}"
                );
                seen.push(got - h * 1000.0);
            }
        }
        assert!(
            seen.iter().any(|e| e.abs() >= 1.0),
            "a visible bias somewhere: {seen:?}"
        );
        let total: f64 = kinect_errors::wiggle_amplitudes_mm().iter().sum();
        assert!(seen.iter().all(|e| e.abs() <= total + 0.5), "{seen:?}");
    }

    #[test]
    fn multipath_lengthens_the_background_only_near_concave_corners() {
        let world = WorldConfig {
            boxes: vec![BoxConfig {
                center_m: Vec3::new(0.6, 0.0, 0.25),
                half_extents_m: Vec3::new(0.25, 0.25, 0.25),
            }],
            ..WorldConfig::default()
        };
        let down = KinectConfig {
            position_m: Vec3::new(0.0, 0.0, 3.0),
            look_at_m: Vec3::ZERO,
            up_hint: Vec3::new(1.0, 0.0, 0.0),
            noise_scale: 0.0,
            ..KinectConfig::default()
        };
        let off = KinectSensor::new(&down, &world, 0.046, 2).expect("camera");
        let r = realism(&["kinect_multipath"], 0.0);
        let on = KinectSensor::with_realism(&down, &world, 0.046, 2, &r).expect("camera");
        let (mut near, mut max) = (0, 0i32);
        for i in 0..WIDTH * HEIGHT {
            let d = i32::from(on.static_background()[i]) - i32::from(off.static_background()[i]);
            assert!(d >= 0, "multipath reads long, never short: {d}");
            let (_, _, p, n) = static_hit(on.camera(), &world, on.rays[i]).expect("floor");
            let gap = kinect_errors::multipath_gap_m(&world, down.position_m, p, Some(n));
            if d > 0 {
                assert!(
                    gap.is_some(),
                    "pixel {i} at {p:?} has no neighbour but moved {d}"
                );
                near += 1;
            }
            if gap.is_none() {
                assert_eq!(d, 0);
            }
            max = max.max(d);
        }
        assert!(near > 100, "{near} pixels near the box");
        assert!(
            max >= 8 && f64::from(max) <= kinect_errors::MULTIPATH_CORNER_MM + 0.5,
            "{max}"
        );
    }

    #[test]
    fn mixed_pixels_lie_between_quad_and_background_at_the_silhouette_only() {
        let fg_max = 1600u16;
        let bg_min = 2999u16;
        for mixed in [false, true] {
            let items: &[&str] = if mixed { &["kinect_mixed_pixels"] } else { &[] };
            let mut k = under_ceiling(3.0, &realism(items, 0.0), 4);
            let pos = Vec3::new(0.02, 0.01, 1.5);
            let frame = k.render(0, pos, &Rot::from_rpy(0.0, 0.0, 0.5)).clone();
            let at = |c: usize, r: usize| frame.depth_at(c, r);
            let mut between = 0;
            for r in 2..HEIGHT - 2 {
                for c in 2..WIDTH - 2 {
                    let d = at(c, r);
                    if d == 0 || d <= fg_max || d >= bg_min {
                        continue;
                    }
                    between += 1;
                    let near: Vec<u16> = (r - 2..=r + 2)
                        .flat_map(|y| (c - 2..=c + 2).map(move |x| (x, y)))
                        .map(|(x, y)| at(x, y))
                        .collect();
                    assert!(
                        near.iter().any(|&n| n > 0 && n <= fg_max)
                            && near.iter().any(|&n| n >= bg_min),
                        "mixed pixel ({c},{r}) = {d} is not at the silhouette: {near:?}"
                    );
                }
            }
            if mixed {
                assert!(between > 20, "{between} mixed pixels");
            } else {
                assert_eq!(between, 0, "noise off, item off: no mixed pixel");
            }
        }
    }

    #[test]
    fn prop_artefacts_stay_inside_the_prop_discs() {
        let pos = Vec3::new(0.03, -0.02, 1.2);
        let rot = Rot::from_rpy(0.0, 0.0, 0.4);
        let mut off = KinectSensor::new(&cfg(0.0), &WorldConfig::default(), 0.046, 6).expect("cam");
        let r = realism(&["kinect_props"], 0.0);
        let mut on = KinectSensor::with_realism(&cfg(0.0), &WorldConfig::default(), 0.046, 6, &r)
            .expect("camera");
        let a = off.render(0, pos, &rot).clone();
        let b = on.render(0, pos, &rot).clone();
        let cam = on.camera().clone();
        let a_m = 0.046 / std::f64::consts::SQRT_2;
        let discs: Vec<(f64, f64, f64)> = [(a_m, -a_m), (-a_m, -a_m), (-a_m, a_m), (a_m, a_m)]
            .iter()
            .map(|&(x, y)| {
                let w = pos + rot.apply(Vec3::new(x, y, 0.009));
                let p = cam.camera_from_world(w);
                let (u, v) = cam.pixel_of(p).expect("in view");
                (u, v, cam.k.fx * PROP_RADIUS_M / p.z + 1.5)
            })
            .collect();
        let (mut changed, mut invalid) = (0, 0);
        for r in 0..HEIGHT {
            for c in 0..WIDTH {
                let (da, db) = (a.depth_at(c, r), b.depth_at(c, r));
                if da == db {
                    continue;
                }
                changed += 1;
                invalid += usize::from(db == 0);
                let (u, v) = (c as f64 + 0.5, r as f64 + 0.5);
                assert!(
                    discs
                        .iter()
                        .any(|&(du, dv, rad)| (u - du).hypot(v - dv) <= rad),
                    "({c},{r}) changed {da} -> {db} outside the prop discs"
                );
            }
        }
        assert!(changed > 50, "{changed}");
        assert!(
            invalid * 2 > changed,
            "mostly invalid: {invalid} of {changed}"
        );
    }

    #[test]
    fn warmup_drift_moves_quad_and_background_and_settles() {
        let r = realism(&["kinect_warmup"], 0.0);
        let mut cold = under_ceiling(2.0, &r, 1);
        let mut ideal = under_ceiling(2.0, &Realism::default(), 1);
        let pos = Vec3::new(0.0, 0.0, 1.0);
        let f_cold = cold.render(0, pos, &Rot::IDENTITY).clone();
        let f_ideal = ideal.render(0, pos, &Rot::IDENTITY).clone();
        let (u, v) = cold
            .camera()
            .pixel_of(cold.camera().camera_from_world(pos))
            .expect("in view");
        let (u, v) = (u as usize, v as usize);
        let quad = i32::from(f_cold.depth_at(u, v)) - i32::from(f_ideal.depth_at(u, v));
        assert_eq!(
            quad,
            kinect_errors::WARMUP_INITIAL_MM.round() as i32,
            "quad"
        );
        assert_eq!(
            f_cold.depth_at(5, 5),
            2005,
            "background read long when cold"
        );
        // An hour later the drift has gone; the background follows within a few frames.
        for f in 0..8u64 {
            cold.render(3_600_000_000_000 + f * 33_250_000, pos, &Rot::IDENTITY);
        }
        let warm = cold.render(3_601_000_000_000, pos, &Rot::IDENTITY);
        assert_eq!(warm.depth_at(5, 5), 2000);
        assert_eq!(warm.depth_at(500, 400), 2000);
    }

    #[test]
    fn systematic_errors_are_deterministic_per_seed() {
        let bench = Realism::preset(depthpilot_types::scene::RealismPreset::Bench);
        let run = |seed: u64| {
            golden::frames_hash(|c, w| {
                KinectSensor::with_realism(c, w, 0.046, seed, &bench).expect("camera")
            })
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert_ne!(run(5), 0x6d29_0514_50d7_50c8, "the items change the frames");
    }

    #[test]
    fn noise_grows_with_distance() {
        assert!(axial_sigma_mm(1.0, 0.0) < axial_sigma_mm(4.0, 0.0));
        assert!(axial_sigma_mm(2.0, 0.0) < axial_sigma_mm(2.0, 1.2));
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use depthpilot_types::scene::BoxConfig;

    /// FNV-1a over the depth and IR of a few frames: pins the frames the camera rendered
    /// before the realism layer existed.
    pub(super) fn frames_hash(make: impl Fn(&KinectConfig, &WorldConfig) -> KinectSensor) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |x: u16| {
            for b in x.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        let world = WorldConfig {
            boxes: vec![BoxConfig {
                center_m: Vec3::new(0.6, 0.2, 0.3),
                half_extents_m: Vec3::new(0.3, 0.3, 0.3),
            }],
            ..WorldConfig::default()
        };
        let down = KinectConfig {
            position_m: Vec3::new(0.0, 0.0, 3.0),
            look_at_m: Vec3::ZERO,
            up_hint: Vec3::new(1.0, 0.0, 0.0),
            ..KinectConfig::default()
        };
        for (cfg, world) in [
            (KinectConfig::default(), WorldConfig::default()),
            (down, world),
        ] {
            let mut k = make(&cfg, &world);
            for f in 0..6u64 {
                let pos = Vec3::new(0.05 * f as f64, -0.03, 1.0 + 0.1 * f as f64);
                let rot = Rot::from_rpy(0.05, -0.02, 0.3 * f as f64);
                let frame = k.render(f * 33_250_000, pos, &rot);
                frame.depth_mm.iter().for_each(|&d| eat(d));
                frame.ir.iter().flatten().for_each(|&d| eat(d));
            }
        }
        h
    }

    #[test]
    fn frames_are_those_rendered_before_the_realism_layer() {
        // Measured against the camera as it was before the realism layer (the old kinect.rs
        // built alongside the new one): with every item off the frames are bit-identical.
        const BEFORE: u64 = 0x6d29_0514_50d7_50c8;
        let h = frames_hash(|c, w| KinectSensor::new(c, w, 0.046, 5).expect("camera"));
        assert_eq!(h, BEFORE, "hash {h:#x}");
        let ideal = frames_hash(|c, w| {
            KinectSensor::with_realism(c, w, 0.046, 5, &Realism::default()).expect("camera")
        });
        assert_eq!(ideal, BEFORE, "hash {ideal:#x}");
    }

    #[test]
    fn frames_with_every_kinect_item_are_those_before_the_speed_work() {
        // Measured at c72fdfc, before issue 22's render and vision speed-ups: with every Kinect
        // item of the realism layer on (mixed pixels, propellers, wiggling, multipath, warm-up),
        // the frames are bit-identical.
        const BEFORE: u64 = 0xd4ae_de5d_5ebe_07a0;
        let mut r = Realism::default();
        for item in depthpilot_types::scene::KINECT_REALISM_ITEMS {
            r.set_item(item, true).expect("item");
        }
        let h = frames_hash(|c, w| KinectSensor::with_realism(c, w, 0.046, 5, &r).expect("camera"));
        assert_eq!(h, BEFORE, "hash {h:#x}");
    }
}
