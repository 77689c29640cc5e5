//! The synthetic Kinect on the second core (issue 22, item 3): its render and vision run on a
//! worker thread while the physics goes on, and the flight stays bit-identical.
//!
//! A frame's measurement cannot reach the controller before the camera's latency has passed
//! (40 ms in the bundled scenes, 40 physics steps). So the flight hands the frame's capture
//! (time and pose) to a thread that owns the whole [`KinectSensor`] and runs exactly what
//! [`KinectSensor::capture`] runs, in the same order, with the same random streams; the flight
//! keeps its own copy of the capture clock to know when frames are due. It waits for a frame's
//! result only when that frame's earliest arrival (capture + least latency) has come, and
//! then queues the measurement at the time the sensor computed, as the sensor would have
//! queued it at capture. Nothing the flight sees depends on how far the thread has got.
//!
//! What reads the sensor's state mid-flight (the detection's pixel count in log rows, the
//! statistics) sees it as of the newest frame whose result has come back, so the flight runner
//! pipelines only when nothing logs rows ([`crate::runner::LogSink::wants_rows`]), and takes the
//! sensor back ([`KinectPipeline::finish`]) before it reads the statistics for the summary.

use crate::delay::DelayLine;
use crate::kinect::{CaptureClock, KinectSensor, VisionStats};
use depthpilot_types::{Measurement, Rot, Vec3};
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the flight spins for a frame's result, and the worker for its next frame, before
/// sleeping (a frame takes ~0.2 ms; a thread's wake-up costs tens of microseconds on a VM).
const SPIN: Duration = Duration::from_millis(2);

/// What the flight asks of the sensor, in order.
enum Job {
    Capture {
        now_ns: u64,
        pos_m: Vec3,
        world_from_body: Rot,
    },
    Skip {
        now_ns: u64,
    },
    StartAt {
        now_ns: u64,
    },
    LosePipeline,
    Restart {
        relearn_background: bool,
    },
}

/// A captured frame's result, with the sensor's state after it.
struct Done {
    out: Option<(u64, Measurement)>,
    stats: VisionStats,
    last_frame_pixels: Option<usize>,
}

/// A [`KinectSensor`] running on its own thread.
pub struct KinectPipeline {
    clock: CaptureClock,
    min_latency_ns: u64,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    worker: Option<JoinHandle<Option<KinectSensor>>>,
    /// Per frame sent and not resolved: the earliest its measurement can arrive.
    pending: VecDeque<u64>,
    in_flight: DelayLine<Measurement>,
    /// The sensor's state after the newest resolved frame.
    stats: VisionStats,
    last_frame_pixels: Option<usize>,
}

impl KinectPipeline {
    /// Moves `sensor` onto a worker thread. Falls back to giving the sensor back if the thread
    /// cannot be started.
    pub fn start(sensor: KinectSensor) -> Result<Self, Box<KinectSensor>> {
        let clock = sensor.clock().clone();
        let min_latency_ns = sensor.min_latency_ns();
        let stats = sensor.stats.clone();
        let last_frame_pixels = sensor.last_frame_pixels;
        let (job_tx, job_rx) = channel::<Job>();
        let (done_tx, done_rx) = channel::<Done>();
        // The sensor goes over once the thread runs, so that a thread that cannot start leaves
        // it here; it comes back as the thread's result.
        let (sensor_tx, sensor_rx) = channel::<KinectSensor>();
        let spawned = std::thread::Builder::new()
            .name("kinect".into())
            .spawn(move || {
                let mut sensor = sensor_rx.recv().ok()?;
                run(&mut sensor, &job_rx, &done_tx);
                Some(sensor)
            });
        let worker = match spawned {
            Ok(worker) => worker,
            Err(_) => return Err(Box::new(sensor)),
        };
        if let Err(std::sync::mpsc::SendError(sensor)) = sensor_tx.send(sensor) {
            // The thread is gone already (it cannot be: it waits for the sensor).
            return Err(Box::new(sensor));
        }
        Ok(Self {
            clock,
            min_latency_ns,
            jobs: Some(job_tx),
            done: done_rx,
            worker: Some(worker),
            pending: VecDeque::new(),
            in_flight: DelayLine::default(),
            stats,
            last_frame_pixels,
        })
    }

    pub fn due(&self, now_ns: u64) -> bool {
        self.clock.due(now_ns)
    }

    /// [`KinectSensor::capture`] on the worker.
    pub fn capture(&mut self, now_ns: u64, pos_m: Vec3, world_from_body: &Rot) {
        self.clock.advance(now_ns);
        self.send(Job::Capture {
            now_ns,
            pos_m,
            world_from_body: *world_from_body,
        });
        self.pending.push_back(now_ns + self.min_latency_ns);
    }

    /// [`KinectSensor::deliver`]: waits for the frames whose measurement may be due by now.
    pub fn deliver(&mut self, now_ns: u64) -> Option<Measurement> {
        while self.pending.front().is_some_and(|&t| t <= now_ns) {
            self.resolve_one();
        }
        self.in_flight.pop_due(now_ns)
    }

    /// [`KinectSensor::skip_frame`].
    pub fn skip_frame(&mut self, now_ns: u64) {
        self.clock.advance(now_ns);
        self.send(Job::Skip { now_ns });
    }

    /// [`KinectSensor::start_at`].
    pub fn start_at(&mut self, now_ns: u64) {
        self.clock.start_at(now_ns);
        self.send(Job::StartAt { now_ns });
    }

    /// [`KinectSensor::lose_pipeline`]: what was captured and not delivered is lost.
    pub fn lose_pipeline(&mut self) {
        while !self.pending.is_empty() {
            self.resolve_one();
        }
        self.in_flight = DelayLine::default();
        self.last_frame_pixels = None;
        self.send(Job::LosePipeline);
    }

