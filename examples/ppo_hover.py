"""PPO learns to hover the simulated Crazyflie (stable-baselines3, state observations).

    pip install stable-baselines3 matplotlib   # + the depthpilot wheel
    python examples/ppo_hover.py               # ~10 minutes on 2 cores
    python examples/ppo_hover.py --timesteps 200000 --out-dir /tmp/ppo

Environment: ``DepthPilot/Hover-v0`` with ``obs="state"`` (position, velocity, attitude
quaternion, body rates, the setpoint, the last action: no rendering), through
:class:`depthpilot.sb3.DepthPilotSB3VecEnv` (num_envs worlds stepped in Rust on ``--threads``
threads, actions normalised to [-1, 1]), ``VecMonitor`` (episode returns and lengths, as the
environment pays them) and ``VecNormalize`` (running mean/std of observations and of the
discounted return, for the networks only; the recorded returns are the raw ones).

Action mode ``rpyt`` (the default): ``[roll_deg, pitch_deg, yaw_rate_deg_s, thrust]`` as cflib's
``send_setpoint``, from scratch: the policy has to find the hover thrust and level the
attitude itself. The reward is ``exp(-(e / 0.3 m)^2)`` per 10 ms step (at most 1000 for the
10 s episode); touching the floor, a crash or straying 2 m ends the episode with -10. The
untrained policy falls to the floor in about 1.5 s (return ~53). ``rpyt`` is the mode this
example uses because it shows learning: with the defaults (seed 0, 16 envs) the episodes last
the full 10 s from ~120k steps (the policy has found the hover thrust), and the return climbs to
~990 by 0.3M steps and 999 at 2M (the scene's cascade scores 999.6), about 330 s of wall time
at ~6000 steps/s on 2 idle cores (docs/ppo_hover.png). ``--action residual`` (a correction
on top of the scene's cascade) starts at the cascade's ~1000 already, so its curve would show
little rise.

Output: ``<out-dir>/ppo_hover.csv`` (one row per rollout: timesteps, wall time, episodes that
ended in the rollout, their mean return and length, and SB3's rolling mean over the last 100
episodes) and ``<out-dir>/ppo_hover.png`` (mean episode return vs timesteps).
"""

from __future__ import annotations

import argparse
import csv
import os
import time

import numpy as np


def cascade_return(num_envs: int, threads: int, seed: int) -> float:
    """The mean return of the scene's own cascade (residual 0) over one episode per world:
    a reference line for the plot."""
    from depthpilot.envs import DepthPilotVectorEnv

    env = DepthPilotVectorEnv(num_envs, env_id="DepthPilot/Hover-v0", action="residual", obs="state", threads=threads, autoreset="same_step")
    env.reset(seed=seed)
    total = np.zeros(num_envs)
    running = np.ones(num_envs, dtype=bool)
    zero = np.zeros((num_envs, 4))
    while running.any():
        _, r, term, trunc, _ = env.step(zero)
        total += np.where(running, r, 0.0)
        running &= ~(term | trunc)
    env.close()
    return float(total.mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--timesteps", type=int, default=2_000_000, help="environment steps in total (the default takes ~5.5 min on 2 idle cores)")
    p.add_argument("--max-minutes", type=float, default=9.5, help="stop learning after this much wall time even if --timesteps is not reached")
    p.add_argument("--action", choices=["rpyt", "residual"], default="rpyt")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="Rust threads stepping the worlds")
    p.add_argument("--n-steps", type=int, default=512, help="steps per world per rollout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs"))
    args = p.parse_args()

    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from depthpilot.sb3 import DepthPilotSB3VecEnv

    # One torch thread: the networks are tiny (16 x 20 inputs per step), and a second torch
    # thread made every forward pass several times slower on 2 cores (thread hand-off costs
    # more than the matrix products); the worlds step on --threads Rust threads meanwhile.
    torch.set_num_threads(1)
    env_id = "DepthPilot/Hover-v0"
    reference = cascade_return(args.num_envs, args.threads, args.seed + 10_000)
    print(f"the scene's cascade alone: mean return {reference:.1f} per episode", flush=True)

    venv = DepthPilotSB3VecEnv(env_id, args.num_envs, action=args.action, obs="state", threads=args.threads)
    venv = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=True, gamma=0.99)

    rows: list[dict] = []
    t0 = time.time()

    class Record(BaseCallback):
        """Per rollout: the episodes that ended in it (VecMonitor's info["episode"])."""

        over_budget = False

        def _on_rollout_start(self) -> None:
            self.returns: list[float] = []
            self.lengths: list[int] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                ep = info.get("episode")
                if ep is not None:
                    self.returns.append(float(ep["r"]))
                    self.lengths.append(int(ep["l"]))
            return not self.over_budget

        def _on_rollout_end(self) -> None:
            buf = [float(e["r"]) for e in self.model.ep_info_buffer]
            row = {
                "timesteps": self.num_timesteps,
                "wall_s": round(time.time() - t0, 2),
                "episodes": len(self.returns),
                "mean_return": round(float(np.mean(self.returns)), 3) if self.returns else "",
                "mean_length": round(float(np.mean(self.lengths)), 1) if self.lengths else "",
                "ep_rew_mean_100": round(float(np.mean(buf)), 3) if buf else "",
            }
            rows.append(row)
            self.over_budget = row["wall_s"] > args.max_minutes * 60.0
            print(
                f"{row['timesteps']:>9} steps {row['wall_s']:>7.1f} s  episodes {row['episodes']:>4}  "
                f"mean return {row['mean_return']!s:>8}  length {row['mean_length']!s:>6}  last-100 {row['ep_rew_mean_100']!s:>8}",
                flush=True,
            )

    model = PPO(
        "MultiInputPolicy",
        venv,
        n_steps=args.n_steps,
        batch_size=1024,
        n_epochs=10,
        learning_rate=3e-4,
        gamma=0.99,
        gae_lambda=0.95,
        clip_range=0.2,
        ent_coef=0.0,
        policy_kwargs=dict(net_arch=[64, 64], log_std_init=-0.5),
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    model.learn(total_timesteps=args.timesteps, callback=Record())
    wall_s = time.time() - t0
    venv.close()
    print(f"done: {model.num_timesteps} steps in {wall_s:.0f} s ({model.num_timesteps / wall_s:.0f} steps/s)", flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = os.path.join(args.out_dir, "ppo_hover.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = np.array([r["timesteps"] for r in rows], dtype=float)
    mean = np.array([np.nan if r["mean_return"] == "" else r["mean_return"] for r in rows], dtype=float)
    roll = np.array([np.nan if r["ep_rew_mean_100"] == "" else r["ep_rew_mean_100"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(ts, mean, ".", color="tab:blue", alpha=0.6, label="episodes ended in the rollout (mean)")
    ax.plot(ts, roll, "-", color="tab:blue", label="last 100 episodes (mean)")
    ax.axhline(reference, color="gray", ls="--", lw=1, label=f"scene's cascade alone ({reference:.0f})")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("episode return")
    ax.set_title(
        f"PPO on {env_id} (obs state, action {args.action}), {args.num_envs} envs, "
        f"{args.threads} threads: {model.num_timesteps:,} steps in {wall_s / 60:.1f} min wall",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    png_path = os.path.join(args.out_dir, "ppo_hover.png")
    fig.savefig(png_path)
    print(f"wrote {csv_path} and {png_path}", flush=True)


if __name__ == "__main__":
    main()
