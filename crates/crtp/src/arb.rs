//! Proptest strategies producing every [`Uplink`] and [`Downlink`] variant, within the wire's
//! limits (30 data bytes, NUL-free names, finite floats, `Other` only on unmodelled ports).

use crate::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};

fn finite() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("finite", |f| f.is_finite())
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// A TOC-style name: short, NUL-free, sometimes non-ASCII (at most 12 bytes).
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_é]{0,6}"
}

/// NUL-free text of at most 29 bytes.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[ -~]{0,29}", "[a-zé .]{0,14}"]
}

fn toc_item() -> impl Strategy<Value = TocItem> {
    (any::<u8>(), name(), name()).prop_map(|(type_byte, group, name)| TocItem {
        type_byte,
        group,
        name,
    })
}

fn other_packet(ports: &'static [u8]) -> impl Strategy<Value = Packet> {
    prop_oneof![
        (prop::sample::select(ports), 0u8..4, bytes(30))
            .prop_map(|(port, ch, data)| Packet::raw(port, ch, data).expect("in range")),
        vec(any::<u8>(), 1..=30).prop_map(|data| Packet::raw(15, 3, data).expect("in range")),
    ]
}

fn link_request() -> BoxedStrategy<LinkRequest> {
    prop_oneof![
        bytes(30).prop_map(LinkRequest::Echo),
        bytes(30).prop_map(LinkRequest::Source),
        bytes(30).prop_map(LinkRequest::Sink),
    ]
    .boxed()
}

fn platform_request() -> BoxedStrategy<PlatformRequest> {
    prop_oneof![
        any::<bool>().prop_map(PlatformRequest::SetContinuousWave),
        any::<bool>().prop_map(PlatformRequest::RequestArming),
        Just(PlatformRequest::RequestCrashRecovery),
        any::<bool>().prop_map(|success| PlatformRequest::UserNotification { success }),
        Just(PlatformRequest::GetProtocolVersion),
        Just(PlatformRequest::GetFirmwareVersion),
        Just(PlatformRequest::GetDeviceTypeName),
        bytes(30).prop_map(PlatformRequest::AppChannel),
    ]
    .boxed()
}

fn param_misc() -> impl Strategy<Value = ParamMisc> {
    prop::sample::select(vec![
        ParamMisc::GetExtendedType,
        ParamMisc::PersistentStore,
        ParamMisc::PersistentGetState,
        ParamMisc::PersistentClear,
        ParamMisc::GetDefaultValue,
        ParamMisc::GetExtendedTypeV2,
        ParamMisc::GetDefaultValueV2,
    ])
}

fn param_request() -> BoxedStrategy<ParamRequest> {
    prop_oneof![
        Just(ParamRequest::TocInfoV2),
        any::<u16>().prop_map(|id| ParamRequest::TocItemV2 { id }),
        any::<u16>().prop_map(|id| ParamRequest::Read { id }),
        (any::<u16>(), bytes(28)).prop_map(|(id, value)| ParamRequest::Write { id, value }),
        (name(), name(), any::<u8>())
            .prop_flat_map(|(g, n, t)| {
                let room = 30 - 4 - g.len() - n.len();
                (Just(g), Just(n), Just(t), bytes(room))
            })
            .prop_map(|(group, name, type_byte, value)| ParamRequest::SetByName {
                group,
                name,
                type_byte,
                value
            }),
        (param_misc(), any::<u16>()).prop_map(|(command, id)| ParamRequest::Misc { command, id }),
    ]
    .boxed()
}

fn log_vars() -> impl Strategy<Value = Vec<LogVarSpec>> {
    vec(
        (any::<u8>(), any::<u16>()).prop_map(|(log_type, var_id)| LogVarSpec { log_type, var_id }),
        0..=9,
    )
}

