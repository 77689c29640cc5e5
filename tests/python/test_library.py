"""The library functions: the same results and messages as the CLI, and cflib's own bytes."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import depthpilot

ROOT = Path(__file__).resolve().parents[2]
SCENES = ROOT / "scenes"


def cli():
    """The CLI binary `cargo test --workspace` built (the test command runs pytest after it)."""
    for p in (ROOT / "target" / "debug" / "depthpilot", ROOT / "target" / "release" / "depthpilot"):
        if p.exists():
            return p
    pytest.fail("target/debug/depthpilot is missing: run `cargo build --workspace --bin depthpilot` first")


def test_load_scene_errors_are_python_exceptions_with_the_clis_message(tmp_path):
    missing = tmp_path / "nope.ron"
    with pytest.raises(FileNotFoundError) as e:
        depthpilot.load_scene(missing)
    assert str(missing) in str(e.value)
    bad = tmp_path / "bad.ron"
    bad.write_text('Scene(name: "x", duration_s: -3.0, setpoints: Hover(position_m: (0.0, 0.0, 1.0)))')
    with pytest.raises(ValueError) as e:
        depthpilot.load_scene(bad)
    assert "bad.ron" in str(e.value) and "duration_s" in str(e.value)
    garbage = tmp_path / "garbage.ron"
    garbage.write_bytes(b"\x00\xff{{{")
    with pytest.raises(ValueError, match="garbage.ron"):
        depthpilot.load_scene(garbage)
    out = subprocess.run([str(cli()), "batch", str(bad), "--seeds", "0..1"], capture_output=True, text=True)
    assert out.returncode == 2
    assert str(e.value) in out.stderr or "duration_s" in out.stderr


def test_fly_equals_the_cli_and_returns_the_log_as_arrays(tmp_path):
    scene = depthpilot.load_scene(SCENES / "hover.ron")
    summary, log = depthpilot.fly(scene, seed=7)
    out = tmp_path / "s.json"
    subprocess.run([str(cli()), "fly", str(SCENES / "hover.ron"), "--seed", "7", "--summary", str(out), "-q"], check=True)
    cli_summary = json.loads(out.read_text())
    for key in ("rms_error_m", "max_error_m", "physics_steps", "final_position_m", "crashed", "radio_packets_sent"):
        assert summary[key] == cli_summary[key], key
    n = len(log["t_s"])
    assert n > 100 and log["pos_m"].shape == (n, 3) and log["motors_pwm"].dtype == np.uint16
    assert abs(log["pos_m"][-1, 2] - 1.0) < 0.05
    assert len(log["safety"]) == n
    no_log, none = depthpilot.fly(scene, seed=7, log=False)
    assert none is None and no_log["rms_error_m"] == summary["rms_error_m"]


def test_batch_equals_the_clis_batch(tmp_path):
    scene = depthpilot.load_scene(SCENES / "hover.ron")
    report, records = depthpilot.batch(scene, range(4), jobs=2)
    assert [r["seed"] for r in records] == [0, 1, 2, 3]
    out = tmp_path / "b.json"
    subprocess.run([str(cli()), "batch", str(SCENES / "hover.ron"), "--seeds", "0..4", "--summary", str(out), "-q"], check=True)
    cli_report = json.loads(out.read_text())
    for key in ("flights", "mean_rms_error_m", "p95_rms_error_m", "worst_seed", "crash_rate"):
        assert report[key] == cli_report[key], key
    with pytest.raises(ValueError, match="empty"):
        depthpilot.batch(scene, [])


def test_score_gains_names_bad_gains():
    scene = depthpilot.load_scene(SCENES / "hover.ron")
    s = depthpilot.score_gains([scene], scene.gains, seeds=[0])
    assert s["cost"] == s["baseline_cost"]
    with pytest.raises(ValueError, match="unknown gain `pos_kp`"):
        depthpilot.score_gains([scene], {"pos_kp": 1.0}, seeds=[0])
    with pytest.raises(ValueError, match="pos_kp_xy"):
        depthpilot.score_gains([scene], {"pos_kp_xy": -1.0}, seeds=[0])


class _Capture:
    """Stands in for cflib's Crazyflie: keeps the packets its Commander sends."""

    def __init__(self):
        self.packets = []

    def send_packet(self, pk):
        self.packets.append(bytes([pk.header]) + bytes(pk.data))


@pytest.mark.parametrize("args", [(0.0, 0.0, 0.0, 0), (1.5, -2.25, 30.0, 40000), (-12.3456, 7.77, -199.9, 65535)])
def test_the_rpyt_action_is_cflibs_send_setpoint_byte_for_byte(args):
    from cflib.crazyflie.commander import Commander

    cf = _Capture()
    Commander(cf).send_setpoint(*args)
    want = cf.packets[-1]
    assert depthpilot.setpoint_packet(*args) == want
    import gymnasium as gym

    env = gym.make("DepthPilot/Hover-v0", action="rpyt")
    env.reset(seed=0)
    env.step(np.array(args, dtype=np.float64))
    assert env.unwrapped.last_packet == want
    with pytest.raises(ValueError, match="Thrust"):
        depthpilot.setpoint_packet(0, 0, 0, 70000)
