//! The Kinect v2's systematic depth errors, each a realism item (`realism.kinect_*`): the
//! distance-dependent bias ("wiggling"), multipath near surfaces, mixed pixels at the quad's
//! silhouette, the spinning propellers' motion artefacts and the warm-up drift. The synthetic
//! camera (`crate::kinect`) applies them; this module holds the models and their parameters.
//!
//! Sources (cited again at each parameter):
//! - libfreenect2 (OpenKinect/libfreenect2 @fd64c5d), the open re-implementation of the Kinect v2's
//!   depth decoder: three modulation frequencies of three phase steps each, and the decoded range
//!   as the plain mean of the three unwrapped ranges.
//! - Corti, Giancola, Mainetti, Sala, "A metrological characterization of the Kinect V2
//!   time-of-flight camera", Robotics and Autonomous Systems 2016 (highlights read: "the temperature
//!   of the Kinect V2 has an influence in the distance measurement", "the systematic uncertainty
//!   follows a harmonic trend called wiggling error", "multiple reflections generate distortions in
//!   concave 3D geometry reconstruction"). Its figures could not be read here.
//! - Sarbolandi, Lefloch, Kolb, "Kinect range sensing: structured-light versus time-of-flight
//!   Kinect", CVIU 2015 (arXiv 1505.05459), and Fürsattel et al., "A comparative error analysis of
//!   current time-of-flight sensors", IEEE TCI 2016: found, but their numbers could not be read here.
//! - Jimenez, Pizarro, Mazo, "Single frame correction of motion artifacts in PMD-based time of
//!   flight cameras", Image and Vision Computing 32 (2014) (abstract: "with motion, PMD pixels
//!   capture different depths at each stage. As a result, correlation samples are not coherent with
//!   a single depth, producing artifacts").
//!
//! Every number that a readable source does not give is marked UNVERIFIED with the reason for
//! the value chosen. None was tuned to make a flight figure come out.

use crate::noise::{Noise, Stream};
use depthpilot_types::Vec3;
use depthpilot_types::scene::{Realism, WorldConfig};

/// Speed of light in air (m/s).
const C_M_S: f64 = 299_792_458.0;

/// The Kinect v2's modulation frequencies: "16, 80 and 120 MHz"
/// (libfreenect2 src/cuda_kde_depth_packet_processor.cu:328 @fd64c5d).
pub const MODULATION_HZ: [f64; 3] = [16e6, 80e6, 120e6];

/// Phase steps per frequency: 0, 2π/3, 4π/3 (libfreenect2 src/depth_packet_processor.cpp:45-47
/// `phase_in_rad` @fd64c5d).
pub const PHASE_STEPS: usize = 3;

/// Raw correlation images behind one depth frame: 3 frequencies × 3 phase steps (libfreenect2
/// src/cpu_depth_packet_processor.cpp:890 `Mat<Vec<float, 9>>` @fd64c5d).
pub const RAW_IMAGES: usize = MODULATION_HZ.len() * PHASE_STEPS;

/// Semi-amplitude of each frequency's cyclic ("wiggling") phase error, rad.
///
/// UNVERIFIED. Corti 2016 names the wiggling of the Kinect v2 a harmonic trend; Sarbolandi 2015
/// and Fürsattel 2016 plot it, but their amplitudes could not be read here. Chosen: 0.006 rad
/// (0.34°) per frequency, which through [`wiggle_amplitudes_mm`] gives ≈ 3.0 mm on the 16 MHz
/// term and ≈ 4.0 mm peak in all: "a few millimetres", the scale those papers describe for the
/// Kinect v2 as opposed to the centimetres of older ToF cameras.
pub const WIGGLE_PHASE_ERROR_RAD: f64 = 0.006;

/// Unambiguous range of a modulation frequency: c / (2 f) (m).
pub fn wrap_m(f_hz: f64) -> f64 {
    C_M_S / (2.0 * f_hz)
}

