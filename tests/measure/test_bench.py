"""The benchmark: its arithmetic on hand-made numbers, then one tiny real run end to end."""

import json

import pytest
from mlflow.tracking import MlflowClient

from conftest import tiny_params
from sweetspot import cli, paths
from sweetspot.measure import bench


def rows(table: dict[tuple[str, int], list[float]]) -> list[dict]:
    return [{"loop": loop, "batch_size": b, "repeat": i, "seconds_per_epoch": t}
            for (loop, b), times in table.items() for i, t in enumerate(times)]


def test_summary_takes_the_fastest_repeat_ratios_and_the_flops_fraction():
    made = rows({("question", 1): [30.0, 29.0, 31.0], ("eager", 1): [16.0, 17.0, 15.0],
                 ("engine", 1): [5.0, 6.0, 4.0],
                 ("question", 4096): [2.5], ("eager", 4096): [0.3], ("engine", 4096): [0.2]})
    out = bench.summarise(made, 818_176, matmul=300e9)
    assert out["b1"] == {"question_s_per_epoch": 29.0, "eager_s_per_epoch": 15.0,
                         "engine_s_per_epoch": 4.0, "question_over_engine": 7.25,
                         "eager_over_engine": 3.75}  # no FLOP/s below FLOPS_FROM, no compiled
    big = out["b4096"]
    assert big["engine_gflops"] == pytest.approx(818_176 * 60_000 / 0.2 / 1e9)
    assert big["engine_flops_fraction"] == pytest.approx(big["engine_gflops"] / 300)
    assert bench.summarise(made, 818_176, matmul=None)["b4096"].keys() == out["b1"].keys()


def test_the_compiled_engine_gets_its_own_ratios_and_compile_seconds():
    made = rows({("question", 1): [30.0], ("eager", 1): [16.0], ("engine", 1): [5.0],
                 ("compiled", 1): [2.0, 3.0, 2.5]})
    for r in made:
        r["compile_seconds"] = 4.0 if r["loop"] == "compiled" else 0.0
    cell = bench.summarise(made, 818_176, matmul=300e9)["b1"]
    assert cell["compiled_s_per_epoch"] == 2.0 and cell["question_over_compiled"] == 15.0
    assert cell["eager_over_compiled"] == 8.0 and cell["compiled_compile_seconds"] == 4.0
    text = bench.summary_table({"b1": cell})
    assert "| 1 | 30.000 | 16.000 | 5.000 | 2.000 | 6.0x | 15.0x | - | - |" in text.splitlines()


def test_the_figure_has_one_line_per_loop():
    made = rows({(loop, b): [1.0 / b, 1.1 / b] for loop in bench.LOOPS for b in (1, 16, 256)})
    fig = bench.figure(made, "test")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(bench.LOOPS)


def test_bad_settings_exit_2_before_any_work(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "--repeats", "0"])
    assert exit_.value.code == 2
    assert "bench.repeats" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_benchmark_writes_its_json_figure_and_mlflow_run(workdir, capsys):
    tmp_path, env = workdir
    uri = env["MLFLOW_TRACKING_URI"]
    assert bench.main(tiny_params(train={"train_examples": 0})) == 0

    result = json.loads((tmp_path / paths.BENCH_JSON).read_text())
    for key in ("device", "threads", "torch_version", "cpu_model", "repeats", "matmul_gflops",
                "flops_per_example"):
        assert result[key], key
    for b in (1, 256, 4096):
        cell = result[f"b{b}"]
        for key in ("question_s_per_epoch", "eager_s_per_epoch", "engine_s_per_epoch",
                    "compiled_s_per_epoch", "question_over_engine", "eager_over_engine",
                    "question_over_compiled", "compiled_compile_seconds"):
            assert cell[key] > 0, (b, key)
    assert 0 < result["b4096"]["engine_flops_fraction"]
    assert 0 < result["b4096"]["compiled_flops_fraction"]
    assert "engine_flops_fraction" not in result["b256"]
    off = result["eval_off_clock"]  # measured, not asserted on: that is the benchmark's job
    assert off["evaluations"] == 94 and off["repeats"] == 1
    for key in ("train_time_rare", "train_time_often", "eval_time_often", "clock_ratio"):
        assert off[key] > 0, key
    assert (tmp_path / paths.BENCH_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    headline = json.loads((tmp_path / paths.BENCH_METRICS).read_text())  # dvc metrics show
    assert set(headline) == {"question_over_engine_b1", "question_over_engine_b256",
                             "question_over_engine_b4096", "eval_over_train", "clock_ratio"}
    assert headline["question_over_engine_b1"] == result["b1"]["question_over_engine"]

    client = MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "FINISHED" and run.data.params["repeats"] == "1"
    assert run.data.metrics["b1/engine_s_per_epoch"] == result["b1"]["engine_s_per_epoch"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"bench.json", "bench.png", "bench_rows.json"} <= artifacts
    assert "engine" in capsys.readouterr().out  # the table
