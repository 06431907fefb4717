"""The study's sweep plans: which runs, in which order, evaluated how (``mixrepro sweep PLAN``).

``pilot``: the reduced-budget pilot that chose the ``cpu`` budget (book/protocol_pilot).

``study``: every method the papers compare at the ``cpu`` budget, 3 seeds, with its final
evaluations, plus an equal-compute arm no paper reports (Mixup and CutMix trained for as many
epochs as a learned method's step cost buys). Ordered so each finished prefix is useful: a
full table at seed 0 first (cheapest runs first by the bench report's step times, so the table
fills fastest: the static mixers and DM(CE) on them, then PuzzleMix and the learned mixers), then the
protocol audit's cheap training arms (``AUDIT_ARMS``: reference SaliencyMix, cosine floor 0.05 on
Mixup and CutMix; about 1.3 wall-clock hours), then seeds 1-2 of the methods the claims name, then the
equal-compute arm at seed 0, then seeds 1-2 of the remaining static methods, and last the two
AdAutoMix audit arms (about 4 hours of one core each). The
equal-compute arm has one seed: its four runs cost about 14 vanilla runs, and at about 24
wall-clock hours of two one-thread workers the plan is already past the 20 the study
budgeted (estimate from the committed bench report; book/protocol_pilot).

``pages``: the runs the book's pages ask for at the ``cpu`` budget that ``study`` does not train:
ablation arms and sweep points, one seed each (the pages define them; executing every page
loading-only records what they miss, ``notebook_runner --plan-pages``). A page's claims wait for
all its runs, so the page whose runs cost the fewest hours comes first (its runs cheapest first);
run it after ``study``.
"""
from __future__ import annotations

import functools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import BUDGETS, RunConfig, budget_runtime, config_for_budget
from .errors import InvalidParameterError, MixreproError
from .registry import Registry

DATASET = "cifar10-jpeg"
# Methods the papers' claims single out (never cut from the seeds) and the other static ones.
HEADLINE = ("vanilla", "mixup", "cutmix", "puzzlemix", "automix", "samix", "adautomix")
OTHER_STATIC = ("manifoldmix", "saliencymix", "fmix", "resizemix")
DM_CE_ON = ("mixup", "cutmix", "automix")  # DM(CE) rows of the DM paper's tables
EQUAL_COMPUTE = {"baselines": ("mixup", "cutmix"), "learned": ("automix", "adautomix")}
# The committed ``mixrepro bench`` report the equal-compute epochs are computed from (width 16,
# batch 100, bf16 + channels_last, one thread: the study's runtime). Pinned so the plan's run
# keys do not move when a newer report is committed.
EQUAL_COMPUTE_BENCH = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "bench" / "cpu" / \
    "20261201T004330Z-d1fe356f9d.json"
STUDY_EVALUATIONS = ("ece", "fgsm", "corruption", "occlusion", "mixed_accuracy")
# Computed where a run's final weights are at hand (a run being trained, or its checkpoint cached), never
# worth retraining a stored run for: 'confidence' keeps each test image's confidence and correctness (the
# inputs of its ECE) for a paired bootstrap; runs without it are compared from their reliability diagrams.
STUDY_OPTIONAL_EVALUATIONS = ("confidence",)
# Corruption costs 12 corruptions x 5 severities forward passes per network and occlusion one per
# ratio (10): both on a fixed, class-balanced 2,000-image subset of the test set. On all 10,000
# images the evaluations of one run took longer than half its training on one core.
STUDY_EVALUATION_OPTIONS = {"corruption": {"images": 2000}, "occlusion": {"images": 2000},
                            "mixed_accuracy": {"mixer": "mixup", "mixer_params": {"alpha": 1.0}}}


