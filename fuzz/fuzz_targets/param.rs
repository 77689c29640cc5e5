//! Feeds arbitrary bytes to the cfclient parameter server's request decoder:
//! `depthpilot_runtime::zmq_client::parse_param_request`.
//! Invariants: nothing panics; a `set` names `group.name`; a decoded request written back as
//! cfclient's JSON decodes to the same request; a rejection says why.
#![no_main]

use depthpilot_runtime::zmq_client::{ParamRequest, parse_param_request};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    match parse_param_request(data) {
        Ok(req) => {
            let again = match &req {
                ParamRequest::Toc => json!({"version": 1, "cmd": "toc"}),
                ParamRequest::Set { name, value } => {
                    assert_eq!(name.split('.').count(), 2, "{name:?}");
                    json!({"version": 1, "cmd": "set", "name": name, "value": value})
                }
            };
            assert_eq!(parse_param_request(again.to_string().as_bytes()), Ok(req));
        }
        Err(e) => assert!(!e.is_empty()),
    }
});
