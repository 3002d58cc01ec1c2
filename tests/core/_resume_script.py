"""Trains tiny-lm's model for a fixed number of steps; optionally SIGKILLs itself mid-run.

Usage: python _resume_script.py WORKDIR NUM_STEPS KILL_AT   (KILL_AT < 0: never)
Writes WORKDIR/final.npz with the final parameters when it finishes.
"""

import os
import signal
import sys

import jax
import numpy as np

from nips23jax.core.config import load_config
from nips23jax.core.train import fit
from nips23jax.reproductions.tiny_lm import build

workdir, num_steps, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = load_config(
    "tiny_lm",
    quick=True,
    overrides=["model.d_model=32", "model.d_ff=64", "model.num_layers=1", "train.batch_size=16"],
)
_, _, _, state, train_step, batch_fn = build(config)


def kill_midway(done, state, metrics):
    if done == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, async saves may be in flight


out = fit(
    state, train_step, batch_fn, num_steps=num_steps, workdir=workdir, checkpoint_every=10,
    log_every=5, callbacks=[kill_midway], progress=False,
)
np.savez(os.path.join(workdir, "final.npz"), *[np.asarray(x) for x in jax.tree.leaves(out.state.params)])
print("resumed_from", out.resumed_from)
