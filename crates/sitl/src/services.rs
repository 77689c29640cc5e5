//! The parameter, log and memory services of the simulated Crazyflie (`param_logic.c`, `log.c`,
//! `mem.c`): request in, replies out, with the firmware's errno answers.
//!
//! Parameters of the firmware model (`ParamDecl::firmware`) are read from it and written to it
//! (queued on the plant, applied at its next step, as the param task stores a variable the
//! stabiliser reads at its next tick); `params` mirrors them for `SimCrazyflie::param`.

use crate::crazyflie::{
    E2BIG, EEXIST, EINVAL, ENOENT, ENOMEM, LED_MEM_SIZE, LED_MEM_TYPE, LOG_DATA_MAX, LogBlock,
    MAX_LOG_BLOCKS, MAX_LOG_OPS, SimCrazyflie, param_type_byte,
};
use crate::toc::{LOG_VARS, PARAMS, Ty};
use depthpilot_crtp::{
    Downlink, LogReply, LogRequest, LogVarSpec, MemReply, MemRequest, ParamReply, ParamRequest,
    TocItem,
};

impl SimCrazyflie {
    pub(crate) fn param_request(&mut self, p: ParamRequest) -> Vec<Downlink> {
        let reply = match p {
            ParamRequest::TocInfoV2 => ParamReply::TocInfoV2 {
                count: PARAMS.len() as u16,
                crc32: self.param_crc,
            },
            ParamRequest::TocItemV2 { id } => ParamReply::TocItemV2 {
                id,
                item: PARAMS.get(usize::from(id)).map(|p| TocItem {
                    type_byte: param_type_byte(p),
                    group: p.group.to_string(),
                    name: p.name.to_string(),
                }),
            },
            ParamRequest::Read { id } => match PARAMS.get(usize::from(id)) {
                Some(p) => ParamReply::ReadValue {
                    id,
                    status: 0,
                    value: p.ty.encode(self.param_value(usize::from(id))),
                },
                None => ParamReply::ReadValue {
                    id,
                    status: ENOENT,
                    value: Vec::new(),
                },
            },
            ParamRequest::Write { id, value } => {
                let Some(p) = PARAMS.get(usize::from(id)) else {
                    return vec![Downlink::Param(ParamReply::WriteAck {
                        id,
                        value: vec![ENOENT],
                    })];
                };
                if p.read_only {
                    // param_logic.c ignores writes to read-only parameters without an answer.
                    return Vec::new();
                }
                match p.ty.decode(&value) {
                    Some(v) => {
                        self.set_param(usize::from(id), v);
                        ParamReply::WriteAck {
                            id,
                            value: p.ty.encode(self.param_value(usize::from(id))),
                        }
                    }
                    None => ParamReply::WriteAck {
                        id,
                        value: vec![EINVAL],
                    },
                }
            }
            ParamRequest::SetByName {
                group,
                name,
                type_byte,
                value,
            } => {
                let found = PARAMS
                    .iter()
                    .position(|p| p.group == group && p.name == name);
                let result = match found {
                    None => ENOENT,
                    Some(i) if PARAMS[i].read_only => EINVAL,
                    Some(i) if type_byte & 0x0F != PARAMS[i].ty.param_code() => EINVAL,
                    Some(i) => match PARAMS[i].ty.decode(&value) {
                        Some(v) => {
                            self.set_param(i, v);
                            0
                        }
                        None => EINVAL,
                    },
                };
                ParamReply::SetByNameReply {
                    group,
                    name,
                    result,
                }
            }
            _ => return Vec::new(),
        };
        vec![Downlink::Param(reply)]
    }

    /// Stores a value as the parameter's C type would hold it: a firmware parameter in the
    /// firmware model, the Crazyflie's own here.
    pub(crate) fn set_param(&mut self, index: usize, v: f64) {
        let p = &PARAMS[index];
        let stored = p.ty.decode(&p.ty.encode(v)).unwrap_or(v);
        if p.firmware {
            let name = format!("{}.{}", p.group, p.name);
            // The wire value always fits the declared type, so the firmware takes it.
            if let Ok(v) = self.plant().queue_firmware_param(&name, stored) {
                self.params[index] = v;
            }
        } else {
            self.params[index] = stored;
        }
    }

