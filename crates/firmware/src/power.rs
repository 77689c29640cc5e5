//! Power distribution: the legacy X mixer, the battery-voltage compensation and the cap, in the
//! order the stabiliser runs them (`controlMotors`, `src/modules/src/stabilizer.c:255-261
//! @2a18fc29`): `powerDistributionLegacy` → `batteryCompensation` → `powerDistributionCap`.
//!
//! The compensation is the firmware build's (`CONFIG_ENABLE_THRUST_BAT_COMPENSATED`, `Kconfig:86-89
//! @2a18fc29`: `default y` on `PLATFORM_CF2` and `PLATFORM_CF21BL`; the CF2 propeller choice
//! defaults to `CRAZYFLIE_21_PLUS`, `Kconfig:96-99`; `configs/cf2_defconfig` and
//! `configs/cf21bl_defconfig` override neither). It turns a thrust command into the PWM ratio
//! that puts the motor voltage on the build's identified thrust curve, so the per-motor thrust is
//! `cmd / 65535 · THRUST_MAX` whatever the battery voltage, until the battery cannot give the
//! voltage.
//!
//! The 2015 demo's firmware (tag 2016.02) compensated too, but differently: inside
//! `motorsSetRatio`, on the raw (unfiltered) battery voltage, with a quadratic in grams of thrust
//! and after a per-motor clamp instead of the cap (`drivers/src/motors.c:219-230 @2016.02`,
//! `drivers/interface/motors.h:76-78`, `modules/src/stabilizer.c:577-612`). [`Compensation::Era2016`].
//!
//! Units are the firmware's: thrust commands 0..65535, volts, newtons per motor.

use depthpilot_types::scene::FirmwareGains;

/// `RATE_MAIN_LOOP` = 1 kHz (`src/modules/interface/stabilizer_types.h:371 @2a18fc29`):
/// `controlMotors`, and with it the voltage low-pass, runs every main-loop tick, also when the
/// controller (500 Hz) skips.
const MAIN_LOOP_HZ: f64 = 1000.0;
/// `float b = 0.01f` (`stabilizer.c:211 @2a18fc29`), per 1 kHz tick: time constant ≈ 99.5 ms
/// (the source's comment "0.2f = … ~20ms" is about another value).
const BAT_FILTER_B: f64 = 0.01;
/// `static float supplyVoltage = 4.2` (`stabilizer.c:212 @2a18fc29`).
const BAT_FILTER_START_V: f64 = 4.2;
/// "A suitable sanity check for disabling the voltage compensation would be under 2V"
/// (`src/drivers/src/motors.c:193 @2a18fc29`).
const MIN_SUPPLY_V: f64 = 2.0;
/// `UINT16_MAX`.
const FULL: f64 = 65535.0;
/// What `pmGetBatteryVoltage` returns before the plant has said anything: a charged cell.
const BOOT_BATTERY_V: f64 = 4.2;

/// A build's identified thrust curve F(v_motor) = c0 + c1·v + c2·v² + c3·v³ (per motor, N) with
/// `v_motor = v_battery · PWM / 65535`, and the thrust range the compensation maps the command
/// onto (`THRUST_MIN`, `THRUST_MAX`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CubicLaw {
    /// `VMOTOR2THRUST0..3`.
    pub c: [f64; 4],
    /// `THRUST_MIN`: below it the compensation gives 0 ("Make sure inversion is unique").
    pub thrust_min_n: f64,
    /// `THRUST_MAX`: the thrust of command 65535.
    pub thrust_max_n: f64,
}

