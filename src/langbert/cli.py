"""``langbert``: a table of subcommands over the library API. No logic of its own beyond argument parsing."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import logging
import os
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal

from .config import AdaptConfig, DataConfig, PretrainConfig, TrainConfig
from .errors import LangbertError


# -- flags generated from the config dataclasses (one source of truth for names, types, help) ---------

@functools.lru_cache(maxsize=None)
def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string right after a field) become ``--help`` text; a subclass's fields
    may be documented in a base class."""
    docs: dict[str, str] = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # defined where no source is kept (a notebook, exec): flags without help
            continue
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                # argparse formats help with %
                docs[node.target.id] = " ".join(str(nxt.value.value).split()).replace("%", "%%")
    return docs


def add_config_flags(parser: argparse.ArgumentParser, classes: tuple[type, ...] = (TrainConfig, DataConfig),
                     only: set[str] | None = None) -> None:
    for cls in classes:
        group = parser.add_argument_group(f"{cls.__name__} (override the recipe)")
        docs = _field_docs(cls)
        for f in dataclasses.fields(cls):
            if f.name in ("data", "options") or (only is not None and f.name not in only):
                continue
            _add_field_flag(group, cls, f, docs.get(f.name, ""))


def _add_field_flag(group: Any, cls: type, f: dataclasses.Field, help_text: str) -> None:
    kind = typing.get_type_hints(cls)[f.name]
    args = [x for x in typing.get_args(kind) if x is not type(None)]
    base = args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1 else kind
    kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is list:
        kwargs.update(nargs="+", type=typing.get_args(base)[0])
    elif typing.get_origin(base) is Literal:
        kwargs["choices"] = list(typing.get_args(base))
    else:
        kwargs["type"] = base
    group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _task_options() -> dict[str, tuple[type, dataclasses.Field, list[str]]]:
    """Every registered task's option fields by name, with the tasks that take each."""
    from .tasks import get_task_class, task_names

    found: dict[str, tuple[type, dataclasses.Field, list[str]]] = {}
    for name in task_names():
        options = get_task_class(name).Options
        for f in dataclasses.fields(options):
            found.setdefault(f.name, (options, f, []))[2].append(name)
    return found


def add_task_option_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("task options (override the recipe's 'options:'; each task takes its own)")
    for name, (options, f, tasks) in _task_options().items():
        _add_field_flag(group, options, f, f"{_field_docs(options).get(name, '')} [{', '.join(tasks)}]")


def _overrides(ns: argparse.Namespace, classes: tuple[type, ...] = (TrainConfig, DataConfig)) -> dict[str, Any]:
    names = {f.name for cls in classes for f in dataclasses.fields(cls)}
    if TrainConfig in classes:
        names |= set(_task_options())  # build_config passes them on to the task's options
    return {k: v for k, v in vars(ns).items() if k in names}


# -- subcommands --------------------------------------------------------------------------------------

def cmd_train(ns: argparse.Namespace) -> int:
    from .config import build_config, load_recipe
    from .recipes import recipe_path
    from .training import train

    config = load_recipe(recipe_path(ns.recipe), _overrides(ns)) if ns.recipe else build_config({}, _overrides(ns))
    out = train(config)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone writes and reports
        return 0
    print(json.dumps(json.loads((out / "langbert.json").read_text(encoding="utf-8"))["metrics"], indent=2))
    print(f"model written to {out}")
    return 0


def _rows_for(ns: argparse.Namespace, task: Any, label_required: bool) -> dict[str, list]:
    from .data import Columns, get_builtin

    if ns.dataset:
        data = get_builtin(ns.dataset).load()
        return {ns.split: data.splits[ns.split]}
    columns = Columns(ns.text_column, ns.pair_column, ns.label_column, ns.label_delimiter)
    return {Path(ns.data).stem: task.read(ns.data, columns, label_required=label_required)}


def _predictor(ns: argparse.Namespace, **kwargs: Any) -> Any:
    """A trained folder's predictor; with ``--task``, a zero-shot one over the checkpoint's own head."""
    from .inference import Predictor
    from .tasks import create_task

    if ns.task is None:
        return Predictor.load(ns.model_dir, **kwargs)
    options = {k: v for k, v in vars(ns).items() if k in _task_options()}
    return Predictor.zero_shot(ns.model_dir, create_task(ns.task, options), ns.max_length, **kwargs)


