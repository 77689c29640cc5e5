//! A scripted in-memory link for tests of generic code: records everything it is sent, plays
//! back log samples and parameter values the test pushes, and fails when told to.

use crate::link::{Link, LinkStats, LogSample, ParamAccess};
use crate::{LinkError, check_finite};
use depthpilot_crtp::RpytSetpoint;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One thing a [`MemoryLink`] was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Sent {
    Setpoint(RpytSetpoint),
    ExternalPosition([f32; 3]),
    PositionSetpoint {
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    },
    EmergencyStop,
    StartLog {
        name: String,
        variables: Vec<String>,
        period_ms: u32,
    },
    ParamSet {
        name: String,
        value: f64,
    },
}

#[derive(Default)]
struct State {
    sent: Vec<Sent>,
    log_queue: VecDeque<LogSample>,
    params: BTreeMap<String, f64>,
    failures: VecDeque<LinkError>,
    disconnected: Option<String>,
    stats: LinkStats,
    estopped: bool,
}

/// The fake link. Move it into the code under test; keep a [`MemoryLinkHandle`] to script it.
pub struct MemoryLink {
    uri: String,
    state: Arc<Mutex<State>>,
}

/// Shared view of a [`MemoryLink`]'s state, usable after the link was boxed.
#[derive(Clone)]
pub struct MemoryLinkHandle {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryLink {
    pub fn new(uri: &str) -> Self {
        Self {
            uri: uri.to_owned(),
            state: Arc::default(),
        }
    }

    pub fn handle(&self) -> MemoryLinkHandle {
        MemoryLinkHandle {
            state: self.state.clone(),
        }
    }

    /// Records a command unless a scripted failure, a disconnect or the e-stop latch applies.
    fn record(&mut self, sent: Sent) -> Result<(), LinkError> {
        let mut s = lock(&self.state);
        let result = if s.estopped {
            Err(LinkError::estopped(&self.uri))
        } else if let Some(reason) = s.disconnected.clone() {
            Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason,
            })
        } else if let Some(e) = s.failures.pop_front() {
            Err(e)
        } else {
            s.sent.push(sent);
            Ok(())
        };
        s.stats.record_send(&result);
        result
    }
}

impl MemoryLinkHandle {
    /// Everything recorded so far.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.state).sent.clone()
    }

    /// The legacy setpoints recorded so far.
    pub fn setpoints(&self) -> Vec<RpytSetpoint> {
        lock(&self.state)
            .sent
            .iter()
            .filter_map(|s| match s {
                Sent::Setpoint(sp) => Some(*sp),
                _ => None,
            })
            .collect()
    }

    /// Queues a log sample for the next `poll_log`.
    pub fn push_log(&self, sample: LogSample) {
        lock(&self.state).log_queue.push_back(sample);
    }

    /// Sets a parameter value `param_get` will return.
    pub fn set_param(&self, name: &str, value: f64) {
        lock(&self.state).params.insert(name.to_owned(), value);
    }

    /// The next command fails with `error` (queued: several calls fail several commands).
    pub fn fail_next(&self, error: LinkError) {
        lock(&self.state).failures.push_back(error);
    }

    /// From now on every command fails with `Disconnected { reason }`.
    pub fn disconnect(&self, reason: &str) {
        lock(&self.state).disconnected = Some(reason.to_owned());
    }
}

impl Link for MemoryLink {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn send_setpoint(&mut self, sp: &RpytSetpoint) -> Result<(), LinkError> {
        check_finite("setpoint", &[sp.roll_deg, sp.pitch_deg, sp.yaw_rate_deg_s])?;
        self.record(Sent::Setpoint(*sp))
    }

    fn send_external_position(&mut self, pos_in_world_m: [f32; 3]) -> Result<(), LinkError> {
        check_finite("external position", &pos_in_world_m)?;
        self.record(Sent::ExternalPosition(pos_in_world_m))
    }

    fn send_position_setpoint(
        &mut self,
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    ) -> Result<(), LinkError> {
        check_finite("position setpoint", &pos_in_world_m)?;
        check_finite("position setpoint yaw", &[yaw_deg])?;
        self.record(Sent::PositionSetpoint {
            pos_in_world_m,
            yaw_deg,
        })
    }

    fn emergency_stop(&mut self) -> Result<(), LinkError> {
        let result = self.record(Sent::EmergencyStop);
        lock(&self.state).estopped = true;
        result
    }

