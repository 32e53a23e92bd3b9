"""Deleting a contact deletes its runs (cascade): the rollup's counts of finished runs are rebuilt for the
hours those runs counted in, in the same transaction, so the insights keep matching the runs table."""

from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from automations.insights import rollup
from contacts.models import Contact


@receiver(pre_delete, sender=Contact, dispatch_uid="insights_runs_leaving")
def _runs_leaving(sender, instance, **kwargs):
    instance._insights_run_keys = rollup.runs_leaving_with(instance.pk)


@receiver(post_delete, sender=Contact, dispatch_uid="insights_runs_gone")
def _runs_gone(sender, instance, **kwargs):
    rollup.recount_runs(getattr(instance, "_insights_run_keys", []))
