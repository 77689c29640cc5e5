//! The simulated Crazyflie: the physics and firmware model of `depthpilot-sim` behind the
//! firmware's CRTP services, answering what Bitcraze's clients ask on connect and in flight:
//! link (`crtpservice.c`: echo, source string), platform (`platformservice.c`: protocol version
//! 12), parameters (`param_logic.c`: TOC V2 with CRC, read, write with echo, set by name),
//! logging (`log.c`: TOC V2, blocks created/appended/started/stopped/deleted, data packets with a
//! 24-bit millisecond timestamp), memory (`mem.c`: the LED-ring driver memory, type 0x10),
//! commander (legacy RPYT, generic setpoints), localization (external position) and supervisor
//! (emergency stop).
//!
//! Pure and deterministic: time is the plant's step count; bytes in, bytes out. The UDP server
//! around it is in the `depthpilot` binary (`src/sitl.rs`).

use crate::ledring::LedRing;
use crate::toc::{LOG_VARS, PARAMS, Snapshot, Ty, toc_crc};
use depthpilot_crtp::{
    Downlink, GenericSetpoint, LinkReply, LinkRequest, LocalizationPacket, LogReply, Packet,
    PlatformReply, PlatformRequest, SupervisorCommand, SupervisorReply, SupervisorState, Uplink,
};
use depthpilot_firmware::FwSetpoint;
use depthpilot_sim::{NoProbe, Plant};
use depthpilot_types::scene::Scene;
use std::collections::BTreeMap;

/// `CRTP_PROTOCOL_VERSION` of the firmware we model.
pub const PROTOCOL_VERSION: u8 = 12;
/// `LOG_MAX_BLOCKS`, `LOG_MAX_OPS` (`log.c`).
pub const MAX_LOG_BLOCKS: usize = 16;
pub const MAX_LOG_OPS: usize = 128;
/// Bytes of values one log data packet can carry (30 − block id − 3-byte timestamp).
pub(crate) const LOG_DATA_MAX: usize = 26;
/// Errno values the firmware answers with.
pub(crate) const ENOENT: u8 = 2;
pub(crate) const E2BIG: u8 = 7;
pub(crate) const ENOMEM: u8 = 12;
pub(crate) const EEXIST: u8 = 17;
pub(crate) const EINVAL: u8 = 22;
/// The LED-ring driver memory: 12 LEDs × RGB565 (`MEM_TYPE_DRIVER_LED`).
pub const LED_MEM_TYPE: u8 = 0x10;
pub const LED_MEM_SIZE: usize = 24;

/// Counters for the status line and the tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SitlStats {
    pub sim_seconds: f64,
    pub z_m: f64,
    pub firmware: &'static str,
    pub packets_in: u64,
    pub packets_out: u64,
    /// Datagrams that were not valid CRTP (or not a valid message on their port).
    pub bad_packets: u64,
    pub setpoints: u64,
    pub external_positions: u64,
    pub log_packets: u64,
    /// Valid packets of a kind this model does not act on (CPPM or full-state setpoints).
    pub unsupported: u64,
}

pub(crate) struct LogBlock {
    /// (TOC index, type it is fetched as).
    pub(crate) vars: Vec<(usize, Ty)>,
    pub(crate) period_ns: Option<u64>,
    pub(crate) next_ns: u64,
    /// Started with period 0: one sample, then stopped (`log.c`).
    pub(crate) once: bool,
}

impl LogBlock {
    pub(crate) fn size(&self) -> usize {
        self.vars.iter().map(|(_, t)| t.size()).sum()
    }
}

/// See the module doc.
pub struct SimCrazyflie {
    plant: Plant,
    pub(crate) params: Vec<f64>,
    pub(crate) blocks: BTreeMap<u8, LogBlock>,
    pub(crate) led_mem: [u8; LED_MEM_SIZE],
    stats: SitlStats,
    pub(crate) log_crc: u32,
    ring: LedRing,
    pub(crate) param_crc: u32,
    battery: Battery,
}