# The runs the book's pages ask for at the cpu budget that the study plan does not train (ablation
# arms and sweep points, one seed each), recorded by executing every page loading-only
# (``python -m mixrepro.notebook_runner --plan-pages`` rewrites it).
PAGES_PLAN_FILE = Path(__file__).resolve().parent.parent / "notebooks" / "results" / "plans" / "pages-cpu.json"


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    configs: tuple[RunConfig, ...]
    runtime: dict = field(default_factory=lambda: budget_runtime("cpu"))
    evaluations: tuple[str, ...] = ()  # every run's, unless ``run_evaluations`` names the run
    evaluation_options: dict = field(default_factory=dict)
    optional_evaluations: tuple[str, ...] = ()  # added only where the final weights are at hand (sweep)
    # {config key: evaluations}: runs that need only their own (the pages plan: what the pages asking for
    # a run use; corruption and occlusion are most of a run's evaluation time, and most pages use neither).
    run_evaluations: dict = field(default_factory=dict)

    def evaluations_for(self, config: RunConfig) -> tuple[str, ...]:
        """The evaluations ``config``'s run needs before the plan counts it done."""
        return tuple(self.run_evaluations.get(config.key(), self.evaluations))

    def all_evaluations(self) -> tuple[str, ...]:
        """Every evaluation some run of the plan needs, the plan's own first."""
        named = dict.fromkeys(self.evaluations)
        for names in self.run_evaluations.values():
            named.update(dict.fromkeys(names))
        return tuple(named)


def pilot_configs() -> tuple[RunConfig, ...]:
    """The reduced-budget pilot: Vanilla and Mixup, two seeds, at two settings of equal cost (1.2M images).

    full-data: all 50,000 training images for 24 epochs; small-data: 10,000 images for 120 epochs.
    Both: width-16 ResNet-18, every test image, step-scaled EMA.
    """
    settings = {"full-data": {"train_subset": None, "epochs": 24},
                "small-data": {"train_subset": 10000, "epochs": 120}}
    order = [("full-data", 0), ("small-data", 0), ("full-data", 1), ("small-data", 1)]
    return tuple(
        config_for_budget("cpu", method=method, dataset=DATASET, seed=seed, test_subset=None,
                          ema_schedule="step-scaled", **settings[setting])
        for setting, seed in order for method in ("vanilla", "mixup")
    )


def step_seconds(bench_report: dict) -> dict[str, float]:
    """{row name: median seconds per step} of a ``mixrepro bench`` report."""
    return {row["method"]: row["seconds_per_step"] for row in bench_report["rows"]}


def run_hours(config: RunConfig) -> float | None:
    """Hours of one core to train ``config`` itself (its epochs and training images, any seed) at the
    committed bench report's seconds per step (:func:`seconds_per_step`); None when the report is
    missing or times neither its loss variant nor its mixer."""
    from .data import DATASETS

    try:
        per_step = seconds_per_step(config.method, config.method_params, step_seconds(load_bench_report()))
    except MixreproError:
        return None
    if math.isinf(per_step):
        return None
    images = config.train_subset or DATASETS.get(config.dataset).num_train
    return config.epochs * math.ceil(images / config.batch_size) * per_step / 3600


# What a run costs besides its training steps, in training steps of Vanilla (the bench report's row), so
# it scales with the machine like the steps do. Measured on this study's cpu runs (width 16, one core
# each, beside two sweep workers on two cores): scoring both networks on all 10,000 test images in a
# scored epoch (``training.loop.scored_epoch``) took 60-66 Vanilla steps (the 120-epoch Vanilla runs'
# epoch logs); each final evaluation of both networks (fp32, the study's options), timed alone on a
# finished run between two timings of 40 Vanilla steps (0.133-0.161 s each), took the Vanilla steps
# below over the test images it reads (corruption and occlusion: the 2,000-image subset);
# ``scripts/measure_overheads.py RUN_DIR`` repeats that measurement and prints them in this form.
SCORING_VANILLA_STEPS_PER_IMAGE = 62 / 10000
EVALUATION_VANILLA_STEPS = {"accuracy": (111, 10000), "confidence": (101, 10000), "ece": (92, 10000),
                            "fgsm": (405, 10000), "corruption": (1434, 2000), "occlusion": (203, 2000),
                            "mixed_accuracy": (142, 10000)}  # name: (Vanilla steps, test images read)
