"""The report's side of the advice: the three stages' documents and the answer in, the claims'
rows, the section's markdown, the README's sentence and the figures out."""

from __future__ import annotations

import json

from sweetspot import paths
from sweetspot.advice import claims, ends, figures, floors
from sweetspot.answer import analysis, estimate, fastest
from sweetspot.config import Params

NAMES = ("time_per_epoch", "batch_1", "whole_batch", "single_image", "extremes", "memory",
         "processors", "blocks", "procedure", "neighbours")  # in the answer's order


def build(params: Params, results: list[dict], per_loader: dict, target: float,
          cost: dict | None, steps, undecided: list[int]) -> dict:
    """Every claim's row from this machine's data: `per_loader` the answer of each data path
    steptime measured ({loader: {target: spot}}; the first the headline), `cost` its cost model
    (t0, c), `steps` the steps table (estimate.steps_table), `undecided` the region's members the
    race left undecided. The question's pipeline is answered at its best split here, from the
    cores stage's seconds and the sweep's steps, beside num_workers=0 (steptime's torchvision)."""
    cores, memory, blocks = (json.loads(p.read_text())
                             for p in (paths.CORES, paths.MEMORY, paths.BLOCKS))
    question, pipeline = (json.loads(p.read_text()) if p.exists() else None
                          for p in (paths.QUESTION, paths.PIPELINE))
    s = params.sweep
    spot = per_loader[s.loaders[0]][target]
    per_batch = spot["per_batch"]
    spot_question = per_loader.get("torchvision", {}).get(target)
    spot_best = spot_question  # the best split no faster than the question's beyond the spread
    if cores["best_split"]:
        spot_best = estimate.answers(results, fastest.round_seconds(cores["best_split"]),
                                     [target], s.resamples, runs=[])[target]
    found = floors.floors(memory)
    replayed = claims.replay(per_batch, params.train.n_train, spot, undecided)
    spread = (spot["high"] - spot["low"]) / 2 / spot["estimate"]  # the seeds' and rounds'
    rows = [claims.time_per_epoch(per_batch, spot, params.train.n_train, s.max_epochs),
            ends.batch_one(per_batch, spot, s.extremes_max_epochs, censored(results, params)),
            ends.whole_batch(per_batch, spot, question, target),
            ends.single_image(steps, spot, target),
            ends.extremes(per_batch, spot, question, target, s.max_epochs),
            claims.memory(found, cost, spot),
            claims.processors(cores, spot_best, spot_question),
            claims.blocks(verdict := claims.block_verdict(
                {int(b): v["rounds"] for b, v in blocks["steptime"]["per_batch"].items()},
                [tuple(c) for c in blocks["centres"]], s.resamples, spread)),
            claims.answer_procedure(replayed, spot, params.race.margin),
            claims.neighbours(per_batch, spot, undecided)]
    sentence = claims.headline(rows, cores, spot_best, spot_question, target)
    drawn = {"advice_memory": figures.memory(found), "advice_cores": figures.cores(cores),
             "advice_blocks": figures.blocks(blocks, verdict)}
    best = {**cores["best"], "speedup": cores["speedup"]}
    if spot_best:
        best.update(batch_size=spot_best["batch_size"], time_to_target=spot_best["estimate"])
    doc = {"verdicts": dict(zip(NAMES, (r["verdict"] for r in rows), strict=True)),
           "replay": {k: replayed.get(k) for k in ("grid_best", "best", "ratio", "in_region")},
           "best_split": best, "blocks": verdict["verdict"],
           "memory": {k: found[k] for k in ("stops_falling", "t0_floor", "c_floor")}}
    return {"rows": rows, "headline": sentence, "markdown": claims.section(rows, sentence),
            "figures": drawn, "doc": doc, "question": question, "pipeline": pipeline}


def censored(results: list[dict], params: Params) -> list[str]:
    """The small end's runs (sweep.extremes) that did not reach the headline target in their
    budget, by cell name."""
    target = params.sweep.targets[0]
    return sorted(r["name"] for r in results if r["batch_size"] in params.sweep.extremes
                  and not analysis.time_to_target(r.get("curve") or [], target)["reached"])
