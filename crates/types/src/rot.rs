//! Rotation matrices in f64 (world_from_body), built from the physics engine's quaternion.

use crate::Vec3;

/// A rotation `world_from_body` as a row-major matrix: `m[i][j]`, row i = world axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rot {
    pub m: [[f64; 3]; 3],
}

impl Rot {
    pub const IDENTITY: Self = Self {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    /// From a unit quaternion (w, x, y, z).
    pub fn from_quat(w: f64, x: f64, y: f64, z: f64) -> Self {
        let n = (w * w + x * x + y * y + z * z).sqrt();
        let (w, x, y, z) = if n > 0.0 {
            (w / n, x / n, y / n, z / n)
        } else {
            (1.0, 0.0, 0.0, 0.0)
        };
        Self {
            m: [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - w * z),
                    2.0 * (x * z + w * y),
                ],
                [
                    2.0 * (x * y + w * z),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - w * x),
                ],
                [
                    2.0 * (x * z - w * y),
                    2.0 * (y * z + w * x),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ],
        }
    }

    /// From ZYX Euler angles (roll about x, then pitch about y, then yaw about z; right-handed).
    pub fn from_rpy(roll: f64, pitch: f64, yaw: f64) -> Self {
        let (sr, cr) = roll.sin_cos();
        let (sp, cp) = pitch.sin_cos();
        let (sy, cy) = yaw.sin_cos();
        Self {
            m: [
                [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                [-sp, cp * sr, cp * cr],
            ],
        }
    }

    /// From the images of the x, y and z axes (the matrix's columns).
    pub fn from_columns(x: Vec3, y: Vec3, z: Vec3) -> Self {
        Self {
            m: [[x.x, y.x, z.x], [x.y, y.y, z.y], [x.z, y.z, z.z]],
        }
    }

    /// `world_from_camera` of an optical frame (x right, y down, z forward) looking along
    /// `forward`, with `up_hint` pointing towards the top of the image. None if the two are
    /// parallel or degenerate.
    pub fn look_along(forward: Vec3, up_hint: Vec3) -> Option<Self> {
        let n = forward.norm();
        if n.is_nan() || n <= 1e-9 || !forward.is_finite() || !up_hint.is_finite() {
            return None;
        }
        let z = forward * (1.0 / n);
        let x = z.cross(up_hint);
        let xn = x.norm();
        if xn < 1e-9 {
            return None;
        }
        let x = x * (1.0 / xn);
        let y = z.cross(x);
        Some(Self::from_columns(x, y, z))
    }

    /// Composition `self · other` (apply `other` first).
    pub fn mul(&self, other: &Self) -> Self {
        let (a, b) = (&self.m, &other.m);
        let mut m = [[0.0; 3]; 3];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
            }
        }
        Self { m }
    }

    /// The inverse rotation.
    pub fn transpose(&self) -> Self {
        let m = &self.m;
        Self {
            m: [
                [m[0][0], m[1][0], m[2][0]],
                [m[0][1], m[1][1], m[2][1]],
                [m[0][2], m[1][2], m[2][2]],
            ],
        }
    }

    /// Unit quaternion (w, x, y, z) of this rotation.
    pub fn to_quat(&self) -> [f64; 4] {
        let m = &self.m;
        let tr = m[0][0] + m[1][1] + m[2][2];
        if tr > 0.0 {
            let s = (tr + 1.0).sqrt() * 2.0;
            [
                0.25 * s,
                (m[2][1] - m[1][2]) / s,
                (m[0][2] - m[2][0]) / s,
                (m[1][0] - m[0][1]) / s,
            ]
        } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
            let s = (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt() * 2.0;
            [
                (m[2][1] - m[1][2]) / s,
                0.25 * s,
                (m[0][1] + m[1][0]) / s,
                (m[0][2] + m[2][0]) / s,
            ]
        } else if m[1][1] > m[2][2] {
            let s = (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt() * 2.0;
            [
                (m[0][2] - m[2][0]) / s,
                (m[0][1] + m[1][0]) / s,
                0.25 * s,
                (m[1][2] + m[2][1]) / s,
            ]
        } else {
            let s = (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt() * 2.0;
            [
                (m[1][0] - m[0][1]) / s,
                (m[0][2] + m[2][0]) / s,
                (m[1][2] + m[2][1]) / s,
                0.25 * s,
            ]
        }
    }

    /// ZYX Euler angles (roll, pitch, yaw), right-handed.
    pub fn rpy(&self) -> [f64; 3] {
        let m = &self.m;
        [
            m[2][1].atan2(m[2][2]),
            (-m[2][0]).clamp(-1.0, 1.0).asin(),
            m[1][0].atan2(m[0][0]),
        ]
    }

    /// Tilt of the body z axis from the world z axis.
    pub fn tilt_rad(&self) -> f64 {
        self.m[2][2].clamp(-1.0, 1.0).acos()
    }

    /// world = R · body
    pub fn apply(&self, v: Vec3) -> Vec3 {
        let m = &self.m;
        Vec3::new(
            m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
            m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
            m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z,
        )
    }

    /// body = Rᵀ · world
    pub fn inverse_apply(&self, v: Vec3) -> Vec3 {
        let m = &self.m;
        Vec3::new(
            m[0][0] * v.x + m[1][0] * v.y + m[2][0] * v.z,
            m[0][1] * v.x + m[1][1] * v.y + m[2][1] * v.z,
            m[0][2] * v.x + m[1][2] * v.y + m[2][2] * v.z,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpy_round_trip_through_quaternion() {
        for &(r, p, y) in &[(0.1, -0.2, 0.3), (-0.5, 0.4, -2.0), (0.0, 0.0, 3.0)] {
            let rot = Rot::from_rpy(r, p, y);
            let [w, x, yq, z] = rot.to_quat();
            let back = Rot::from_quat(w, x, yq, z).rpy();
            assert!(
                (back[0] - r).abs() < 1e-9
                    && (back[1] - p).abs() < 1e-9
                    && (back[2] - y).abs() < 1e-9,
                "{back:?}"
            );
        }
    }

    #[test]
    fn camera_looking_forward_has_its_x_to_the_right_and_y_down() {
        let r = Rot::look_along(Vec3::new(1.0, 0.0, 0.0), Vec3::new(0.0, 0.0, 1.0)).expect("valid");
        assert!((r.apply(Vec3::new(1.0, 0.0, 0.0)) - Vec3::new(0.0, -1.0, 0.0)).norm() < 1e-12);
        assert!((r.apply(Vec3::new(0.0, 1.0, 0.0)) - Vec3::new(0.0, 0.0, -1.0)).norm() < 1e-12);
        assert!(Rot::look_along(Vec3::new(0.0, 0.0, 1.0), Vec3::new(0.0, 0.0, 2.0)).is_none());
    }

    #[test]
    fn positive_roll_lowers_the_right_side() {
        let rot = Rot::from_rpy(0.3, 0.0, 0.0);
        let right = rot.apply(Vec3::new(0.0, -1.0, 0.0));
        assert!(right.z < 0.0);
    }

    #[test]
    fn positive_pitch_lowers_the_nose() {
        let rot = Rot::from_rpy(0.0, 0.3, 0.0);
        assert!(rot.apply(Vec3::new(1.0, 0.0, 0.0)).z < 0.0);
    }
}