EVALUATION_VANILLA_STEPS_PER_IMAGE = {name: steps / images
                                      for name, (steps, images) in EVALUATION_VANILLA_STEPS.items()}


def overhead_hours(config: RunConfig, evaluations=()) -> tuple[float, float] | None:
    """(hours of one core scoring ``config``'s networks in its scored epochs, hours of its ``evaluations``),
    at the bench report's Vanilla step time; None when the report is missing or lacks Vanilla, or the
    dataset is not one mixrepro knows (its test set's size is unknown)."""
    from .data import DATASETS
    from .training.loop import scored_epoch

    try:
        vanilla_step = step_seconds(load_bench_report()).get("vanilla")
        test_images = config.test_subset or DATASETS.get(config.dataset).num_test
    except MixreproError:
        return None
    if vanilla_step is None:
        return None
    scored = sum(scored_epoch(epoch, config.epochs) for epoch in range(1, config.epochs + 1))
    scoring = scored * test_images * SCORING_VANILLA_STEPS_PER_IMAGE
    evaluating = sum(evaluation_images(name, test_images) * EVALUATION_VANILLA_STEPS_PER_IMAGE[name]
                     for name in evaluations)
    return scoring * vanilla_step / 3600, evaluating * vanilla_step / 3600


def measured_evaluation_steps(records) -> dict[str, tuple[float, int]]:
    """{evaluation: (Vanilla steps per 10,000 test images it read, runs)}: what the stored runs' final
    evaluations took (``evaluation_times.json``), each in units of the run's own test scoring (priced by
    SCORING_VANILLA_STEPS_PER_IMAGE), median over the runs trained and evaluated on one CPU thread. Set beside
    EVALUATION_VANILLA_STEPS_PER_IMAGE, it shows when the estimates' constants no longer fit the machine."""
    from .data import DATASETS

    measured: dict[str, list[float]] = {}
    for record in records:
        step = scoring_step_seconds(record)
        if step is None:
            continue
        test_images = record.config.test_subset or DATASETS.get(record.config.dataset).num_test
        for name, timing in record.evaluation_times.items():
            if name in EVALUATION_VANILLA_STEPS and (timing.get("device"), timing.get("threads")) == ("cpu", 1):
                per_image = timing["seconds"] / step / evaluation_images(name, test_images)
                measured.setdefault(name, []).append(per_image * 10000)
    return {name: (statistics.median(values), len(values)) for name, values in measured.items()}


def scoring_step_seconds(record) -> float | None:
    """The Vanilla step time a run's test scoring implies: the median time of scoring its networks in a
    scored epoch over the Vanilla steps that costs; None unless it trained on one CPU thread and scored."""
    from .data import DATASETS

    runtime = record.environment.get("runtime") or {}
    if (runtime.get("device_type"), runtime.get("threads")) != ("cpu", 1):
        return None
    times = [row["eval_time_s"] for row in record.epochs
             if row.get("online_top1") is not None and row.get("eval_time_s")]
    if not times:
        return None
    test_images = record.config.test_subset or DATASETS.get(record.config.dataset).num_test
    return statistics.median(times) / (test_images * SCORING_VANILLA_STEPS_PER_IMAGE)


def evaluation_images(name: str, test_images: int) -> int:
    """Test images evaluation ``name`` reads with the study's options (a fixed subset, or all of them)."""
    subset = STUDY_EVALUATION_OPTIONS.get(name, {}).get("images")
    return min(subset, test_images) if subset else test_images


