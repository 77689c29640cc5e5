//! Finding the Crazyflie in a depth frame.
//!
//! 1. **Background**: the per-pixel median of the first frames (the static scene; the learning
//!    frames report `NoDetection::LearningBackground`).
//! 2. **Foreground**: valid pixels clearly nearer than the background (or where the background had
//!    no return), inside the region of interest.
//! 3. **Blobs**: 8-connected components; a blob must be of the quad's size in metres (pixel count ×
//!    depth² / (fx·fy)) and, while tracking, close to where the quad was.
//! 4. **Region of interest** (the 2015 detector's strategy): a 100 px window around the last hit,
//!    growing by 25 px per missed frame up to 300 px, then the full frame.
//! 5. **Centre and depth**: the blob's pixel centroid and median depth, pushed back by half the
//!    body's thickness (the camera sees the near surface), through the camera model to the world.
//! 6. **Yaw** from the IR image when the 2015 marker layout is visible: a centre ring and dots under
//!    M2, M3 and M4; the centre is the marker with two others on opposite sides, M3 the remaining one.

use crate::camera::CameraModel;
use crate::frame::DepthFrame;
use crate::{HEIGHT, WIDTH};
use depthpilot_types::Vec3;

/// Fragments closer than this (pixels, between bounding boxes) and at similar depth merge.
const FRAGMENT_GAP_PX: usize = 3;
const FRAGMENT_DEPTH_MM: i32 = 60;
/// Beyond this many blobs in one frame (a noisy full-frame search) fragments are not merged.
const MAX_BLOBS_TO_MERGE: usize = 400;

/// Spread assigned to a pixel that had no return in some learning frames: it must be this much
/// nearer than its background to count as foreground.
const UNSTABLE_SPREAD_MM: u16 = 500;

/// Detector settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectorConfig {
    /// Frames averaged (median) into the background model.
    pub learn_frames: usize,
    /// Blob size gate: side of a square of the blob's metric area.
    pub min_size_m: f64,
    pub max_size_m: f64,
    /// Foreground if nearer than the background by more than this or 4 σ of the depth noise.
    pub min_depth_step_mm: f64,
    pub min_pixels: usize,
    /// Region of interest: side at the first miss, growth per miss, largest side before the full
    /// frame is searched.
    pub roi_px: usize,
    pub roi_growth_px: usize,
    pub roi_max_px: usize,
    /// While tracking, a blob farther than this from the last hit is rejected (grows with time).
    pub gate_m: f64,
    pub gate_growth_m_s: f64,
    /// Distance along the ray from the median seen surface to the quad's centre, seen from
    /// straight below (negative: the large propeller discs are above the centre) and from the
    /// side (the near edge of the frame); blended by the ray's elevation.
    pub surface_to_centre_below_m: f64,
    pub surface_to_centre_side_m: f64,
    /// IR intensity above which a pixel belongs to a retro-reflective marker.
    pub ir_marker_threshold: u16,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            learn_frames: 9,
            min_size_m: 0.02,
            max_size_m: 0.25,
            min_depth_step_mm: 40.0,
            min_pixels: 4,
            roi_px: 100,
            roi_growth_px: 25,
            roi_max_px: 300,
            gate_m: 0.3,
            gate_growth_m_s: 1.5,
            surface_to_centre_below_m: -0.008,
            surface_to_centre_side_m: 0.022,
            ir_marker_threshold: 10_000,
        }
    }
}

/// Why a frame gave no detection.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NoDetection {
    #[error("frame is {got_w}×{got_h} (depth {got_len} values), expected {WIDTH}×{HEIGHT}")]
    WrongSize {
        got_w: usize,
        got_h: usize,
        got_len: usize,
    },
    #[error("learning the background ({seen}/{needed} frames)")]
    LearningBackground { seen: usize, needed: usize },
    #[error("no valid depth in the frame")]
    AllInvalid,
    #[error("nothing in front of the background in the search window")]
    NoForeground,
    #[error("no blob of the quad's size ({blobs} foreground blobs)")]
    NoBlobOfQuadSize { blobs: usize },
    #[error("the only quad-sized blob is {distance_m:.2} m from the track (gate {gate_m:.2} m)")]
    OutsideGate { distance_m: f64, gate_m: f64 },
}

/// Region of interest in pixels, [x0, x1) × [y0, y1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roi {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Roi {
    pub const FULL: Self = Self {
        x0: 0,
        y0: 0,
        x1: WIDTH,
        y1: HEIGHT,
    };

    fn around(u: f64, v: f64, side: usize) -> Self {
        let half = side as f64 / 2.0;
        let clampf = |x: f64, hi: usize| x.clamp(0.0, hi as f64) as usize;
        Self {
            x0: clampf(u - half, WIDTH),
            y0: clampf(v - half, HEIGHT),
            x1: clampf(u + half, WIDTH),
            y1: clampf(v + half, HEIGHT),
        }
    }

    pub fn is_full(&self) -> bool {
        *self == Self::FULL
    }
}

/// The quad, found.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Capture time of the frame.
    pub stamp_ns: u64,
    pub seq: u64,
    pub pos_in_world_m: Vec3,
    /// From the IR markers, when visible.
    pub yaw_rad: Option<f64>,
    /// Blob centroid in the raw image.
    pub pixel: (f64, f64),
    pub pixels: usize,
    /// Median depth of the blob.
    pub depth_m: f64,
    /// Side of a square of the blob's metric area.
    pub size_m: f64,
    /// Where the detector searched.
    pub roi: Roi,
    /// How many frames in a row had no detection before this one.
    pub misses_before: u32,
}

