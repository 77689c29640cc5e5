//! Costs of the synthetic Kinect and the vision stage (issue: camera and vision):
//! render one depth + IR frame, detect the quad in the full frame and in the region of interest,
//! and fly `scenes/hover_kinect.ron` end to end.

use criterion::{Criterion, criterion_group, criterion_main};
use depthpilot_sim::kinect::KinectSensor;
use depthpilot_sim::{NoLog, fly};
use depthpilot_types::scene::{KinectConfig, WorldConfig};
use depthpilot_types::{Rot, Scene, Vec3};
use depthpilot_vision::{Detector, DetectorConfig};
use std::hint::black_box;
use std::path::Path;

fn setup() -> KinectSensor {
    KinectSensor::new(&KinectConfig::default(), &WorldConfig::default(), 0.046, 1).expect("camera")
}

fn bench(c: &mut Criterion) {
    let pos = Vec3::new(0.02, -0.01, 1.0);
    let rot = Rot::from_rpy(0.02, -0.01, 0.3);

    let mut k = setup();
    c.bench_function("render depth+IR frame (quad at 1 m)", |b| {
        b.iter(|| {
            k.render(0, black_box(pos), &rot);
        })
    });

    let mut k = setup();
    let frame = k.render(0, pos, &rot).clone();
    let mut det = Detector::new(k.camera().clone(), DetectorConfig::default());
    det.set_background(k.static_background().to_vec());
    c.bench_function("vision: full frame", |b| {
        b.iter(|| {
            det.forget_track();
            black_box(det.detect(&frame).is_ok())
        })
    });
    det.forget_track();
    assert!(
        det.detect(&frame).is_ok(),
        "the bench frame has a detection"
    );
    c.bench_function("vision: region of interest", |b| {
        b.iter(|| black_box(det.detect(&frame).is_ok()))
    });

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/hover_kinect.ron");
    let scene = Scene::load(&root).expect("scene");
    let mut group = c.benchmark_group("end to end");
    group.sample_size(10);
    group.bench_function("fly hover_kinect.ron (12 s simulated)", |b| {
        b.iter(|| black_box(fly(&scene, &mut NoLog).expect("flies").rms_error_m))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
