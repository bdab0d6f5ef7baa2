"""The question's own setup in reports/report.md: its run here beside the figures it printed, and
its data pipeline (the answer on each data path, and the DataLoader and the eager step taken
apart). Pure: the documents in, Markdown out."""

from __future__ import annotations

import math
import statistics

from sweetspot.advice import ends
from sweetspot.fmt import table
from sweetspot.report.asked import ASKED
from sweetspot.report.firstscreen import answer_cells


def data_paths(loaders: dict, targets, pipeline: dict | None = None) -> list[str]:
    """The answer for each data path steptime measured: the same steps x each path's seconds,
    and the cost model of each."""
    if len(loaders) < 2:
        return []
    answers, costs = [], []
    for name, path in loaders.items():
        answers += [[name, f"{t:g}", *answer_cells(path["spots"][t])] for t in targets]
        if m := path["cost"]:
            costs.append([name, f"{m['t0'] * 1e6:.0f}", f"{m['c'] * 1e6:.2f}",
                          f"{m['b_noise']:.0f}", f"{m['b_star']:.0f}",
                          path["spots"][targets[0]]["batch_size"]])
    lines = ["## The question's own data pipeline", "",
             "The steps to a target do not depend on the data path, so each path's answer is "
             "the sweep's steps x that path's seconds per step, measured by steptime in the "
             "same interleaved rounds.", "",
             *table(["data path", "target", "sweet region", "spot", "seconds (estimate)",
                     "95% interval"], "lrlrrl", answers), "",
             *table(["data path", "t0 (µs per step)", "c (µs per example)", "B_noise",
                     "B* = sqrt(B_noise t0 / c)", "spot"], "lrrrrr", costs)]
    (first, base), *others = loaders.items()
    dearer = [f"the {name} path's t0 is {m['t0'] / base['cost']['t0']:.1f}x and its c "
              f"{m['c'] / base['cost']['c']:.1f}x the {first} path's"
              for name, m in ((n, p["cost"]) for n, p in others) if m and base["cost"]]
    return [*lines, "", f"Per step, {'; '.join(dearer) or 'no cost model to compare'}: B* "
            "moves with sqrt(t0 / c).", "", *pipeline_parts(pipeline)]


def pipeline_parts(pipeline: dict | None) -> list[str]:
    """The question's pipeline taken apart (advice/pipeline.py): its DataLoader and its eager
    step, each alone on the tensor path's engine."""
    if not pipeline:
        return []
    rows = pipeline["per_batch"]

    def us(v):
        return f"{v * 1e6:.0f}"

    dearer = sum(v["loader"] > v["step"] for v in rows.values())
    return ["The question's pipeline taken apart (the `pipeline` stage): seconds per step of the "
            "four stacks in the same interleaved rounds, the fastest round each, and each one's "
            "factor over the tensor path with the engine's step. The question's DataLoader "
            "converts every image in Python; its step is autograd's, with torch.optim.", "",
            *table(["batch size", "tensor, engine (µs)", "tensor, eager (µs)",
                    "DataLoader, engine (µs)", "DataLoader, eager: the question's (µs)",
                    "DataLoader alone", "eager step alone", "both"], "rrrrrrrr",
                   [[b, us(v["seconds"]["tensor exact"]), us(v["seconds"]["tensor eager"]),
                     us(v["seconds"]["torchvision exact"]), us(v["seconds"]["torchvision eager"]),
                     f"{v['loader']:.2f}x", f"{v['step']:.2f}x", f"{v['total']:.2f}x"]
                    for b, v in rows.items()]), "",
            f"The DataLoader alone costs more than the eager step alone at {dearer} of "
            f"{len(rows)} batch sizes. Of the question's step, the DataLoader adds "
            + ", ".join(f"{v['loader_share']:.0%}" for v in rows.values())
            + " and the eager step " + ", ".join(f"{v['step_share']:.0%}" for v in rows.values())
            + f" at batch sizes {', '.join(rows)}.", ""]


def question_section(question: dict | None, spot: dict, max_epochs: int) -> list[str]:
    """The question's own run here, beside the figures it printed (train/question.py)."""
    if not question:
        return []
    n = question["n_train"]
    one, whole = ends.question_epochs(question)
    asked = {1: ASKED[1], n: ASKED[60000]} if n == 60000 else {}

    def cell(b, i, k):  # ours, then the question's (seconds, accuracy) where it printed them
        rows = asked.get(b, [])
        return f"{rows[i][k]:g}" if i < len(rows) else "-"

    where = question["provenance"]
    lines = ["## The question's own run", "",
             f"The question's setup run here (the `question` stage): its MLP, its DataLoader and "
             f"eager step, SGD at lr {question['lr']:g}, batch 1 and then the whole training set "
             f"in one batch, {question['epochs']} "
             f"{'epoch' if question['epochs'] == 1 else 'epochs'} each, evaluated once an epoch, "
             "beside the figures the question printed. Seconds here are the training clock only "
             f"(the question's included its test pass), on {where['cpu_model']} with "
             f"{where['torch_threads']} torch "
             f"{'thread' if str(where['torch_threads']) == '1' else 'threads'}.", "",
             *table(["epoch", "batch 1: s", "the question's", "test accuracy", "the question's",
                     f"batch {n}: s", "the question's", "test accuracy", "the question's"],
                    "rrrrrrrrr",
                    [[r["epoch"], f"{r['epoch_time']:.1f}", cell(1, i, 0),
                      f"{r['test_acc']:.4f}", cell(1, i, 1), f"{w['epoch_time']:.2f}",
                      cell(n, i, 0), f"{w['test_acc']:.4f}", cell(n, i, 1)]
                     for i, (r, w) in enumerate(zip(one, whole, strict=True))]), ""]
    ratio = statistics.median(r["epoch_time"] for r in one) / statistics.median(
        w["epoch_time"] for w in whole)
    theirs = statistics.median(r[0] for r in ASKED[1]) / statistics.median(
        r[0] for r in ASKED[60000])
    reaching = spot["per_batch"][spot["per_batch"]["estimate"].map(math.isfinite)]
    lines += [f"Per epoch the whole-set batch is {ratio:.0f}x cheaper than batch 1 (the "
              f"question's: {theirs:.0f}x). But an epoch is "
              f"{n} steps at batch 1 and one at batch {n}: after {len(whole)} epochs the "
              f"whole-set batch has taken {len(whole)} steps at lr {question['lr']:g} and is at "
              f"{whole[-1]['test_acc']:.1%}, while batch 1 was at {one[0]['test_acc']:.1%} after "
              "its first. Time per epoch measures the cost of a pass over the data, not of "
              "learning; the right measure is the time to a target accuracy, at a rate fair to "
              f"each batch size: the answer above, where batch {spot['batch_size']} reaches "
              f"{spot['target']:g} in {spot['estimate']:.2f} s and no batch size above "
              f"{int(reaching['batch_size'].max())} does within {max_epochs} epochs.", ""]
    return lines
