"""The `sweetspot` command: one subcommand per pipeline stage, each a thin shell over its main()."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from sweetspot import config, errors, paths
from sweetspot.measure.machine import STACK
from sweetspot.track import outage

# The commands that build train.network (checked before they start)
TRAINS = ("sweep", "refine", "rates", "seeds", "race", "heldout", "reproduce", "steptime",
          "predict", "validate", "machine", "cores", "memory", "blocks", "pipeline")
ADVICE = {"cores": "processors: the question's pipeline at every split of the CPUs between "
                   "loader workers and torch threads", "memory": "the step against this "
                   "machine's caches, bandwidth and matmul rate", "blocks": "seconds per step "
                   "at 2^n, 3*2^(n-1) and their neighbours", "pipeline": "the question's "
                   "DataLoader and its eager step, each alone on the tensor path's engine"}


def _add_overrides(parser: argparse.ArgumentParser, cls) -> None:
    """One --option per field of a config dataclass; unset options keep params.yaml's value."""
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, dest=field.name, default=None, metavar="VALUE",
                            help=f"override {field.name} from params.yaml")


def _overrides(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweetspot", description=__doc__)
    parser.add_argument("--params", type=Path, default=paths.PARAMS_FILE,
                        help="the params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="fetch and verify the dataset into data/<dataset>/raw")
    _add_overrides(p, config.DataConfig)
    p.add_argument("--root", type=Path, default=paths.DATA_ROOT, help="data root (default: data)")

    p = sub.add_parser("train", help="train once; one MLflow run")
    _add_overrides(p, config.TrainConfig)
    p.add_argument("--out", type=Path, default=None, help="also write the result JSON here")
    p.add_argument("--dataset", default=None, help="override data.dataset")

    p = sub.add_parser("question", help="the StackOverflow question's setup: batch 1 vs 60000")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per run (default: advice.question_epochs; the question ran 10)")
    p.add_argument("--train-examples", default=None, help="override train.train_examples")
    p.add_argument("--out", type=Path, default=None, help="also write the table as JSON here")

    p = sub.add_parser("sweep", help="one cell of the sweep grid (dvc.yaml's sweep stage), or "
                                     "with --executor ray every stale cell as Ray tasks")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--base-lr", type=float,
                   help="a rate of sweep.lrs; sweep.lr_policy turns it into this cell's rate")
    p.add_argument("--seed", type=int)
    p.add_argument("--loader", choices=config.LOADERS)
    p.add_argument("--out", type=Path, default=None, help="the cell's JSON (default: by name)")
    p.add_argument("--executor", choices=("cell", "ray"), default="cell",
                   help="cell: the one cell given (default); ray: the cells DVC reports stale")
    p.add_argument("--address", default=None,
                   help="ray: a running cluster (`ray start --head` prints it); default: "
                        "start one on this machine")
    p.add_argument("--threads", type=int, default=None,
                   help="ray: torch threads (and CPUs) per task (default: train.threads or 1)")
    p.add_argument("--retries", type=int, default=2,
                   help="ray: retries of a task whose worker dies (default: 2)")
    p.add_argument("--force", action="store_true", help="ray: every cell, stale or not")

    p = sub.add_parser("server", help="a shared MLflow tracking server on PostgreSQL")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--dir", type=Path, default=None,
                   help="where the database, artifacts and logs live (default: .server)")
    p.add_argument("--port", type=int, default=paths.MLFLOW_PORT,
                   help=f"the server's port (default: {paths.MLFLOW_PORT})")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default: 2)")

    p = sub.add_parser("upload", help="send the runs kept in .outbox/ (records the tracking "
                                      "store did not take in time) to it")
    p.add_argument("runs", nargs="*", metavar="RUN_ID", help="only these (default: every one)")

    sub.add_parser("machine", help="this machine's and stack's fingerprint and speed "
                   "(reports/machine.json)")
    sub.add_parser("steptime", help="seconds per step here, every batch size the sweep may train")
    sub.add_parser("plan", help="which batch sizes refinement adds (reports/refine_plan.json)")
    sub.add_parser("refine", help="train the 3*2^n neighbours of the coarse sweet region")
    sub.add_parser("rates", help="the chosen rate's neighbours (sweep.rate_ratio) at every batch "
                   "size the sweet region could hold")
    sub.add_parser("seeds", help="more seeds at each batch size's chosen rate")
    sub.add_parser("race", help="seeds where the sweet region is undecided, until decided or "
                   "the budget (params.yaml race) is spent")
    p = sub.add_parser("heldout", help="fresh seeds at the spot, a member of the region and the "
                       "first batch size above it left out, against the answer's verdicts")
    p.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102],
                   help="seeds no cell of the answer used (default: 100 101 102)")
    sub.add_parser("reproduce", help="retrain a sample of the committed cells here (the spot's "
                   "seeds, the region's edges) and compare their steps")
    sub.add_parser("report", help="sweet spot, figures and report.md from the cells")
    for name, text in ADVICE.items():
        sub.add_parser(name, help=f"the answer's advice: {text}")
    for name, text in (("predict", "the sweet spot on this machine and stack, without training"),
                       ("validate", "predict on a stack, then measure it with a reduced sweep")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--steps", default=None, metavar="PATH|RUN_ID",
                       help="the steps table: a CSV, or an MLflow run id holding one "
                            "(default: reports/steps_to_target.csv)")
        for key in STACK:
            p.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None,
                           help=f"override train.{key} (the stack)")

    p = sub.add_parser("forecast", help="a network's sweet spot before its sweep: seconds per "
                                        "step and the noise scale of one short run, through "
                                        "the cost model")
    p.add_argument("--epochs", type=int, default=1, help="epochs of the short run (default: 1)")
    p.add_argument("-S", "--set", dest="sets", action="append", default=[],
                   metavar="SECTION.KEY=VALUE",
                   help="a params.yaml value for this forecast, as `dvc exp run -S` sets it")

    p = sub.add_parser("bench", help="seconds per epoch: the question's loop against the engine")
    _add_overrides(p, config.BenchConfig)
    return parser


