//! A depth frame as the Kinect v2 delivers it (and libfreenect2 passes on): Z-depth in millimetres,
//! row-major, 0 = invalid; optionally the IR amplitude image of the same geometry.

/// One depth (and IR) frame.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthFrame {
    /// Capture time.
    pub stamp_ns: u64,
    pub seq: u64,
    pub width: usize,
    pub height: usize,
    pub depth_mm: Vec<u16>,
    pub ir: Option<Vec<u16>>,
}

impl DepthFrame {
    /// From libfreenect2's float depth (millimetres, where "non-positive, NaN, and infinity are
    /// invalid or missing data"): invalid values, and values beyond u16, become 0.
    pub fn from_f32_mm(stamp_ns: u64, seq: u64, width: usize, height: usize, mm: &[f32]) -> Self {
        let depth_mm = mm
            .iter()
            .map(|&d| {
                if d.is_finite() && d > 0.5 && d < 65535.5 {
                    d.round() as u16
                } else {
                    0
                }
            })
            .collect();
        Self {
            stamp_ns,
            seq,
            width,
            height,
            depth_mm,
            ir: None,
        }
    }

    pub fn depth_at(&self, col: usize, row: usize) -> u16 {
        self.depth_mm[row * self.width + col]
    }
}
