//! CRTP links (`radio://`, `udp://`): a `crazyflie_lib::Crazyflie` driven on a tokio runtime the
//! link owns.
//!
//! What connecting requires from the Crazyflie side (crazyflie-lib 0.8.2,
//! `Crazyflie::connect_from_link`): an answer to 13:1 `[0]` with protocol version 12 or 13
//! (there is no 15:1 "Bitcraze Crazyflie" check as in cflib); then, in parallel, the log TOC
//! (5:0 `GET_INFO_V2`/`GET_ITEM_V2`) followed by a log reset (5:1 `[5]`, whose reply must carry
//! status 0 — crazyflie-lib asserts it), the memory list (4:0 `[1]` count, then `[2, i]` details
//! for each memory) and the param TOC (2:0). Param values are not read at connect; each is read
//! lazily on first `param_get`. Nothing is retried and there is no timeout inside crazyflie-lib,
//! so this link bounds every call (connect, requests) with its own deadline.

use crate::link::{Link, LinkStats, LogSample, ParamAccess};
use crate::rt::{LinkRuntime, RunError};
use crate::udp::{UdpCloseReason, UdpConnection};
use crate::uri::LinkUri;
use crate::{LinkError, check_finite, usb};
use crazyflie_lib::subsystems::log::LogPeriod;
use crazyflie_lib::{Crazyflie, NoTocCache};
use crazyflie_link::{Connection, LinkContext};
use depthpilot_crtp::RpytSetpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::task::AbortHandle;

/// Deadlines of a CRTP link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrtpLinkConfig {
    /// Opening the radio plus the whole connection handshake (TOC fetch). A full firmware has
    /// several hundred log and param entries: a few seconds over the radio.
    pub connect_timeout: Duration,
    /// Each request with an answer (log block set-up, param read/write).
    pub request_timeout: Duration,
}

impl Default for CrtpLinkConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Enqueueing a packet on crazyflie-lib's uplink is local; this only bounds a wedged runtime.
const ENQUEUE_TIMEOUT: Duration = Duration::from_millis(500);
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A Crazyflie over the Crazyradio or over UDP, through crazyflie-lib.
pub struct CrtpLink {
    uri: String,
    config: CrtpLinkConfig,
    cf: Arc<Crazyflie>,
    log_tx: mpsc::Sender<LogSample>,
    log_rx: mpsc::Receiver<LogSample>,
    log_tasks: Vec<AbortHandle>,
    log_received: Arc<AtomicU64>,
    lost: Arc<Mutex<Option<String>>>,
    udp_reason: Option<UdpCloseReason>,
    stats: LinkStats,
    estopped: bool,
    // Declared last: dropped after `cf` (see `Drop`).
    rt: LinkRuntime,
}

impl CrtpLink {
    /// Connects to `radio://…` or `udp://…` with default deadlines.
    pub fn connect(uri: &str) -> Result<Self, LinkError> {
        Self::connect_with(uri, CrtpLinkConfig::default())
    }

    /// Connects to `radio://…` or `udp://…`.
    pub fn connect_with(uri: &str, config: CrtpLinkConfig) -> Result<Self, LinkError> {
        match LinkUri::parse(uri)? {
            LinkUri::Radio { dongle_index, .. } => Self::connect_radio(uri, dongle_index, config),
            LinkUri::Udp { .. } => {
                let conn = UdpConnection::open(uri)?;
                let reason = conn.close_reason();
                let rt = runtime(uri)?;
                Self::connect_on(
                    rt,
                    uri,
                    Connection::new(Box::new(conn)),
                    config,
                    Some(reason),
                )
            }
            _ => Err(LinkError::bad_uri(
                uri,
                "a CRTP link needs radio://… or udp://…",
            )),
        }
    }

    /// Connects crazyflie-lib over an already open link (any `ConnectionTrait`). A connection
    /// that spawned tokio tasks must keep its runtime alive for as long as this link lives.
    pub fn from_connection(
        uri: &str,
        connection: Connection,
        config: CrtpLinkConfig,
    ) -> Result<Self, LinkError> {
        Self::connect_on(runtime(uri)?, uri, connection, config, None)
    }

