//! `depthpilot bench`: the speed of the whole loop vs a bare rapier world, and where the time goes.

use crate::Failure;
use crate::fly::load_scene;
use depthpilot_sim::{BareWorld, NoLog, Probe, Stage};
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
    "sensing (oracle capture + delivery)",
    "control (setpoint, controller, CRTP encode/decode, link)",
    "firmware (IMU, commander, PIDs, mixer)",
    "forces (motor lag, rotor wrench, disturbances)",
    "physics (rapier step + contact check)",
    "metrics + log",
];

pub fn bench(path: &Path, repeat: u32) -> Result<(), Failure> {
    let scene = load_scene(path, None, None)?;
    let repeat = repeat.max(1);
    let dt_s = 1.0 / scene.rates.physics_hz;

    // 1. The whole loop, no probe (what `fly` costs).
    let mut best_loop = Duration::MAX;
    let mut steps = 0u64;
    for _ in 0..repeat {
        let start = Instant::now();
        let s = depthpilot_sim::fly(&scene, &mut NoLog);
        best_loop = best_loop.min(start.elapsed());
        steps = s.physics_steps;
    }
    // 2. A bare rapier world with one body and the floor, the same number of steps.
    let mut best_bare = Duration::MAX;
    for _ in 0..repeat {
        let mut w = BareWorld::new(dt_s);
        let start = Instant::now();
        for _ in 0..steps {
            w.step();
        }
        best_bare = best_bare.min(start.elapsed());
    }
    // 3. A profile: the loop again with a clock read after each stage.
    let mut clock = StageClock {
        last: Instant::now(),
        per_stage: [Duration::ZERO; 6],
    };
    let mut controller = depthpilot_control::from_config(&scene.controller);
    let start = Instant::now();
    clock.last = start;
    depthpilot_sim::run(&scene, controller.as_mut(), &mut NoLog, &mut clock);
    let profiled = start.elapsed();

    let loop_rate = steps as f64 / best_loop.as_secs_f64();
    let bare_rate = steps as f64 / best_bare.as_secs_f64();
    let sim_s = steps as f64 * dt_s;
    println!(
        "depthpilot bench — scene `{}`, {steps} physics steps ({sim_s:.1} s simulated), best of {repeat}",
        scene.name
    );
    println!(
        "  whole loop     {:>10.0} steps/s   {:>7.1} ms   {:>6.0}× real time",
        loop_rate,
        best_loop.as_secs_f64() * 1e3,
        sim_s / best_loop.as_secs_f64()
    );
    println!(
        "  bare rapier    {:>10.0} steps/s   {:>7.1} ms   {:>6.0}× real time",
        bare_rate,
        best_bare.as_secs_f64() * 1e3,
        sim_s / best_bare.as_secs_f64()
    );
    println!(
        "  ratio          whole loop costs {:.2}× the bare rapier step (+{:.0} %)",
        bare_rate / loop_rate,
        100.0 * (bare_rate / loop_rate - 1.0)
    );
    println!(
        "  profile (one instrumented flight, {:.1} ms incl. clock reads):",
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