    /// The parameter TOC with current values, for clients that list parameters by name (the
    /// ZMQ parameter server).
    pub fn param_entries(&self) -> Vec<ParamInfo> {
        PARAMS
            .iter()
            .enumerate()
            .map(|(i, p)| ParamInfo {
                name: format!("{}.{}", p.group, p.name),
                type_name: c_type_name(p.ty),
                writable: !p.read_only,
                value: self.param_value(i),
                is_float: matches!(p.ty, Ty::F32 | Ty::F16),
            })
            .collect()
    }

    /// Writes a parameter by `group.name` and returns the value the firmware stored (what a
    /// client reads back). Refused: unknown names, read-only parameters, values the C type
    /// cannot hold.
    pub fn set_param_by_name(&mut self, full_name: &str, value: f64) -> Result<f64, String> {
        let index = full_name
            .split_once('.')
            .and_then(|(g, n)| PARAMS.iter().position(|p| p.group == g && p.name == n))
            .ok_or_else(|| format!("unknown parameter `{full_name}`"))?;
        let p = &PARAMS[index];
        if p.read_only {
            return Err(format!("parameter `{full_name}` is read-only"));
        }
        if p.firmware {
            depthpilot_firmware::Firmware::writable(full_name, value).map_err(|e| e.to_string())?;
        } else if !fits(p.ty, value) {
            return Err(format!(
                "parameter `{full_name}` ({}) cannot hold {value}",
                c_type_name(p.ty)
            ));
        }
        self.set_param(index, value);
        Ok(self.param_value(index))
    }

    /// A parameter's current value: from the firmware model for its parameters.
    pub(crate) fn param_value(&self, index: usize) -> f64 {
        let p = &PARAMS[index];
        if p.firmware {
            let name = format!("{}.{}", p.group, p.name);
            if let Some(v) = self.plant().firmware_param(&name) {
                return v;
            }
        }
        self.params[index]
    }

    pub(crate) fn log_request(&mut self, l: LogRequest) -> Vec<Downlink> {
        let control = |command: u8, block_id: u8, result: u8| {
            vec![Downlink::Log(LogReply::ControlReply {
                command,
                block_id,
                result,
            })]
        };
        match l {
            LogRequest::TocInfoV2 => vec![Downlink::Log(LogReply::TocInfoV2 {
                count: LOG_VARS.len() as u16,
                crc32: self.log_crc,
                max_blocks: MAX_LOG_BLOCKS as u8,
                max_ops: MAX_LOG_OPS as u8,
            })],
            LogRequest::TocItemV2 { id } => vec![Downlink::Log(LogReply::TocItemV2 {
                id,
                item: LOG_VARS.get(usize::from(id)).map(|v| TocItem {
                    type_byte: v.ty.log_code(),
                    group: v.group.to_string(),
                    name: v.name.to_string(),
                }),
            })],
            LogRequest::CreateBlockV2 { block_id, vars } => {
                let r = self.create_block(block_id, &vars);
                control(6, block_id, r)
            }
            LogRequest::AppendBlockV2 { block_id, vars } => {
                let r = self.append_block(block_id, &vars);
                control(7, block_id, r)
            }
            LogRequest::DeleteBlock { block_id } => {
                let r = if self.blocks.remove(&block_id).is_some() {
                    0
                } else {
                    ENOENT
                };
                control(2, block_id, r)
            }
            LogRequest::StartBlock {
                block_id,
                period_10ms,
            } => {
                let r = self.start_block(block_id, u64::from(period_10ms) * 10_000_000);
                control(3, block_id, r)
            }
            LogRequest::StartBlockV2 {
                block_id,
                period_ms,
            } => {
                let r = self.start_block(block_id, u64::from(period_ms) * 1_000_000);
                control(8, block_id, r)
            }
            LogRequest::StopBlock { block_id } => {
                let r = match self.blocks.get_mut(&block_id) {
                    Some(b) => {
                        b.period_ns = None;
                        0
                    }
                    None => ENOENT,
                };
                control(4, block_id, r)
            }
            LogRequest::Reset => {
                self.blocks.clear();
                control(5, 0, 0)
            }
        }
    }

    fn ops_in_use(&self) -> usize {
        self.blocks.values().map(|b| b.vars.len()).sum()
    }

    fn resolve(vars: &[LogVarSpec]) -> Result<Vec<(usize, Ty)>, u8> {
        vars.iter()
            .map(|v| {
                let idx = usize::from(v.var_id);
                let toc = LOG_VARS.get(idx).ok_or(ENOENT)?;
                // Low nibble: the type to send it as (0: as stored).
                let ty = match v.log_type & 0x0F {
                    0 => toc.ty,
                    code => Ty::from_log_code(code).ok_or(EINVAL)?,
                };
                Ok((idx, ty))
            })
            .collect()
    }

