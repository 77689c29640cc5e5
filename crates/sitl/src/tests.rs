//! The simulated Crazyflie answers as the firmware does, byte for byte through the codec.

use crate::crazyflie::{E2BIG, EEXIST, EINVAL, ENOENT};
use crate::toc::{LOG_VARS, PARAMS};
use crate::{LED_MEM_SIZE, LED_MEM_TYPE, SimCrazyflie};
use depthpilot_crtp::{
    Downlink, GenericSetpoint, LinkReply, LinkRequest, LocalizationPacket, LogReply, LogRequest,
    LogVarSpec, MemReply, MemRequest, Packet, ParamReply, ParamRequest, PlatformReply,
    PlatformRequest, RpytSetpoint, SupervisorCommand, SupervisorReply, SupervisorState, Uplink,
};
use depthpilot_types::scene::parse;
use proptest::prelude::*;

fn cf() -> SimCrazyflie {
    let scene = parse("Scene(name: \"t\", duration_s: 10.0, settle_s: 1.0, seed: 1, setpoints: Hover(position_m: (0.0, 0.0, 1.0)))")
        .expect("scene");
    SimCrazyflie::new(&scene)
}

fn ask(cf: &mut SimCrazyflie, msg: Uplink) -> Vec<Downlink> {
    let bytes = msg.to_packet().expect("encodes").encode();
    cf.handle(&bytes)
        .iter()
        .map(|b| {
            let p = Packet::decode(b).expect("a CRTP packet");
            Downlink::decode(&p).expect("a valid reply")
        })
        .collect()
}

fn log_var(name: &str) -> u16 {
    let (g, n) = name.split_once('.').expect("group.name");
    LOG_VARS
        .iter()
        .position(|v| v.group == g && v.name == n)
        .expect("in the TOC") as u16
}

fn param_id(name: &str) -> u16 {
    let (g, n) = name.split_once('.').expect("group.name");
    PARAMS
        .iter()
        .position(|p| p.group == g && p.name == n)
        .expect("in the TOC") as u16
}

fn steps(cf: &mut SimCrazyflie, n: usize) -> Vec<Downlink> {
    let mut out = Vec::new();
    for _ in 0..n {
        for b in cf.step() {
            out.push(Downlink::decode(&Packet::decode(&b).expect("packet")).expect("reply"));
        }
    }
    out
}

#[test]
fn identifies_itself_as_a_crazyflie_with_protocol_12() {
    let mut cf = cf();
    let r = ask(&mut cf, Uplink::Link(LinkRequest::Source(vec![0])));
    let Downlink::Link(LinkReply::Source(s)) = &r[0] else {
        panic!("{r:?}")
    };
    assert!(s.starts_with(b"Bitcraze Crazyflie"));
    let r = ask(
        &mut cf,
        Uplink::Platform(PlatformRequest::GetProtocolVersion),
    );
    assert_eq!(
        r,
        vec![Downlink::Platform(PlatformReply::ProtocolVersion(12))]
    );
    assert_eq!(
        ask(&mut cf, Uplink::Null),
        vec![Downlink::Null],
        "scan probe"
    );
}

#[test]
fn tocs_list_every_entry_and_answer_out_of_range() {
    let mut cf = cf();
    let r = ask(&mut cf, Uplink::Log(LogRequest::TocInfoV2));
    let Downlink::Log(LogReply::TocInfoV2 { count, crc32, .. }) = r[0] else {
        panic!("{r:?}")
    };
    assert_eq!(usize::from(count), LOG_VARS.len());
    assert_ne!(crc32, 0);
    let id = log_var("stateEstimate.z");
    let r = ask(&mut cf, Uplink::Log(LogRequest::TocItemV2 { id }));
    let Downlink::Log(LogReply::TocItemV2 {
        item: Some(item), ..
    }) = &r[0]
    else {
        panic!("{r:?}")
    };
    assert_eq!(
        (item.group.as_str(), item.name.as_str(), item.type_byte),
        ("stateEstimate", "z", 7)
    );
    let r = ask(&mut cf, Uplink::Param(ParamRequest::TocItemV2 { id: 999 }));
    assert!(matches!(
        r[0],
        Downlink::Param(ParamReply::TocItemV2 { item: None, .. })
    ));
}

