//! Real ZMQ over loopback TCP. Every test first resends until the client has a frame (ZMQ's slow
//! joiner), then asserts on what follows.

use super::*;
use crate::protocol::{BridgeState, TOPIC_FRAME};
use depthpilot_types::scene::Intrinsics;
use depthpilot_vision::{HEIGHT, WIDTH};

const TIMEOUT: Duration = Duration::from_secs(10);

fn depth(seq: u64) -> Vec<u16> {
    (0..WIDTH * HEIGHT)
        .map(|i| ((i as u64 + seq) % 4000) as u16 + 500)
        .collect()
}

fn header(seq: u64) -> FrameHeader {
    FrameHeader::kinect_v2(seq, seq * 33_333, 0, Intrinsics::KINECT_V2_DEVICE2)
}

fn pair(ctx: &zmq::Context) -> (BridgePublisher, BridgeClient) {
    let publisher = BridgePublisher::bind(ctx, "tcp://127.0.0.1:*").expect("bind a free port");
    let client =
        BridgeClient::connect(ctx, &BridgeConfig::new(publisher.endpoint())).expect("connect");
    (publisher, client)
}

/// Sends frame `seq` every 10 ms until the client has one; returns the events of that poll
/// onwards and the next `seq`.
fn join(
    publisher: &BridgePublisher,
    client: &mut BridgeClient,
    mut seq: u64,
) -> (Vec<BridgeEvent>, u64) {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        publisher
            .send(&header(seq), &depth(seq), None)
            .expect("send");
        seq += 1;
        client.wait(Duration::from_millis(10)).expect("wait");
        let events = client.poll(Instant::now()).expect("poll");
        if events.iter().any(|e| matches!(e, BridgeEvent::Frame(_))) {
            return (events, seq);
        }
    }
    panic!("no frame reached {} within {TIMEOUT:?}", client.endpoint());
}

/// Polls until `done` says so about an event, collecting every event.
fn poll_until(client: &mut BridgeClient, done: impl Fn(&BridgeEvent) -> bool) -> Vec<BridgeEvent> {
    let deadline = Instant::now() + TIMEOUT;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        client.wait(Duration::from_millis(5)).expect("wait");
        let events = client.poll(Instant::now()).expect("poll");
        let finished = events.iter().any(&done);
        all.extend(events);
        if finished {
            return all;
        }
    }
    panic!("condition not met within {TIMEOUT:?}; events: {all:?}");
}

fn frames(events: &[BridgeEvent]) -> Vec<&ReceivedFrame> {
    events
        .iter()
        .filter_map(|e| match e {
            BridgeEvent::Frame(f) => Some(f.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn frames_arrive_intact() {
    let ctx = zmq::Context::new();
    let (publisher, mut client) = pair(&ctx);
    let (_, seq) = join(&publisher, &mut client, 0);
    let ir: Vec<u16> = depth(99).iter().map(|d| d / 2).collect();
    let mut h = header(seq);
    h.serial = "serial-1".to_string();
    publisher.send(&h, &depth(seq), Some(&ir)).expect("send");
    let events = poll_until(
        &mut client,
        |e| matches!(e, BridgeEvent::Frame(f) if f.header.seq == seq),
    );
    let got = frames(&events);
    let got = got.last().expect("a frame");
    assert_eq!(got.header, h);
    assert_eq!(got.frame.depth_mm, depth(seq));
    assert_eq!(got.frame.ir.as_deref(), Some(ir.as_slice()));
    assert_eq!(got.frame.stamp_ns, seq * 33_333_000);
    assert_eq!(got.intrinsics, Intrinsics::KINECT_V2_DEVICE2);
    let r = client.report();
    assert_eq!(r.garbage.total, 0);
    assert_eq!(r.frames.last(), Some(seq));
    assert!(r.frames.received >= 2);
}

#[test]
fn garbage_is_counted_and_the_next_good_frame_arrives() {
    let ctx = zmq::Context::new();
    let (publisher, mut client) = pair(&ctx);
    let (_, seq) = join(&publisher, &mut client, 0);

    let mut short = encode_frame(&header(seq), &depth(seq), None);
    short[2].truncate(1000);
    let mut bad_json = encode_frame(&header(seq), &depth(seq), None);
    bad_json[1] = b"{not json".to_vec();
    let mut v2 = encode_frame(&header(seq), &depth(seq), None);
    let text = String::from_utf8(v2[1].clone()).expect("UTF-8");
    v2[1] = text
        .replacen("\"version\":1", "\"version\":2", 1)
        .into_bytes();
    let mut topic = encode_frame(&header(seq), &depth(seq), None);
    topic[0] = b"kinect/colour".to_vec();
    for parts in [short, bad_json, v2, topic] {
        publisher.send_raw(parts).expect("send");
    }
    publisher
        .send(&header(seq), &depth(seq), None)
        .expect("send");

    let events = poll_until(
        &mut client,
        |e| matches!(e, BridgeEvent::Frame(f) if f.header.seq == seq),
    );
    let garbage: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            BridgeEvent::Garbage(g) => Some(g.reason()),
            _ => None,
        })
        .collect();
    assert_eq!(garbage, ["size", "json", "version", "topic"]);
    let g = &client.report().garbage;
    assert_eq!(g.total, 4);
    for reason in ["size", "json", "version", "topic"] {
        assert_eq!(g.of(reason), 1, "{reason}");
    }
    assert_eq!(
        g.last.as_deref(),
        Some(
            "unknown topic `kinect/colour` (this receiver knows `kinect/frame` and `kinect/status`)"
        )
    );
    assert_eq!(frames(&events).len(), 1, "only the good frame");
}

#[test]
fn topics_outside_kinect_are_filtered_by_zmq_and_statuses_pass() {
    let ctx = zmq::Context::new();
    let (publisher, mut client) = pair(&ctx);
    join(&publisher, &mut client, 0);
    publisher
        .send_raw(vec![b"sim/truth".to_vec(), b"{}".to_vec()])
        .expect("send");
    let status = StatusMsg {
        state: BridgeState::Stalled,
        message: "no frame for 1.0 s".to_string(),
    };
    publisher.send_status(&status).expect("send");
    let events = poll_until(&mut client, |e| matches!(e, BridgeEvent::Status(_)));
    assert!(events.contains(&BridgeEvent::Status(status.clone())));
    let r = client.report();
    assert_eq!(r.garbage.total, 0);
    assert_eq!(r.statuses, 1);
    assert_eq!(r.last_status, Some(status));
}

#[test]
fn stale_is_reported_once_after_the_publisher_stops_and_recovery_when_it_resumes() {
    let ctx = zmq::Context::new();
    let (publisher, mut client) = pair(&ctx);
    let (_, mut seq) = join(&publisher, &mut client, 0);

    let events = poll_until(&mut client, |e| matches!(e, BridgeEvent::Stale { .. }));
    let stale: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            BridgeEvent::Stale { for_ms } => Some(*for_ms),
            _ => None,
        })
        .collect();
    assert_eq!(stale.len(), 1);
    assert!(stale[0] >= 100, "stale after 100 ms, not {} ms", stale[0]);
    assert!(client.report().stale);
    // Still stale, but said once.
    std::thread::sleep(Duration::from_millis(150));
    let quiet = client.poll(Instant::now()).expect("poll");
    assert!(
        !quiet.iter().any(|e| matches!(e, BridgeEvent::Stale { .. })),
        "{quiet:?}"
    );

    publisher
        .send(&header(seq), &depth(seq), None)
        .expect("send");
    seq += 1;
    let events = poll_until(&mut client, |e| matches!(e, BridgeEvent::Frame(_)));
    let i = events
        .iter()
        .position(|e| matches!(e, BridgeEvent::Recovered { .. }))
        .expect("recovered");
    let BridgeEvent::Recovered { after_ms } = events[i] else {
        unreachable!()
    };
    assert!(
        after_ms >= 250,
        "the gap was at least 100 + 150 ms, not {after_ms}"
    );
    assert!(
        matches!(events[i + 1], BridgeEvent::Frame(_)),
        "recovered, then the frame"
    );
    let r = client.report();
    assert_eq!((r.stale_events, r.recoveries, r.stale), (1, 1, false));
    assert!(r.longest_gap_ms >= after_ms);
    assert!(seq > 1);
}