/// The range period of each frequency's wiggle (m): a three-step phase measurement aliases the
/// 2nd and 4th harmonics of the correlation waveform onto the fundamental, which makes an error
/// with three cycles per unambiguous range (derived from [`PHASE_STEPS`] = 3): 3.12 m, 0.62 m and
/// 0.42 m for 16, 80 and 120 MHz.
pub fn wiggle_periods_m() -> [f64; 3] {
    MODULATION_HZ.map(|f| wrap_m(f) / PHASE_STEPS as f64)
}

/// Each frequency's wiggle amplitude in range (mm): the phase error as a fraction of a turn times
/// the unambiguous range, divided by 3 because the decoder averages the three unwrapped ranges
/// with equal weights (libfreenect2 src/cpu_depth_packet_processor.cpp:648-649 `t9`, `t10`
/// @fd64c5d). The long 16 MHz wrap dominates.
pub fn wiggle_amplitudes_mm() -> [f64; 3] {
    MODULATION_HZ.map(|f| {
        WIGGLE_PHASE_ERROR_RAD / std::f64::consts::TAU * wrap_m(f) * 1000.0
            / MODULATION_HZ.len() as f64
    })
}

/// Largest distance to another surface at which multipath is counted (m); beyond it the
/// exponential below is under 0.01 mm.
const MULTIPATH_REACH_M: f64 = 1.0;

/// Range error at a concave corner from light that reaches a pixel's surface point by way of a
/// neighbouring surface (mm, measured too long).
///
/// UNVERIFIED. Corti 2016 reports that multiple reflections distort concave geometry, and
/// Sarbolandi 2015 measures it on a corner, but neither number could be read here. Chosen: 10 mm
/// at the corner, i.e. of the order of the extra path (a few centimetres) weighted by the small
/// share of light a matte neighbour sends on.
pub const MULTIPATH_CORNER_MM: f64 = 10.0;

/// Distance from the neighbouring surface over which the multipath error fades (m, e-folding).
///
/// UNVERIFIED: chosen as 0.15 m, where the neighbour's solid angle seen from the point (and with
/// it the indirect light) has fallen to a fraction of its value near the corner.
pub const MULTIPATH_DECAY_M: f64 = 0.15;

/// Warm-up drift at switch-on (mm, depth read long while cold).
///
/// UNVERIFIED. Corti 2016 reports that temperature changes the measured distance; Lachat et al.
/// (ISPRS Archives XL-5/W4, 2015, "First experiences with Kinect v2 sensor for close range 3D
/// modelling", as discussed in OpenKinect/libfreenect2#535) recommend a warm-up before measuring;
/// the millimetre figures of those papers could not be read here. Chosen: 5 mm.
pub const WARMUP_INITIAL_MM: f64 = 5.0;

/// Time constant of the warm-up drift (s).
///
/// UNVERIFIED: 600 s, so that the drift has settled (< 5 %) after half an hour, the warm-up the
/// sources above recommend (libfreenect2#535 quotes 10 to 20 minutes for Lachat 2015).
pub const WARMUP_TAU_S: f64 = 600.0;

/// Share of a propeller disc covered by the blades (blade area / disc area).
///
/// UNVERIFIED: no source. Estimated for the Crazyflie's 2-blade 46 mm propeller (radius 23.1 mm,
/// `reference/sim_vision.md` §1.1) with a mean chord of ≈ 5.5 mm: 2 × 21 mm × 5.5 mm / (π ×
/// 23.1² mm²) ≈ 0.14.
pub const PROP_SOLIDITY: f64 = 0.14;

/// Range between a pixel and the surface it sees, from the Z-depth and the pixel's ray (z = 1).
pub fn range_m(z_m: f64, ray_cam: Vec3) -> f64 {
    z_m * ray_cam.norm()
}

/// Extra range from multipath at `gap_m` from a lit neighbouring surface (mm).
pub fn multipath_mm(gap_m: f64) -> f64 {
    if gap_m > MULTIPATH_REACH_M {
        return 0.0;
    }
    MULTIPATH_CORNER_MM * (-gap_m.max(0.0) / MULTIPATH_DECAY_M).exp()
}

