"""One line-counting rule for every problem, and clear words for tabs and short indents (11.11)."""

from __future__ import annotations

import pytest

from trioforge import load_workflow
from trioforge._workflow_file import WorkflowFileError


def _problems(text: str) -> list[str]:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow("w.yaml", text=text)
    return [str(problem) for problem in caught.value.problems]


def test_a_cr_only_file_puts_template_and_key_problems_on_the_same_lines() -> None:
    """With CR line ends, a template problem and a key problem count lines alike."""
    text = (
        'tasks:\r  a:\r    cmd: [sh, -c, "${{ tasks.b.outputs.x }}"]\r    needs: [b]\r'
        "  b: {run: 'true', nede: 1}\r"
    )
    problems = _problems(text)
    assert problems[0].startswith("w.yaml:3:20: item 3 of 'cmd' of task 'a'")
    assert problems[1].startswith("w.yaml:5:20: unknown key 'nede'")


def test_a_line_separator_in_a_value_does_not_shift_later_lines() -> None:
    """U+2028 inside a value is not a line end: the next problem is on its own line."""
    text = "tasks:\n  a: {run: \"x\u2028y\"}\n  b: {run: 'true', nede: 1}\n"
    assert _problems(text)[0].startswith("w.yaml:3:20: unknown key 'nede'")


def test_a_tab_in_the_indentation_is_called_a_tab() -> None:
    """A tab says "tab" and where it is, not "cannot start any token"."""
    (problem,) = _problems("tasks:\n  a:\n\trun: 'true'\n")
    assert problem == (
        "w.yaml:3:1: a tab in the indentation (line 3, column 1): YAML indents with spaces "
        "only; replace the tab with spaces"
    )


def test_a_task_key_indented_too_little_says_so() -> None:
    """`needs:` two spaces short of its task is read as a task: the message says why."""
    (problem,) = _problems("tasks:\n  a:\n    run: 'true'\n  needs: [a]\n")
    assert problem.startswith("w.yaml:4:3: task 'needs' is not a mapping, and 'needs' is a task")
    assert "indented too little" in problem


def test_a_syntax_error_after_a_line_separator_counts_lines_like_every_problem() -> None:
    """PyYAML counts U+2028 as a line end; the syntax error's position does not."""
    (problem,) = _problems("tasks:\u2028  a: {run: x}\n  b: [\n\n")
    assert problem.startswith("w.yaml:4:1: YAML syntax error:")


def test_a_nesting_error_counts_lines_like_every_problem() -> None:
    """An error trioforge raises while composing (too deep) uses the same line rule."""
    deep = "[" * 70 + "]" * 70
    (problem,) = _problems(f"x: \u2028\ntasks: {deep}\n")
    assert problem.startswith("w.yaml:2:")
    assert "nested more than" in problem
