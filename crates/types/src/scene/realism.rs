//! The realism layer's switches (`realism:` in a scene): which of a real Crazyflie's and a real
//! Kinect v2's imperfections a flight has. The models themselves, each parameter cited at its
//! datasheet or paper, live in `depthpilot-sim` (`realism`) and in the synthetic Kinect.
//!
//! In a scene:
//! ```ron
//! realism: Bench,                                       // every item on
//! realism: (preset: Bench, turbulence: false),          // every item but one
//! realism: (preset: Ideal, battery: true, battery_start_v: 3.9),  // one item on
//! ```
//! With no `realism` the flight is `Ideal`: the simulation as it was before the layer existed.

use serde::{Deserialize, Serialize};

/// A starting point for [`Realism`]: every item off (`Ideal`) or on (`Bench`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RealismPreset {
    /// A perfect IMU and estimator, a battery that never sags, four identical motors, still air,
    /// and a Kinect with only random noise.
    #[default]
    Ideal,
    /// Everything this simulator knows of a real bench flight: the preset scenes meant to rehearse
    /// a bench flight and every rig in `hil/` use it.
    Bench,
}

/// Fully charged LiPo cell at rest (the Crazyflie's 250 mAh 1S pack: 4.2 V charged).
pub const BATTERY_FULL_V: f64 = 4.2;
/// The lowest rest voltage a flight may start at (the firmware's low-battery warning is at
/// 3.2 V, `pm_stm32f4.c` `PM_BAT_LOW_VOLTAGE`).
pub const BATTERY_MIN_START_V: f64 = 3.3;

/// The realism items of a flight. Build it from a preset with [`Realism::preset`]; a scene's
/// overrides replace single items.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Realism {
    pub preset: RealismPreset,
    /// BMI088 gyro and accelerometer noise, bias and bias drift; the firmware flies on its own
    /// attitude estimate (the complementary filter) from them, not on the truth.
    pub imu: bool,
    /// A 1S LiPo that discharges over the flight and sags under load; the firmware's battery
    /// compensation acts on the voltage it measures.
    pub battery: bool,
    /// Motor-to-motor thrust spread and a slightly bent arm.
    pub motor_spread: bool,
    /// Dryden turbulence in the room's air.
    pub turbulence: bool,
    /// The quad's own downwash coming back from the floor and walls.
    pub downwash: bool,
    /// The Kinect v2's distance-dependent depth bias ("wiggling").
    pub kinect_wiggling: bool,
    /// Multipath near surfaces (depth pulled long near walls and the floor).
    pub kinect_multipath: bool,
    /// Mixed pixels at the quad's silhouette.
    pub kinect_mixed_pixels: bool,
    /// The spinning propellers' motion artefacts.
    pub kinect_props: bool,
    /// The depth drift of a camera still warming up.
    pub kinect_warmup: bool,
    /// Rest voltage of the battery at t = 0 (4.2 V: charged).
    pub battery_start_v: f64,
    /// How long the Kinect had been on at t = 0 (its drift settles over about half an hour).
    pub kinect_on_s: f64,
}

impl Realism {
    /// Every item as the preset has it.
    pub fn preset(preset: RealismPreset) -> Self {
        let on = preset == RealismPreset::Bench;
        Self {
            preset,
            imu: on,
            battery: on,
            motor_spread: on,
            turbulence: on,
            downwash: on,
            kinect_wiggling: on,
            kinect_multipath: on,
            kinect_mixed_pixels: on,
            kinect_props: on,
            kinect_warmup: on,
            battery_start_v: BATTERY_FULL_V,
            // A bench session: the camera was switched on five minutes before the flight.
            kinect_on_s: 300.0,
        }
    }

    /// Whether any item is on.
    pub fn any(&self) -> bool {
        self.imu
            || self.battery
            || self.motor_spread
            || self.turbulence
            || self.downwash
            || self.kinect_any()
    }