def run_cost_hours(config: RunConfig, evaluations=()) -> float | None:
    """Hours of one core for the whole run: training (:func:`run_hours`), scoring and ``evaluations``."""
    training, overhead = run_hours(config), overhead_hours(config, evaluations)
    return None if training is None or overhead is None else training + sum(overhead)


def equal_compute_epochs(base_epochs: int, bench_report: dict, learned: str, baseline: str) -> int:
    """Epochs of ``baseline`` that cost what ``base_epochs`` of ``learned`` cost, by their measured step times."""
    seconds = step_seconds(bench_report)
    for name in (learned, baseline):
        if name not in seconds:
            raise InvalidParameterError("bench row", name, f"one of the report's rows {sorted(seconds)}")
    return round(base_epochs * seconds[learned] / seconds[baseline])


def load_bench_report(path: Path = EQUAL_COMPUTE_BENCH) -> dict:
    if not path.is_file():
        raise MixreproError(f"the equal-compute arm needs the bench report {path}, which is missing; "
                            "it is committed with the repository (mixrepro bench wrote it)")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Arm:
    """One row of the study's table: a method, its overrides, its epochs and cosine floor (None: defaults)."""

    method: str
    method_params: dict = field(default_factory=dict)
    epochs: int | None = None
    min_lr: float | None = None

    def config(self, seed: int, budget: str = "cpu") -> RunConfig:
        fields = {"method": self.method, "dataset": DATASET, "seed": seed, "method_params": dict(self.method_params)}
        if self.epochs is not None:
            fields["epochs"] = self.epochs
        if self.min_lr is not None:
            fields["min_lr"] = self.min_lr
        return config_for_budget(budget, **fields)


@dataclass(frozen=True)
class AuditArm:
    """A protocol-audit training arm: one reference-code choice, trained beside our default (seed 0)."""

    finding: str  # the reference's choice, as the audit page names it
    ours: Arm
    reference: Arm


# The protocol audit's training arms (book page "Protocol audit", section 6); one seed each at the
# cpu budget, compared with the study's own run of the same seed image by image.
AUDIT_ARMS = (
    AuditArm("SaliencyMix: saliency of the normalised float tensor (reference code)",
             Arm("saliencymix"), Arm("saliencymix", {"saliency_input": "reference-float"})),
    AuditArm("Mixup with the learned methods' cosine floor 0.05 (static configs: 0)",
             Arm("mixup"), Arm("mixup", min_lr=0.05)),
    AuditArm("CutMix with the learned methods' cosine floor 0.05 (static configs: 0)",
             Arm("cutmix"), Arm("cutmix", min_lr=0.05)),
    AuditArm("AdAutoMix: the official code's sign of the cosine term (similarity pushed down)",
             Arm("adautomix"), Arm("adautomix", {"cosine_sign": "reference"})),
    AuditArm("AdAutoMix: lambda margin 0.03 of the official CIFAR configs",
             Arm("adautomix"), Arm("adautomix", {"lam_margin": 0.03})),
)


def equal_compute_arms(bench_report: dict, budget: str = "cpu") -> list[Arm]:
    epochs = BUDGETS.get(budget).overrides["epochs"]
    return [Arm(baseline, epochs=equal_compute_epochs(epochs, bench_report, learned, baseline))
            for learned in EQUAL_COMPUTE["learned"] for baseline in EQUAL_COMPUTE["baselines"]]


def seconds_per_step(method: str, method_params: dict, seconds: dict[str, float]) -> float:
    """Bench seconds per step: the loss variant's row ('mixup+dm_ce') if timed, else the mixer's, else inf."""
    loss = method_params.get("loss")
    return seconds.get(f"{method}+{loss}" if loss else method, seconds.get(method, math.inf))


def arm_step_seconds(arm: Arm, seconds: dict[str, float]) -> float:
    """An arm's bench seconds per step (:func:`seconds_per_step`)."""
    return seconds_per_step(arm.method, arm.method_params, seconds)


