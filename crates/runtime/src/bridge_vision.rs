//! The vision of a real (or fake) Kinect v2 bridge: depth frames over ZMQ (`depthpilot-camera`'s
//! protocol), the detector run on them with the device's own intrinsics, measurements to the
//! controller.
//!
//! ```text
//!  Kinect bridge ── PUB kinect/frame ──► BridgeClient ─► detector (device intrinsics,
//!  (hil/kinect_bridge, or                 (stale, garbage)   scene's camera pose) ─► controller
//!   depthpilot fake-bridge) ◄── PUB sim/truth (a simulated world only, for the fake bridge)
//! ```
//!
//! A frame's measurement is stamped with the device's own timestamp mapped to the flight's clock:
//! the offset between the clocks is the smallest (arrival − device stamp) seen so far, less the
//! camera's modelled latency (the scene's `latency_s`, the least a frame takes to arrive). That
//! keeps the transport's jitter out of the stamps; a frame's stamp is never after its arrival.

use crate::RuntimeError;
use crate::actors::{ReportVision, SenseRealtime, Timed, VisionReport};
use crate::bus::{self, TOPIC_TRUTH, TruthMsg};
use crate::netpolicy::{BindPolicy, Role, bind_checked};
use actix::prelude::*;
use depthpilot_camera::session::DetectionRecord;
use depthpilot_camera::{
    BridgeClient, BridgeConfig, BridgeEvent, BridgeReport, BridgeState, ReceivedFrame,
};
use depthpilot_sim::world::BodyState;
use depthpilot_types::scene::{Intrinsics, KinectConfig, Sensing};
use depthpilot_types::{Measurement, Scene, Vec3};
use depthpilot_vision::detector::{Detection, Detector, DetectorConfig, NoDetection};
use depthpilot_vision::{CameraModel, VisionError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a flight waits for the bridge's first frame before it starts.
pub const WAIT_FOR_FRAMES: Duration = Duration::from_secs(60);

/// The detector on bridge frames, built for the intrinsics the frames carry.
pub struct BridgeVision {
    position_m: Vec3,
    look_at_m: Vec3,
    up_hint: Vec3,
    detector: Option<(Intrinsics, Detector)>,
    pub stats: BridgeVisionStats,
}

/// What the bridge vision did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct BridgeVisionStats {
    pub frames: u64,
    pub detections: u64,
    pub with_yaw: u64,
    /// Frames without a detection, by reason.
    pub misses: BTreeMap<&'static str, u64>,
    /// The intrinsics in use (the device's, from its frames).
    pub intrinsics: Option<Intrinsics>,
    /// Times the frames' intrinsics changed (another device): the detector starts over.
    pub intrinsics_changes: u64,
}

impl BridgeVision {
    /// The camera's pose comes from the scene (where the Kinect stands); its intrinsics from the
    /// frames.
    pub fn new(scene: &Scene) -> Result<Self, RuntimeError> {
        let Sensing::Kinect(k) = &scene.sensing else {
            return Err(RuntimeError::Setup(format!(
                "scene `{}`: a Kinect bridge camera needs a Kinect scene (`sensing: Kinect((…))`, \
                 where the camera stands and looks)",
                scene.name
            )));
        };
        Ok(Self::at(k))
    }

    /// A vision for a camera placed as `k` says.
    pub fn at(k: &KinectConfig) -> Self {
        Self {
            position_m: k.position_m,
            look_at_m: k.look_at_m,
            up_hint: k.up_hint,
            detector: None,
            stats: BridgeVisionStats::default(),
        }
    }

    /// Runs the detector on a frame (built, or rebuilt, for the frame's intrinsics).
    pub fn detect(
        &mut self,
        f: &ReceivedFrame,
    ) -> Result<Result<Detection, NoDetection>, VisionError> {
        if self
            .detector
            .as_ref()
            .is_none_or(|(k, _)| *k != f.intrinsics)
        {
            let cam =
                CameraModel::new(f.intrinsics, self.position_m, self.look_at_m, self.up_hint)?;
            if self.detector.is_some() {
                self.stats.intrinsics_changes += 1;
            }
            self.detector = Some((f.intrinsics, Detector::new(cam, DetectorConfig::default())));
            self.stats.intrinsics = Some(f.intrinsics);
        }
        let (_, detector) = self.detector.as_mut().expect("built above");
        let r = detector.detect(&f.frame);
        self.stats.frames += 1;
        match &r {
            Ok(d) => {
                self.stats.detections += 1;
                self.stats.with_yaw += u64::from(d.yaw_rad.is_some());
            }
            Err(e) => *self.stats.misses.entry(e.reason()).or_insert(0) += 1,
        }
        Ok(r)
    }

