//! The physical side of a simulated Crazyflie: firmware model, motors, aerodynamics, disturbances
//! and the rapier world, advanced one physics step at a time. The inline runner drives it in
//! virtual time together with the off-board side; `depthpilot sitl` drives it in real time behind
//! CRTP/UDP. Pure and deterministic: time is the step count.
//!
//! Firmware parameters: the scene's `firmware_params` are written at boot, its `param_writes` at
//! their times (at the start of the first step at or after it, before that step's firmware
//! tick), and a client holding only `&Plant` (the SITL's parameter service) can queue writes for
//! the next step, as the firmware's param task stores a value the stabiliser reads at its next
//! tick.

use crate::disturbance::DisturbanceModel;
use crate::quad::{Airframe, Motors, rotor_wrench};
use crate::realism::airflow::{Downwash, Dryden};
use crate::realism::battery::Battery;
use crate::realism::imu::Bmi088;
use crate::realism::motors::MotorSpread;
use crate::runner::{Probe, Stage};
use crate::world::{BodyState, Impact, World};
use depthpilot_firmware::{Firmware, ImuSample, ParamError, ParamSpec};
use depthpilot_types::Vec3;
use depthpilot_types::scene::{ParamWrite, Scene};
use std::sync::Mutex;

const GRAVITY_M_S2: f64 = 9.81;

/// See the module doc.
pub struct Plant {
    af: Airframe,
    /// The battery (realism `battery`; off: an ideal source).
    battery: Battery,
    world: World,
    fw: Firmware,
    motors: Motors,
    motor_cmd: [u16; 4],
    dist: DisturbanceModel,
    truth: BodyState,
    prev_vel: Vec3,
    dt_ns: u64,
    dt_s: f64,
    fw_div: u64,
    steps: u64,
    /// The scene's timed writes, in time order, and how many are done.
    param_writes: Vec<ParamWrite>,
    writes_done: usize,
    /// Writes queued through `&self` (see the module doc), applied at the next step.
    queued_params: Mutex<Vec<(&'static ParamSpec, f64)>>,
    /// Realism (`scene.realism`): the BMI088 the firmware reads, the room's turbulence, the
    /// wake's return from surfaces. None: off, nothing drawn.
    imu: Option<Bmi088>,
    turbulence: Option<Dryden>,
    downwash: Option<Downwash>,
}

/// Nanoseconds of one period at `hz`.
pub fn period_ns(hz: f64) -> u64 {
    (1e9 / hz).round() as u64
}

impl Plant {
    /// The quad of `scene` on its start spot, firmware booted with the scene's parameters,
    /// motors still. A parameter the firmware refuses is skipped (a loaded scene has been
    /// checked already; see [`Plant::try_new`]).
    pub fn new(scene: &Scene) -> Self {
        let mut plant = Self::booted(scene);
        for (name, value) in &scene.firmware_params {
            let _skipped_if_refused = plant.fw.set_param(name, *value);
        }
        plant
    }

    /// As [`Plant::new`], but a parameter the firmware refuses is an error.
    pub fn try_new(scene: &Scene) -> Result<Self, ParamError> {
        let mut plant = Self::booted(scene);
        for (name, value) in &scene.firmware_params {
            plant.fw.set_param(name, *value)?;
        }
        for w in &scene.param_writes {
            Firmware::writable(&w.name, w.value)?;
        }
        Ok(plant)
    }

