//! The network policy ([`depthpilot_types::netpolicy`]) applied to sockets: a checked bind and
//! the size limit of receiving sockets.

use crate::RuntimeError;
pub use depthpilot_types::netpolicy::{
    BindPolicy, MAX_BRIDGE_PART_BYTES, MAX_JSON_MESSAGE_BYTES, NetPolicyError, Role, Scope,
    check_bind, classify,
};

/// Sets `ZMQ_MAXMSGSIZE` for `role` on a receiving socket; call it before connect or bind (libzmq
/// reads it when a connection starts). A peer that sends more is disconnected before the
/// message is allocated.
pub fn limit_size(socket: &zmq::Socket, role: Role) -> Result<(), zmq::Error> {
    socket.set_maxmsgsize(role.max_message_bytes())
}

/// Binds `socket` (a ZMQ `kind`, for messages) to `endpoint` for `role` under `policy`: refused
/// when the endpoint is not loopback and the policy does not allow it; allowed with a WARNING
/// line on stderr when it does.
pub fn bind_checked(
    socket: &zmq::Socket,
    kind: &'static str,
    role: Role,
    endpoint: &str,
    policy: BindPolicy,
) -> Result<(), RuntimeError> {
    if let Some(warning) = check_bind(endpoint, role, policy)? {
        eprintln!("depthpilot: {warning}");
    }
    socket.bind(endpoint).map_err(|source| RuntimeError::Bind {
        kind,
        endpoint: endpoint.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::{BusEndpoints, BusVisionActor};
    use crate::zmq_client::ClientServers;
    use crate::zmq_teacher::ZmqTeacher;

    fn refused(r: Result<(), RuntimeError>, endpoint: &str, role: &str) {
        let Err(e) = r else {
            panic!("{role}: `{endpoint}` was bound");
        };
        let text = e.to_string();
        assert!(
            matches!(e, RuntimeError::Policy(NetPolicyError::Refused { .. })),
            "{text}"
        );
        for part in [
            format!("`{endpoint}`"),
            role.to_string(),
            "--insecure".into(),
        ] {
            assert!(text.contains(&part), "{part}: {text}");
        }
    }

    /// Every binding socket of the runtime refuses a non-loopback endpoint by default, and
    /// binds it under `AllowInsecure`.
    #[test]
    fn non_loopback_binds_are_refused_unless_insecure() {
        let ctx = zmq::Context::new();
        for any in ["tcp://*:*", "tcp://0.0.0.0:*"] {
            refused(ZmqTeacher::bind(any).map(drop), any, "teacher input");
            refused(
                ClientServers::bind(Some(any), None).map(drop),
                any,
                "parameter server",
            );
            refused(
                ClientServers::bind(None, Some(any)).map(drop),
                any,
                "LED server",
            );
            let bus = BusEndpoints {
                truth: "tcp://127.0.0.1:*".into(),
                measurements: any.into(),
                ..BusEndpoints::default()
            };
            refused(
                BusVisionActor::bind(&ctx, &bus).map(drop),
                any,
                "bus measurements",
            );
            let camera = depthpilot_camera::BridgePublisher::bind(&ctx, any)
                .map(drop)
                .map_err(|e| RuntimeError::Setup(e.to_string()));
            let text = camera.expect_err("the bridge PUB was bound").to_string();
            assert!(
                text.contains("refusing to bind the Kinect bridge socket"),
                "{text}"
            );
        }
        let insecure = BindPolicy::AllowInsecure;
        ZmqTeacher::bind_with("tcp://*:*", insecure).expect("teacher under --insecure");
        ClientServers::bind_with(Some("tcp://*:*"), Some("tcp://*:*"), insecure)
            .expect("servers under --insecure");
        let bus = BusEndpoints {
            truth: "tcp://*:*".into(),
            measurements: "tcp://*:*".into(),
            policy: insecure,
            curve: None,
        };
        BusVisionActor::bind(&ctx, &bus).expect("bus under --insecure");
        depthpilot_camera::BridgePublisher::bind_with(&ctx, "tcp://*:*", insecure)
            .expect("bridge under --insecure");
        // Garbage is named, insecure or not.
        let e = ZmqTeacher::bind_with("tcp://*", insecure)
            .map(drop)
            .expect_err("garbage");
        assert!(
            e.to_string().contains("`tcp://*` is not a ZMQ endpoint"),
            "{e}"
        );
    }
}
