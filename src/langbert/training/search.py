"""``langbert search RECIPE --trials N``: an optuna study over a recipe's ``search:`` section.

TPE sampler, median pruner fed with the dev metric at each evaluation, SQLite storage next to the trials by
default (an interrupted study resumes: ``--trials`` is the total wanted), or any optuna storage URL
(PostgreSQL, ...) so several machines can work on one study. The best trial is written out as a ready-to-run
recipe, with an optimisation-history plot.

    search:
      learning_rate: {low: 1.0e-5, high: 3.0e-4, log: true}
      batch_size: [16, 32]
      warmup_ratio: {low: 0.0, high: 0.2}
      epochs: {low: 1, high: 3}            # ints give an integer range
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from ..config import read_yaml, build_config
from ..errors import ConfigError
from ..evaluation import LOWER_IS_BETTER
from .finetune import task_for
from .pipeline import train

logger = logging.getLogger(__name__)


def suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, dict) and {"low", "high"} <= set(spec):
        low, high = spec["low"], spec["high"]
        if isinstance(low, int) and isinstance(high, int) and not spec.get("log"):
            return trial.suggest_int(name, low, high)
        return trial.suggest_float(name, float(low), float(high), log=bool(spec.get("log", False)))
    raise ConfigError(f"search.{name}: give a list of choices or {{low, high[, log]}}, got {spec!r}")


class _Pruning(TrainerCallback):
    def __init__(self, trial: Any, metric: str):
        self.trial, self.metric = trial, metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        import optuna

        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is not None:
            self.trial.report(value, step=state.global_step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"{self.metric}={value:.4f} at step {state.global_step}")


def run_search(recipe: str | Path, trials: int, output_dir: str | None = None, storage: str | None = None,
               study_name: str | None = None, seed: int = 0, overrides: dict[str, Any] | None = None) -> Any:
    import optuna

    values = read_yaml(recipe)
    space = values.pop("search", None)
    if not space:
        raise ConfigError(f"{recipe}: no 'search:' section to explore")
    base = build_config(values, overrides or {}, where=str(recipe))
    metric = base.metric or task_for(base).default_metric
    out = Path(output_dir or f"{base.output_dir}-search")
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    study = optuna.create_study(study_name=study_name or Path(recipe).stem, storage=storage, load_if_exists=True,
                                direction="minimize" if metric in LOWER_IS_BETTER else "maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))

    def objective(trial: Any) -> float:
        params = {name: suggest(trial, name, spec) for name, spec in space.items()}
        trial_dir = out / f"trial-{trial.number}"
        config = build_config(values, {**(overrides or {}), **params, "output_dir": str(trial_dir), "progress": False},
                              where=f"trial {trial.number}")
        done = train(config, callbacks=[_Pruning(trial, metric)])
        meta = json.loads((done / "langbert.json").read_text(encoding="utf-8"))
        return float(next(iter(meta["best_dev_metric"].values())))

    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    remaining = max(0, trials - len(finished))
    logger.info("study %s: %d trials done, %d to run", study.study_name, len(finished), remaining)
    if remaining:
        study.optimize(objective, n_trials=remaining, catch=())
    _write_best(study, values, space, out)
    return study


def _write_best(study: Any, values: dict, space: dict, out: Path) -> None:
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return
    best = study.best_trial
    recipe = {**values, **best.params}
    recipe.pop("output_dir", None)
    header = f"# best of {len(study.trials)} trials (trial {best.number}, dev {best.value:.4f}); search space was {space}\n"
    (out / "best.yaml").write_text(header + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True), encoding="utf-8")
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization.matplotlib import plot_optimization_history

    ax = plot_optimization_history(study)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "history.png", dpi=120)
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
