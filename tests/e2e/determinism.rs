//! Same scene + seed → bit-identical flight; another seed → another flight.

use crate::scene_path;
use depthpilot_sim::LogRow;
use depthpilot_types::Scene;

fn flight(seed: u64) -> (String, Vec<LogRow>) {
    let mut scene = Scene::load(&scene_path("gusts.ron")).expect("loads");
    scene.seed = seed;
    let mut rows = Vec::new();
    let s = depthpilot_sim::fly(&scene, &mut rows).expect("flight runs");
    (serde_json::to_string(&s).expect("serialises"), rows)
}

fn bits(rows: &[LogRow]) -> Vec<u64> {
    rows.iter()
        .flat_map(|r| r.pos_m.iter().chain(r.rpy_rad.iter()).map(|v| v.to_bits()))
        .collect()
}

#[test]
fn same_seed_gives_a_bit_identical_trajectory() {
    let (s1, r1) = flight(7);
    let (s2, r2) = flight(7);
    assert_eq!(s1, s2);
    assert_eq!(bits(&r1), bits(&r2));
}

#[test]
fn another_seed_gives_another_trajectory() {
    let (_, r1) = flight(7);
    let (_, r2) = flight(8);
    assert_ne!(bits(&r1), bits(&r2));
}