    fn booted(scene: &Scene) -> Self {
        let dt_ns = period_ns(scene.rates.physics_hz);
        let dt_s = dt_ns as f64 * 1e-9;
        let af = Airframe::from_config(&scene.quad, scene.world.ground_effect)
            .with_spread(MotorSpread::for_flight(&scene.realism, scene.seed));
        let battery = Battery::for_flight(&scene.realism, scene.quad.variant);
        let att = scene.quad.initial_attitude_deg;
        let world = World::with_attitude(
            &scene.world,
            &af,
            dt_s,
            scene.quad.initial_position_m,
            [
                att.x.to_radians(),
                att.y.to_radians(),
                scene.quad.initial_yaw_deg.to_radians(),
            ],
        );
        let truth = world.state();
        let mut plant = Self {
            imu: scene
                .realism
                .imu
                .then(|| Bmi088::new(scene.seed, scene.rates.firmware_hz)),
            turbulence: scene.realism.turbulence.then(|| Dryden::new(scene.seed)),
            downwash: scene.realism.downwash.then(|| {
                Downwash::new(
                    scene.seed,
                    &scene.world,
                    scene.quad.arm_m,
                    scene.quad.prop_radius_m,
                )
            }),
            param_writes: scene.param_writes.clone(),
            writes_done: 0,
            queued_params: Mutex::new(Vec::new()),
            fw: Firmware::new(
                scene.quad.firmware_gains,
                scene.rates.firmware_hz,
                scene.quad.idle_thrust,
            ),
            dist: DisturbanceModel::new(&scene.disturbances, scene.duration_s, scene.seed),
            motors: Motors::default(),
            motor_cmd: [0; 4],
            prev_vel: truth.vel_m_s,
            truth,
            world,
            af,
            battery,
            dt_ns,
            dt_s,
            fw_div: (scene.rates.physics_hz / scene.rates.firmware_hz)
                .round()
                .max(1.0) as u64,
            steps: 0,
        };
        // A CF2.1 Brushless must be armed by its client (`CONFIG_MOTORS_REQUIRE_ARMING`): the
        // scene's client has pressed "Arm" before the flight starts. A CF2 arms itself.
        plant.fw.request_arming(true);
        if let Some(chip) = plant.imu.as_mut() {
            plant.fw.set_attitude_estimation(true);
            let acc_g = truth
                .world_from_body
                .inverse_apply(Vec3::new(0.0, 0.0, 1.0));
            crate::realism::imu::sit_still_before_flight(chip, &mut plant.fw, acc_g.to_array());
        }
        plant
    }

    /// Time of the next step's start.
    pub fn now_ns(&self) -> u64 {
        self.steps * self.dt_ns
    }

