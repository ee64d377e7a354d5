"""p12_nn_module: a module whose forward adds one; calling it runs forward."""
import pytest
import torch

from conftest import load_script


@pytest.fixture(scope="module")
def p12():
    return load_script("p12_nn_module")


def test_prints_tensor_2(p12, capsys):
    assert p12.main([]) == 0
    assert capsys.readouterr().out == "output = add_one(x): tensor(2.)\n"   # 1.0 + 1, the course's


def test_calling_the_module_runs_forward(p12):
    add_one = p12.AddOne()
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    assert torch.equal(add_one(x), torch.tensor([[2.0, -1.0], [1.5, 4.0]]))
    assert torch.equal(add_one(x), add_one.forward(x))   # __call__ -> forward
    assert list(add_one.parameters()) == []               # nothing to learn


def test_help(p12, capsys):
    with pytest.raises(SystemExit) as e:
        p12.main(["--help"])
    assert e.value.code == 0
    assert "tensor(2.)" in capsys.readouterr().out