    fn start_log(
        &mut self,
        name: &str,
        variables: &[&str],
        period_ms: u32,
    ) -> Result<(), LinkError> {
        self.record(Sent::StartLog {
            name: name.to_owned(),
            variables: variables.iter().map(|v| (*v).to_owned()).collect(),
            period_ms,
        })
    }

    fn poll_log(&mut self) -> Result<Vec<LogSample>, LinkError> {
        let mut s = lock(&self.state);
        let samples: Vec<LogSample> = s.log_queue.drain(..).collect();
        s.stats.log_samples_received += samples.len() as u64;
        Ok(samples)
    }

    fn stats(&self) -> LinkStats {
        lock(&self.state).stats
    }

    fn params(&mut self) -> Option<&mut dyn ParamAccess> {
        Some(self)
    }
}

impl ParamAccess for MemoryLink {
    fn param_get(&mut self, name: &str) -> Result<f64, LinkError> {
        lock(&self.state)
            .params
            .get(name)
            .copied()
            .ok_or_else(|| LinkError::NotFound {
                uri: self.uri.clone(),
                what: "parameter",
                name: name.to_owned(),
            })
    }

    fn param_set(&mut self, name: &str, value: f64) -> Result<(), LinkError> {
        if !lock(&self.state).params.contains_key(name) {
            return Err(LinkError::NotFound {
                uri: self.uri.clone(),
                what: "parameter",
                name: name.to_owned(),
            });
        }
        self.record(Sent::ParamSet {
            name: name.to_owned(),
            value,
        })?;
        lock(&self.state).params.insert(name.to_owned(), value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkErrorKind;

    /// Generic code sees the fake only through `dyn Link`.
    fn fly_one_step(link: &mut dyn Link) -> Result<(), LinkError> {
        link.send_setpoint(&RpytSetpoint {
            roll_deg: 1.0,
            pitch_deg: -2.0,
            yaw_rate_deg_s: 3.0,
            thrust: 40000,
        })
    }

    #[test]
    fn records_scripts_and_fails_on_demand() {
        let link = MemoryLink::new("memory://test");
        let h = link.handle();
        let mut boxed: Box<dyn Link> = Box::new(link);
        fly_one_step(boxed.as_mut()).expect("ok");
        boxed.send_external_position([1.0, 2.0, 0.5]).expect("ok");
        assert_eq!(h.setpoints().len(), 1);
        assert_eq!(h.sent()[1], Sent::ExternalPosition([1.0, 2.0, 0.5]));

        h.fail_next(LinkError::Timeout {
            uri: "memory://test".into(),
            what: "setpoint".into(),
            timeout_ms: 1,
        });
        assert_eq!(
            fly_one_step(boxed.as_mut()).expect_err("scripted").kind(),
            LinkErrorKind::Timeout
        );
        fly_one_step(boxed.as_mut()).expect("only one failure was scripted");

        h.push_log(LogSample {
            block: "b".into(),
            timestamp_ms: 10,
            values: vec![("pm.vbat".into(), 3.7)],
        });
        let samples = boxed.poll_log().expect("poll");
        assert_eq!(samples[0].get("pm.vbat"), Some(3.7));
        assert!(boxed.poll_log().expect("poll").is_empty());

        h.set_param("stabilizer.estimator", 2.0);
        let params = boxed.params().expect("params");
        assert_eq!(params.param_get("stabilizer.estimator").expect("get"), 2.0);
        params.param_set("stabilizer.estimator", 1.0).expect("set");
        assert_eq!(params.param_get("stabilizer.estimator").expect("get"), 1.0);
        assert_eq!(
            params.param_get("x.y").expect_err("unknown").kind(),
            LinkErrorKind::NotFound
        );

        boxed.emergency_stop().expect("estop");
        assert_eq!(
            fly_one_step(boxed.as_mut()).expect_err("latched").kind(),
            LinkErrorKind::EmergencyStopped
        );
        let stats = boxed.stats();
        assert_eq!(
            (
                stats.packets_sent,
                stats.send_errors,
                stats.log_samples_received
            ),
            (5, 2, 1)
        );
    }

    #[test]
    fn disconnect_fails_everything() {
        let mut link = MemoryLink::new("memory://test");
        link.handle().disconnect("unplugged");
        let e = fly_one_step(&mut link).expect_err("gone");
        assert_eq!(e.kind(), LinkErrorKind::Disconnected);
        assert!(e.to_string().contains("unplugged"));
    }
}