fn log_request() -> BoxedStrategy<LogRequest> {
    prop_oneof![
        Just(LogRequest::TocInfoV2),
        any::<u16>().prop_map(|id| LogRequest::TocItemV2 { id }),
        (any::<u8>(), log_vars())
            .prop_map(|(block_id, vars)| LogRequest::CreateBlockV2 { block_id, vars }),
        (any::<u8>(), log_vars())
            .prop_map(|(block_id, vars)| LogRequest::AppendBlockV2 { block_id, vars }),
        any::<u8>().prop_map(|block_id| LogRequest::DeleteBlock { block_id }),
        (any::<u8>(), any::<u8>()).prop_map(|(block_id, period_10ms)| LogRequest::StartBlock {
            block_id,
            period_10ms
        }),
        (any::<u8>(), any::<u16>()).prop_map(|(block_id, period_ms)| LogRequest::StartBlockV2 {
            block_id,
            period_ms
        }),
        any::<u8>().prop_map(|block_id| LogRequest::StopBlock { block_id }),
        Just(LogRequest::Reset),
    ]
    .boxed()
}

fn mem_request() -> BoxedStrategy<MemRequest> {
    prop_oneof![
        Just(MemRequest::GetNumber),
        any::<u8>().prop_map(|id| MemRequest::GetDetails { id }),
        (any::<u8>(), any::<u32>(), any::<u8>()).prop_map(|(id, addr, len)| MemRequest::Read {
            id,
            addr,
            len
        }),
        (any::<u8>(), any::<u32>(), bytes(25)).prop_map(|(id, addr, data)| MemRequest::Write {
            id,
            addr,
            data
        }),
    ]
    .boxed()
}

fn rpyt() -> impl Strategy<Value = RpytSetpoint> {
    (finite(), finite(), finite(), any::<u16>()).prop_map(|(r, p, y, thrust)| RpytSetpoint {
        roll_deg: r,
        pitch_deg: p,
        yaw_rate_deg_s: y,
        thrust,
    })
}

fn f4() -> impl Strategy<Value = [f32; 4]> {
    [finite(), finite(), finite(), finite()]
}

fn i3() -> impl Strategy<Value = [i16; 3]> {
    [any::<i16>(), any::<i16>(), any::<i16>()]
}

fn generic_setpoint() -> BoxedStrategy<GenericSetpoint> {
    use GenericSetpoint as G;
    Union::new(vec![
        Just(G::Stop).boxed(),
        f4().prop_map(|[a, b, c, d]| G::VelocityWorldLegacy {
            vx_m_s: a,
            vy_m_s: b,
            vz_m_s: c,
            yaw_rate_deg_s: d,
        })
        .boxed(),
        f4().prop_map(|[a, b, c, d]| G::ZDistanceLegacy {
            roll_deg: a,
            pitch_deg: b,
            yaw_rate_deg_s: c,
            z_m: d,
        })
        .boxed(),
        (
            [any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()],
            vec(any::<u16>(), 0..=MAX_CPPM_AUX_CHANNELS),
            0u8..16,
        )
            .prop_map(|([r, p, y, t], aux_us, reserved)| G::CppmEmulation {
                roll_us: r,
                pitch_us: p,
                yaw_us: y,
                thrust_us: t,
                aux_us,
                reserved,
            })
            .boxed(),
        f4().prop_map(|[a, b, c, d]| G::AltHold {
            roll_deg: a,
            pitch_deg: b,
            yaw_rate_deg_s: c,
            vz_m_s: d,
        })
        .boxed(),
        f4().prop_map(|[a, b, c, d]| G::HoverLegacy {
            vx_m_s: a,
            vy_m_s: b,
            yaw_rate_deg_s: c,
            z_m: d,
        })
        .boxed(),
        (i3(), i3(), i3(), any::<u32>(), i3())
            .prop_map(
                |(pos_mm, vel_mm_s, acc_mm_s2, quat_compressed, rate_mrad_s)| {
                    G::FullState(FullStateSetpoint {
                        pos_mm,
                        vel_mm_s,
                        acc_mm_s2,
                        quat_compressed,
                        rate_mrad_s,
                    })
                },
            )
            .boxed(),
        f4().prop_map(|[a, b, c, d]| G::Position {
            x_m: a,
            y_m: b,
            z_m: c,
            yaw_deg: d,
        })
        .boxed(),
        f4().prop_map(|[a, b, c, d]| G::VelocityWorld {
            vx_m_s: a,
            vy_m_s: b,
            vz_m_s: c,
            yaw_rate_deg_s: d,
        })
        .boxed(),
        f4().prop_map(|[a, b, c, d]| G::ZDistance {
            roll_deg: a,
            pitch_deg: b,
            yaw_rate_deg_s: c,
            z_m: d,
        })
        .boxed(),
        f4().prop_map(|[a, b, c, d]| G::Hover {
            vx_m_s: a,
            vy_m_s: b,
            yaw_rate_deg_s: c,
            z_m: d,
        })
        .boxed(),
        (finite(), finite(), finite(), any::<u16>(), any::<bool>())
            .prop_map(|(r, p, y, thrust, rate)| G::Manual {
                roll_deg: r,
                pitch_deg: p,
                yaw_rate_deg_s: y,
                thrust,
                rate,
            })
            .boxed(),
    ])
    .boxed()
}

