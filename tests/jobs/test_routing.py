"""Routing policies, table-driven: which account a request goes to, in what order, and why not."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs.routing import Health, Option, rank

# Four accounts as a studio might have them: an official per-second API, a pricier
# gateway of the same API, a cheap relay that only makes some lengths, and a provider
# without saved characters that is cheapest of all.
OFFICIAL = Option(1, "Official", Decimal("0.80"), True, health=Health(40, 39, 95.0))
GATEWAY = Option(2, "Gateway", Decimal("1.20"), True, health=Health(40, 40, 60.0))
RELAY = Option(
    3, "Relay", Decimal("0.12"), True, problems=("Relay makes videos of 10, 15 seconds.",)
)
REFS = Option(4, "Refs", Decimal("0.66"), False, health=Health(40, 30, 50.0))
EVERYONE = [OFFICIAL, GATEWAY, RELAY, REFS]


@pytest.mark.parametrize(
    ("policy", "mentions", "pinned", "order", "left_out"),
    [
        # cost: the cheapest capable first, whatever its characters
        ("cost", True, None, ["Refs", "Official", "Gateway"], {"Relay"}),
        ("cost", False, None, ["Refs", "Official", "Gateway"], {"Relay"}),
        # characters: native ones only when the scene mentions characters...
        ("characters", True, None, ["Official", "Gateway"], {"Relay", "Refs"}),
        # ...and by cost when it does not
        ("characters", False, None, ["Refs", "Official", "Gateway"], {"Relay"}),
        # stability: success rate first (40/40 beats 39/40 beats 30/40), then speed
        ("stability", True, None, ["Gateway", "Official", "Refs"], {"Relay"}),
        # pinned: that account alone
        ("pinned", True, 2, ["Gateway"], {"Official", "Relay", "Refs"}),
        # pinned to an account that cannot make it: nothing
        ("pinned", True, 3, [], {"Official", "Gateway", "Relay", "Refs"}),
    ],
)
def test_each_policy_orders_the_capable_accounts(policy, mentions, pinned, order, left_out):
    ranking = rank(EVERYONE, policy=policy, mentions_characters=mentions, pinned_account_id=pinned)
    assert [o.name for o in ranking.ordered] == order
    assert {o.name for o, _ in ranking.excluded} == left_out


def test_an_account_that_cannot_make_the_request_says_why():
    ranking = rank(EVERYONE, policy="cost", mentions_characters=False)
    assert dict((o.name, why) for o, why in ranking.excluded) == {
        "Relay": "Relay makes videos of 10, 15 seconds."
    }


def test_the_characters_policy_says_why_a_provider_without_characters_is_out():
    ranking = rank(EVERYONE, policy="characters", mentions_characters=True)
    reasons = dict((o.name, why) for o, why in ranking.excluded)
    assert reasons["Refs"] == "It has no saved characters, and this scene's policy asks for them."


@pytest.mark.parametrize(
    ("policy", "mentions", "reason"),
    [
        ("cost", True, "Cheapest: Refs (about $0.66)."),
        ("characters", True, "Cheapest with saved characters: Official (about $0.80)."),
        ("characters", False, "Cheapest: Refs (about $0.66)."),
        (
            "stability",
            True,
            "Most reliable: Gateway, 40 of 40 recent takes succeeded (about $1.20).",
        ),
    ],
)
def test_the_choice_comes_with_a_plain_reason(policy, mentions, reason):
    assert rank(EVERYONE, policy=policy, mentions_characters=mentions).reason == reason


def test_equal_prices_go_by_name_so_the_choice_is_stable():
    a = Option(7, "Beta", Decimal("0.50"), True)
    b = Option(8, "Alpha", Decimal("0.50"), True)
    assert [o.name for o in rank([a, b], policy="cost", mentions_characters=False).ordered] == [
        "Alpha",
        "Beta",
    ]


def test_stability_does_not_let_two_lucky_jobs_beat_a_long_good_record():
    lucky = Option(1, "Lucky", Decimal("0.10"), True, health=Health(2, 2, 10.0))
    steady = Option(2, "Steady", Decimal("0.90"), True, health=Health(50, 49, 80.0))
    ordered = rank([lucky, steady], policy="stability", mentions_characters=False).ordered
    assert [o.name for o in ordered] == ["Steady", "Lucky"]  # 50/52 = 0.96 > 3/4 = 0.75


def test_stability_breaks_a_tie_on_the_faster_account():
    slow = Option(1, "Slow", Decimal("0.10"), True, health=Health(10, 10, 120.0))
    fast = Option(2, "Fast", Decimal("0.90"), True, health=Health(10, 10, 40.0))
    ordered = rank([slow, fast], policy="stability", mentions_characters=False).ordered
    assert [o.name for o in ordered] == ["Fast", "Slow"]


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="Unknown routing policy"):
        rank(EVERYONE, policy="fastest", mentions_characters=False)