    /// [`KinectSensor::restart_vision`].
    pub fn restart_vision(&mut self, relearn_background: bool) {
        self.send(Job::Restart { relearn_background });
    }

    /// Frames rendered, as of the newest resolved frame.
    pub fn frames_rendered(&self) -> u64 {
        self.stats.frames_rendered
    }

    /// The statistics, as of the newest resolved frame.
    pub fn stats(&self) -> &VisionStats {
        &self.stats
    }

    /// Pixels of the newest resolved frame's detection.
    pub fn last_frame_pixels(&self) -> Option<usize> {
        self.last_frame_pixels
    }

    /// Waits for every frame and takes the sensor back, with what is still in flight.
    pub fn finish(mut self) -> KinectSensor {
        while !self.pending.is_empty() {
            self.resolve_one();
        }
        self.jobs = None;
        let mut sensor = self.join();
        sensor.requeue(std::mem::take(&mut self.in_flight));
        sensor
    }

    fn send(&mut self, job: Job) {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if !sent {
            self.worker_died();
        }
    }

    fn resolve_one(&mut self) {
        let Some(_) = self.pending.pop_front() else {
            return;
        };
        match self.receive() {
            Ok(d) => {
                if let Some((due_ns, m)) = d.out {
                    self.in_flight.push(due_ns, m);
                }
                self.stats = d.stats;
                self.last_frame_pixels = d.last_frame_pixels;
            }
            Err(_) => self.worker_died(),
        }
    }

    /// The next result (the flight has nothing else to do meanwhile).
    fn receive(&self) -> Result<Done, RecvError> {
        receive(&self.done)
    }

    /// The worker is gone: it panicked (a bug); carry its panic to the flight.
    fn worker_died(&mut self) -> ! {
        self.jobs = None;
        self.join();
        unreachable!("a worker that hung up without a panic is a bug: it runs until its jobs end");
    }

    fn join(&mut self) -> KinectSensor {
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Some(sensor))) => sensor,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            Some(Ok(None)) => unreachable!("the worker gets the sensor when it starts"),
            None => unreachable!("the worker is joined once"),
        }
    }
}

impl Drop for KinectPipeline {
    fn drop(&mut self) {
        // Ends the worker (its job channel closes); a panic there was already carried over or
        // the flight is unwinding anyway.
        self.jobs = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The next message: spins a while before sleeping (see [`SPIN`]).
fn receive<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(m) => return Ok(m),
                Err(TryRecvError::Disconnected) => return Err(RecvError),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if start.elapsed() > SPIN {
            return rx.recv();
        }
    }
}

/// The worker: the sensor's calls, in the flight's order.
fn run(sensor: &mut KinectSensor, jobs: &Receiver<Job>, done: &Sender<Done>) {
    while let Ok(job) = receive(jobs) {
        match job {
            Job::Capture {
                now_ns,
                pos_m,
                world_from_body,
            } => {
                let out = sensor.capture_result(now_ns, pos_m, &world_from_body);
                let reply = Done {
                    out,
                    stats: sensor.stats.clone(),
                    last_frame_pixels: sensor.last_frame_pixels,
                };
                if done.send(reply).is_err() {
                    return;
                }
            }
            Job::Skip { now_ns } => sensor.skip_frame(now_ns),
            Job::StartAt { now_ns } => sensor.start_at(now_ns),
            Job::LosePipeline => sensor.lose_pipeline(),
            Job::Restart { relearn_background } => sensor.restart_vision(relearn_background),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::runner::{LogRow, NoLog, NoProbe, run};
    use depthpilot_types::Scene;
    use depthpilot_types::scene::{PeerDeath, Realism, RealismPreset};
    use std::path::Path;

    fn scene(name: &str) -> Scene {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../scenes/{name}.ron"));
        Scene::load(&path).expect("scene")
    }

    /// The same flight with the Kinect pipelined (no log rows kept) and inline (rows kept).
    fn both(scene: &Scene) -> (crate::Summary, crate::Summary) {
        let fly = |log: &mut dyn crate::LogSink| {
            let controller = depthpilot_control::from_config(&scene.controller);
            run(scene, controller, log, &mut NoProbe).expect("flies")
        };
        let mut rows: Vec<LogRow> = Vec::new();
        (fly(&mut NoLog), fly(&mut rows))
    }

    /// Issue 22: the render and vision on a second thread change nothing of the flight: with
    /// the realism layer on, and through the faults that touch the camera's pipeline (frame-rate
    /// collapses, the vision dying with what it had in flight, its restart with a fresh
    /// detector, a relearnt background), drops and latency jitter.
    #[test]
    fn a_pipelined_kinect_flies_bit_identically_to_the_inline_one() {
        let mut faults = scene("faults");
        faults.duration_s = 17.0;
        let mut relearn = faults.clone();
        relearn.faults.peer_deaths = vec![PeerDeath {
            relearn_background: true,
            ..relearn.faults.peer_deaths[0].clone()
        }];
        let mut jittery = scene("hover_kinect");
        jittery.realism = Realism::preset(RealismPreset::Bench);
        if let depthpilot_types::scene::Sensing::Kinect(k) = &mut jittery.sensing {
            k.drop_probability = 0.1;
            k.latency_jitter_s = 0.02;
        }
        for s in [scene("figure8_kinect"), faults, relearn, jittery] {
            let (pipelined, inline) = both(&s);
            assert_eq!(pipelined, inline, "scene {}", s.name);
            let v = pipelined.vision.as_ref().expect("kinect");
            assert!(v.detections > 100, "{}: {v:?}", s.name);
        }
    }
}
