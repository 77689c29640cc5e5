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
    pub fn depth_at(&self, col: usize, row: usize) -> u16 {
        self.depth_mm[row * self.width + col]
    }
}
