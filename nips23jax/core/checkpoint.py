"""Orbax checkpointing with safe resume.

:class:`Checkpointer` wraps ``orbax.checkpoint.CheckpointManager`` (keep the newest N, async
saves) and adds what a preemptible job needs:

* resume from the **newest intact** step: a step whose files are damaged is moved aside to
  ``<dir>/corrupt_<step>`` (never deleted) and the next older one is tried;
* a clear :class:`CheckpointError` when no step can be restored, or when the checkpoints were
  written by a run with a different fingerprint (config) -- never a silent fresh start that would
  overwrite someone's run.

Partially written saves (a job killed mid-save) live in orbax temporary directories and are
never seen as steps.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from nips23jax.core.distributed import sync_processes

PyTree = Any

__all__ = ["CheckpointError", "Checkpointer"]


class CheckpointError(RuntimeError):
    """Raised when a checkpoint directory exists but cannot be resumed from."""


def _abstract(tree: PyTree) -> PyTree:
    """Shape/dtype/sharding skeleton of ``tree`` used as the restore target."""

    def leaf(x):
        if isinstance(x, jax.Array):
            return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
        return x

    return jax.tree_util.tree_map(leaf, tree)


class Checkpointer:
    """Saves and restores a training-state pytree under ``directory``.

    Args:
      directory: where step subdirectories (``<dir>/<step>/``) are written; created if missing.
      keep: how many of the newest checkpoints to keep (older are deleted by orbax).
      fingerprint: optional string identifying the run (e.g. a hash of its config). It is
        stored with every step; resuming with a different one raises :class:`CheckpointError`.

    Multi-process jobs: every process creates the ``Checkpointer`` on the same (shared) directory
    and calls :meth:`save` and :meth:`restore_latest` together; each process writes the shards it
    holds, and a checkpoint restores into any mesh and process count (the restore target's
    shardings decide who reads what).

    Example::

        ckpt = Checkpointer("/tmp/run/checkpoints", keep=3, fingerprint=cfg_hash)
        restored = ckpt.restore_latest(state)        # None when the directory is empty
        if restored is not None:
            step, state = restored
        ...
        ckpt.save(step, state)
        ckpt.close()                                 # waits for async saves
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, fingerprint: str | None = None):
        if keep is not None and keep < 1:
            raise ValueError(f"Checkpointer: keep must be >= 1, got {keep}")
        self.directory = Path(directory).absolute()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"cannot create checkpoint directory {self.directory}: {e.strerror}") from None
        if not os.access(self.directory, os.W_OK):
            raise CheckpointError(f"checkpoint directory {self.directory} is not writable")
        self.fingerprint = fingerprint
        self._keep = keep
        self._manager = self._new_manager()

    def _new_manager(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=self._keep, create=True)
        return ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def all_steps(self) -> list[int]:
        """Steps with a finalized checkpoint, ascending."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: PyTree) -> None:
        """Saves ``state`` as ``step`` (asynchronously; :meth:`close` waits)."""
        meta = {"step": int(step), "fingerprint": self.fingerprint, "time": time.time()}
        self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True,
        )

    def _read_meta(self, step: int) -> dict[str, Any]:
        path = self.directory / str(step) / "meta" / "metadata"
        if path.exists():
            return json.loads(path.read_text())
        out = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(out["meta"])

    def restore_latest(self, target: PyTree) -> tuple[int, PyTree] | None:
        """Restores the newest intact checkpoint into the structure/shardings of ``target``.

        Returns:
          ``(step, state)``, or ``None`` if the directory holds no checkpoint at all.

        Raises:
          CheckpointError: steps exist but none can be restored, or the newest intact one has a
            different fingerprint.
        """
        steps = self.all_steps()
        if not steps:
            return None
        abstract = _abstract(target)
        failures: list[tuple[int, str]] = []
        for step in reversed(steps):
            try:
                meta = self._read_meta(step)
                state = self._manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
                )["state"]
            except Exception as e:  # noqa: BLE001 - any failure means "this step is not usable"
                failures.append((step, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
                continue
            if self.fingerprint is not None and meta.get("fingerprint") not in (None, self.fingerprint):
                raise CheckpointError(
                    f"checkpoints in {self.directory} were written by a different run (fingerprint "
                    f"{meta.get('fingerprint')!r}, expected {self.fingerprint!r}); use another output "
                    "directory or start fresh explicitly"
                )
            if failures:
                for bad_step, why in failures:
                    self._quarantine(bad_step, why)
                sync_processes(f"nips23jax_checkpoint_quarantine_{step}")
                self._manager = self._new_manager()
            return step, state
        detail = "; ".join(f"step {s}: {why}" for s, why in failures)
        raise CheckpointError(
            f"no checkpoint in {self.directory} could be restored ({detail}); refusing to start over "
            "in a directory that holds a run"
        )

    def _quarantine(self, step: int, why: str) -> None:
        src = self.directory / str(step)
        dst = self.directory / f"corrupt_{step}"
        i = 1
        while dst.exists():
            dst = self.directory / f"corrupt_{step}_{i}"
            i += 1
        if jax.process_index() == 0:  # one process moves it; the others wait at the barrier
            src.rename(dst)
        warnings.warn(
            f"checkpoint step {step} in {self.directory} is damaged ({why}); moved it to {dst.name} "
            "and resumed from an older step",
            RuntimeWarning,
            stacklevel=3,
        )

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