fn localization_packet() -> BoxedStrategy<LocalizationPacket> {
    use LocalizationPacket as L;
    prop_oneof![
        (finite(), finite(), finite()).prop_map(|(x_m, y_m, z_m)| L::ExternalPosition {
            x_m,
            y_m,
            z_m
        }),
        ([finite(), finite(), finite()], f4())
            .prop_map(|(pos, quat)| L::ExternalPose { pos, quat }),
        Just(L::EmergencyStop),
        Just(L::EmergencyStopWatchdog),
        (
            any::<u8>().prop_filter("modelled kinds", |k| ![3, 4, 8].contains(k)),
            bytes(29)
        )
            .prop_map(|(kind, data)| L::Other { kind, data }),
    ]
    .boxed()
}

fn supervisor_state() -> impl Strategy<Value = SupervisorState> {
    prop::sample::select(SupervisorState::ALL.to_vec())
}

fn supervisor_command() -> BoxedStrategy<SupervisorCommand> {
    prop_oneof![
        Just(SupervisorCommand::GetStateBitfield),
        supervisor_state().prop_map(SupervisorCommand::QueryState),
        any::<bool>().prop_map(SupervisorCommand::Arm),
        Just(SupervisorCommand::Recover),
        Just(SupervisorCommand::EmergencyStop),
        Just(SupervisorCommand::EmergencyStopWatchdog),
    ]
    .boxed()
}

/// Every [`Uplink`] variant.
pub(crate) fn arb_uplink() -> BoxedStrategy<Uplink> {
    Union::new(vec![
        Just(Uplink::Null).boxed(),
        link_request().prop_map(Uplink::Link).boxed(),
        platform_request().prop_map(Uplink::Platform).boxed(),
        param_request().prop_map(Uplink::Param).boxed(),
        log_request().prop_map(Uplink::Log).boxed(),
        mem_request().prop_map(Uplink::Mem).boxed(),
        rpyt().prop_map(Uplink::Commander).boxed(),
        generic_setpoint().prop_map(Uplink::Generic).boxed(),
        any::<u32>()
            .prop_map(|remain_valid_ms| {
                Uplink::Meta(MetaCommand::NotifySetpointsStop { remain_valid_ms })
            })
            .boxed(),
        localization_packet().prop_map(Uplink::Localization).boxed(),
        supervisor_command().prop_map(Uplink::Supervisor).boxed(),
        other_packet(&[0, 1, 8, 10, 11, 12, 14])
            .prop_map(Uplink::Other)
            .boxed(),
    ])
    .boxed()
}

fn link_reply() -> BoxedStrategy<LinkReply> {
    prop_oneof![
        bytes(30).prop_map(LinkReply::Echo),
        bytes(30).prop_map(LinkReply::Source),
        Just(LinkReply::firmware_source()),
    ]
    .boxed()
}

fn platform_reply() -> BoxedStrategy<PlatformReply> {
    prop_oneof![
        bytes(30).prop_map(PlatformReply::CommandEcho),
        any::<u8>().prop_map(PlatformReply::ProtocolVersion),
        text().prop_map(PlatformReply::FirmwareVersion),
        text().prop_map(PlatformReply::DeviceTypeName),
        bytes(30).prop_map(PlatformReply::AppChannel),
    ]
    .boxed()
}

