//! Scripted faults (issue 7): the camera's frame rate collapsing in bursts, latency jitter on the
//! bus from the vision to the controller, peers that die and come back; each with the
//! controller's safe behaviour. Virtual time, so every figure here is deterministic.

use crate::actors::compare;
use crate::scene_path;
use depthpilot_sim::{LogRow, Summary};
use depthpilot_types::Scene;
use depthpilot_types::scene::{BusLatency, Faults, Peer, PeerDeath, RateCollapse, Sensing};

fn fly(scene: &Scene) -> (Summary, Vec<LogRow>) {
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(scene, &mut rows).expect("flight");
    (s, rows)
}

fn states(s: &Summary) -> Vec<(f64, &'static str)> {
    s.safety_events.iter().map(|e| (e.t_s, e.state)).collect()
}

/// The first change to `state` at or after `t_s`.
fn first(s: &Summary, state: &str, t_s: f64) -> Option<f64> {
    s.safety_events
        .iter()
        .find(|e| e.state == state && e.t_s >= t_s)
        .map(|e| e.t_s)
}

fn row_at(rows: &[LogRow], t_s: f64) -> &LogRow {
    rows.iter()
        .find(|r| r.t_s >= t_s)
        .expect("a row at that time")
}

fn hover_kinect() -> Scene {
    Scene::load(&scene_path("hover_kinect.ron")).expect("scene")
}

#[test]
fn the_bundled_fault_scene_holds_lands_and_resumes_and_the_actors_fly_it_bit_identically() {
    let (s, rows) = compare("faults.ron");
    let v = s.vision.as_ref().expect("kinect");
    println!(
        "faults.ron: {} frames at a collapsed rate, {} while the vision was dead, {} restart(s); safety {:?}; rms {:.1} mm, final z {:.3} m",
        v.frames_in_collapse,
        v.frames_while_dead,
        v.restarts,
        states(&s),
        s.rms_error_m * 1e3,
        s.final_position_m[2]
    );
    assert!(!s.crashed);
    assert!(v.frames_in_collapse >= 10, "{v:?}");
    assert_eq!((v.restarts, v.relearnt), (1, 0));
    // The vision dies at 12 s: hold after 250 ms, land after 1.5 s, resume after the restart at
    // 14.5 s (three fresh measurements), never cut.
    let hold = first(&s, "holding", 12.0).expect("holds");
    let land = first(&s, "landing", 12.0).expect("lands");
    let back = first(&s, "tracking", 14.5).expect("tracks again");
    assert!((12.2..12.35).contains(&hold), "hold at {hold}");
    assert!((13.45..13.6).contains(&land), "land at {land}");
    assert!((14.5..15.0).contains(&back), "tracking again at {back}");
    assert!(first(&s, "cut", 0.0).is_none(), "{:?}", states(&s));
    // Landing had brought it down; it climbed back to the setpoint.
    assert!(row_at(&rows, back).pos_m[2] < 0.9);
    assert!(
        (s.final_position_m[2] - 1.0).abs() < 0.02,
        "{:?}",
        s.final_position_m
    );
}

#[test]
fn a_frame_rate_collapse_makes_the_controller_hold_between_frames_and_track_again() {
    let mut scene = hover_kinect();
    let Sensing::Kinect(k) = &mut scene.sensing else {
        panic!("kinect scene")
    };
    // 2 frames a second from 6 s to 8 s: a frame every 500 ms, twice the hold threshold.
    k.rate_collapses = vec![RateCollapse {
        start_s: 6.0,
        duration_s: 2.0,
        rate_hz: 2.0,
        every_s: None,
    }];
    let (s, rows) = fly(&scene);
    let (base, _) = fly(&hover_kinect());
    let v = s.vision.as_ref().expect("kinect");
    let holds = s
        .safety_events
        .iter()
        .filter(|e| e.state == "holding" && (6.0..8.5).contains(&e.t_s))
        .count();
    println!(
        "collapse to 2 Hz for 2 s: {} slow frames, {holds} holds, frames {} vs {}, rms {:.1} mm vs {:.1} mm",
        v.frames_in_collapse,
        s.frames,
        base.frames,
        s.rms_error_m * 1e3,
        base.rms_error_m * 1e3
    );
    assert!(!s.crashed);
    assert!((3..=5).contains(&v.frames_in_collapse), "{v:?}");
    assert!(
        base.frames - s.frames >= 50,
        "{} vs {}",
        s.frames,
        base.frames
    );
    assert!(holds >= 3, "{:?}", states(&s));
    assert!(first(&s, "landing", 0.0).is_none(), "{:?}", states(&s));
    assert_eq!(s.final_safety_state, "tracking");
    assert!(row_at(&rows, 9.0).safety == "tracking");
    assert!(s.max_error_m < 0.1, "max error {}", s.max_error_m);
}

