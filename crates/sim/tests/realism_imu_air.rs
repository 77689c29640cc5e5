//! The realism items `imu`, `turbulence` and `downwash` in whole flights: the hover still holds
//! with each, the firmware flies on its own estimate, and an item that is off changes nothing.

use depthpilot_sim::Plant;
use depthpilot_sim::runner::{LogRow, fly};
use depthpilot_types::scene::{Realism, RealismPreset, Scene};
use std::path::Path;

fn hover(realism: Realism) -> Scene {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenes/hover.ron");
    let mut scene = Scene::load(&path).expect("scenes/hover.ron loads");
    scene.realism = realism;
    scene
}

fn with(f: impl FnOnce(&mut Realism)) -> Realism {
    let mut r = Realism::preset(RealismPreset::Ideal);
    f(&mut r);
    r
}

/// RMS tilt (deg) after the settle time.
fn rms_tilt_deg(rows: &[LogRow], settle_s: f64) -> f64 {
    let tilts: Vec<f64> = rows
        .iter()
        .filter(|r| r.t_s >= settle_s)
        .map(|r| r.rpy_rad[0].hypot(r.rpy_rad[1]).to_degrees())
        .collect();
    (tilts.iter().map(|t| t * t).sum::<f64>() / tilts.len() as f64).sqrt()
}

#[test]
fn hover_on_the_firmware_estimate_stays_up_and_level() {
    let scene = hover(with(|r| r.imu = true));
    let mut rows: Vec<LogRow> = Vec::new();
    let s = fly(&scene, &mut rows).expect("flies");
    let tilt = rms_tilt_deg(&rows, scene.settle_s);
    eprintln!(
        "imu on: rms {:.4} m, max {:.4} m, rms tilt {tilt:.3}°",
        s.rms_error_m, s.max_error_m
    );
    assert!(!s.crashed && !s.firmware_lockout, "{s:?}");
    assert!((s.final_position_m[2] - 1.0).abs() < 0.1, "{s:?}");
    assert!(s.rms_error_m < 0.05, "rms {}", s.rms_error_m);
    assert!(tilt < 3.0, "rms tilt {tilt}°");
}

#[test]
fn imu_on_boots_the_firmware_calibrated_on_its_own_estimate() {
    let plant = Plant::new(&hover(with(|r| r.imu = true)));
    let est = plant
        .firmware()
        .attitude_estimation()
        .expect("estimation on");
    assert!(est.calibrated());
    // On the floor, level: the estimate is within the accelerometer offset's tilt (±20 mg is
    // about ±1.1°; 5 sigma) and yaw starts near zero.
    let [r, p, y] = est.attitude_deg();
    assert!(
        r.abs() < 6.0 && p.abs() < 6.0 && y.abs() < 1.0,
        "{r} {p} {y}"
    );
    // A different seed, a different chip.
    let mut other = hover(with(|r| r.imu = true));
    other.seed += 1;
    let plant2 = Plant::new(&other);
    let est2 = plant2.firmware().attitude_estimation().expect("on");
    assert_ne!(
        est.sensors.gyro_bias_deg_s(),
        est2.sensors.gyro_bias_deg_s()
    );
    assert!(
        Plant::new(&hover(Realism::preset(RealismPreset::Ideal)))
            .firmware()
            .attitude_estimation()
            .is_none()
    );
}

#[test]
fn air_items_keep_the_hover_up() {
    for (name, realism) in [
        ("turbulence", with(|r| r.turbulence = true)),
        ("downwash", with(|r| r.downwash = true)),
    ] {
        let scene = hover(realism);
        let s = fly(&scene, &mut Vec::<LogRow>::new()).expect("flies");
        eprintln!(
            "{name}: rms {:.4} m, max {:.4} m",
            s.rms_error_m, s.max_error_m
        );
        assert!(!s.crashed, "{name}: {s:?}");
        assert!((s.final_position_m[2] - 1.0).abs() < 0.1, "{name}: {s:?}");
    }
}

#[test]
fn downwash_disturbs_the_take_off_and_an_item_off_changes_nothing() {
    let ideal = hover(Realism::preset(RealismPreset::Ideal));
    let mut a: Vec<LogRow> = Vec::new();
    let mut b: Vec<LogRow> = Vec::new();
    let sa = fly(&ideal, &mut a).expect("flies");
    // The same flight twice: bit for bit.
    let sb = fly(&ideal, &mut b).expect("flies");
    assert_eq!(sa.rms_error_m.to_bits(), sb.rms_error_m.to_bits());
    // Downwash on: the take-off through the floor's wake differs, the same seed repeats.
    let dw = hover(with(|r| r.downwash = true));
    let mut c: Vec<LogRow> = Vec::new();
    let mut d: Vec<LogRow> = Vec::new();
    let sc = fly(&dw, &mut c).expect("flies");
    let sd = fly(&dw, &mut d).expect("flies");
    assert_eq!(sc.rms_error_m.to_bits(), sd.rms_error_m.to_bits());
    assert_ne!(
        a[50].pos_m, c[50].pos_m,
        "downwash changed nothing near the floor"
    );
}