impl Detection {
    /// The 2015 detector's message (`kinect-detector-windows`): `{"pos":[x,y,z],"angle":deg,
    /// "detect":true}` with the position in metres (here in the world frame) and the yaw in
    /// degrees in [0, 360) (0 when the markers were not seen).
    pub fn to_2015_json(&self) -> String {
        let p = self.pos_in_world_m;
        let angle = self
            .yaw_rad
            .map_or(0.0, |y| y.to_degrees().rem_euclid(360.0));
        format!(
            "{{\"pos\":[{},{},{}],\"angle\":{},\"detect\":true}}",
            p.x, p.y, p.z, angle
        )
    }
}

/// The 2015 detector's message for a frame without a detection: the last values with
/// `"detect":false` (zeros before the first detection).
pub fn no_detection_2015_json(last: Option<&Detection>) -> String {
    match last {
        Some(d) => d
            .to_2015_json()
            .replace("\"detect\":true", "\"detect\":false"),
        None => "{\"pos\":[0,0,0],\"angle\":0,\"detect\":false}".to_string(),
    }
}

#[derive(Clone, Copy, Debug)]
struct Blob {
    pixels: usize,
    sum_u: f64,
    sum_v: f64,
    depth_start: usize,
    /// Median depth (of the blob; of the largest fragment once merged).
    median_mm: u16,
    min_x: usize,
    min_y: usize,
    max_x: usize,
    max_y: usize,
}

#[derive(Clone, Copy, Debug)]
struct Hit {
    u: f64,
    v: f64,
    pos: Vec3,
    stamp_ns: u64,
    depth_m: f64,
}

/// Frames this far apart (two camera periods and a little) need no more search window than the
/// camera's rate does; see [`Detector::roi_for`].
const ROI_NOMINAL_GAP_S: f64 = 0.07;

impl NoDetection {
    /// A short name of the reason, for counting.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::WrongSize { .. } => "wrong_size",
            Self::LearningBackground { .. } => "learning_background",
            Self::AllInvalid => "all_invalid",
            Self::NoForeground => "no_foreground",
            Self::NoBlobOfQuadSize { .. } => "no_blob_of_quad_size",
            Self::OutsideGate { .. } => "outside_gate",
        }
    }
}

/// A learnt background: per pixel the median depth and the spread seen while learning (mm; the
/// encoding of `Detector::learn`). Saved by a vision process so that a restarted one need not
/// learn it again with the quad in view (which would make the quad background).
#[derive(Clone, Debug, PartialEq)]
pub struct LearntBackground {
    pub depth_mm: Vec<u16>,
    pub spread_mm: Vec<u16>,
}

/// A saved background that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BackgroundError {
    #[error("not a depthpilot background file (it starts with {0:?}, expected \"DPBG\")")]
    Magic(Vec<u8>),
    #[error("background file version {0}; this depthpilot reads version 1")]
    Version(u16),
    #[error("background is {got} bytes, expected {expected} (512×424 depth and spread, u16)")]
    Size { got: usize, expected: usize },
    #[error("background is {width}×{height}; the Kinect v2 depth image is 512×424")]
    Dimensions { width: u32, height: u32 },
}

const BACKGROUND_MAGIC: &[u8; 4] = b"DPBG";
const BACKGROUND_HEADER: usize = 4 + 2 + 4 + 4;

impl LearntBackground {
    fn check(&self) -> Result<(), BackgroundError> {
        let n = WIDTH * HEIGHT;
        if self.depth_mm.len() != n || self.spread_mm.len() != n {
            return Err(BackgroundError::Size {
                got: 2 * (self.depth_mm.len() + self.spread_mm.len()),
                expected: 4 * n,
            });
        }
        Ok(())
    }

    /// `DPBG`, version (u16), width, height (u32), depth, spread (u16 each, little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BACKGROUND_HEADER + 4 * self.depth_mm.len());
        out.extend_from_slice(BACKGROUND_MAGIC);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&(WIDTH as u32).to_le_bytes());
        out.extend_from_slice(&(HEIGHT as u32).to_le_bytes());
        for v in self.depth_mm.iter().chain(&self.spread_mm) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, BackgroundError> {
        if b.len() < BACKGROUND_HEADER || &b[..4] != BACKGROUND_MAGIC {
            return Err(BackgroundError::Magic(b[..b.len().min(4)].to_vec()));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != 1 {
            return Err(BackgroundError::Version(version));
        }
        let width = u32::from_le_bytes([b[6], b[7], b[8], b[9]]);
        let height = u32::from_le_bytes([b[10], b[11], b[12], b[13]]);
        if (width as usize, height as usize) != (WIDTH, HEIGHT) {
            return Err(BackgroundError::Dimensions { width, height });
        }
        let n = WIDTH * HEIGHT;
        let body = &b[BACKGROUND_HEADER..];
        if body.len() != 4 * n {
            return Err(BackgroundError::Size {
                got: body.len(),
                expected: 4 * n,
            });
        }
        let words: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Ok(Self {
            depth_mm: words[..n].to_vec(),
            spread_mm: words[n..].to_vec(),
        })
    }
}