#[test]
fn bus_latency_jitter_degrades_tracking_without_losing_it() {
    let mut scene = hover_kinect();
    scene.faults = Faults {
        bus_latency: vec![BusLatency {
            start_s: 0.0,
            duration_s: None,
            latency_s: 0.030,
            jitter_s: 0.040,
        }],
        peer_deaths: vec![],
    };
    let (s, _) = fly(&scene);
    let (again, _) = fly(&scene);
    let (base, _) = fly(&hover_kinect());
    println!(
        "bus +30 ms, jitter 40 ms: rms {:.2} mm vs {:.2} mm without, {} vs {} measurements",
        s.rms_error_m * 1e3,
        base.rms_error_m * 1e3,
        s.detections,
        base.detections
    );
    assert_eq!(s, again, "the jitter is seeded: same scene, same flight");
    assert!(!s.crashed);
    assert_eq!(s.final_safety_state, "tracking");
    assert!(first(&s, "holding", 1.0).is_none(), "{:?}", states(&s));
    assert!(s.rms_error_m > base.rms_error_m, "more delay, more error");
    assert!(
        s.rms_error_m < 0.01,
        "still within 10 mm: {}",
        s.rms_error_m
    );
    // Nothing lost on the bus, only late (the last few are still in transit at the end).
    assert!(base.detections - s.detections <= 3);
}

#[test]
fn a_vision_that_relearns_its_background_with_the_quad_in_view_loses_it() {
    // The vision dies while the quad hovers and comes back before the landing moved it much.
    let mut scene = hover_kinect();
    scene.duration_s = 16.0;
    let death = |relearn| PeerDeath {
        peer: Peer::Vision,
        at_s: 7.0,
        back_after_s: Some(0.5),
        relearn_background: relearn,
    };
    scene.faults.peer_deaths = vec![death(false)];
    let (loaded, _) = fly(&scene);
    scene.faults.peer_deaths = vec![death(true)];
    let (relearnt, _) = fly(&scene);
    let lv = loaded.vision.as_ref().expect("kinect");
    let rv = relearnt.vision.as_ref().expect("kinect");
    println!(
        "saved background: tracking again at {:?}, {} detections after; relearnt: {:?}, {} detections, misses {:?}",
        first(&loaded, "tracking", 7.5),
        lv.detections,
        states(&relearnt),
        rv.detections,
        rv.miss_reasons
    );
    assert!(!loaded.crashed && !relearnt.crashed);
    // Loaded: holds briefly and tracks again at once.
    let back = first(&loaded, "tracking", 7.5).expect("tracks again");
    assert!(back < 7.7, "{back}");
    assert_eq!(loaded.final_safety_state, "tracking");
    assert!(
        first(&loaded, "landing", 0.0).is_none(),
        "{:?}",
        states(&loaded)
    );
    // Relearnt: the hovering quad became background; nothing is detected where it stands, so the
    // controller holds and then lands, until the landing has moved the quad out of its own
    // silhouette (nearer the camera) and the vision finds it again.
    assert_eq!(rv.relearnt, 1);
    assert!(
        rv.detections + 30 < lv.detections,
        "{} vs {}",
        rv.detections,
        lv.detections
    );
    let land = first(&relearnt, "landing", 7.0).expect("lands");
    assert!(
        first(&relearnt, "tracking", land).is_some(),
        "{:?}",
        states(&relearnt)
    );
}

#[test]
fn the_teachers_input_dying_gives_the_axes_back_to_the_autopilot() {
    let mut scene = Scene::load(&scene_path("takeover.ron")).expect("scene");
    // The teacher holds the mux switch from 5 s to 8 s; its input device dies at 6 s for 1 s.
    scene.faults.peer_deaths = vec![PeerDeath {
        peer: Peer::Teacher,
        at_s: 6.0,
        back_after_s: Some(1.0),
        relearn_background: false,
    }];
    let (s, rows) = fly(&scene);
    let sources = |t| row_at(&rows, t).mux_sources.expect("a mux");
    println!(
        "teacher dead 6–7 s: sources at 5.5 s {:?}, 6.5 s {:?}, 7.5 s {:?}; rms {:.1} mm",
        sources(5.5),
        sources(6.5),
        sources(7.5),
        s.rms_error_m * 1e3
    );
    assert!(!s.crashed);
    assert_eq!(sources(5.5), ["teacher"; 4]);
    assert!(
        sources(6.5).iter().all(|s| *s != "teacher"),
        "{:?}",
        sources(6.5)
    );
    assert_eq!(sources(7.5), ["teacher"; 4], "the teacher is back");
    assert_eq!(s.final_safety_state, "tracking");
}

#[test]
fn bad_fault_scripts_are_named() {
    let dir = crate::temp_dir("faults-bad");
    let base = std::fs::read_to_string(scene_path("faults.ron")).expect("read");
    let cases = [
        ("every_s: 2.5", "every_s: 0.5", "rate_collapses[0].every_s"),
        (
            "peer_deaths: [(peer: Vision, at_s: 12.0, back_after_s: Some(2.5))]",
            "peer_deaths: [(peer: Vision, at_s: 12.0, back_after_s: Some(2.5)), (peer: Vision, at_s: 13.0)]",
            "faults.peer_deaths[1]",
        ),
        (
            "peer_deaths: [(peer: Vision, at_s: 12.0, back_after_s: Some(2.5))]",
            "peer_deaths: [(peer: Teacher, at_s: 12.0, relearn_background: true)]",
            "relearn_background",
        ),
        (
            "peer_deaths: [(peer: Vision, at_s: 12.0, back_after_s: Some(2.5))]",
            "peer_deaths: [(peer: Radio, at_s: 12.0)]",
            "Radio",
        ),
        ("jitter_s: 0.030", "jitter_s: -0.030", "jitter_s"),
    ];
    for (from, to, named) in cases {
        assert!(base.contains(from), "{from}");
        let path = dir.join("bad.ron");
        std::fs::write(&path, base.replace(from, to)).expect("write");
        let e = Scene::load(&path).expect_err("invalid").to_string();
        assert!(e.contains(named), "{to}: {e}");
    }
}