    /// Whether any Kinect item is on.
    pub fn kinect_any(&self) -> bool {
        self.kinect_wiggling
            || self.kinect_multipath
            || self.kinect_mixed_pixels
            || self.kinect_props
            || self.kinect_warmup
    }

    /// The items as (name, on) pairs, in the order the README's table lists them.
    pub fn items(&self) -> [(&'static str, bool); 10] {
        [
            ("imu", self.imu),
            ("battery", self.battery),
            ("motor_spread", self.motor_spread),
            ("turbulence", self.turbulence),
            ("downwash", self.downwash),
            ("kinect_wiggling", self.kinect_wiggling),
            ("kinect_multipath", self.kinect_multipath),
            ("kinect_mixed_pixels", self.kinect_mixed_pixels),
            ("kinect_props", self.kinect_props),
            ("kinect_warmup", self.kinect_warmup),
        ]
    }

    /// Turns one item on or off by its name (see [`Realism::items`]).
    pub fn set_item(&mut self, name: &str, on: bool) -> Result<(), String> {
        let slot = match name {
            "imu" => &mut self.imu,
            "battery" => &mut self.battery,
            "motor_spread" => &mut self.motor_spread,
            "turbulence" => &mut self.turbulence,
            "downwash" => &mut self.downwash,
            "kinect_wiggling" => &mut self.kinect_wiggling,
            "kinect_multipath" => &mut self.kinect_multipath,
            "kinect_mixed_pixels" => &mut self.kinect_mixed_pixels,
            "kinect_props" => &mut self.kinect_props,
            "kinect_warmup" => &mut self.kinect_warmup,
            other => {
                return Err(format!(
                    "unknown realism item `{other}`; the items are {}",
                    ITEM_NAMES.join(", ")
                ));
            }
        };
        *slot = on;
        Ok(())
    }
}

impl Realism {
    /// The names of the items that are on, in the order of [`Realism::items`].
    pub fn items_on(&self) -> Vec<&'static str> {
        self.items()
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name)
            .collect()
    }

    /// Parses the command line's form: a preset, then comma-separated overrides, e.g.
    /// `Bench,turbulence=off,battery_start_v=3.8` or `Ideal,imu=on`. Items take `on`/`off`
    /// (or `true`/`false`); `battery_start_v` (V) and `kinect_on_s` (s) take numbers, with the
    /// ranges a scene file has. The error names the part that is wrong.
    pub fn parse_spec(spec: &str) -> Result<Realism, String> {
        let mut parts = spec.split(',').map(str::trim);
        let preset = match parts.next().unwrap_or_default() {
            "Ideal" | "ideal" => RealismPreset::Ideal,
            "Bench" | "bench" => RealismPreset::Bench,
            other => {
                return Err(format!(
                    "`{other}`: the realism starts with a preset, `Ideal` or `Bench` \
                     (e.g. `Bench,turbulence=off,battery_start_v=3.8`)"
                ));
            }
        };
        let mut r = Self::preset(preset);
        for part in parts {
            let (name, value) = part
                .split_once('=')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or_else(|| format!("`{part}`: expected NAME=VALUE, e.g. turbulence=off"))?;
            let number = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("`{part}`: `{value}` is not a number"))
            };
            match name {
                "battery_start_v" => {
                    let v = number()?;
                    if !(BATTERY_MIN_START_V..=BATTERY_FULL_V).contains(&v) {
                        return Err(format!(
                            "`{part}`: battery_start_v must be within \
                             {BATTERY_MIN_START_V}..{BATTERY_FULL_V} V"
                        ));
                    }
                    r.battery_start_v = v;
                }
                "kinect_on_s" => {
                    let s = number()?;
                    if !(s.is_finite() && s >= 0.0) {
                        return Err(format!("`{part}`: kinect_on_s must be a time >= 0 s"));
                    }
                    r.kinect_on_s = s;
                }
                _ => {
                    let on = match value {
                        "on" | "true" => true,
                        "off" | "false" => false,
                        _ => {
                            return Err(format!(
                                "`{part}`: an item is `on` or `off`, not `{value}`"
                            ));
                        }
                    };
                    r.set_item(name, on).map_err(|e| format!("`{part}`: {e}"))?;
                }
            }
        }
        Ok(r)
    }
}

