from django.http import HttpRequest, JsonResponse

from .models import Shipment


def list_shipments(request: HttpRequest) -> JsonResponse:
    rows = Shipment.objects.order_by("order_id").values("order_id", "item", "quantity")
    return JsonResponse({"shipments": list(rows)})
