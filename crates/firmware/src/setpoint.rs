//! The generic setpoints (CRTP port 7, channel 0) as the firmware holds them after decoding, and
//! their mapping onto the firmware's `setpoint_t` modes.
//!
//! Facts from `src/modules/src/crtp_commander_generic.c` (bitcraze/crazyflie-firmware):
//! - the setpoint is zeroed before each decoder runs, so every mode not named is `modeDisable`
//!   and every value not named is 0 (the stop packet, type 0, is exactly that: motors off);
//! - types 8 (velocityWorld), 9 (zDistance), 10 (hover), 4 (altHold) and 11 (manual) copy the
//!   yaw rate as sent; only the legacy types 1, 2 and 5 negate it (`-values->yawrate`). A decoder
//!   of the legacy ids must negate before building an [`FwSetpoint`];
//! - roll and pitch angles are copied unchanged into `setpoint->attitude`, which the PID
//!   controller compares with the legacy-frame state (pitch positive = nose up). cflib's
//!   `send_setpoint_manual` negates the user's pitch before sending, as for the RPYT packet;
//! - only the RPYT decoder (`crtp_commander_rpyt.c`) has a thrust lock and the 1000/60000
//!   clamps; the generic decoders have neither (manual: `setpoint->thrust = values->thrust`).

/// One axis's mode (`stab_mode_t`): `modeDisable`, `modeAbs`, `modeVelocity`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Disable,
    Abs,
    Velocity,
}

/// The modes of a `setpoint_t` (the quaternion mode is not modelled: no full-state setpoints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    pub x: Mode,
    pub y: Mode,
    pub z: Mode,
    pub roll: Mode,
    pub pitch: Mode,
    pub yaw: Mode,
}

impl Modes {
    /// The null setpoint's modes (all disabled).
    pub const NULL: Self = Self {
        x: Mode::Disable,
        y: Mode::Disable,
        z: Mode::Disable,
        roll: Mode::Disable,
        pitch: Mode::Disable,
        yaw: Mode::Disable,
    };
    /// The RPYT decoder's modes with default `flightmode` params (`crtp_commander_rpyt.c`):
    /// roll/pitch angle, yaw rate, no position control.
    pub const LEGACY: Self = Self {
        x: Mode::Disable,
        y: Mode::Disable,
        z: Mode::Disable,
        roll: Mode::Abs,
        pitch: Mode::Abs,
        yaw: Mode::Velocity,
    };
}

/// A generic setpoint, already decoded: SI units and degrees, as the firmware's `setpoint_t`
/// holds them. Angles are in the firmware's legacy frame (roll positive = right side down, pitch
/// positive = nose up); yaw and yaw rates are right-handed (positive = counter-clockwise seen
/// from above), not negated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FwSetpoint {
    /// Type 0: the null setpoint, motors off.
    Stop,
    /// Type 8: velocity in the world frame, yaw rate.
    VelocityWorld {
        vx_m_s: f64,
        vy_m_s: f64,
        vz_m_s: f64,
        yaw_rate_deg_s: f64,
    },
    /// Type 9: roll and pitch angles, yaw rate, absolute height.
    ZDistance {
        roll_deg: f64,
        pitch_deg: f64,
        yaw_rate_deg_s: f64,
        z_m: f64,
    },
    /// Type 4: roll and pitch angles, yaw rate, vertical velocity. (The packet struct's comment
    /// says roll/pitch are "rad", but the decoder copies them into `setpoint->attitude`, which
    /// the controller treats as degrees; degrees here.)
    AltHold {
        roll_deg: f64,
        pitch_deg: f64,
        yaw_rate_deg_s: f64,
        vz_m_s: f64,
    },
    /// Type 10: velocity in the body's yaw-aligned frame, yaw rate, absolute height.
    Hover {
        vx_body_m_s: f64,
        vy_body_m_s: f64,
        yaw_rate_deg_s: f64,
        z_m: f64,
    },
    /// Type 7: absolute position and yaw.
    Position {
        x_m: f64,
        y_m: f64,
        z_m: f64,
        yaw_deg: f64,
    },
    /// Type 11: roll and pitch as angles (deg) or, with `rate`, as rates (deg/s); yaw rate; raw
    /// thrust (0..65535, no lock, no clamp).
    Manual {
        roll: f64,
        pitch: f64,
        yaw_rate_deg_s: f64,
        thrust: u16,
        rate: bool,
    },
}

