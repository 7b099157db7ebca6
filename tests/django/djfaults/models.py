from django.db import models


class Audit(models.Model):
    """One row per order the slow listener handled (with an inbox: one per order)."""

    order_id = models.BigIntegerField()
