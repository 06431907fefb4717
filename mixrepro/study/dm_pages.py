"""The Decoupled Mixup appendix pages: Tables A2-A6 and A8, Figures A1-A3.

Every table of the appendix compares a loss with MCE for the same mixing methods, so the
pages share four things, kept here:

1. **The paper's own arithmetic.** Each table prints an "Avg. Gain" row and the text
   quotes ranges of gains; both are re-derived from the transcribed cells
   (:func:`printed_gain_checks`, :func:`text_range_checks`). The transcriptions keep, beside
   the usual fields, ``gain_base`` ({column: the column it gains over}), optionally
   ``gain_methods`` (the rows the average is over) and ``text_ranges`` (quoted ranges).
2. **Runs in pairs**: the same methods trained with MCE and with a DM loss
   (:func:`loss_pair_runs`), on the CIFAR-10 copy as a stand-in or on a paper column's own
   data (:func:`paper_group_runs`), with the checks "the DM loss beats MCE" (:func:`gain_checks`).
3. **Why a claim is not tested here** when its data is absent, with what the paper's
   protocol would cost (:func:`compute_text`).
4. Page-specific pieces: mixed-sample accuracy and training curves (Fig. A1), training-set
   fractions (Table A8) and hyper-parameter arms (Figs. A2-A3).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from ..config import BUDGETS
from ..errors import MixreproError
from ..plans import in_pages_plan, in_study_plan
from .collect import DM_CE_PARAMS, collect_runs, dataset_available, join_reasons, needs
from .display import fmt, markdown_table
from .facts import method_color, method_label, scored_network
from .figures import label_axes, new_figure
from .paired import Check
from .paper_tables import PAPER_NUMBERS_DIR, PaperTable, load_paper_table
from .parameters import arm_parameters
from .scores import SeedStats, evaluation_stats, scored_stats
from .verdicts import Verdict, check_order, judge, versus_text

# Rounding slack when a printed number is compared with our arithmetic on the printed cells:
# half a unit of the last printed digit, plus float noise.
FLOAT_SLACK = 1e-9
# Decoupled Mixup appendix B.3: "we use alpha = 0.2 and alpha = 2 for the static and dynamic methods
# when using the proposed DM" (static/dynamic as the methods' DM(CE) presets).
PAPER_DM_ALPHA = {"static": 0.2, "dynamic": 2.0}
TRAIN_FRACTIONS = (0.15, 0.30, 0.50)  # Table A8


# ----------------------------------------------------------------------------- the paper's arithmetic


def table_extras(name: str) -> dict:
    """The transcription's fields PaperTable does not carry (gain_base, gain_methods, text_ranges)."""
    return json.loads((PAPER_NUMBERS_DIR / f"{name}.json").read_text())


def paper_gains(table: PaperTable, column: str, base: str, methods: Sequence[str] | None = None) -> dict:
    """{method: cell(column) - cell(base)} for the rows that print both."""
    rows = methods or list(table.rows)
    return {m: table.value(m, column) - table.value(m, base) for m in rows
            if table.value(m, column) is not None and table.value(m, base) is not None}


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _within_rounding(value: float, printed: float, decimals: int) -> bool:
    return abs(value - printed) <= 0.5 * 10 ** -decimals + FLOAT_SLACK


def printed_gain_checks(table: PaperTable) -> list[Check]:
    """'The printed Avg. Gain is the mean of the per-method gains', one check per printed entry."""
    extras = table_extras(table.name)
    checks = []
    for column, printed in table.printed_gain.items():
        base = extras["gain_base"][column]
        gains = paper_gains(table, column, base, extras.get("gain_methods"))
        mean = statistics.fmean(gains.values())
        outcome = "supports" if _within_rounding(mean, printed, 2) else "contradicts"
        checks.append(Check(
            f"{table.table} Avg. Gain under {table.columns[column]['label']} = mean of its {len(gains)} gains",
            outcome, f"printed {printed:+.2f}; mean of the cells' gains {mean:+.3f} "
                     f"(over {table.columns[base]['label']})"))
    return checks


def _range_values(table: PaperTable, spec: dict) -> list[float]:
    """The numbers a quoted range speaks about: printed averages, or one method's gains."""
    extras = table_extras(table.name)
    if spec["kind"] == "printed_average":
        values = [table.printed_gain[c] for c in spec["columns"]]
        if "also" in spec:  # a range quoted over two tables
            other = load_paper_table(spec["also"]["table"])
            values += [other.printed_gain[c] for c in spec["also"]["columns"]]
        return values
    gains = []
    for column in spec["columns"]:
        per_method = paper_gains(table, column, extras["gain_base"][column], extras.get("gain_methods"))
        gains += [per_method[spec["method"]]] if "method" in spec else list(per_method.values())
    return gains