impl CubicLaw {
    /// CF2.1 with the 2.1+ propellers, the default `CRAZYFLIE_21_PLUS` setup
    /// (`src/platform/interface/platform_defaults_cf2.h:68-74 @2a18fc29`).
    pub const CF21_PLUS: Self = Self {
        c: [
            -0.02476537915958403,
            0.06523793527519485,
            -0.026792504967750107,
            0.006776789303971145,
        ],
        thrust_min_n: 0.012817578393224994,
        thrust_max_n: 0.12,
    };
    /// CF2.x with the legacy propellers, `CRAZYFLIE_LEGACY_PROPELLERS`
    /// (`platform_defaults_cf2.h:84-90 @2a18fc29`).
    pub const CF2_LEGACY_PROPS: Self = Self {
        c: [
            -0.014830744918356092,
            0.04724465241828281,
            -0.01847364358025878,
            0.005960923942142,
        ],
        thrust_min_n: 0.012817578393224994,
        thrust_max_n: 0.12,
    };
    /// Crazyflie 2.1 Brushless, `THRUST_MAX` at its Kconfig default 200 mN
    /// (`platform_defaults_cf21bl.h:61-71 @2a18fc29`, `Kconfig:115-119`).
    pub const CF21_BRUSHLESS: Self = Self {
        c: [
            -0.014058926705279723,
            0.04265273261724981,
            0.0018327760144017432,
            0.0020576974784587178,
        ],
        thrust_min_n: 0.02136263065537499,
        thrust_max_n: 0.2,
    };

    /// Per-motor thrust at a motor voltage (the identified curve itself).
    pub fn thrust_n(&self, motor_v: f64) -> f64 {
        let [c0, c1, c2, c3] = self.c;
        c0 + motor_v * (c1 + motor_v * (c2 + motor_v * c3))
    }

    /// The motor voltage that gives `thrust_n`: the closed-form inverse of the cubic the
    /// firmware uses (`motors.c:209-214 @2a18fc29`, Cardano with p, q, r).
    pub fn motor_v_for(&self, thrust_n: f64) -> f64 {
        let [c0, c1, c2, c3] = self.c;
        let p = -c2 / (3.0 * c3);
        let q = p * p * p + (c2 * c1 - 3.0 * c3 * (c0 - thrust_n)) / (6.0 * c3 * c3);
        let r = c1 / (3.0 * c3);
        let s = r - p * p;
        let qrp = (q * q + s * s * s).sqrt();
        (q + qrp).cbrt() + (q - qrp).cbrt() + p
    }

    /// The thrust a command asks for (`motors.c:198`): linear, 65535 ↔ `THRUST_MAX`.
    pub fn commanded_n(&self, cmd: f64) -> f64 {
        cmd / FULL * self.thrust_max_n
    }
}

/// How a firmware build turns a thrust command into a PWM ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compensation {
    /// No `CONFIG_ENABLE_THRUST_BAT_COMPENSATED`: the command is the ratio (`motors.c:221`).
    Off,
    /// `motorsCompensateBatteryVoltage` (`motors.c:180-222 @2a18fc29`) on the low-passed voltage.
    Cubic(CubicLaw),
    /// `motorsSetRatio` of 2016.02 (`drivers/src/motors.c:219-230 @2016.02`): thrust
    /// `T = cmd / 65536 · 60` g ("Ithrust is thrust mapped for 65536 <==> 60g", the whole quad's
    /// 60 g, so 15 g per motor), motor voltage `−0.0006239·T² + 0.088·T`, ratio
    /// `min(v_motor / v_battery, 1)` on the unfiltered `pmGetBatteryVoltage()`.
    Era2016,
}

/// The mixer of a firmware era.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mixer {
    /// `powerDistributionLegacy` + `powerDistributionCap` (2a18fc29): int16 halves truncated,
    /// excess over 65535 taken off every motor, idle thrust as the floor.
    Capped,
    /// `distributePower` + `limitThrust` (`modules/src/stabilizer.c:577-612 @2016.02`): halves
    /// by arithmetic shift, each motor clamped to 0..65535 on its own.
    Clamped,
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct PowerDistribution {
    law: Compensation,
    mixer: Mixer,
    idle_thrust: u16,
    /// `pmGetBatteryVoltage()`: the latest measured battery voltage.
    measured_v: f64,
    /// `supplyVoltage` of `batteryCompensation`.
    filtered_v: f64,
    /// 1 kHz main-loop ticks per call (the model's firmware tick may be slower).
    loop_ticks: u32,
    /// `motorThrustBatCompUncapped` of the last call (`stabilizer.m1req..m4req`).
    requested: [i32; 4],
}

