"""The shape every mirrored Finale table shares, and its row history, so one engine can apply any data type.

Each concrete `MirroredRow` model gets a companion `<Model>Version` model (table `<table>_version`) made here
when the model class is ready: every version of every row a sync or a restore wrote, tagged with the type's
history sequence number `seq`. A deletion is a version with `deleted` set. The state of a type after any
retained sync is therefore "the newest version of each key with seq <= N, unless it is a deletion", which
needs nothing from the live table: rows lost from the live table by hand can be brought back too.
"""

from django.db import models
from django.db.models.signals import class_prepared

# When a row was first synced and last changed.
STAMPS = ("created_at", "updated_at")
# Columns every mirrored row has besides its data: they are not compared, and not kept in the row history.
BOOKKEEPING = ("natural_key", "line_digest", *STAMPS)


class MirroredRow(models.Model):
    """One row mirrored from Finale.

    `natural_key` is the data type's key as text (for composite keys the parts joined with ' / ').
    `extra` keeps report columns the data type does not know, so nothing the user put in a report is dropped.
    """

    natural_key = models.CharField(max_length=255, unique=True)
    # Digest of the report line the row was last read from (null when unknown): a re-sync passes over a line
    # whose digest is a live row's without reading it again (finalesync/unchanged.py).
    line_digest = models.BigIntegerField(null=True, blank=True, editable=False)
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self):
        return self.natural_key


def data_fields(model) -> list[models.Field]:
    """The fields a sync compares and writes: the type's own columns and `extra` (not the id, the key, the
    line digest or the stamps)."""
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in BOOKKEEPING]


def _version_model(model) -> type[models.Model]:
    """The row-history model of a mirrored model: its columns (all nullable, for deletions) plus seq."""
    attrs = {
        "__module__": model.__module__,
        "pk": models.CompositePrimaryKey("natural_key", "seq"),
        "natural_key": models.CharField(max_length=255),
        "seq": models.IntegerField(help_text="The type's history sequence number this version belongs to."),
        "deleted": models.BooleanField(default=False),
    }
    for field in [*data_fields(model), *(model._meta.get_field(n) for n in STAMPS)]:
        clone = field.clone()
        clone.null = True
        clone.blank = True
        if isinstance(clone, models.JSONField) or clone.has_default():
            clone.default = models.NOT_PROVIDED
        attrs[field.name] = clone
    table = model._meta.db_table
    attrs["Meta"] = type(
        "Meta",
        (),
        {
            "app_label": model._meta.app_label,
            "db_table": f"{table}_version",
            "verbose_name": f"{model._meta.verbose_name} version",
            # "What changed in sync N" reads one seq; the key's own history reads the primary key.
            "indexes": [models.Index(fields=["seq"], name=f"{model.__name__.lower()[:22]}_v_seq")],
        },
    )
    return type(f"{model.__name__}Version", (models.Model,), attrs)


def _add_versions(sender, **kwargs):
    if issubclass(sender, MirroredRow) and not sender._meta.abstract and "Versions" not in sender.__dict__:
        sender.Versions = _version_model(sender)


class_prepared.connect(_add_versions)
