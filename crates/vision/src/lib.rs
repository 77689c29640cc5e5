//! The vision stage: Kinect v2 depth-camera geometry and the detector that finds the Crazyflie in a
//! depth image and turns it into world coordinates.
//!
//! In scope: the camera model (intrinsics, Brown distortion as libfreenect2 applies it, pixel ↔
//! camera ↔ world), depth frames, the detector (background model → foreground → the quad's blob with
//! size and continuity gates and a region of interest that widens while lost, like the 2015 detector →
//! robust centre and depth → world), yaw from the 2015 IR marker layout. Pure and deterministic.
//!
//! Out of scope: rendering synthetic frames (`depthpilot-sim`), acquiring real ones (`camera`), and
//! the tracking filter, which is the controller's estimator (`depthpilot-control`): it fuses each
//! detection at its capture time and predicts to "now".

pub mod camera;
pub mod detector;
pub mod frame;

pub use camera::{CameraModel, HEIGHT, WIDTH};
pub use detector::{Detection, Detector, DetectorConfig, NoDetection, no_detection_2015_json};
pub use frame::DepthFrame;

/// A camera could not be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisionError {
    #[error("camera pose: the optical axis and the up hint must not be parallel (or zero)")]
    DegeneratePose,
}
