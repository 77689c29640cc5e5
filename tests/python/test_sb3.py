"""depthpilot.sb3.DepthPilotSB3VecEnv against stable-baselines3's real ``VecEnv`` base class.

``import stable_baselines3`` imports torch. Where torch is missing (CI's venv) the base class is
loaded from SB3's own ``base_vec_env.py`` by file path (it needs only numpy, gymnasium and
cloudpickle), under its real module name, with empty placeholder parent packages; where SB3
imports, it is used as is.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import numpy as np
import pytest


def _load_sb3_base() -> list:
    """Makes ``stable_baselines3.common.vec_env.base_vec_env`` importable; returns the names of
    the placeholder modules it registered (none when SB3 imports)."""
    try:
        import stable_baselines3  # noqa: F401

        return []
    except ImportError:
        pass
    for name in [m for m in sys.modules if m == "stable_baselines3" or m.startswith("stable_baselines3.")]:
        del sys.modules[name]  # half-imported leftovers of the failed import
    spec = importlib.util.find_spec("stable_baselines3")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("stable-baselines3 is not installed", allow_module_level=True)
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, "common", "vec_env", "base_vec_env.py")
    parents = ["stable_baselines3", "stable_baselines3.common", "stable_baselines3.common.vec_env"]
    for name in parents:
        module = types.ModuleType(name)
        module.__path__ = []  # a package that finds nothing else: no torch behind it
        sys.modules[name] = module
    name = "stable_baselines3.common.vec_env.base_vec_env"
    base_spec = importlib.util.spec_from_file_location(name, path)
    assert base_spec is not None and base_spec.loader is not None
    base = importlib.util.module_from_spec(base_spec)
    sys.modules[name] = base
    base_spec.loader.exec_module(base)
    setattr(sys.modules["stable_baselines3.common.vec_env"], "base_vec_env", base)
    return parents + [name]


_placeholders = _load_sb3_base()

from stable_baselines3.common.vec_env.base_vec_env import VecEnv  # noqa: E402

from depthpilot.envs import DepthPilotEnv  # noqa: E402
from depthpilot.sb3 import DepthPilotSB3VecEnv  # noqa: E402

# depthpilot.sb3 holds the class now; drop the placeholders so that other test modules see
# stable_baselines3 as it really is (not importable without torch).
for _name in _placeholders:
    del sys.modules[_name]

ENV_ID = "DepthPilot/Hover-v0"


def _venv(n: int, **kwargs) -> DepthPilotSB3VecEnv:
    return DepthPilotSB3VecEnv(ENV_ID, n, obs="state", threads=2, **kwargs)


def test_is_an_sb3_vecenv_with_normalised_actions():
    venv = _venv(2)
    assert isinstance(venv, VecEnv)
    assert venv.action_space.shape == (4,)
    assert venv.action_space.dtype == np.float32
    assert np.all(venv.action_space.low == -1.0) and np.all(venv.action_space.high == 1.0)
    low, high = venv.env_action_space.low, venv.env_action_space.high
    assert low[3] == 0.0 and high[3] == 65535.0  # rpyt thrust
    np.testing.assert_array_equal(venv.denormalize(np.array([[-1.0] * 4, [1.0] * 4])), np.stack([low, high]).astype(np.float64))
    np.testing.assert_allclose(venv.denormalize(np.zeros(4)), (low.astype(np.float64) + high) / 2)
    # beyond [-1, 1] is clipped to the bounds
    np.testing.assert_array_equal(venv.denormalize(np.full(4, 3.0)), high.astype(np.float64))
    raw = _venv(1, normalize_actions=False)
    assert raw.action_space == raw.env_action_space
    np.testing.assert_array_equal(raw.denormalize(np.array([1.0, 2.0, 3.0, 40000.0])), [1.0, 2.0, 3.0, 40000.0])


def test_reset_obs_match_observation_space():
    venv = _venv(3)
    obs = venv.reset()
    space = venv.observation_space
    assert set(obs) == set(space.spaces) == {"state", "target", "last_action"}
    for key, sub in space.spaces.items():
        assert obs[key].shape == (3, *sub.shape), key
        assert obs[key].dtype == sub.dtype, key
        for i in range(3):
            assert sub.contains(obs[key][i]), (key, i)
    assert [set(info) for info in venv.reset_infos] == [{"flight_seed"}] * 3
    assert venv.metadata["render_fps"] == 100


def test_step_with_normalised_actions():
    venv = _venv(4)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = rng.uniform(-1.0, 1.0, size=(4, 4)).astype(np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        assert obs["state"].shape == (4, 13)
        assert rewards.dtype == np.float32 and rewards.shape == (4,)
        assert dones.dtype == np.bool_ and dones.shape == (4,)
        assert len(infos) == 4
        for info in infos:
            assert isinstance(info["TimeLimit.truncated"], bool)
            assert info["error_m"] >= 0.0
    # the last action went to the worlds in the environment's units
    expected = venv.denormalize(actions).astype(np.float32)
    np.testing.assert_allclose(obs["last_action"][~dones][:, :3], expected[~dones][:, :3], rtol=1e-6)
    np.testing.assert_allclose(obs["last_action"][~dones][:, 3], expected[~dones][:, 3], atol=0.5)


def _assert_obs_equal(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize(
    "action, policy, truncated",
    [
        # thrust -1 (0 counts) with random attitudes: the episode ends on the floor (terminated)
        ("rpyt", "fall", False),
        # residual 0: the scene's cascade hovers until the 10 s duration truncates the episode
        ("residual", "zero", True),
    ],
)
def test_episode_end_matches_single_env(action, policy, truncated):
    n, seed = 2, 11
    venv = _venv(n, action=action)
    venv.seed(seed)
    obs = venv.reset()
    singles = [DepthPilotEnv(env_id=ENV_ID, action=action, obs="state") for _ in range(n)]
    single_obs = []
    for i, env in enumerate(singles):
        o, info = env.reset(seed=seed + i)
        assert venv.reset_infos[i]["flight_seed"] == info["flight_seed"]
        single_obs.append(o)
    for i in range(n):
        _assert_obs_equal({k: v[i] for k, v in obs.items()}, single_obs[i])

    rng = np.random.default_rng(5)
    ended = [False] * n
    steps_after_end = [0] * n
    for _ in range(1100):
        if policy == "fall":
            actions = rng.uniform(-1.0, 1.0, size=(n, 4)).astype(np.float32)
            actions[:, 3] = -1.0
        else:
            actions = np.full((n, 4), 0.0, dtype=np.float32)  # the middle of a symmetric Box: residual 0
        env_actions = venv.denormalize(actions)
        obs, rewards, dones, infos = venv.step(actions)
        for i, env in enumerate(singles):
            if ended[i]:
                steps_after_end[i] += 1
                if steps_after_end[i] > 5:
                    continue
            o, r, term, trunc, _ = env.step(env_actions[i])
            assert rewards[i] == np.float32(r)
            assert bool(dones[i]) == bool(term or trunc)
            assert infos[i]["TimeLimit.truncated"] == bool(trunc and not term)
            if dones[i]:
                assert not ended[i], "one episode per world in this test"
                ended[i] = True
                assert bool(trunc) == truncated and bool(term) != truncated
                assert infos[i]["end"] != ""
                _assert_obs_equal(infos[i]["terminal_observation"], o)
                o, info = env.reset()  # the next episode, as the world's autoreset
                assert venv.reset_infos[i]["flight_seed"] == info["flight_seed"]
            else:
                assert "terminal_observation" not in infos[i]
            _assert_obs_equal({k: v[i] for k, v in obs.items()}, o)
        if all(ended) and min(steps_after_end) > 5:
            break
    assert all(ended), "every world's episode ended"


def test_seed_then_reset_is_deterministic():
    def run() -> tuple:
        venv = _venv(3)
        assert venv.seed(7) == [7, 8, 9]
        obs = [venv.reset()]
        seeds = [d["flight_seed"] for d in venv.reset_infos]
        rng = np.random.default_rng(1)
        rewards = []
        for _ in range(60):
            o, r, _, _ = venv.step(rng.uniform(-1.0, 1.0, size=(3, 4)).astype(np.float32))
            obs.append(o)
            rewards.append(r)
        again = venv.reset()  # seeds apply once: the next reset flies the next episodes
        return obs, rewards, seeds, [d["flight_seed"] for d in venv.reset_infos], again

    a, b = run(), run()
    assert a[2] == [7, 8, 9]
    for oa, ob in zip(a[0], b[0]):
        _assert_obs_equal(oa, ob)
    np.testing.assert_array_equal(np.array(a[1]), np.array(b[1]))
    assert a[3] == b[3] and a[3] != [7, 8, 9]


@pytest.mark.parametrize("shape", [(2, 3), (4,), (3, 4), (2, 4, 1)])
def test_bad_action_shape_raises(shape):
    venv = _venv(2)
    venv.reset()
    with pytest.raises(ValueError, match="shape"):
        venv.step_async(np.zeros(shape, dtype=np.float32))


def test_nan_action_raises_and_leaves_worlds_unchanged():
    venv, twin = _venv(2), _venv(2)
    venv.reset()
    twin.reset()
    bad = np.zeros((2, 4), dtype=np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError):
        venv.step(bad)
    good = np.full((2, 4), 0.2, dtype=np.float32)
    _assert_obs_equal(venv.step(good)[0], twin.step(good)[0])


def test_options_apply_at_reset_and_must_agree_across_worlds():
    venv = _venv(2)
    venv.set_options({"initial_position_m": [0.5, 0.0, 1.0]})
    obs = venv.reset()
    np.testing.assert_allclose(obs["state"][:, :3], [[0.5, 0.0, 1.0]] * 2, atol=1e-6)
    venv.set_options([{"mass_factor": 1.1}, {"mass_factor": 0.9}])
    with pytest.raises(ValueError, match="one set of reset options"):
        venv.reset()


def test_attributes_and_wrappers():
    venv = _venv(3)
    assert venv.get_attr("num_envs") == [3, 3, 3]
    assert venv.get_attr("render_mode", indices=1) == [None]
    assert venv.env_is_wrapped(object) == [False, False, False]
    with pytest.raises(AttributeError):
        venv.set_attr("render_mode", "human")
    with pytest.raises(AttributeError):
        venv.env_method("reset")
    with pytest.raises(ValueError, match="same_step"):
        DepthPilotSB3VecEnv(ENV_ID, 1, autoreset="next_step")
    venv.close()