#[test]
fn a_publisher_dropped_and_bound_again_at_the_same_endpoint_is_reconnected() {
    let ctx = zmq::Context::new();
    let (publisher, mut client) = pair(&ctx);
    let endpoint = publisher.endpoint().to_string();
    join(&publisher, &mut client, 1000);
    drop(publisher);
    std::thread::sleep(Duration::from_millis(100));

    let again = BridgePublisher::bind(&ctx, &endpoint).expect("bind the same endpoint again");
    assert_eq!(again.endpoint(), endpoint);
    // A restarted bridge counts again from 0: a restart, not garbage.
    join(&again, &mut client, 0);
    let r = client.report();
    assert_eq!(r.garbage.total, 0);
    assert_eq!(r.frames.restarts, 1);
}

#[test]
fn no_stale_before_the_first_frame() {
    let ctx = zmq::Context::new();
    let mut client = BridgeClient::connect(&ctx, &BridgeConfig::new("tcp://127.0.0.1:9"))
        .expect("connecting to nothing is fine: ZMQ retries");
    let later = Instant::now() + Duration::from_secs(5);
    assert_eq!(client.poll(later).expect("poll"), []);
    assert_eq!(client.report().stale_events, 0);
}

#[test]
fn bad_endpoints_are_named() {
    let ctx = zmq::Context::new();
    let Err(e) = BridgeClient::connect(&ctx, &BridgeConfig::new("tcp://no port")) else {
        panic!("connect should fail");
    };
    assert!(matches!(e, BridgeError::Connect { .. }));
    assert!(
        e.to_string()
            .starts_with("cannot connect a SUB socket to the Kinect bridge at `tcp://no port`: "),
        "{e}"
    );
    let first = BridgePublisher::bind(&ctx, "tcp://127.0.0.1:*").expect("bind");
    let Err(e) = BridgePublisher::bind(&ctx, first.endpoint()) else {
        panic!("the port is taken");
    };
    assert!(
        e.to_string().starts_with(&format!(
            "cannot bind the Kinect bridge's PUB socket to `{}`: ",
            first.endpoint()
        )),
        "{e}"
    );
}

#[test]
fn inproc_works_too() {
    let ctx = zmq::Context::new();
    let publisher = BridgePublisher::bind(&ctx, "inproc://kinect-test").expect("bind");
    let mut client =
        BridgeClient::connect(&ctx, &BridgeConfig::new("inproc://kinect-test")).expect("connect");
    let (events, _) = join(&publisher, &mut client, 7);
    assert_eq!(frames(&events)[0].frame.depth_mm.len(), WIDTH * HEIGHT);
    assert!(TOPIC_FRAME.starts_with(crate::protocol::TOPIC_PREFIX));
}
