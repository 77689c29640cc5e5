//! Costs of the synthetic Kinect and the vision stage (issue: camera and vision):
//! render one depth + IR frame (ideal, and with every Kinect item of the realism layer on),
//! detect the quad in the full frame and in the region of interest, and fly
//! `scenes/hover_kinect.ron` end to end (ideal, and with every Kinect item on).

use criterion::{Criterion, criterion_group, criterion_main};
use depthpilot_sim::kinect::KinectSensor;
use depthpilot_sim::{NoLog, fly};
use depthpilot_types::scene::{KinectConfig, Realism, WorldConfig};
use depthpilot_types::{Rot, Scene, Vec3};
use depthpilot_vision::{Detector, DetectorConfig};
use std::hint::black_box;
use std::path::Path;

fn setup() -> KinectSensor {
    KinectSensor::new(&KinectConfig::default(), &WorldConfig::default(), 0.046, 1).expect("camera")
}

/// Every Kinect item of the realism layer on (the rest off).
fn kinect_items() -> Realism {
    let mut r = Realism::default();
    for item in depthpilot_types::scene::KINECT_REALISM_ITEMS {
        r.set_item(item, true).expect("item");
    }
    r
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

    let mut k = KinectSensor::with_realism(
        &KinectConfig::default(),
        &WorldConfig::default(),
        0.046,
        1,
        &kinect_items(),
    )
    .expect("camera");
    c.bench_function(
        "render depth+IR frame, every Kinect item on (quad at 1 m)",
        |b| {
            b.iter(|| {
                k.render(0, black_box(pos), &rot);
            })
        },
    );

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
    let mut real = scene.clone();
    real.realism = kinect_items();
    group.bench_function("fly hover_kinect.ron, every Kinect item on", |b| {
        b.iter(|| black_box(fly(&real, &mut NoLog).expect("flies").rms_error_m))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
