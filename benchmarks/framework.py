"""The small machinery every case shares: variants, metrics, targets, interleaved
repetitions, medians, ratios, and the printed table.

A *case* (one module under ``benchmarks/cases/``) declares its variants: one of them
is the baseline (bare redis-py, or the 1-thread / 1-process run). ``run_case`` runs
every variant once per repetition, rotating the order each repetition so no variant
always goes first (or last) on a warm or cold Redis, and keeps every sample.

Nothing here asserts speed. A target is shown as ``met`` / ``MISSED``; that is all.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


#: Background CPU (other processes, % of one core) above which a case is flagged.
BUSY_MACHINE_PCT = 20.0


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool = True
    ratio: bool = True  # show variant / baseline for this metric
    fmt: str = "{:,.0f}"

    def format(self, value: Optional[float]) -> str:
        if value is None:
            return "-"
        return self.fmt.format(value)


@dataclass(frozen=True)
class Target:
    """``ratio(variant.metric vs baseline) <op> value``, or an absolute bound when
    ``absolute`` is True (e.g. RSS growth < 100 MB)."""

    variant: str
    metric: str
    op: str  # ">=" or "<=" or "<"
    value: float
    absolute: bool = False
    note: str = ""

    def describe(self) -> str:
        what = "" if self.absolute else "x"
        return f"{self.op} {self.value:g}{what}" + (f" ({self.note})" if self.note else "")

    def check(self, observed: Optional[float]) -> Optional[bool]:
        if observed is None:
            return None
        if self.op == ">=":
            return observed >= self.value
        if self.op == "<=":
            return observed <= self.value
        if self.op == "<":
            return observed < self.value
        if self.op == ">":
            return observed > self.value
        raise ValueError(self.op)


@dataclass
class Variant:
    name: str
    run: Optional[Callable[["Context", int], dict[str, float]]]
    baseline: bool = False
    description: str = ""
    #: Not run, and why (e.g. a peer whose virtualenv could not be built): one row says so.
    skip: str = ""
    #: Repetitions of this variant when fewer than the case's (full run / quick run).
    reps: Optional[int] = None
    quick_reps: Optional[int] = None
    #: False: no ratio to the baseline (it measures something else, e.g. another rate).
    ratio_to_baseline: bool = True
    #: "The limit" of this variant, in baselines: 1 when the baseline is the bare
    #: redis-py loop doing the same work; N for N threads or processes over a 1-thread or
    #: 1-process baseline (perfect scaling); None: no limit (no "of limit" figure).
    limit: Optional[float] = None


@dataclass(frozen=True)
class Comparison:
    """lightbus_sync's ``variant`` against a peer's variant ``peer`` (same case, same
    run): the ratio of medians (lightbus_sync / peer) of each of ``metrics`` is printed
    in the "lightbus_sync vs peers" table under the main one."""

    variant: str
    peer: str
    metrics: tuple[str, ...]


@dataclass
class Case:
    name: str
    title: str
    description: str
    variants: list[Variant]
    metrics: list[Metric]
    targets: list[Target] = field(default_factory=list)
    reps: int = 5
    quick_reps: int = 3
    setup: Optional[Callable[["Context"], None]] = None
    teardown: Optional[Callable[["Context"], None]] = None
    #: (context, aggregated result) -> notes printed under the table
    summarize: Optional[Callable[["Context", dict], list[str]]] = None
    parameters: dict[str, Any] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)

    #: True when the baseline is a bare redis-py loop doing the same Redis work: every
    #: variant's limit is then 1 baseline unless it says otherwise.
    bare_baseline: bool = True

    @property
    def baseline(self) -> Optional[Variant]:
        return next((v for v in self.variants if v.baseline), None)

    def limit_of(self, variant: Variant) -> Optional[float]:
        if variant.baseline or not variant.ratio_to_baseline:
            return None
        if variant.limit is not None:
            return variant.limit
        return 1.0 if self.bare_baseline else None


@dataclass
class Context:
    """What a case gets: the private Redis, the mode, and a scratch dict."""

    redis_url: str
    redis_port: int
    redis_pid: int
    quick: bool
    repo_root: str
    scratch: dict[str, Any] = field(default_factory=dict)

    def size(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in [0, 100])."""
    if not sorted_values:
        return float("nan")
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": list(samples),
    }


