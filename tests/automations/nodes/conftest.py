import pytest

from tests import factories


@pytest.fixture
def conv(contact, account):
    return factories.conversation(contact, account)
