from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

urlpatterns = [
    # Retry analytics: /analytics/, /analytics.json, /analytics/<table>.csv (health/analytics_urls.py).
    path("", include("health.analytics_urls")),
    path("admin/", admin.site.urls),
    # The dashboard, /health/ and /metrics (the health app sits on top of the engine: included by name).
    path("", include("health.urls")),
    # The dashboard's and the admin's CSS and JS, served by Django itself so `runserver` and a plain
    # gunicorn work with DEBUG off. A site with a front proxy serves STATIC_ROOT (collectstatic) instead.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
