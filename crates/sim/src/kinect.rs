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

use crate::delay::DelayLine;
use crate::noise::{FastGaussian, Noise, Stream};
use depthpilot_types::scene::{KinectConfig, WorldConfig};
use depthpilot_types::{Measurement, Rot, Vec3};
use depthpilot_vision::detector::{Detection, NoDetection};
use depthpilot_vision::{CameraModel, DepthFrame, Detector, DetectorConfig, HEIGHT, WIDTH};

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

/// Ray (origin o, direction d) against a part; returns (t, normal) of the nearest hit with t > 0.
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
            r: 0.0231,
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

/// The camera, its renderer and the detector.
pub struct KinectSensor {
    cfg: KinectConfig,
    cam: CameraModel,
    parts: Vec<(Part, Reflect)>,
    arm_m: f64,
    /// Per pixel: camera-frame ray direction with z = 1.
    rays: Vec<Vec3>,
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
    hits: Vec<Option<(f64, f64, bool)>>,
    rects: Vec<(f64, f64, f64, f64)>,
    candidates: Vec<usize>,
    period_ns: u64,
    next_capture_ns: u64,
    seq: u64,
    in_flight: DelayLine<Measurement>,
    pub stats: VisionStats,
    pub last_detection: Option<Detection>,
    /// Blob size of the newest rendered frame's detection (None: that frame had none).
    pub last_frame_pixels: Option<usize>,
}

