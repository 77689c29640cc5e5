use crate::env::{cflib_args, packet_from_cflib, quaternion};
use crate::*;
use depthpilot_types::Rot;

fn cfg(id: &str, action: ActionMode, obs: ObsSpec) -> EnvConfig {
    let s = spec(id).expect("registered");
    EnvConfig::new(s.scene().expect("bundled scene"), s.task, action, obs).expect("config")
}

/// A deterministic, varied action sequence within the rpyt bounds near hover.
fn action(k: usize, world: usize) -> [f64; 4] {
    let x = ((k * 7919 + world * 104_729) % 1000) as f64 / 1000.0 - 0.5;
    // Odd worlds lack thrust and come down: their episodes end.
    let sag = 25_000.0 * (world % 2) as f64;
    [4.0 * x, -3.0 * x, 20.0 * x, 44_000.0 + 8_000.0 * x - sag]
}

fn single_run(cfg: &EnvConfig, seed: u64, world: usize, steps: usize) -> Vec<(f64, Vec<f32>)> {
    let mut env = Env::new(cfg.clone()).expect("env");
    env.reset(Some(seed), None).expect("reset");
    let mut out = Vec::new();
    for k in 0..steps {
        if env.ended() {
            env.reset(None, None).expect("reset");
            let mut b = ObsBuffers::new(1, cfg.lens());
            env.write_obs(b.views().remove(0));
            out.push((0.0, b.state.clone()));
            continue;
        }
        let s = env.step(&action(k, world)).expect("step");
        let mut b = ObsBuffers::new(1, cfg.lens());
        env.write_obs(b.views().remove(0));
        out.push((s.reward, b.state.clone()));
    }
    out
}

#[test]
fn a_vector_of_worlds_equals_single_envs_seeded_seed_plus_i_at_any_thread_count() {
    let cfg = cfg("DepthPilot/Hover-v0", ActionMode::Rpyt, ObsSpec::state());
    let (n, steps, seed) = (4, 150, 77);
    let singles: Vec<_> = (0..n)
        .map(|i| single_run(&cfg, seed + i as u64, i, steps))
        .collect();
    for threads in [1, 2, 3] {
        let mut v = VecEnv::new(&cfg, n, threads, Autoreset::NextStep).expect("vec");
        v.reset(Some(seed), None).expect("reset");
        let mut resets = 0;
        for k in 0..steps {
            let actions: Vec<f64> = (0..n).flat_map(|i| action(k, i)).collect();
            let s = v.step(&actions).expect("step");
            resets += s.reset.iter().filter(|r| **r).count();
            for (i, single) in singles.iter().enumerate() {
                assert_eq!(
                    s.reward[i].to_bits(),
                    single[k].0.to_bits(),
                    "world {i} step {k}"
                );
                assert_eq!(&s.obs.state[13 * i..13 * i + 13], &single[k].1[..]);
            }
        }
        // The actions crash some episodes: the autoreset path is exercised.
        assert!(resets > 0, "no episode ended in {steps} steps");
    }
}

#[test]
fn the_rpyt_action_is_cflibs_send_setpoint_packet() {
    // cflib: pk.port = COMMANDER (3), channel 0; struct.pack('<fffH', roll, -pitch, yawrate, thrust)
    let p = packet_from_cflib(&[1.5, 2.25, -30.0, 40000.4]).encode();
    // cflib's header: port << 4 | 3 << 2 | channel (the link bits set).
    let mut want = vec![0x3Cu8];
    want.extend(1.5f32.to_le_bytes());
    want.extend((-2.25f32).to_le_bytes());
    want.extend((-30.0f32).to_le_bytes());
    want.extend(40000u16.to_le_bytes());
    assert_eq!(p.to_vec(), want);
    let back = cflib_args(&packet_from_cflib(&[1.5, 2.25, -30.0, 40000.0]));
    assert_eq!(back, [1.5, 2.25, -30.0, 40000.0]);
}

#[test]
fn the_sent_packet_is_exposed_and_zero_thrust_falls_to_the_floor() {
    let cfg = cfg("DepthPilot/Hover-v0", ActionMode::Rpyt, ObsSpec::state());
    let mut env = Env::new(cfg).expect("env");
    env.reset(Some(3), None).expect("reset");
    let mut last = None;
    for _ in 0..300 {
        let s = env.step(&[0.0, 0.0, 0.0, 0.0]).expect("step");
        assert_eq!(
            env.last_packet(),
            &packet_from_cflib(&[0.0; 4]).encode()[..]
        );
        last = Some(s);
        if s.terminated {
            break;
        }
    }
    let s = last.expect("stepped");
    assert!(s.terminated, "a quad without thrust must come down");
    assert!(matches!(s.end, End::Floor | End::Crash), "{:?}", s.end);
    assert_eq!(s.reward, env::FAIL_REWARD);
    let e = env.step(&[0.0; 4]).expect_err("stepping an ended episode");
    assert!(e.to_string().contains("reset"), "{e}");
}

