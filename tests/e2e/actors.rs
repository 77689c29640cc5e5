//! The actor runtime in lockstep flies exactly what the inline runner flies (issue 7, line 1).

use crate::scene_path;
use depthpilot_runtime::{ClockMode, fly_actors};
use depthpilot_sim::LogRow;
use depthpilot_types::Scene;

/// Flies `name` inline and with the actors in lockstep, asserts every row and the summary are
/// bit-identical, and returns them.
pub(crate) fn compare(name: &str) -> (depthpilot_sim::Summary, Vec<LogRow>) {
    let scene = Scene::load(&scene_path(name)).expect("scene loads");
    let mut inline_rows: Vec<LogRow> = Vec::new();
    let inline = depthpilot_sim::fly(&scene, &mut inline_rows).expect("inline flight");
    let controller = depthpilot_control::from_config(&scene.controller);
    let (actors, actor_rows, rt) = fly_actors(
        &scene,
        controller,
        Vec::<LogRow>::new(),
        ClockMode::Lockstep,
    )
    .expect("actor flight");
    assert!(rt.is_none(), "lockstep has no wall-clock report");
    assert!(
        inline_rows.len() > 100,
        "{name}: {} rows",
        inline_rows.len()
    );
    assert_eq!(inline_rows.len(), actor_rows.len(), "{name}: row count");
    for (a, b) in inline_rows.iter().zip(&actor_rows) {
        // Bit for bit: compare the bits of every float, not a tolerance.
        let bits = |r: &LogRow| {
            let mut v: Vec<u64> = Vec::new();
            v.push(r.t_s.to_bits());
            for x in r
                .pos_m
                .iter()
                .chain(&r.vel_m_s)
                .chain(&r.rpy_rad)
                .chain(&r.setpoint_m)
            {
                v.push(x.to_bits());
            }
            for x in [
                r.cmd_roll_rad,
                r.cmd_pitch_rad,
                r.cmd_yaw_rate_rad_s,
                r.cmd_thrust_frac,
            ] {
                v.push(x.to_bits());
            }
            v.extend(r.estimate_m.iter().flatten().map(|x| x.to_bits()));
            v
        };
        assert_eq!(bits(a), bits(b), "{name}: rows differ at t = {} s", a.t_s);
        assert_eq!(a, b, "{name}: rows differ at t = {} s", a.t_s);
    }
    assert_eq!(inline, actors, "{name}: summaries differ");
    println!(
        "{name}: {} rows and the summary bit-identical (rms {:.6} m, {} frames, {} radio packets)",
        actor_rows.len(),
        actors.rms_error_m,
        actors.frames,
        actors.radio_packets_sent
    );
    (actors, actor_rows)
}

#[test]
fn actors_in_lockstep_fly_hover_kinect_bit_identically_to_the_inline_runner() {
    compare("hover_kinect.ron");
}

#[test]
fn actors_in_lockstep_fly_step_bit_identically_to_the_inline_runner() {
    compare("step.ron");
}

#[test]
fn actors_in_lockstep_fly_takeover_bit_identically_to_the_inline_runner() {
    compare("takeover.ron");
}

#[test]
fn actors_in_lockstep_fly_onboard_control_and_scripts_bit_identically() {
    compare("hover_kinect_onboard.ron");
    compare("autotakeoff.ron");
    compare("split_axes.ron");
    compare("rate_mode.ron");
}