#[test]
fn params_read_write_and_refuse_what_the_firmware_refuses() {
    let mut cf = cf();
    let id = param_id("ring.effect");
    let read = |cf: &mut SimCrazyflie| ask(cf, Uplink::Param(ParamRequest::Read { id }));
    assert_eq!(
        read(&mut cf),
        vec![Downlink::Param(ParamReply::ReadValue {
            id,
            status: 0,
            value: vec![6]
        })]
    );
    let w = ask(
        &mut cf,
        Uplink::Param(ParamRequest::Write { id, value: vec![7] }),
    );
    assert_eq!(
        w,
        vec![Downlink::Param(ParamReply::WriteAck { id, value: vec![7] })]
    );
    assert_eq!(cf.param("ring.effect"), Some(7.0));
    // Read-only: ignored without an answer.
    let ro = param_id("deck.bcLedRing");
    assert!(
        ask(
            &mut cf,
            Uplink::Param(ParamRequest::Write {
                id: ro,
                value: vec![0]
            })
        )
        .is_empty()
    );
    assert_eq!(cf.param("deck.bcLedRing"), Some(1.0));
    // Unknown id and a value of the wrong size.
    let r = ask(
        &mut cf,
        Uplink::Param(ParamRequest::Write {
            id: 999,
            value: vec![1],
        }),
    );
    assert_eq!(
        r,
        vec![Downlink::Param(ParamReply::WriteAck {
            id: 999,
            value: vec![ENOENT]
        })]
    );
    let kp = param_id("pid_rate.roll_kp");
    let r = ask(
        &mut cf,
        Uplink::Param(ParamRequest::Write {
            id: kp,
            value: vec![1],
        }),
    );
    assert_eq!(
        r,
        vec![Downlink::Param(ParamReply::WriteAck {
            id: kp,
            value: vec![EINVAL]
        })]
    );
    // Set by name.
    let r = ask(
        &mut cf,
        Uplink::Param(ParamRequest::SetByName {
            group: "ring".into(),
            name: "effect".into(),
            type_byte: 0x08,
            value: vec![2],
        }),
    );
    assert!(matches!(
        &r[0],
        Downlink::Param(ParamReply::SetByNameReply { result: 0, .. })
    ));
    assert_eq!(cf.param("ring.effect"), Some(2.0));
}

#[test]
fn log_blocks_stream_at_their_period_and_report_errors_as_the_firmware() {
    let mut cf = cf();
    let z = LogVarSpec {
        log_type: 7,
        var_id: log_var("stateEstimate.z"),
    };
    let control = |r: Vec<Downlink>| match r.as_slice() {
        [Downlink::Log(LogReply::ControlReply { result, .. })] => *result,
        other => panic!("{other:?}"),
    };
    assert_eq!(control(ask(&mut cf, Uplink::Log(LogRequest::Reset))), 0);
    let create = |cf: &mut SimCrazyflie, vars: Vec<LogVarSpec>| {
        control(ask(
            cf,
            Uplink::Log(LogRequest::CreateBlockV2 { block_id: 1, vars }),
        ))
    };
    assert_eq!(create(&mut cf, vec![z]), 0);
    assert_eq!(create(&mut cf, vec![z]), EEXIST);
    let seven_floats = vec![z; 7];
    let r = ask(
        &mut cf,
        Uplink::Log(LogRequest::AppendBlockV2 {
            block_id: 1,
            vars: seven_floats,
        }),
    );
    assert_eq!(control(r), E2BIG, "4 + 28 bytes do not fit 26");
    let unknown = LogVarSpec {
        log_type: 7,
        var_id: 999,
    };
    let r = ask(
        &mut cf,
        Uplink::Log(LogRequest::CreateBlockV2 {
            block_id: 2,
            vars: vec![unknown],
        }),
    );
    assert_eq!(control(r), ENOENT);
    let r = ask(
        &mut cf,
        Uplink::Log(LogRequest::StartBlock {
            block_id: 1,
            period_10ms: 2,
        }),
    );
    assert_eq!(control(r), 0);
    let data: Vec<(u32, usize)> = steps(&mut cf, 100)
        .into_iter()
        .filter_map(|d| match d {
            Downlink::Log(LogReply::Data {
                block_id: 1,
                timestamp_ms,
                values,
            }) => Some((timestamp_ms, values.len())),
            _ => None,
        })
        .collect();
    assert_eq!(data.len(), 5, "100 ms at 20 ms: {data:?}");
    assert!(data.windows(2).all(|w| w[1].0 - w[0].0 == 20));
    assert!(data.iter().all(|(_, n)| *n == 4));
    let r = ask(&mut cf, Uplink::Log(LogRequest::StopBlock { block_id: 1 }));
    assert_eq!(control(r), 0);
    assert!(steps(&mut cf, 50).is_empty(), "stopped");
    let r = ask(
        &mut cf,
        Uplink::Log(LogRequest::DeleteBlock { block_id: 9 }),
    );
    assert_eq!(control(r), ENOENT);
}