def cmd_eval(ns: argparse.Namespace) -> int:
    from .evaluation import write_reports

    if ns.task is not None and not ns.out:
        raise LangbertError("zero-shot eval (--task): give --out for the report; the checkpoint's folder is left as it is")
    predictor = _predictor(ns)
    reports = {}
    for name, rows in _rows_for(ns, predictor.task, label_required=True).items():
        predictor.task.check(rows, name)
        reports[name] = predictor.evaluate(rows, batch_size=ns.batch_size)
    written = write_reports(reports, ns.out or ns.model_dir, title=str(ns.model_dir))
    for name, report in reports.items():
        print(name, json.dumps(report.metrics))
    print(f"report: {written['markdown']}")
    return 0


def cmd_predict(ns: argparse.Namespace) -> int:
    import tempfile

    predictor = _predictor(ns, bf16=ns.bf16, unpadded=not ns.padded)
    ns.dataset, ns.data, temporary = None, ns.input, None
    if ns.input in (None, "-"):
        # stdin: one text per line, or JSON lines when they look like objects
        lines = sys.stdin.read()
        suffix = ".jsonl" if lines.lstrip().startswith("{") else ".txt"
        with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False, encoding="utf-8") as tmp:
            tmp.write(lines)
        ns.data = temporary = tmp.name
    try:
        (rows,) = _rows_for(ns, predictor.task, label_required=False).values()
        # Plain text: one output line per input line, a blank one included, so line N answers line N.
        lines_in = (len(Path(ns.data).read_text(encoding="utf-8").splitlines())
                    if Path(ns.data).suffix.lower() == ".txt" else None)
    finally:
        if temporary:
            os.unlink(temporary)
    out = open(ns.out, "w", encoding="utf-8") if ns.out else sys.stdout
    written = 0

    def blanks_until(line: int) -> None:
        nonlocal written
        while lines_in is not None and written + 1 < line:
            written += 1
            out.write(json.dumps({"line": written, "text": "", "skipped": "empty line"}) + "\n")

    try:
        for start in range(0, len(rows), 4096):  # bounded memory for large files
            chunk = rows[start:start + 4096]
            for row, pred in zip(chunk, predictor.predict_rows(chunk, batch_size=ns.batch_size)):
                blanks_until(row.line or 0)
                out.write(json.dumps({"line": row.line, "text": row.text, **pred}, ensure_ascii=False) + "\n")
                written = row.line or written + 1
        blanks_until((lines_in or 0) + 1)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def cmd_data_info(ns: argparse.Namespace) -> int:
    from .data import builtin_names, get_builtin

    if not ns.name:
        for name in builtin_names():
            ds = get_builtin(name)
            print(f"{name:<16} {ds.task:<28} {ds.description}")
        return 0
    ds = get_builtin(ns.name)
    print(f"{ds.name}: {ds.description} (task: {ds.task})")
    for key, value in ds.load().stats.items():
        print(f"  {key:<24} {value}")
    return 0


def cmd_data_check(ns: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from .config import resolve_model
    from .data import Columns
    from .data.check import summarize
    from .tasks import create_task

    task = create_task(ns.task)
    columns = Columns(ns.text_column, ns.pair_column, ns.label_column, ns.label_delimiter)
    rows = task.read(ns.file, columns)
    task.check_rows_have_pairs(rows)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(ns.model))
    print(json.dumps({"file": ns.file, "task": ns.task, **summarize(rows, tokenizer, ns.max_length, task)},
                     indent=2, ensure_ascii=False))
    return 0


def cmd_adapt(ns: argparse.Namespace) -> int:
    from .config import AdaptConfig, load_flat_recipe
    from .language.adapt import adapt

    out = adapt(load_flat_recipe(AdaptConfig, _recipe(ns), _overrides(ns, (AdaptConfig,))))
    print((out / "adapt.md").read_text(encoding="utf-8"))
    print(f"adapted checkpoint written to {out}")
    return 0


def cmd_pretrain(ns: argparse.Namespace) -> int:
    from .config import PretrainConfig, load_flat_recipe
    from .language.pretrain import pretrain

    out = pretrain(load_flat_recipe(PretrainConfig, _recipe(ns), _overrides(ns, (PretrainConfig,))))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone writes and reports
        return 0
    meta = json.loads((out / "langbert.json").read_text(encoding="utf-8"))
    print(f"held-out MLM perplexity {meta['heldout_perplexity']}; checkpoint written to {out}")
    return 0


def _recipe(ns: argparse.Namespace) -> Path | None:
    from .recipes import recipe_path

    return recipe_path(ns.recipe) if ns.recipe else None


def cmd_search(ns: argparse.Namespace) -> int:
    from .recipes import recipe_path
    from .training.search import run_search

    study = run_search(recipe_path(ns.recipe), ns.trials, ns.output_dir, ns.storage, ns.study_name, ns.seed,
                       _overrides(ns, (DataConfig,)))
    print(f"best trial {study.best_trial.number}: {study.best_value:.4f} with {study.best_params}")
    return 0