impl KinectSensor {
    pub fn new(
        cfg: &KinectConfig,
        world: &WorldConfig,
        arm_m: f64,
        seed: u64,
    ) -> Result<Self, depthpilot_vision::VisionError> {
        let cam = CameraModel::new(
            cfg.intrinsics.resolve(),
            cfg.position_m,
            cfg.look_at_m,
            cfg.up_hint,
        )?;
        let rays = ray_table(&cam);
        let mut noise = Noise::new(seed, Stream::Camera);
        let mut background_mm = vec![0u16; WIDTH * HEIGHT];
        let mut sigma = vec![0f64; WIDTH * HEIGHT];
        for (i, ray) in rays.iter().enumerate() {
            if let Some((z, theta)) = static_hit(&cam, world, *ray)
                && z >= cfg.min_depth_m
                && z <= cfg.max_depth_m
                && theta < GRAZING_LIMIT_RAD
            {
                background_mm[i] = (z * 1000.0).round() as u16;
                sigma[i] = axial_sigma_mm(z, theta) * cfg.noise_scale;
            }
        }
        let mut pixel_noise = noise.fast_gaussians();
        // Noise only where the static world returns something (often a small part of the image).
        let returns: Vec<usize> = (0..background_mm.len())
            .filter(|&i| background_mm[i] != 0 && sigma[i] > 0.0)
            .collect();
        let noisy = (0..NOISY_BACKGROUNDS)
            .map(|_| {
                let mut frame = background_mm.clone();
                for &i in &returns {
                    frame[i] = (f64::from(background_mm[i]) + sigma[i] * pixel_noise.gaussian())
                        .round()
                        .clamp(1.0, 65535.0) as u16;
                }
                frame
            })
            .collect();
        let detector = Detector::new(cam.clone(), DetectorConfig::default());
        let parts = quad_parts(arm_m);
        let spheres = parts.iter().map(|(p, _)| bounding_sphere(p)).collect();
        Ok(Self {
            period_ns: (1e9 / cfg.rate_hz).round() as u64,
            cfg: cfg.clone(),
            frame: DepthFrame {
                stamp_ns: 0,
                seq: 0,
                width: WIDTH,
                height: HEIGHT,
                depth_mm: background_mm.clone(),
                ir: cfg.ir_markers.then(|| vec![IR_BACKGROUND; WIDTH * HEIGHT]),
            },
            cam,
            parts,
            spheres,
            dirty: None,
            hits: Vec::new(),
            rects: Vec::new(),
            candidates: Vec::new(),
            pixel_noise,
            arm_m,
            rays,
            background_mm,
            noisy,
            detector,
            noise,
            next_capture_ns: 0,
            seq: 0,
            in_flight: DelayLine::default(),
            stats: VisionStats::default(),
            last_detection: None,
            last_frame_pixels: None,
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
        now_ns >= self.next_capture_ns
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
        if let Some((x0, y0, x1, y1)) = previous {
            copy_rect(x0, y0, x1, y1);
        }
        if let Some((x0, y0, x1, y1)) = around {
            copy_rect(x0, y0, x1, y1);
        }
        if let (Some(ir), Some((x0, y0, x1, y1))) = (self.frame.ir.as_mut(), previous) {
            for r in y0..y1 {
                ir[r * WIDTH + x0..r * WIDTH + x1].fill(IR_BACKGROUND);
            }
        }
        self.draw_quad(pos_m, world_from_body);
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

    fn draw_quad(&mut self, pos_m: Vec3, world_from_body: &Rot) {
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
        for &(sc, sr) in &self.spheres {
            let p_cam = self
                .cam
                .camera_from_world(pos_m + world_from_body.apply(sc));
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
        // 8×8 tile tests only the parts whose screen rectangle overlaps it.
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        hits.resize(w * (y1 - y0), None);
        let mut candidates = std::mem::take(&mut self.candidates);
        // Per part, the ray-independent terms of the bounding-sphere test.
        let sphere_terms: Vec<(Vec3, f64)> = self
            .spheres
            .iter()
            .map(|&(sc, sr)| {
                let oc = o_body - sc;
                (oc, oc.dot(oc) - sr * sr)
            })
            .collect();
        let scale = self.cfg.noise_scale;
        const TILE: usize = 8;
        for ty in (y0..y1).step_by(TILE) {
            for tx in (x0..x1).step_by(TILE) {
                let (tx1, ty1) = ((tx + TILE).min(x1), (ty + TILE).min(y1));
                candidates.clear();
                for (pi, &(ru0, rv0, ru1, rv1)) in rects.iter().enumerate() {
                    if ru1 >= tx as f64
                        && ru0 <= tx1 as f64
                        && rv1 >= ty as f64
                        && rv0 <= ty1 as f64
                    {
                        candidates.push(pi);
                    }
                }
                if candidates.is_empty() {
                    continue;
                }
                for r in ty..ty1 {
                    for c in tx..tx1 {
                        let mut ray = self.rays[r * WIDTH + c];
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
                        for &pi in &candidates {
                            // Cheap rejection: the ray misses the part's bounding sphere.
                            let (oc, k) = sphere_terms[pi];
                            let b = oc.dot(d_body);
                            if b * b - dd * k < 0.0 {
                                continue;
                            }
                            if let Some((t, n)) = intersect(&self.parts[pi].0, o_body, d_body)
                                && best.is_none_or(|(bt, _, _)| t < bt)
                            {
                                best = Some((t, n, pi));
                            }
                        }
                        hits[(r - y0) * w + (c - x0)] = best.map(|(t, n, pi)| {
                            let cos = (n.dot(d_body).abs() / d_body.norm()).clamp(0.0, 1.0);
                            let (part, reflect) = &self.parts[pi];
                            let marker = reflects(part, *reflect, o_body + d_body * t);
                            (t, fast_acos(cos), marker)
                        });
                    }
                }
            }
        }
        self.candidates = candidates;
        // Pass 2: write depth with noise, silhouettes and IR.
        for (k, hit) in hits.iter().enumerate() {
            let Some((z, theta, marker)) = *hit else {
                continue;
            };
            let (c, r) = (x0 + k % w, y0 + k / w);
            let i = r * WIDTH + c;
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
            let kc = k % w;
            let edge = (kc == 0 || hits[k - 1].is_none())
                || (kc + 1 == w || hits[k + 1].is_none())
                || (k < w || hits[k - w].is_none())
                || (k + w >= hits.len() || hits[k + w].is_none());
            if edge && scale > 0.0 && self.pixel_noise.uniform() < FLYING_PIXEL_P {
                let bg = f64::from(self.background_mm[i]);
                if bg > 0.0 {
                    z_mm += self.pixel_noise.uniform() * (bg - z_mm);
                } else {
                    self.frame.depth_mm[i] = 0;
                    continue;
                }
            }
            self.frame.depth_mm[i] = z_mm.round().clamp(1.0, 65535.0) as u16;
            if let Some(ir) = self.frame.ir.as_mut() {
                ir[i] = if marker { IR_MARKER } else { IR_QUAD };
            }
        }
        self.hits = hits;
        self.rects = rects;
    }

    /// Captures a frame at `now_ns` (render + vision), unless blacked out or dropped; its
    /// measurement arrives after the modelled latency.
    pub fn capture(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot) {
        let Some(delay_ns) = self.shoot(now_ns, pos_m, world_from_body) else {
            return;
        };
        let result = self.detector.detect(&self.frame);
        if let Some(m) = self.detected(result) {
            self.in_flight.push(now_ns + delay_ns, m);
        }
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
        Some(((self.cfg.latency_s + jitter) * 1e9).round() as u64)
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
        let t_s = now_ns as f64 * 1e-9;
        match self.cfg.rate_collapses.iter().find(|c| c.active(t_s)) {
            Some(c) => {
                self.stats.frames_in_collapse += 1;
                self.next_capture_ns += ((1e9 / c.rate_hz).round() as u64).max(self.period_ns);
            }
            None => self.next_capture_ns += self.period_ns,
        }
    }

    /// A camera switched on at `now_ns` (a process started mid-flight): its first frame is then,
    /// not a burst of the frames it would have taken since 0.
    pub fn start_at(&mut self, now_ns: u64) {
        self.next_capture_ns = self.next_capture_ns.max(now_ns);
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

/// Nearest static surface along a camera ray: (Z-depth, incidence angle).
fn static_hit(cam: &CameraModel, world: &WorldConfig, ray_cam: Vec3) -> Option<(f64, f64)> {
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
        (t, cos.acos())
    })
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

    #[test]
    fn fast_acos_is_close() {
        for i in 0..=100 {
            let x = f64::from(i) / 100.0;
            assert!((fast_acos(x) - x.acos()).abs() < 1e-4, "{x}");
        }
    }

    #[test]
    fn noise_grows_with_distance() {
        assert!(axial_sigma_mm(1.0, 0.0) < axial_sigma_mm(4.0, 0.0));
        assert!(axial_sigma_mm(2.0, 0.0) < axial_sigma_mm(2.0, 1.2));
    }
}
