"""keras-tuner's distributed mode on one host: a chief and N workers.

`run(argv, workers=N)` starts the chief (the oracle, a gRPC server on
127.0.0.1 unless another address is given) and N workers running the same
`zoo tune` command, then watches them:

* a worker that dies (killed, crashed) is restarted with the same tuner ID;
  keras-tuner hands the same ID its unfinished trial, so the trial is re-run;
* after `max_restarts` restarts of one worker, or when the whole search
  exceeds `timeout` seconds, every process is stopped and an error says so —
  a dead worker never hangs the search.

keras-tuner's gRPC channel has no authentication or encryption: keep the
chief on 127.0.0.1 or a trusted network.

For several hosts, run the processes yourself with the environment
variables keras-tuner reads (`zoo tune --help` shows the flags):
``KERASTUNER_TUNER_ID`` ("chief" or "tuner0", "tuner1", ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from zoo.errors import ZooError, check_positive_int


class DistributedError(ZooError, RuntimeError):
    """The distributed search could not finish."""


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _spawn(argv, tuner_id, host, port, log_dir):
    env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP=host,
               KERASTUNER_ORACLE_PORT=str(port))
    env.pop("TF_USE_LEGACY_KERAS", None)
    log = open(os.path.join(log_dir, f"{tuner_id}.log"), "ab")
    return subprocess.Popen([sys.executable, "-m", "zoo.cli", *argv], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def run(argv, *, workers, out, host="127.0.0.1", port=None, max_restarts=2,
        timeout=3600, poll=0.5, on_start=None):
    """Runs the chief and `workers` workers until the search ends.

    Args:
        argv: the `zoo tune ...` arguments each process runs (without
            --workers).
        workers: number of worker processes (>= 1).
        out: the search folder (logs go to out/logs).
        host, port: the chief's address (port: a free one if None).
        max_restarts: restarts allowed per worker before giving up.
        timeout: seconds before the whole search is stopped.
        on_start: callback(processes dict) for tests (e.g. to kill a worker).

    Returns:
        {"restarts": {tuner_id: n}, "wall_time_s": ...}
    """
    check_positive_int(workers, "workers")
    check_positive_int(timeout, "timeout")
    check_positive_int(max_restarts + 1, "max_restarts + 1")
    port = port or free_port(host)
    log_dir = os.path.join(out, "logs")
    os.makedirs(log_dir, exist_ok=True)
    start = time.time()
    chief = _spawn(argv, "chief", host, port, log_dir)
    time.sleep(2.0)   # let the oracle server bind before workers connect
    procs = {f"tuner{i}": _spawn(argv, f"tuner{i}", host, port, log_dir)
             for i in range(workers)}
    restarts = {tid: 0 for tid in procs}
    if on_start is not None:
        on_start(procs)
    try:
        _watch(chief, procs, restarts, spawn=lambda tid: _spawn(argv, tid, host, port,
                                                              log_dir),
               log_dir=log_dir, max_restarts=max_restarts,
               deadline=start + timeout, timeout=timeout, poll=poll)
    finally:
        _stop(chief, *procs.values())
    return {"restarts": restarts, "wall_time_s": round(time.time() - start, 1)}


def _watch(chief, procs, restarts, *, spawn, log_dir, max_restarts, deadline, timeout,
           poll):
    """Until the chief ends: restart dead workers (at most `max_restarts`
    each); a failed chief, a worker dead too often or the deadline stop
    the search with a DistributedError."""
    while chief.poll() is None:
        for tid, proc in list(procs.items()):
            code = proc.poll()
            if code is None or code == 0:
                continue
            if restarts[tid] >= max_restarts:
                raise DistributedError(
                    f"Worker {tid} died {restarts[tid] + 1} times (last exit "
                    f"{code}); its trial is abandoned and the search stopped. "
                    f"See {log_dir}/{tid}.log.")
            restarts[tid] += 1
            procs[tid] = spawn(tid)
        if time.time() > deadline:
            raise DistributedError(f"The search exceeded {timeout} s and was "
                                   "stopped (is a worker stuck?).")
        time.sleep(poll)
    if chief.returncode != 0:
        raise DistributedError(f"The tuning chief failed (exit {chief.returncode}); "
                               f"see {log_dir}/chief.log.")


def _stop(*procs):
    """Terminates what still runs (killed after 20 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
