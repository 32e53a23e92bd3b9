"""Statements on `messages`: the outbox rows a run write carries.

Why hand-written: the messages a run sends are written with the run in one statement (`runtime.hooks`);
Django's bulk_create would be a statement of its own and costs about a millisecond to compile and adapt
on the measured machine (README, "Performance"). The rows travel as one JSON array.
"""

from __future__ import annotations

from automations.store.base import AFTER, column_list, statement
from contacts.models import Message

# Every column the ORM would insert (tests/core/test_sql.py checks).
MESSAGE_COLUMNS = ("id", "organization_id", "conversation_id", "direction", "text", "payload", "status", "run_id",
                   "node_key", "idempotency_key", "provider_message_id", "error_code", "error", "created_at",
                   "sent_at")

INSERT_MESSAGES = statement(
    """INSERT INTO {message} ({columns}) SELECT {columns}
       FROM jsonb_populate_recordset(NULL::{message}, %(rows)s::jsonb) WHERE {after}""",
    message=Message, columns=column_list(Message, MESSAGE_COLUMNS), after=AFTER,
)
