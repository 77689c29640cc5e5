//! What the viewer's test binaries share: scenes, recording a flight, reading a PNG.

use depthpilot_runtime::recorder::{FlightClock, FlightHeader, Recorder};
use depthpilot_types::Scene;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A bundled scene.
pub fn scene_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenes")
        .join(name)
}

/// Flies `scene` (for `duration_s` if given) in virtual time and records it as MCAP at `path`.
pub fn record(scene: &Path, duration_s: Option<f64>, path: &Path) {
    let mut scene = Scene::load(scene).expect("the scene loads");
    if let Some(d) = duration_s {
        scene.duration_s = d;
    }
    let header = FlightHeader::new(
        &scene.name,
        scene.seed,
        scene.rates.clone(),
        FlightClock::Virtual,
        "in_process",
    );
    let mut rec = Recorder::start_flight(path, &header).expect("create the log");
    let summary = depthpilot_sim::fly(&scene, &mut rec).expect("the scene flies");
    rec.record_summary(&summary).expect("summary");
    rec.finish().expect("finish the log");
}

/// An RGB8 picture.
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

pub fn decode(path: &Path) -> Picture {
    let file = std::fs::File::open(path).expect("the picture exists");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    buf.truncate(info.buffer_size());
    let rgb = match info.color_type {
        png::ColorType::Rgb => buf,
        png::ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    Picture {
        width: info.width,
        height: info.height,
        rgb,
    }
}

pub fn distinct_colours(p: &Picture) -> usize {
    p.rgb
        .chunks_exact(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect::<HashSet<_>>()
        .len()
}