def cmd_merge(ns: argparse.Namespace) -> int:
    from .inference.merge import merge

    out = merge(ns.model_dir, ns.out or f"{str(ns.model_dir).rstrip('/')}-merged")
    print(f"merged checkpoint written to {out}")
    return 0


def cmd_export(ns: argparse.Namespace) -> int:
    from .inference.export import export_onnx

    out = ns.out or f"{str(ns.model_dir).rstrip('/')}-onnx{'-int8' if ns.int8 else ''}"
    try:
        texts = _parity_texts(ns.parity_texts) if ns.parity_texts else None
        parity = export_onnx(ns.model_dir, out, int8=ns.int8, texts=texts, tolerance=ns.tolerance,
                             min_agreement=ns.min_agreement)
    except LangbertError as exc:
        print(f"langbert: error: {exc}", file=sys.stderr)
        return 1
    print(f"parity on {parity.texts} texts: max |Δlogit| {parity.max_abs_diff:.2e}, "
          f"label agreement {parity.label_agreement:.1%}: {'ok' if parity.passed else 'FAILED'}")
    print(f"ONNX model written to {out}")
    return 0


def _parity_texts(path: str) -> list[str]:
    from .data.readers import Columns, read_rows

    rows = read_rows(path, Columns(), label_required=False)
    return [r.text for r in rows]


def cmd_serve(ns: argparse.Namespace) -> int:
    from .inference.batching import ServeLimits
    from .inference.serve import serve

    limits = ServeLimits(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(ServeLimits)
                            if hasattr(ns, f.name)})
    serve(ns.model_dir, ns.host, ns.port, ns.api_key, limits, bf16=ns.bf16, unpadded=not ns.padded,
          allowed_hosts=ns.allowed_host, docs=ns.docs)
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(ns.output_dir, ns.max_steps, ns.pretrain_minutes)
    return 0


# -- the table ----------------------------------------------------------------------------------------

def _column_flags(p: argparse.ArgumentParser) -> None:
    add_config_flags(p, (DataConfig,), only={"text_column", "pair_column", "label_column", "label_delimiter"})
    for action in p._actions:
        if action.dest in ("text_column", "label_column"):
            action.default = {"text_column": "text", "label_column": "label"}[action.dest]
        elif action.dest in ("pair_column", "label_delimiter"):
            action.default = None


def _train_args(p: argparse.ArgumentParser) -> None:
    from .recipes import recipe_names

    from .training.peft import peft_method_names

    p.add_argument("recipe", nargs="?", help=f"YAML recipe file or packaged recipe name ({', '.join(recipe_names())})")
    add_config_flags(p)
    add_task_option_flags(p)
    for action in p._actions:
        if action.dest == "peft":
            action.choices = peft_method_names()


def _stage_args(cls: type) -> Callable[[argparse.ArgumentParser], None]:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("recipe", nargs="?", help="YAML recipe file or packaged recipe name")
        add_config_flags(p, (cls,))

    return add


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="labelled file (.csv/.tsv/.jsonl)")
    source.add_argument("--dataset", help="built-in dataset name")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--out", help="report folder (default: the model folder)")
    p.add_argument("--batch-size", type=int, default=64)
    _column_flags(p)
    _zero_shot_flags(p)


def _zero_shot_flags(p: argparse.ArgumentParser) -> None:
    from .tasks import get_task_class, task_names

    zero_shot = [name for name in task_names() if get_task_class(name).head_in_checkpoint]
    group = p.add_argument_group("zero-shot (MODEL_DIR a checkpoint, not a trained folder)")
    group.add_argument("--task", choices=zero_shot, default=None,
                       help="read the checkpoint's own head through this task, with no training step")
    group.add_argument("--max-length", type=int, default=128)
    for name in zero_shot:
        options = get_task_class(name).Options
        docs = _field_docs(options)
        for f in dataclasses.fields(options):
            _add_field_flag(group, options, f, docs.get(f.name, ""))


def _predictor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast for a torch model (fast on CPUs with "
                   "AVX512-BF16/AMX and on GPUs; outputs differ from fp32 in the last digits)")
    p.add_argument("--padded", action="store_true", help="run the encoder on padded batches (default: on the "
                   "real tokens only, where the architecture allows; see langbert.kernels.unpadded)")


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir")
    p.add_argument("input", nargs="?", help="file (.txt one text a line, .jsonl/.csv/.tsv); stdin if absent or '-'")
    p.add_argument("--out", help="JSONL output (default: stdout)")
    p.add_argument("--batch-size", type=int, default=64)
    _predictor_flags(p)
    _column_flags(p)
    _zero_shot_flags(p)


def _data_info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="built-in dataset (omit to list them)")


