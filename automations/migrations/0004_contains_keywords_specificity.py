"""`contains` keyword entrypoints no longer rank as filtered (20): re-derive their stored specificity."""

from django.db import migrations

KEYWORD_KINDS = ("dm_received", "comment_created", "story_reply", "story_mention")


def rederive(apps, schema_editor):
    from automations.graph.entrypoints import derive_specificity

    Entrypoint = apps.get_model("automations", "Entrypoint")
    for row in Entrypoint.objects.filter(kind__in=KEYWORD_KINDS, config__match_mode="contains"):
        specificity = derive_specificity(row.kind, row.config, row.filters, row.social_account_id)
        if specificity != row.specificity:
            Entrypoint.objects.filter(pk=row.pk).update(specificity=specificity)


class Migration(migrations.Migration):

    dependencies = [("automations", "0003_step_runs_partitioned")]

    operations = [migrations.RunPython(rederive, migrations.RunPython.noop)]