    pub fn dt_ns(&self) -> u64 {
        self.dt_ns
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The state after the last step.
    pub fn truth(&self) -> &BodyState {
        &self.truth
    }

    pub fn firmware(&self) -> &Firmware {
        &self.fw
    }

    /// The firmware, to deliver packets to it.
    pub fn firmware_mut(&mut self) -> &mut Firmware {
        &mut self.fw
    }

    /// The motor commands of the last firmware tick.
    pub fn motor_cmd(&self) -> [u16; 4] {
        self.motor_cmd
    }

    /// The battery: terminal and rest voltage, current, charge.
    pub fn battery(&self) -> &Battery {
        &self.battery
    }

    pub fn motors(&self) -> &Motors {
        &self.motors
    }

    pub fn disturbances(&self) -> &DisturbanceModel {
        &self.dist
    }

    /// Writes a firmware parameter now. Returns the value as stored.
    pub fn set_firmware_param(&mut self, name: &str, value: f64) -> Result<f64, ParamError> {
        self.fw.set_param(name, value)
    }

    /// Checks a firmware parameter write and queues it for the next step; returns the value as
    /// it will be stored. For a client that holds only `&Plant`.
    pub fn queue_firmware_param(&self, name: &str, value: f64) -> Result<f64, ParamError> {
        let spec = Firmware::writable(name, value)?;
        let stored = spec.ty.store(value);
        self.queued().push((spec, stored));
        Ok(stored)
    }

    /// A firmware parameter's value, counting writes still queued.
    pub fn firmware_param(&self, name: &str) -> Option<f64> {
        let current = self.fw.param(name)?;
        let spec = depthpilot_firmware::firmware_param(name)?;
        let queued = self
            .queued()
            .iter()
            .rev()
            .find(|(queued, _)| std::ptr::eq(*queued, spec))
            .map(|(_, v)| *v);
        Some(queued.unwrap_or(current))
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<(&'static ParamSpec, f64)>> {
        // Nothing can panic while the lock is held, so a poisoned lock still holds good data.
        self.queued_params
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies queued writes and the scene's writes that fell due by `t_ns`.
    fn apply_param_writes(&mut self, t_ns: u64) {
        let queued = std::mem::take(
            self.queued_params
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (spec, value) in queued {
            let _checked_when_queued = self.fw.set_param(&spec.full_name(), value);
        }
        while let Some(w) = self.param_writes.get(self.writes_done) {
            if (w.t_s * 1e9).round() as u64 > t_ns {
                break;
            }
            let _checked_with_the_scene = self.fw.set_param(&w.name, w.value);
            self.writes_done += 1;
        }
    }

    /// One physics step from `now_ns()`: the firmware tick when due, motors, forces, rapier.
    /// Returns the first moment of a contact, if one began.
    pub fn step<P: Probe>(&mut self, probe: &mut P) -> Option<Impact> {
        let k = self.steps;
        let t_ns = k * self.dt_ns;
        let t_s = t_ns as f64 * 1e-9;
        let dt_s = self.dt_s;
        let truth = self.truth;
        self.apply_param_writes(t_ns);
        if k.is_multiple_of(self.fw_div) {
            let acc_world =
                (truth.vel_m_s - self.prev_vel) * (1.0 / dt_s) + Vec3::new(0.0, 0.0, GRAVITY_M_S2);
            let acc_g = truth.world_from_body.inverse_apply(acc_world) * (1.0 / GRAVITY_M_S2);
            let mut imu = ImuSample::from_truth(
                truth.world_from_body.rpy(),
                truth.body_rates_rad_s.to_array(),
                acc_g.to_array(),
            )
            .with_nav(truth.pos_m.to_array(), truth.vel_m_s.to_array());
            if let Some(chip) = self.imu.as_mut() {
                (imu.gyro_deg_s, imu.acc_g) = chip.read(imu.gyro_deg_s, imu.acc_g);
            }
            // pmGetBatteryVoltage: the loaded terminal voltage of this instant.
            self.fw.set_battery_voltage(self.battery.terminal_v());
            self.motor_cmd = self.fw.step(t_ns, &imu);
        }
        self.prev_vel = truth.vel_m_s;
        probe.done(Stage::Firmware);

        self.motors.step(self.motor_cmd, dt_s, &self.af);
        self.af.supply_v = self.battery.terminal_v();
        if self.battery.state_of_charge().is_some() {
            self.battery
                .step(self.motors.thrust_n(&self.af).iter().sum(), dt_s);
        }
        let height = self.world.has_floor().then_some(truth.pos_m.z);
        let mut wind = self.dist.wind_at(t_s);
        if let Some(air) = self.turbulence.as_mut() {
            wind += air.step(truth.pos_m.z, (truth.vel_m_s - wind).norm(), dt_s);
        }
        let wrench = rotor_wrench(
            &self.af,
            &self.motors,
            &truth.world_from_body,
            truth.vel_m_s,
            wind,
            height,
        );
        let impulse = self.dist.take_impulses(t_s);
        let mut force_n = wrench.force_world_n + self.dist.force_n();
        if let Some(dw) = self.downwash.as_mut() {
            let thrust_n = self.motors.thrust_n(&self.af).iter().sum();
            force_n += dw.force_n(truth.pos_m, thrust_n, dt_s);
        }
        self.world.set_wrench(
            force_n,
            truth.world_from_body.apply(wrench.torque_body_n_m),
            impulse,
        );
        probe.done(Stage::Forces);

        let impact = self.world.step(t_s + dt_s, &truth);
        self.steps += 1;
        self.truth = self.world.state();
        probe.done(Stage::Physics);
        impact
    }
}