impl PowerDistribution {
    /// The power distribution of the firmware build that `kind` stands for, called at
    /// `rate_hz`.
    pub fn for_build(kind: FirmwareGains, rate_hz: f64, idle_thrust: u16) -> Self {
        let (law, mixer) = match kind {
            FirmwareGains::Current => (Compensation::Cubic(CubicLaw::CF21_PLUS), Mixer::Capped),
            FirmwareGains::Cf21Brushless => {
                (Compensation::Cubic(CubicLaw::CF21_BRUSHLESS), Mixer::Capped)
            }
            FirmwareGains::Era2015 => (Compensation::Era2016, Mixer::Clamped),
        };
        Self {
            law,
            mixer,
            idle_thrust,
            measured_v: BOOT_BATTERY_V,
            filtered_v: BAT_FILTER_START_V,
            loop_ticks: (MAIN_LOOP_HZ / rate_hz).round().max(1.0) as u32,
            requested: [0; 4],
        }
    }

    /// The same with another compensation (a build with other propellers, or without it).
    pub fn with_compensation(mut self, law: Compensation) -> Self {
        self.law = law;
        self
    }

    pub fn compensation(&self) -> Compensation {
        self.law
    }

    /// What `pmGetBatteryVoltage` reads from now on. A value that is not a finite voltage is
    /// ignored (the last good reading stands).
    pub fn set_battery_voltage(&mut self, volts: f64) {
        if volts.is_finite() && volts >= 0.0 {
            self.measured_v = volts;
        }
    }

    /// The measured battery voltage (`pm.vbat`).
    pub fn battery_voltage(&self) -> f64 {
        self.measured_v
    }

    /// The low-passed voltage the compensation uses (`supplyVoltage`).
    pub fn supply_voltage(&self) -> f64 {
        self.filtered_v
    }

    /// Per-motor requests after compensation, before the cap (`stabilizer.m1req..m4req`).
    pub fn requested(&self) -> [i32; 4] {
        self.requested
    }

    /// One stabiliser tick's `controlMotors`: mix, compensate, cap. `roll`, `pitch`, `yaw` are
    /// the controller's outputs (int16 in `control_t`, truncated here), `thrust` its float
    /// thrust.
    pub fn distribute(&mut self, thrust: f64, roll: f64, pitch: f64, yaw: f64) -> [u16; 4] {
        match self.mixer {
            Mixer::Capped => self.distribute_capped(thrust, roll, pitch, yaw),
            Mixer::Clamped => self.distribute_clamped(thrust, roll, pitch, yaw),
        }
    }

    fn distribute_capped(&mut self, thrust: f64, roll: f64, pitch: f64, yaw: f64) -> [u16; 4] {
        // control_t.roll/pitch/yaw are int16_t (stabilizer_types.h:197-199);
        // `int16_t r = control->roll / 2.0f` (power_distribution_quadrotor.c:86-87).
        let (roll, pitch, yaw) = (int16(roll), int16(pitch), int16(yaw));
        let r = (roll / 2.0).trunc();
        let p = (pitch / 2.0).trunc();
        // power_distribution_quadrotor.c:89-92; the float sum lands in an int32_t.
        let uncapped = [
            thrust - r + p + yaw,
            thrust - r - p - yaw,
            thrust + r - p + yaw,
            thrust + r + p - yaw,
        ]
        .map(|m| m.trunc());
        // batteryCompensation (stabilizer.c:208-219): the low-pass once per 1 kHz tick.
        for _ in 0..self.loop_ticks {
            self.filtered_v += BAT_FILTER_B * (self.measured_v - self.filtered_v);
        }
        let requested = uncapped.map(|m| self.compensate(m, self.filtered_v).trunc());
        self.requested =
            requested.map(|m| m.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32);
        // powerDistributionCap (power_distribution_quadrotor.c:160-190).
        let highest = requested.iter().fold(0.0_f64, |a, &b| a.max(b));
        let reduction = (highest - FULL).max(0.0);
        let idle = f64::from(self.idle_thrust);
        requested.map(|m| {
            let v = m - reduction;
            // capMinThrust (:76-82): below the idle thrust → the idle thrust.
            if v < idle {
                idle as u16
            } else {
                v.min(FULL) as u16
            }
        })
    }