fn param_reply() -> BoxedStrategy<ParamReply> {
    use ParamReply as P;
    Union::new(vec![
        (any::<u16>(), any::<u32>())
            .prop_map(|(count, crc32)| P::TocInfoV2 { count, crc32 })
            .boxed(),
        (any::<u16>(), toc_item())
            .prop_map(|(id, item)| P::TocItemV2 {
                id,
                item: Some(item),
            })
            .boxed(),
        // The out-of-range reply carries no id: it only round-trips as id 0.
        Just(P::TocItemV2 { id: 0, item: None }).boxed(),
        (any::<u16>(), any::<u8>(), bytes(27))
            .prop_map(|(id, status, value)| P::ReadValue { id, status, value })
            .boxed(),
        (any::<u16>(), bytes(28))
            .prop_map(|(id, value)| P::WriteAck { id, value })
            .boxed(),
        (any::<u16>(), bytes(27))
            .prop_map(|(id, value)| P::ValueUpdated { id, value })
            .boxed(),
        (name(), name(), any::<u8>())
            .prop_map(|(group, name, result)| P::SetByNameReply {
                group,
                name,
                result,
            })
            .boxed(),
        (param_misc(), any::<u16>(), bytes(27))
            .prop_map(|(command, id, data)| P::MiscReply { command, id, data })
            .boxed(),
    ])
    .boxed()
}

fn log_reply() -> BoxedStrategy<LogReply> {
    prop_oneof![
        (any::<u16>(), any::<u32>(), any::<u8>(), any::<u8>()).prop_map(
            |(count, crc32, max_blocks, max_ops)| LogReply::TocInfoV2 {
                count,
                crc32,
                max_blocks,
                max_ops
            }
        ),
        (any::<u16>(), toc_item()).prop_map(|(id, item)| LogReply::TocItemV2 {
            id,
            item: Some(item)
        }),
        Just(LogReply::TocItemV2 { id: 0, item: None }),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(command, block_id, result)| {
            LogReply::ControlReply {
                command,
                block_id,
                result,
            }
        }),
        (any::<u8>(), 0..=MAX_LOG_TIMESTAMP_MS, bytes(26)).prop_map(
            |(block_id, timestamp_ms, values)| LogReply::Data {
                block_id,
                timestamp_ms,
                values
            }
        ),
    ]
    .boxed()
}

fn mem_reply() -> BoxedStrategy<MemReply> {
    prop_oneof![
        any::<u8>().prop_map(MemReply::Number),
        (any::<u8>(), any::<u8>(), any::<u32>(), any::<u64>()).prop_map(
            |(id, mem_type, size, addr)| MemReply::Details {
                id,
                mem_type,
                size,
                addr,
            }
        ),
        any::<u8>().prop_map(|id| MemReply::DetailsInvalid { id }),
        (any::<u8>(), any::<u32>(), any::<u8>(), bytes(24)).prop_map(|(id, addr, status, data)| {
            MemReply::Read {
                id,
                addr,
                status,
                data,
            }
        }),
        (any::<u8>(), any::<u32>(), any::<u8>()).prop_map(|(id, addr, status)| MemReply::Write {
            id,
            addr,
            status
        }),
    ]
    .boxed()
}

fn supervisor_reply() -> BoxedStrategy<SupervisorReply> {
    prop_oneof![
        any::<u16>().prop_map(SupervisorReply::StateBitfield),
        (supervisor_state(), any::<bool>())
            .prop_map(|(state, value)| SupervisorReply::State { state, value }),
        (any::<bool>(), any::<bool>())
            .prop_map(|(success, is_armed)| SupervisorReply::Arm { success, is_armed }),
        (any::<bool>(), any::<bool>())
            .prop_map(|(success, recovered)| SupervisorReply::Recover { success, recovered }),
    ]
    .boxed()
}

/// Every [`Downlink`] variant.
pub(crate) fn arb_downlink() -> BoxedStrategy<Downlink> {
    Union::new(vec![
        Just(Downlink::Null).boxed(),
        link_reply().prop_map(Downlink::Link).boxed(),
        bytes(30).prop_map(Downlink::Console).boxed(),
        platform_reply().prop_map(Downlink::Platform).boxed(),
        param_reply().prop_map(Downlink::Param).boxed(),
        log_reply().prop_map(Downlink::Log).boxed(),
        mem_reply().prop_map(Downlink::Mem).boxed(),
        supervisor_reply().prop_map(Downlink::Supervisor).boxed(),
        (any::<u8>(), bytes(29))
            .prop_map(|(kind, data)| Downlink::Localization(LocalizationReply { kind, data }))
            .boxed(),
        other_packet(&[1, 3, 7, 8, 10, 11, 12, 14])
            .prop_map(Downlink::Other)
            .boxed(),
    ])
    .boxed()
}