def text_range_checks(table: PaperTable) -> list[Check]:
    """'The range the text quotes is the table's': min and max of the numbers it speaks about, each
    within rounding of the quoted ends (``method_gain_max``: the largest gain alone)."""
    checks = []
    for spec in table_extras(table.name).get("text_ranges", []):
        values = _range_values(table, spec)
        low, high = spec["range"]
        if spec["kind"] == "method_gain_max":
            ok = _within_rounding(max(values), float(high), _decimals(high))
            found = f"largest gain {max(values):+.2f}"
        else:
            ok = (_within_rounding(min(values), float(low), _decimals(low))
                  and _within_rounding(max(values), float(high), _decimals(high)))
            found = f"table: {min(values):+.2f} to {max(values):+.2f}"
        quoted = low if low == high else f"{low}~{high}"
        checks.append(Check(f"{spec['section']}: \"{spec['quote']}\" (quoted {quoted})",
                            "supports" if ok else "contradicts", found))
    return checks


def paper_gains_markdown(table: PaperTable) -> str:
    """Per method and printed column: the gain over its base column, their mean, and the printed Avg. Gain."""
    extras = table_extras(table.name)
    columns = list(table.printed_gain)
    gains = {c: paper_gains(table, c, extras["gain_base"][c], extras.get("gain_methods")) for c in columns}
    methods = list(dict.fromkeys(m for c in columns for m in gains[c]))
    rows = [[table.label(m)] + [f"{gains[c][m]:+.2f}" if m in gains[c] else "–" for c in columns]
            for m in methods]
    rows.append(["mean (ours)"] + [f"{statistics.fmean(gains[c].values()):+.3f}" for c in columns])
    rows.append(["Avg. Gain (printed)"] + [f"{table.printed_gain[c]:+.2f}" for c in columns])
    header = [f"{table.columns[c]['label']} − {table.columns[extras['gain_base'][c]]['label']}" for c in columns]
    return markdown_table(["method"] + header, rows)


# ----------------------------------------------------------------------------- compute, data, alpha


def dm_alpha_rows(methods: Sequence[str]) -> list[list[str]]:
    """[method, our alpha, the paper's alpha with DM] where they differ (B.3: 0.2 static, 2 dynamic)."""
    from ..methods import METHODS

    rows = []
    for method in methods:
        cls = METHODS.get(method)
        ours = cls.default_params.get("alpha")
        paper = PAPER_DM_ALPHA.get(cls.dm_ce_preset)
        if ours is not None and paper is not None and ours != paper:
            rows.append([method_label(method), fmt(ours), fmt(paper)])
    return rows


def dm_alpha_markdown(methods: Sequence[str]) -> str:
    """Where our mixing alpha differs from the one appendix B.3 gives for DM runs (both losses use ours)."""
    rows = dm_alpha_rows(methods)
    if not rows:
        return "Our mixing alpha equals the one appendix B.3 gives for DM runs for every method here."
    return ("Appendix B.3: \"we use alpha = 0.2 and alpha = 2 for the static and dynamic methods when using the "
            "proposed DM\". We keep each method's own alpha for both losses, so that MCE and DM differ in the loss "
            "only (and runs are shared with the other pages):\n\n"
            + markdown_table(["method", "alpha here (MCE and DM)", "alpha with DM in the paper"], rows))


def paper_eta(method: str, dataset: str, model: str) -> float:
    """DM(CE)'s eta by appendix B.3: dynamic methods 1; static ones 0.1 on CIFAR-100 and ImageNet, and on
    Tiny-ImageNet and fine-grained data 1 with ResNet-18, 0.1 with ResNeXt-50."""
    from ..methods import METHODS

    if METHODS.get(method).dm_ce_preset == "dynamic":
        return 1.0
    small_scale = dataset.split("-jpeg")[0] in ("cifar10", "cifar100", "imagenet")
    return 0.1 if small_scale or "resnext" in model else 1.0


