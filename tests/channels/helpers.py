"""Accounts on the fake platforms (tests.fakes.platforms), one per provider, with a contact and a
conversation to send to."""

from contacts.models import AccountStatus
from tests import factories

TELEGRAM_TOKEN = "123456789:AAHfakeTokenForTests_x"
GRAPH_TOKENS = {"whatsapp": "EAAGwhatsappFakeToken", "messenger": "EAAGpageFakeToken",
                "instagram": "EAAGinstagramFakeToken"}
EXTERNAL_IDS = {"telegram": "123456789", "whatsapp": "106540352242922", "messenger": "1122334455",
                "instagram": "17841400000000000"}
CHANNELS = {"telegram": "telegram", "whatsapp": "whatsapp", "messenger": "facebook", "instagram": "instagram"}
RECIPIENTS = {"telegram": "987654321", "whatsapp": "16505551234", "messenger": "1254477777772919",
              "instagram": "6543210987654321"}


def connected_account(org, fake, provider: str, *, status=AccountStatus.CONNECTED):
    """A `provider` account whose credentials the fake platform knows."""
    if provider == "telegram":
        fake.add_telegram_bot(TELEGRAM_TOKEN, bot_id=int(EXTERNAL_IDS["telegram"]))
        credentials = {"bot_token": TELEGRAM_TOKEN}
    else:
        fake.add_graph_account(GRAPH_TOKENS[provider], EXTERNAL_IDS[provider], platform=provider, name="Shop")
        credentials = {"access_token": GRAPH_TOKENS[provider]}
    account = factories.social_account(org, channel=CHANNELS[provider], provider=provider,
                                       external_id=EXTERNAL_IDS[provider], status=status)
    account.set_credentials(credentials)
    account.save()
    return account


def reachable_contact(org, account, provider: str, user_id: str | None = None):
    person = factories.contact(org, account=account, platform_user_id=user_id or RECIPIENTS[provider])
    factories.conversation(person, account)
    return person