/// The Kinect's items (the last five of [`ITEM_NAMES`]).
pub const KINECT_ITEMS: [&str; 5] = [
    "kinect_wiggling",
    "kinect_multipath",
    "kinect_mixed_pixels",
    "kinect_props",
    "kinect_warmup",
];

/// The names of the on/off items.
pub const ITEM_NAMES: [&str; 10] = [
    "imu",
    "battery",
    "motor_spread",
    "turbulence",
    "downwash",
    "kinect_wiggling",
    "kinect_multipath",
    "kinect_mixed_pixels",
    "kinect_props",
    "kinect_warmup",
];

impl Default for Realism {
    fn default() -> Self {
        Self::preset(RealismPreset::Ideal)
    }
}

/// [`Realism`] as a scene writes it: a preset alone, or a preset with overrides.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "`Ideal`, `Bench`, or `(preset: Bench, <item>: false, ...)` with the items imu, \
                 battery, motor_spread, turbulence, downwash, kinect_wiggling, kinect_multipath, \
                 kinect_mixed_pixels, kinect_props, kinect_warmup, and the values \
                 battery_start_v (3.3..4.2 V) and kinect_on_s (s, >= 0)"
)]
enum RealismSpec {
    Preset(RealismPreset),
    Fields(RealismFields),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealismFields {
    #[serde(default)]
    preset: RealismPreset,
    #[serde(default)]
    imu: Option<bool>,
    #[serde(default)]
    battery: Option<bool>,
    #[serde(default)]
    motor_spread: Option<bool>,
    #[serde(default)]
    turbulence: Option<bool>,
    #[serde(default)]
    downwash: Option<bool>,
    #[serde(default)]
    kinect_wiggling: Option<bool>,
    #[serde(default)]
    kinect_multipath: Option<bool>,
    #[serde(default)]
    kinect_mixed_pixels: Option<bool>,
    #[serde(default)]
    kinect_props: Option<bool>,
    #[serde(default)]
    kinect_warmup: Option<bool>,
    #[serde(default)]
    battery_start_v: Option<f64>,
    #[serde(default)]
    kinect_on_s: Option<f64>,
}

impl<'de> Deserialize<'de> for Realism {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let f = match RealismSpec::deserialize(d)? {
            RealismSpec::Preset(p) => return Ok(Self::preset(p)),
            RealismSpec::Fields(f) => f,
        };
        let mut r = Self::preset(f.preset);
        let items = [
            (&mut r.imu, f.imu),
            (&mut r.battery, f.battery),
            (&mut r.motor_spread, f.motor_spread),
            (&mut r.turbulence, f.turbulence),
            (&mut r.downwash, f.downwash),
            (&mut r.kinect_wiggling, f.kinect_wiggling),
            (&mut r.kinect_multipath, f.kinect_multipath),
            (&mut r.kinect_mixed_pixels, f.kinect_mixed_pixels),
            (&mut r.kinect_props, f.kinect_props),
            (&mut r.kinect_warmup, f.kinect_warmup),
        ];
        for (slot, given) in items {
            if let Some(on) = given {
                *slot = on;
            }
        }
        if let Some(v) = f.battery_start_v {
            if !(BATTERY_MIN_START_V..=BATTERY_FULL_V).contains(&v) {
                return Err(D::Error::custom(format!(
                    "battery_start_v must be within {BATTERY_MIN_START_V}..{BATTERY_FULL_V} V \
                     (a 1S LiPo at rest, above the firmware's low-battery level), got {v}"
                )));
            }
            r.battery_start_v = v;
        }
        if let Some(s) = f.kinect_on_s {
            if !(s.is_finite() && s >= 0.0) {
                return Err(D::Error::custom(format!(
                    "kinect_on_s must be a time >= 0 s, got {s}"
                )));
            }
            r.kinect_on_s = s;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        realism: Realism,
    }

