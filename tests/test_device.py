"""The one device checker: names, devices absent from this machine, and both callers."""

import pytest
import torch

from idc_sklearn import MLBNInceptionClassifier
from idc_sklearn._device import (
    DEVICE_NAMES,
    absent_device,
    check_device,
    is_device_name,
)
from idc_sklearn.cli import main


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without CUDA or MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def two_gpus_and_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_device_names(name):
    assert is_device_name(name)


@pytest.mark.parametrize(
    "name", ["tpu", "CPU", "cuda:", "cuda:x", "cuda:-1", " cpu", "", None, 0]
)
def test_not_device_names(name):
    assert not is_device_name(name)


def test_absent_devices_are_said_to_be(no_gpu):
    for present in ("auto", "cpu", torch.device("cpu")):
        assert absent_device(present) is None
    assert absent_device("cuda") == "this machine has 0 CUDA GPU(s)"
    assert absent_device(torch.device("cuda", 1)) == "this machine has 0 CUDA GPU(s)"
    assert "MPS" in absent_device("mps") and "not available" in absent_device("mps")


def test_present_devices_are_not(two_gpus_and_mps):
    for present in ("cuda", "cuda:1", "mps"):
        assert absent_device(present) is None
    assert absent_device("cuda:2") == "this machine has 2 CUDA GPU(s)"


@pytest.mark.parametrize("device", ["mps", "cuda", "cuda:3"])
def test_estimator_refuses_an_absent_device_naming_it(no_gpu, device):
    with pytest.raises(ValueError, match=f"device='{device}' asks for a device"):
        check_device(device)
    clf = MLBNInceptionClassifier(filters=(3, 3), head_units=(4,), device=device)
    with pytest.raises(ValueError, match='Use device="auto"'):
        clf.fit(torch.zeros(4, 16, 16, 3).numpy(), [0, 1, 0, 1])


def test_estimator_refuses_what_torch_cannot_parse():
    with pytest.raises(ValueError, match="\"mps\" or a torch.device; got 'tpu'"):
        check_device("tpu")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("mps", "--device mps: MPS (Apple's GPU) is not available on this machine"),
        ("cuda", "--device cuda: this machine has 0 CUDA GPU(s)"),
        ("cuda:1", "--device cuda:1: this machine has 0 CUDA GPU(s)"),
    ],
)
def test_cli_turns_an_absent_device_into_a_usage_error(no_gpu, capsys, device, message):
    assert main(["train", "--device", device, "-o", "m.safetensors"]) == 2
    err = capsys.readouterr().err
    assert "usage: idc-sklearn train" in err
    assert f"{message}; use --device cpu or auto" in err


def test_cli_refuses_a_name_it_does_not_know(capsys):
    assert main(["compare", "--device", "cuda:x"]) == 2
    err = capsys.readouterr().err
    assert f"--device: expected {DEVICE_NAMES}; got 'cuda:x'" in err
