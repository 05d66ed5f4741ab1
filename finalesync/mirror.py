"""The shape every mirrored Finale table shares, so one sync engine can apply any data type."""

from django.db import models


class MirroredRow(models.Model):
    """One row mirrored from Finale.

    `natural_key` is the data type's key as text (for composite keys the parts joined with ' / ').
    `row_hash` is a digest of the parsed values: a re-sync writes a row only when its hash changed.
    `extra` keeps report columns the data type does not know, so nothing the user put in a report is dropped.
    """

    natural_key = models.CharField(max_length=255, unique=True)
    row_hash = models.CharField(max_length=32)
    # Digest of the raw report cells the row was parsed from: a re-sync skips parsing rows that match.
    source_hash = models.CharField(max_length=16, blank=True, default="")
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self):
        return self.natural_key
