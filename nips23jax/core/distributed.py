"""Multi-process runs on ``jax.distributed``: initialization, per-process data, process-0 output, a launcher.

One JAX program runs as several processes (a TPU pod slice: one per host; a GPU cluster: one per node
or per GPU; here, for testing, several on one machine). Each process drives its local devices, and
``jax.devices()`` lists the devices of all of them, so a mesh from :func:`~nips23jax.core.make_mesh`
spans the whole job and the same jitted train step runs unchanged.

Pieces:

* :func:`initialize` -- starts ``jax.distributed`` from the environment: the variables that
  :func:`launch` sets, or a cluster it detects (SLURM, Open MPI, Cloud TPU pod slices; see
  :func:`detect_cluster`), with bounded timeouts. A single process with no cluster: a no-op.
* :func:`process_rows`, :func:`local_batch`, :func:`global_batch` -- each process loads only its own
  rows of the global batch and ``jax.make_array_from_process_local_data`` assembles the global array.
* :func:`is_main_process`, :func:`main_print`, :func:`gather` -- output from process 0 only; arrays
  gathered to every host for saving or printing.
* :func:`launch` -- starts N local processes with a coordinator on 127.0.0.1, prefixes and
  interleaves their output, and stops them all as soon as one fails (``nips23jax launch``).

Faults. A process that exits with an error or is killed is seen by :func:`launch` at once: it stops
the others and exits non-zero naming the process. A process that hangs (stopped, frozen host,
network partition) stops sending heartbeats to the coordination service; after
``heartbeat_timeout`` seconds (default :data:`DEFAULT_HEARTBEAT_TIMEOUT_S` = 60) ``jax.distributed``
terminates every other process with a message naming the unhealthy task, and :func:`launch` exits
non-zero. A process that cannot reach the coordinator gives up after ``initialization_timeout``
(default :data:`DEFAULT_INITIALIZATION_TIMEOUT_S` = 120). Restarting the same command resumes from
the newest complete checkpoint (:func:`nips23jax.core.fit`).

Example (a script run by ``nips23jax launch -n 2 --devices-per-process 2 -- python train.py``)::

    info = initialize()                                  # before any other JAX call
    mesh = make_mesh({"data": -1})                       # all devices of all processes
    rows = process_rows(global_batch_size, mesh)         # this process's slice of each batch
    batch = global_batch(load_examples(rows), mesh)      # a global jax.Array
    main_print(f"{info.process_count} processes, {jax.device_count()} devices")
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any, NamedTuple

PyTree = Any

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT_S",
    "DEFAULT_INITIALIZATION_TIMEOUT_S",
    "ENV_COORDINATOR",
    "ENV_DISTRIBUTED",
    "ENV_HEARTBEAT_TIMEOUT",
    "ENV_NUM_PROCESSES",
    "ENV_PROCESS_ID",
    "LaunchResult",
    "ProcessInfo",
    "command_for",
    "detect_cluster",
    "free_port",
    "gather",
    "global_batch",
    "initialize",
    "is_main_process",
    "launch",
    "local_batch",
    "main_print",
    "process_info",
    "process_rows",
    "sync_processes",
]

DEFAULT_HEARTBEAT_TIMEOUT_S: int = 60
"""Seconds without heartbeats after which ``jax.distributed`` declares a process dead and stops the job."""
DEFAULT_INITIALIZATION_TIMEOUT_S: int = 120
"""Seconds a process waits for the others (and the coordinator) at start-up before it fails."""

ENV_COORDINATOR = "NIPS23JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "NIPS23JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "NIPS23JAX_PROCESS_ID"
ENV_HEARTBEAT_TIMEOUT = "NIPS23JAX_HEARTBEAT_TIMEOUT"
ENV_LAUNCHER_PID = "NIPS23JAX_LAUNCHER_PID"
ENV_DISTRIBUTED = "NIPS23JAX_DISTRIBUTED"
"""``0``: never initialize ``jax.distributed``; ``1``: always (JAX's own cluster detection); unset: detect."""

_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


class ProcessInfo(NamedTuple):
    """Where this process stands in the job (what :func:`initialize` returns)."""

    process_index: int
    process_count: int
    local_device_count: int
    device_count: int
    cluster: str | None
    """How the job was set up: ``"launch"``, ``"slurm"``, ``"ompi"``, ``"tpu"``, ``"env"``, ``"explicit"``
    (arguments to :func:`initialize`), or None (a lone process)."""


def _int_env(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def _tpu_worker_count(environ: Mapping[str, str]) -> int:
    """Hosts in this Cloud TPU slice (1 when not on a TPU VM); env first, then JAX's metadata query."""
    hosts = environ.get("TPU_WORKER_HOSTNAMES")
    if hosts:
        return len([h for h in hosts.split(",") if h.strip()])
    try:  # JAX's own detection; private, so any failure means "not a pod slice"
        from jax._src import cloud_tpu_init
        from jax._src.clusters import cloud_tpu_cluster

        if not cloud_tpu_init.running_in_cloud_tpu_vm or environ.get("TPU_SKIP_MDS_QUERY") is not None:
            return 1
        endpoints, code = cloud_tpu_cluster.get_metadata("worker-network-endpoints")
        if code != cloud_tpu_cluster.metadata_response_code_success:
            return 1
        return max(1, len([e for e in endpoints.split(",") if e.strip()]))
    except Exception:  # noqa: BLE001
        return 1


def detect_cluster(environ: Mapping[str, str] | None = None) -> str | None:
    """Names the multi-process environment this process runs in, or None for a lone process.

    Checked in order: the variables :func:`launch` sets (``"launch"``); ``NIPS23JAX_DISTRIBUTED=1``
    (``"env"``: JAX's own detection decides); a SLURM job step with more than one task (``srun``;
    ``"slurm"``); Open MPI with more than one rank (``mpirun``; ``"ompi"``); a Cloud TPU VM in a slice of
    more than one host (``"tpu"``). ``NIPS23JAX_DISTRIBUTED=0`` turns detection off. A single SLURM
    task, a single-host TPU VM or Colab is a lone process: nothing to initialize.

    Args:
      environ: the environment to read (default ``os.environ``).

    Returns:
      ``"launch"``, ``"env"``, ``"slurm"``, ``"ompi"``, ``"tpu"`` or None.
    """
    env = os.environ if environ is None else environ
    flag = env.get(ENV_DISTRIBUTED, "").strip().lower()
    if flag in ("0", "false", "no", "off"):
        return None
    if env.get(ENV_COORDINATOR):
        return "launch"
    if flag in ("1", "true", "yes", "on", "auto"):
        return "env"
    if flag:
        raise ValueError(f"environment variable {ENV_DISTRIBUTED}={flag!r}: expected 0 or 1")
    if all(v in env for v in _SLURM_VARS) and (_int_env(env, "SLURM_NTASKS") or 1) > 1:
        return "slurm"
    if "OMPI_MCA_orte_hnp_uri" in env and (_int_env(env, "OMPI_COMM_WORLD_SIZE") or 1) > 1:
        return "ompi"
    if _tpu_worker_count(env) > 1:
        return "tpu"
    return None


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    heartbeat_timeout: int | None = None,
    initialization_timeout: int = DEFAULT_INITIALIZATION_TIMEOUT_S,
    environ: Mapping[str, str] | None = None,
) -> ProcessInfo:
    """Starts ``jax.distributed`` for this process when it is part of a multi-process job.

    Call it once, first thing, before any other JAX computation. Explicit arguments win; otherwise
    the environment decides (:func:`detect_cluster`): under :func:`launch` the coordinator, process
    count and index come from ``NIPS23JAX_*`` variables; under SLURM, Open MPI or on a TPU pod slice
    ``jax.distributed.initialize()`` finds them itself. A lone process is left alone (no-op), so
    library code and notebooks can call this unconditionally. Calling it again is a no-op.

    CPU processes exchange collectives through gloo (set here before the backend starts).

    Args:
      coordinator_address: ``host:port`` of process 0's coordination service.
      num_processes: processes in the job.
      process_id: this process's index in ``0 .. num_processes - 1``.
      heartbeat_timeout: seconds without heartbeats after which a process is declared dead and all
        others are terminated (default: ``$NIPS23JAX_HEARTBEAT_TIMEOUT`` or
        :data:`DEFAULT_HEARTBEAT_TIMEOUT_S`). Also bounds the shutdown barrier.
      initialization_timeout: seconds to wait for all processes to join.
      environ: the environment to read (default ``os.environ``).

    Returns:
      :class:`ProcessInfo` for this process.

    Raises:
      ValueError: inconsistent arguments or malformed ``NIPS23JAX_*`` variables.
    """
    import jax

    env = os.environ if environ is None else environ
    explicit = any(a is not None for a in (coordinator_address, num_processes, process_id))
    cluster = "explicit" if explicit else detect_cluster(env)
    if cluster == "launch":
        _die_with_launcher(env)
        coordinator_address = env[ENV_COORDINATOR]
        num_processes = _int_env(env, ENV_NUM_PROCESSES)
        process_id = _int_env(env, ENV_PROCESS_ID)
        if num_processes is None or process_id is None:
            raise ValueError(f"{ENV_COORDINATOR} is set, so {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be too")
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"initialize: num_processes must be >= 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"initialize: process_id must be in [0, {num_processes}), got {process_id}")
    if heartbeat_timeout is None:
        heartbeat_timeout = _int_env(env, ENV_HEARTBEAT_TIMEOUT) or DEFAULT_HEARTBEAT_TIMEOUT_S
    if heartbeat_timeout < 1 or initialization_timeout < 1:
        raise ValueError(
            f"initialize: timeouts must be >= 1 s, got heartbeat_timeout={heartbeat_timeout}, "
            f"initialization_timeout={initialization_timeout}"
        )
    if cluster is not None and not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=int(initialization_timeout),
            heartbeat_timeout_seconds=int(heartbeat_timeout),
            shutdown_timeout_seconds=int(heartbeat_timeout),
        )
    return process_info(cluster)


