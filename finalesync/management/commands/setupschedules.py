"""python manage.py setupschedules — install (or update) the django-q2 schedules. Safe to run again."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    # name, function, minutes between runs — the names operators of the original system know
    ("auto-sync-finale", "finalesync.tasks.sync_cycle", 5),
    ("process-sync-retries", "retries.tasks.process_retries", 2),
    ("deliver-alerts", "health.tasks.deliver_alerts", 2),
    ("cleanup", "retries.tasks.cleanup", 24 * 60),
]


class Command(BaseCommand):
    help = "Install the sync cycle, retry processor, alert delivery and cleanup schedules in django-q2."

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", type=float, default=1.0, help="multiply every interval (tests use a small one)"
        )

    def handle(self, *args, scale=1.0, verbosity=1, **options):
        for name, func, minutes in SCHEDULES:
            interval = max(1, round(minutes * scale))
            schedule, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": interval,
                    "repeats": -1,
                },
            )
            if verbosity:
                self.stdout.write(
                    f"{'created' if created else 'updated'} schedule {name}: {func} every {interval} min"
                )
