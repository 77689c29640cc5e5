//! When the viewer is open: the first frame drawn with every render pipeline compiled. Under
//! lavapipe (and in a debug build) compiling bevy's pipelines is most of the start-up; until they
//! are ready, frames lack the parts that use them. The render world watches its pipeline cache;
//! once nothing has waited for `SETTLED_FRAMES` frames in a row (pipelines are queued lazily, as
//! entities first need them), the main world says so, once, with the time since start.

use bevy::prelude::*;
use bevy::render::render_resource::PipelineCache;
use bevy::render::{Render, RenderApp, RenderSystems};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Render frames in a row with no pipeline waiting before the picture counts as complete.
const SETTLED_FRAMES: u32 = 2;
const NOT_YET: u64 = u64::MAX;

/// Microseconds from start to the first settled render frame (`NOT_YET` until then).
#[derive(Resource, Clone)]
struct Settled {
    since_start_us: Arc<AtomicU64>,
    started: Instant,
}

/// The time it took, in the main world, once known.
#[derive(Resource, Default, Debug, Clone, Copy)]
pub struct Opened {
    pub first_frame_ms: Option<f64>,
}

/// Adds the watch to an app whose `RenderPlugin` is already in; `started` is the process start.
pub fn add(app: &mut App, started: Instant, say: bool) {
    let settled = Settled {
        since_start_us: Arc::new(AtomicU64::new(NOT_YET)),
        started,
    };
    app.insert_resource(settled.clone())
        .insert_resource(Opened::default())
        .insert_resource(Say(say))
        .add_systems(Last, report);
    if let Some(render) = app.get_sub_app_mut(RenderApp) {
        render
            .insert_resource(settled)
            .add_systems(Render, watch.in_set(RenderSystems::Cleanup));
    }
}

#[derive(Resource)]
struct Say(bool);

fn watch(cache: Option<Res<PipelineCache>>, settled: Res<Settled>, mut in_a_row: Local<u32>) {
    let Some(cache) = cache else {
        return;
    };
    if settled.since_start_us.load(Ordering::Relaxed) != NOT_YET {
        return;
    }
    let any = cache.pipelines().next().is_some();
    if any && cache.waiting_pipelines().next().is_none() {
        *in_a_row += 1;
    } else {
        *in_a_row = 0;
    }
    if *in_a_row >= SETTLED_FRAMES {
        let us = u64::try_from(settled.started.elapsed().as_micros()).unwrap_or(NOT_YET - 1);
        settled.since_start_us.store(us, Ordering::Relaxed);
    }
}

fn report(settled: Res<Settled>, mut opened: ResMut<Opened>, say: Res<Say>) {
    if opened.first_frame_ms.is_some() {
        return;
    }
    let us = settled.since_start_us.load(Ordering::Relaxed);
    if us == NOT_YET {
        return;
    }
    let ms = us as f64 / 1e3;
    opened.first_frame_ms = Some(ms);
    if say.0 {
        eprintln!("viewer: open: first frame with every pipeline ready after {ms:.0} ms");
    }
}