    fn parse(text: &str) -> Result<Realism, String> {
        ron::from_str::<Holder>(&format!("(realism: {text})"))
            .map(|h| h.realism)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_preset_alone_sets_every_item() {
        let bench = parse("Bench").expect("Bench parses");
        assert!(bench.items().iter().all(|(_, on)| *on));
        let ideal = parse("Ideal").expect("Ideal parses");
        assert!(!ideal.any());
        assert_eq!(Realism::default(), ideal);
    }

    #[test]
    fn overrides_replace_single_items() {
        let r = parse("(preset: Bench, turbulence: false, battery_start_v: 3.8)").expect("parses");
        assert!(!r.turbulence && r.imu && r.kinect_props);
        assert_eq!(r.battery_start_v, 3.8);
        let r = parse("(battery: true)").expect("parses");
        assert_eq!(r.preset, RealismPreset::Ideal);
        assert!(r.battery && !r.imu);
    }

    #[test]
    fn garbage_is_named() {
        for bad in ["Foo", "(preset: Bench, bogus: true)", "3", "(imu: 2)"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("`Ideal`, `Bench`"), "{bad}: {e}");
        }
        let e = parse("(battery_start_v: 5.0)").expect_err("5 V");
        assert!(e.contains("battery_start_v must be within"), "{e}");
        let e = parse("(kinect_on_s: -1.0)").expect_err("negative");
        assert!(e.contains("kinect_on_s"), "{e}");
    }

    #[test]
    fn cli_spec_sets_preset_and_overrides() {
        let r = Realism::parse_spec("Bench,turbulence=off,battery_start_v=3.8").expect("parses");
        assert_eq!(r.preset, RealismPreset::Bench);
        assert!(!r.turbulence && r.imu && r.kinect_warmup);
        assert_eq!(r.battery_start_v, 3.8);
        let r = Realism::parse_spec("Ideal, imu=on").expect("parses");
        assert_eq!(r.items_on(), vec!["imu"]);
        assert_eq!(Realism::parse_spec("Ideal"), Ok(Realism::default()));
        assert_eq!(
            Realism::parse_spec("Bench").map(|r| r.items_on().len()),
            Ok(ITEM_NAMES.len())
        );
    }

    #[test]
    fn cli_spec_garbage_names_the_bad_part() {
        for (bad, named) in [
            ("", "``"),
            ("Realistic", "`Realistic`"),
            ("Bench,wind=on", "`wind=on`"),
            ("Bench,imu", "`imu`"),
            ("Bench,imu=maybe", "`imu=maybe`"),
            ("Bench,battery_start_v=5", "`battery_start_v=5`"),
            ("Bench,battery_start_v=x", "`battery_start_v=x`"),
            ("Ideal,kinect_on_s=-3", "`kinect_on_s=-3`"),
            ("Ideal,,imu=on", "``"),
            ("\u{0}\u{ff}garbage", "garbage"),
        ] {
            let e = Realism::parse_spec(bad).expect_err(bad);
            assert!(e.contains(named), "{bad:?}: {e}");
        }
        let e = Realism::parse_spec("Bench,wind=on").expect_err("wind");
        assert!(e.contains("unknown realism item"), "{e}");
    }

    #[test]
    fn items_switch_by_name() {
        let mut r = Realism::default();
        for name in ITEM_NAMES {
            r.set_item(name, true).expect(name);
        }
        assert!(r.items().iter().all(|(_, on)| *on));
        assert!(r.set_item("wind", true).is_err());
    }
}