    fn connect_radio(
        uri: &str,
        dongle_index: usize,
        config: CrtpLinkConfig,
    ) -> Result<Self, LinkError> {
        // Never reach crazyradio's global rusb context unless a dongle is really there.
        usb::probe_crazyradio_nth(dongle_index)?;
        let rt = runtime(uri)?;
        let owned = uri.to_owned();
        let opened = rt.run(config.connect_timeout, async move {
            LinkContext::new().open_link(&owned).await
        });
        let connection = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(LinkError::Connect {
                    uri: uri.to_owned(),
                    reason: format!("crazyflie-link could not open the radio: {e}"),
                });
            }
            // The crazyradio crate panics when rusb's global context cannot start.
            Err(RunError::Panicked(m)) => {
                return Err(LinkError::NoUsb {
                    detail: format!("crazyradio panicked: {m}"),
                });
            }
            Err(e) => {
                return Err(run_error(
                    uri,
                    "opening the Crazyradio",
                    config.connect_timeout,
                    e,
                ));
            }
        };
        Self::connect_on(rt, uri, connection, config, None)
    }

    fn connect_on(
        rt: LinkRuntime,
        uri: &str,
        connection: Connection,
        config: CrtpLinkConfig,
        udp_reason: Option<UdpCloseReason>,
    ) -> Result<Self, LinkError> {
        let with_reason = |reason: String| match udp_reason.as_ref().and_then(UdpCloseReason::get) {
            Some(why) => format!("{reason} ({why})"),
            None => reason,
        };
        let cf = match rt.run(
            config.connect_timeout,
            Crazyflie::connect_from_link(connection, NoTocCache),
        ) {
            Ok(Ok(cf)) => Arc::new(cf),
            Ok(Err(crazyflie_lib::Error::ProtocolVersionNotSupported {
                min_supported,
                max_supported,
                found,
            })) => {
                return Err(LinkError::Connect {
                    uri: uri.to_owned(),
                    reason: format!(
                        "the Crazyflie speaks CRTP protocol version {found}, crazyflie-lib 0.8.2 supports {min_supported}-{max_supported}: update the firmware"
                    ),
                });
            }
            Ok(Err(e)) => {
                return Err(LinkError::Connect {
                    uri: uri.to_owned(),
                    reason: with_reason(e.to_string()),
                });
            }
            Err(RunError::Timeout) => {
                return Err(LinkError::Timeout {
                    uri: uri.to_owned(),
                    what: with_reason(
                        "the connection handshake (protocol version, log and param TOCs, memory list)"
                            .to_owned(),
                    ),
                    timeout_ms: millis(config.connect_timeout),
                });
            }
            Err(RunError::Panicked(m)) => {
                return Err(LinkError::Protocol {
                    uri: uri.to_owned(),
                    reason: with_reason(format!(
                        "crazyflie-lib panicked while connecting (malformed answer?): {m}"
                    )),
                });
            }
            Err(RunError::Gone) => {
                return Err(LinkError::Connect {
                    uri: uri.to_owned(),
                    reason: "the link runtime stopped".to_owned(),
                });
            }
        };
        let lost = Arc::new(Mutex::new(None));
        let (watch_cf, watch_lost) = (cf.clone(), lost.clone());
        rt.spawn(async move {
            let reason = watch_cf.wait_disconnect().await;
            *watch_lost.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        });
        let (log_tx, log_rx) = mpsc::channel();
        Ok(Self {
            uri: uri.to_owned(),
            config,
            cf,
            log_tx,
            log_rx,
            log_tasks: Vec::new(),
            log_received: Arc::new(AtomicU64::new(0)),
            lost,
            udp_reason,
            stats: LinkStats::default(),
            estopped: false,
            rt,
        })
    }

    /// Names ("group.name") of every log variable in the Crazyflie's TOC.
    pub fn log_names(&self) -> Vec<String> {
        self.cf.log.names()
    }

    /// Names ("group.name") of every parameter in the Crazyflie's TOC.
    pub fn param_names(&self) -> Vec<String> {
        self.cf.param.names()
    }

    fn lost_reason(&self) -> Option<String> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone();
        lost.or_else(|| self.udp_reason.as_ref().and_then(UdpCloseReason::get))
    }

    fn ready(&self) -> Result<(), LinkError> {
        if self.estopped {
            return Err(LinkError::estopped(&self.uri));
        }
        match self.lost_reason() {
            Some(reason) => Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Runs a crazyflie-lib call and maps its errors. `not_found` names what a missing TOC
    /// entry is ("parameter", "log variable").
    fn call<T, F>(
        &self,
        what: &str,
        name: &str,
        not_found: &'static str,
        timeout: Duration,
        fut: F,
    ) -> Result<T, LinkError>
    where
        T: Send + 'static,
        F: Future<Output = crazyflie_lib::Result<T>> + Send + 'static,
    {
        match self.rt.run(timeout, fut) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.map_cf_error(what, name, not_found, e)),
            Err(e) => Err(run_error(&self.uri, what, timeout, e)),
        }
    }

    fn map_cf_error(
        &self,
        what: &str,
        name: &str,
        not_found: &'static str,
        e: crazyflie_lib::Error,
    ) -> LinkError {
        use crazyflie_lib::Error as E;
        let uri = self.uri.clone();
        let not_found_error = || LinkError::NotFound {
            uri: self.uri.clone(),
            what: not_found,
            name: name.to_owned(),
        };
        match e {
            E::Disconnected => LinkError::Disconnected {
                uri,
                reason: self
                    .lost_reason()
                    .unwrap_or_else(|| "the Crazyflie link closed".to_owned()),
            },
            E::VariableNotFound => not_found_error(),
            E::ParamError(m) if m.contains("not found") => not_found_error(),
            E::Timeout => LinkError::Timeout {
                uri,
                what: what.to_owned(),
                timeout_ms: millis(self.config.request_timeout),
            },
            E::ParamError(m) | E::LogError(m) | E::InvalidArgument(m) | E::InvalidParameter(m) => {
                LinkError::Rejected {
                    uri,
                    what: what.to_owned(),
                    reason: m,
                }
            }
            other => LinkError::Protocol {
                uri,
                reason: format!("{what}: {other}"),
            },
        }
    }

    /// Enqueues one packet through crazyflie-lib (fire and forget).
    fn send<F>(&mut self, what: &str, fut: F) -> Result<(), LinkError>
    where
        F: Future<Output = crazyflie_lib::Result<()>> + Send + 'static,
    {
        let result = self
            .ready()
            .and_then(|()| self.call(what, "", "packet", ENQUEUE_TIMEOUT, fut));
        self.stats.record_send(&result);
        result
    }
}

