//! The big-quad preset (Crazyflie 2.1 Brushless) flies on its own firmware build: the on-board
//! position controller (base thrust 30000) takes it to 1 m and holds it, with the softer rate
//! gains and the slower motors (UNVERIFIED time constant) still stable.

use depthpilot_sim::{FwSetpoint, NoProbe, Plant};
use depthpilot_types::scene::parse;

#[test]
fn the_brushless_preset_takes_off_and_holds_one_metre() {
    let scene = parse(
        "Scene(name: \"big\", duration_s: 10.0, settle_s: 0.0, quad: (variant: Cf21Brushless),
         setpoints: Hover(position_m: (0.0, 0.0, 1.0)))",
    )
    .expect("scene");
    let mut plant = Plant::new(&scene);
    let sp = FwSetpoint::Position {
        x_m: 0.0,
        y_m: 0.0,
        z_m: 1.0,
        yaw_deg: 0.0,
    };
    let (mut max_tilt_deg, mut max_rate_deg_s) = (0.0f64, 0.0f64);
    let mut motors_at_hover = [0u16; 4];
    while plant.now_ns() < 10_000_000_000 {
        let now = plant.now_ns();
        if now.is_multiple_of(10_000_000) {
            plant.firmware_mut().receive_setpoint(now, &sp);
        }
        plant.step(&mut NoProbe);
        if now > 4_000_000_000 {
            let t = plant.truth();
            max_tilt_deg = max_tilt_deg.max(t.world_from_body.tilt_rad().to_degrees());
            max_rate_deg_s = max_rate_deg_s.max(t.body_rates_rad_s.norm().to_degrees());
            motors_at_hover = plant.motor_cmd();
        }
    }
    let z = plant.truth().pos_m.z;
    println!(
        "2.1 Brushless: z {z:.3} m after 10 s, max tilt {max_tilt_deg:.2} deg and body rate \
         {max_rate_deg_s:.2} deg/s over 4–10 s, motors {motors_at_hover:?}"
    );
    assert!((z - 1.0).abs() < 0.05, "{z}");
    assert!(
        max_tilt_deg < 1.0 && max_rate_deg_s < 5.0,
        "settled and stable"
    );
    assert!(
        motors_at_hover
            .iter()
            .all(|&m| (30_000..40_000).contains(&m)),
        "hover near 34 800: {motors_at_hover:?}"
    );
}