/// Warm-up drift after the camera has been on for `on_s` (mm, positive: read long).
pub fn warmup_mm(on_s: f64) -> f64 {
    WARMUP_INITIAL_MM * (-on_s.max(0.0) / WARMUP_TAU_S).exp()
}

/// The depth of a pixel that sees the foreground over `coverage` ∈ [0, 1] of its area and the
/// background over the rest (mm; `bg_mm` 0 = no return). A ToF pixel sums the two returns'
/// phasors; for depth differences small against the unambiguous range the phase of the sum is the
/// amplitude-weighted mean, and each return's amplitude falls with the square of its range (the
/// camera's own illumination; equal reflectivity assumed). Without a background return only the
/// foreground's light arrives and the pixel reads the foreground (None: no light at all).
pub fn mixed_depth_mm(coverage: f64, fg_mm: f64, bg_mm: f64) -> Option<f64> {
    if coverage <= 0.0 {
        return (bg_mm > 0.0).then_some(bg_mm);
    }
    if bg_mm <= 0.0 || coverage >= 1.0 {
        return Some(fg_mm);
    }
    let w_fg = coverage / (fg_mm * fg_mm);
    let w_bg = (1.0 - coverage) / (bg_mm * bg_mm);
    Some((w_fg * fg_mm + w_bg * bg_mm) / (w_fg + w_bg))
}

/// What a pixel inside a spinning propeller's disc returns in one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropPixel {
    /// No raw image saw a blade: the pixel sees what is behind the disc.
    SeeThrough,
    /// Every raw image saw a blade: the blade's depth.
    Blade,
    /// Some raw images saw a blade and some did not: the correlation samples belong to different
    /// depths (Jimenez 2014) and the decoder's unwrapping consistency test rejects the pixel
    /// (libfreenect2 src/cpu_depth_packet_processor.cpp:685 `max_dealias_confidence` @fd64c5d).
    Invalid,
}

/// The propeller outcome for a uniform draw `u` ∈ [0, 1). At 15,900–23,900 rpm (Bitcraze
/// thrust-stand, `reference/sim_vision.md` §1.2) a 2-blade propeller passes a given pixel every
/// 1.3–1.9 ms, several times within the 33 ms frame that holds the [`RAW_IMAGES`] raw images, so
/// each raw image sees a blade independently with probability [`PROP_SOLIDITY`] (UNVERIFIED: the
/// raw images' exposure times are not known here; assumed short against a blade passage).
pub fn prop_pixel(u: f64) -> PropPixel {
    let n = RAW_IMAGES as i32;
    let none = (1.0 - PROP_SOLIDITY).powi(n);
    let all = PROP_SOLIDITY.powi(n);
    if u < none {
        PropPixel::SeeThrough
    } else if u < none + all {
        PropPixel::Blade
    } else {
        PropPixel::Invalid
    }
}

/// Nearest point of an axis-aligned box to `p`, with the outward normal of the face it lies on.
fn box_nearest(center: Vec3, half: Vec3, p: Vec3) -> (Vec3, Vec3) {
    let d = p - center;
    let q = Vec3::new(
        d.x.clamp(-half.x, half.x),
        d.y.clamp(-half.y, half.y),
        d.z.clamp(-half.z, half.z),
    );
    // The face: the axis along which q sits furthest out relative to the half extent.
    let r = [q.x / half.x, q.y / half.y, q.z / half.z];
    let mut axis = 0;
    for a in 1..3 {
        if r[a].abs() > r[axis].abs() {
            axis = a;
        }
    }
    let s = r[axis].signum();
    let n = match axis {
        0 => Vec3::new(s, 0.0, 0.0),
        1 => Vec3::new(0.0, s, 0.0),
        _ => Vec3::new(0.0, 0.0, s),
    };
    (center + q, n)
}