impl SimCrazyflie {
    pub fn new(scene: &Scene) -> Self {
        Self {
            plant: Plant::new(scene),
            params: PARAMS.iter().map(|p| p.default).collect(),
            blocks: BTreeMap::new(),
            led_mem: [0; LED_MEM_SIZE],
            stats: SitlStats::default(),
            log_crc: toc_crc(LOG_VARS.iter().map(|v| (v.ty.log_code(), v.group, v.name))),
            param_crc: toc_crc(PARAMS.iter().map(|p| (param_type_byte(p), p.group, p.name))),
            battery: Battery::default(),
            ring: LedRing::default(),
        }
    }

    pub fn plant(&self) -> &Plant {
        &self.plant
    }

    pub fn dt_ns(&self) -> u64 {
        self.plant.dt_ns()
    }

    pub fn steps(&self) -> u64 {
        self.plant.steps()
    }

    /// The LED-ring memory as the last client wrote it (RGB565 big-endian per LED).
    pub fn led_memory(&self) -> &[u8; LED_MEM_SIZE] {
        &self.led_mem
    }

    /// The current value of a parameter by `group.name`.
    pub fn param(&self, full_name: &str) -> Option<f64> {
        param_index(full_name).map(|i| self.param_value(i))
    }

    /// Writes the LED driver memory (what the client's ZMQ LED server does through CRTP).
    pub fn write_led_memory(&mut self, data: &[u8; LED_MEM_SIZE]) {
        self.led_mem = *data;
    }

    /// `ring.effect`.
    pub fn ring_effect(&self) -> u8 {
        self.param("ring.effect").unwrap_or(0.0) as u8
    }

    /// The LED ring's colours now (None: an effect this model does not render).
    pub fn ring_colours(&self) -> Option<[[u8; 3]; 12]> {
        self.ring.colours()
    }

    pub fn stats(&self) -> SitlStats {
        let mut s = self.stats.clone();
        s.sim_seconds = self.plant.now_ns() as f64 * 1e-9;
        s.z_m = self.plant.truth().pos_m.z;
        s.firmware = self.plant.firmware().state_name();
        s
    }

    /// One datagram from a client. Returns the encoded replies, in order.
    pub fn handle(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.stats.packets_in += 1;
        let replies = match Packet::decode(bytes).and_then(|p| Uplink::decode(&p)) {
            Ok(msg) => self.handle_uplink(msg),
            Err(_) => {
                self.stats.bad_packets += 1;
                Vec::new()
            }
        };
        let out: Vec<Vec<u8>> = replies
            .iter()
            .filter_map(|r| r.to_packet().ok().map(|p| p.encode()))
            .collect();
        self.stats.packets_out += out.len() as u64;
        out
    }

    /// One physics step; returns the log data packets that fell due.
    pub fn step(&mut self) -> Vec<Vec<u8>> {
        self.plant.step(&mut NoProbe);
        let now_ns = self.plant.now_ns();
        self.battery
            .step(self.plant.dt_ns(), &self.plant.motor_cmd());
        if now_ns.is_multiple_of(crate::ledring::TICK_NS) {
            let solid = ["ring.solidRed", "ring.solidGreen", "ring.solidBlue"]
                .map(|n| self.param(n).unwrap_or(0.0) as u8);
            let effect = self.ring_effect();
            self.ring.tick(effect, solid, &self.led_mem);
        }
        if self.blocks.values().all(|b| b.period_ns.is_none()) {
            return Vec::new();
        }
        let snap = self.snapshot();
        let mut out = Vec::new();
        for (&id, block) in self.blocks.iter_mut() {
            let Some(period) = block.period_ns else {
                continue;
            };
            if now_ns < block.next_ns {
                continue;
            }
            block.next_ns += period;
            if block.next_ns <= now_ns {
                block.next_ns = now_ns + period;
            }
            if block.once {
                block.period_ns = None;
            }
            let mut values = Vec::with_capacity(block.size());
            for &(idx, ty) in &block.vars {
                values.extend(ty.encode((LOG_VARS[idx].read)(&snap)));
            }
            let msg = Downlink::Log(LogReply::Data {
                block_id: id,
                timestamp_ms: ((now_ns / 1_000_000) & 0x00FF_FFFF) as u32,
                values,
            });
            if let Ok(p) = msg.to_packet() {
                out.push(p.encode());
            }
        }
        self.stats.log_packets += out.len() as u64;
        self.stats.packets_out += out.len() as u64;
        out
    }

