from django.urls import path

from djfaults.views import fire_on_commit_then_die
from shop.urls import urlpatterns as shop_urls

urlpatterns = [*shop_urls, path("fault/fire-on-commit-then-die/", fire_on_commit_then_die)]
