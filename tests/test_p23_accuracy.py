"""p23_accuracy: .item(), argmax and the right-answer count, held against the values the
course shows and against argmax and counting done by hand on plain Python lists."""
import contextlib
import io
import re

import pytest

from conftest import load_script

ROWS = [[0.1, 0.2], [0.3, 0.4]]        # the course's outputs: two images, two class scores
ROWS_FOR_ARGMAX_0 = [[0.1, 0.2], [0.05, 0.4]]
TARGETS = [0, 1]


def argmax_by_hand(values):
    """The index of the largest value (the first, on a tie), as argmax gives it."""
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


@pytest.fixture(scope="module")
def out():
    p23 = load_script("p23_accuracy")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert p23.main([]) == 0
    return buffer.getvalue()


def values(out, expression):
    """Each value the script printed after ``expression: ``, in order."""
    return re.findall(rf"^{re.escape(expression)}: (.+)$", out, re.M)


def value(out, expression):
    """The one value the script printed after ``expression: ``."""
    (found,) = values(out, expression)
    return found


def test_item_turns_the_tensor_into_a_number(out):
    assert value(out, "print(a)") == "tensor(5)"            # the course's comments
    assert value(out, "print(a.item())") == "5"


def test_argmax_along_rows_and_down_columns(out):
    along_rows = [[argmax_by_hand(row) for row in rows] for rows in (ROWS, ROWS_FOR_ARGMAX_0)]
    down_columns = [argmax_by_hand([row[c] for row in ROWS_FOR_ARGMAX_0]) for c in range(2)]
    assert along_rows == [[1, 1], [1, 1]] and down_columns == [0, 1]   # the course's values
    # argmax(1) on both outputs, argmax(0) on the second: the two directions differ there
    assert values(out, "outputs.argmax(1)") == [f"tensor({r})" for r in along_rows]
    assert value(out, "outputs.argmax(0)") == f"tensor({down_columns})"
    # each result is printed under the outputs it came from
    second = out.index("[0.0500, 0.4000]]")
    assert out.index("[0.3000, 0.4000]]") < out.index("outputs.argmax(1)") < second
    assert second < out.index("outputs.argmax(0)")


def test_the_right_answers_and_the_accuracy(out):
    preds = [argmax_by_hand(row) for row in ROWS]
    right = [p == t for p, t in zip(preds, TARGETS)]
    assert value(out, "preds = outputs.argmax(1)") == f"tensor({preds}), targets: tensor({TARGETS})"
    assert value(out, "preds == targets") == "tensor([False,  True])" and right == [False, True]
    assert value(out, "(preds == targets).sum()") == f"tensor({sum(right)})"
    assert float(value(out, "accuracy = (preds == targets).sum().item() / len(targets)")) == (
        sum(right) / len(TARGETS))
