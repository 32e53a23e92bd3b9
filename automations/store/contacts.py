"""Statements on `contacts` written with a run.

Why hand-written: a run's tag and field changes are written with the run in one statement
(`runtime.hooks`), relative to the row (so a concurrent change to another tag or field is kept); Django
spends about a millisecond compiling and adapting each ORM statement on the measured machine (README,
"Performance").
"""

from __future__ import annotations

from automations.store.base import AFTER, statement
from contacts.models import Contact

# Net tag changes (`tags_changed`: `add_tags` appended in order without duplicates, `remove_tags`
# dropped) and field changes (`fields_changed`: `clear_fields` deleted, `set_fields` merged); a side
# without changes is left as it is.
UPDATE_TAGS_AND_FIELDS = statement(
    """UPDATE {contact} SET
           {contact.tags} = CASE WHEN %(tags_changed)s THEN ARRAY(
               SELECT t FROM unnest(array_cat({contact.tags}, %(add_tags)s::text[])) WITH ORDINALITY AS u(t, o)
               WHERE NOT (t = ANY(%(remove_tags)s::text[])) GROUP BY t ORDER BY min(o)) ELSE {contact.tags} END,
           {contact.custom_fields} = CASE WHEN %(fields_changed)s
               THEN (coalesce({contact.custom_fields}, '{{}}'::jsonb) - %(clear_fields)s::text[])
                    || %(set_fields)s::jsonb
               ELSE {contact.custom_fields} END,
           {contact.updated_at} = now()
       WHERE {contact.id} = %(contact)s AND {after}""",
    contact=Contact, after=AFTER,
)
