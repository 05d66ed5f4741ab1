"""URLs of the retry analytics page, its JSON and its CSV downloads (included by finalesync/urls.py)."""

from django.urls import path

from . import analytics_views

urlpatterns = [
    path("analytics/", analytics_views.analytics_page, name="analytics"),
    path("analytics.json", analytics_views.analytics_json, name="analytics-json"),
    path("analytics/<slug:table>.csv", analytics_views.analytics_csv, name="analytics-csv"),
]
