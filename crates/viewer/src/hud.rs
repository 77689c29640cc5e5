//! The HUD: time, controller and firmware state, who flies each axis (with a teacher), thrust,
//! position error, loop latency (the age of the measurement behind the estimate); and the
//! log's problems, if any, in red.

use crate::flight::{Flight, Sample};
use crate::quad::{ESTIMATE_COLOR, QUAD_COLOR, SETPOINT_COLOR, TRUE_TRAIL_COLOR};
use crate::{FlightData, Playback};
use bevy::prelude::*;
use bevy::text::FontSize;

#[derive(Component)]
pub struct HudText;

/// Spawns the HUD; `scale` enlarges it for big screenshots.
pub fn spawn(commands: &mut Commands, flight: &Flight, scale: f32) {
    let font = TextFont::from_font_size(FontSize::Px(14.0 * scale));
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                top: Val::Px(8.0),
                left: Val::Px(8.0),
                padding: UiRect::all(Val::Px(6.0 * scale)),
                flex_direction: FlexDirection::Column,
                ..default()
            },
            BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.55)),
        ))
        .with_children(|hud| {
            hud.spawn((
                HudText,
                Text::new(""),
                font.clone(),
                TextColor(Color::srgb(0.92, 0.94, 0.97)),
            ));
            hud.spawn(Node {
                column_gap: Val::Px(10.0 * scale),
                ..default()
            })
            .with_children(|legend| {
                for (label, color) in [
                    ("quad", QUAD_COLOR),
                    ("true path", TRUE_TRAIL_COLOR),
                    ("estimate", ESTIMATE_COLOR),
                    ("setpoint", SETPOINT_COLOR),
                ] {
                    legend.spawn((Text::new(label), font.clone(), TextColor(color)));
                }
            });
            if !flight.warnings.is_empty() {
                hud.spawn((
                    Text::new(short_warnings(flight)),
                    font.clone(),
                    TextColor(Color::srgb(1.0, 0.4, 0.35)),
                ));
            }
        });
}

fn short_warnings(flight: &Flight) -> String {
    let name = flight.path.display().to_string();
    flight
        .warnings
        .iter()
        .map(|w| {
            let w = w.strip_prefix(&format!("{name}: ")).unwrap_or(w);
            let mut line: String = w.chars().take(90).collect();
            if w.chars().count() > 90 {
                line.push_str("...");
            }
            format!("! {line}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The HUD's text at one instant.
pub fn text(flight: &Flight, s: &Sample<'_>, playback: &Playback) -> String {
    let r = s.row;
    let mut lines = Vec::new();
    let state = if playback.interactive {
        if playback.playing {
            "playing"
        } else {
            "paused"
        }
    } else {
        ""
    };
    lines.push(format!(
        "t = {:6.2} s / {:.2} s   {state} x{:.2}",
        s.t_s,
        flight.end_s(),
        playback.speed
    ));
    lines.push(format!(
        "scene {}   controller {}   firmware {}",
        flight.scene_name,
        or_dash(&r.safety),
        or_dash(&r.firmware)
    ));
    if let Some(m) = &r.mux_sources {
        lines.push(format!(
            "mux   roll {}   pitch {}   yaw {}   thrust {}",
            m[0], m[1], m[2], m[3]
        ));
    }
    let err = dist(s.pos_m, r.setpoint_m);
    let est = s
        .estimate_m
        .map_or("-".to_string(), |e| format!("{:.3} m", dist(e, s.pos_m)));
    lines.push(format!(
        "thrust {:4.2}   motors {} {} {} {}",
        r.cmd_thrust_frac, r.motors_pwm[0], r.motors_pwm[1], r.motors_pwm[2], r.motors_pwm[3]
    ));
    lines.push(format!(
        "|pos - setpoint| {err:.3} m   |estimate - pos| {est}"
    ));
    let age = r
        .measurement_age_s
        .map_or("-".to_string(), |a| format!("{:.0} ms", a * 1000.0));
    let px = r
        .detection_pixels
        .map_or("-".to_string(), |p| format!("{p} px"));
    // The loop's latency as the flight saw it: how old the camera measurement behind the
    // estimate is (exposure → this row; the camera's latency, the vision, the bus, the hold).
    lines.push(format!(
        "loop latency {age} (measurement age)   detection {px}"
    ));
    lines.join("\n")
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

pub fn update(
    playback: Res<Playback>,
    flight: Res<FlightData>,
    mut texts: Query<&mut Text, With<HudText>>,
) {
    let s = flight.0.sample(playback.t_s);
    let t = text(&flight.0, &s, &playback);
    for mut text in &mut texts {
        if text.0 != t {
            text.0.clone_from(&t);
        }
    }
}
