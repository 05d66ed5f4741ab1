from django.urls import path

from . import views

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
    path("runs/<int:run_id>/changes/", views.run_changes, name="run-changes"),
    path("runs/<int:run_id>/restore/", views.restore, name="restore"),
    path("runs/<int:run_id>/confirm/", views.confirm_sync, name="confirm-sync"),
]
