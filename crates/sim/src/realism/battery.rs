//! The battery (realism item `battery`): the Crazyflie's 1S LiPo, discharging over the flight
//! and sagging under the motors' load. The plant drives the motors from its loaded terminal
//! voltage and the firmware measures the same voltage (`pmGetBatteryVoltage`), so the
//! firmware's battery compensation has something to compensate.
//!
//! Model: terminal voltage `v = OCV(charge) − I·R`, current `I = P / v` from the electrical
//! power `P = P0 + k · ΣF` of the electronics and motors, charge integrating `I`. The power is
//! the previous physics step's (one step of lag, 1 ms, closes the loop thrust → power → voltage
//! → thrust without iterating). Deterministic: nothing is drawn (`Stream::Battery` stays
//! unused).
//!
//! Off: an ideal source at `realism.battery_start_v` (4.2 V unless the scene says otherwise)
//! with no sag and no discharge; the firmware measures that voltage.

use depthpilot_types::scene::{BATTERY_FULL_V, QuadVariant, Realism};

/// Open-circuit voltage at 0 %, 10 %, … 90 % charge: the firmware's "LiPoTypicalChargeCurve"
/// (`src/hal/src/pm_stm32f4.c:110-122 @2a18fc29`), with 100 % at 4.20 V (the cell's charge end
/// voltage, the PCM's overcharge detection 4.20 ± 0.025 V, Bitcraze wiki "hardware explained").
const OCV_V: [f64; 11] = [
    3.00,
    3.78,
    3.83,
    3.87,
    3.89,
    3.92,
    3.96,
    4.00,
    4.04,
    4.10,
    BATTERY_FULL_V,
];

/// Resistance of the power path (cell, protection circuit, connector, traces).
/// UNVERIFIED: the pack's datasheet was not found. The protection circuit alone is specified
/// below 60 mΩ (Bitcraze wiki "hardware explained", the Crazyflie's PCM); we add 60 mΩ for the
/// cell, connector and traces. Cross-check: at full thrust (≈ 4.7 A, see `POWER_PER_N_W`) this
/// sags 0.56 V, inside the firmware's pass threshold for a healthy battery and connector under
/// all four motors, `BAT_LOADING_SAG_THRESHOLD 0.70f` (`src/config/config.h:231 @2a18fc29`).
pub const RESISTANCE_OHM: f64 = 0.12;
/// Electrical power with the motors stopped: 0.24 A at 4.01 V, and power per newton of total
/// thrust: a least-squares line through Bitcraze's 2015 thrust-stand table (Amps, Thrust (g),
/// Voltage; 16 rows, CF2.0 with legacy propellers), `docs/functional-areas/pwm-to-thrust.md:74-91
/// @2a18fc29` ("the power vs. thrust is linear"): P = 1.071 W + 23.96 W/N · F, largest residual
/// 0.16 W. UNVERIFIED for the 2.1+ propellers and the Brushless (no current data at the pin).
pub const POWER_IDLE_W: f64 = 1.071;
pub const POWER_PER_N_W: f64 = 23.96;
/// Capacities: the Crazyflie 2.1's 250 mAh pack (the kit's battery as the project's notes and
/// `scene/realism.rs` name it; UNVERIFIED against a datasheet here), the 2.1 Brushless' 350 mAh
/// (`platform_defaults_cf21bl.h:47 @2a18fc29`, "350mAh battery").
pub const CAPACITY_CF2_MAH: f64 = 250.0;
pub const CAPACITY_CF21BL_MAH: f64 = 350.0;

/// See the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Battery {
    /// None: the ideal source of an `Ideal` flight.
    cell: Option<Cell>,
    ideal_v: f64,
}

#[derive(Clone, Debug, PartialEq)]
struct Cell {
    capacity_c: f64,
    charge_c: f64,
    current_a: f64,
    terminal_v: f64,
}

impl Battery {
    /// The battery of a flight: a cell starting at rest at `realism.battery_start_v` when the
    /// item is on, an ideal source at that voltage when off.
    pub fn for_flight(realism: &Realism, variant: QuadVariant) -> Self {
        let capacity_mah = match variant {
            QuadVariant::Cf2x => CAPACITY_CF2_MAH,
            QuadVariant::Cf21Brushless => CAPACITY_CF21BL_MAH,
        };
        let start_v = realism.battery_start_v;
        let cell = realism.battery.then(|| {
            let capacity_c = capacity_mah * 3.6;
            Cell {
                capacity_c,
                charge_c: capacity_c * soc_at(start_v),
                current_a: 0.0,
                terminal_v: start_v,
            }
        });
        Self {
            cell,
            ideal_v: start_v,
        }
    }

    /// The voltage at the terminals now (under the last step's load).
    pub fn terminal_v(&self) -> f64 {
        self.cell.as_ref().map_or(self.ideal_v, |c| c.terminal_v)
    }

    /// The voltage it would rest at now (open circuit).
    pub fn rest_v(&self) -> f64 {
        self.cell
            .as_ref()
            .map_or(self.ideal_v, |c| ocv_at(c.charge_c / c.capacity_c))
    }