#[test]
fn led_memory_is_listed_written_and_read_back() {
    let mut cf = cf();
    assert_eq!(
        ask(&mut cf, Uplink::Mem(MemRequest::GetNumber)),
        vec![Downlink::Mem(MemReply::Number(1))]
    );
    let r = ask(&mut cf, Uplink::Mem(MemRequest::GetDetails { id: 0 }));
    assert_eq!(
        r,
        vec![Downlink::Mem(MemReply::Details {
            id: 0,
            mem_type: LED_MEM_TYPE,
            size: LED_MEM_SIZE as u32,
            addr: 0
        })]
    );
    let pattern: Vec<u8> = (0..LED_MEM_SIZE as u8).collect();
    // Two writes, as cflib splits 24 bytes.
    for (addr, chunk) in [(0u32, &pattern[..20]), (20, &pattern[20..])] {
        let r = ask(
            &mut cf,
            Uplink::Mem(MemRequest::Write {
                id: 0,
                addr,
                data: chunk.to_vec(),
            }),
        );
        assert_eq!(
            r,
            vec![Downlink::Mem(MemReply::Write {
                id: 0,
                addr,
                status: 0
            })]
        );
    }
    assert_eq!(cf.led_memory().as_slice(), pattern.as_slice());
    let r = ask(
        &mut cf,
        Uplink::Mem(MemRequest::Read {
            id: 0,
            addr: 4,
            len: 3,
        }),
    );
    assert_eq!(
        r,
        vec![Downlink::Mem(MemReply::Read {
            id: 0,
            addr: 4,
            status: 0,
            data: vec![4, 5, 6]
        })]
    );
    let r = ask(
        &mut cf,
        Uplink::Mem(MemRequest::Write {
            id: 0,
            addr: 22,
            data: vec![1, 2, 3],
        }),
    );
    assert_eq!(
        r,
        vec![Downlink::Mem(MemReply::Write {
            id: 0,
            addr: 22,
            status: EINVAL
        })]
    );
}

#[test]
fn legacy_setpoints_fly_and_the_supervisor_estop_latches() {
    let mut cf = cf();
    let sp = |thrust| RpytSetpoint {
        roll_deg: 0.0,
        pitch_deg: 0.0,
        yaw_rate_deg_s: 0.0,
        thrust,
    };
    ask(&mut cf, Uplink::Commander(sp(0)));
    for _ in 0..50 {
        ask(&mut cf, Uplink::Commander(sp(45000)));
        steps(&mut cf, 10);
    }
    assert!(cf.plant().truth().pos_m.z > 0.1, "climbed");
    assert!(cf.plant().motor_cmd().iter().all(|&m| m > 0));
    assert!(
        ask(
            &mut cf,
            Uplink::Supervisor(SupervisorCommand::EmergencyStop)
        )
        .is_empty()
    );
    ask(&mut cf, Uplink::Commander(sp(45000)));
    steps(&mut cf, 5);
    assert_eq!(cf.plant().motor_cmd(), [0; 4]);
    let r = ask(
        &mut cf,
        Uplink::Supervisor(SupervisorCommand::GetStateBitfield),
    );
    let [Downlink::Supervisor(SupervisorReply::StateBitfield(bits))] = r.as_slice() else {
        panic!("{r:?}")
    };
    assert_ne!(bits & SupervisorState::IsLocked.bit(), 0);
    assert_eq!(bits & SupervisorState::CanFly.bit(), 0);
}

/// On-board control through the wire: external positions plus position setpoints, and the
/// firmware's own controller takes the quad there.
#[test]
fn external_position_and_position_setpoints_fly_the_on_board_controller() {
    let mut cf = cf();
    for k in 0..6000 {
        if k % 10 == 0 {
            let p = cf.plant().truth().pos_m;
            ask(
                &mut cf,
                Uplink::Localization(LocalizationPacket::ExternalPosition {
                    x_m: p.x as f32,
                    y_m: p.y as f32,
                    z_m: p.z as f32,
                }),
            );
            ask(
                &mut cf,
                Uplink::Generic(GenericSetpoint::Position {
                    x_m: 0.2,
                    y_m: 0.0,
                    z_m: 0.6,
                    yaw_deg: 0.0,
                }),
            );
        }
        steps(&mut cf, 1);
    }
    let p = cf.plant().truth().pos_m;
    assert!(
        (p - depthpilot_types::Vec3::new(0.2, 0.0, 0.6)).norm() < 0.06,
        "at {p:?}"
    );
    assert!(cf.stats().external_positions >= 600);
}

proptest! {
    /// Any datagram is answered or counted as bad; the simulated Crazyflie never panics.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut cf = cf();
        let before = cf.stats().bad_packets;
        let replies = cf.handle(&bytes);
        let valid = Packet::decode(&bytes).and_then(|p| Uplink::decode(&p)).is_ok();
        prop_assert_eq!(cf.stats().bad_packets, before + u64::from(!valid));
        if !valid {
            prop_assert!(replies.is_empty());
        }
    }
}
