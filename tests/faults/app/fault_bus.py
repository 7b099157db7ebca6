"""The bus module run by the fault-injection scenarios (under `lightbus-sync run`).

Its handler appends each handled `seq` to a per-process log file with one unbuffered
write (it survives kill -9), so the test can count what was handled and how often; each
run of an `always_fail` event is logged the same way in another file, so the test can
count handler runs (a delivery is not always a run).
Behaviour is set through FAULT_* environment variables (FAULT_AUDIT_LISTENER adds a second
listener, so a second consumer group).
"""

import os
import random
import time

import lightbus_sync
from fault_api import FaultApi  # noqa: F401  (defines the `faults` API)

bus = lightbus_sync.create()

_log = os.open(
    os.path.join(os.environ["FAULT_LOG_DIR"], f"handled-{os.getpid()}.log"),
    os.O_WRONLY | os.O_APPEND | os.O_CREAT,
)
_failed_log = os.open(
    os.path.join(os.environ["FAULT_LOG_DIR"], f"failed-{os.getpid()}.log"),
    os.O_WRONLY | os.O_APPEND | os.O_CREAT,
)
_fail_rate = float(os.environ.get("FAULT_FAIL_RATE", "0"))
_sleep = float(os.environ.get("FAULT_HANDLER_SLEEP", "0"))


def handle(seq: int, mode: str) -> None:
    if mode == "always_fail":
        os.write(_failed_log, f"{seq}\n".encode())
        raise RuntimeError(f"poison event {seq}")
    if mode == "exit":
        os._exit(17)  # kills the whole runner process, every time
    if _fail_rate and random.random() < _fail_rate:
        raise RuntimeError(f"flaky failure on {seq}")
    if _sleep:
        time.sleep(_sleep)
    os.write(_log, f"{seq}\n".encode())


def audit(seq: int, mode: str) -> None:
    pass


def before_server_start() -> None:
    if os.environ.get("FAULT_AUDIT_LISTENER"):  # a second consumer group: faults-audit
        bus.faults.work.listen(audit, listener_name="audit", since="0")
    bus.faults.work.listen(
        handle,
        listener_name="worker",
        since="0",
        max_deliveries=int(os.environ.get("FAULT_MAX_DELIVERIES", "10")),
        retry_backoff=(float(os.environ.get("FAULT_BACKOFF_MIN", "0.1")),
                       float(os.environ.get("FAULT_BACKOFF_MAX", "0.5"))),
    )