class CpuWindow:
    """CPU used by other processes (not this one, its children, nor the benchmark
    redis-server) while a variant runs, in % of one core: the machine may be shared."""

    def __init__(self, redis_pid: int) -> None:
        self.redis_pid = redis_pid
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        import psutil

        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
        me = psutil.Process().cpu_times()
        own = me.user + me.system + me.children_user + me.children_system
        try:
            own += sum(c.cpu_times().user + c.cpu_times().system
                       for c in psutil.Process().children(recursive=True) if c.pid != self.redis_pid)
        except psutil.Error:
            pass
        try:
            r = psutil.Process(self.redis_pid).cpu_times()
            redis_cpu = r.user + r.system
        except psutil.Error:
            redis_cpu = 0.0
        return time.monotonic(), busy, own + redis_cpu

    def background_pct(self) -> float:
        t1, busy1, ours1 = self._sample()
        t0, busy0, ours0 = self.start
        return max(0.0, 100 * ((busy1 - busy0) - (ours1 - ours0)) / max(t1 - t0, 1e-9))


def run_case(case: Case, ctx: Context, log: Callable[[str], None]) -> dict[str, Any]:
    """Run ``case``: setup, reps x variants (rotated order), teardown; aggregate."""
    reps = case.quick_reps if ctx.quick else case.reps
    started = time.monotonic()
    raw: dict[str, list[dict[str, float]]] = {v.name: [] for v in case.variants}
    errors: list[str] = []
    if case.setup is not None:
        case.setup(ctx)
    try:
        for rep in range(reps):
            shift = rep % len(case.variants)
            order = case.variants[shift:] + case.variants[:shift]
            for variant in order:
                if variant.skip or rep >= _variant_reps(variant, ctx, reps):
                    continue
                t0 = time.monotonic()
                window = CpuWindow(ctx.redis_pid)
                try:
                    metrics = variant.run(ctx, rep)
                except Exception as exc:  # a broken variant must not hide the others
                    errors.append(f"rep {rep} {variant.name}: {type(exc).__name__}: {exc}")
                    log(f"    ! {variant.name} failed: {exc}\n{traceback.format_exc()}")
                    continue
                metrics["background_cpu_pct"] = window.background_pct()
                raw[variant.name].append(metrics)
                shown = ", ".join(
                    f"{m.key}={m.format(metrics.get(m.key))}" for m in case.metrics if m.key in metrics
                )
                log(f"    rep {rep + 1}/{reps} {variant.name:<34} {shown}  "
                    f"({time.monotonic() - t0:.1f}s, other processes {metrics['background_cpu_pct']:.0f}% CPU)")
    finally:
        if case.teardown is not None:
            case.teardown(ctx)

    variants: dict[str, Any] = {}
    for variant in case.variants:
        runs = raw[variant.name]
        keys = sorted({k for r in runs for k in r})
        variants[variant.name] = {
            "baseline": variant.baseline,
            "description": variant.description,
            "reps": len(runs),
            "metrics": {k: summary([r[k] for r in runs if k in r]) for k in keys},
        }
        if variant.skip:
            variants[variant.name]["skipped"] = variant.skip
    base = case.baseline
    ratios: dict[str, dict[str, float]] = {}
    if base is not None:
        base_metrics = variants[base.name]["metrics"]
        for variant in case.variants:
            if variant.baseline or not variant.ratio_to_baseline:
                continue
            for metric in case.metrics:
                mine = variants[variant.name]["metrics"].get(metric.key)
                theirs = base_metrics.get(metric.key)
                if metric.ratio and mine and theirs and theirs["median"]:
                    ratios.setdefault(variant.name, {})[metric.key] = mine["median"] / theirs["median"]
    # "Of limit": how close each variant gets to its limit (1.0 = at the limit), for
    # rates ratio / limit; for lower-is-better figures (latency, CPU) baseline / variant.
    of_limit: dict[str, dict[str, float]] = {}
    for variant in case.variants:
        limit = case.limit_of(variant)
        for key, ratio in ratios.get(variant.name, {}).items():
            metric = next(m for m in case.metrics if m.key == key)
            if limit is None or ratio <= 0:
                continue
            if metric.higher_is_better:
                of_limit.setdefault(variant.name, {})[key] = ratio / limit
            elif limit == 1.0:
                of_limit.setdefault(variant.name, {})[key] = 1 / ratio
    targets = []
    for target in case.targets:
        if target.absolute:
            observed = variants.get(target.variant, {}).get("metrics", {}).get(target.metric, {}).get("median")
        else:
            observed = ratios.get(target.variant, {}).get(target.metric)
        targets.append({
            "variant": target.variant, "metric": target.metric, "target": target.describe(),
            "observed": observed, "met": target.check(observed),
        })
    comparisons = []
    for comparison in case.comparisons:
        for key in comparison.metrics:
            metric = next((m for m in case.metrics if m.key == key), None)
            mine = variants.get(comparison.variant, {}).get("metrics", {}).get(key, {}).get("median")
            theirs = variants.get(comparison.peer, {}).get("metrics", {}).get(key, {}).get("median")
            comparisons.append({
                "variant": comparison.variant, "peer": comparison.peer, "metric": key,
                "higher_is_better": metric.higher_is_better if metric else True,
                "lightbus_sync": mine, "peer_value": theirs,
                "ratio": mine / theirs if mine is not None and theirs else None,
                "peer_skipped": variants.get(comparison.peer, {}).get("skipped", ""),
            })
    result = {
        "title": case.title,
        "description": case.description,
        "reps": reps,
        "parameters": case.parameters,
        "baseline": base.name if base else None,
        "variants": variants,
        "ratios": ratios,
        "of_limit": of_limit,
        "targets": targets,
        "comparisons": comparisons,
        "errors": errors,
        "seconds": round(time.monotonic() - started, 1),
    }
    result["notes"] = case.summarize(ctx, result) if case.summarize else []
    background = [r["background_cpu_pct"] for runs in raw.values() for r in runs]
    if background and max(background) >= BUSY_MACHINE_PCT:
        result["notes"].append(
            f"WARNING: other processes used up to {max(background):.0f}% of a core "
            f"(median {statistics.median(background):.0f}%) during this case; its figures are disturbed"
        )
    result["extra"] = ctx.scratch.pop("extra", {})
    return result


