//! The firmware's parameters as a registry: what `PARAM_GROUP_START`/`PARAM_ADD` declare in the
//! modelled C files, with their C types and defaults, each bound to the model's state so that a
//! write changes the behaviour (a param write in the firmware stores straight into the variable
//! the stabiliser reads at its next tick).
//!
//! Sources, per group:
//! - `flightmode`: `crtp_commander_rpyt.c` (`yawMode`, `yawRst`, `stabModeRoll/Pitch/Yaw`) and
//!   the 2015 `commander.c` (`althold`); `poshold` and `posSet` are not modelled and not listed;
//! - `sitAw`: `sitaw.c` (`SITAW_PARAM_ENABLED` build), see [`super::sitaw`];
//! - `autoTO`, `altHold`: the 2015 `stabilizer.c` (automatic take-off, barometric alt-hold);
//! - `supervisor.tmblChckEn`: current `supervisor.c`;
//! - `pid_attitude`, `pid_rate`: `attitude_pid_controller.c` (kp, ki, kd of each PID).
//!
//! The defaults listed are the CF2's; a firmware built for another platform
//! ([`FirmwareGains`](depthpilot_types::scene::FirmwareGains)) boots with that platform's gains,
//! which [`Firmware::param`] reports. Written floats are rounded to `f32`, as the C variable
//! holds them; the defaults are kept exact so that a flight without writes is unchanged.

use super::{Firmware, PidGains};

/// A parameter's C type (`PARAM_UINT8`, ...), as the param TOC announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    U8,
    U16,
    U32,
    I8,
    I16,
    I32,
    F32,
}

impl ParamType {
    /// Whether `value` is one this type can hold exactly (integers: whole and in range).
    pub fn holds(self, value: f64) -> bool {
        let range = |lo: f64, hi: f64| value.fract() == 0.0 && (lo..=hi).contains(&value);
        value.is_finite()
            && match self {
                ParamType::U8 => range(0.0, f64::from(u8::MAX)),
                ParamType::U16 => range(0.0, f64::from(u16::MAX)),
                ParamType::U32 => range(0.0, f64::from(u32::MAX)),
                ParamType::I8 => range(f64::from(i8::MIN), f64::from(i8::MAX)),
                ParamType::I16 => range(f64::from(i16::MIN), f64::from(i16::MAX)),
                ParamType::I32 => range(f64::from(i32::MIN), f64::from(i32::MAX)),
                ParamType::F32 => value.abs() <= f64::from(f32::MAX),
            }
    }

    /// `value` as the C variable stores it (floats rounded to `f32`).
    pub fn store(self, value: f64) -> f64 {
        match self {
            ParamType::F32 => f64::from(value as f32),
            _ => value,
        }
    }
}

/// One parameter of the firmware model.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub group: &'static str,
    pub name: &'static str,
    pub ty: ParamType,
    /// The CF2 firmware's value at boot.
    pub default: f64,
    pub read_only: bool,
    get: fn(&Firmware) -> f64,
    set: fn(&mut Firmware, f64),
}

impl ParamSpec {
    /// `group.name`.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.group, self.name)
    }

    fn is(&self, full_name: &str) -> bool {
        full_name
            .split_once('.')
            .is_some_and(|(g, n)| g == self.group && n == self.name)
    }
}

/// A parameter write the firmware refuses.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown firmware parameter `{name}`")]
    Unknown { name: String },
    #[error("firmware parameter `{name}` is read-only")]
    ReadOnly { name: String },
    #[error("firmware parameter `{name}` is a {ty:?}, which cannot hold {value}")]
    OutOfRange {
        name: String,
        ty: ParamType,
        value: f64,
    },
}

fn flag(v: f64) -> u8 {
    v as u8
}

macro_rules! pid_params {
    ($group:literal, $($name:literal => $pid:ident . $gain:ident = $default:expr),* $(,)?) => {
        [$(ParamSpec {
            group: $group,
            name: $name,
            ty: ParamType::F32,
            default: $default,
            read_only: false,
            get: |fw| fw.$pid.g.$gain,
            set: |fw, v| {
                fw.$pid.g.$gain = v;
                fw.sync_gain_set();
            },
        }),*]
    };
}

const fn spec(
    group: &'static str,
    name: &'static str,
    ty: ParamType,
    default: f64,
    get: fn(&Firmware) -> f64,
    set: fn(&mut Firmware, f64),
) -> ParamSpec {
    ParamSpec {
        group,
        name,
        ty,
        default,
        read_only: false,
        get,
        set,
    }
}

