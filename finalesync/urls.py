from django.contrib import admin
from django.contrib.staticfiles.views import serve
from django.urls import include, path, re_path

from health import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/live/", views.dashboard_live, name="dashboard-live"),
    path("health/", views.health_json, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("types/<str:data_type>/sync/", views.sync_now, name="sync-now"),
    path("types/<str:data_type>/pause/", views.pause, name="pause"),
    path("types/<str:data_type>/resume/", views.resume, name="resume"),
    path("types/<str:data_type>/snooze/", views.snooze, name="snooze"),
    path("retries/<int:item_id>/retry-now/", views.retry_now, name="retry-now"),
    path("retries/<int:item_id>/cancel/", views.cancel_retry, name="cancel-retry"),
    path("retries/<int:item_id>/requeue/", views.requeue_retry, name="requeue-retry"),
    path("backups/<int:backup_id>/restore/", views.restore_backup, name="restore-backup"),
    # Retry analytics: /analytics/, /analytics.json, /analytics/<table>.csv (health/analytics_urls.py).
    path("", include("health.analytics_urls")),
    path("admin/", admin.site.urls),
    # The dashboard's and the admin's CSS and JS, served by Django itself so `runserver` and a plain
    # gunicorn work with DEBUG off. A site with a front proxy serves STATIC_ROOT (collectstatic) instead.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