/// The thrust cflib's `send_setpoint_manual` puts in a manual packet for a percentage:
/// `10001 + pct·(60000 − 10001)/100` (crazyflie-lib-python `cflib/crazyflie/commander.py`, as
/// quoted in `reference/protocols.md` §2.4; not re-checked here).
pub fn manual_thrust_from_pct(pct: f64) -> u16 {
    let pct = pct.clamp(0.0, 100.0);
    (10001.0 + pct * (60000.0 - 10001.0) / 100.0) as u16
}

/// The decoded `setpoint_t` (the subset the PID controller reads).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Setpoint {
    pub mode: Modes,
    pub position_m: [f64; 3],
    pub velocity_m_s: [f64; 3],
    /// Velocities x/y are in the body's yaw-aligned frame (hover), not the world frame.
    pub velocity_body: bool,
    /// Roll, pitch (legacy frame), yaw; degrees.
    pub attitude_deg: [f64; 3],
    /// Roll, pitch, yaw rates; deg/s.
    pub attitude_rate_deg_s: [f64; 3],
    /// Raw thrust, used when `mode.z` is disabled.
    pub thrust: f64,
}

impl Setpoint {
    /// `nullSetpoint` (`commander.c`, `supervisor.c`): everything zero and disabled.
    pub const NULL: Self = Self {
        mode: Modes::NULL,
        position_m: [0.0; 3],
        velocity_m_s: [0.0; 3],
        velocity_body: false,
        attitude_deg: [0.0; 3],
        attitude_rate_deg_s: [0.0; 3],
        thrust: 0.0,
    };
}

