"""p13_conv: F.conv2d on the course's 5x5 input and 3x3 kernel, held against a hand-written
convolution (plain Python loops over lists) and the numbers the course shows."""
import pytest
import torch

from conftest import load_script

INPUT = [[1, 2, 0, 3, 1],
         [0, 1, 2, 3, 1],
         [1, 2, 1, 0, 0],
         [5, 2, 3, 1, 1],
         [2, 1, 0, 1, 1]]
KERNEL = [[1, 2, 1],
          [0, 1, 0],
          [2, 1, 0]]


def conv_by_hand(image, kernel, stride=1, padding=0):
    """Cross-correlation as the lesson draws it: slide, multiply, add up. Lists in, lists out."""
    n = len(image) + 2 * padding
    padded = [[0] * n for _ in range(n)]
    for i, row in enumerate(image):
        for j, v in enumerate(row):
            padded[i + padding][j + padding] = v
    k = len(kernel)
    out = []
    for top in range(0, n - k + 1, stride):
        row = []
        for left in range(0, n - k + 1, stride):
            total = 0
            for a in range(k):
                for b in range(k):
                    total += padded[top + a][left + b] * kernel[a][b]
            row.append(total)
        out.append(row)
    return out


def printed(values):
    """How print() shows a [1, 1, H, W] integer tensor holding these values."""
    return str(torch.tensor([[values]]))


@pytest.fixture(scope="module")
def p13():
    return load_script("p13_conv")


def test_the_script_and_the_hand_convolution_give_the_course_numbers(p13, capsys):
    assert p13.main([]) == 0
    out = capsys.readouterr().out
    course = {1: [[10, 12, 12], [18, 16, 16], [13, 9, 3]], 2: [[10, 12], [13, 3]]}
    for stride, numbers in course.items():
        assert conv_by_hand(INPUT, KERNEL, stride=stride) == numbers      # the oracle is right
        printed_now = out.split(f"F.conv2d(input, kernel, stride={stride}):\n", 1)[1]
        assert printed_now.startswith(printed(numbers) + "\n")        # and so is the script
    padded = conv_by_hand(INPUT, KERNEL, stride=1, padding=1)
    assert len(padded) == 5 and padded[1][1:4] == [10, 12, 12]   # padding=1 keeps 5x5
    assert out.endswith(printed(padded) + "\n")


def test_prints_shapes_then_stride_1_stride_2_padding_1(p13, capsys):
    assert p13.main([]) == 0
    expected = "\n".join([
        "input.shape: torch.Size([1, 1, 5, 5])",
        "kernel.shape: torch.Size([1, 1, 3, 3])",
        "output = F.conv2d(input, kernel, stride=1):",
        printed(conv_by_hand(INPUT, KERNEL, stride=1)),
        "output2 = F.conv2d(input, kernel, stride=2):",
        printed(conv_by_hand(INPUT, KERNEL, stride=2)),
        "output3 = F.conv2d(input, kernel, stride=1, padding=1):",
        printed(conv_by_hand(INPUT, KERNEL, stride=1, padding=1)),
    ]) + "\n"
    out = capsys.readouterr().out
    assert out == expected
    assert printed([[10, 12], [13, 3]]) in out                   # the course's own numbers


def test_help(p13, capsys):
    with pytest.raises(SystemExit) as e:
        p13.main(["--help"])
    assert e.value.code == 0
    assert "stride" in capsys.readouterr().out