const FLIGHTMODE_AND_SITAW: [ParamSpec; 23] = {
    use ParamType::*;
    [
        // 2015 commander.c / crtp_commander_rpyt.c: `PARAM_ADD(PARAM_UINT8, althold, ...)`.
        spec(
            "flightmode",
            "althold",
            U8,
            0.0,
            |fw| f64::from(fw.modes.althold),
            |fw, v| fw.modes.althold = flag(v),
        ),
        // `DEFAULT_YAW_MODE XMODE` (commander.h): 0 carefree, 1 plus, 2 X.
        spec(
            "flightmode",
            "yawMode",
            U8,
            2.0,
            |fw| f64::from(fw.modes.yaw_mode),
            |fw, v| fw.modes.yaw_mode = flag(v),
        ),
        // `carefreeResetFront`, zero-initialised.
        spec(
            "flightmode",
            "yawRst",
            U8,
            0.0,
            |fw| f64::from(fw.modes.yaw_rst),
            |fw, v| fw.modes.yaw_rst = flag(v),
        ),
        // `stabilizationModeRoll = ANGLE` etc.: RATE 0, ANGLE 1.
        spec(
            "flightmode",
            "stabModeRoll",
            U8,
            1.0,
            |fw| f64::from(fw.modes.stab_roll),
            |fw, v| fw.modes.stab_roll = flag(v),
        ),
        spec(
            "flightmode",
            "stabModePitch",
            U8,
            1.0,
            |fw| f64::from(fw.modes.stab_pitch),
            |fw, v| fw.modes.stab_pitch = flag(v),
        ),
        spec(
            "flightmode",
            "stabModeYaw",
            U8,
            0.0,
            |fw| f64::from(fw.modes.stab_yaw),
            |fw, v| fw.modes.stab_yaw = flag(v),
        ),
        // sitaw.c/sitaw.h: `triggerInit(..., SITAW_FF_THRESHOLD 0.1, SITAW_FF_TRIGGER_COUNT 15)`.
        // Active: see sitaw.rs for why the model's default is 0.
        spec(
            "sitAw",
            "FFActive",
            U8,
            0.0,
            |fw| fw.sitaw.ff.active_param(),
            |fw, v| fw.sitaw.ff.set_active(v != 0.0),
        ),
        spec(
            "sitAw",
            "FFTriggerCount",
            U32,
            15.0,
            |fw| f64::from(fw.sitaw.ff.trigger_count),
            |fw, v| fw.sitaw.ff.trigger_count = v as u32,
        ),
        spec(
            "sitAw",
            "FFaccWZ",
            F32,
            0.1,
            |fw| fw.sitaw.ff.threshold,
            |fw, v| fw.sitaw.ff.threshold = v,
        ),
        // `SITAW_AR_THRESHOLD 0.05`, `SITAW_AR_TRIGGER_COUNT 500`.
        spec(
            "sitAw",
            "ARActive",
            U8,
            0.0,
            |fw| fw.sitaw.ar.active_param(),
            |fw, v| fw.sitaw.ar.set_active(v != 0.0),
        ),
        spec(
            "sitAw",
            "ARTriggerCount",
            U32,
            500.0,
            |fw| f64::from(fw.sitaw.ar.trigger_count),
            |fw, v| fw.sitaw.ar.trigger_count = v as u32,
        ),
        spec(
            "sitAw",
            "ARaccZ",
            F32,
            0.05,
            |fw| fw.sitaw.ar.threshold,
            |fw, v| fw.sitaw.ar.threshold = v,
        ),
        // `SITAW_TU_THRESHOLD 60` (degrees), `SITAW_TU_TRIGGER_COUNT 15`.
        spec(
            "sitAw",
            "TuActive",
            U8,
            0.0,
            |fw| fw.sitaw.tu.active_param(),
            |fw, v| fw.sitaw.tu.set_active(v != 0.0),
        ),
        spec(
            "sitAw",
            "TuTriggerCount",
            U32,
            15.0,
            |fw| f64::from(fw.sitaw.tu.trigger_count),
            |fw, v| fw.sitaw.tu.trigger_count = v as u32,
        ),
        spec(
            "sitAw",
            "TuAngle",
            F32,
            60.0,
            |fw| fw.sitaw.tu.threshold,
            |fw, v| fw.sitaw.tu.threshold = v,
        ),
        // 2015 stabilizer.c: `autoTOTargetAdjust = 1.5f`, `autoTOThresh = 0.97f`,
        // `autoTOAlpha = 0.98f`.
        spec(
            "autoTO",
            "TargetAdjust",
            F32,
            1.5,
            |fw| fw.sitaw.alt.auto_to.target_adjust_m,
            |fw, v| fw.sitaw.alt.auto_to.target_adjust_m = v,
        ),
        spec(
            "autoTO",
            "Thresh",
            F32,
            0.97,
            |fw| fw.sitaw.alt.auto_to.thresh,
            |fw, v| fw.sitaw.alt.auto_to.thresh = v,
        ),
        spec(
            "autoTO",
            "Alpha",
            F32,
            0.98,
            |fw| fw.sitaw.alt.auto_to.alpha,
            |fw, v| fw.sitaw.alt.auto_to.alpha = v,
        ),
        // 2015 stabilizer.c: `altHoldKp = 0.5`, `altHoldKi = 0.18`, `altHoldBaseThrust = 43000`,
        // `altHoldMaxThrust = 60000`.
        spec(
            "altHold",
            "kp",
            F32,
            0.5,
            |fw| fw.sitaw.alt.kp,
            |fw, v| fw.sitaw.alt.kp = v,
        ),
        spec(
            "altHold",
            "ki",
            F32,
            0.18,
            |fw| fw.sitaw.alt.ki,
            |fw, v| fw.sitaw.alt.ki = v,
        ),
        spec(
            "altHold",
            "baseThrust",
            U16,
            43000.0,
            |fw| fw.sitaw.alt.base_thrust,
            |fw, v| fw.sitaw.alt.base_thrust = v,
        ),
        spec(
            "altHold",
            "maxThrust",
            U16,
            60000.0,
            |fw| fw.sitaw.alt.max_thrust,
            |fw, v| fw.sitaw.alt.max_thrust = v,
        ),
        // supervisor.c: `tumbleCheckEnabled = SUPERVISOR_TUMBLE_CHECK_ENABLE` (true).
        spec(
            "supervisor",
            "tmblChckEn",
            U8,
            1.0,
            |fw| f64::from(u8::from(fw.tumble_check_enabled)),
            |fw, v| fw.tumble_check_enabled = v != 0.0,
        ),
    ]
};

