//! The realism layer: a real Crazyflie's and a real Kinect v2's imperfections, switched per item
//! by the scene's `realism` ([`depthpilot_types::scene::Realism`]). Every parameter names its
//! datasheet or paper at the line. Each item draws from its own seeded stream
//! ([`crate::noise::Stream`]); an item that is off draws nothing and changes nothing, so an
//! `Ideal` flight is the flight the simulator flew before the layer existed.
//!
//! | item | module |
//! |---|---|
//! | IMU noise, bias, bias drift (BMI088) | [`imu`] |
//! | battery discharge and sag | [`battery`] |
//! | motor-to-motor spread, bent arm | [`motors`] |
//! | Dryden turbulence, downwash near floor and walls | [`airflow`] |
//! | the Kinect v2's systematic errors | `crate::kinect` (`kinect_errors`) |

pub mod airflow;
pub mod battery;
pub mod imu;
pub mod motors;
