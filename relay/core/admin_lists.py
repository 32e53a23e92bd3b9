"""Admin change lists that stay cheap on tables of millions of rows.

- `CappedCountPaginator` counts at most COUNT_CAP matching rows (an unordered `LIMIT` subquery that stops
  early) instead of `COUNT(*)` over the whole table; the list then says "10,000+" and pages up to there.
  Pair it with `show_full_result_count = False` (no unfiltered count either).
- `SelectedOnlyRelatedFilter` filters by a foreign key (`?contact__id__exact=…`, links from other pages)
  without listing every related row in the sidebar: Django's RelatedOnlyFieldListFilter reads
  `SELECT DISTINCT contact_id` over the whole table on every page view; this one lists only the selected row.
"""

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    capped = False

    @cached_property
    def count(self) -> int:
        counted = self.object_list.order_by()[: COUNT_CAP + 1].count()
        self.capped = counted > COUNT_CAP
        return min(counted, COUNT_CAP)


class SelectedOnlyRelatedFilter(admin.RelatedFieldListFilter):
    def field_choices(self, field, request, model_admin):
        if not self.lookup_val:
            return []
        return field.get_choices(include_blank=False, ordering=self.field_admin_ordering(field, request, model_admin),
                                 limit_choices_to={"pk__in": list(self.lookup_val)})

    def has_output(self):
        return True
