"""Networks by name: the question's MLP, LeNet-5, and a user's own `package.module:function`
(the README's example, run as written), each trained as one tiny sweep cell."""

import dataclasses
import json
import re

import mlflow
import pytest
import torch

from conftest import REPO, sweetspot, tiny_params, write_params
from sweetspot.train import networks
from sweetspot.train.step import EagerStep, ExactStep, make_step, step_for


def readme_example() -> tuple[str, str]:
    """The README's user network: (the file's code, the name `--network` takes)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- example:network -->\n```python\n(.*?)```", text, re.S)
    name = re.search(r"--network (\S+:\S+)", text)
    assert block and name, "README.md lacks its user-network example"
    return block.group(1), name.group(1)


@pytest.mark.parametrize("network", ["mlp", "cnn"])
def test_each_network_maps_rows_or_images_to_ten_classes(network):
    cfg = dataclasses.replace(tiny_params().train, network=network)
    net = networks.build(cfg)
    assert net(torch.rand(3, 784)).shape == (3, 10)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_the_mlp_is_built_as_before_so_its_runs_do_not_change():
    cfg = tiny_params().train
    torch.manual_seed(0)
    built = networks.build(cfg)
    torch.manual_seed(0)
    before = networks.MLP(cfg.width, cfg.activation)
    for a, b in zip(built.state_dict().values(), before.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_names_come_from_one_place():
    cfg = tiny_params().train
    assert networks.network_name(cfg) == "Linear(784,256)-sigmoid-Linear(256,10)"
    cnn = dataclasses.replace(cfg, network="cnn")
    assert networks.network_name(cnn) == networks.CNN_NAME
    user = dataclasses.replace(cfg, network="mynets:wide")
    assert networks.network_name(user) == "mynets:wide"
    assert networks.network_slug(user) == "mynets-wide"


def test_only_the_mlp_takes_the_engine_others_the_eager_step():
    cfg = tiny_params().train
    assert isinstance(step_for(cfg, networks.build(cfg)), ExactStep)
    cnn = networks.build(dataclasses.replace(cfg, network="cnn"))
    for kind in ("exact", "compiled"):
        assert isinstance(make_step(kind, cnn, "sgd", 0.1, 0.9), EagerStep)


def test_a_users_network_is_checked_before_use(tmp_path, monkeypatch):
    code, name = readme_example()
    monkeypatch.chdir(tmp_path)
    module = name.split(":")[0]
    (tmp_path / f"{module}.py").write_text(code)
    monkeypatch.delitem(__import__("sys").modules, module, raising=False)
    cfg = dataclasses.replace(tiny_params().train, network=name)
    networks.check(cfg)
    assert networks.build(cfg)(torch.rand(2, 784)).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["cnn", "readme"])
def test_one_tiny_cell_of_each_network(workdir, which):
    """A real sweep cell on the 6000-image subset, as `dvc repro` runs one: the README's own
    network from a file in the project root, LeNet-5 from the package."""
    folder, env = workdir
    network = "cnn"
    if which == "readme":
        code, network = readme_example()
        (folder / f"{network.split(':')[0]}.py").write_text(code)
    write_params(folder, {"train": {"network": network}, "sweep": {"lrs": [0.1], "max_epochs": 1,
                                                                  "targets": [0.99]}})
    out = folder / "cell.json"
    done = sweetspot("sweep", "--batch-size", 32, "--base-lr", 0.1, "--seed", 0, "--loader",
                     "tensor", "--out", out, cwd=folder, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["steps"] == 188 and result["outcome"] == "not_reached"  # 1 epoch of 6000 at 32
    assert result["curve"][-1]["test_acc"] > 0.5  # it learned
    run = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(result["run_id"])
    name = networks.CNN_NAME if which == "cnn" else network
    assert run.data.params["network_name"] == name and run.data.params["network"] == network