    pub fn detector(&self) -> Option<&Detector> {
        self.detector.as_ref().map(|(_, d)| d)
    }
}

/// A detection result as a recorded session keeps it.
pub fn record_of(frame_seq: u64, r: &Result<Detection, NoDetection>) -> DetectionRecord {
    match r {
        Ok(d) => DetectionRecord {
            frame_seq,
            found: true,
            pos_m: Some(d.pos_in_world_m.to_array()),
            yaw_rad: d.yaw_rad,
            pixels: Some(d.pixels),
            miss: None,
        },
        Err(e) => DetectionRecord {
            frame_seq,
            found: false,
            pos_m: None,
            yaw_rad: None,
            pixels: None,
            miss: Some(e.reason().to_string()),
        },
    }
}

/// One stretch without frames.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CameraStale {
    /// Flight time when it was detected.
    pub detected_at_s: f64,
    pub after_last_ms: u64,
    /// Flight time when frames came back.
    pub recovered_at_s: Option<f64>,
}

/// What the camera seam saw during a flight with a bridge.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct CameraReport {
    pub bridge: BridgeReport,
    pub vision: BridgeVisionStats,
    pub stale: Vec<CameraStale>,
    pub truth_published: u64,
}

impl CameraReport {
    /// One line for people: frames, gaps, garbage, stale stretches, detections, intrinsics.
    pub fn describe(&self) -> String {
        let b = &self.bridge;
        format!(
            "bridge {}: {} frames ({} gaps, {} missed, {} restarts of the bridge), {} garbage{}; \
             {} stale stretch(es), {} recovered; detections {} of {}; device intrinsics {}",
            b.endpoint,
            b.frames.received,
            b.frames.gaps,
            b.frames.missed,
            b.frames.restarts,
            b.garbage.total,
            b.garbage
                .last
                .as_deref()
                .map(|l| format!(" (last: {l})"))
                .unwrap_or_default(),
            self.stale.len(),
            self.stale
                .iter()
                .filter(|s| s.recovered_at_s.is_some())
                .count(),
            self.vision.detections,
            self.vision.frames,
            self.vision
                .intrinsics
                .map_or("none yet".to_string(), |k| format!(
                    "fx {:.3} fy {:.3} cx {:.3} cy {:.3}",
                    k.fx, k.fy, k.cx, k.cy
                ))
        )
    }
}

/// The control side's camera seam when the frames come from a bridge.
pub struct BridgeVisionActor {
    client: BridgeClient,
    vision: BridgeVision,
    truth_pub: Option<zmq::Socket>,
    seq: u64,
    latency_ns: u64,
    /// The smallest (arrival − device stamp) so far, ns.
    min_offset_ns: Option<i128>,
    report: CameraReport,
    last_pixels: Option<usize>,
    last_state: Option<BridgeState>,
}

impl BridgeVisionActor {
    /// Connects to the bridge at `endpoint`; with `truth`, also binds a PUB there and publishes
    /// the simulated world's truth each step (what a fake bridge renders).
    pub fn connect(
        ctx: &zmq::Context,
        scene: &Scene,
        endpoint: &str,
        truth: Option<&str>,
        policy: BindPolicy,
    ) -> Result<Self, RuntimeError> {
        Self::connect_with(ctx, scene, &BridgeConfig::new(endpoint), truth, policy)
    }

