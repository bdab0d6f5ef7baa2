"""The advice in the report's words: the small end's censored runs, a region as a set, and the
README's sentence (its counts, the question's pipeline at its best split)."""

import math

from conftest import spot_of, tiny_params
from sweetspot.advice import claims
from sweetspot.report import advice

ESTIMATES = {16: 3.3, 32: 3.0, 48: 3.4, 64: 3.6}


def cores_doc(best=(2, 0), speedups=(0.87, 0.86)) -> dict:
    return {"best": {"threads": best[0], "workers": best[1], "beyond": False}, "cpus": 2,
            "splits": [], "tensor_threads": {"best": 1},
            "speedup": {str(16 * (i + 1)): {"speedup": s, "q1": s - 0.05, "q3": s + 0.05}
                        for i, s in enumerate(speedups)}}


def test_a_small_end_run_is_censored_as_the_project_reads_a_curve():
    def run(name, batch, accuracies, losses):
        curve = [{"time": i, "step": i, "examples": i, "epoch": i, "train_loss": loss,
                  "test_loss": loss, "test_acc": acc}
                 for i, (acc, loss) in enumerate(zip(accuracies, losses, strict=True))]
        return {"name": name, "batch_size": batch, "curve": curve}

    params = tiny_params(sweep={"extremes": [1, 2]})  # the headline target: 0.8
    results = [run("b1-reached", 1, [0.5, 0.9], [1.0, 0.5]),
               run("b1-short", 1, [0.5, 0.7], [1.0, 0.5]),
               run("b2-diverged", 2, [0.5, 0.9], [math.nan, math.nan]),  # nan, then a high read
               run("b32-short", 32, [0.5, 0.7], [1.0, 0.5])]  # not an extreme
    assert advice.censored(results, params) == ["b1-short", "b2-diverged"]


def test_a_region_is_a_range_only_where_it_is_contiguous_in_the_sizes_tried():
    assert advice._sizes(spot_of(ESTIMATES, [16, 32, 48])) == "16-48"
    assert advice._sizes(spot_of(ESTIMATES, [16, 48])) == "{16, 48}"  # 32 tried, and out
    assert advice._sizes(spot_of(ESTIMATES, [32])) == "32"


def test_the_readme_sentence_counts_the_verdicts_and_says_the_best_split():
    cpus = claims.processors(cores_doc(), None, None)  # no split beyond the spread: not
    judged = {"time_per_epoch": {"verdict": claims.HOLDS}, "procedure": {"verdict": claims.PART},
              "processors": cpus}
    assert advice.headline(judged, 0.97) == (
        "Of the accepted answer's 3 claims tested here, 1 holds, 1 holds in part and 1 does not.")
    spot = spot_of(ESTIMATES, [16, 32])
    judged["processors"] = claims.processors(cores_doc(), spot, spot)
    assert advice.headline(judged, 0.97).endswith(
        "; no split of the CPUs between DataLoader workers and torch threads makes the "
        "question's pipeline faster beyond the rounds' spread (the best, 0 loader workers and 2 "
        "threads, 0.86x in geometric mean over the batch sizes timed), so its answer stays "
        "3.00 s at batch 32.")
    faster = {**spot, "batch_size": 48, "estimate": 2.5}
    judged["processors"] = claims.processors(cores_doc(best=(1, 1)), faster, spot)
    assert advice.headline(judged, 0.97).endswith(
        "; the question's pipeline at its best split (1 loader worker, 1 thread) reaches 97% in "
        "2.50 s at batch 48, against 3.00 s with no loader worker.")


def test_the_section_is_one_table_row_per_claim_with_its_figure():
    judged = {"procedure": claims.advised_procedure({"best": None, "grid": [64, 128]},
                                                   spot_of(ESTIMATES, [32]), 0.1),
              "processors": claims.processors(cores_doc(), None, None)}
    lines = advice.section(judged, 0.97)
    assert lines[0] == "## The answer's advice, tested here"
    rows = [line for line in lines if line.startswith("| \"")]
    assert len(rows) == 2 and rows[0].endswith(
        "| no batch size of its grid reached the target | **not tested here** | "
        "[two_factors](figures/two_factors.png) |")
