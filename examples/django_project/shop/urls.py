from django.urls import path

from orders import views as orders
from shipping import views as shipping

urlpatterns = [
    path("orders/", orders.place_order),
    path("shipments/", shipping.list_shipments),
]