    fn create_block(&mut self, block_id: u8, vars: &[LogVarSpec]) -> u8 {
        if self.blocks.contains_key(&block_id) {
            return EEXIST;
        }
        if self.blocks.len() >= MAX_LOG_BLOCKS {
            return ENOMEM;
        }
        let resolved = match Self::resolve(vars) {
            Ok(r) => r,
            Err(e) => return e,
        };
        if self.ops_in_use() + resolved.len() > MAX_LOG_OPS {
            return ENOMEM;
        }
        let block = LogBlock {
            vars: resolved,
            period_ns: None,
            next_ns: 0,
            once: false,
        };
        if block.size() > LOG_DATA_MAX {
            return E2BIG;
        }
        self.blocks.insert(block_id, block);
        0
    }

    fn append_block(&mut self, block_id: u8, vars: &[LogVarSpec]) -> u8 {
        let resolved = match Self::resolve(vars) {
            Ok(r) => r,
            Err(e) => return e,
        };
        if self.ops_in_use() + resolved.len() > MAX_LOG_OPS {
            return ENOMEM;
        }
        let Some(block) = self.blocks.get_mut(&block_id) else {
            return ENOENT;
        };
        let added: usize = resolved.iter().map(|(_, t)| t.size()).sum();
        if block.size() + added > LOG_DATA_MAX {
            return E2BIG;
        }
        block.vars.extend(resolved);
        0
    }

    fn start_block(&mut self, block_id: u8, period_ns: u64) -> u8 {
        let now_ns = self.plant().now_ns();
        match self.blocks.get_mut(&block_id) {
            Some(b) => {
                // log.c: period 0 sends one sample at once and stops.
                b.once = period_ns == 0;
                let p = period_ns.max(1_000_000);
                b.period_ns = Some(p);
                b.next_ns = if b.once { now_ns } else { now_ns + p };
                0
            }
            None => ENOENT,
        }
    }

    pub(crate) fn mem_request(&mut self, m: MemRequest) -> Vec<Downlink> {
        let reply = match m {
            MemRequest::GetNumber => MemReply::Number(1),
            MemRequest::GetDetails { id: 0 } => MemReply::Details {
                id: 0,
                mem_type: LED_MEM_TYPE,
                size: LED_MEM_SIZE as u32,
                addr: 0,
            },
            MemRequest::GetDetails { id } => MemReply::DetailsInvalid { id },
            MemRequest::Read { id, addr, len } => {
                let range = usize::try_from(addr)
                    .ok()
                    .and_then(|a| Some(a..a.checked_add(usize::from(len))?))
                    .filter(|r| r.end <= LED_MEM_SIZE);
                match (id, range) {
                    (0, Some(r)) => MemReply::Read {
                        id,
                        addr,
                        status: 0,
                        data: self.led_mem[r].to_vec(),
                    },
                    _ => MemReply::Read {
                        id,
                        addr,
                        status: EINVAL,
                        data: Vec::new(),
                    },
                }
            }
            MemRequest::Write { id, addr, data } => {
                let range = usize::try_from(addr)
                    .ok()
                    .and_then(|a| Some(a..a.checked_add(data.len())?))
                    .filter(|r| r.end <= LED_MEM_SIZE);
                let status = match (id, range) {
                    (0, Some(r)) => {
                        self.led_mem[r].copy_from_slice(&data);
                        0
                    }
                    _ => EINVAL,
                };
                MemReply::Write { id, addr, status }
            }
        };
        vec![Downlink::Mem(reply)]
    }
}

/// One parameter as [`SimCrazyflie::param_entries`] lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    /// `group.name`.
    pub name: String,
    /// The C type name cflib uses (`param.py`: `uint8_t`, `float`, ...).
    pub type_name: &'static str,
    pub writable: bool,
    pub value: f64,
    pub is_float: bool,
}

/// cflib's name of a param type (`ParamTocElement.types`).
fn c_type_name(ty: Ty) -> &'static str {
    match ty {
        Ty::U8 => "uint8_t",
        Ty::U16 => "uint16_t",
        Ty::U32 => "uint32_t",
        Ty::I8 => "int8_t",
        Ty::I16 => "int16_t",
        Ty::I32 => "int32_t",
        Ty::F32 => "float",
        Ty::F16 => "FP16",
    }
}

