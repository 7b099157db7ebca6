"""Bus module of the dashboard tests' ``lightbus-sync run`` process.

Listener ``billing`` dead-letters an order while the Redis key ``fail:<order_id>``
exists in the test's Redis (``TEST_REDIS_URL``), and records each order it handles in
the list ``handled``.
"""

import os

import redis

import lightbus_sync
from shop_api import DashShopApi  # noqa: F401  (defines the API)

bus = lightbus_sync.create(service_name="dash")
record = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])


def bill(order_id, note):
    if record.exists(f"fail:{order_id}"):
        raise lightbus_sync.DeadLetter(f"order {order_id} cannot be billed")
    record.rpush("handled", str(order_id))


def before_server_start():
    bus.dash.shop.order_placed.listen(bill, listener_name="billing", since="0")
