"""What an emulator has in flight: jobs created and unfinished at its clock, and the most ever."""

from __future__ import annotations

from jobs.emulators.state import InFlight, Timeline
from tests.jobs.emulators.conftest import Api


def _span(started: float, latency: float, **flags: bool) -> Timeline:
    return Timeline(started=started, latency=latency, steps=4, **flags)


def test_it_counts_jobs_started_and_not_yet_finished_at_a_time() -> None:
    in_flight = InFlight()
    in_flight.add(_span(100.0, 10.0))
    in_flight.add(_span(105.0, 10.0))
    assert in_flight.report(99.0)["in_flight"] == 0
    assert in_flight.report(100.0)["in_flight"] == 1
    assert in_flight.report(107.0)["in_flight"] == 2
    assert in_flight.report(110.0)["in_flight"] == 1  # the first finished at 110
    assert in_flight.report(115.0)["in_flight"] == 0


def test_its_maximum_is_the_most_at_once_not_the_total() -> None:
    in_flight = InFlight()
    for started in (0.0, 10.0, 20.0):  # each finishes as the next starts
        in_flight.add(_span(started, 10.0))
    assert in_flight.report(100.0) == {"in_flight": 0, "max_in_flight": 1}
    in_flight.add(_span(25.0, 10.0))  # overlaps the third
    assert in_flight.report(100.0) == {"in_flight": 0, "max_in_flight": 2}


def test_its_maximum_holds_when_creates_are_recorded_out_of_order() -> None:
    in_flight = InFlight()
    in_flight.add(_span(5.0, 10.0))  # the later create's thread got the lock first
    in_flight.add(_span(0.0, 10.0))
    in_flight.add(_span(12.0, 10.0))  # the one from 0 has finished by then
    assert in_flight.report(100.0)["max_in_flight"] == 2


def test_a_job_moderated_in_the_queue_leaves_flight_when_it_fails() -> None:
    in_flight = InFlight()
    in_flight.add(_span(0.0, 10.0, fails=True, fails_early=True))  # fails at 1.0
    in_flight.add(_span(1.0, 10.0))
    assert in_flight.report(0.5)["in_flight"] == 1
    assert in_flight.report(100.0)["max_in_flight"] == 1


def test_clearing_forgets_the_maximum() -> None:
    in_flight = InFlight()
    in_flight.add(_span(0.0, 10.0))
    in_flight.clear()
    assert in_flight.report(5.0) == {"in_flight": 0, "max_in_flight": 0}


def _create(api: Api, prompt: str = "A lighthouse keeper at dusk") -> None:
    reply = api.post("/videos", {"prompt": prompt, "seconds": "4", "size": "1280x720"})
    assert reply.status == 200, reply.body


def test_the_openai_emulator_reports_its_flight_in_its_state(openai_api: Api) -> None:
    openai_api.control("config", {"latency_seconds": 60})
    assert openai_api.control("state")["in_flight"] == 0
    _create(openai_api)
    _create(openai_api)
    state = openai_api.control("state")
    assert (state["in_flight"], state["max_in_flight"]) == (2, 2)

    openai_api.control("clock", {"advance_seconds": 61})  # both have finished
    _create(openai_api)
    state = openai_api.control("state")
    assert (state["in_flight"], state["max_in_flight"]) == (1, 2)
    assert state["counters"]["creates"] == 3


def test_the_openai_emulators_maximum_is_one_when_each_create_waits_for_the_last(
    openai_api: Api,
) -> None:
    openai_api.control("config", {"latency_seconds": 60})
    for _ in range(3):
        _create(openai_api)
        openai_api.control("clock", {"advance_seconds": 61})
    state = openai_api.control("state")
    assert (state["in_flight"], state["max_in_flight"]) == (0, 1)


def test_remixes_count_as_flight_and_a_reset_forgets_it(openai_api: Api) -> None:
    openai_api.control("config", {"latency_seconds": 60})
    _create(openai_api)
    openai_api.control("clock", {"advance_seconds": 61})
    source = openai_api.get("/videos").json()["data"][0]["id"]
    assert openai_api.post(f"/videos/{source}/remix", {"prompt": "At night."}).status == 200
    assert openai_api.control("state")["in_flight"] == 1

    openai_api.control("reset", {})
    state = openai_api.control("state")
    assert (state["in_flight"], state["max_in_flight"]) == (0, 0)
