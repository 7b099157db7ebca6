"""other_service/bus.py from the user's page (events.md), as written there: listeners
without names, and two handlers whose parameters do not match their events."""

import lightbus_sync as lightbus
import seed_auth_api  # noqa: F401  (the auth service's API)

bus = lightbus.create()
user_db = {}


def handle_created(username, email):
    user_db[username] = email
    print(user_db)


def handle_updated(username, email):
    user_db[username] = email
    print(user_db)


def handle_deleted(username, email):
    user_db.pop(username)
    print(user_db)


def before_server_start():
    # before_server_start() is called on lightbus startup,
    # this allows you to setup your listeners.

    bus.auth.user_created.listen(handle_created)
    bus.auth.user_updated.listen(handle_updated)
    bus.auth.user_deleted.listen(handle_deleted)