    /// What the log variables read now.
    pub fn snapshot(&self) -> Snapshot {
        let truth = self.plant.truth();
        let fw = self.plant.firmware();
        let rpy = truth.world_from_body.rpy().map(f64::to_degrees);
        let motors = self.plant.motor_cmd();
        let est = fw.state_estimate();
        Snapshot {
            roll_deg: rpy[0],
            pitch_deg: -rpy[1],
            yaw_deg: rpy[2],
            thrust: f64::from(fw.thrust()),
            estimate_pos_m: est.pos_m,
            estimate_vel_m_s: est.vel_m_s,
            motors,
            acc_g: [0.0, 0.0, 1.0],
            gyro_deg_s: truth.body_rates_rad_s.to_array().map(f64::to_degrees),
            vbat_v: self.battery.volts(&motors),
            can_fly: fw.supervisor().can_fly(),
            is_flying: fw.supervisor().is_flying(),
            is_tumbled: fw.supervisor().is_tumbled(),
            true_pos_m: truth.pos_m.to_array(),
            true_rpy_deg: rpy,
        }
    }

    fn handle_uplink(&mut self, msg: Uplink) -> Vec<Downlink> {
        let now_ns = self.plant.now_ns();
        match msg {
            Uplink::Null => vec![Downlink::Null],
            Uplink::Link(LinkRequest::Echo(data)) => vec![Downlink::Link(LinkReply::Echo(data))],
            Uplink::Link(LinkRequest::Source(_)) => {
                let mut s = b"Bitcraze Crazyflie".to_vec();
                s.resize(depthpilot_crtp::MAX_DATA, 0);
                vec![Downlink::Link(LinkReply::Source(s))]
            }
            Uplink::Link(LinkRequest::Sink(_)) => Vec::new(),
            Uplink::Platform(p) => self.platform(p),
            Uplink::Param(p) => self.param_request(p),
            Uplink::Log(l) => self.log_request(l),
            Uplink::Mem(m) => self.mem_request(m),
            Uplink::Commander(sp) => {
                self.stats.setpoints += 1;
                self.plant.firmware_mut().receive(now_ns, &sp);
                Vec::new()
            }
            Uplink::Generic(sp) => {
                self.stats.setpoints += 1;
                self.generic(now_ns, sp);
                Vec::new()
            }
            Uplink::Meta(_) => Vec::new(),
            Uplink::Localization(l) => {
                match l {
                    LocalizationPacket::ExternalPosition { x_m, y_m, z_m } => {
                        self.stats.external_positions += 1;
                        self.plant.firmware_mut().receive_external_position(
                            now_ns,
                            [f64::from(x_m), f64::from(y_m), f64::from(z_m)],
                        );
                    }
                    LocalizationPacket::EmergencyStop => self.plant.firmware_mut().emergency_stop(),
                    _ => {}
                }
                Vec::new()
            }
            Uplink::Supervisor(c) => self.supervisor(c),
            Uplink::Other(_) => Vec::new(),
        }
    }

    fn platform(&mut self, p: PlatformRequest) -> Vec<Downlink> {
        match p {
            PlatformRequest::GetProtocolVersion => {
                vec![Downlink::Platform(PlatformReply::ProtocolVersion(
                    PROTOCOL_VERSION,
                ))]
            }
            PlatformRequest::GetFirmwareVersion => vec![Downlink::Platform(
                PlatformReply::FirmwareVersion("depthpilot-sitl".into()),
            )],
            PlatformRequest::GetDeviceTypeName => vec![Downlink::Platform(
                PlatformReply::DeviceTypeName("Crazyflie 2.1 (simulated)".into()),
            )],
            _ => Vec::new(),
        }
    }

