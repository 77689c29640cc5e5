//! The mux proper. Output in the wire's units (degrees, deg/s, raw thrust), ready for
//! `RpytSetpoint` after the pitch/yaw conventions of the CRTP boundary.

use crate::frame::{InputFrame, percent_to_raw};
pub use depthpilot_types::scene::{MuxConfig, MuxMode};
use serde::{Deserialize, Serialize};

/// The four flight axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Axis {
    Roll,
    Pitch,
    Yaw,
    Thrust,
}

pub const AXES: [Axis; 4] = [Axis::Roll, Axis::Pitch, Axis::Yaw, Axis::Thrust];

/// Who flies an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    Teacher,
    Student,
    /// Both added (the 2015 MixMux; unsafe: a person and the autopilot fight).
    Mix,
    /// Neither is usable: the safe value (level, no yaw, thrust held then zero).
    Safe,
    /// The teacher pressed e-stop (latched): motors off.
    EStop,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teacher => "teacher",
            Self::Student => "student",
            Self::Mix => "mix",
            Self::Safe => "safe",
            Self::EStop => "estop",
        }
    }
}

/// One tick's output.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MuxOutput {
    pub roll_deg: f64,
    pub pitch_deg: f64,
    pub yaw_rate_deg_s: f64,
    pub thrust: u16,
    /// Who flies each axis (roll, pitch, yaw, thrust).
    pub sources: [Source; 4],
    pub estop: bool,
    /// The teacher's alt buttons (always the teacher's, whoever flies).
    pub alt1: bool,
    pub alt2: bool,
}

/// See the module doc.
#[derive(Clone, Debug)]
pub struct Mux {
    cfg: MuxConfig,
    last: Option<MuxOutput>,
    /// Axis still catching up with its source after a switch.
    slewing: [bool; 4],
    estop: bool,
    safe_since_ns: Option<u64>,
}

fn value(f: &InputFrame, axis: Axis) -> f64 {
    match axis {
        Axis::Roll => f.roll_deg,
        Axis::Pitch => f.pitch_deg,
        Axis::Yaw => f.yaw_rate_deg_s,
        Axis::Thrust => f64::from(percent_to_raw(f.thrust_pct)),
    }
}

/// The source of each axis when `muxswitch` is not held.
fn base(mode: MuxMode) -> [Source; 4] {
    use Source::{Mix, Student, Teacher};
    match mode {
        MuxMode::Normal | MuxMode::TeacherRpyt => [Student; 4],
        MuxMode::TeacherRp => [Student, Student, Teacher, Teacher],
        MuxMode::Mix => [Mix; 4],
        MuxMode::Custom(t) => t.map(|teacher| if teacher { Teacher } else { Student }),
    }
}

fn takeover_allowed(mode: MuxMode) -> bool {
    !matches!(mode, MuxMode::Normal | MuxMode::Mix)
}

impl Mux {
    pub fn new(cfg: MuxConfig) -> Self {
        Self {
            cfg,
            last: None,
            slewing: [false; 4],
            estop: false,
            safe_since_ns: None,
        }
    }

    pub fn config(&self) -> &MuxConfig {
        &self.cfg
    }

    pub fn estopped(&self) -> bool {
        self.estop
    }

