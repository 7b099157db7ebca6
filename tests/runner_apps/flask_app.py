"""A Flask app that listens in a background thread and fires from a view.

``python flask_app.py PORT`` serves on 127.0.0.1:PORT (threaded dev server):
- ``GET /health``: 200 once the listener's consumer group exists;
- ``GET /signup?username=...``: fires ``runner_test_web.user_signed_up``;
- ``GET /seen``: JSON list of the usernames the listener thread handled.
The Redis URL comes from ``LIGHTBUS_REDIS_URL``.
"""

import sys
import threading

from flask import Flask, jsonify, request

import lightbus_sync
from web_api import WebApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(
    service_name="web",
    config={"apis": {"default": {"event_transport": {"redis": {"block_ms": 100, "reclaim_interval": 0.2}}}}},
)
seen = []
seen_lock = threading.Lock()


def on_signed_up(username):
    with seen_lock:
        seen.append(username)


bus.runner_test_web.user_signed_up.listen(on_signed_up, listener_name="welcome_mail")

app = Flask(__name__)
listener = bus.start_listener_thread(threads=2)


@app.get("/health")
def health():
    ready = listener.wait_until_ready(0) and listener.is_alive()
    return ("ok", 200) if ready else ("starting", 503)


@app.get("/signup")
def signup():
    message = bus.runner_test_web.user_signed_up.fire(username=request.args["username"])
    return jsonify(id=message.id, stream_id=message.stream_id)


@app.get("/seen")
def seen_view():
    with seen_lock:
        return jsonify(list(seen))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True, use_reloader=False)