    /// The supervisor's state bits (`supervisor.c:540-586`, `updateLogData`), from the model.
    fn supervisor_state(&self, state: SupervisorState) -> bool {
        let sup = self.plant.firmware().supervisor();
        match state {
            SupervisorState::CanBeArmed => sup.can_arm(),
            SupervisorState::IsArmed => self.plant.firmware().armed(),
            SupervisorState::IsAutoArmed => sup.auto_arming(),
            SupervisorState::CanFly => sup.can_fly(),
            SupervisorState::IsFlying => sup.is_flying(),
            SupervisorState::IsTumbled => sup.is_tumbled(),
            SupervisorState::IsLocked => sup.is_locked(),
            SupervisorState::IsCrashed => sup.is_crashed(),
            SupervisorState::HlControlActive | SupervisorState::HlTrajFinished => false,
            SupervisorState::HlControlDisabled => true,
        }
    }

    fn supervisor(&mut self, c: SupervisorCommand) -> Vec<Downlink> {
        let reply = match c {
            SupervisorCommand::EmergencyStop | SupervisorCommand::EmergencyStopWatchdog => {
                // crtp_supervisor.c does not answer these.
                if c == SupervisorCommand::EmergencyStop {
                    self.plant.firmware_mut().emergency_stop();
                }
                return Vec::new();
            }
            SupervisorCommand::GetStateBitfield => SupervisorReply::StateBitfield(
                SupervisorState::ALL
                    .into_iter()
                    .filter(|s| self.supervisor_state(*s))
                    .map(SupervisorState::bit)
                    .fold(0, |a, b| a | b),
            ),
            SupervisorCommand::QueryState(state) => SupervisorReply::State {
                state,
                value: self.supervisor_state(state),
            },
            SupervisorCommand::Arm(arm) => SupervisorReply::Arm {
                success: self.plant.firmware_mut().request_arming(arm),
                is_armed: self.plant.firmware().armed(),
            },
            SupervisorCommand::Recover => SupervisorReply::Recover {
                success: self.plant.firmware_mut().request_crash_recovery(),
                recovered: !self.plant.firmware().supervisor().is_crashed(),
            },
        };
        vec![Downlink::Supervisor(reply)]
    }

    fn generic(&mut self, now_ns: u64, sp: GenericSetpoint) {
        match FwSetpoint::from_generic(&sp) {
            Some(fw_sp) => self.plant.firmware_mut().receive_setpoint(now_ns, &fw_sp),
            // CPPM emulation and full-state setpoints are not modelled: counted, not flown.
            None => self.stats.unsupported += 1,
        }
    }
}

/// The type byte of a param's TOC entry: type nibble plus the read-only flag.
pub(crate) fn param_type_byte(p: &crate::toc::ParamDecl) -> u8 {
    p.ty.param_code() | if p.read_only { 0x40 } else { 0 }
}

fn param_index(full_name: &str) -> Option<usize> {
    let (group, name) = full_name.split_once('.')?;
    PARAMS
        .iter()
        .position(|p| p.group == group && p.name == name)
}

/// A 1-cell LiPo under load, roughly: 4.1 V rested, sagging with the mean motor command and
/// discharging over about seven minutes of hover. Enough for `pm.vbat` to look like a battery.
#[derive(Default)]
struct Battery {
    used_as: f64,
}

impl Battery {
    fn step(&mut self, dt_ns: u64, motors: &[u16; 4]) {
        let load = motors.iter().map(|&m| f64::from(m)).sum::<f64>() / (4.0 * 65535.0);
        self.used_as += load * dt_ns as f64 * 1e-9;
    }

    fn volts(&self, motors: &[u16; 4]) -> f64 {
        let load = motors.iter().map(|&m| f64::from(m)).sum::<f64>() / (4.0 * 65535.0);
        (4.1 - 0.002 * self.used_as - 0.35 * load).max(3.0)
    }
}