    fn distribute_clamped(&mut self, thrust: f64, roll: f64, pitch: f64, yaw: f64) -> [u16; 4] {
        let (roll, pitch, yaw) = (int16(roll), int16(pitch), int16(yaw));
        // `int16_t r = roll >> 1` (stabilizer.c:581-582 @2016.02): an arithmetic shift floors.
        let r = (roll / 2.0).floor();
        let p = (pitch / 2.0).floor();
        let thrust = thrust.clamp(0.0, FULL).trunc();
        let clamped = [
            thrust - r + p + yaw,
            thrust - r - p - yaw,
            thrust + r - p + yaw,
            thrust + r + p - yaw,
        ]
        .map(|m| m.clamp(0.0, FULL));
        self.filtered_v = self.measured_v;
        let out = clamped.map(|m| self.compensate(m, self.measured_v).clamp(0.0, FULL));
        self.requested = out.map(|m| m as i32);
        out.map(|m| m as u16)
    }

    /// One motor's compensated request for a thrust command `cmd` at supply voltage `supply_v`.
    fn compensate(&self, cmd: f64, supply_v: f64) -> f64 {
        match self.law {
            Compensation::Off => cmd,
            Compensation::Cubic(law) => {
                if supply_v < MIN_SUPPLY_V {
                    return 0.0;
                }
                let thrust_n = law.commanded_n(cmd);
                if thrust_n < law.thrust_min_n {
                    return 0.0;
                }
                FULL * law.motor_v_for(thrust_n) / supply_v
            }
            Compensation::Era2016 => {
                let thrust_g = cmd / 65536.0 * 60.0;
                let motor_v = -0.0006239 * thrust_g * thrust_g + 0.088 * thrust_g;
                let ratio = (motor_v / supply_v).min(1.0);
                // `ratio = percentage * UINT16_MAX` into a uint16_t.
                (ratio * FULL).trunc()
            }
        }
    }
}