    fn fresh<'a>(&self, now_ns: u64, f: Option<&'a InputFrame>) -> Option<&'a InputFrame> {
        let max_age_ns = (self.cfg.max_age_s * 1e9) as u64;
        f.filter(|f| f.is_finite() && now_ns.saturating_sub(f.stamp_ns) <= max_age_ns)
    }

    fn limit(&self, axis: Axis, v: f64) -> f64 {
        let c = &self.cfg;
        let v = if v.is_finite() { v } else { 0.0 };
        match axis {
            Axis::Roll | Axis::Pitch => v.clamp(-c.max_angle_deg, c.max_angle_deg),
            Axis::Yaw => v.clamp(-c.max_yaw_rate_deg_s, c.max_yaw_rate_deg_s),
            Axis::Thrust => v.clamp(0.0, f64::from(c.max_thrust)),
        }
    }

    fn slew(&self, axis: Axis) -> f64 {
        match axis {
            Axis::Roll | Axis::Pitch => self.cfg.angle_slew_deg_per_tick,
            Axis::Yaw => self.cfg.yaw_slew_deg_s_per_tick,
            Axis::Thrust => self.cfg.thrust_slew_per_tick,
        }
    }

    /// One tick at `now_ns` (call at the link rate, 100 Hz). Either input may be missing.
    pub fn step(
        &mut self,
        now_ns: u64,
        teacher: Option<&InputFrame>,
        student: Option<&InputFrame>,
    ) -> MuxOutput {
        let teacher_frame = teacher.filter(|f| f.is_finite());
        // E-stop always wins and stays latched, even if the rest of that frame is stale or broken.
        if teacher.is_some_and(|f| f.estop) {
            self.estop = true;
        }
        if self.estop {
            let out = MuxOutput {
                roll_deg: 0.0,
                pitch_deg: 0.0,
                yaw_rate_deg_s: 0.0,
                thrust: 0,
                sources: [Source::EStop; 4],
                estop: true,
                alt1: teacher_frame.is_some_and(|f| f.alt1),
                alt2: teacher_frame.is_some_and(|f| f.alt2),
            };
            self.last = Some(out);
            return out;
        }
        let t = self.fresh(now_ns, teacher_frame);
        let s = self.fresh(now_ns, student);
        let takeover = takeover_allowed(self.cfg.mode) && t.is_some_and(|t| t.muxswitch);
        let mut sources = if takeover {
            [Source::Teacher; 4]
        } else {
            base(self.cfg.mode)
        };
        // Missing or lost inputs. A teacher's axis without a fresh teacher is safe. A student's
        // axis: a lost (stale, broken) autopilot is safe — the teacher takes over by holding the
        // mux switch — but with no student at all the teacher flies it.
        let no_student = student.is_none();
        for src in sources.iter_mut() {
            *src = match (*src, t.is_some(), s.is_some()) {
                (Source::Teacher, true, _)
                | (Source::Student, _, true)
                | (Source::Mix, true, true) => *src,
                (Source::Student, true, false) if no_student => Source::Teacher,
                (Source::Mix, true, false) => Source::Teacher,
                (Source::Mix, false, true) => Source::Student,
                _ => Source::Safe,
            };
        }
        let last = self.last;
        if sources[3] == Source::Safe {
            self.safe_since_ns.get_or_insert(now_ns);
        } else {
            self.safe_since_ns = None;
        }
        let mut vals = [0.0; 4];
        for (i, &axis) in AXES.iter().enumerate() {
            let target = match sources[i] {
                Source::Teacher => t.map_or(0.0, |f| value(f, axis)),
                Source::Student => s.map_or(0.0, |f| value(f, axis)),
                Source::Mix => {
                    t.map_or(0.0, |f| value(f, axis)) + s.map_or(0.0, |f| value(f, axis))
                }
                Source::EStop => 0.0,
                Source::Safe => match axis {
                    Axis::Thrust => self.safe_thrust(now_ns),
                    _ => 0.0,
                },
            };
            let target = self.limit(axis, target);
            let prev = last.map(|o| match axis {
                Axis::Roll => o.roll_deg,
                Axis::Pitch => o.pitch_deg,
                Axis::Yaw => o.yaw_rate_deg_s,
                Axis::Thrust => f64::from(o.thrust),
            });
            if last.is_some_and(|o| o.sources[i] != sources[i]) {
                self.slewing[i] = true;
            }
            vals[i] = match prev {
                Some(p) if self.slewing[i] => {
                    let step = self.slew(axis);
                    let v = p + (target - p).clamp(-step, step);
                    if (v - target).abs() < 1e-9 {
                        self.slewing[i] = false;
                    }
                    v
                }
                _ => target,
            };
        }
        let out = MuxOutput {
            roll_deg: vals[0],
            pitch_deg: vals[1],
            yaw_rate_deg_s: vals[2],
            thrust: vals[3].round().clamp(0.0, f64::from(self.cfg.max_thrust)) as u16,
            sources,
            estop: false,
            alt1: t.is_some_and(|f| f.alt1),
            alt2: t.is_some_and(|f| f.alt2),
        };
        self.last = Some(out);
        out
    }

    /// Thrust with no usable source: hold the last value, then ramp it to zero.
    fn safe_thrust(&self, now_ns: u64) -> f64 {
        let last = self.last.map_or(0.0, |o| f64::from(o.thrust));
        let since = self
            .safe_since_ns
            .map_or(0.0, |t| now_ns.saturating_sub(t) as f64 * 1e-9);
        if since <= self.cfg.safe_hold_s {
            last
        } else {
            let ramp = self.cfg.safe_ramp_s.max(1e-3);
            let per_tick = f64::from(self.cfg.max_thrust) / (ramp * 100.0);
            (last - per_tick).max(0.0)
        }
    }
}

#[cfg(test)]
mod tests;
