"""The reproduce stage's pure parts on hand-made runs: which committed cells it retrains, how it
compares their steps, and the causes it names. (The stage itself runs in tests/test_pipeline.py's
`dvc repro`.)"""

from conftest import fake_run
from sweetspot.answer import estimate
from sweetspot.check import reproduce


def named(run: dict, **provenance) -> dict:
    return {**run, "name": f"b{run['batch_size']}-lr{run['lr']}-s{run['seed']}",
            "base_lr": run["lr"], "provenance": provenance}


def test_the_sample_is_the_spots_seeds_and_one_seed_at_each_edge_of_the_region(answer):
    results, _, seconds, _ = answer
    results = [named(r) for r in results]
    found = estimate.estimate(estimate.steps_table(results, [0.97]), seconds, 0.97,
                              200)
    spot, per_batch = found["spot"], found["per_batch"]
    picked = reproduce.sample(results, spot, per_batch)
    members = [m["batch_size"] for m in spot["region"]]
    spots = [c for c, role in picked if role == "spot"]
    edges = [c for c, role in picked if role == "edge"]
    assert {c["batch_size"] for c in spots} == {spot["batch_size"]}
    assert sorted(c["seed"] for c in spots) == [0, 1]  # every seed at the chosen rate
    assert all(c["lr"] == spot["lr"] for c in spots)
    assert sorted(c["batch_size"] for c in edges) == sorted(
        {min(members), max(members)} - {spot["batch_size"]})
    assert all(c["seed"] == 0 for c in edges)  # one seed each, the lowest


def test_identical_steps_name_no_cause():
    cell = named(fake_run(32, 1.0, 0), torch_cpu_capability="AVX2")
    row = reproduce.compare(cell, cell, "spot", [0.97, 0.95], [cell])
    assert row["identical"] and row["ratio"] == 1.0 and row["causes"] == []
    assert row["committed"] == row["here"] and set(row["here"]) == {"0.97", "0.95"}


def test_differing_steps_name_the_vector_width_and_a_rate_at_the_edge_of_stability():
    committed = named(fake_run(32, 1.0, 0), torch_cpu_capability="AVX2", torch_version="2.14")
    here = named(fake_run(48, 1.0, 0), torch_cpu_capability="AVX512", torch_version="2.14")
    here["batch_size"] = 32  # the same cell, its curve another's: other steps
    unstable = named(fake_run(32, 3.0, 0, reached=False))
    row = reproduce.compare(committed, here, "edge", [0.97], [committed, unstable])
    assert not row["identical"] and row["ratio"] < 1
    assert row["causes"] == ["the CPU's vector width (AVX2 there, AVX512 here)",
                             "a rate at the edge of stability (lr 3 at this batch size did not "
                             "reach the target)"]
    plain = reproduce.compare(committed, {**here, "provenance": committed["provenance"]}, "edge",
                              [0.97], [committed])
    assert plain["causes"] == []