def eta_params(method: str, eta: float) -> dict:
    """DM(CE) method_params with ``eta``: the plain preset run (shared with other pages) when eta is the preset's."""
    from ..losses import DM_CE_PRESETS
    from ..methods import METHODS

    if DM_CE_PRESETS.get(METHODS.get(method).dm_ce_preset)["eta"] == eta:
        return dict(DM_CE_PARAMS)
    return {"loss": "dm_ce", "loss_params": {"eta": eta}}


def dm_bce_params(method: str, **overrides) -> dict:
    """DM(BCE) method_params: the method's preset (t, xi of B.3) with ``overrides`` where they differ from it."""
    from ..losses import DM_BCE_PRESETS
    from ..methods import METHODS

    preset = DM_BCE_PRESETS.get(METHODS.get(method).dm_bce_preset)
    changed = {k: v for k, v in overrides.items() if preset[k] != v}
    return {"loss": "dm_bce", **({"loss_params": changed} if changed else {})}


# ----------------------------------------------------------------------------- runs in pairs


@dataclass(frozen=True)
class LossPair:
    """Runs of the same methods with a base loss (MCE) and a new one (a DM loss), and why some are missing."""

    base: dict
    new: dict
    reason: str | None

    def methods(self) -> list[str]:
        """Methods with runs for both losses."""
        return [m for m in self.new if m in self.base]


def merge_pairs(pairs) -> LossPair:
    """One LossPair of several (e.g. one per method), their reasons joined."""
    pairs = list(pairs)
    return LossPair({m: r for p in pairs for m, r in p.base.items()}, {m: r for p in pairs for m, r in p.new.items()},
                    join_reasons(p.reason for p in pairs))


def per_method_pairs(params, methods: Sequence[str], **kwargs) -> dict[str, LossPair]:
    """{method: LossPair} so each method's claim has its own reason (kwargs as :func:`loss_pair_runs`)."""
    return {m: loss_pair_runs(params, [m], **kwargs) for m in methods}


def _by_params(methods: Sequence[str], spec) -> list[tuple[dict | None, list[str]]]:
    """Methods grouped by their method_params (None: the default MCE run), so each group is one collect_runs."""
    groups: dict[str, tuple[dict | None, list[str]]] = {}
    for method in methods:
        method_params = None if spec is None else (spec(method) if callable(spec) else dict(spec))
        groups.setdefault(json.dumps(method_params, sort_keys=True), (method_params, []))[1].append(method)
    return list(groups.values())


def loss_pair_runs(params, methods: Sequence[str], *, base: dict | Callable | None = None,
                   new: dict | Callable = DM_CE_PARAMS, base_methods: Sequence[str] = (), log=None,
                   **fields) -> LossPair:
    """collect_runs for ``methods`` with ``base`` (None: each method's default, MCE) and ``new`` method_params
    (a dict, or a function of the method).

    ``base_methods`` run with the base loss only (Vanilla: DM acts on mixed samples). ``fields``
    override the run config (dataset, model, train_subset...). Runs the study's sweep will never
    train are named as such in the reason; at budget cpu a setting outside the study plan (a
    training fraction, an eta) runs one seed (:func:`arm_parameters`).
    """
    found, reasons = {"base": {}, "new": {}}, []
    for side, names, spec in (("base", list(base_methods) + list(methods), base), ("new", list(methods), new)):
        for method_params, group in _by_params(names, spec):
            extra = {} if method_params is None else {"method_params": method_params}
            for group_params, same_seeds in _by_seeds(params, group, **fields, **extra):
                runs, reason = collect_runs(group_params, methods=same_seeds, log=log, **fields, **extra)
                found[side].update(runs)
                if reason:
                    note = outside_plan_note(group_params, [m for m in same_seeds if m not in runs], **fields, **extra)
                    reasons.append(reason + note if note else reason)  # a plain str only when runs are outside the plan
    return LossPair(found["base"], found["new"], join_reasons(reasons))


def _by_seeds(params, methods: Sequence[str], **fields) -> list[tuple]:
    """[(parameters, methods)]: ``methods`` grouped by the parameters their runs are collected with."""
    groups: dict = {}
    for method in methods:
        groups.setdefault(arm_parameters(params, method, **fields), []).append(method)
    return list(groups.items())


