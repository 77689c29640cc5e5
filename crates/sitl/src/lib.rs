//! A simulated Crazyflie that speaks CRTP: the physics and firmware model of `depthpilot-sim`
//! behind the firmware's own services (link, platform, parameters, logging, memory, commander,
//! localization, supervisor), so that Bitcraze's clients (cflib, cfclient, crazyflie-lib) connect
//! to it as to a real one.
//!
//! In scope: the firmware side of the protocol, pure and deterministic (bytes in, bytes out,
//! time = physics steps). Out of scope: sockets and pacing (`depthpilot sitl` in the binary), the
//! client side (`depthpilot-radio`).

mod crazyflie;
pub mod ledring;
mod services;
pub mod toc;

pub use crazyflie::{
    LED_MEM_SIZE, LED_MEM_TYPE, MAX_LOG_BLOCKS, MAX_LOG_OPS, PROTOCOL_VERSION, SimCrazyflie,
    SitlStats,
};
#[cfg(test)]
mod tests;