    /// Current drawn in the last step (0 for the ideal source).
    pub fn current_a(&self) -> f64 {
        self.cell.as_ref().map_or(0.0, |c| c.current_a)
    }

    /// State of charge, 0..1 (None: ideal source).
    pub fn state_of_charge(&self) -> Option<f64> {
        self.cell.as_ref().map(|c| c.charge_c / c.capacity_c)
    }

    /// Charge left, mAh (None: ideal source).
    pub fn charge_mah(&self) -> Option<f64> {
        self.cell.as_ref().map(|c| c.charge_c / 3.6)
    }

    /// One physics step of `dt_s` with the motors giving `total_thrust_n` together: the load's
    /// current, the charge it takes, and the terminal voltage the next step sees.
    pub fn step(&mut self, total_thrust_n: f64, dt_s: f64) {
        let Some(c) = self.cell.as_mut() else {
            return;
        };
        let power_w = POWER_IDLE_W + POWER_PER_N_W * total_thrust_n.max(0.0);
        let ocv = ocv_at(c.charge_c / c.capacity_c);
        // v = ocv − R·P/v ⇒ v² − ocv·v + R·P = 0, the upper root. Past the maximum power the
        // cell can give (ocv²/4R, ≈ 35 W here) it is held at ocv/2.
        let disc = (ocv * ocv - 4.0 * RESISTANCE_OHM * power_w).max(0.0);
        let v = 0.5 * (ocv + disc.sqrt());
        c.current_a = (ocv - v) / RESISTANCE_OHM;
        c.charge_c = (c.charge_c - c.current_a * dt_s).max(0.0);
        c.terminal_v = v;
    }
}

/// Open-circuit voltage at a state of charge (linear between the table's points).
pub fn ocv_at(soc: f64) -> f64 {
    let x = soc.clamp(0.0, 1.0) * 10.0;
    let i = (x.floor() as usize).min(9);
    let f = x - i as f64;
    OCV_V[i] + f * (OCV_V[i + 1] - OCV_V[i])
}

/// State of charge at an open-circuit voltage (the inverse of [`ocv_at`]).
pub fn soc_at(v: f64) -> f64 {
    if v <= OCV_V[0] {
        return 0.0;
    }
    for i in 0..10 {
        if v <= OCV_V[i + 1] {
            return (i as f64 + (v - OCV_V[i]) / (OCV_V[i + 1] - OCV_V[i])) / 10.0;
        }
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(start_v: f64) -> Battery {
        Battery::for_flight(
            &Realism {
                battery: true,
                battery_start_v: start_v,
                ..Realism::default()
            },
            QuadVariant::Cf2x,
        )
    }

    #[test]
    fn the_charge_curve_inverts() {
        for v in [3.0, 3.5, 3.8, 3.85, 3.9, 4.0, 4.15, 4.2] {
            assert!((ocv_at(soc_at(v)) - v).abs() < 1e-12, "{v}");
        }
        assert_eq!(soc_at(4.2), 1.0);
        assert_eq!(soc_at(2.0), 0.0);
    }

    #[test]
    fn off_is_an_ideal_source_that_never_changes() {
        let mut b = Battery::for_flight(&Realism::default(), QuadVariant::Cf2x);
        let before = b.clone();
        b.step(0.5, 1.0);
        assert_eq!(b, before);
        assert_eq!(b.terminal_v(), BATTERY_FULL_V);
        assert_eq!(b.current_a(), 0.0);
        assert_eq!(b.state_of_charge(), None);
    }

    #[test]
    fn the_load_sags_the_terminal_by_i_r() {
        let mut b = on(4.0);
        // The hover of a 27 g quad: 0.265 N in all.
        b.step(0.027 * 9.81, 0.001);
        let sag = b.rest_v() - b.terminal_v();
        assert!((sag - b.current_a() * RESISTANCE_OHM).abs() < 1e-4, "{sag}");
        let p = b.terminal_v() * b.current_a();
        assert!(
            (p - (POWER_IDLE_W + POWER_PER_N_W * 0.027 * 9.81)).abs() < 1e-9,
            "{p}"
        );
        assert!(
            sag > 0.15 && sag < 0.35,
            "sag {sag} V at {} A",
            b.current_a()
        );
    }

    #[test]
    fn discharge_lowers_the_rest_voltage_by_the_integrated_charge() {
        let mut b = on(4.1);
        let q0 = b.charge_mah().expect("cell");
        let mut drawn_mah = 0.0;
        for _ in 0..60_000 {
            b.step(0.265, 0.001);
            drawn_mah += b.current_a() * 0.001 / 3.6;
        }
        let q1 = b.charge_mah().expect("cell");
        assert!((q0 - q1 - drawn_mah).abs() < 1e-9, "{q0} {q1} {drawn_mah}");
        // ≈ 2 A for 60 s ≈ 33 mAh of 250.
        assert!(drawn_mah > 25.0 && drawn_mah < 40.0, "{drawn_mah}");
        assert!((b.rest_v() - ocv_at(q1 / CAPACITY_CF2_MAH)).abs() < 1e-12);
        assert!(b.rest_v() < 4.1 - 0.05, "{}", b.rest_v());
    }
}
