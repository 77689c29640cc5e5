//! `depthpilot bridge <uri>`: the client's ZMQ parameter and LED-ring servers (cfclient's 1213
//! and 1214 protocols) in front of a Crazyflie behind any link — a real one over a Crazyradio, or
//! a simulated one over UDP — without running cfclient.

use crate::{EXIT_BAD_INPUT, Failure};
use depthpilot_runtime::zmq_client::{
    ClientServers, DEFAULT_LED_ENDPOINT, DEFAULT_PARAM_ENDPOINT, LinkAccess,
};
use std::time::{Duration, Instant};

/// Arguments of `depthpilot bridge`.
#[derive(clap::Args, Debug)]
pub struct BridgeArgs {
    /// Link URI of the Crazyflie (radio://0/80/2M/E7E7E7E7E7, udp://127.0.0.1:19850, …).
    pub uri: String,
    /// Endpoint of the parameter server (REP).
    #[arg(long, default_value = DEFAULT_PARAM_ENDPOINT)]
    pub zmq_param: String,
    /// Endpoint of the LED-ring server (PULL).
    #[arg(long, default_value = DEFAULT_LED_ENDPOINT)]
    pub zmq_led: String,
    /// Stop after this many seconds (default: run until killed).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Allow binding a non-loopback endpoint (e.g. `tcp://*:PORT`): no authentication, no
    /// encryption, so anyone who reaches this host can use it; prints a WARNING. Without it such
    /// a bind is refused (bind loopback and tunnel, e.g. `ssh -L`).
    #[arg(long)]
    pub insecure: bool,
    /// CURVE (authenticated, encrypted) on the parameter and LED servers, keys from DIR (see
    /// `depthpilot keygen`): DIR/server.key, DIR/server.pub, and the clients allowed per role,
    /// DIR/allow/param/*.pub and DIR/allow/led/*.pub. They may then bind any interface without
    /// --insecure.
    #[arg(long, value_name = "DIR", conflicts_with = "insecure")]
    pub keys: Option<std::path::PathBuf>,
}

pub fn bridge(args: &BridgeArgs) -> Result<(), Failure> {
    let bad_input = |error: anyhow::Error| Failure {
        code: EXIT_BAD_INPUT,
        error,
    };
    depthpilot_radio::LinkUri::parse(&args.uri)
        .map_err(|e| bad_input(anyhow::Error::new(e).context("the link URI")))?;
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        return Err(bad_input(anyhow::anyhow!(
            "--duration must be a positive number of seconds, got {d}"
        )));
    }
    let keys = args
        .keys
        .as_deref()
        .map(crate::fly::load_server_keys)
        .transpose()?;
    let mut link = depthpilot_radio::open(&args.uri).map_err(|e| Failure {
        code: 3,
        error: anyhow::Error::new(e).context(format!("cannot connect to {}", args.uri)),
    })?;
    let mut servers = match &keys {
        Some(k) => ClientServers::bind_curve(Some(&args.zmq_param), Some(&args.zmq_led), k),
        None => ClientServers::bind_with(
            Some(&args.zmq_param),
            Some(&args.zmq_led),
            depthpilot_runtime::netpolicy::BindPolicy::from_insecure(args.insecure),
        ),
    }
    .map_err(|e| Failure {
        code: 1,
        error: anyhow::Error::new(e),
    })?;
    eprintln!(
        "depthpilot bridge: {} — parameters on {}, LED ring on {}",
        args.uri, args.zmq_param, args.zmq_led
    );
    let started = Instant::now();
    let limit = args.duration.map(Duration::from_secs_f64);
    while limit.is_none_or(|d| started.elapsed() < d) {
        for problem in servers.poll(&mut LinkAccess(link.as_mut())) {
            eprintln!("depthpilot bridge: {problem}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let s = &servers.stats;
    eprintln!(
        "depthpilot bridge: parameter requests {} ({} errors), LED writes {} ({} failed or skipped)",
        s.param_requests, s.param_errors, s.led_writes, s.led_errors
    );
    crate::sitl::print_auth("depthpilot bridge", &servers);
    Ok(())
}