/// See the module doc. Keeps its buffers between frames (no allocation per frame once warm).
pub struct Detector {
    cam: CameraModel,
    cfg: DetectorConfig,
    /// The learning frames so far.
    learning: Vec<Vec<u16>>,
    background: Option<Vec<u16>>,
    /// Foreground thresholds derived from the background (see `thresholds`).
    fg_below: Vec<u16>,
    /// Per-pixel spread of the learning frames (mm; see `learn`).
    spread: Vec<u16>,
    last: Option<Hit>,
    misses: u32,
    /// The search window's foreground mask and the labelling's stack (window coordinates).
    mask: Vec<u8>,
    /// Per row of the window: whether it has foreground.
    rows_fg: Vec<bool>,
    stack: Vec<(usize, usize)>,
    depths: Vec<u16>,
    blobs: Vec<Blob>,
    /// Scratch of the marker search (`yaw_from_markers`).
    marker_px: Vec<u8>,
    marker_stack: Vec<(usize, usize)>,
}

impl Detector {
    pub fn new(cam: CameraModel, cfg: DetectorConfig) -> Self {
        Self {
            cam,
            cfg,
            learning: Vec::new(),
            background: None,
            fg_below: Vec::new(),
            spread: Vec::new(),
            last: None,
            misses: 0,
            mask: Vec::new(),
            rows_fg: Vec::new(),
            stack: Vec::new(),
            depths: Vec::new(),
            blobs: Vec::new(),
            marker_px: Vec::new(),
            marker_stack: Vec::new(),
        }
    }

    pub fn camera(&self) -> &CameraModel {
        &self.cam
    }

    /// Uses this frame as the background instead of learning one.
    pub fn set_background(&mut self, depth_mm: Vec<u16>) {
        self.spread = vec![0; depth_mm.len()];
        self.fg_below = Self::thresholds(&depth_mm, &self.spread, self.cfg.min_depth_step_mm);
        self.background = Some(depth_mm);
        self.learning.clear();
    }

    /// Per pixel: a valid depth below this is foreground. The step to the background must exceed
    /// the minimum step, 4 σ of the model's depth noise there, and 1.5 × the spread seen while
    /// learning. A pixel with no background return counts as foreground anywhere, unless it
    /// flickered while learning: then only well in front of its nearest return.
    fn thresholds(bg: &[u16], spread: &[u16], min_step_mm: f64) -> Vec<u16> {
        bg.iter()
            .zip(spread.iter())
            .map(|(&b, &sp)| {
                if b == 0 {
                    if sp == 0 {
                        u16::MAX
                    } else {
                        // Encoded as u16::MAX - nearest valid sample (see `learn`).
                        let nearest = u16::MAX - sp;
                        nearest.saturating_sub(UNSTABLE_SPREAD_MM)
                    }
                } else {
                    let step = min_step_mm
                        .max(4.0 * Self::sigma_mm(f64::from(b) * 1e-3))
                        .max(1.5 * f64::from(sp));
                    (f64::from(b) - step).max(0.0) as u16
                }
            })
            .collect()
    }

    /// The background it learnt (None: still learning), to save and load in a restarted vision.
    pub fn learnt_background(&self) -> Option<LearntBackground> {
        let depth_mm = self.background.clone()?;
        Some(LearntBackground {
            depth_mm,
            spread_mm: self.spread.clone(),
        })
    }

    /// Uses a saved background instead of learning one.
    pub fn restore_background(&mut self, b: LearntBackground) -> Result<(), BackgroundError> {
        b.check()?;
        self.fg_below = Self::thresholds(&b.depth_mm, &b.spread_mm, self.cfg.min_depth_step_mm);
        self.spread = b.spread_mm;
        self.background = Some(b.depth_mm);
        self.learning.clear();
        Ok(())
    }

    /// Drops the track: the next frame is searched whole.
    pub fn forget_track(&mut self) {
        self.last = None;
        self.misses = 0;
    }

    /// The search window for a frame captured at `stamp_ns`: [`Self::roi`], grown by how far
    /// the quad may have moved (at the gate's `gate_growth_m_s`, in pixels at its last depth)
    /// in the time beyond `ROI_NOMINAL_GAP_S` since the last hit. At 4 Hz (a rate collapse) a
    /// quad flying a step moves 0.15 m between frames, 55 px at 1 m: a window of the camera
    /// rate's size would cut its blob, and the fragment's centroid is centimetres off.
    pub fn roi_for(&self, stamp_ns: u64) -> Roi {
        let roi = self.roi();
        let Some(h) = self.last else {
            return roi;
        };
        if roi.is_full() {
            return roi;
        }
        let late_s =
            (stamp_ns.saturating_sub(h.stamp_ns) as f64 * 1e-9 - ROI_NOMINAL_GAP_S).max(0.0);
        if late_s == 0.0 {
            return roi;
        }
        let k = self.cam.k;
        let px = 2.0 * self.cfg.gate_growth_m_s * late_s * k.fx.max(k.fy) / h.depth_m.max(0.1);
        let side =
            self.cfg.roi_px + self.misses as usize * self.cfg.roi_growth_px + px.ceil() as usize;
        if side > self.cfg.roi_max_px {
            Roi::FULL
        } else {
            Roi::around(h.u, h.v, side)
        }
    }

    /// The search window for the next frame at the camera's rate.
    pub fn roi(&self) -> Roi {
        match self.last {
            None => Roi::FULL,
            Some(h) => {
                let side = self.cfg.roi_px + self.misses as usize * self.cfg.roi_growth_px;
                if side > self.cfg.roi_max_px {
                    Roi::FULL
                } else {
                    Roi::around(h.u, h.v, side)
                }
            }
        }
    }