def outside_plan_note(params, methods: Sequence[str], **fields) -> str:
    """' (... not in the study plan ...)' for the cpu-budget runs of ``methods`` the study's sweep never trains,
    naming the `pages` plan where it trains them after the study."""
    if params.budget != "cpu":
        return ""
    configs = {m: [params.config(m, s, **fields) for s in params.seeds] for m in methods}
    outside = [m for m in methods if not all(in_study_plan(c) for c in configs[m])]
    if not outside:
        return ""
    labels = ", ".join(method_label(m) for m in outside)
    if all(in_study_plan(c) or in_pages_plan(c) for m in outside for c in configs[m]):
        return f" ({labels} with these settings are not in the study plan but in the `pages` plan, which runs after it)"
    return f" ({labels} with these settings are not in the study plan: `mixrepro sweep study` will not train them)"


def group_fields(params, spec: dict) -> dict:
    """Run fields for a paper column's setting: its data and model; its epochs, learning rate, batch size and
    weight decay only at budget 'paper' (other budgets keep theirs); a training fraction as a subset."""
    fields = {"dataset": spec["dataset"], "model": spec["model"]}
    if params.budget == "paper":
        fields.update({k: spec[k] for k in ("epochs", "lr", "batch_size", "weight_decay") if k in spec})
    if "train_fraction" in spec:
        fields["train_subset"] = fraction_images(params, spec["dataset"], spec["train_fraction"])
    return fields


def paper_group_runs(params, table: PaperTable, methods: Sequence[str], *, new_loss: str = "dm_ce",
                     base_loss: str | None = None, base_methods: Sequence[str] = (), log=None) -> dict[str, LossPair]:
    """{group: LossPair} on each paper column group's own data and model (runs only where the data is).

    ``base_loss`` None: each method's default (MCE). DM(CE) gets the paper's eta for that dataset and
    model (:func:`paper_eta`); other losses their method's preset.
    """
    from ..data import DATASETS
    from ..models import MODELS

    pairs = {}
    for group, spec in _groups(table).items():
        if spec["dataset"] not in DATASETS.names() or spec["model"] not in MODELS.names():
            missing = spec["dataset"] if spec["dataset"] not in DATASETS.names() else spec["model"]
            pairs[group] = LossPair({}, {}, f"'{missing}' is not among the datasets and models this study can "
                                            "load or build")
            continue
        new = (lambda m, s=spec: eta_params(m, paper_eta(m, s["dataset"], s["model"]))) \
            if new_loss == "dm_ce" else {"loss": new_loss}
        pair = loss_pair_runs(params, methods, new=new, base={"loss": base_loss} if base_loss else None,
                              base_methods=base_methods, log=log, **group_fields(params, spec))
        if pair.reason and not (pair.base or pair.new) and not dataset_available(spec["dataset"]):
            # One sentence per absent dataset, not one per method and loss.
            pair = LossPair({}, {}, f"no runs on {DATASETS.get(spec['dataset']).label} are stored and the dataset "
                                    "is not available to the study (see `mixrepro datasets` for how to obtain it)")
        pairs[group] = pair
    return pairs


def _groups(table: PaperTable) -> dict[str, dict]:
    """{group: the setting its columns share} in the table's column order."""
    groups = {}
    for spec in table.columns.values():
        groups.setdefault(spec["group"], {k: v for k, v in spec.items() if k not in ("loss", "label")})
    return groups


def group_reason(pairs: dict[str, LossPair]) -> str | None:
    """The distinct reasons of the groups, joined (None when every group has its runs)."""
    return join_reasons(p.reason for p in pairs.values())


# ----------------------------------------------------------------------------- checks and tables of ours


def gain_checks(pair: LossPair, label: Callable[[str], str], *, stats: Callable = scored_stats,
                new_name: str = "DM(CE)", base_name: str = "MCE", where: str = "", quantity: str = "top-1"
                ) -> list[Check]:
    """'<method> with the new loss beats it with MCE' (paired over seeds), per method with both.

    ``stats``: {method: [records]} -> {method: SeedStats}, the scored top-1 by default."""
    new, base = stats(pair.new), stats(pair.base)
    return [check_order(f"{label(m)} {new_name}{where}", new[m], f"{label(m)} {base_name}", base[m],
                        quantity=quantity) for m in pair.methods()]


def not_run_pair(method: str) -> LossPair:
    """The pair of a table method this execution did not ask for (parameter ``methods``)."""
    return LossPair({}, {}, f"{method_label(method)} is not among the methods of this execution (parameter "
                            "`methods`; its default at budget smoke is a subset)")


