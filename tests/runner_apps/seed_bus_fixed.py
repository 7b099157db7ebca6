"""The user's page's bus module, corrected: named listeners and handlers that match their
events. ``user_db`` is mirrored into the test's Redis hash ``user_db`` so the test can
see it."""

import os

import redis

import lightbus_sync as lightbus
import seed_auth_api  # noqa: F401  (the auth service's API)

bus = lightbus.create()
record = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
user_db = {}


def handle_created(username, email):
    user_db[username] = email
    record.hset("user_db", username, email)


def handle_updated(username, new_email):
    user_db[username] = new_email
    record.hset("user_db", username, new_email)


def handle_deleted(username):
    user_db.pop(username, None)
    record.hdel("user_db", username)


def before_server_start():
    record.rpush("hooks", "before_server_start")
    bus.auth.user_created.listen(handle_created, listener_name="user_created")
    bus.auth.user_updated.listen(handle_updated, listener_name="user_updated")
    bus.auth.user_deleted.listen(handle_deleted, listener_name="user_deleted")


@bus.on_start
def started():
    record.rpush("hooks", "on_start")


@bus.on_stop
def stopped():
    record.rpush("hooks", "on_stop")