def process_info(cluster: str | None = None) -> ProcessInfo:
    """:class:`ProcessInfo` of the running process (starts the JAX backend if it is not yet)."""
    import jax

    return ProcessInfo(jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(), cluster)


def is_main_process() -> bool:
    """True on process 0, the one that prints, logs metrics and writes reports."""
    import jax

    return jax.process_index() == 0


def sync_processes(name: str) -> None:
    """Waits until every process reaches this point (a barrier named ``name``); a no-op on one process."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def main_print(*args: Any, **kwargs: Any) -> None:
    """``print`` on process 0 only (every process calls it; the others stay quiet)."""
    if is_main_process():
        print(*args, **kwargs)


# ------------------------------------------------------------------------------------------------
# Per-process data


def _batch_sharding(mesh_or_sharding: Any, axes: Sequence[str] | None):
    from jax.sharding import NamedSharding

    from nips23jax.core.sharding import BATCH_AXES, batch_sharding

    if isinstance(mesh_or_sharding, NamedSharding):
        return mesh_or_sharding
    return batch_sharding(mesh_or_sharding, BATCH_AXES if axes is None else axes)


def process_rows(global_size: int, mesh_or_sharding: Any, axes: Sequence[str] | None = None) -> slice:
    """The rows ``[start, stop)`` of a global batch of ``global_size`` rows that this process holds.

    The global batch's leading axis is split over the mesh ``axes`` (default ``data`` x ``fsdp``);
    each process holds the rows of its own devices, a contiguous block (``jax.make_mesh`` keeps a
    process's devices together). With one process: ``slice(0, global_size)``.

    Args:
      global_size: leading dimension of the global batch, divisible by the batch axes' size.
      mesh_or_sharding: the mesh, or the batch's ``NamedSharding``.
      axes: mesh axes the batch is split over (ignored when a sharding is given).

    Returns:
      ``slice(start, stop)``.

    Raises:
      ValueError: ``global_size`` does not divide evenly, or this process's rows are not contiguous.
    """
    sharding = _batch_sharding(mesh_or_sharding, axes)
    n = math.prod(sharding.mesh.shape[a] for a in _spec_axes(sharding))
    if global_size < 1 or global_size % n:
        raise ValueError(f"process_rows: global_size {global_size} must be a positive multiple of the {n} batch shards")
    starts, stops = set(), set()
    for index in sharding.addressable_devices_indices_map((global_size,)).values():
        s = index[0]
        starts.add(s.start or 0)
        stops.add(global_size if s.stop is None else s.stop)
    start, stop = min(starts), max(stops)
    covered = sorted(zip(sorted(starts), sorted(stops)))
    if any(b[0] > a[1] for a, b in zip(covered, covered[1:])):
        raise ValueError(f"process_rows: this process's batch rows {covered} are not contiguous; reorder the mesh")
    return slice(start, stop)


def _spec_axes(sharding) -> tuple[str, ...]:
    first = sharding.spec[0] if len(sharding.spec) else None
    if first is None:
        return ()
    return (first,) if isinstance(first, str) else tuple(first)


def local_batch(batch: PyTree, mesh_or_sharding: Any, axes: Sequence[str] | None = None) -> PyTree:
    """This process's rows of a global batch that every process holds in full (NumPy slices).

    For data that is cheap to produce everywhere; a loader that can read its own rows should call
    :func:`process_rows` and read only those.
    """
    import jax
    import numpy as np

    leaves = jax.tree.leaves(batch)
    if not leaves:
        return batch
    rows = process_rows(np.shape(leaves[0])[0], mesh_or_sharding, axes)
    return jax.tree.map(lambda x: np.asarray(x)[rows], batch)


def global_batch(local: PyTree, mesh_or_sharding: Any, axes: Sequence[str] | None = None) -> PyTree:
    """Assembles global ``jax.Array`` batches from each process's rows (``make_array_from_process_local_data``).

    Every process calls it with its own rows (``process_rows(B, mesh)`` of a global batch of ``B``
    rows, in order); the result is one array of leading dimension ``B`` split over the batch axes.
    With one process it is ``device_put`` onto the batch sharding.

    Args:
      local: pytree of arrays whose leading dimension is ``B / process_count``.
      mesh_or_sharding: the mesh (the batch is split over ``axes``, default ``data`` x ``fsdp``) or
        the batch's ``NamedSharding``.
      axes: mesh axes of the batch dimension.

    Returns:
      The pytree of global arrays.
    """
    import jax
    import numpy as np

    from nips23jax.core.sharding import path_to_str

    sharding = _batch_sharding(mesh_or_sharding, axes)
    n_proc = jax.process_count()

    def put(path, x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        if x.ndim == 0:
            raise ValueError(f"global_batch: leaf {path_to_str(path)!r} is a scalar; batch leaves need a leading axis")
        shape = (x.shape[0] * n_proc, *x.shape[1:])
        rows = process_rows(shape[0], sharding)
        if rows.stop - rows.start != x.shape[0]:
            raise ValueError(
                f"global_batch: leaf {path_to_str(path)!r} has {x.shape[0]} local rows, but this process holds "
                f"rows {rows.start}:{rows.stop} of the global batch"
            )
        return jax.make_array_from_process_local_data(sharding, x, shape)

    return jax.tree_util.tree_map_with_path(put, local)


def gather(tree: PyTree) -> PyTree:
    """Every leaf as a full NumPy array on every process (``process_allgather`` for global arrays).

    All processes must call it (it is a collective when arrays span processes). Use it to save or
    print parameters; ``np.asarray`` fails on an array that spans other processes' devices.
    """
    import jax
    import numpy as np

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(one, tree)


# ------------------------------------------------------------------------------------------------
# The local launcher


class LaunchResult(NamedTuple):
    """Outcome of :func:`launch`: exit code, the first process that failed (or None), and why."""

    returncode: int
    failed_process: int | None
    message: str


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


_TASK = re.compile(r"task:(\d+)")
_TASK_LINE = re.compile(r"(?:\S*task:)?(\d+),?")


def _child_env(base: Mapping[str, str], i: int, n: int, address: str, devices: int | None, heartbeat: int) -> dict:
    env = dict(base)
    env.update({ENV_COORDINATOR: address, ENV_NUM_PROCESSES: str(n), ENV_PROCESS_ID: str(i),
                ENV_HEARTBEAT_TIMEOUT: str(heartbeat), ENV_LAUNCHER_PID: str(os.getpid()), "PYTHONUNBUFFERED": "1"})
    if devices is not None:
        flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", "")).split()
        env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"])
        env["JAX_PLATFORMS"] = "cpu"
    return env


def _die_with_launcher(environ: Mapping[str, str]) -> None:
    """In a launched process (Linux): SIGKILL when the launcher dies, so no process outlives a killed launch."""
    launcher = _int_env(environ, ENV_LAUNCHER_PID)
    if launcher is None or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        return
    if os.getppid() != launcher:  # the launcher died before the line above
        os._exit(1)


def launch(
    command: Sequence[str],
    num_processes: int,
    *,
    devices_per_process: int | None = None,
    port: int | None = None,
    heartbeat_timeout: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
    timeout: float | None = None,
    grace: float = 5.0,
    env: Mapping[str, str] | None = None,
    out: IO[str] | None = None,
    cwd: str | os.PathLike | None = None,
) -> LaunchResult:
    """Runs ``command`` as ``num_processes`` local processes of one ``jax.distributed`` job.

    Each process gets ``NIPS23JAX_COORDINATOR_ADDRESS=127.0.0.1:<port>``, ``NIPS23JAX_NUM_PROCESSES``,
    ``NIPS23JAX_PROCESS_ID`` and ``NIPS23JAX_HEARTBEAT_TIMEOUT`` (read by :func:`initialize`, which
    ``nips23jax`` commands call first). Their output is merged and each line prefixed with
    ``[i] ``. When one process exits non-zero or is killed, the others are stopped (SIGTERM, then
    SIGKILL after ``grace`` seconds) and the launch fails, naming that process.

    Args:
      command: the program and its arguments, e.g. ``[sys.executable, "-m", "nips23jax", "reproduce", ...]``.
      num_processes: processes to start (>= 1).
      devices_per_process: simulated CPU devices per process (sets ``JAX_PLATFORMS=cpu`` and
        ``--xla_force_host_platform_device_count``); None keeps the inherited environment.
      port: the coordinator's port on 127.0.0.1 (default: a free one).
      heartbeat_timeout: seconds after which a hung process is declared dead (see :func:`initialize`).
      timeout: wall-clock limit in seconds for the whole job (None: none); on expiry every
        process is stopped and the return code is 124.
      grace: seconds between SIGTERM and SIGKILL when stopping processes.
      env: base environment (default ``os.environ``).
      out: where the prefixed output goes (default ``sys.stdout``).
      cwd: working directory of the processes.

    Returns:
      :class:`LaunchResult`; ``returncode`` is 0 when every process succeeded, else the failed
      process's exit status (128 + signal number if it was killed), 124 on ``timeout``.
    """
    if not command:
        raise ValueError("launch: command is empty; give the program to run after --")
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"launch: num_processes must be a positive int, got {num_processes!r}")
    if devices_per_process is not None and (not isinstance(devices_per_process, int) or devices_per_process < 1):
        raise ValueError(f"launch: devices_per_process must be a positive int, got {devices_per_process!r}")
    if heartbeat_timeout < 1:
        raise ValueError(f"launch: heartbeat_timeout must be >= 1 s, got {heartbeat_timeout}")
    out = sys.stdout if out is None else out
    address = f"127.0.0.1:{free_port() if port is None else port}"
    base = os.environ if env is None else env
    lock = threading.Lock()
    tails: list[list[str]] = [[] for _ in range(num_processes)]

    def pump(i: int, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\r\n")
            tails[i] = (tails[i] + [line])[-200:]
            with lock:
                out.write(f"[{i}] {line}\n")
                out.flush()
        stream.close()

    procs: list[subprocess.Popen] = []
    pumps: list[threading.Thread] = []
    for i in range(num_processes):
        try:
            p = subprocess.Popen(
                list(command), env=_child_env(base, i, num_processes, address, devices_per_process, heartbeat_timeout),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
                start_new_session=True,
            )
        except OSError:
            for q in procs:
                _signal_group(q, signal.SIGKILL)
                q.wait()
            raise
        procs.append(p)
        t = threading.Thread(target=pump, args=(i, p.stdout), daemon=True)
        t.start()
        pumps.append(t)

    def stop_all() -> None:
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            _signal_group(p, signal.SIGTERM)
            _signal_group(p, signal.SIGCONT)  # a stopped (hung) process must run to see SIGTERM
        deadline = time.monotonic() + grace
        for p in alive:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()

    def finish(code: int, failed: int | None, message: str) -> LaunchResult:
        for t in pumps:
            t.join(timeout=2.0)
        if message:
            with lock:
                out.write(f"nips23jax launch: {message}\n")
                out.flush()
        return LaunchResult(code, failed, message)

    start = time.monotonic()
    try:
        while True:
            codes = [p.poll() for p in procs]
            bad = [i for i, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                i = bad[0]
                stop_all()
                code = codes[i] if codes[i] > 0 else 128 - codes[i]
                message = f"process {i} of {num_processes} {_describe_exit(codes[i])}; stopped the others"
                hung = _unhealthy_tasks(tails[i])
                if hung:
                    message += f" (jax.distributed: process {', '.join(map(str, hung))} stopped sending heartbeats)"
                return finish(code, i, message)
            if all(c == 0 for c in codes):
                return finish(0, None, "")
            if timeout is not None and time.monotonic() - start > timeout:
                stop_all()
                return finish(124, None, f"timed out after {timeout:g} s; stopped all {num_processes} processes")
            time.sleep(0.05)
    except BaseException:  # KeyboardInterrupt, SystemExit: never leave processes behind
        stop_all()
        raise


def _unhealthy_tasks(lines: Sequence[str]) -> list[int]:
    """Task ids that ``jax.distributed`` reported as unhealthy in a process's last output lines.

    JAX prints ``The following tasks are unhealthy (stopped sending heartbeats):`` followed by one task
    per line, either a bare index (``1``) or a task name (``/job:jax_worker/replica:0/task:1``).
    """
    ids: set[int] = set()
    for j, line in enumerate(lines):
        if "unhealthy" not in line:
            continue
        ids.update(int(m) for m in _TASK.findall(line))
        for following in lines[j + 1:j + 1 + 1024]:
            m = _TASK_LINE.fullmatch(following.strip())
            if not m:
                break
            ids.add(int(m.group(1)))
    return sorted(ids)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass


def command_for(args: Sequence[str], nips23jax_commands: Sequence[str] = ()) -> list[str]:
    """The program to launch for ``nips23jax launch -- ARGS``.

    ``ARGS`` that start with a ``nips23jax`` subcommand (``reproduce tiny-lm``) or with ``nips23jax``
    itself run as ``python -m nips23jax ...`` in this interpreter; anything else (``python train.py``)
    runs as given.
    """
    args = list(args)
    if args and args[0] == "nips23jax":
        args = args[1:]
        return [sys.executable, "-m", "nips23jax", *args]
    if args and args[0] in nips23jax_commands:
        return [sys.executable, "-m", "nips23jax", *args]
    return args