def stand_in_verdict(claim_id: str, claim: str, table: PaperTable, pairs: dict[str, LossPair], method: str,
                     budget: str, **kwargs) -> Verdict:
    """'The new loss beats MCE for ``method``' on the stand-in data, with the paper's gains for that method.

    ``kwargs`` go to :func:`gain_checks` (stats, new_name, base_name, quantity)."""
    pair = pairs.get(method) or not_run_pair(method)
    return judge(claim_id, claim, table.reference(), budget, gain_checks(pair, table.label, **kwargs),
                 untested_reason=needs(pair.methods(), method, missing=pair.reason),
                 paper_value=paper_gain_text(table, method), ours=pair_text(pair), runs=pair_runs_of(pair))


def paper_data_verdict(claim_id: str, claim: str, table: PaperTable, pairs: dict[str, LossPair], budget: str,
                       cost: str, **kwargs) -> Verdict:
    """A claim on the paper's own data (one LossPair per column group): not tested here while runs are
    missing, the reason followed by what the paper's protocol would cost."""
    reason = group_reason(pairs)
    checks = [c for g, p in pairs.items()
              for c in gain_checks(p, table.label, where=f" on {group_label(table, g)}", **kwargs)]
    return judge(claim_id, claim, table.reference(), budget, checks,
                 untested_reason=f"{reason}. At the paper's protocol: {cost}" if reason else None,
                 paper_value=printed_gain_text(table, pairs), runs=pair_runs_of(*pairs.values()))


def group_label(table: PaperTable, group: str) -> str:
    """'CIFAR-100 R-18' for group 'c100_r18' (its first column's label without the loss)."""
    column = next(c for c, spec in table.columns.items() if spec["group"] == group)
    return table.columns[column]["label"].rsplit(" ", 1)[0]


def paper_gain_text(table: PaperTable, method: str) -> str:
    """The paper's gains of ``method`` over its printed columns, e.g. '+0.16 to +1.08 (Table A2)'."""
    base = table_extras(table.name)["gain_base"]
    gains = [table.value(method, c) - table.value(method, base[c]) for c in table.printed_gain
             if table.value(method, c) is not None and table.value(method, base[c]) is not None]
    if not gains:
        return ""
    return f"{min(gains):+.2f} to {max(gains):+.2f} ({table.table})"


def printed_gain_text(table: PaperTable, groups) -> str:
    """The printed Avg. Gain of the columns of ``groups``, e.g. 'Avg. Gain +0.19, +0.40, +0.15'."""
    values = [v for c, v in table.printed_gain.items() if table.columns[c]["group"] in groups]
    return "Avg. Gain " + ", ".join(f"{v:+.2f}" for v in values) if values else ""


def pair_rows(pair: LossPair, label: Callable[[str], str], setting: str = "",
              stats: Callable = scored_stats) -> list[list[str]]:
    """Rows [setting, method, network, base, new, new - base] of our runs (mean ± sd over seeds)."""
    base, new = stats(pair.base), stats(pair.new)
    rows = []
    for m in dict.fromkeys(list(pair.base) + list(pair.new)):
        gain = f"{new[m].mean - base[m].mean:+.2f}" if m in base and m in new else "–"
        rows.append([setting, label(m), scored_network(m), base[m].text() if m in base else "–",
                     new[m].text() if m in new else "–", gain])
    return rows


def pairs_markdown(rows: list[list[str]], base_name: str = "MCE", new_name: str = "DM(CE)") -> str:
    return markdown_table(["setting", "method", "network", f"{base_name} top-1 %", f"{new_name} top-1 %",
                           "gain (points)"], rows)


def pair_text(pair: LossPair, stats: Callable = scored_stats, digits: int = 2) -> str:
    """Short 'ours' text for a verdict: 'AutoMix 80.10 vs 79.60 (n=3)' per method (new vs base)."""
    return versus_text(stats(pair.new), stats(pair.base), method_label, pair.methods(), digits)


def pair_runs_of(*pairs: LossPair) -> list:
    """Every RunRecord of the pairs (for the verdicts' compute column)."""
    return [r for p in pairs for runs in (p.base, p.new) for records in runs.values() for r in records]


# ----------------------------------------------------------------------------- Table A8: fractions


def fraction_images(params, dataset: str, fraction: float) -> int:
    """Training images for ``fraction`` of the budget's training set (its subset, else the whole set)."""
    from ..data import DATASETS

    base = BUDGETS.get(params.budget).overrides.get("train_subset") or DATASETS.get(dataset).num_train
    return max(1, round(fraction * base))