/// Distance from the surface point `p` to the nearest other static surface that can send it the
/// camera's light by one bounce: that surface's nearest point must face the camera at `cam_m`
/// (lit) and, when `normal` is given, lie in front of `p` (a concave corner, not a convex edge).
/// None: no such surface within reach.
pub fn multipath_gap_m(
    world: &WorldConfig,
    cam_m: Vec3,
    p: Vec3,
    normal: Option<Vec3>,
) -> Option<f64> {
    const ON_SURFACE_M: f64 = 1e-3;
    let mut best: Option<f64> = None;
    let mut consider = |q: Vec3, n_q: Vec3| {
        let gap = (q - p).norm();
        let lit = n_q.dot(cam_m - q) > 1e-9;
        let in_front = normal.is_none_or(|n| n.dot(q - p) >= -1e-9);
        if gap > ON_SURFACE_M && gap < MULTIPATH_REACH_M && lit && in_front {
            best = Some(best.map_or(gap, |b: f64| b.min(gap)));
        }
    };
    if world.floor && p.z > ON_SURFACE_M {
        consider(Vec3::new(p.x, p.y, 0.0), Vec3::new(0.0, 0.0, 1.0));
    }
    for b in &world.boxes {
        let (q, n_q) = box_nearest(b.center_m, b.half_extents_m, p);
        consider(q, n_q);
    }
    best
}

/// Uniform draws for the per-pixel propeller outcomes: xorshift64* (Vigna 2016), a few
/// nanoseconds each, deterministic from its seed.
#[derive(Clone, Debug)]
struct Uniforms {
    state: u64,
}

