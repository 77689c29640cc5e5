//! `depthpilot bench`: the speed of the whole loop vs a bare rapier world, and where the time goes.

use crate::Failure;
use crate::fly::load_inline_scene;
use depthpilot_sim::{BareMode, BareWorld, NoLog, Probe, Stage};
use std::path::Path;
use std::time::{Duration, Instant};

/// Accumulates wall time per stage.
struct StageClock {
    last: Instant,
    per_stage: [Duration; 6],
}

impl StageClock {
    fn index(stage: Stage) -> usize {
        match stage {
            Stage::Sensing => 0,
            Stage::Control => 1,
            Stage::Firmware => 2,
            Stage::Forces => 3,
            Stage::Physics => 4,
            Stage::Metrics => 5,
        }
    }
}

impl Probe for StageClock {
    fn done(&mut self, stage: Stage) {
        let now = Instant::now();
        self.per_stage[Self::index(stage)] += now - self.last;
        self.last = now;
    }
}

const STAGE_NAMES: [&str; 6] = [
    "sensing (oracle, or Kinect render + vision)",
    "control (setpoint, controller, CRTP encode/decode, link)",
    "firmware (IMU, commander, PIDs, mixer)",
    "forces (motor lag, rotor wrench, disturbances)",
    "physics (rapier step + contact check)",
    "metrics + log",
];

pub fn bench(
    path: &Path,
    repeat: u32,
    realism: Option<&depthpilot_types::scene::Realism>,
) -> Result<(), Failure> {
    let mut scene = load_inline_scene(path)?;
    if let Some(r) = realism {
        scene.realism = r.clone();
    }
    let repeat = repeat.max(1);
    let dt_s = 1.0 / scene.rates.physics_hz;

    // 1. The whole loop (what `fly` costs, no probe) and 2. bare rapier worlds with one body and
    //    the floor, the same number of steps. Interleaved and best-of, so that noise from the
    //    rest of the machine hits all of them alike.
    let fly = |scene: &depthpilot_types::Scene| {
        depthpilot_sim::fly(scene, &mut NoLog).map_err(|e| Failure {
            code: crate::EXIT_BAD_INPUT,
            error: anyhow::Error::new(e),
        })
    };
    let steps = fly(&scene)?.physics_steps;
    let time_bare = |mode: BareMode| {
        let mut w = BareWorld::new(dt_s, mode);
        let start = Instant::now();
        for _ in 0..steps {
            w.step();
        }
        start.elapsed()
    };
    let mut best_loop = Duration::MAX;
    let mut best_still = Duration::MAX;
    let mut best_coast = Duration::MAX;
    let mut best_driven = Duration::MAX;
    for _ in 0..repeat {
        let start = Instant::now();
        fly(&scene)?;
        best_loop = best_loop.min(start.elapsed());
        best_still = best_still.min(time_bare(BareMode::Still));
        best_coast = best_coast.min(time_bare(BareMode::Coasting));
        best_driven = best_driven.min(time_bare(BareMode::Driven));
    }
    // 3. A profile: the loop again with a clock read after each stage.
    let mut clock = StageClock {
        last: Instant::now(),
        per_stage: [Duration::ZERO; 6],
    };
    let controller = depthpilot_control::from_config(&scene.controller);
    let start = Instant::now();
    clock.last = start;
    // Inline (a sink that keeps rows): on a second thread the camera's stages would overlap the
    // others and the per-stage times would show waits.
    struct Inline;
    impl depthpilot_sim::LogSink for Inline {
        fn row(&mut self, _row: &depthpilot_sim::LogRow) {}
    }
    depthpilot_sim::run(&scene, controller, &mut Inline, &mut clock).map_err(|e| Failure {
        code: crate::EXIT_BAD_INPUT,
        error: anyhow::Error::new(e),
    })?;
    let profiled = start.elapsed();

    let sim_s = steps as f64 * dt_s;
    println!(
        "depthpilot bench — scene `{}`, {steps} physics steps ({sim_s:.1} s simulated), best of {repeat}; realism {}",
        scene.name,
        crate::batch::realism_text(&scene.realism.items_on())
    );
    let row = |name: &str, d: Duration, what: &str| {
        println!(
            "  {name:<14} {:>9.0} steps/s  {:>7.2} ms  {:>5.0}× real time  {what}",
            steps as f64 / d.as_secs_f64(),
            d.as_secs_f64() * 1e3,
            sim_s / d.as_secs_f64()
        );
    };
    row(
        "whole loop",
        best_loop,
        "sensing + controller + CRTP link + firmware + physics",
    );
    let kinect = matches!(scene.sensing, depthpilot_types::scene::Sensing::Kinect(_));
    if kinect {
        println!(
            "                 (the Kinect's render and vision on a second thread, bit-identical; \
             {:.2} of the driven bare step's speed)",
            best_driven.as_secs_f64() / best_loop.as_secs_f64()
        );
    }
    row(
        "bare, driven",
        best_driven,
        "one body + floor, force set every step",
    );
    row(
        "bare, coasting",
        best_coast,
        "one body + floor, force set once",
    );
    row(
        "bare, still",
        best_still,
        "one body + floor, motionless, gravity off",
    );
    let pct = |base: Duration| 100.0 * (best_loop.as_secs_f64() / base.as_secs_f64() - 1.0);
    println!(
        "  overhead       +{:.0} % over the driven bare step, +{:.0} % over coasting, +{:.0} % over still",
        pct(best_driven),
        pct(best_coast),
        pct(best_still)
    );
    println!(
        "  profile (one instrumented flight, every stage on one core, {:.1} ms incl. clock reads):",
        profiled.as_secs_f64() * 1e3
    );
    let total: Duration = clock.per_stage.iter().sum();
    for (name, d) in STAGE_NAMES.iter().zip(clock.per_stage.iter()) {
        println!(
            "    {:<58} {:>7.2} ms  {:>5.1} %",
            name,
            d.as_secs_f64() * 1e3,
            100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-12)
        );
    }
    Ok(())
}
