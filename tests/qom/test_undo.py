"""qom.undo: the undo stack behind rollback of a failed plug."""

from __future__ import annotations

import logging

import pytest

from qom import UndoStack


def test_rollback_runs_newest_first() -> None:
    log: list[str] = []
    stack = UndoStack()
    stack.push(lambda: log.append("a"), "first")
    stack.push(lambda: log.append("b"), "second")
    assert len(stack) == 2 and stack.labels == ["first", "second"]
    stack.rollback()
    assert log == ["b", "a"] and len(stack) == 0
    stack.rollback()
    assert log == ["b", "a"]


def test_commit_forgets() -> None:
    log: list[str] = []
    stack = UndoStack()
    stack.push(lambda: log.append("a"))
    stack.commit()
    stack.rollback()
    assert log == [] and len(stack) == 0


def test_context_manager_rolls_back_on_error_and_reraises() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="boom"), UndoStack() as stack:
        stack.push(lambda: log.append("undo"))
        raise ValueError("boom")
    assert log == ["undo"]


def test_context_manager_commits_on_success() -> None:
    log: list[str] = []
    with UndoStack() as stack:
        stack.push(lambda: log.append("undo"))
    assert log == [] and len(stack) == 0


def test_failing_undo_step_is_logged_and_the_rest_run(caplog) -> None:
    log: list[str] = []
    stack = UndoStack()
    stack.push(lambda: log.append("a"), "a")

    def broken() -> None:
        raise RuntimeError("undo broke")

    stack.push(broken, "broken")
    stack.push(lambda: log.append("c"), "c")
    with caplog.at_level(logging.ERROR, logger="qom.undo"):
        stack.rollback()
    assert log == ["c", "a"]
    assert "undo step broken failed" in caplog.text


def test_default_label_is_the_callables_name() -> None:
    def free_slot() -> None:
        pass

    stack = UndoStack()
    stack.push(free_slot)
    assert stack.labels == ["test_default_label_is_the_callables_name.<locals>.free_slot"]


def test_original_error_wins_over_undo_errors() -> None:
    def broken() -> None:
        raise RuntimeError("undo broke")

    with pytest.raises(KeyError), UndoStack() as stack:
        stack.push(broken)
        raise KeyError("original")