    /// [`connect`](Self::connect) with a client configuration (e.g. CURVE keys,
    /// [`BridgeConfig::curve`]).
    pub fn connect_with(
        ctx: &zmq::Context,
        scene: &Scene,
        config: &BridgeConfig,
        truth: Option<&str>,
        policy: BindPolicy,
    ) -> Result<Self, RuntimeError> {
        let vision = BridgeVision::new(scene)?;
        let latency_ns = match &scene.sensing {
            Sensing::Kinect(k) => (k.latency_s * 1e9).round() as u64,
            Sensing::Oracle(_) => 0,
        };
        let client =
            BridgeClient::connect(ctx, config).map_err(|e| RuntimeError::Setup(e.to_string()))?;
        let truth_pub = match truth {
            Some(e) => {
                let s = ctx.socket(zmq::PUB)?;
                s.set_linger(0)?;
                bind_checked(&s, "PUB", Role::Truth, e, policy)?;
                Some(s)
            }
            None => None,
        };
        Ok(Self {
            client,
            vision,
            truth_pub,
            seq: 0,
            latency_ns,
            min_offset_ns: None,
            report: CameraReport::default(),
            last_pixels: None,
            last_state: None,
        })
    }

    pub fn publish_truth(&mut self, now_ns: u64, truth: &BodyState) {
        let Some(s) = &self.truth_pub else {
            return;
        };
        self.seq += 1;
        let msg = TruthMsg::of(now_ns, truth);
        if s.send_multipart(
            bus::encode(TOPIC_TRUTH, self.seq, now_ns, &msg),
            zmq::DONTWAIT,
        )
        .is_ok()
        {
            self.report.truth_published += 1;
        }
    }

    /// Before the flight: publishes the truth at t = 0 until the bridge's first frame (or its
    /// word that it streams) arrives.
    pub fn wait_for_frames(
        &mut self,
        truth: &BodyState,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        let start = Instant::now();
        let mut said = None::<Instant>;
        loop {
            self.publish_truth(0, truth);
            let waiting = self
                .client
                .wait(Duration::from_millis(20))
                .map_err(|e| RuntimeError::Setup(e.to_string()))?;
            if waiting {
                let events = self
                    .client
                    .poll(Instant::now())
                    .map_err(|e| RuntimeError::Setup(e.to_string()))?;
                for e in events {
                    match e {
                        BridgeEvent::Frame(_) => {
                            eprintln!(
                                "depthpilot: camera: frames from the bridge at {} after {:.2} s; flying",
                                self.client.endpoint(),
                                start.elapsed().as_secs_f64()
                            );
                            return Ok(());
                        }
                        BridgeEvent::Garbage(g) => {
                            eprintln!("depthpilot: camera: garbage from the bridge: {g}");
                        }
                        // A fake bridge renders only once the flight's clock runs: its word is
                        // enough.
                        BridgeEvent::Status(s) if s.state == BridgeState::Streaming => {
                            self.say_status(&s);
                            eprintln!(
                                "depthpilot: camera: the bridge at {} is streaming (after {:.2} s); flying",
                                self.client.endpoint(),
                                start.elapsed().as_secs_f64()
                            );
                            return Ok(());
                        }
                        BridgeEvent::Status(s) => self.say_status(&s),
                        BridgeEvent::Stale { .. } | BridgeEvent::Recovered { .. } => {}
                    }
                }
            }
            if start.elapsed() > timeout {
                return Err(RuntimeError::Setup(format!(
                    "no frame from the Kinect bridge at {} within {:.0} s; start it \
                     (`python3 hil/kinect_bridge/kinect_bridge.py`, or `depthpilot fake-bridge <scene>` \
                     in simulation)",
                    self.client.endpoint(),
                    timeout.as_secs_f64()
                )));
            }
            if said.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                said = Some(Instant::now());
                eprintln!(
                    "depthpilot: waiting for the Kinect bridge at {}",
                    self.client.endpoint()
                );
            }
        }
    }

    fn say_status(&mut self, s: &depthpilot_camera::StatusMsg) {
        if self.last_state != Some(s.state) {
            self.last_state = Some(s.state);
            eprintln!(
                "depthpilot: camera: the bridge says {:?}: {}",
                s.state, s.message
            );
        }
    }

    /// The capture time of a frame that arrived at `now_ns` with the device's stamp
    /// `device_ns`, on the flight's clock (see the module doc).
    fn stamp(&mut self, now_ns: u64, device_ns: u64) -> u64 {
        let offset = i128::from(now_ns) - i128::from(device_ns);
        let min = *self
            .min_offset_ns
            .insert(self.min_offset_ns.map_or(offset, |m| m.min(offset)));
        let t = i128::from(device_ns) + min - i128::from(self.latency_ns);
        u64::try_from(t.clamp(0, i128::from(now_ns))).unwrap_or(now_ns)
    }

    /// What arrived from the bridge by `now_ns` (flight time): the measurements of its frames;
    /// staleness, garbage and the bridge's status are said on the console and reported.
    pub fn sense(&mut self, now_ns: u64) -> Vec<Timed> {
        let t = now_ns as f64 * 1e-9;
        let events = match self.client.poll(Instant::now()) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("depthpilot: camera: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for e in events {
            match e {
                BridgeEvent::Frame(f) => {
                    let frame_available = Instant::now();
                    match self.vision.detect(&f) {
                        Ok(Ok(d)) => {
                            self.last_pixels = Some(d.pixels);
                            out.push(Timed {
                                m: Measurement {
                                    stamp_ns: self.stamp(now_ns, f.frame.stamp_ns),
                                    seq: f.header.seq,
                                    pos_in_world_m: d.pos_in_world_m,
                                    yaw_rad: d.yaw_rad,
                                },
                                frame_available,
                            });
                        }
                        Ok(Err(_)) => self.last_pixels = None,
                        Err(e) => eprintln!("depthpilot: camera: the frame's intrinsics: {e}"),
                    }
                }
                BridgeEvent::Garbage(g) => {
                    let n = self.client.report().garbage.total;
                    if n <= 10 || n.is_power_of_two() {
                        eprintln!("depthpilot: camera: garbage from the bridge ({n} so far): {g}");
                    }
                }
                BridgeEvent::Stale { for_ms } => {
                    eprintln!(
                        "depthpilot: camera: STALE at {t:.3} s — no frame from the bridge for \
                         {for_ms} ms; the controller holds (after 250 ms), then lands (after 1.5 s)"
                    );
                    self.report.stale.push(CameraStale {
                        detected_at_s: t,
                        after_last_ms: for_ms,
                        recovered_at_s: None,
                    });
                }
                BridgeEvent::Recovered { after_ms } => {
                    // A bridge that was away may have restarted with another device clock.
                    self.min_offset_ns = None;
                    eprintln!(
                        "depthpilot: camera: frames again at {t:.3} s (after {after_ms} ms without)"
                    );
                    if let Some(s) = self.report.stale.last_mut() {
                        s.recovered_at_s.get_or_insert(t);
                    }
                }
                BridgeEvent::Status(s) => self.say_status(&s),
            }
        }
        out
    }
}

