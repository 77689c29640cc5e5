"""The gymnasium environments: every registered id passes gymnasium's checker, the native vector
env equals single envs bit for bit at any thread count, and bad input is refused clearly."""

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import depthpilot
from depthpilot.envs import DepthPilotEnv, DepthPilotVectorEnv


@pytest.mark.parametrize("env_id", depthpilot.ids())
def test_check_env_passes_for_every_registered_id(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def test_the_kinect_ids_see_metric_depth_and_state_skips_rendering():
    env = gym.make("DepthPilot/HoverKinect-v0", action="residual", depth_downsample=4)
    obs, _ = env.reset(seed=1)
    assert obs["depth"].shape == (106, 128) and obs["depth"].dtype == np.uint16
    new = 0
    for _ in range(100):
        obs, reward, term, trunc, info = env.step(np.zeros(4))
        new += int(obs["frame_new"][0])
        assert not term
    # 1 s at the Kinect's 30 Hz.
    assert 28 <= new <= 31, new
    quad = np.count_nonzero((obs["depth"] > 900) & (obs["depth"] < 1100))
    assert quad > 0, "the quad, 1 m above the camera, is in the depth image"
    assert obs["vision"][0] == 1.0 and abs(obs["vision"][3] - 1.0) < 0.05
    state = gym.make("DepthPilot/HoverKinect-v0", obs="state")
    assert set(state.observation_space.spaces) == {"state", "target", "last_action"}
    assert tuple(state.unwrapped.description["depth_shape"]) == (0, 0)


def _actions(k, n):
    """Varied actions; odd worlds lack thrust, so their episodes end and autoreset runs."""
    x = ((np.arange(n) * 104729 + k * 7919) % 1000) / 1000.0 - 0.5
    sag = 25000.0 * (np.arange(n) % 2)
    return np.stack([4 * x, -3 * x, 20 * x, 44000 + 8000 * x - sag], axis=1)


def _singles(env_id, seed, n, steps, **kw):
    out = []
    for i in range(n):
        env = DepthPilotEnv(env_id=env_id, **kw)
        obs, _ = env.reset(seed=seed + i)
        rows, done = [], False
        for k in range(steps):
            if done:  # NEXT_STEP autoreset: this step resets, reward 0
                obs, _ = env.reset()
                rows.append((obs, 0.0, False, False))
                done = False
                continue
            obs, r, te, tr, _ = env.step(_actions(k, n)[i])
            rows.append((obs, r, te, tr))
            done = te or tr
        out.append(rows)
    return out


@pytest.mark.parametrize(
    "env_id,steps,kw",
    [
        ("DepthPilot/Hover-v0", 200, {}),
        ("DepthPilot/HoverKinect-v0", 60, {"depth_downsample": 2}),
    ],
)
def test_a_vector_of_8_worlds_equals_8_single_envs_bit_for_bit_at_1_and_2_threads(env_id, steps, kw):
    n, seed = 8, 40
    singles = _singles(env_id, seed, n, steps, **kw)
    for threads in (1, 2):
        venv = DepthPilotVectorEnv(n, env_id=env_id, threads=threads, **kw)
        assert venv.threads == threads
        obs, _ = venv.reset(seed=seed)
        for key in obs:
            for i in range(n):
                assert obs[key][i].tobytes() == DepthPilotEnv(env_id=env_id, **kw).reset(seed=seed + i)[0][key].tobytes()
        ends = 0
        for k in range(steps):
            obs, r, te, tr, info = venv.step(_actions(k, n))
            ends += int(np.sum(te | tr))
            for i in range(n):
                s_obs, s_r, s_te, s_tr = singles[i][k]
                assert r[i] == s_r and te[i] == s_te and tr[i] == s_tr, (threads, k, i)
                for key in obs:
                    assert obs[key][i].tobytes() == s_obs[key].tobytes(), (threads, k, i, key)
        if env_id == "DepthPilot/Hover-v0":
            assert ends > 0, "no episode ended: the autoreset path was not exercised"
        venv.close()


def test_make_vec_uses_the_native_vector_env_and_declares_its_autoreset():
    envs = gym.make_vec("DepthPilot/Hover-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(envs.unwrapped, DepthPilotVectorEnv)
    mode = envs.metadata["autoreset_mode"]
    assert getattr(mode, "name", mode) in ("NEXT_STEP", "next_step")
    obs, _ = envs.reset(seed=3)
    assert obs["state"].shape == (4, 13)
    obs, r, te, tr, info = envs.step(envs.action_space.sample())
    assert r.shape == (4,) and te.dtype == bool
    envs.close()


def test_same_step_autoreset_returns_the_final_observation():
    venv = DepthPilotVectorEnv(2, env_id="DepthPilot/Hover-v0", autoreset="same_step")
    venv.reset(seed=5)
    zero = np.zeros((2, 4))
    for _ in range(300):
        obs, r, te, tr, info = venv.step(zero)
        if te.any():
            i = int(np.flatnonzero(te)[0])
            assert info["_final_obs"][i]
            final = info["final_obs"][i]
            assert final["state"][2] < 0.1, "the final observation is on the floor"
            assert obs["state"][i][2] > 0.9, "the returned observation is the new episode's start"
            return
    pytest.fail("a quad without thrust never came down")


def test_domain_randomisation_through_reset_options():
    env = DepthPilotEnv(env_id="DepthPilot/Hover-v0")
    env.reset(seed=1)
    base = json.loads(env._native.scene_json())["quad"]["mass_kg"]
    env.reset(seed=1, options={"mass_factor": 1.1, "realism": "Bench"})
    s = json.loads(env._native.scene_json())
    assert abs(s["quad"]["mass_kg"] / base - 1.1) < 1e-9
    env.reset(seed=1, options={"randomise": True})
    m1 = json.loads(env._native.scene_json())["quad"]["mass_kg"]
    env.reset()
    m2 = json.loads(env._native.scene_json())["quad"]["mass_kg"]
    assert m1 != m2, "each episode draws its own mass"


def test_every_action_mode_flies():
    for action, a in [("rpyt", [0, 0, 0, 40000]), ("position", [0.2, 0.0, 1.1, 0.0]), ("residual", [0, 0, 0, 0])]:
        env = gym.make("DepthPilot/Hover-v0", action=action)
        env.reset(seed=2)
        for _ in range(20):
            obs, r, te, tr, info = env.step(np.array(a, dtype=np.float32))
        assert np.all(np.isfinite(obs["state"])), action


# --- bad input -----------------------------------------------------------------------------


def test_a_wrong_action_shape_is_a_value_error():
    env = gym.make("DepthPilot/Hover-v0")
    env.reset(seed=0)
    for bad in (np.zeros(3), np.zeros(5), np.zeros((2, 4))):
        with pytest.raises(ValueError, match=r"shape"):
            env.step(bad)
    venv = DepthPilotVectorEnv(3, env_id="DepthPilot/Hover-v0")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        venv.step(np.zeros((2, 4)))


def test_nan_actions_are_rejected_and_leave_the_env_unchanged():
    a = DepthPilotEnv(env_id="DepthPilot/Hover-v0")
    b = DepthPilotEnv(env_id="DepthPilot/Hover-v0")
    a.reset(seed=4)
    b.reset(seed=4)
    for bad in ([np.nan, 0, 0, 40000], [0, 0, np.inf, 0]):
        with pytest.raises(ValueError, match="finite"):
            a.step(np.array(bad))
    venv = DepthPilotVectorEnv(2, env_id="DepthPilot/Hover-v0")
    venv.reset(seed=4)
    with pytest.raises(ValueError, match="world 1"):
        venv.step(np.array([[0, 0, 0, 40000], [0, np.nan, 0, 40000]], dtype=np.float64))
    for _ in range(30):
        oa, ra, *_ = a.step(np.array([1.0, 0, 0, 42000]))
        ob, rb, *_ = b.step(np.array([1.0, 0, 0, 42000]))
        assert ra == rb and oa["state"].tobytes() == ob["state"].tobytes()


def test_bad_constructor_arguments_and_options_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="depht"):
        gym.make("DepthPilot/HoverKinect-v0", obs=["depht"])
    with pytest.raises(ValueError, match="oracle"):
        gym.make("DepthPilot/Hover-v0", obs="depth")
    with pytest.raises(ValueError, match="action `fly`"):
        gym.make("DepthPilot/Hover-v0", action="fly")
    with pytest.raises(ValueError, match="realism"):
        gym.make("DepthPilot/Hover-v0", realism="Benchh")
    with pytest.raises(FileNotFoundError, match="nope.ron"):
        DepthPilotEnv(scene=str(tmp_path / "nope.ron"))
    env = gym.make("DepthPilot/Hover-v0")
    with pytest.raises(ValueError, match="unknown reset option `mass`"):
        env.reset(seed=0, options={"mass": 2})
    with pytest.raises(ValueError, match="mass_factor"):
        env.reset(seed=0, options={"mass_factor": float("nan")})
    with pytest.raises(ValueError, match="num_envs"):
        DepthPilotVectorEnv(0, env_id="DepthPilot/Hover-v0")
