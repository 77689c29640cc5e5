use super::*;
use proptest::prelude::*;

const TICK: u64 = 10_000_000;

fn frame(
    stamp_ns: u64,
    r: f64,
    p: f64,
    y: f64,
    t: f64,
    muxswitch: bool,
    estop: bool,
) -> InputFrame {
    InputFrame {
        stamp_ns,
        roll_deg: r,
        pitch_deg: p,
        yaw_rate_deg_s: y,
        thrust_pct: t,
        estop,
        muxswitch,
        alt1: false,
        alt2: false,
    }
}

#[test]
fn teacher_rp_gives_thrust_and_yaw_to_the_teacher() {
    let mut m = Mux::new(MuxConfig {
        mode: MuxMode::TeacherRp,
        ..MuxConfig::default()
    });
    let t = frame(0, 5.0, 5.0, 30.0, 50.0, false, false);
    let s = frame(0, -3.0, 2.0, -10.0, 60.0, false, false);
    let o = m.step(0, Some(&t), Some(&s));
    assert_eq!(
        o.sources,
        [
            Source::Student,
            Source::Student,
            Source::Teacher,
            Source::Teacher
        ]
    );
    assert_eq!(
        (o.roll_deg, o.pitch_deg, o.yaw_rate_deg_s, o.thrust),
        (-3.0, 2.0, 30.0, 32500)
    );
}

#[test]
fn holding_muxswitch_takes_over_and_releasing_gives_back_with_slew() {
    let mut m = Mux::new(MuxConfig::default());
    let s = |k| frame(k * TICK, 0.0, 0.0, 0.0, 60.0, false, false);
    let t = |k, held| frame(k * TICK, 10.0, 0.0, 0.0, 40.0, held, false);
    let o = m.step(0, Some(&t(0, false)), Some(&s(0)));
    assert_eq!(o.sources, [Source::Student; 4]);
    assert_eq!(o.thrust, 39000);
    let o = m.step(TICK, Some(&t(1, true)), Some(&s(1)));
    assert_eq!(o.sources, [Source::Teacher; 4]);
    assert_eq!(o.thrust, 39000 - 1500, "slew-limited, not a jump to 26000");
    assert_eq!(o.roll_deg, 1.0);
    let mut k = 2;
    while m.step(k * TICK, Some(&t(k, true)), Some(&s(k))).thrust != 26000 {
        k += 1;
        assert!(k < 100);
    }
    let o = m.step(k * TICK, Some(&t(k, false)), Some(&s(k)));
    assert_eq!(o.sources, [Source::Student; 4]);
    assert_eq!(o.thrust, 26000 + 1500);
}

#[test]
fn nothing_usable_is_safe_and_no_student_means_the_teacher_flies() {
    let mut m = Mux::new(MuxConfig::default());
    let s = frame(0, 3.0, 3.0, 3.0, 55.0, false, false);
    m.step(0, None, Some(&s));
    // Student stale after 0.5 s, no teacher: safe (level, thrust held then ramped down).
    let o = m.step(600_000_000, None, Some(&s));
    assert_eq!(o.sources, [Source::Safe; 4]);
    let mut last = o.thrust;
    for k in 0..400u64 {
        let o = m.step(600_000_000 + k * TICK, None, Some(&s));
        assert!(o.thrust <= last);
        last = o.thrust;
    }
    assert_eq!(last, 0, "ramped to zero");
    let t = frame(5_000_000_000, 0.0, 0.0, 0.0, 20.0, false, false);
    let o = m.step(5_000_000_000, Some(&t), None);
    assert_eq!(
        o.sources,
        [Source::Teacher; 4],
        "no student: the teacher's values"
    );
}

#[test]
fn lost_inputs_are_safe_and_alt_buttons_come_from_the_teacher() {
    let mut m = Mux::new(MuxConfig {
        mode: MuxMode::TeacherRp,
        ..MuxConfig::default()
    });
    let mut t = frame(0, 0.0, 0.0, 10.0, 50.0, false, false);
    t.alt1 = true;
    let s = frame(0, 2.0, 2.0, 0.0, 0.0, false, false);
    let o = m.step(0, Some(&t), Some(&s));
    assert!(o.alt1 && !o.alt2);
    // The teacher goes silent: its axes (yaw, thrust) go safe, the student keeps roll/pitch.
    let s_late = frame(600_000_000, 2.0, 2.0, 0.0, 0.0, false, false);
    let o = m.step(600_000_000, Some(&t), Some(&s_late));
    assert_eq!(
        o.sources,
        [Source::Student, Source::Student, Source::Safe, Source::Safe]
    );
    assert!(!o.alt1, "a stale teacher presses nothing");
    // The autopilot goes silent while the teacher is there: its axes go safe until the teacher
    // takes over with the mux switch.
    let t_late = frame(1_200_000_000, 0.0, 0.0, 0.0, 50.0, false, false);
    let o = m.step(1_200_000_000, Some(&t_late), Some(&s_late));
    assert_eq!(
        o.sources,
        [Source::Safe, Source::Safe, Source::Teacher, Source::Teacher]
    );
    let mut t_take = t_late;
    t_take.muxswitch = true;
    let o = m.step(1_210_000_000, Some(&t_take), Some(&s_late));
    assert_eq!(o.sources, [Source::Teacher; 4]);
}

