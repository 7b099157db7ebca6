"""``POST /fault/fire-on-commit-then-die/``: an order fired with ``fire_on_commit``, and
the process SIGKILLed after the commit, before the fire (the on-commit callback
registered first runs first): ``fire_on_commit``'s loss window."""

import json
import os
import signal

from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from lightbus_sync.contrib.django import fire_on_commit
from orders.models import Order


@csrf_exempt
def fire_on_commit_then_die(request):
    body = json.loads(request.body)
    with transaction.atomic():
        order = Order.objects.create(item=body["item"], quantity=body["quantity"])
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        fire_on_commit("shop.orders.order_placed", order_id=order.pk, item=order.item, quantity=order.quantity)
    return JsonResponse({"order_id": order.pk}, status=201)
