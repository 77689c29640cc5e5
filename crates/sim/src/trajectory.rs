//! Setpoints as a function of time, from the scene's [`Trajectory`].

use depthpilot_types::scene::{TimedPoint, Trajectory};
use depthpilot_types::{Setpoint, Vec3};

/// The setpoint at time `t_s`.
pub fn setpoint_at(traj: &Trajectory, t_s: f64) -> Setpoint {
    match traj {
        Trajectory::Hover {
            position_m,
            yaw_deg,
        } => Setpoint::hold(*position_m, yaw_deg.to_radians()),
        Trajectory::Steps(points) => {
            let p = points
                .iter()
                .rev()
                .find(|p| p.t_s <= t_s)
                .or(points.first());
            p.map_or(Setpoint::hold(Vec3::ZERO, 0.0), hold_point)
        }
        Trajectory::Waypoints(points) => waypoints(points, t_s),
        Trajectory::Figure8 {
            center_m,
            half_length_m,
            half_width_m,
            period_s,
            start_s,
        } => figure8(
            *center_m,
            *half_length_m,
            *half_width_m,
            *period_s,
            t_s - start_s,
        ),
    }
}

fn hold_point(p: &TimedPoint) -> Setpoint {
    Setpoint::hold(p.position_m, p.yaw_deg.to_radians())
}

fn waypoints(points: &[TimedPoint], t_s: f64) -> Setpoint {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Setpoint::hold(Vec3::ZERO, 0.0);
    };
    if t_s <= first.t_s {
        return hold_point(first);
    }
    if t_s >= last.t_s {
        return hold_point(last);
    }
    for w in points.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if t_s >= a.t_s && t_s < b.t_s {
            let span = b.t_s - a.t_s;
            let u = (t_s - a.t_s) / span;
            return Setpoint {
                pos_in_world_m: a.position_m.lerp(b.position_m, u),
                vel_in_world_m_s: (b.position_m - a.position_m) * (1.0 / span),
                acc_in_world_m_s2: Vec3::ZERO,
                yaw_rad: (a.yaw_deg + (b.yaw_deg - a.yaw_deg) * u).to_radians(),
            };
        }
    }
    hold_point(last)
}

/// Lemniscate of Gerono: x = A sin φ, y = B sin φ cos φ. The phase rate ramps linearly from 0
/// to 2π/T over the first period, so position, velocity and acceleration start continuous.
fn figure8(c: Vec3, a: f64, b: f64, period_s: f64, t: f64) -> Setpoint {
    if t <= 0.0 {
        return Setpoint::hold(c, 0.0);
    }
    let w = std::f64::consts::TAU / period_s;
    let (phi, dphi, ddphi) = if t < period_s {
        (w * t * t / (2.0 * period_s), w * t / period_s, w / period_s)
    } else {
        (w * (t - period_s / 2.0), w, 0.0)
    };
    let (s, co) = phi.sin_cos();
    let (s2, c2) = (2.0 * phi).sin_cos();
    Setpoint {
        pos_in_world_m: c + Vec3::new(a * s, 0.5 * b * s2, 0.0),
        vel_in_world_m_s: Vec3::new(a * co * dphi, b * c2 * dphi, 0.0),
        acc_in_world_m_s2: Vec3::new(
            a * (-s * dphi * dphi + co * ddphi),
            b * (-2.0 * s2 * dphi * dphi + c2 * ddphi),
            0.0,
        ),
        yaw_rad: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure8_velocity_is_the_derivative_of_position() {
        let c = Vec3::new(0.0, 0.0, 1.0);
        for &t in &[0.5, 3.0, 7.3, 12.0] {
            let h = 1e-6;
            let p0 = figure8(c, 0.6, 0.4, 6.0, t - h).pos_in_world_m;
            let p1 = figure8(c, 0.6, 0.4, 6.0, t + h).pos_in_world_m;
            let v = figure8(c, 0.6, 0.4, 6.0, t).vel_in_world_m_s;
            let fd = (p1 - p0) * (1.0 / (2.0 * h));
            assert!((fd - v).norm() < 1e-5, "t={t} {fd:?} {v:?}");
            let v0 = figure8(c, 0.6, 0.4, 6.0, t - h).vel_in_world_m_s;
            let v1 = figure8(c, 0.6, 0.4, 6.0, t + h).vel_in_world_m_s;
            let a = figure8(c, 0.6, 0.4, 6.0, t).acc_in_world_m_s2;
            assert!(((v1 - v0) * (1.0 / (2.0 * h)) - a).norm() < 1e-4);
        }
    }

    #[test]
    fn steps_hold_from_their_time() {
        let pts = vec![
            TimedPoint {
                t_s: 0.0,
                position_m: Vec3::new(0.0, 0.0, 1.0),
                yaw_deg: 0.0,
            },
            TimedPoint {
                t_s: 5.0,
                position_m: Vec3::new(0.5, 0.0, 1.0),
                yaw_deg: 0.0,
            },
        ];
        let tr = Trajectory::Steps(pts);
        assert_eq!(setpoint_at(&tr, 4.999).pos_in_world_m.x, 0.0);
        assert_eq!(setpoint_at(&tr, 5.0).pos_in_world_m.x, 0.5);
    }
}