def _data_check_args(p: argparse.ArgumentParser) -> None:
    from .tasks import task_names

    p.add_argument("file")
    p.add_argument("--task", required=True, choices=task_names())
    p.add_argument("--model", default="embedded", help="tokenizer used to count tokens")
    p.add_argument("--max-length", type=int, default=128)
    _column_flags(p)


def _search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe with a 'search:' section")
    p.add_argument("--trials", type=int, required=True, help="total trials wanted (a resumed study counts earlier ones)")
    p.add_argument("--output-dir", default=None, help="trials, study.db, best.yaml, history.png")
    p.add_argument("--storage", default=None, help="optuna storage URL (default: sqlite in the output folder)")
    p.add_argument("--study-name", default=None)
    p.add_argument("--seed", type=int, default=0)
    add_config_flags(p, (DataConfig,), only={"dataset", "train", "dev", "max_train_samples"})


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", help="a model trained with --peft")
    p.add_argument("--out", help="output folder (default: DIR-merged)")


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantisation of the linear layers")
    p.add_argument("--out", help="output folder (default: DIR-onnx[-int8])")
    p.add_argument("--tolerance", type=float, default=1e-3, help="fp32 parity: max |Δlogit| allowed")
    p.add_argument("--parity-texts", help="texts for the parity check (.txt one a line, .jsonl, .csv, .tsv); "
                                          "default: a few built-in samples")
    p.add_argument("--min-agreement", type=float, default=0.95, help="int8 parity: share of labels that must agree")


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on every path but /health "
                   "(or set LANGBERT_API_KEY); checked from the headers, before a body is read")
    p.add_argument("--allowed-host", action="append", default=None, metavar="NAME",
                   help="a Host name the server answers to besides the address it binds (repeat it); a "
                        "loopback bind answers to localhost, 127.0.0.1 and ::1, a wildcard bind without "
                        "this flag to any name")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                   help="/docs, /redoc and /openapi.json (default: on without --api-key, off with one; "
                        "with a key they need it too)")
    from .inference.batching import ServeLimits

    group = p.add_argument_group("limits (a request over them gets a 4xx/5xx that says which)")
    docs = _field_docs(ServeLimits)
    for f in dataclasses.fields(ServeLimits):  # an absent flag leaves ServeLimits' own default
        _add_field_flag(group, ServeLimits, f, f"{docs.get(f.name, '')} (default: {f.default})")
    _predictor_flags(p)


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--max-steps", type=int, default=None, help="cap on fine-tuning steps (compute budget)")
    p.add_argument("--pretrain-minutes", type=float, default=6.0, help="continued-pretraining budget")


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "adapt": ("give a general model a target-language vocabulary and embeddings", _stage_args(AdaptConfig), cmd_adapt),
    "pretrain": ("continue masked-LM pretraining on unlabelled text", _stage_args(PretrainConfig), cmd_pretrain),
    "train": ("fine-tune a model for a task", _train_args, cmd_train),
    "eval": ("evaluate a trained model folder on labelled data", _eval_args, cmd_eval),
    "predict": ("predict with a trained model folder, JSONL out", _predict_args, cmd_predict),
    "data info": ("built-in datasets and their counts", _data_info_args, cmd_data_info),
    "data check": ("validate a data file without training", _data_check_args, cmd_data_check),
    "search": ("hyperparameter search over a recipe with optuna", _search_args, cmd_search),
    "merge": ("fold a peft adapter into a full checkpoint", _merge_args, cmd_merge),
    "export": ("export a trained model to ONNX (optionally int8) with a parity check", _export_args, cmd_export),
    "serve": ("serve a trained model over HTTP", _serve_args, cmd_serve),
    "demo": ("the main job on the embedded default", _demo_args, cmd_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langbert", description="Adapt a general BERT to one language, fine-tune, ship.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, Any] = {}
    for name, (help_text, add_args, handler) in COMMANDS.items():
        *parents, leaf = name.split()
        target = sub
        for parent in parents:
            if parent not in groups:
                groups[parent] = sub.add_parser(parent, help=f"{parent} commands").add_subparsers(dest="subcommand", required=True)
            target = groups[parent]
        p = target.add_parser(leaf, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        code = ns.handler(ns)
    except LangbertError as exc:
        print(f"langbert: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("langbert: interrupted", file=sys.stderr)
        return 130
    _close_process_group()
    return code


def _close_process_group() -> None:
    """Under torchrun, close the process group once a command has finished. Left to interpreter shutdown,
    gloo's worker threads can still hold tensors when Python is torn down, and the rank aborts ("terminate
    called without an active exception", SIGABRT; pytorch/pytorch#190489). Only after success: a rank
    that failed may leave others inside a collective, where closing the group would hang
    (pytorch/torchtitan#1342)."""
    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