impl Uniforms {
    fn new(seed: u64) -> Self {
        // splitmix64 of the seed: a well-mixed, non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self { state: z.max(1) }
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The systematic-error items of one camera, with the camera unit's own draws.
#[derive(Clone, Debug)]
pub struct KinectErrors {
    /// The wiggle's phase for each modulation frequency (rad), a property of the unit; None: off.
    wiggle_phase_rad: Option<[f64; 3]>,
    pub multipath: bool,
    pub mixed_pixels: bool,
    /// Per-pixel draws for the propeller discs; None: off.
    props: Option<Uniforms>,
    pub warmup: bool,
    /// How long the camera had been on at t = 0 (s).
    pub on_s: f64,
}

impl KinectErrors {
    /// The items `realism` switches on; draws from [`Stream::KinectSystematic`] only if one is.
    pub fn new(realism: &Realism, seed: u64) -> Self {
        let mut errors = Self {
            wiggle_phase_rad: None,
            multipath: realism.kinect_multipath,
            mixed_pixels: realism.kinect_mixed_pixels,
            props: None,
            warmup: realism.kinect_warmup,
            on_s: realism.kinect_on_s,
        };
        if realism.kinect_any() {
            let mut noise = Noise::new(seed, Stream::KinectSystematic);
            // Always drawn when the stream is used, so switching one item never shifts another's.
            let phases = [0; 3].map(|_| std::f64::consts::TAU * noise.uniform());
            errors.wiggle_phase_rad = realism.kinect_wiggling.then_some(phases);
            if realism.kinect_props {
                // Seeded from the stream; a table of normals (`Noise::fast_gaussians`) would
                // cost tens of milliseconds per flight for draws that need only uniforms.
                errors.props = Some(Uniforms::new((noise.uniform() * 2f64.powi(53)) as u64));
            }
        }
        errors
    }

    /// Every item off: no error, no draw.
    pub fn off() -> Self {
        Self::new(&Realism::default(), 0)
    }

    /// Whether the static scene carries a per-pixel bias (wiggling or multipath).
    pub fn static_bias(&self) -> bool {
        self.wiggle_phase_rad.is_some() || self.multipath
    }

    /// The wiggle's phases (rad), if the item is on (they are drawn from the seed).
    pub fn wiggle_phase_rad(&self) -> Option<[f64; 3]> {
        self.wiggle_phase_rad
    }

    pub fn wiggling(&self) -> bool {
        self.wiggle_phase_rad.is_some()
    }

    pub fn props(&self) -> bool {
        self.props.is_some()
    }

    /// The wiggle at range `range_m` (mm); 0 when off.
    pub fn wiggle_mm(&self, range_m: f64) -> f64 {
        let Some(phases) = self.wiggle_phase_rad else {
            return 0.0;
        };
        let amps = wiggle_amplitudes_mm();
        let periods = wiggle_periods_m();
        (0..3)
            .map(|k| amps[k] * (std::f64::consts::TAU * range_m / periods[k] + phases[k]).sin())
            .sum()
    }

    /// The warm-up drift at flight time `t_s` (mm); 0 when off.
    pub fn drift_mm(&self, t_s: f64) -> f64 {
        if self.warmup {
            warmup_mm(self.on_s + t_s)
        } else {
            0.0
        }
    }

    /// The next propeller-disc pixel's outcome (blade always, when the item is off).
    pub fn prop_draw(&mut self) -> PropPixel {
        match self.props.as_mut() {
            Some(rng) => prop_pixel(rng.uniform()),
            None => PropPixel::Blade,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::{BoxConfig, RealismPreset};

    fn all_on() -> Realism {
        Realism::preset(RealismPreset::Bench)
    }

    #[test]
    fn wiggle_periods_and_amplitudes_follow_from_the_modulation() {
        let p = wiggle_periods_m();
        assert!((p[0] - 3.1228).abs() < 1e-3, "{p:?}");
        assert!((p[1] - 0.6246).abs() < 1e-3, "{p:?}");
        assert!((p[2] - 0.4164).abs() < 1e-3, "{p:?}");
        let a = wiggle_amplitudes_mm();
        assert!((a[0] - 2.98).abs() < 0.01, "{a:?}");
        assert!(a[0] > a[1] && a[1] > a[2], "16 MHz dominates: {a:?}");
    }

    #[test]
    fn wiggle_stays_within_its_amplitude_and_reaches_it() {
        let e = KinectErrors::new(&all_on(), 3);
        let total: f64 = wiggle_amplitudes_mm().iter().sum();
        let samples: Vec<f64> = (0..4000)
            .map(|i| e.wiggle_mm(0.5 + i as f64 * 1e-3))
            .collect();
        let max = samples.iter().cloned().fold(f64::MIN, f64::max);
        let min = samples.iter().cloned().fold(f64::MAX, f64::min);
        assert!(max <= total + 1e-9 && min >= -total - 1e-9, "{min} {max}");
        assert!(
            max - min > 2.0 * 0.8 * wiggle_amplitudes_mm()[0],
            "{min} {max}"
        );
        // Mostly the 16 MHz term: one of its periods later, the error is nearly the same.
        let p = wiggle_periods_m()[0];
        let small = wiggle_amplitudes_mm()[1] + wiggle_amplitudes_mm()[2];
        for d in [0.7, 1.3, 2.2] {
            assert!((e.wiggle_mm(d) - e.wiggle_mm(d + p)).abs() <= 2.0 * small + 1e-9);
        }
    }

    #[test]
    fn each_unit_wiggles_its_own_way_and_off_is_zero() {
        let a = KinectErrors::new(&all_on(), 1);
        let b = KinectErrors::new(&all_on(), 1);
        let c = KinectErrors::new(&all_on(), 2);
        assert_eq!(a.wiggle_mm(1.7).to_bits(), b.wiggle_mm(1.7).to_bits());
        assert_ne!(a.wiggle_mm(1.7).to_bits(), c.wiggle_mm(1.7).to_bits());
        let off = KinectErrors::off();
        assert_eq!(off.wiggle_mm(1.7), 0.0);
        assert_eq!(off.drift_mm(0.0), 0.0);
        assert!(!off.static_bias() && !off.props());
    }

    #[test]
    fn drift_decreases_with_time_on() {
        assert_eq!(warmup_mm(0.0), WARMUP_INITIAL_MM);
        let mut last = f64::MAX;
        for t in [0.0, 60.0, 300.0, 900.0, 1800.0] {
            let d = warmup_mm(t);
            assert!(d < last && d > 0.0, "{t}: {d}");
            last = d;
        }
        assert!(
            warmup_mm(1800.0) < 0.05 * WARMUP_INITIAL_MM,
            "settled in half an hour"
        );
        let mut r = all_on();
        r.kinect_on_s = 300.0;
        let e = KinectErrors::new(&r, 1);
        assert_eq!(e.drift_mm(60.0), warmup_mm(360.0));
    }

    #[test]
    fn mixed_depth_lies_between_and_leans_to_the_nearer_return() {
        for c in [0.25, 0.5, 0.75] {
            let z = mixed_depth_mm(c, 1000.0, 3000.0).expect("light");
            assert!(z > 1000.0 && z < 3000.0, "{c}: {z}");
        }
        // Half covered: the nearer return is 9× brighter, so the mean sits near it.
        let half = mixed_depth_mm(0.5, 1000.0, 3000.0).expect("light");
        assert!((half - 1200.0).abs() < 1e-9, "{half}");
        assert_eq!(mixed_depth_mm(0.25, 1000.0, 0.0), Some(1000.0));
        assert_eq!(mixed_depth_mm(0.0, 1000.0, 0.0), None);
        assert_eq!(mixed_depth_mm(0.0, 1000.0, 2000.0), Some(2000.0));
    }

    #[test]
    fn prop_pixels_are_mostly_invalid() {
        let mut e = KinectErrors::new(&all_on(), 4);
        let n = 20_000;
        let (mut see, mut blade, mut bad) = (0, 0, 0);
        for _ in 0..n {
            match e.prop_draw() {
                PropPixel::SeeThrough => see += 1,
                PropPixel::Blade => blade += 1,
                PropPixel::Invalid => bad += 1,
            }
        }
        let p_see = (1.0 - PROP_SOLIDITY).powi(9);
        assert!((see as f64 / n as f64 - p_see).abs() < 0.02, "{see}");
        assert!(blade < 5, "{blade}");
        assert!(bad > see, "{bad} {see}");
        assert_eq!(KinectErrors::off().prop_draw(), PropPixel::Blade);
    }

    #[test]
    fn multipath_only_in_lit_concave_corners() {
        let world = WorldConfig {
            boxes: vec![BoxConfig {
                center_m: Vec3::new(1.0, 0.0, 0.25),
                half_extents_m: Vec3::new(0.25, 0.25, 0.25),
            }],
            ..WorldConfig::default()
        };
        let cam = Vec3::new(0.0, 0.0, 3.0);
        let up = Vec3::new(0.0, 0.0, 1.0);
        // Floor next to the lit −x face: a concave corner.
        let g = multipath_gap_m(&world, cam, Vec3::new(0.7, 0.0, 0.0), Some(up)).expect("near");
        assert!((g - 0.05).abs() < 1e-9, "{g}");
        assert!(multipath_mm(g) > 7.0);
        // Floor far from the box: nothing.
        assert_eq!(
            multipath_gap_m(&world, cam, Vec3::new(-1.0, 1.5, 0.0), Some(up)),
            None
        );
        // Floor behind the box, next to its unlit +x face: nothing.
        assert_eq!(
            multipath_gap_m(&world, cam, Vec3::new(1.3, 0.0, 0.0), Some(up)),
            None
        );
        // The box's top face: the floor is behind it (convex), nothing.
        assert_eq!(
            multipath_gap_m(&world, cam, Vec3::new(1.0, 0.0, 0.5), Some(up)),
            None
        );
        // The lit −x face near the floor: the floor is in front of it.
        let side = multipath_gap_m(
            &world,
            cam,
            Vec3::new(0.75, 0.0, 0.1),
            Some(Vec3::new(-1.0, 0.0, 0.0)),
        );
        assert!((side.expect("corner") - 0.1).abs() < 1e-9);
        assert!(multipath_mm(0.0) == MULTIPATH_CORNER_MM && multipath_mm(2.0) == 0.0);
        // A camera on the floor does not light the floor: no bounce from it.
        let on_floor = Vec3::ZERO;
        assert_eq!(
            multipath_gap_m(
                &WorldConfig::default(),
                on_floor,
                Vec3::new(0.0, 0.0, 0.1),
                None
            ),
            None
        );
    }
}