#[test]
fn a_zero_residual_is_the_cascade_flying_the_takeoff() {
    let cfg = cfg(
        "DepthPilot/Takeoff-v0",
        ActionMode::Residual,
        ObsSpec::state(),
    );
    let mut env = Env::new(cfg).expect("env");
    env.reset(Some(1), None).expect("reset");
    let mut s = None;
    for _ in 0..700 {
        s = Some(env.step(&[0.0; 4]).expect("step"));
    }
    let s = s.expect("stepped");
    assert!(!s.terminated, "{:?}", s.end);
    assert!(s.error_m < 0.05, "error {:.3} m after 7 s", s.error_m);
}

#[test]
fn position_actions_fly_the_onboard_controller_to_the_commanded_point() {
    let cfg = cfg(
        "DepthPilot/Hover-v0",
        ActionMode::Position,
        ObsSpec::state(),
    );
    let mut env = Env::new(cfg.clone()).expect("env");
    env.reset(Some(5), None).expect("reset");
    let mut b = ObsBuffers::new(1, cfg.lens());
    for _ in 0..500 {
        let s = env.step(&[0.3, -0.2, 1.2, 0.0]).expect("step");
        assert!(!s.terminated, "{:?}", s.end);
    }
    env.write_obs(b.views().remove(0));
    let p = &b.state[0..3];
    let d = ((p[0] - 0.3).powi(2) + (p[1] + 0.2).powi(2) + (p[2] - 1.2).powi(2)).sqrt();
    assert!(d < 0.05, "at {p:?}, {d:.3} m from the commanded point");
}

#[test]
fn bad_actions_are_refused_and_leave_the_world_unchanged() {
    let cfg = cfg("DepthPilot/Hover-v0", ActionMode::Rpyt, ObsSpec::state());
    let mut a = Env::new(cfg.clone()).expect("env");
    let mut b = Env::new(cfg).expect("env");
    a.reset(Some(9), None).expect("reset");
    b.reset(Some(9), None).expect("reset");
    for bad in [
        vec![f64::NAN, 0.0, 0.0, 40000.0],
        vec![0.0, 0.0, f64::INFINITY, 0.0],
        vec![0.0, 0.0, 0.0],
    ] {
        let e = a.step(&bad).expect_err("refused");
        assert!(matches!(e, EnvError::BadInput(_)), "{e}");
    }
    for k in 0..50 {
        let (sa, sb) = (a.step(&action(k, 0)), b.step(&action(k, 0)));
        assert_eq!(
            sa.expect("a").reward.to_bits(),
            sb.expect("b").reward.to_bits()
        );
    }
    // Out of range is clamped, not refused.
    let s = a.step(&[1e9, -1e9, 0.0, 1e12]);
    assert!(s.is_ok());
    let mut o = ObsBuffers::new(1, a.config().lens());
    a.write_obs(o.views().remove(0));
    assert_eq!(&o.last_action[..], &[30.0, -30.0, 0.0, 65535.0]);
}

#[test]
fn the_kinect_env_sees_the_quad_with_depth_frames_at_the_camera_rate() {
    let cfg = cfg(
        "DepthPilot/HoverKinect-v0",
        ActionMode::Residual,
        ObsSpec::depth(4),
    );
    assert_eq!(cfg.depth_shape(), (106, 128));
    let mut env = Env::new(cfg.clone()).expect("env");
    env.reset(Some(2), None).expect("reset");
    let (mut new_frames, mut valid) = (0, 0);
    let mut b = ObsBuffers::new(1, cfg.lens());
    let steps = 300;
    for _ in 0..steps {
        let s = env.step(&[0.0; 4]).expect("step");
        assert!(!s.terminated, "{:?} at {:.2} s", s.end, s.t_s);
        env.write_obs(b.views().remove(0));
        new_frames += usize::from(b.frame_new[0] == 1);
        valid += usize::from(b.vision[0] == 1.0);
        assert!(b.frame_age[0] >= 0.0 && b.frame_age[0] < 0.2);
    }
    // 3 s at 30 Hz: about 90 frames.
    assert!((85..=92).contains(&new_frames), "{new_frames} new frames");
    assert!(
        valid > steps * 9 / 10,
        "the vision saw the quad in {valid} of {steps} steps"
    );
    // Looking up into an empty room, the returns are the quad's, about 1 m away.
    let quad = b.depth.iter().filter(|d| (900..1100).contains(*d)).count();
    assert!(quad >= 10, "{quad} pixels of the quad in the depth image");
    let v = &b.vision;
    let p = &b.estimate[1..4];
    assert!(
        (v[3] - 1.0).abs() < 0.05 && (p[2] - 1.0).abs() < 0.05,
        "{v:?} {p:?}"
    );
}