def fraction_pairs(params, methods: Sequence[str], fractions: Sequence[float] = TRAIN_FRACTIONS,
                   base_methods: Sequence[str] = ("vanilla",), log=None) -> dict[float, LossPair]:
    """{fraction: LossPair} on the page's dataset, each fraction a prefix subset of the budget's training set."""
    return {f: loss_pair_runs(params, methods, base_methods=base_methods, log=log,
                              train_subset=fraction_images(params, params.dataset, f)) for f in fractions}


def plot_fractions(table: PaperTable, pairs: dict[float, LossPair]):
    """Top-1 against training fraction: the paper's Table A8 (left) and ours (right); MCE solid, DM(CE) dashed."""
    fig, axes = figure(ncols=2)
    groups = _groups(table)
    fractions = [groups[g]["train_fraction"] for g in groups]
    for method in table.rows:
        for loss, style in (("mce", "-"), ("dm_ce", "--")):
            cols = [c for c, s in table.columns.items() if s["loss"] == loss]
            points = [(f, table.value(method, c)) for f, c in zip(fractions, cols) if table.value(method, c)]
            if points:
                axes[0].plot(*zip(*points), style, marker="o", color=method_color(method),
                             label=table.label(method) if loss == "mce" else None)
    for method in dict.fromkeys(m for p in pairs.values() for m in p.base):
        for side, style in (("base", "-"), ("new", "--")):
            points = [(f, scored_stats(getattr(p, side))[method].mean) for f, p in pairs.items()
                      if method in getattr(p, side)]
            if points:
                axes[1].plot(*zip(*points), style, marker="o", color=method_color(method),
                             label=method_label(method) if side == "base" else None)
    for ax, title in zip(axes, (f"paper ({table.table}, CIFAR-100)", "ours")):
        ax.set_title(title + ": solid MCE, dashed DM(CE)", fontsize=8)
        ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
        label_axes(ax, "fraction of the training set")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Fig. A1: mixed samples


def mixed_accuracy_options() -> dict:
    """The study's mixed-sample evaluation (the sweep's): every network on the same Mixup mixes of the test set."""
    from ..plans import STUDY_EVALUATION_OPTIONS

    return dict(STUDY_EVALUATION_OPTIONS["mixed_accuracy"])


def with_mixed_accuracy(params, runs: dict, log=None) -> tuple[dict, str | None]:
    """The runs that hold the mixed-sample evaluation, adding it from the final weights where the page
    may train (``params.train``); the others are left out and named in the reason."""
    import contextlib
    import sys

    from ..runs import train_or_load

    kept, missing = {}, []
    options = {"mixed_accuracy": mixed_accuracy_options()}
    for method, records in runs.items():
        for record in records:
            if not _has_mixed_accuracy(record) and params.train:
                sink = log or sys.__stderr__
                try:
                    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                        record = train_or_load(record.config, results_root=params.results_dir, train=False,
                                               evaluations=("mixed_accuracy",), evaluation_options=options)
                except (MixreproError, FileNotFoundError) as err:
                    missing.append(f"{method_label(method)} seed {record.config.seed} ({err})")
                    continue
            if _has_mixed_accuracy(record):
                kept.setdefault(method, []).append(record)
            else:
                missing.append(f"{method_label(method)} seed {record.config.seed}")
    reason = (f"no mixed-sample evaluation stored yet for {', '.join(missing)} (`mixrepro sweep study` adds it "
              "to the study's runs)") if missing else None
    return kept, reason


def _has_mixed_accuracy(record) -> bool:
    from ..results import NETWORKS

    return all("mixed_accuracy" in record.evaluations.get(net, {}) for net in NETWORKS)


def mixed_stats(runs: dict) -> dict[str, dict[str, SeedStats]]:
    """{'top1': {method: SeedStats}, 'top2': {...}} of the mixed-sample accuracy, scored network."""
    return {k: evaluation_stats(runs, "mixed_accuracy", k) for k in ("top1", "top2")}


def curve_mean_stats(runs: dict) -> dict[str, SeedStats]:
    """{method: mean test top-1 over the measured epochs} (the scored network): the area under the
    training curve per epoch, higher when a method learns faster."""
    def mean_curve(record, method):
        return statistics.fmean(v for v in record.curve(f"{scored_network(method)}_top1") if v is not None)

    return scored_stats(runs, mean_curve)


