from django.db import models


class Shipment(models.Model):
    order_id = models.BigIntegerField()
    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)
