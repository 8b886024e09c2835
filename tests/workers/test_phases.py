"""A training child's clock: phases add up, nest, and refuse names the readers do not know."""

from __future__ import annotations

import pytest

from workers.phases import PhaseClock, process_age


def test_a_phase_entered_twice_adds_up_and_comes_out_as_a_time_metric():
    clock = PhaseClock()
    clock.add("data", 1.5)
    clock.add("data", 0.5)
    assert clock.metrics() == {"time/data": 2.0}


def test_the_evaluation_is_taken_out_of_the_training_that_ran_around_it():
    clock = PhaseClock()
    clock.add("train", 10.0)
    clock.add("evaluation", 4.0)
    assert clock.metrics(nested={"evaluation": "train"}) == {"time/train": 6.0, "time/evaluation": 4.0}


def test_a_timed_call_returns_its_result_and_counts_to_its_phase():
    clock = PhaseClock()
    assert clock.timed("evaluation", lambda x: x * 2)(21) == 42
    assert set(clock.seconds) == {"evaluation"} and clock.seconds["evaluation"] >= 0


def test_an_unknown_phase_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="phase must be one of .*'train'"):
        PhaseClock().add("training", 1.0)


def test_the_process_age_is_the_time_since_this_process_started():
    assert 0 < process_age() < 24 * 3600