#[test]
fn mix_adds_the_axes() {
    let mut m = Mux::new(MuxConfig {
        mode: MuxMode::Mix,
        ..MuxConfig::default()
    });
    let t = frame(0, 1.0, 2.0, 3.0, 10.0, false, false);
    let s = frame(0, 1.0, 2.0, 3.0, 40.0, false, false);
    let o = m.step(0, Some(&t), Some(&s));
    assert_eq!((o.roll_deg, o.pitch_deg, o.yaw_rate_deg_s), (2.0, 4.0, 6.0));
    assert_eq!(o.thrust, 6500 + 26000);
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -120.0f64..120.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn arb_frame() -> impl Strategy<Value = (f64, f64, f64, f64, bool, bool, bool)> {
    (
        arb_value(),
        arb_value(),
        arb_value(),
        arb_value(),
        any::<bool>(),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.9),
    )
}

fn arb_mode() -> impl Strategy<Value = MuxMode> {
    prop_oneof![
        Just(MuxMode::Normal),
        Just(MuxMode::TeacherRp),
        Just(MuxMode::TeacherRpyt),
        Just(MuxMode::Mix),
        any::<[bool; 4]>().prop_map(MuxMode::Custom),
    ]
}

proptest! {
    /// While the teacher holds muxswitch (fresh, finite, in a take-over mode), the output does not
    /// depend on the student's current values: no student value reaches a teacher-taken axis.
    #[test]
    fn takeover_ignores_the_student(
        history in prop::collection::vec((arb_frame(), arb_frame()), 0..30),
        t in (-30.0f64..30.0, -30.0f64..30.0, -100.0f64..100.0, 0.0f64..100.0),
        s1 in (-30.0f64..30.0, -30.0f64..30.0, -100.0f64..100.0, 0.0f64..100.0),
        s2 in (-30.0f64..30.0, -30.0f64..30.0, -100.0f64..100.0, 0.0f64..100.0),
        mode in prop_oneof![Just(MuxMode::TeacherRp), Just(MuxMode::TeacherRpyt), any::<[bool; 4]>().prop_map(MuxMode::Custom)],
    ) {
        let mut m = Mux::new(MuxConfig { mode, ..MuxConfig::default() });
        let mut k = 0u64;
        for ((tr, tp, ty, tt, ts, _, tpresent), (sr, sp, sy, st, _, _, spresent)) in &history {
            let tf = frame(k * TICK, *tr, *tp, *ty, *tt, *ts, false);
            let sf = frame(k * TICK, *sr, *sp, *sy, *st, false, false);
            m.step(k * TICK, tpresent.then_some(&tf), spresent.then_some(&sf));
            k += 1;
        }
        let tf = frame(k * TICK, t.0, t.1, t.2, t.3, true, false);
        let (mut a, mut b) = (m.clone(), m.clone());
        let oa = a.step(k * TICK, Some(&tf), Some(&frame(k * TICK, s1.0, s1.1, s1.2, s1.3, false, false)));
        let ob = b.step(k * TICK, Some(&tf), Some(&frame(k * TICK, s2.0, s2.1, s2.2, s2.3, false, false)));
        prop_assert_eq!(oa.sources, [Source::Teacher; 4]);
        prop_assert_eq!(oa, ob);
    }

    /// E-stop always wins and stays latched; outputs are always within limits and finite; a
    /// change of source never moves thrust by more than the slew limit in one tick.
    #[test]
    fn safety_invariants(
        steps in prop::collection::vec((arb_frame(), arb_frame(), 0u64..3), 1..80),
        mode in arb_mode(),
    ) {
        let cfg = MuxConfig { mode, ..MuxConfig::default() };
        let mut m = Mux::new(cfg);
        let mut now = 0u64;
        let mut estopped = false;
        let mut prev: Option<MuxOutput> = None;
        for ((tr, tp, ty, tt, ts, te, tpresent), (sr, sp, sy, st, _, _, spresent), gap) in &steps {
            now += TICK * (1 + gap * 30);
            let tf = frame(now, *tr, *tp, *ty, *tt, *ts, *te);
            let sf = frame(now, *sr, *sp, *sy, *st, false, false);
            let o = m.step(now, tpresent.then_some(&tf), spresent.then_some(&sf));
            estopped |= *tpresent && *te;
            if estopped {
                prop_assert!(o.estop && o.thrust == 0 && o.sources == [Source::EStop; 4]);
            }
            prop_assert!(o.roll_deg.is_finite() && o.pitch_deg.is_finite() && o.yaw_rate_deg_s.is_finite());
            prop_assert!(o.roll_deg.abs() <= cfg.max_angle_deg && o.pitch_deg.abs() <= cfg.max_angle_deg);
            prop_assert!(o.yaw_rate_deg_s.abs() <= cfg.max_yaw_rate_deg_s);
            prop_assert!(o.thrust <= cfg.max_thrust);
            if let Some(p) = prev
                && p.sources[3] != o.sources[3]
                && !o.estop
            {
                let d = (f64::from(o.thrust) - f64::from(p.thrust)).abs();
                prop_assert!(d <= cfg.thrust_slew_per_tick + 0.5, "thrust jumped {} at a switch", d);
            }
            prev = Some(o);
        }
    }
}