/// `pid_attitude` (attitude_pid_controller.c, `PID_ROLL_KP`... of platform_defaults_cf2.h).
const PID_ATTITUDE: [ParamSpec; 9] = pid_params!("pid_attitude",
    "roll_kp" => roll.kp = 6.0,
    "roll_ki" => roll.ki = 3.0,
    "roll_kd" => roll.kd = 0.0,
    "pitch_kp" => pitch.kp = 6.0,
    "pitch_ki" => pitch.ki = 3.0,
    "pitch_kd" => pitch.kd = 0.0,
    "yaw_kp" => yaw.kp = 6.0,
    "yaw_ki" => yaw.ki = 1.0,
    "yaw_kd" => yaw.kd = 0.35,
);

/// `pid_rate` (`PID_ROLL_RATE_KP`... of platform_defaults_cf2.h).
const PID_RATE: [ParamSpec; 9] = pid_params!("pid_rate",
    "roll_kp" => roll_rate.kp = 250.0,
    "roll_ki" => roll_rate.ki = 500.0,
    "roll_kd" => roll_rate.kd = 2.5,
    "pitch_kp" => pitch_rate.kp = 250.0,
    "pitch_ki" => pitch_rate.ki = 500.0,
    "pitch_kd" => pitch_rate.kd = 2.5,
    "yaw_kp" => yaw_rate.kp = 120.0,
    "yaw_ki" => yaw_rate.ki = 16.7,
    "yaw_kd" => yaw_rate.kd = 0.0,
);

static PARAMS: [ParamSpec; 41] = {
    let mut all = [FLIGHTMODE_AND_SITAW[0]; 41];
    let mut i = 0;
    while i < 23 {
        all[i] = FLIGHTMODE_AND_SITAW[i];
        i += 1;
    }
    let mut j = 0;
    while j < 9 {
        all[23 + j] = PID_ATTITUDE[j];
        all[32 + j] = PID_RATE[j];
        j += 1;
    }
    all
};

/// Every parameter of the firmware model, in TOC order.
pub fn firmware_params() -> &'static [ParamSpec] {
    &PARAMS
}

/// The spec of `group.name`.
pub fn firmware_param(full_name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.is(full_name))
}

impl Firmware {
    /// Writes a parameter, as the param task stores a client's write: the next tick sees it.
    /// Returns the value as stored.
    pub fn set_param(&mut self, name: &str, value: f64) -> Result<f64, ParamError> {
        let spec = Self::writable(name, value)?;
        let stored = spec.ty.store(value);
        (spec.set)(self, stored);
        Ok(stored)
    }