def study_configs(bench_report: dict | None = None, budget: str = "cpu") -> tuple[RunConfig, ...]:
    """Every run of the study plan, in priority order (see the module docstring)."""
    dm = [Arm(m, {"loss": "dm_ce"}) for m in DM_CE_ON]
    headline = [Arm(m) for m in HEADLINE] + dm
    others = [Arm(m) for m in OTHER_STATIC]
    report = bench_report if bench_report is not None else load_bench_report()
    equal = equal_compute_arms(report, budget)
    seconds = step_seconds(report)
    # Vanilla, the row every table compares against, leads; the rest by step cost.
    first_table = sorted(headline + others, key=lambda arm: (arm.method != "vanilla", arm_step_seconds(arm, seconds)))
    audit = sorted((a.reference for a in AUDIT_ARMS), key=lambda arm: arm_step_seconds(arm, seconds))
    cheap_audit = [arm for arm in audit if arm.method != "adautomix"]
    costly_audit = [arm for arm in audit if arm.method == "adautomix"]
    tiers = [(first_table, (0,)), (cheap_audit, (0,)), (headline, (1, 2)), (equal, (0,)), (others, (1, 2)),
             (costly_audit, (0,))]
    configs = [arm.config(seed, budget) for arms, seeds in tiers for seed in seeds for arm in arms]
    return tuple({config.key(): config for config in reversed(configs)}[key]
                 for key in dict.fromkeys(config.key() for config in configs))


def pilot_plan() -> Plan:
    return Plan("pilot", pilot_configs.__doc__.splitlines()[0], pilot_configs())


def study_plan() -> Plan:
    return Plan("study", "every method at the cpu budget, 3 seeds, evaluated; the equal-compute arm; "
                "the protocol audit's training arms",
                study_configs(), evaluations=STUDY_EVALUATIONS, evaluation_options=STUDY_EVALUATION_OPTIONS,
                optional_evaluations=STUDY_OPTIONAL_EVALUATIONS)


def pages_plan_content(recorded_lines) -> dict:
    """The pages plan file's content from the lines the pages recorded (``study.collect.record_wanted``):
    each run once, without the study plan's own runs, with the evaluations the pages that ask for it use
    (``run_evaluations``: a run is not paid the study's corruption and occlusion unless a page reads
    them). Ordered so that claims get decided early: a page's claims wait for all of its runs, so the
    page whose runs cost the fewest hours in total comes first, each page's runs cheapest first (a run
    two pages ask for goes with the first). ``pages`` lists each page's runs and hours in that order."""
    configs, asked, by_page = {}, {}, {}
    for line in recorded_lines:
        item = json.loads(line)
        config = RunConfig.from_dict(item["config"])
        if not in_study_plan(config):
            key = config.key()
            configs[key] = config
            asked.setdefault(key, set()).update(item["evaluations"])
            by_page.setdefault(item.get("page", ""), set()).add(key)
    hours = {key: run_cost_hours(config, asked[key]) for key, config in configs.items()}  # each reads the bench report

    def cost(key):
        return math.inf if hours[key] is None else hours[key]

    page_hours = {page: sum(cost(key) for key in keys) for page, keys in by_page.items()}
    ordered, pages = [], []
    for page in sorted(by_page, key=lambda p: (page_hours[p], p)):
        keys = [key for key in sorted(by_page[page], key=lambda k: (cost(k), k)) if key not in ordered]
        ordered += keys
        total = page_hours[page]
        pages.append({"page": page, "runs": len(by_page[page]), "new_runs": len(keys),
                      "hours_of_one_core": None if math.isinf(total) else round(total, 1)})
    return {"about": PAGES_PLAN_ABOUT, "hours_of_one_core": round(sum(h for h in hours.values() if h), 1),
            "run_evaluations": {key: canonical_order(asked[key]) for key in ordered},
            "pages": pages, "configs": [configs[key].to_dict() for key in ordered]}