/// A float stored in an `int16_t` (the value is already saturated to ±32767 by the caller).
fn int16(v: f64) -> f64 {
    v.clamp(-32768.0, 32767.0).trunc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> PowerDistribution {
        PowerDistribution::for_build(FirmwareGains::Current, 500.0, 0)
    }

    #[test]
    fn the_cubic_inverse_is_an_inverse() {
        for law in [
            CubicLaw::CF21_PLUS,
            CubicLaw::CF2_LEGACY_PROPS,
            CubicLaw::CF21_BRUSHLESS,
        ] {
            for f in [law.thrust_min_n, 0.05, 0.0662, law.thrust_max_n] {
                let v = law.motor_v_for(f);
                assert!((law.thrust_n(v) - f).abs() < 1e-9, "{law:?} {f} → {v}");
            }
        }
    }

    #[test]
    fn the_compensation_puts_the_motor_voltage_on_the_curve() {
        let mut pd = current();
        pd.set_battery_voltage(4.2);
        let m = pd.distribute(36000.0, 0.0, 0.0, 0.0);
        let law = CubicLaw::CF21_PLUS;
        let motor_v = 4.2 * f64::from(m[0]) / FULL;
        let want = law.commanded_n(36000.0);
        assert!((law.thrust_n(motor_v) - want).abs() < 2e-5, "{m:?}");
        assert!(m.iter().all(|&x| x == m[0]));
    }

    #[test]
    fn the_voltage_low_pass_has_a_100_ms_time_constant_at_1_khz() {
        let mut pd = current();
        pd.set_battery_voltage(3.7);
        // 50 ticks at 500 Hz = 100 ms = 100 main-loop ticks: 1 − 0.99¹⁰⁰ = 63.4 % of the step.
        for _ in 0..50 {
            pd.distribute(30000.0, 0.0, 0.0, 0.0);
        }
        let done = (4.2 - pd.supply_voltage()) / 0.5;
        assert!((done - (1.0 - 0.99_f64.powi(100))).abs() < 1e-12, "{done}");
    }

    #[test]
    fn commands_below_thrust_min_stop_the_motor_and_idle_is_the_floor() {
        let mut pd = PowerDistribution::for_build(FirmwareGains::Cf21Brushless, 500.0, 7000);
        // 0.0214 N of 0.2 N ↔ cmd 7000: below it the compensation gives 0, the cap the idle.
        assert_eq!(pd.distribute(6000.0, 0.0, 0.0, 0.0), [7000; 4]);
        let mut pd = current();
        assert_eq!(pd.distribute(6000.0, 0.0, 0.0, 0.0), [0; 4]);
        assert!(pd.distribute(8000.0, 0.0, 0.0, 0.0)[0] > 0);
    }

    #[test]
    fn a_dead_battery_reading_stops_the_motors() {
        let mut pd = current();
        pd.set_battery_voltage(1.0);
        for _ in 0..2000 {
            pd.distribute(40000.0, 0.0, 0.0, 0.0);
        }
        assert!(pd.supply_voltage() < MIN_SUPPLY_V);
        assert_eq!(pd.distribute(40000.0, 0.0, 0.0, 0.0), [0; 4]);
    }

    #[test]
    fn the_cap_takes_the_excess_off_every_motor() {
        let mut pd = current().with_compensation(Compensation::Off);
        let m = pd.distribute(60000.0, 20000.0, 0.0, 0.0);
        assert_eq!(m[2], 65535);
        assert_eq!(i32::from(m[2]) - i32::from(m[1]), 20000);
        // A low battery asks for more than 65535 at full command: the cap brings all down.
        let mut pd = current();
        pd.set_battery_voltage(2.8);
        for _ in 0..2000 {
            pd.distribute(60000.0, 0.0, 0.0, 0.0);
        }
        assert!(pd.requested()[0] > 65535, "{:?}", pd.requested());
        assert_eq!(pd.distribute(60000.0, 0.0, 0.0, 0.0), [65535; 4]);
    }

    #[test]
    fn the_2016_law_maps_full_command_to_3_03_v_and_clamps_per_motor() {
        let mut pd = PowerDistribution::for_build(FirmwareGains::Era2015, 500.0, 0);
        pd.set_battery_voltage(4.0);
        let m = pd.distribute(65535.0, 0.0, 0.0, 0.0);
        // T = 59.999 g → 0.088·T − 0.0006239·T² = 3.0338 V of 4.0 V.
        let want = (3.0338 / 4.0 * FULL) as u16;
        assert!(
            (i32::from(m[0]) - i32::from(want)).abs() < 5,
            "{m:?} vs {want}"
        );
        // No cap in 2016: a motor over the top is clamped alone.
        let mut pd = PowerDistribution::for_build(FirmwareGains::Era2015, 500.0, 0)
            .with_compensation(Compensation::Off);
        let m = pd.distribute(60000.0, 20000.0, 0.0, 0.0);
        assert_eq!(m, [50000, 50000, 65535, 65535]);
        // Unfiltered: the next tick sees a new voltage at once.
        let mut pd = PowerDistribution::for_build(FirmwareGains::Era2015, 500.0, 0);
        pd.set_battery_voltage(3.5);
        let a = pd.distribute(30000.0, 0.0, 0.0, 0.0)[0];
        pd.set_battery_voltage(3.0);
        let b = pd.distribute(30000.0, 0.0, 0.0, 0.0)[0];
        assert!(
            (f64::from(a) * 3.5 - f64::from(b) * 3.0).abs() < 4.0 * 3.5,
            "{a} {b}"
        );
    }

    #[test]
    fn halves_truncate_now_and_floor_in_2016() {
        let mut now = current().with_compensation(Compensation::Off);
        // roll −3 → r = trunc(−1.5) = −1; 2016: −3 >> 1 = −2.
        assert_eq!(now.distribute(30000.0, -3.0, 0.0, 0.0)[0], 30001);
        let mut old = PowerDistribution::for_build(FirmwareGains::Era2015, 500.0, 0)
            .with_compensation(Compensation::Off);
        assert_eq!(old.distribute(30000.0, -3.0, 0.0, 0.0)[0], 30002);
    }
}