def dispatch(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in ("download", "server"):  # the commands that write to MLflow
        outage.wait_s()  # a bad SWEETSPOT_TRACKING_WAIT: one line, before any work
    if args.command == "download":
        from sweetspot.data import download

        params = config.load(args.params, data=_overrides(args, config.DataConfig))
        return download.main(params.data, root=args.root)
    if args.command == "train":
        params = config.load(args.params, train=_overrides(args, config.TrainConfig),
                             data={"dataset": args.dataset})
        _check_network(params)
        from sweetspot.train import run

        return run.main(params, out=args.out)
    if args.command == "bench":
        params = config.load(args.params, bench=_overrides(args, config.BenchConfig))
        from sweetspot.measure import bench

        return bench.main(params)
    if args.command == "question":
        params = config.load(args.params, train={"train_examples": args.train_examples},
                             advice={"question_epochs": args.epochs})
        from sweetspot.train import question

        return question.main(params, params.advice.question_epochs, args.out)
    if args.command == "server":
        from sweetspot.track import server

        if not 1 <= args.port <= 65535 or args.workers < 1:
            raise errors.ConfigError("--port must be in 1..65535 and --workers >= 1")
        return server.main(args.action, args.dir or server.DEFAULT_DIR, args.port, args.workers)
    if args.command == "upload":
        from sweetspot.track import tracking, upload

        return upload.main(tracking.project_root() / paths.OUTBOX, args.runs)
    if args.command == "forecast":
        params = config.load(args.params, **_sets(args.sets))
        _check_network(params)
        if args.epochs < 1:
            raise errors.ConfigError("--epochs: must be >= 1")
        from sweetspot.check import forecast

        return forecast.main(params, args.epochs)
    params = config.load(args.params)  # every stage from here on: in the project, checked
    if args.command in TRAINS:
        _check_network(params)
    if args.command == "machine":
        from sweetspot.measure import machine, steptime

        return machine.main(params, steptime.probe)
    if args.command == "sweep":
        return _sweep(args, params)
    if args.command in ("plan", "refine", "rates", "seeds"):
        from sweetspot.sweep import planned

        return {"plan": planned.plan_main, "refine": planned.refine_main,
                "rates": planned.rates_main, "seeds": planned.seeds_main}[args.command](params)
    if args.command in ("race", "heldout", "reproduce"):
        from sweetspot.check import heldout, reproduce
        from sweetspot.sweep import race

        if args.command == "heldout":
            return heldout.main(params, args.seeds)
        return {"race": race, "reproduce": reproduce}[args.command].main(params)
    if args.command == "report":
        from sweetspot.report import report

        return report.main(params)
    if args.command in ("steptime", *ADVICE):
        from sweetspot.advice import blocks, cores, memory, pipeline
        from sweetspot.measure import steptime

        return {"steptime": steptime, "cores": cores, "memory": memory, "blocks": blocks,
                "pipeline": pipeline}[args.command].main(params)
    if args.command in ("predict", "validate"):
        from sweetspot.check import predict, validate

        params = config.load(args.params, train={k: getattr(args, k) for k in STACK})
        return (predict if args.command == "predict" else validate).main(params, args.steps)
    raise AssertionError(args.command)


def _sets(texts: list[str]) -> dict:
    """`-S section.key=value` (a YAML value, as `dvc exp run -S` reads it) as config.load's
    overrides."""
    import yaml

    out: dict = {}
    for text in texts:
        key, sep, value = text.partition("=")
        section, _, name = key.partition(".")
        cls = config.SECTIONS.get(section)
        if not sep or cls is None or name not in {f.name for f in dataclasses.fields(cls)}:
            raise errors.ConfigError(f"-S {text}: expected section.key=value with a key of "
                                     "params.yaml")
        try:
            out.setdefault(section, {})[name] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise errors.ConfigError(f"-S {text}: {value!r} is not a YAML value") from None
    return out


def _check_network(params: config.Params) -> None:
    """A bad train.network (no such module or function, not a 10-class nn.Module): one line,
    before any run starts. Ours (mlp, cnn) need no torch to be checked: bad input stays quick."""
    if params.train.network in config.NETWORKS:
        return
    from sweetspot.train import networks

    networks.check(params.train)


def _sweep(args: argparse.Namespace, params: config.Params) -> int:
    cell_args = {"--batch-size": args.batch_size, "--base-lr": args.base_lr, "--seed": args.seed,
                 "--loader": args.loader}
    ray_args = {"--address": args.address, "--threads": args.threads,
                "--force": args.force or None}
    if args.executor == "ray":
        from sweetspot.sweep import cluster

        given = [k for k, v in {**cell_args, "--out": args.out}.items() if v is not None]
        if given:
            raise errors.ConfigError(f"--executor ray runs every stale cell: drop {given[0]}")
        threads = params.train.threads or 1 if args.threads is None else args.threads
        return cluster.main(params, args.address, threads, args.retries, args.force)
    from sweetspot.sweep import sweep

    missing = [k for k, v in cell_args.items() if v is None]
    if missing:
        raise errors.ConfigError(f"one cell needs {', '.join(missing)} (or --executor ray)")
    given = [k for k, v in ray_args.items() if v is not None]
    if given:
        raise errors.ConfigError(f"{given[0]} is an option of --executor ray")
    cell = sweep.Cell(args.batch_size, args.base_lr, args.seed, args.loader)
    sweep.cell_params(params, cell)  # the cell's own values checked before torch is imported
    return sweep.main(params, cell, args.out)


def main(argv: list[str] | None = None) -> None:
    try:
        with outage.bounded_http():  # every request of the command tried once; retry() waits
            code = dispatch(argv)
    except errors.ConfigError as e:
        print(f"sweetspot: error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:  # the MLflow run is already marked KILLED
        print("sweetspot: interrupted", file=sys.stderr)
        code = 130
    except errors.ToolError as e:  # dvc, PostgreSQL or the server failed: one line
        print(f"sweetspot: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