def plot_mixed_accuracy(bars: list[tuple[str, str, dict[str, SeedStats]]], curves: list[tuple[str, str, str, list]]):
    """Left: mixed-sample top-1 and top-2 (mean, sd bars) per network; right: test top-1 per epoch.

    ``bars``: (label, method, {'top1': stats, 'top2': stats}), a label containing 'DM' hatched;
    ``curves``: (label, method, line style, records).
    """
    fig, (left, right) = figure(ncols=2)
    width = 0.8 / max(len(bars), 1)
    for i, (label, method, stats) in enumerate(bars):
        xs = [k + (i - (len(bars) - 1) / 2) * width for k in range(2)]
        left.bar(xs, [stats["top1"].mean, stats["top2"].mean], width, yerr=[stats["top1"].std, stats["top2"].std],
                 color=method_color(method), hatch="//" if "DM" in label else None, edgecolor="k", linewidth=0.4,
                 label=label)
    left.set_xticks([0, 1], ["top-1 in {y_a, y_b}", "top-2 = {y_a, y_b}"])
    left.set_ylabel("mixed-sample accuracy (%)")
    left.set_title("test images mixed by Mixup (alpha 1)", fontsize=8)
    for label, method, style, records in curves:
        series = [r.curve(f"{scored_network(method)}_top1") for r in records]
        points = [(e + 1, statistics.fmean(vs)) for e, vs in enumerate(zip(*series)) if None not in vs]
        if points:
            right.plot(*zip(*points), style, marker=".", color=method_color(method), label=label)
    from matplotlib.ticker import MaxNLocator

    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("epoch")
    right.set_ylabel("test top-1 (%)")
    right.set_title("training curves (seed mean)", fontsize=8)
    for ax in (left, right):
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Figs. A2-A3: arms


def eta_arms(methods: Sequence[str], etas: Sequence[float]) -> dict[str, dict[str, dict]]:
    """{method: {'eta=0.1': method_params, ...}}: DM(CE) at each eta (the preset's eta shares its run)."""
    return {m: {f"eta={e:g}": eta_params(m, e) for e in etas} for m in methods}


def bce_arms(methods: Sequence[str]) -> dict[str, dict[str, dict]]:
    """{method: {arm: method_params}}: DM(BCE) at the method's preset (t, xi), and with xi, then t, taken from
    the other preset, one at a time (Fig. A2 varies xi and t separately)."""
    from ..losses import DM_BCE_PRESETS
    from ..methods import METHODS

    arms = {}
    for method in methods:
        own_name = METHODS.get(method).dm_bce_preset
        own = DM_BCE_PRESETS.get(own_name)
        other = next(DM_BCE_PRESETS.get(n) for n in DM_BCE_PRESETS.names() if n != own_name)
        settings = [own, {**own, "xi": other["xi"]}, {**own, "t": other["t"]}]
        arms[method] = {bce_arm_name(x["xi"], x["t"]): dm_bce_params(method, xi=x["xi"], t=x["t"]) for x in settings}
    return arms


def bce_arm_name(xi: float, t: float) -> str:
    return f"xi={xi:g}, t={t:g}"


def arm_runs(params, arms: dict[str, dict[str, dict]], log=None) -> tuple[dict, dict[str, str]]:
    """({method: {arm: [records]}}, {method: why some of its arms are missing}) for
    {method: {arm name: method_params}}."""
    found, reasons = {}, {}
    for method, by_arm in arms.items():
        missing = []
        for arm, method_params in by_arm.items():
            arm_params = arm_parameters(params, method, method_params=method_params)
            runs, reason = collect_runs(arm_params, methods=[method], method_params=method_params, log=log)
            if method in runs:
                found.setdefault(method, {})[arm] = runs[method]
            if reason:
                missing.append(f"{arm}: " + reason
                               + outside_plan_note(arm_params, [method], method_params=method_params))
        if missing:
            reasons[method] = "; ".join(missing)
    return found, reasons


def methods_by_preset(methods: Sequence[str], loss: str) -> dict[str, list[str]]:
    """{preset: methods} by each method's DM preset for ``loss`` ('dm_ce': static/dynamic,
    'dm_bce': cutting/interpolation)."""
    from ..methods import METHODS

    groups: dict[str, list[str]] = {}
    for method in methods:
        cls = METHODS.get(method)
        groups.setdefault(cls.dm_ce_preset if loss == "dm_ce" else cls.dm_bce_preset, []).append(method)
    return groups