    fn learn(&mut self, frame: &DepthFrame) -> Option<NoDetection> {
        if self.background.is_some() {
            return None;
        }
        self.learning.push(frame.depth_mm.clone());
        let (seen, needed) = (self.learning.len(), self.cfg.learn_frames.max(1));
        if seen < needed {
            return Some(NoDetection::LearningBackground { seen, needed });
        }
        // Per pixel: the median (invalid 0 sorts first: the median is invalid if most samples
        // were), and how much the samples spread, which says how noisy the pixel is (grazing
        // floor pixels far away are much noisier than the depth alone predicts).
        let mut bg = vec![0u16; WIDTH * HEIGHT];
        let mut spread = vec![0u16; WIDTH * HEIGHT];
        // Sorted per pixel by an odd-even transposition network (`seen` rounds of
        // compare-exchanges of neighbours), run on LANES pixels at once so that each
        // compare-exchange is a vector min and max.
        const LANES: usize = 64;
        let mut cols = vec![[0u16; LANES]; seen];
        for start in (0..WIDTH * HEIGHT).step_by(LANES) {
            let n = LANES.min(WIDTH * HEIGHT - start);
            for (col, f) in cols.iter_mut().zip(self.learning.iter()) {
                col[..n].copy_from_slice(&f[start..start + n]);
            }
            for round in 0..seen {
                for j in (round % 2..seen.saturating_sub(1)).step_by(2) {
                    let (lo, hi) = cols.split_at_mut(j + 1);
                    let (a, b) = (&mut lo[j], &mut hi[0]);
                    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                        let (mn, mx) = ((*x).min(*y), (*x).max(*y));
                        *x = mn;
                        *y = mx;
                    }
                }
            }
            for p in 0..n {
                let median = cols[seen / 2][p];
                let lowest_valid = cols.iter().map(|c| c[p]).find(|&d| d != 0);
                bg[start + p] = median;
                spread[start + p] = match (median, lowest_valid) {
                    // Flickers between a return and none: treat as very noisy.
                    (0, Some(low)) => u16::MAX - low.min(u16::MAX - 1),
                    (_, Some(_)) if cols[0][p] == 0 => UNSTABLE_SPREAD_MM,
                    (_, Some(low)) => cols[seen - 1][p] - low,
                    (_, None) => 0,
                };
            }
        }
        self.spread = spread;
        self.fg_below = Self::thresholds(&bg, &self.spread, self.cfg.min_depth_step_mm);
        self.background = Some(bg);
        self.learning = Vec::new();
        Some(NoDetection::LearningBackground { seen, needed })
    }

    /// Axial noise of the Kinect v2 at depth z (Fankhauser et al. 2015, via third-party code).
    fn sigma_mm(z_m: f64) -> f64 {
        1.5 - 0.5 * z_m + 0.3 * z_m * z_m
    }

    /// Looks for the quad in one frame.
    pub fn detect(&mut self, frame: &DepthFrame) -> Result<Detection, NoDetection> {
        let result = self.detect_inner(frame);
        match &result {
            Ok(d) => {
                self.last = Some(Hit {
                    u: d.pixel.0,
                    v: d.pixel.1,
                    pos: d.pos_in_world_m,
                    stamp_ns: d.stamp_ns,
                    depth_m: d.depth_m,
                });
                self.misses = 0;
            }
            Err(NoDetection::LearningBackground { .. }) | Err(NoDetection::WrongSize { .. }) => {}
            Err(_) => {
                self.misses = self.misses.saturating_add(1);
                // Searching the full frame and still nothing: forget the track.
                if self.roi().is_full() && self.misses > 30 {
                    self.last = None;
                }
            }
        }
        result
    }

    fn detect_inner(&mut self, frame: &DepthFrame) -> Result<Detection, NoDetection> {
        if frame.width != WIDTH
            || frame.height != HEIGHT
            || frame.depth_mm.len() != WIDTH * HEIGHT
            || frame
                .ir
                .as_ref()
                .is_some_and(|ir| ir.len() != WIDTH * HEIGHT)
        {
            return Err(NoDetection::WrongSize {
                got_w: frame.width,
                got_h: frame.height,
                got_len: frame.depth_mm.len(),
            });
        }
        if let Some(learning) = self.learn(frame) {
            return Err(learning);
        }
        let roi = self.roi_for(frame.stamp_ns);
        if self.background.is_none() {
            return Err(NoDetection::LearningBackground {
                seen: 0,
                needed: self.cfg.learn_frames,
            });
        }
        let depth = &frame.depth_mm;

        // The foreground mask of the search window, with a border of background around it so
        // that the labelling needs no bounds tests: 1 = foreground, 2 = labelled.
        let below = &self.fg_below;
        let (rw, rh) = (roi.x1 - roi.x0, roi.y1 - roi.y0);
        let stride = rw + 2;
        let mask = &mut self.mask;
        mask.clear();
        mask.resize(stride * (rh + 2), 0);
        let rows_fg = &mut self.rows_fg;
        rows_fg.clear();
        for y in 0..rh {
            let row = (roi.y0 + y) * WIDTH + roi.x0;
            let m_row = &mut mask[(y + 1) * stride + 1..(y + 1) * stride + 1 + rw];
            let (d_row, b_row) = (&depth[row..row + rw], &below[row..row + rw]);
            let mut any = 0u8;
            for i in 0..rw {
                let f = u8::from(d_row[i] != 0) & u8::from(d_row[i] < b_row[i]);
                m_row[i] = f;
                any |= f;
            }
            rows_fg.push(any != 0);
        }
        // 8-connected blobs (a quad seen edge-on is only a few pixels tall and its silhouette is
        // ragged), seeded in row order. Sums of half-integer coordinates are exact in any order,
        // so the blobs do not depend on the order of the fill.
        let neighbours = [
            -1isize,
            1,
            -(stride as isize),
            -(stride as isize) - 1,
            -(stride as isize) + 1,
            stride as isize,
            stride as isize - 1,
            stride as isize + 1,
        ];
        self.blobs.clear();
        self.depths.clear();
        for y in 0..rh {
            if !self.rows_fg[y] {
                continue;
            }
            for x in 0..rw {
                let m = (y + 1) * stride + x + 1;
                if mask[m] != 1 {
                    continue;
                }
                let (gx, gy) = (roi.x0 + x, roi.y0 + y);
                let mut blob = Blob {
                    pixels: 0,
                    sum_u: 0.0,
                    sum_v: 0.0,
                    depth_start: self.depths.len(),
                    median_mm: 0,
                    min_x: gx,
                    min_y: gy,
                    max_x: gx,
                    max_y: gy,
                };
                mask[m] = 2;
                self.stack.clear();
                self.stack.push((x, y));
                while let Some((lx, ly)) = self.stack.pop() {
                    let (jx, jy) = (roi.x0 + lx, roi.y0 + ly);
                    blob.pixels += 1;
                    blob.sum_u += jx as f64 + 0.5;
                    blob.sum_v += jy as f64 + 0.5;
                    blob.min_x = blob.min_x.min(jx);
                    blob.max_x = blob.max_x.max(jx);
                    blob.min_y = blob.min_y.min(jy);
                    blob.max_y = blob.max_y.max(jy);
                    self.depths.push(depth[jy * WIDTH + jx]);
                    let mj = (ly + 1) * stride + lx + 1;
                    for (n, off) in neighbours.iter().enumerate() {
                        let k = mj.wrapping_add_signed(*off);
                        if mask[k] == 1 {
                            mask[k] = 2;
                            // The border keeps every neighbour of a window pixel inside the mask.
                            let (dx, dy) = [
                                (-1, 0),
                                (1, 0),
                                (0, -1),
                                (-1, -1),
                                (1, -1),
                                (0, 1),
                                (-1, 1),
                                (1, 1),
                            ][n];
                            self.stack
                                .push((lx.wrapping_add_signed(dx), ly.wrapping_add_signed(dy)));
                        }
                    }
                }
                self.blobs.push(blob);
            }
        }
        if self.blobs.is_empty() {
            let any_valid = (roi.y0..roi.y1).any(|y| {
                depth[y * WIDTH + roi.x0..y * WIDTH + roi.x1]
                    .iter()
                    .any(|&d| d != 0)
            });
            return Err(if any_valid || !roi.is_full() {
                NoDetection::NoForeground
            } else {
                NoDetection::AllInvalid
            });
        }

        // Each blob's median depth.
        let blob_count = self.blobs.len();
        for blob in self.blobs.iter_mut() {
            let ds = &mut self.depths[blob.depth_start..blob.depth_start + blob.pixels];
            let mid = ds.len() / 2;
            let (_, &mut med, _) = ds.select_nth_unstable(mid);
            blob.median_mm = med;
        }
        self.merge_fragments();

        // Size gate, then the best candidate: nearest to the track, else the largest.
        let k = self.cam.k;
        let mut best: Option<(f64, Detection)> = None;
        let mut gated: Option<(f64, f64)> = None;
        for bi in 0..self.blobs.len() {
            let blob = self.blobs[bi];
            if blob.pixels < self.cfg.min_pixels {
                continue;
            }
            let z = f64::from(blob.median_mm) * 1e-3;
            let size_m = ((blob.pixels as f64) * z * z / (k.fx * k.fy)).sqrt();
            if size_m < self.cfg.min_size_m || size_m > self.cfg.max_size_m {
                continue;
            }
            let (u, v) = (
                blob.sum_u / blob.pixels as f64,
                blob.sum_v / blob.pixels as f64,
            );
            let ray = self.cam.ray_of(u, v);
            let ray_world = self.cam.world_from_camera.apply(ray);
            let vertical = (ray_world.z / ray_world.norm()).abs();
            let offset = self.cfg.surface_to_centre_below_m * vertical
                + self.cfg.surface_to_centre_side_m * (1.0 - vertical * vertical).sqrt();
            // `ray` has z = 1, so the Z-depth grows by offset / |ray|.
            let p_cam = ray * (z + offset / ray.norm());
            let pos = self.cam.world_from_camera_point(p_cam);
            let score = match self.last {
                Some(h) => {
                    let dt = frame.stamp_ns.saturating_sub(h.stamp_ns) as f64 * 1e-9;
                    let gate = self.cfg.gate_m + self.cfg.gate_growth_m_s * dt;
                    let dist = (pos - h.pos).norm();
                    if dist > gate {
                        gated = Some((dist, gate));
                        continue;
                    }
                    dist
                }
                None => -(blob.pixels as f64),
            };
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                let yaw = frame
                    .ir
                    .as_ref()
                    .and_then(|ir| self.yaw_from_markers(ir, &blob, z));
                best = Some((
                    score,
                    Detection {
                        stamp_ns: frame.stamp_ns,
                        seq: frame.seq,
                        pos_in_world_m: pos,
                        yaw_rad: yaw,
                        pixel: (u, v),
                        pixels: blob.pixels,
                        depth_m: z,
                        size_m,
                        roi,
                        misses_before: self.misses,
                    },
                ));
            }
        }
        match (best, gated) {
            (Some((_, d)), _) => Ok(d),
            (None, Some((distance_m, gate_m))) => {
                Err(NoDetection::OutsideGate { distance_m, gate_m })
            }
            (None, None) => Err(NoDetection::NoBlobOfQuadSize { blobs: blob_count }),
        }
    }

    /// Merges blobs that are fragments of one object: bounding boxes within a few pixels and
    /// median depths within a few centimetres. Silhouette pixels that mixed with a background
    /// without return come out invalid, and can cut the thin arms that join a propeller disc to
    /// the body; the centroid of the fragment alone would jump by pixels.
    fn merge_fragments(&mut self) {
        let n = self.blobs.len();
        if !(2..=MAX_BLOBS_TO_MERGE).contains(&n) {
            return;
        }
        // Largest first, so that each merge keeps the largest fragment's median depth.
        self.blobs.sort_by_key(|b| std::cmp::Reverse(b.pixels));
        let gap = FRAGMENT_GAP_PX;
        let mut merged = vec![false; n];
        for i in 0..n {
            if merged[i] {
                continue;
            }
            let mut grew = true;
            while grew {
                grew = false;
                for (j, done) in merged.iter_mut().enumerate().skip(i + 1) {
                    if *done {
                        continue;
                    }
                    let (a, b) = (self.blobs[i], self.blobs[j]);
                    let near = b.min_x <= a.max_x + gap
                        && a.min_x <= b.max_x + gap
                        && b.min_y <= a.max_y + gap
                        && a.min_y <= b.max_y + gap;
                    let same_depth = (i32::from(a.median_mm) - i32::from(b.median_mm)).abs()
                        <= FRAGMENT_DEPTH_MM;
                    if near && same_depth {
                        let m = &mut self.blobs[i];
                        m.pixels += b.pixels;
                        m.sum_u += b.sum_u;
                        m.sum_v += b.sum_v;
                        m.min_x = m.min_x.min(b.min_x);
                        m.min_y = m.min_y.min(b.min_y);
                        m.max_x = m.max_x.max(b.max_x);
                        m.max_y = m.max_y.max(b.max_y);
                        *done = true;
                        grew = true;
                    }
                }
            }
        }
        let mut keep = merged.iter().map(|m| !m);
        self.blobs.retain(|_| keep.next().unwrap_or(false));
    }

    /// Yaw from the 2015 marker layout in the IR image, within the blob's bounding box.
    fn yaw_from_markers(&mut self, ir: &[u16], blob: &Blob, z_m: f64) -> Option<f64> {
        let thr = self.cfg.ir_marker_threshold;
        let margin = 3;
        let x0 = blob.min_x.saturating_sub(margin);
        let y0 = blob.min_y.saturating_sub(margin);
        let x1 = (blob.max_x + margin + 1).min(WIDTH);
        let y1 = (blob.max_y + margin + 1).min(HEIGHT);
        let w = x1 - x0;
        let h = y1 - y0;
        // Per pixel of the box: BRIGHT, then a 3×3 dilation (GROWN) so that a marker broken by
        // noise stays one blob (the 2015 detector eroded and dilated for the same reason), and
        // SEEN by the labelling. Kept between frames (no allocation per frame once warm).
        const BRIGHT: u8 = 1;
        const GROWN: u8 = 2;
        const SEEN: u8 = 4;
        let px = &mut self.marker_px;
        px.clear();
        px.resize(w * h, 0);
        for ly in 0..h {
            let row = &ir[(y0 + ly) * WIDTH + x0..(y0 + ly) * WIDTH + x1];
            for (p, &v) in px[ly * w..(ly + 1) * w].iter_mut().zip(row) {
                *p = if v >= thr { BRIGHT } else { 0 };
            }
        }
        for ly in 0..h {
            for lx in 0..w {
                if px[ly * w + lx] & BRIGHT == 0 {
                    continue;
                }
                for ny in ly.saturating_sub(1)..(ly + 2).min(h) {
                    for nx in lx.saturating_sub(1)..(lx + 2).min(w) {
                        px[ny * w + nx] |= GROWN;
                    }
                }
            }
        }
        let mut markers: Vec<(f64, f64, usize)> = Vec::new();
        let stack = &mut self.marker_stack;
        for start in 0..w * h {
            if px[start] & (SEEN | GROWN) != GROWN {
                continue;
            }
            px[start] |= SEEN;
            stack.clear();
            stack.push((start % w, start / w));
            let (mut n, mut su, mut sv) = (0usize, 0.0, 0.0);
            while let Some((lx, ly)) = stack.pop() {
                let l = ly * w + lx;
                if px[l] & BRIGHT != 0 {
                    n += 1;
                    su += (x0 + lx) as f64 + 0.5;
                    sv += (y0 + ly) as f64 + 0.5;
                }
                for ny in ly.saturating_sub(1)..(ly + 2).min(h) {
                    for nx in lx.saturating_sub(1)..(lx + 2).min(w) {
                        let k = ny * w + nx;
                        if px[k] & (SEEN | GROWN) == GROWN {
                            px[k] |= SEEN;
                            stack.push((nx, ny));
                        }
                    }
                }
            }
            if n >= 2 {
                markers.push((su / n as f64, sv / n as f64, n));
            }
        }
        if markers.len() != 4 {
            return None;
        }
        // Marker positions in the world, all at the blob's depth: the markers lie in one plane
        // under the quad, and a common depth keeps pixel noise in depth out of the angles.
        let world: Vec<Vec3> = markers
            .iter()
            .map(|&(u, v, _)| {
                self.cam
                    .world_from_camera_point(self.cam.point_of(u, v, z_m))
            })
            .collect();
        // The centre is the marker with two others on opposite sides of it.
        for c in 0..4 {
            let others: Vec<usize> = (0..4).filter(|&i| i != c).collect();
            for a in 0..3 {
                for b in (a + 1)..3 {
                    let (ia, ib) = (others[a], others[b]);
                    let da = world[ia] - world[c];
                    let db = world[ib] - world[c];
                    let cos = da.dot(db) / (da.norm() * db.norm());
                    // Opposite within ±10° (the 2015 detector's 170–190°).
                    if cos < -0.985 {
                        // Opposite pair: M2 and M4; the remaining one is M3 (back-left).
                        let tip = others[3 - a - b];
                        let d = world[tip] - world[c];
                        // Body direction centre → M3 is 135° from body +x.
                        let yaw = d.y.atan2(d.x) - 135f64.to_radians();
                        return Some(depthpilot_types::math::wrap_pi(yaw));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::Intrinsics;
    use proptest::prelude::*;

    fn detector() -> Detector {
        let cam = CameraModel::new(
            Intrinsics::KINECT_V2_DEVICE2,
            Vec3::ZERO,
            Vec3::new(0.0, 0.0, 1.0),
            Vec3::new(1.0, 0.0, 0.0),
        )
        .expect("camera");
        let mut d = Detector::new(cam, DetectorConfig::default());
        d.set_background(vec![0; WIDTH * HEIGHT]);
        d
    }

    fn frame(depth_mm: Vec<u16>, width: usize, height: usize) -> DepthFrame {
        DepthFrame {
            stamp_ns: 0,
            seq: 1,
            width,
            height,
            depth_mm,
            ir: None,
        }
    }

    /// A square patch at `z_mm` of `side` pixels around (u, v).
    fn patch(u: usize, v: usize, side: usize, z_mm: u16) -> Vec<u16> {
        let mut d = vec![0u16; WIDTH * HEIGHT];
        for r in v - side / 2..v + side / 2 {
            for c in u - side / 2..u + side / 2 {
                d[r * WIDTH + c] = z_mm;
            }
        }
        d
    }

    #[test]
    fn a_saved_background_restores_the_detector_and_garbage_files_are_named() {
        let cam = detector().camera().clone();
        let mut learner = Detector::new(cam.clone(), DetectorConfig::default());
        assert!(learner.learnt_background().is_none(), "nothing learnt yet");
        let wall = vec![3000u16; WIDTH * HEIGHT];
        let needed = DetectorConfig::default().learn_frames.max(1);
        for _ in 0..needed {
            let _ = learner.detect(&frame(wall.clone(), WIDTH, HEIGHT));
        }
        let saved = learner.learnt_background().expect("learnt");
        let bytes = saved.to_bytes();
        let loaded = LearntBackground::from_bytes(&bytes).expect("reads back");
        assert_eq!(loaded, saved);
        let mut restarted = Detector::new(cam, DetectorConfig::default());
        restarted.restore_background(loaded).expect("restores");
        // A quad in front of the wall is found at once, without learning again.
        let mut scene = wall.clone();
        for (i, d) in patch(256, 212, 30, 1000).iter().enumerate() {
            if *d != 0 {
                scene[i] = *d;
            }
        }
        let a = learner
            .detect(&frame(scene.clone(), WIDTH, HEIGHT))
            .expect("found");
        let b = restarted
            .detect(&frame(scene, WIDTH, HEIGHT))
            .expect("found");
        assert_eq!(a.pos_in_world_m, b.pos_in_world_m);

        let e = LearntBackground::from_bytes(b"hello").expect_err("garbage");
        assert!(e.to_string().contains("not a depthpilot background"), "{e}");
        let e = LearntBackground::from_bytes(&bytes[..bytes.len() - 2]).expect_err("truncated");
        assert!(e.to_string().contains("expected 868352"), "{e}");
        let mut v2 = bytes.clone();
        v2[4] = 2;
        let e = LearntBackground::from_bytes(&v2).expect_err("version");
        assert!(e.to_string().contains("version 2"), "{e}");
        let mut small = bytes;
        small[6] = 0;
        small[7] = 1;
        let e = LearntBackground::from_bytes(&small).expect_err("dimensions");
        assert!(e.to_string().contains("256×424"), "{e}");
    }

    #[test]
    fn json_of_the_2015_detector() {
        let mut d = detector();
        let det = d
            .detect(&frame(patch(256, 212, 30, 1000), WIDTH, HEIGHT))
            .expect("found");
        let json = det.to_2015_json();
        assert!(json.starts_with("{\"pos\":["), "{json}");
        assert!(json.ends_with(",\"angle\":0,\"detect\":true}"), "{json}");
        assert!(no_detection_2015_json(Some(&det)).ends_with("\"detect\":false}"));
        assert_eq!(
            no_detection_2015_json(None),
            "{\"pos\":[0,0,0],\"angle\":0,\"detect\":false}"
        );
    }

    #[test]
    fn wrong_size_is_reported_with_the_size() {
        let mut d = detector();
        let e = d
            .detect(&frame(vec![0; 640 * 480], 640, 480))
            .expect_err("wrong size");
        assert!(matches!(
            e,
            NoDetection::WrongSize {
                got_w: 640,
                got_h: 480,
                ..
            }
        ));
        assert!(e.to_string().contains("640×480"), "{e}");
        let e = d
            .detect(&frame(vec![0; 10], WIDTH, HEIGHT))
            .expect_err("short buffer");
        assert!(matches!(e, NoDetection::WrongSize { got_len: 10, .. }));
    }

    #[test]
    fn all_zero_frame_is_all_invalid() {
        let mut d = detector();
        let e = d
            .detect(&frame(vec![0; WIDTH * HEIGHT], WIDTH, HEIGHT))
            .expect_err("nothing");
        assert_eq!(e, NoDetection::AllInvalid);
        assert!(e.to_string().contains("no valid depth"));
    }

    #[test]
    fn nan_float_frame_is_all_invalid() {
        let mut d = detector();
        let nan = vec![f32::NAN; WIDTH * HEIGHT];
        let f = DepthFrame::from_f32_mm(0, 1, WIDTH, HEIGHT, &nan);
        assert_eq!(d.detect(&f).expect_err("nothing"), NoDetection::AllInvalid);
        let mixed: Vec<f32> = (0..WIDTH * HEIGHT)
            .map(|i| [f32::INFINITY, -1.0, f32::NEG_INFINITY, 1.0e9][i % 4])
            .collect();
        let f = DepthFrame::from_f32_mm(0, 1, WIDTH, HEIGHT, &mixed);
        assert!(f.depth_mm.iter().all(|&d| d == 0));
    }

    #[test]
    fn finds_a_quad_sized_patch_and_rejects_a_wall() {
        let mut d = detector();
        let det = d
            .detect(&frame(patch(256, 212, 30, 1000), WIDTH, HEIGHT))
            .expect("found");
        assert!((det.pos_in_world_m.z - 0.992).abs() < 0.01, "{det:?}");
        assert!(det.size_m > 0.07 && det.size_m < 0.09, "{det:?}");
        let mut d = detector();
        let e = d
            .detect(&frame(patch(256, 212, 300, 1000), WIDTH, HEIGHT))
            .expect_err("wall");
        assert!(
            matches!(e, NoDetection::NoBlobOfQuadSize { blobs: 1 }),
            "{e:?}"
        );
    }

    #[test]
    fn region_of_interest_widens_while_lost_then_searches_the_full_frame() {
        let mut d = detector();
        d.detect(&frame(patch(256, 212, 30, 1000), WIDTH, HEIGHT))
            .expect("found");
        let side = |r: Roi| r.x1 - r.x0;
        assert_eq!(side(d.roi()), 100);
        let empty = frame(vec![0; WIDTH * HEIGHT], WIDTH, HEIGHT);
        let _ = d.detect(&empty);
        assert_eq!(side(d.roi()), 125);
        for _ in 0..8 {
            let _ = d.detect(&empty);
        }
        assert!(d.roi().is_full());
    }

    /// Issue 19: at 4 Hz (a rate collapse) the quad moves 55 px between frames; the window
    /// grows with the time since the last hit, so the whole blob is found, not a fragment.
    #[test]
    fn region_of_interest_grows_with_the_time_since_the_last_hit() {
        let mut d = detector();
        d.detect(&frame(patch(256, 212, 30, 1000), WIDTH, HEIGHT))
            .expect("found");
        let side = |r: Roi| r.x1 - r.x0;
        // Within two camera periods: the camera rate's window.
        assert_eq!(side(d.roi_for(66_000_000)), 100);
        // 250 ms later: 1.5 m/s for the 180 ms beyond them, both ways, at 1 m depth.
        let fx = d.camera().k.fx.max(d.camera().k.fy);
        let expect = 100 + (2.0 * 1.5 * 0.18 * fx / 0.992_f64).ceil() as usize;
        let grown = side(d.roi_for(250_000_000));
        assert!(grown.abs_diff(expect) <= 2, "{grown} vs {expect}");
        assert!(d.roi_for(2_000_000_000).is_full());
        // A quad 60 px away after 250 ms: a window of the camera rate's size would cut its
        // 30-px blob; the grown one finds all of it.
        let mut later = frame(patch(316, 212, 30, 1000), WIDTH, HEIGHT);
        later.stamp_ns = 250_000_000;
        let det = d.detect(&later).expect("found");
        assert_eq!(det.pixels, 900, "{det:?}");
        assert!((det.pixel.0 - 316.0).abs() < 0.6, "{det:?}");
    }

    proptest! {
        /// Arbitrary depth frames never panic the detector.
        #[test]
        fn garbage_frames_never_panic(seed in any::<u64>(), fill in 0u16..6000, noise in 0u16..3000) {
            let mut d = detector();
            let mut x = seed | 1;
            let depth: Vec<u16> = (0..WIDTH * HEIGHT).map(|_| {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                if x % 7 == 0 { 0 } else { fill.saturating_add((x % u64::from(noise.max(1))) as u16) }
            }).collect();
            let _ = d.detect(&frame(depth, WIDTH, HEIGHT));
        }
    }
}
