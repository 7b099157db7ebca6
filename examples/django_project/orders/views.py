"""``POST /orders/`` (JSON ``{"item": ..., "quantity": ...}``): saves an order and fires
``shop.orders.order_placed`` through the outbox, in the same transaction: the event is
published if and only if the order is committed. A quantity under 1 is refused after
both rows are written, so the transaction rolls back and nothing is published."""

import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from lightbus_sync.contrib.django import bus

from .models import Order


class Refused(Exception):
    pass


@csrf_exempt
@require_POST
def place_order(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    try:
        with transaction.atomic():
            order = Order.objects.create(item=body["item"], quantity=max(int(body["quantity"]), 0))
            bus.outbox().shop.orders.order_placed.fire(order_id=order.pk, item=order.item,
                                                       quantity=order.quantity)
            if order.quantity < 1:
                raise Refused("quantity must be at least 1")
    except Refused as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"order_id": order.pk}, status=201)
