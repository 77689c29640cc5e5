//! The radio actor: owns one Crazyflie link (any backend of `depthpilot-radio`) and does its
//! blocking I/O on its own thread (an actix `SyncArbiter`), so the control loop only ever posts
//! messages. Log samples flow back through a channel.

use actix::prelude::*;
use depthpilot_crtp::RpytSetpoint;
use depthpilot_radio::{Link, LinkError, LinkStats, LogSample};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the control loop asks of the radio. Fire and forget, except where a reply channel is
/// included.
#[derive(Message)]
#[rtype(result = "()")]
pub enum RadioCommand {
    Setpoint(RpytSetpoint),
    ExternalPosition([f32; 3]),
    PositionSetpoint {
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    },
    EmergencyStop,
    /// Fetch what arrived from the Crazyflie (log samples go to the samples channel).
    Poll,
    StartLog {
        name: String,
        variables: Vec<String>,
        period_ms: u32,
        reply: mpsc::Sender<Result<(), LinkError>>,
    },
    Stats(mpsc::Sender<RadioStats>),
}

/// The link's counters plus the actor's own.
#[derive(Clone, Debug, Default)]
pub struct RadioStats {
    pub link: LinkStats,
    /// Commands the link refused (each also counted in `link.send_errors` where it got that far).
    pub errors: u64,
    pub last_error: Option<String>,
}

/// See the module doc.
pub struct RadioActor {
    link: Box<dyn Link>,
    samples: mpsc::Sender<LogSample>,
    errors: u64,
    last_error: Option<String>,
}

impl Actor for RadioActor {
    type Context = SyncContext<Self>;
}

impl RadioActor {
    fn note<T>(&mut self, r: Result<T, LinkError>) {
        if let Err(e) = r {
            self.errors += 1;
            self.last_error = Some(e.to_string());
        }
    }
}

impl Handler<RadioCommand> for RadioActor {
    type Result = ();

    fn handle(&mut self, msg: RadioCommand, _ctx: &mut Self::Context) {
        match msg {
            RadioCommand::Setpoint(sp) => {
                let r = self.link.send_setpoint(&sp);
                self.note(r);
            }
            RadioCommand::ExternalPosition(p) => {
                let r = self.link.send_external_position(p);
                self.note(r);
            }
            RadioCommand::PositionSetpoint {
                pos_in_world_m,
                yaw_deg,
            } => {
                let r = self.link.send_position_setpoint(pos_in_world_m, yaw_deg);
                self.note(r);
            }
            RadioCommand::EmergencyStop => {
                let r = self.link.emergency_stop();
                self.note(r);
            }
            RadioCommand::Poll => match self.link.poll_log() {
                Ok(samples) => {
                    for s in samples {
                        // The loop went away: nothing left to deliver to.
                        if self.samples.send(s).is_err() {
                            break;
                        }
                    }
                }
                Err(e) => self.note::<()>(Err(e)),
            },
            RadioCommand::StartLog {
                name,
                variables,
                period_ms,
                reply,
            } => {
                let vars: Vec<&str> = variables.iter().map(String::as_str).collect();
                let r = self.link.start_log(&name, &vars, period_ms);
                let _ = reply.send(r);
            }
            RadioCommand::Stats(reply) => {
                let _ = reply.send(RadioStats {
                    link: self.link.stats(),
                    errors: self.errors,
                    last_error: self.last_error.clone(),
                });
            }
        }
    }
}

/// A running radio actor with its own actix system thread.
pub struct Radio {
    addr: Addr<RadioActor>,
    system: System,
    thread: Option<JoinHandle<()>>,
    /// Log samples from the Crazyflie.
    pub samples: mpsc::Receiver<LogSample>,
}

impl Radio {
    /// Starts the actor around `link`.
    pub fn spawn(link: Box<dyn Link>) -> Self {
        let (samples_tx, samples) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let slot = Arc::new(Mutex::new(Some((link, samples_tx))));
        let thread = std::thread::spawn(move || {
            let system = System::new();
            let addr = system.block_on(async move {
                SyncArbiter::start(1, move || {
                    let (link, samples) = slot
                        .lock()
                        .ok()
                        .and_then(|mut s| s.take())
                        .expect("the radio actor is started once (its link cannot be cloned)");
                    RadioActor {
                        link,
                        samples,
                        errors: 0,
                        last_error: None,
                    }
                })
            });
            let _ = ready_tx.send((addr, System::current()));
            let _ = system.run();
        });
        let (addr, system) = ready_rx
            .recv()
            .expect("the radio actor's system thread starts");
        Self {
            addr,
            system,
            thread: Some(thread),
            samples,
        }
    }

    pub fn send(&self, cmd: RadioCommand) {
        self.addr.do_send(cmd);
    }

    /// Starts a log block and waits for the Crazyflie's answer.
    pub fn start_log(
        &self,
        name: &str,
        variables: &[&str],
        period_ms: u32,
    ) -> Result<(), LinkError> {
        let (reply, rx) = mpsc::channel();
        self.send(RadioCommand::StartLog {
            name: name.to_string(),
            variables: variables.iter().map(|v| v.to_string()).collect(),
            period_ms,
            reply,
        });
        rx.recv().unwrap_or_else(|_| {
            Err(LinkError::Disconnected {
                uri: String::new(),
                reason: "the radio actor stopped".to_string(),
            })
        })
    }

    pub fn stats(&self) -> RadioStats {
        let (reply, rx) = mpsc::channel();
        self.send(RadioCommand::Stats(reply));
        rx.recv().unwrap_or_default()
    }
}

impl Drop for Radio {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
