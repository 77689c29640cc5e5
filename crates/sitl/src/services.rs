//! The parameter, log and memory services of the simulated Crazyflie (`param_logic.c`, `log.c`,
//! `mem.c`): request in, replies out, with the firmware's errno answers.

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
                    value: p.ty.encode(self.params[usize::from(id)]),
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
                            value: p.ty.encode(self.params[usize::from(id)]),
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

    /// Stores a value as the parameter's C type would hold it.
    fn set_param(&mut self, index: usize, v: f64) {
        let ty = PARAMS[index].ty;
        self.params[index] = ty.decode(&ty.encode(v)).unwrap_or(v);
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
