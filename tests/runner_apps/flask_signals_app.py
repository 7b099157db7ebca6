"""A Flask app using the extension, for ``flask --app flask_signals_app run``: its
listener's handler is slow, so a signal arrives while it runs.

- ``GET /health``: 200 once the listener runs;
- the handler of ``runner_test_web.user_signed_up`` sets ``signals:started:<username>``
  in Redis, sleeps ``$HANDLER_SECONDS`` (default 1.5), then sets ``signals:finished:<username>``;
- with ``$APP_SIGTERM_HANDLER`` set, the app installs its own SIGTERM handler first: it
  writes whether the handler had finished (the drain ran before it) into that file, and
  exits with status 3.
"""

import logging
import os
import signal
import sys
import time

import redis
from flask import Flask

from lightbus_sync.contrib.flask import LightbusSync
from web_api import WebApi  # noqa: F401  (defines the API)

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
client = redis.Redis.from_url(os.environ["LIGHTBUS_REDIS_URL"])
marker = os.environ.get("APP_SIGTERM_HANDLER")
if marker:
    def on_sigterm(signum, frame):
        finished = sorted(k.decode() for k in client.keys("signals:finished:*"))
        with open(marker, "w") as out:
            out.write(f"{signal.Signals(signum).name} {' '.join(finished)}")
        sys.exit(3)

    signal.signal(signal.SIGTERM, on_sigterm)

lightbus = LightbusSync(listener_options={"threads": 2})


@lightbus.listen("runner_test_web.user_signed_up", listener_name="slow_mail")
def slow_mail(username):
    client.set(f"signals:started:{username}", 1)
    time.sleep(float(os.environ.get("HANDLER_SECONDS", "1.5")))
    client.set(f"signals:finished:{username}", 1)


app = Flask(__name__)
app.config.update(
    LIGHTBUS_SERVICE_NAME="signals",
    LIGHTBUS_LISTEN=True,
    LIGHTBUS_CONFIG={"apis": {"default": {"event_transport": {"redis": {"block_ms": 100}}}}},
)
lightbus.init_app(app)


@app.get("/health")
def health():
    runner = lightbus.listener
    ready = runner is not None and runner.wait_until_ready(0) and runner.is_alive()
    return ("ok", 200) if ready else ("starting", 503)