impl FwSetpoint {
    /// What the matching decoder of `crtp_commander_generic.c` writes into a zeroed `setpoint_t`.
    pub fn decode(&self) -> Setpoint {
        let mut s = Setpoint::NULL;
        match *self {
            Self::Stop => {}
            Self::VelocityWorld {
                vx_m_s,
                vy_m_s,
                vz_m_s,
                yaw_rate_deg_s,
            } => {
                s.mode.x = Mode::Velocity;
                s.mode.y = Mode::Velocity;
                s.mode.z = Mode::Velocity;
                s.velocity_m_s = [vx_m_s, vy_m_s, vz_m_s];
                s.mode.yaw = Mode::Velocity;
                s.attitude_rate_deg_s[2] = yaw_rate_deg_s;
            }
            Self::ZDistance {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                z_m,
            } => {
                s.mode.z = Mode::Abs;
                s.position_m[2] = z_m;
                s.mode.yaw = Mode::Velocity;
                s.attitude_rate_deg_s[2] = yaw_rate_deg_s;
                s.mode.roll = Mode::Abs;
                s.mode.pitch = Mode::Abs;
                s.attitude_deg[0] = roll_deg;
                s.attitude_deg[1] = pitch_deg;
            }
            Self::AltHold {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                vz_m_s,
            } => {
                s.mode.z = Mode::Velocity;
                s.velocity_m_s[2] = vz_m_s;
                s.mode.yaw = Mode::Velocity;
                s.attitude_rate_deg_s[2] = yaw_rate_deg_s;
                s.mode.roll = Mode::Abs;
                s.mode.pitch = Mode::Abs;
                s.attitude_deg[0] = roll_deg;
                s.attitude_deg[1] = pitch_deg;
            }
            Self::Hover {
                vx_body_m_s,
                vy_body_m_s,
                yaw_rate_deg_s,
                z_m,
            } => {
                s.mode.z = Mode::Abs;
                s.position_m[2] = z_m;
                s.mode.yaw = Mode::Velocity;
                s.attitude_rate_deg_s[2] = yaw_rate_deg_s;
                s.mode.x = Mode::Velocity;
                s.mode.y = Mode::Velocity;
                s.velocity_m_s[0] = vx_body_m_s;
                s.velocity_m_s[1] = vy_body_m_s;
                s.velocity_body = true;
            }
            Self::Position {
                x_m,
                y_m,
                z_m,
                yaw_deg,
            } => {
                s.mode.x = Mode::Abs;
                s.mode.y = Mode::Abs;
                s.mode.z = Mode::Abs;
                s.position_m = [x_m, y_m, z_m];
                s.mode.yaw = Mode::Abs;
                s.attitude_deg[2] = yaw_deg;
            }
            Self::Manual {
                roll,
                pitch,
                yaw_rate_deg_s,
                thrust,
                rate,
            } => {
                if rate {
                    s.mode.roll = Mode::Velocity;
                    s.mode.pitch = Mode::Velocity;
                    s.attitude_rate_deg_s[0] = roll;
                    s.attitude_rate_deg_s[1] = pitch;
                } else {
                    s.mode.roll = Mode::Abs;
                    s.mode.pitch = Mode::Abs;
                    s.attitude_deg[0] = roll;
                    s.attitude_deg[1] = pitch;
                }
                s.mode.yaw = Mode::Velocity;
                s.attitude_rate_deg_s[2] = yaw_rate_deg_s;
                s.thrust = f64::from(thrust);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Mode::{Abs, Disable, Velocity};

    fn modes(x: Mode, y: Mode, z: Mode, roll: Mode, pitch: Mode, yaw: Mode) -> Modes {
        Modes {
            x,
            y,
            z,
            roll,
            pitch,
            yaw,
        }
    }

    #[test]
    fn each_type_sets_the_modes_of_its_decoder() {
        let cases = [
            (FwSetpoint::Stop, Modes::NULL),
            (
                FwSetpoint::VelocityWorld {
                    vx_m_s: 0.1,
                    vy_m_s: 0.2,
                    vz_m_s: 0.3,
                    yaw_rate_deg_s: 10.0,
                },
                modes(Velocity, Velocity, Velocity, Disable, Disable, Velocity),
            ),
            (
                FwSetpoint::ZDistance {
                    roll_deg: 1.0,
                    pitch_deg: 2.0,
                    yaw_rate_deg_s: 3.0,
                    z_m: 0.5,
                },
                modes(Disable, Disable, Abs, Abs, Abs, Velocity),
            ),
            (
                FwSetpoint::AltHold {
                    roll_deg: 1.0,
                    pitch_deg: 2.0,
                    yaw_rate_deg_s: 3.0,
                    vz_m_s: 0.2,
                },
                modes(Disable, Disable, Velocity, Abs, Abs, Velocity),
            ),
            (
                FwSetpoint::Hover {
                    vx_body_m_s: 0.1,
                    vy_body_m_s: 0.2,
                    yaw_rate_deg_s: 3.0,
                    z_m: 0.5,
                },
                modes(Velocity, Velocity, Abs, Disable, Disable, Velocity),
            ),
            (
                FwSetpoint::Position {
                    x_m: 1.0,
                    y_m: 2.0,
                    z_m: 3.0,
                    yaw_deg: 45.0,
                },
                modes(Abs, Abs, Abs, Disable, Disable, Abs),
            ),
            (
                FwSetpoint::Manual {
                    roll: 1.0,
                    pitch: 2.0,
                    yaw_rate_deg_s: 3.0,
                    thrust: 30000,
                    rate: false,
                },
                modes(Disable, Disable, Disable, Abs, Abs, Velocity),
            ),
            (
                FwSetpoint::Manual {
                    roll: 1.0,
                    pitch: 2.0,
                    yaw_rate_deg_s: 3.0,
                    thrust: 30000,
                    rate: true,
                },
                modes(Disable, Disable, Disable, Velocity, Velocity, Velocity),
            ),
        ];
        for (sp, want) in cases {
            assert_eq!(sp.decode().mode, want, "{sp:?}");
        }
    }

    #[test]
    fn values_land_where_the_decoders_put_them() {
        let s = FwSetpoint::VelocityWorld {
            vx_m_s: 0.1,
            vy_m_s: 0.2,
            vz_m_s: 0.3,
            yaw_rate_deg_s: 10.0,
        }
        .decode();
        assert_eq!(s.velocity_m_s, [0.1, 0.2, 0.3]);
        assert_eq!(
            s.attitude_rate_deg_s[2], 10.0,
            "type 8 does not negate yaw rate"
        );
        assert!(!s.velocity_body);
        assert_eq!(s.thrust, 0.0);

        let s = FwSetpoint::Hover {
            vx_body_m_s: 0.1,
            vy_body_m_s: -0.2,
            yaw_rate_deg_s: -5.0,
            z_m: 0.5,
        }
        .decode();
        assert!(s.velocity_body);
        assert_eq!(s.velocity_m_s, [0.1, -0.2, 0.0]);
        assert_eq!(s.position_m[2], 0.5);
        assert_eq!(s.attitude_rate_deg_s[2], -5.0);

        let s = FwSetpoint::Position {
            x_m: 1.0,
            y_m: 2.0,
            z_m: 3.0,
            yaw_deg: 45.0,
        }
        .decode();
        assert_eq!(s.position_m, [1.0, 2.0, 3.0]);
        assert_eq!(s.attitude_deg[2], 45.0);

        let s = FwSetpoint::Manual {
            roll: 4.0,
            pitch: -6.0,
            yaw_rate_deg_s: 3.0,
            thrust: 123,
            rate: true,
        }
        .decode();
        assert_eq!(s.attitude_rate_deg_s, [4.0, -6.0, 3.0]);
        assert_eq!(s.attitude_deg, [0.0; 3]);
        assert_eq!(
            s.thrust, 123.0,
            "manual thrust is raw: no lock, no 1000 floor"
        );

        assert_eq!(FwSetpoint::Stop.decode(), Setpoint::NULL);
    }

    #[test]
    fn manual_thrust_percent_follows_cflib() {
        assert_eq!(manual_thrust_from_pct(0.0), 10001);
        assert_eq!(manual_thrust_from_pct(100.0), 60000);
        assert_eq!(manual_thrust_from_pct(50.0), 35000);
    }
}

impl FwSetpoint {
    /// What `crtp_commander_generic.c` makes of a generic setpoint packet. The legacy types
    /// 1, 2 and 5 carry an inverted yaw rate that the firmware negates; 8, 9 and 10 do not.
    /// None for the types this model does not fly (3 CPPM emulation, 6 full state).
    pub fn from_generic(sp: &depthpilot_crtp::GenericSetpoint) -> Option<Self> {
        use depthpilot_crtp::GenericSetpoint as G;
        let f = f64::from;
        // The legacy ids carry the inverted yaw rate; the firmware negates it back.
        let yaw_sign = if matches!(
            sp,
            G::VelocityWorldLegacy { .. } | G::ZDistanceLegacy { .. } | G::HoverLegacy { .. }
        ) {
            -1.0
        } else {
            1.0
        };
        Some(match *sp {
            G::Stop => Self::Stop,
            G::VelocityWorldLegacy {
                vx_m_s,
                vy_m_s,
                vz_m_s,
                yaw_rate_deg_s,
            }
            | G::VelocityWorld {
                vx_m_s,
                vy_m_s,
                vz_m_s,
                yaw_rate_deg_s,
            } => Self::VelocityWorld {
                vx_m_s: f(vx_m_s),
                vy_m_s: f(vy_m_s),
                vz_m_s: f(vz_m_s),
                yaw_rate_deg_s: yaw_sign * f(yaw_rate_deg_s),
            },
            G::ZDistanceLegacy {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                z_m,
            }
            | G::ZDistance {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                z_m,
            } => Self::ZDistance {
                roll_deg: f(roll_deg),
                pitch_deg: f(pitch_deg),
                yaw_rate_deg_s: yaw_sign * f(yaw_rate_deg_s),
                z_m: f(z_m),
            },
            G::AltHold {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                vz_m_s,
            } => Self::AltHold {
                roll_deg: f(roll_deg),
                pitch_deg: f(pitch_deg),
                yaw_rate_deg_s: f(yaw_rate_deg_s),
                vz_m_s: f(vz_m_s),
            },
            G::HoverLegacy {
                vx_m_s,
                vy_m_s,
                yaw_rate_deg_s,
                z_m,
            }
            | G::Hover {
                vx_m_s,
                vy_m_s,
                yaw_rate_deg_s,
                z_m,
            } => Self::Hover {
                vx_body_m_s: f(vx_m_s),
                vy_body_m_s: f(vy_m_s),
                yaw_rate_deg_s: yaw_sign * f(yaw_rate_deg_s),
                z_m: f(z_m),
            },
            G::Position {
                x_m,
                y_m,
                z_m,
                yaw_deg,
            } => Self::Position {
                x_m: f(x_m),
                y_m: f(y_m),
                z_m: f(z_m),
                yaw_deg: f(yaw_deg),
            },
            G::Manual {
                roll_deg,
                pitch_deg,
                yaw_rate_deg_s,
                thrust,
                rate,
            } => Self::Manual {
                roll: f(roll_deg),
                pitch: f(pitch_deg),
                yaw_rate_deg_s: f(yaw_rate_deg_s),
                thrust,
                rate,
            },
            G::CppmEmulation { .. } | G::FullState(_) => return None,
        })
    }
}

#[cfg(test)]
mod from_generic_tests {
    use super::*;
    use depthpilot_crtp::GenericSetpoint as G;

    #[test]
    fn legacy_types_negate_the_yaw_rate_and_current_ones_do_not() {
        let legacy = G::HoverLegacy {
            vx_m_s: 0.1,
            vy_m_s: 0.0,
            yaw_rate_deg_s: 10.0,
            z_m: 0.5,
        };
        let current = G::Hover {
            vx_m_s: 0.1,
            vy_m_s: 0.0,
            yaw_rate_deg_s: 10.0,
            z_m: 0.5,
        };
        let rate = |sp: Option<FwSetpoint>| match sp {
            Some(FwSetpoint::Hover { yaw_rate_deg_s, .. }) => yaw_rate_deg_s,
            other => panic!("{other:?}"),
        };
        assert_eq!(rate(FwSetpoint::from_generic(&legacy)), -10.0);
        assert_eq!(rate(FwSetpoint::from_generic(&current)), 10.0);
        let legacy_velocity = G::VelocityWorldLegacy {
            vx_m_s: 0.0,
            vy_m_s: 0.0,
            vz_m_s: 0.0,
            yaw_rate_deg_s: 5.0,
        };
        assert!(matches!(
            FwSetpoint::from_generic(&legacy_velocity),
            Some(FwSetpoint::VelocityWorld { yaw_rate_deg_s, .. }) if yaw_rate_deg_s == -5.0
        ));
        let z = G::ZDistance {
            roll_deg: 1.0,
            pitch_deg: 2.0,
            yaw_rate_deg_s: 5.0,
            z_m: 0.4,
        };
        assert!(matches!(
            FwSetpoint::from_generic(&z),
            Some(FwSetpoint::ZDistance { yaw_rate_deg_s, .. }) if yaw_rate_deg_s == 5.0
        ));
        assert_eq!(
            FwSetpoint::from_generic(&G::Position {
                x_m: 1.0,
                y_m: 2.0,
                z_m: 0.5,
                yaw_deg: 90.0
            }),
            Some(FwSetpoint::Position {
                x_m: 1.0,
                y_m: 2.0,
                z_m: 0.5,
                yaw_deg: 90.0
            })
        );
    }
}
