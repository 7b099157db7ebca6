"""Real Lightbus producer script (run with the Lightbus virtualenv's python):

    python lb_fire.py CONFIG warmup   # fire interop.lb_types.ping (stores the schema)
    python lb_fire.py CONFIG typed    # fire interop.lb_types.typed once per SAMPLES entry

Prints one JSON line per fired event: {"id": ..., "native_id": ...}.
"""

import json
import sys

import lightbus

from interop_types import SAMPLES
from lb_defs import LbTypesApi

config_file, mode = sys.argv[1], sys.argv[2]
bus = lightbus.create(config_file=config_file, service_name="lb-firer", process_name="lb-fire1")
bus.client.register_api(LbTypesApi())
try:
    if mode == "warmup":
        message = bus.interop.lb_types.ping.fire()
        print(json.dumps({"id": message.id, "native_id": message.native_id}), flush=True)
    elif mode == "typed":
        for sample in SAMPLES:
            message = bus.interop.lb_types.typed.fire(**sample)
            print(json.dumps({"id": message.id, "native_id": message.native_id}), flush=True)
    else:
        sys.exit(f"unknown mode {mode!r}")
finally:
    bus.client.close()