    /// Checks a write without making it: the spec it would go to.
    pub fn writable(name: &str, value: f64) -> Result<&'static ParamSpec, ParamError> {
        let spec = firmware_param(name).ok_or_else(|| ParamError::Unknown {
            name: name.to_string(),
        })?;
        if spec.read_only {
            return Err(ParamError::ReadOnly {
                name: name.to_string(),
            });
        }
        if !spec.ty.holds(value) {
            return Err(ParamError::OutOfRange {
                name: name.to_string(),
                ty: spec.ty,
                value,
            });
        }
        Ok(spec)
    }

    /// A parameter's current value (None: no such parameter).
    pub fn param(&self, name: &str) -> Option<f64> {
        firmware_param(name).map(|spec| (spec.get)(self))
    }

    /// Keeps the gain set in step with the PIDs after a gain write.
    fn sync_gain_set(&mut self) {
        let g = |p: &super::Pid| -> PidGains { p.g };
        self.gains.roll = g(&self.roll);
        self.gains.pitch = g(&self.pitch);
        self.gains.yaw = g(&self.yaw);
        self.gains.roll_rate = g(&self.roll_rate);
        self.gains.pitch_rate = g(&self.pitch_rate);
        self.gains.yaw_rate = g(&self.yaw_rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use depthpilot_types::scene::{FIRMWARE_PARAMS, FirmwareGains, FirmwareParamKind};

    #[test]
    fn boot_values_are_the_listed_defaults() {
        let fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        for p in firmware_params() {
            assert_eq!(
                fw.param(&p.full_name()),
                Some(p.default),
                "{}",
                p.full_name()
            );
        }
    }

    #[test]
    fn names_are_unique_and_match_the_scene_check() {
        let names: Vec<String> = firmware_params().iter().map(|p| p.full_name()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        let writable: Vec<(String, FirmwareParamKind)> = firmware_params()
            .iter()
            .filter(|p| !p.read_only)
            .map(|p| {
                let kind = match p.ty {
                    ParamType::U8 => FirmwareParamKind::U8,
                    ParamType::U16 => FirmwareParamKind::U16,
                    ParamType::U32 => FirmwareParamKind::U32,
                    ParamType::F32 => FirmwareParamKind::F32,
                    other => panic!("{}: no scene kind for {other:?}", p.full_name()),
                };
                (p.full_name(), kind)
            })
            .collect();
        let scene: Vec<(String, FirmwareParamKind)> = FIRMWARE_PARAMS
            .iter()
            .map(|(n, k)| (n.to_string(), *k))
            .collect();
        assert_eq!(writable, scene);
    }

    #[test]
    fn writes_are_checked_stored_as_the_c_type_and_read_back() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        assert_eq!(fw.set_param("flightmode.stabModeRoll", 0.0), Ok(0.0));
        assert_eq!(fw.param("flightmode.stabModeRoll"), Some(0.0));
        assert_eq!(fw.set_param("pid_rate.roll_kp", 0.1), Ok(f64::from(0.1f32)));
        assert!(matches!(
            fw.set_param("flightmode.stabModeRoll", 256.0),
            Err(ParamError::OutOfRange { .. })
        ));
        assert!(matches!(
            fw.set_param("flightmode.stabModeRoll", 0.5),
            Err(ParamError::OutOfRange { .. })
        ));
        assert!(matches!(
            fw.set_param("flightmode.nope", 0.0),
            Err(ParamError::Unknown { .. })
        ));
        assert_eq!(fw.param("nope"), None);
    }

    #[test]
    fn a_gain_write_changes_the_pid() {
        let mut fw = Firmware::new(FirmwareGains::Current, 500.0, 0);
        fw.set_param("pid_rate.roll_kp", 100.0).expect("writable");
        assert_eq!(fw.roll_rate.g.kp, 100.0);
        assert_eq!(fw.gains.roll_rate.kp, 100.0);
        fw.set_param("pid_attitude.yaw_kd", 0.5).expect("writable");
        assert_eq!(fw.yaw.g.kd, 0.5);
    }

    #[test]
    fn the_brushless_build_reports_its_own_gains() {
        let fw = Firmware::new(FirmwareGains::Cf21Brushless, 500.0, 7000);
        assert_eq!(fw.param("pid_rate.roll_kp"), Some(200.0));
        assert_eq!(fw.param("pid_rate.pitch_ki"), Some(400.0));
    }
}
