"""A Flask app that fires an event on ``POST /users`` and counts the events its own
listener thread receives.

    LIGHTBUS_REDIS_URL=redis://127.0.0.1:6379/0 flask --app app run
    # or: python app.py [PORT]

- ``POST /users`` (JSON or form: username, email): fires
  ``flask_example.users.user_created``; 201 with the event id, 400 for a bad call.
- ``GET /stats``: how many user_created events the listener received, and from whom.
- ``GET /health``: 200 once the listener's consumer group exists and its threads run.
"""

import logging
import os
import sys

from flask import Flask, jsonify, request

from lightbus_sync import InvalidFireCall

from bus import lightbus, received


def create_app(config=None):
    app = Flask(__name__)
    # The Redis URL comes from $LIGHTBUS_REDIS_URL (or set LIGHTBUS_REDIS_URL here).
    app.config.update(
        LIGHTBUS_SERVICE_NAME=os.environ.get("LIGHTBUS_SERVICE_NAME", "flask_example"),
        LIGHTBUS_LISTEN=True,
    )
    app.config.update(config or {})
    lightbus.init_app(app)

    @app.post("/users")
    def create_user():
        data = request.get_json(silent=True) or request.form
        try:
            # fire() checks the call against the event's definition before writing:
            # a missing, unexpected or wrongly typed parameter is an InvalidFireCall.
            message = lightbus.bus.flask_example.users.user_created.fire(**dict(data))
        except InvalidFireCall as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(id=message.id, stream_id=message.stream_id), 201

    @app.get("/stats")
    def stats():
        usernames = received()
        return jsonify(received=len(usernames), usernames=usernames)

    @app.get("/health")
    def health():
        listener = lightbus.listener
        if listener is not None and listener.wait_until_ready(0) and listener.is_alive():
            return "ok", 200
        return "starting", 503

    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000, use_reloader=False)
