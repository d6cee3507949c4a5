"""Data-parallel training over several processes on keras.distribution (JAX).

Each process of an N-process job runs the same `zoo train` command with its
own process id; `jax.distributed` connects them through the coordinator
(process 0), and `keras.distribution.DataParallel` replicates the model
over every process's devices. Each process reads its own part of every
global batch (`zoo.data.load(shard=...)`), gradients are averaged by XLA's
collectives (gloo on CPUs, NCCL on GPUs), and only process 0 writes the
run's files. docs/distributed.md has the whole story.

* `process_group(...)`: the job from `--coordinator/--num-processes/
  --process-id` or from ZOO_COORDINATOR / ZOO_NUM_PROCESSES /
  ZOO_PROCESS_ID (or SLURM_NTASKS / SLURM_PROCID under SLURM).
* `start(group)`: joins the job (JAX backend only).
* `launch(argv, n)`: `zoo train ... --processes N`: N local processes on
  127.0.0.1, watched: if one exits with an error the others are stopped and
  an error says which and why — nothing hangs.

The coordinator has no authentication: keep it on 127.0.0.1 or a trusted
network.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from zoo.errors import InputError, ZooError

ENV = {"coordinator": "ZOO_COORDINATOR", "num_processes": "ZOO_NUM_PROCESSES",
       "process_id": "ZOO_PROCESS_ID"}
SLURM = {"num_processes": "SLURM_NTASKS", "process_id": "SLURM_PROCID"}
# A process that stops answering is declared dead after this many seconds;
# the others then stop (jax.distributed's heartbeat).
HEARTBEAT_TIMEOUT_S = 30
# How long processes wait for each other to join.
JOIN_TIMEOUT_S = 300


class DistributedError(ZooError, RuntimeError):
    """A process of a multi-process job failed; the job stopped."""


@dataclass(frozen=True)
class ProcessGroup:
    """One process's place in an N-process job."""

    coordinator: str
    num_processes: int
    process_id: int

    @property
    def is_chief(self) -> bool:
        return self.process_id == 0

    @property
    def shard(self):
        """The `shard` argument of zoo.data.load."""
        return (self.process_id, self.num_processes)


def _int(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer; got {value!r}.") from None


def process_group(coordinator=None, num_processes=None, process_id=None,
                  environ=None) -> ProcessGroup | None:
    """The ProcessGroup given by arguments or the environment (arguments
    win), or None when nothing asks for several processes.

    Example:
        >>> process_group("10.0.0.1:7777", 4, 2)
        ProcessGroup(coordinator='10.0.0.1:7777', num_processes=4, process_id=2)
    """
    env = os.environ if environ is None else environ
    values = {"coordinator": coordinator, "num_processes": num_processes,
              "process_id": process_id}
    for key, value in values.items():
        if value is None:
            values[key] = env.get(ENV[key]) or env.get(SLURM.get(key, ""), None)
    if all(v is None for v in values.values()):
        return None
    missing = [f"--{k.replace('_', '-')} ({ENV[k]})" for k, v in values.items()
               if v is None]
    if missing:
        raise InputError("A multi-process run needs the coordinator address, the "
                         "number of processes and this process's id; missing: "
                         f"{', '.join(missing)}.")
    n = _int(values["num_processes"], "num_processes")
    i = _int(values["process_id"], "process_id")
    if n < 1 or not 0 <= i < n:
        raise InputError(f"process_id must be in 0..{n - 1} for {n} processes; "
                         f"got {i}.")
    host, _, port = str(values["coordinator"]).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"The coordinator address must be HOST:PORT; got "
                         f"{values['coordinator']!r}.")
    return ProcessGroup(str(values["coordinator"]), n, i)


def start(group: ProcessGroup):
    """Joins the job and installs keras.distribution's DataParallel over
    the devices of every process (JAX backend)."""
    import keras
    if keras.backend.backend() != "jax":
        raise InputError("Multi-process training runs on keras.distribution with "
                         "the JAX backend; this process runs Keras on "
                         f"{keras.backend.backend()}. Add --backend jax (or set "
                         "KERAS_BACKEND=jax).")
    import jax
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(
            coordinator_address=group.coordinator, num_processes=group.num_processes,
            process_id=group.process_id, initialization_timeout=JOIN_TIMEOUT_S,
            heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
            # The coordinator listens on the address it was given, not on
            # every interface.
            coordinator_bind_address=group.coordinator if group.is_chief else None)
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=jax.devices(), auto_shard_dataset=False))


@contextlib.contextmanager
def local_only():
    """Runs the block outside keras.distribution (a no-op without one).

    Saving a model creates Keras variables (e.g. a throw-away optimizer),
    and under a multi-process distribution every variable creation is a
    collective that all processes must join. Process 0 writes files alone,
    so it saves with the distribution switched off; the values it reads are
    replicated on every process.
    """
    import keras
    current = keras.distribution.distribution()
    if current is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def weights_digest(model) -> str:
    """SHA-256 of a model's weights as this process holds them (every
    process of a data-parallel job holds the same, replicated weights)."""
    import hashlib

    import numpy as np
    digest = hashlib.sha256()
    with local_only():
        for w in model.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def barrier(name: str):
    """Waits until every process of the job has reached `name`."""
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_job(n, batch_size) -> None:
    """The launcher's checks, before any process starts: a process count
    and a global batch that splits evenly over the processes (the same
    check each process makes, zoo.data.check_shard)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--processes must be an integer >= 1; got {n!r}.")
    from zoo import data as data_lib
    data_lib.check_shard((0, n), batch_size)


def launch(argv, n, *, poll_s=0.5, grace_s=10) -> None:
    """Runs `zoo ARGV` as an n-process job on this machine (coordinator on
    127.0.0.1) and waits. Process 0 prints to this terminal; the others'
    output is kept and shown if they fail. When a process exits with an
    error, the others are stopped (SIGTERM, then SIGKILL after `grace_s`)
    and DistributedError says which one failed: rerunning the same command
    resumes from the last finished epoch."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"--processes must be an integer >= 1; got {n!r}.")
    coordinator = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    logs, procs = [], []
    for i in range(n):
        log = None if i == 0 else tempfile.TemporaryFile()
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "zoo.cli", *argv, "--coordinator", coordinator,
             "--num-processes", str(n), "--process-id", str(i)],
            env=env, stdout=log if log else None,
            stderr=subprocess.STDOUT if log else None))
    try:
        failed = _watch(procs, poll_s)
    except KeyboardInterrupt:
        _stop(procs, grace_s)
        raise
    if failed is None:
        return
    _stop(procs, grace_s)
    i, code = failed
    tail = ""
    if logs[i] is not None:
        logs[i].seek(0)
        lines = logs[i].read().decode(errors="replace").strip().splitlines()
        tail = "\n" + "\n".join(f"  [process {i}] {line}" for line in lines[-15:])
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    raise DistributedError(
        f"Process {i} of {n} {how}; the other processes were stopped. Rerun the "
        f"same command to resume from the last finished epoch.{tail}")


def _watch(procs, poll_s):
    """(index, exit status) of the first process that failed, or None when
    all finished cleanly."""
    while True:
        codes = [p.poll() for p in procs]
        for i, code in enumerate(codes):
            if code not in (None, 0):
                return i, code
        if all(code == 0 for code in codes):
            return None
        time.sleep(poll_s)


def _stop(procs, grace_s):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