def _variant_reps(variant: Variant, ctx: Context, case_reps: int) -> int:
    own = variant.quick_reps if ctx.quick else variant.reps
    return case_reps if own is None else min(own, case_reps)


def format_table(cases: list[Case], results: dict[str, dict]) -> str:
    """One row per (case, variant, metric): median, min, max, ratio, of limit, target."""
    header = ("case", "variant", "metric", "median", "min", "max", "ratio", "of limit", "target")
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for case in cases:
        result = results.get(case.name)
        if result is None:
            continue
        targets = {(t["variant"], t["metric"]): t for t in result["targets"]}
        first = True
        for variant in case.variants:
            data = result["variants"][variant.name]["metrics"]
            skipped = result["variants"][variant.name].get("skipped")
            if skipped or not data:
                rows.append((case.name if first else "", variant.name, "(not run)", "-", "-", "-", "", "",
                             "see below" if skipped else "failed: see the ERROR lines"))
                if skipped:
                    notes.append(f"{case.name}: {variant.name}: {skipped}")
                first = False
                continue
            for metric in case.metrics:
                if metric.key not in data:
                    continue
                s = data[metric.key]
                ratio = result["ratios"].get(variant.name, {}).get(metric.key)
                if variant.baseline and metric.ratio and result["ratios"]:
                    ratio_text = "(base)"
                else:
                    ratio_text = f"{ratio:.2f}x" if ratio is not None else ""
                limit = result.get("of_limit", {}).get(variant.name, {}).get(metric.key)
                limit_text = f"{limit:.2f}" if limit is not None else ""
                target = targets.get((variant.name, metric.key))
                target_text = ""
                if target is not None:
                    verdict = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
                    target_text = f"{target['target']}: {verdict}"
                rows.append((
                    case.name if first else "",
                    variant.name,
                    f"{metric.label} [{metric.unit}]",
                    metric.format(s["median"]),
                    metric.format(s["min"]),
                    metric.format(s["max"]),
                    ratio_text,
                    limit_text,
                    target_text,
                ))
                first = False
        for note in result.get("notes", []):
            notes.append(f"{case.name}: {note}")
        for error in result.get("errors", []):
            notes.append(f"{case.name}: ERROR {error}")
        rows.append(("",) * len(header))
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    numeric = {3, 4, 5, 6, 7}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows[:-1]]
    versus = format_comparisons(cases, results)
    if versus:
        out += ["", versus]
    if notes:
        out.append("")
        out += notes
    return "\n".join(out)