def preference_verdict(claim_id: str, claim: str, source: str, budget: str, methods: Sequence[str],
                       stats: dict, reasons: dict[str, str], preferred: dict[str, str]) -> Verdict:
    """'Each of ``methods`` does better with its preferred arm', not tested while one lacks an arm's runs."""
    missing = "; ".join(f"{method_label(m)}: {reasons[m]}" for m in methods if m in reasons) or None
    if not methods:
        missing = "none of this execution's methods belongs to this group (parameters eta_methods / bce_methods)"
    checks = preference_checks({m: stats[m] for m in methods if m in stats}, {m: preferred[m] for m in methods})
    ours = "; ".join(f"{method_label(m)} " + ", ".join(f"{a} {s.mean:.2f}" for a, s in stats[m].items())
                     for m in methods if m in stats)
    return judge(claim_id, claim, source, budget, checks,
                 untested_reason=needs([m for m in methods if m in stats], *methods, missing=missing),
                 paper_value=", ".join(f"{method_label(m)} {preferred[m]}" for m in methods), ours=ours,
                 runs=[r for m in methods for records in stats_runs(m, stats) for r in records])


@dataclass(frozen=True)
class ArmStats:
    """Top-1 of one arm (SeedStats) with the records behind it (for the verdicts' compute column)."""

    stats: SeedStats
    records: tuple

    @property
    def mean(self) -> float:
        return self.stats.mean

    @property
    def std(self) -> float:
        return self.stats.std

    def text(self) -> str:
        return self.stats.text()


def arm_stats(found: dict) -> dict[str, dict[str, ArmStats]]:
    """{method: {arm: ArmStats of the scored top-1}}."""
    return {m: {arm: ArmStats(scored_stats({m: records})[m], tuple(records)) for arm, records in by_arm.items()}
            for m, by_arm in found.items()}


def stats_runs(method: str, stats: dict) -> list:
    """The record lists behind ``stats[method]`` (every arm)."""
    return [list(a.records) for a in stats.get(method, {}).values()]


def preference_checks(stats: dict[str, dict[str, SeedStats]], preferred: dict[str, str]) -> list[Check]:
    """'<method> does better with its preferred arm than with each other arm', for methods with runs."""
    checks = []
    for method, arm in preferred.items():
        if method not in stats or arm not in stats[method]:
            continue
        for other, s in stats[method].items():
            if other != arm:
                checks.append(check_order(f"{method_label(method)} {arm}", stats[method][arm].stats,
                                          f"{method_label(method)} {other}", s.stats, quantity="top-1"))
    return checks


def arms_markdown(stats: dict[str, dict[str, SeedStats]], preferred: dict[str, str]) -> str:
    """One row per method and arm: top-1 (mean ± sd), marking the arm the paper says the method prefers."""
    rows = [[method_label(m), arm, s.text(), "yes" if preferred.get(m) == arm else ""]
            for m, by_arm in stats.items() for arm, s in by_arm.items()]
    return markdown_table(["method", "arm", "top-1 %", "the paper's preferred value"], rows)


def plot_arms(panels: list[tuple[str, dict, dict[str, str]]]):
    """One panel per ablation (title, {method: {arm: ArmStats}}, {method: preferred arm}): a horizontal bar per
    method and arm (mean, sd whisker), the arm the paper says the method prefers hatched."""
    fig, axes = figure(ncols=len(panels))
    for ax, (title, stats, preferred) in zip(axes, panels):
        bars = [(m, arm, s) for m, by_arm in stats.items() for arm, s in by_arm.items()]
        for y, (method, arm, s) in enumerate(bars):
            ax.barh(y, s.mean, xerr=s.std, color=method_color(method), edgecolor="k", linewidth=0.4,
                    hatch="//" if preferred.get(method) == arm else None)
        ax.set_yticks(range(len(bars)), [f"{method_label(m)}: {arm}" for m, arm, _ in bars], fontsize=7)
        ax.invert_yaxis()
        if bars:  # zoom on the bars' ends: the differences, not the accuracies, are the point
            low = min(s.mean - s.std for _, _, s in bars)
            high = max(s.mean + s.std for _, _, s in bars)
            ax.set_xlim(low - 0.1 * (high - low) - 0.5, high + 0.1 * (high - low) + 0.5)
        ax.set_title(f"{title} (hatched: the paper's choice)", fontsize=8)
        ax.set_xlabel("test top-1 (%)")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- figures


def figure(ncols: int = 1, width: float = 7.0, height: float = 3.5):
    """A pyplot-free Figure at page width in the book's theme, ``ncols`` axes side by side."""
    fig, axes = new_figure(width, height, max(ncols, 1))
    return fig, list(axes)