fn runtime(uri: &str) -> Result<LinkRuntime, LinkError> {
    LinkRuntime::new().map_err(|source| LinkError::Io {
        uri: uri.to_owned(),
        source,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn run_error(uri: &str, what: &str, timeout: Duration, e: RunError) -> LinkError {
    match e {
        RunError::Timeout => LinkError::Timeout {
            uri: uri.to_owned(),
            what: what.to_owned(),
            timeout_ms: millis(timeout),
        },
        RunError::Panicked(m) => LinkError::Protocol {
            uri: uri.to_owned(),
            reason: format!("crazyflie-lib panicked during {what}: {m}"),
        },
        RunError::Gone => LinkError::Disconnected {
            uri: uri.to_owned(),
            reason: "the link runtime stopped".to_owned(),
        },
    }
}

impl Link for CrtpLink {
    fn uri(&self) -> &str {
        &self.uri
    }

    fn send_setpoint(&mut self, sp: &RpytSetpoint) -> Result<(), LinkError> {
        check_finite("setpoint", &[sp.roll_deg, sp.pitch_deg, sp.yaw_rate_deg_s])?;
        let (cf, sp) = (self.cf.clone(), *sp);
        // crazyflie-lib negates the pitch it is given (as cflib does); ours is already the wire
        // value, so hand it the user pitch.
        self.send("setpoint", async move {
            cf.commander
                .setpoint_rpyt(sp.roll_deg, -sp.pitch_deg, sp.yaw_rate_deg_s, sp.thrust)
                .await
        })
    }

    fn send_external_position(&mut self, pos_in_world_m: [f32; 3]) -> Result<(), LinkError> {
        check_finite("external position", &pos_in_world_m)?;
        let cf = self.cf.clone();
        self.send("external position", async move {
            cf.localization
                .external_pose
                .send_external_position(pos_in_world_m)
                .await
        })
    }

    fn send_position_setpoint(
        &mut self,
        pos_in_world_m: [f32; 3],
        yaw_deg: f32,
    ) -> Result<(), LinkError> {
        check_finite("position setpoint", &pos_in_world_m)?;
        check_finite("position setpoint yaw", &[yaw_deg])?;
        let cf = self.cf.clone();
        let [x, y, z] = pos_in_world_m;
        self.send("position setpoint", async move {
            cf.commander.setpoint_position(x, y, z, yaw_deg).await
        })
    }

    fn emergency_stop(&mut self) -> Result<(), LinkError> {
        let cf = self.cf.clone();
        let result = self.call(
            "emergency stop",
            "",
            "packet",
            ENQUEUE_TIMEOUT,
            async move { cf.supervisor.send_emergency_stop().await },
        );
        self.stats.record_send(&result);
        self.estopped = true;
        result
    }

    fn start_log(
        &mut self,
        name: &str,
        variables: &[&str],
        period_ms: u32,
    ) -> Result<(), LinkError> {
        self.ready()?;
        if variables.is_empty() {
            return Err(LinkError::InvalidArgument {
                what: "log block",
                reason: format!("block `{name}` has no variables"),
            });
        }
        if !(10..=2550).contains(&period_ms) {
            return Err(LinkError::InvalidArgument {
                what: "log period",
                reason: format!("{period_ms} ms; CRTP log periods are 10-2550 ms in 10 ms steps"),
            });
        }
        if let Some(missing) = variables
            .iter()
            .find(|v| !self.cf.log.names().iter().any(|n| n == *v))
        {
            return Err(LinkError::NotFound {
                uri: self.uri.clone(),
                what: "log variable",
                name: (*missing).to_owned(),
            });
        }
        let cf = self.cf.clone();
        let vars: Vec<String> = variables.iter().map(|v| (*v).to_owned()).collect();
        let block = name.to_owned();
        let tx = self.log_tx.clone();
        let counter = self.log_received.clone();
        let task = self.call(
            &format!("starting log block `{name}`"),
            name,
            "log variable",
            self.config.request_timeout,
            async move {
                let mut log_block = cf.log.create_block().await?;
                for v in &vars {
                    log_block.add_variable(v).await?;
                }
                let stream = log_block
                    .start(LogPeriod::from_millis(u64::from(period_ms))?)
                    .await?;
                let forward = tokio::spawn(async move {
                    loop {
                        let data = match stream.next().await {
                            Ok(data) => data,
                            Err(crazyflie_lib::Error::Disconnected) => break,
                            Err(_) => continue, // one malformed sample
                        };
                        let values = vars
                            .iter()
                            .map(|v| {
                                let value = data.data.get(v).map_or(f64::NAN, |x| x.to_f64_lossy());
                                (v.clone(), value)
                            })
                            .collect();
                        counter.fetch_add(1, Ordering::Relaxed);
                        let sample = LogSample {
                            block: block.clone(),
                            timestamp_ms: data.timestamp,
                            values,
                        };
                        if tx.send(sample).is_err() {
                            break;
                        }
                    }
                });
                Ok(forward.abort_handle())
            },
        )?;
        self.log_tasks.push(task);
        Ok(())
    }

    fn poll_log(&mut self) -> Result<Vec<LogSample>, LinkError> {
        let samples: Vec<LogSample> = self.log_rx.try_iter().collect();
        if samples.is_empty()
            && let Some(reason) = self.lost_reason()
        {
            return Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason,
            });
        }
        Ok(samples)
    }

    fn stats(&self) -> LinkStats {
        let cf = self.cf.clone();
        let quality = self
            .rt
            .run(Duration::from_millis(100), async move {
                cf.link_service.get_statistics().await.link_quality
            })
            .ok()
            .flatten();
        LinkStats {
            log_samples_received: self.log_received.load(Ordering::Relaxed),
            link_quality: quality,
            ..self.stats
        }
    }

    fn params(&mut self) -> Option<&mut dyn ParamAccess> {
        Some(self)
    }

    fn set_led_ring(&mut self, rgb: &[[u8; 3]; 12]) -> Result<(), LinkError> {
        use crazyflie_lib::subsystems::memory::{LedDriverMemory, MemoryType};
        self.ready()?;
        let (cf, rgb) = (self.cf.clone(), *rgb);
        self.call(
            "writing the LED ring",
            "LED driver memory",
            "memory",
            self.config.request_timeout,
            async move {
                let device = cf
                    .memory
                    .get_memories(Some(MemoryType::DriverLed))
                    .first()
                    .map(|d| (*d).clone())
                    .ok_or_else(|| {
                        crazyflie_lib::Error::MemoryError(
                            "no LED driver memory (LED-ring deck)".into(),
                        )
                    })?;
                let mut mem: LedDriverMemory =
                    cf.memory.open_memory(device).await.ok_or_else(|| {
                        crazyflie_lib::Error::MemoryError("the LED driver memory is busy".into())
                    })??;
                for (led, [r, g, b]) in mem.leds.iter_mut().zip(rgb) {
                    led.set(r, g, b, None);
                }
                let written = mem.write_leds().await;
                cf.memory.close_memory(mem).await?;
                written
            },
        )
    }
}

impl ParamAccess for CrtpLink {
    fn param_list(&mut self) -> Result<Vec<(String, String, bool)>, LinkError> {
        use crazyflie_lib::ValueType as V;
        let mut out = Vec::new();
        for name in self.cf.param.names() {
            let ty = match self.cf.param.get_type(&name) {
                Ok(V::U8) => "uint8_t",
                Ok(V::U16) => "uint16_t",
                Ok(V::U32) => "uint32_t",
                Ok(V::U64) => "uint64_t",
                Ok(V::I8) => "int8_t",
                Ok(V::I16) => "int16_t",
                Ok(V::I32) => "int32_t",
                Ok(V::I64) => "int64_t",
                Ok(V::F16) => "FP16",
                Ok(V::F32) => "float",
                Ok(V::F64) => "double",
                Err(_) => continue,
            };
            let writable = self.cf.param.is_writable(&name).unwrap_or(false);
            out.push((name, ty.to_string(), writable));
        }
        Ok(out)
    }

    fn param_get(&mut self, name: &str) -> Result<f64, LinkError> {
        if let Some(reason) = self.lost_reason() {
            return Err(LinkError::Disconnected {
                uri: self.uri.clone(),
                reason,
            });
        }
        let (cf, owned) = (self.cf.clone(), name.to_owned());
        self.call(
            &format!("reading parameter `{name}`"),
            name,
            "parameter",
            self.config.request_timeout,
            async move { cf.param.get_lossy(&owned).await },
        )
    }

    fn param_set(&mut self, name: &str, value: f64) -> Result<(), LinkError> {
        self.ready()?;
        if !value.is_finite() {
            return Err(LinkError::InvalidArgument {
                what: "parameter value",
                reason: format!("{name} = {value}"),
            });
        }
        let writable = self
            .cf
            .param
            .is_writable(name)
            .map_err(|e| self.map_cf_error("writing a parameter", name, "parameter", e))?;
        if !writable {
            return Err(LinkError::Rejected {
                uri: self.uri.clone(),
                what: format!("writing parameter `{name}`"),
                reason: "the parameter is read-only".to_owned(),
            });
        }
        let (cf, owned) = (self.cf.clone(), name.to_owned());
        self.call(
            &format!("writing parameter `{name}`"),
            name,
            "parameter",
            self.config.request_timeout,
            async move { cf.param.set_lossy(&owned, value).await },
        )
    }
}

impl Drop for CrtpLink {
    fn drop(&mut self) {
        for task in &self.log_tasks {
            task.abort();
        }
        // Best effort: stop crazyflie-lib's tasks and close the link (radio: stop polling).
        let cf = self.cf.clone();
        let _ = self
            .rt
            .run(DISCONNECT_TIMEOUT, async move { cf.disconnect().await });
    }
}