def format_comparisons(cases: list[Case], results: dict[str, dict]) -> str:
    """The "lightbus_sync vs peers" table: per comparison and metric, both medians of
    this run and their ratio (lightbus_sync / peer); '' when no case has comparisons."""
    header = ("case", "metric", "lightbus_sync variant", "peer variant", "lightbus_sync", "peer",
              "ratio", "")
    rows: list[tuple[str, ...]] = []
    for case in cases:
        result = results.get(case.name)
        if result is None or not result.get("comparisons"):
            continue
        metrics = {m.key: m for m in case.metrics}
        first = True
        not_run = set()
        for c in result["comparisons"]:
            if c["peer_skipped"] or c["peer_value"] is None:
                if (c["variant"], c["peer"]) not in not_run:
                    not_run.add((c["variant"], c["peer"]))
                    rows.append((case.name if first else "", "-", c["variant"], c["peer"], "", "-", "",
                                 "peer not run (see its row above)"))
                    first = False
                continue
            metric = metrics.get(c["metric"])
            fmt = metric.format if metric else (lambda v: "-" if v is None else f"{v:,.1f}")
            label = f"{metric.label} [{metric.unit}]" if metric else c["metric"]
            if c["ratio"] is None:
                verdict, ratio = "n/a", ""
            else:
                ratio = f"{c['ratio']:.2f}x"
                better = (c["ratio"] > 1) == c["higher_is_better"]
                factor = c["ratio"] if c["ratio"] >= 1 else 1 / c["ratio"]
                if factor < 1.1:
                    verdict = "about the same"
                else:
                    if c["metric"].startswith("cpu"):
                        word = "less CPU" if better else "more CPU"
                    elif c["higher_is_better"]:
                        word = "faster" if better else "slower"
                    else:
                        word = "lower" if better else "higher"
                    verdict = f"lightbus_sync: {factor:.1f}x {word}"
            rows.append((case.name if first else "", label, c["variant"], c["peer"], fmt(c["lightbus_sync"]),
                         fmt(c["peer_value"]), ratio, verdict))
            first = False
        rows.append(("",) * len(header))
    if not rows:
        return ""
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    numeric = {4, 5, 6}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    title = "lightbus_sync vs peers: medians of this run, ratio = lightbus_sync / peer"
    out = [title, line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows[:-1]]
    return "\n".join(out)
