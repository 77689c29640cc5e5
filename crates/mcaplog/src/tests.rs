use super::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("depthpilot-mcaplog-{}-{name}", std::process::id()))
}

fn options() -> WriterOptions {
    WriterOptions {
        profile: "depthpilot".to_string(),
        chunk_span: Duration::from_millis(100),
        chunk_bytes: 1 << 20,
        wall_clock_flush: false,
    }
}

/// 100 messages, 10 ms of log time apart, on a channel with a schema; 10 of them per chunk.
fn write(path: &Path) -> ChunkedWriter {
    let mut w = ChunkedWriter::create(path, options()).expect("create");
    let schema = w
        .add_schema("demo.Value", "jsonschema", br#"{"type":"object"}"#)
        .expect("schema");
    let channel = w.add_channel(schema, "/demo", "json").expect("channel");
    for i in 0..100u64 {
        let data = format!("{{\"i\":{i}}}");
        w.write(channel, i * 10_000_000, i, data.as_bytes())
            .expect("write");
    }
    w
}

fn times(r: &Recording) -> Vec<u64> {
    r.topic("/demo")
        .map(|m| m.log_time_ns / 10_000_000)
        .collect()
}

/// A writer that dies without finishing (no drop, as under SIGKILL) leaves every closed chunk
/// readable: all but the open one.
#[test]
fn a_killed_writer_leaves_all_but_the_open_chunk() {
    let path = temp("killed.mcap");
    let w = write(&path);
    std::mem::forget(w);
    let bytes = std::fs::read(&path).expect("read");
    let r = read_bytes(&bytes);
    assert!(
        matches!(r.damage, Some(ReadError::Truncated(_))),
        "{:?}",
        r.damage
    );
    assert_eq!(times(&r), (0..90).collect::<Vec<_>>());
    let _ = std::fs::remove_file(&path);
}

/// A flipped byte in a middle chunk: that chunk is skipped and said, the chunks after it read.
#[test]
fn a_damaged_chunk_is_skipped_and_the_rest_read() {
    let path = temp("damaged.mcap");
    let stats = write(&path).finish().expect("finish");
    assert_eq!(
        stats,
        WriteStats {
            messages: 100,
            chunks: 10
        }
    );
    let mut bytes = std::fs::read(&path).expect("read");
    let chunks = chunk_offsets(&bytes);
    assert_eq!(chunks.len(), 10);
    bytes[chunks[4] + 200] ^= 0x55;
    let r = read_bytes(&bytes);
    assert!(r.damage.is_none(), "{:?}", r.damage);
    let expected: Vec<u64> = (0..40).chain(50..100).collect();
    assert_eq!(times(&r), expected);
    let said = r.describe_skipped().expect("said");
    assert!(said.contains("CRC fails") && said.contains(&format!("chunk at byte {}", chunks[4])));
    // A file reads the same as its bytes.
    std::fs::write(&path, &bytes).expect("write");
    let mut n = 0;
    let s = scan(FileSource::open(&path).expect("open"), |m| {
        assert_eq!(m.schema.map(|s| s.name.as_str()), Some("demo.Value"));
        n += 1;
    })
    .expect("scan");
    assert_eq!((n, s.messages, s.skipped.len()), (90, 90, 1));
    assert_eq!(s.profile.as_deref(), Some("depthpilot"));
    let _ = std::fs::remove_file(&path);
}

/// A killed recording, repaired: complete with summary and chunk index, the same messages.
#[test]
fn repair_rewrites_a_cut_file_whole() {
    let path = temp("cut.mcap");
    let fixed = temp("cut.repaired.mcap");
    std::mem::forget(write(&path));
    let report = repair(&path, &fixed).expect("repair");
    assert_eq!(report.messages, 90);
    assert!(!report.input_was_whole());
    assert!(matches!(report.damage, Some(ReadError::Truncated(_))));
    let bytes = std::fs::read(&fixed).expect("read");
    let summary = mcap::Summary::read(&bytes)
        .expect("summary")
        .expect("present");
    assert_eq!(summary.stats.map(|s| s.message_count), Some(90));
    assert!(!summary.chunk_indexes.is_empty());
    assert_eq!(summary.schemas.len(), 1);
    let r = read_bytes(&bytes);
    assert!(r.damage.is_none() && r.skipped.is_empty(), "{:?}", r.damage);
    assert_eq!(times(&r), (0..90).collect::<Vec<_>>());
    assert!(mcap::read::footer(&bytes).is_ok());
    // In place: the output may be the input.
    let report = repair(&fixed, &fixed).expect("repair in place");
    assert!(report.input_was_whole());
    assert_eq!(
        read_bytes(&std::fs::read(&fixed).expect("read"))
            .messages
            .len(),
        90
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&fixed);
}

#[test]
fn repair_refuses_a_file_that_is_not_mcap() {
    let path = temp("garbage.txt");
    let out = temp("garbage.repaired.mcap");
    std::fs::write(&path, b"t_s,x\n0.0,1.0\n").expect("write");
    let e = repair(&path, &out).expect_err("not MCAP");
    let text = e.to_string();
    assert!(matches!(e, RepairError::NotMcap { .. }), "{text}");
    assert!(
        text.contains("garbage.txt") && text.contains("74 5f 73"),
        "{text}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_file(&path);
    let e = repair(&temp("missing.mcap"), &out).expect_err("missing");
    assert!(e.to_string().contains("missing.mcap"), "{e}");
}