def canonical_order(names) -> list[str]:
    """Evaluation names in the study's order, any others after them alphabetically."""
    return [n for n in STUDY_EVALUATIONS if n in names] + sorted(set(names) - set(STUDY_EVALUATIONS))


PAGES_PLAN_ABOUT = ("runs the book's pages ask for at the cpu budget beyond the study plan (ablation arms and "
                    "sweep points, one seed each), the page whose runs cost the fewest hours first; written by "
                    "`python -m mixrepro.notebook_runner --plan-pages`")


def pages_plan(path: Path = PAGES_PLAN_FILE) -> Plan:
    if not path.is_file():
        raise MixreproError(f"the pages plan {path} is missing; `python -m mixrepro.notebook_runner --plan-pages` "
                            "writes it (it executes every page loading-only and records the runs they miss)")
    content = json.loads(path.read_text())
    if "run_evaluations" not in content:
        raise MixreproError(f"the pages plan {path} predates per-run evaluations (it has no 'run_evaluations'); "
                            "`python -m mixrepro.notebook_runner --plan-pages` rewrites it")
    return Plan("pages", PAGES_PLAN_ABOUT, tuple(RunConfig.from_dict(c) for c in content["configs"]),
                evaluation_options=STUDY_EVALUATION_OPTIONS, optional_evaluations=STUDY_OPTIONAL_EVALUATIONS,
                run_evaluations={key: tuple(names) for key, names in content["run_evaluations"].items()})


# Plans are built on demand: the study's reads the committed bench report, the pages' its committed file.
PLANS: Registry = Registry("sweep plan")
PLANS.add("pilot", pilot_plan)
PLANS.add("study", study_plan)
PLANS.add("pages", pages_plan)


@functools.lru_cache(maxsize=1)
def _study_seeds() -> dict[str, tuple[int, ...]]:
    """{key of a setting's seed-0 config: the seeds the study plan trains it with}.

    Every method and DM(CE) arm three seeds, the audit's arms one; the equal-compute arms (one
    seed) are left out, their epochs depend on the bench report and any setting not listed runs
    one seed anyway. A test checks this against ``study_configs``.
    """
    main = [Arm(m) for m in HEADLINE + OTHER_STATIC] + [Arm(m, {"loss": "dm_ce"}) for m in DM_CE_ON]
    tiers = [(main, BUDGETS.get("cpu").seeds), ([a.reference for a in AUDIT_ARMS], (0,))]
    return {arm.config(0).key(): tuple(seeds) for arms, seeds in tiers for arm in arms}


def cpu_seeds(config: RunConfig) -> tuple[int, ...]:
    """The seeds a setting (``config`` at the cpu budget, any seed) runs with at that budget.

    The seeds the study plan trains it with (three for the main table's methods, one for the
    audit's and the equal-compute arms); a setting outside the plan, an ablation arm of a page,
    runs with one seed (seed 0): the study spends its CPU on the main table's seeds first.
    """
    return _study_seeds().get(config.replace(seed=0).key(), (0,))


def in_study_plan(config: RunConfig) -> bool:
    """Whether the study plan trains exactly this run (its setting and its seed); the equal-compute arms,
    whose epochs follow the bench report and which no page collects, are not counted."""
    return config.seed in _study_seeds().get(config.replace(seed=0).key(), ())


@functools.lru_cache(maxsize=1)
def _pages_plan_keys() -> frozenset:
    return frozenset(c.key() for c in pages_plan().configs) if PAGES_PLAN_FILE.is_file() else frozenset()


def in_pages_plan(config: RunConfig) -> bool:
    """Whether the committed ``pages`` plan (the pages' ablation arms, after the study) trains this run."""
    return config.key() in _pages_plan_keys()


def get_plan(name: str) -> Plan:
    """The plan called ``name``; an unknown name raises UnknownNameError listing the known ones."""
    return PLANS.get(name)()