/// Whether a value fits a type exactly (integers whole and in range).
fn fits(ty: Ty, v: f64) -> bool {
    let whole_in = |lo: f64, hi: f64| v.fract() == 0.0 && (lo..=hi).contains(&v);
    v.is_finite()
        && match ty {
            Ty::U8 => whole_in(0.0, f64::from(u8::MAX)),
            Ty::U16 => whole_in(0.0, f64::from(u16::MAX)),
            Ty::U32 => whole_in(0.0, f64::from(u32::MAX)),
            Ty::I8 => whole_in(f64::from(i8::MIN), f64::from(i8::MAX)),
            Ty::I16 => whole_in(f64::from(i16::MIN), f64::from(i16::MAX)),
            Ty::I32 => whole_in(f64::from(i32::MIN), f64::from(i32::MAX)),
            Ty::F32 | Ty::F16 => true,
        }
}

#[cfg(test)]
mod param_tests {
    use crate::SimCrazyflie;
    use crate::toc::PARAMS;
    use depthpilot_crtp::{Downlink, Packet, ParamReply, ParamRequest, Uplink};
    use depthpilot_types::scene::parse;

    fn cf(quad: &str) -> SimCrazyflie {
        let scene = parse(&format!(
            "Scene(name: \"t\", duration_s: 10.0, settle_s: 1.0, quad: ({quad}), \
             setpoints: Hover(position_m: (0.0, 0.0, 1.0)))"
        ))
        .expect("scene");
        SimCrazyflie::new(&scene)
    }

    fn ask(cf: &mut SimCrazyflie, msg: Uplink) -> Vec<Downlink> {
        let bytes = msg.to_packet().expect("encodes").encode();
        cf.handle(&bytes)
            .iter()
            .map(|b| Downlink::decode(&Packet::decode(b).expect("packet")).expect("reply"))
            .collect()
    }

    fn id(name: &str) -> u16 {
        let (g, n) = name.split_once('.').expect("group.name");
        PARAMS
            .iter()
            .position(|p| p.group == g && p.name == n)
            .expect("in the TOC") as u16
    }

    #[test]
    fn a_written_flight_mode_reaches_the_firmware_at_the_next_step() {
        let mut cf = cf("");
        let id = id("flightmode.stabModeRoll");
        let r = ask(
            &mut cf,
            Uplink::Param(ParamRequest::Write { id, value: vec![0] }),
        );
        assert_eq!(
            r,
            vec![Downlink::Param(ParamReply::WriteAck { id, value: vec![0] })]
        );
        let read = ask(&mut cf, Uplink::Param(ParamRequest::Read { id }));
        assert_eq!(
            read,
            vec![Downlink::Param(ParamReply::ReadValue {
                id,
                status: 0,
                value: vec![0]
            })]
        );
        cf.step();
        assert_eq!(
            cf.plant().firmware().param("flightmode.stabModeRoll"),
            Some(0.0)
        );
    }

    #[test]
    fn set_by_name_answers_with_the_stored_value_or_says_why_not() {
        let mut cf = cf("");
        assert_eq!(cf.set_param_by_name("flightmode.yawMode", 1.0), Ok(1.0));
        assert_eq!(
            cf.set_param_by_name("pid_rate.roll_kp", 0.1),
            Ok(f64::from(0.1f32))
        );
        assert_eq!(cf.set_param_by_name("ring.effect", 7.0), Ok(7.0));
        assert!(cf.set_param_by_name("ring.effect", 7.5).is_err());
        assert!(cf.set_param_by_name("flightmode.yawMode", 300.0).is_err());
        assert!(cf.set_param_by_name("deck.bcLedRing", 0.0).is_err());
        assert!(cf.set_param_by_name("nope.nope", 0.0).is_err());
        cf.step();
        assert_eq!(cf.plant().firmware().param("flightmode.yawMode"), Some(1.0));
        let entries = cf.param_entries();
        let yaw = entries
            .iter()
            .find(|e| e.name == "flightmode.yawMode")
            .expect("listed");
        assert_eq!(
            (yaw.type_name, yaw.value, yaw.writable),
            ("uint8_t", 1.0, true)
        );
        assert_eq!(entries.len(), PARAMS.len());
    }

    #[test]
    fn reads_come_from_the_firmware_build_of_the_scene() {
        let mut cf = cf("variant: Cf21Brushless");
        let id = id("pid_rate.roll_kp");
        let r = ask(&mut cf, Uplink::Param(ParamRequest::Read { id }));
        assert_eq!(
            r,
            vec![Downlink::Param(ParamReply::ReadValue {
                id,
                status: 0,
                value: 200f32.to_le_bytes().to_vec()
            })]
        );
    }
}
