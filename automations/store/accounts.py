"""Statements on `social_accounts` read on the inbound path.

Why hand-written: every inbound event looks its social account up (`POST /v1/inbound-events`, and each
entry of a platform delivery); on the measured machine Django spends about a millisecond compiling and
adapting each ORM statement, several times what PostgreSQL spends running this primary-key read, and
inbound events went from 14.6 to 80.5 per second once the path's statements were cut down (README,
"Performance").
"""

from __future__ import annotations

from automations.store.base import fetch_one, instance_from, prefixed_list, statement
from contacts.models import SocialAccount

# The organization's account by id.
ORGANIZATION_ACCOUNT = statement(
    """SELECT {columns} FROM {account} sa
       WHERE sa.{account.id} = %(id)s AND sa.{account.organization} = %(organization)s""",
    account=SocialAccount, columns=prefixed_list(SocialAccount, "sa", "sa"),
)


def organization_account(account_id: str, organization_id: str | None) -> SocialAccount | None:
    row = fetch_one(ORGANIZATION_ACCOUNT, {"id": account_id, "organization": organization_id})
    return instance_from(SocialAccount, row, "sa") if row else None
