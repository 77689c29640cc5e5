//! The teacher/student mux in flight: take-over and the 2015 split-axes workflow.

use crate::scene_path;
use depthpilot_sim::LogRow;
use depthpilot_types::Scene;

fn fly(name: &str) -> (depthpilot_sim::Summary, Vec<LogRow>) {
    let scene = Scene::load(&scene_path(name)).expect("bundled scene loads");
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(&scene, &mut rows).expect("flight runs");
    (s, rows)
}

fn sources_at(rows: &[LogRow], t: f64) -> [&'static str; 4] {
    rows.iter()
        .find(|r| r.t_s >= t)
        .and_then(|r| r.mux_sources)
        .unwrap_or_else(|| panic!("no mux sources at {t} s"))
}

#[test]
fn takeover_gives_all_axes_to_the_teacher_and_back() {
    let (s, rows) = fly("takeover.ron");
    assert!(!s.crashed, "{:?}", s.crash);
    assert_eq!(sources_at(&rows, 4.9), ["student"; 4]);
    assert_eq!(sources_at(&rows, 5.5), ["teacher"; 4]);
    assert_eq!(sources_at(&rows, 7.9), ["teacher"; 4]);
    assert_eq!(sources_at(&rows, 8.5), ["student"; 4]);
    // The teacher's yaw turn happened, and the autopilot turned back to yaw 0 afterwards.
    let yaw_at = |t: f64| {
        rows.iter()
            .find(|r| r.t_s >= t)
            .map(|r| r.rpy_rad[2].to_degrees())
    };
    assert!(yaw_at(7.9).is_some_and(|y| y.abs() > 10.0));
    assert!(yaw_at(13.9).is_some_and(|y| y.abs() < 2.0));
    // The quad stayed near its hover point throughout.
    assert!(s.max_error_m < 0.2, "max error {}", s.max_error_m);
}

#[test]
fn split_axes_lets_the_autopilot_hold_position_while_the_teacher_flies_height() {
    let (s, rows) = fly("split_axes.ron");
    assert!(!s.crashed, "{:?}", s.crash);
    for t in [1.0, 6.0, 12.0] {
        assert_eq!(
            sources_at(&rows, t),
            ["student", "student", "teacher", "teacher"]
        );
    }
    // x and y held by the autopilot within a few centimetres while the teacher climbs, turns and
    // lands.
    let worst_xy = rows
        .iter()
        .filter(|r| r.t_s > 1.0)
        .map(|r| (r.pos_m[0].powi(2) + r.pos_m[1].powi(2)).sqrt())
        .fold(0.0, f64::max);
    assert!(worst_xy < 0.05, "xy drift {worst_xy}");
    assert!(s.touchdowns >= 1 && s.final_position_m[2] < 0.03);
}

#[test]
fn teacher_estop_stops_the_motors_for_good() {
    let text = r#"Scene(
        name: "estop",
        duration_s: 8.0,
        settle_s: 1.0,
        setpoints: Hover(position_m: (0.0, 0.0, 1.0)),
        teacher: Some((
            mux: (mode: TeacherRpyt),
            script: [
                (t_s: 0.0),
                (t_s: 4.0, estop: true),
                (t_s: 4.2),
            ],
        )),
    )"#;
    let scene = depthpilot_types::scene::parse(text).expect("parses");
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(&scene, &mut rows).expect("flight runs");
    assert_eq!(sources_at(&rows, 3.9), ["student"; 4]);
    // Latched: still e-stopped after the button was released.
    assert_eq!(sources_at(&rows, 5.0), ["estop"; 4]);
    let at = |t: f64| rows.iter().find(|r| r.t_s >= t).expect("row");
    assert_eq!(at(4.5).motors_pwm, [0; 4]);
    assert!(
        s.crashed,
        "an e-stop in the air drops the quad: {:?}",
        s.final_position_m
    );
}
