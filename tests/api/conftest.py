import pytest

from studio.models import Role
from tests.support.api import Api, make_token


@pytest.fixture
def tokens(workspace, members):
    """A token of each role in `workspace`, plus an owner token of another workspace."""
    from studio.models import Membership

    made = {role.value: make_token(workspace, role=role) for role in Role}
    elsewhere = Membership.objects.get(user=members["outsider"]).workspace
    made["outsider"] = make_token(elsewhere, role=Role.OWNER)
    return made


@pytest.fixture
def api(tokens):
    """An editor token's client."""
    return Api(tokens["editor"])


@pytest.fixture
def api_as(tokens):
    """api_as("viewer") and so on: a client for each role (or "outsider", "none")."""

    def make(role: str) -> Api:
        return Api(None if role == "none" else tokens[role])

    return make