impl BridgeVisionActor {
    /// The report so far.
    pub fn report(&self) -> CameraReport {
        let mut r = self.report.clone();
        r.bridge = self.client.report().clone();
        r.vision = self.vision.stats.clone();
        r
    }

    /// Blob size of the newest frame's detection.
    pub fn last_frame_pixels(&self) -> Option<usize> {
        self.last_pixels
    }
}

impl Actor for BridgeVisionActor {
    type Context = Context<Self>;
}

impl Handler<SenseRealtime> for BridgeVisionActor {
    type Result = MessageResult<SenseRealtime>;
    fn handle(&mut self, m: SenseRealtime, _: &mut Context<Self>) -> Self::Result {
        self.publish_truth(m.now_ns, &m.truth);
        MessageResult(self.sense(m.now_ns))
    }
}

impl Handler<ReportVision> for BridgeVisionActor {
    type Result = MessageResult<ReportVision>;
    fn handle(&mut self, _: ReportVision, _: &mut Context<Self>) -> Self::Result {
        MessageResult(VisionReport {
            frames: self.vision.stats.frames,
            detections: self.vision.stats.detections,
            vision: None,
            last_frame_pixels: self.last_pixels,
        })
    }
}

/// The camera report at the end of a flight.
#[derive(Message)]
#[rtype(result = "CameraReport")]
pub struct TakeCameraReport;

impl Handler<TakeCameraReport> for BridgeVisionActor {
    type Result = MessageResult<TakeCameraReport>;
    fn handle(&mut self, _: TakeCameraReport, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.report())
    }
}