#[test]
fn state_observations_of_a_kinect_scene_render_nothing() {
    let cfg = cfg(
        "DepthPilot/HoverKinect-v0",
        ActionMode::Residual,
        ObsSpec::state(),
    );
    assert!(matches!(
        cfg.scene.sensing,
        depthpilot_types::scene::Sensing::Oracle(_)
    ));
    assert_eq!(cfg.depth_shape(), (0, 0));
}

#[test]
fn reset_options_randomise_and_are_checked() {
    let cfg = cfg("DepthPilot/Hover-v0", ActionMode::Rpyt, ObsSpec::state());
    let mut env = Env::new(cfg).expect("env");
    let base_mass = env.scene().quad.mass_kg;
    let o = ResetOptions {
        mass_factor: Some(1.2),
        ..Default::default()
    };
    env.reset(Some(1), Some(o)).expect("reset");
    assert!((env.scene().quad.mass_kg / base_mass - 1.2).abs() < 1e-12);
    // Options persist across resets without options.
    env.reset(None, None).expect("reset");
    assert!((env.scene().quad.mass_kg / base_mass - 1.2).abs() < 1e-12);
    let r = ResetOptions {
        randomise: true,
        ..Default::default()
    };
    env.reset(Some(1), Some(r.clone())).expect("reset");
    let m1 = env.scene().quad.mass_kg;
    env.reset(None, None).expect("reset");
    assert_ne!(
        m1,
        env.scene().quad.mass_kg,
        "each episode draws its own mass"
    );
    assert!(env.scene().realism.battery);
    let bad = ResetOptions {
        mass_factor: Some(f64::NAN),
        ..Default::default()
    };
    let e = env.reset(None, Some(bad)).expect_err("NaN mass");
    assert!(e.to_string().contains("mass_factor"), "{e}");
}

#[test]
fn recovery_starts_tumbled_differently_each_episode() {
    let cfg = cfg("DepthPilot/Recovery-v0", ActionMode::Rpyt, ObsSpec::state());
    let mut env = Env::new(cfg).expect("env");
    env.reset(Some(4), None).expect("reset");
    let a = env.scene().quad.initial_attitude_deg;
    env.reset(None, None).expect("reset");
    let b = env.scene().quad.initial_attitude_deg;
    assert_ne!(a, b);
    assert!(a.x.abs() <= 150.0 && a.y.abs() <= 150.0);
    assert_eq!(env.scene().quad.initial_position_m.z, 1.5);
}

#[test]
fn quaternions_of_rotations() {
    for rpy in [
        [0.0, 0.0, 0.0],
        [0.3, -0.2, 1.0],
        [3.0, 0.1, -2.0],
        [0.0, 3.1, 0.0],
    ] {
        let r = Rot::from_rpy(rpy[0], rpy[1], rpy[2]);
        let q = quaternion(&r);
        let n: f64 = q.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-12);
        // Rotating x by q equals the matrix's first column.
        let [w, x, y, z] = q;
        let col0 = [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y + w * z),
            2.0 * (x * z - w * y),
        ];
        for (i, c) in col0.iter().enumerate() {
            assert!((c - r.m[i][0]).abs() < 1e-9, "{rpy:?}");
        }
    }
}

#[test]
fn observation_keys_parse_with_clear_errors() {
    let keys = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ObsSpec::parse(&keys(&["state"]), 1).expect("preset"),
        ObsSpec::state()
    );
    let o = ObsSpec::parse(&keys(&["target", "depth"]), 2).expect("keys");
    assert_eq!(o.keys, vec![Key::Depth, Key::Target]);
    let e = ObsSpec::parse(&keys(&["depht"]), 1).expect_err("typo");
    assert!(e.to_string().contains("depht"), "{e}");
    assert!(ObsSpec::parse(&keys(&["state", "state"]), 1).is_err());
    assert!(ObsSpec::parse(&keys(&["depth"]), 0).is_err());
    let hover = spec("DepthPilot/Hover-v0").expect("registered");
    let e = EnvConfig::new(
        hover.scene().expect("scene"),
        hover.task,
        ActionMode::Rpyt,
        ObsSpec::depth(1),
    )
    .expect_err("depth of an oracle scene");
    assert!(e.to_string().contains("Kinect"), "{e}");
    assert!(spec("DepthPilot/Nope-v0").is_err());
}
