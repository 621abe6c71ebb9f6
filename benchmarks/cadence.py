"""Automatic cadence: does the ranked batch last until the next model, and how far behind is
the model, with simulated annotators at two paces, auto against fixed settings?

An event simulation in simulated time (no model is trained): annotators label one item each,
at exponential intervals whose mean gives the team's pace; one worker runs rounds whose
duration grows with the labels they train on (``--round-base`` seconds plus
``--round-per-label`` seconds a label). A round is queued, as in ``labeling.rounds``, once the
labels since the last finished round read them reach the trigger; it reads the labels when it
starts and, when it finishes, puts its batch at the head of the queue. Fixed settings: the
defaults (batch 50, retrain every 50 labels). Auto: the plan of
:func:`activelabel.pace.plan_cadence` from the pace measured by
:func:`activelabel.pace.team_pace` over the label times and the last rounds' durations
(:func:`activelabel.pace.round_seconds`), exactly what a round records.

Reported per pace and setting: rounds, how many rounds ended with their ranked batch used up
while the next round was still training (the queue ran dry), the labels handed out from an
empty batch while a round ran, and the model lag (labels given that the active model has not
seen) at each label: max and p95.

    python benchmarks/cadence.py --minutes 120 --out benchmarks/out/cadence.json
"""

from __future__ import annotations

import argparse
import heapq
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from activelabel.pace import plan_cadence, round_seconds, team_pace

FIXED_BATCH = 50
FIXED_RETRAIN = 50


@dataclass
class Outcome:
    pace: float
    setting: str
    rounds: int
    labels: int
    median_batch: float
    dry_rounds: int  # rounds during which the ranked batch ran out
    dry_labels: int  # labels handed out from an empty batch while a round ran
    lag_max: int
    lag_p95: float
    max_model_lag: int


def run(pace: float, auto: bool, *, minutes: float, annotators: int, base_s: float,
        per_label_s: float, max_model_lag: int, seed: int) -> Outcome:
    rng = np.random.default_rng(seed)
    end = minutes * 60.0
    mean_gap = 60.0 * annotators / pace  # seconds between one annotator's labels
    events: list[tuple[float, int]] = [(float(rng.exponential(mean_gap)), a)
                                       for a in range(annotators)]
    heapq.heapify(events)
    times: list[float] = []
    who: list[int] = []
    durations: list[float] = []
    batches: list[int] = []
    head = 0  # ranked items left in the active batch
    labels = 0
    model_read = 0  # labels the active model was trained on
    finished_read = 0  # labels the last finished round read
    trigger = FIXED_RETRAIN if not auto else min(FIXED_RETRAIN, max_model_lag)
    running: tuple[float, int, int, int] | None = None  # (ends at, read, batch, trigger)
    dry_rounds = dry_labels = 0
    dry_now = False
    lags: list[int] = []

    def start(now: float) -> tuple[float, int, int, int]:
        if auto:
            p = team_pace(np.asarray(times), np.asarray(who), now)
            plan = plan_cadence(p.labels_per_minute, round_seconds(durations),
                                max_model_lag=max_model_lag, default_batch=FIXED_BATCH)
            batch, after = plan.batch_size, plan.retrain_after
        else:
            batch, after = FIXED_BATCH, FIXED_RETRAIN
        seconds = base_s + per_label_s * labels
        durations.append(seconds)
        return now + seconds, labels, batch, after

    running = start(0.0)  # the cold start
    while True:
        t_label, annotator = events[0]
        if running is not None and running[0] <= t_label:
            now, read, batch, after = running
            head, model_read, finished_read, trigger = batch, read, read, after
            batches.append(batch)
            dry_rounds += dry_now
            dry_now = False
            running = None
            if labels - finished_read >= trigger:
                running = start(now)
            continue
        if t_label > end:
            break
        heapq.heapreplace(events, (t_label + float(rng.exponential(mean_gap)), annotator))
        if head > 0:
            head -= 1
        elif running is not None:
            dry_labels += 1
            dry_now = True
        labels += 1
        times.append(t_label)
        who.append(annotator)
        lags.append(labels - model_read)
        if running is None and labels - finished_read >= trigger:
            running = start(t_label)
    lag = np.asarray(lags or [0])
    return Outcome(pace, "auto" if auto else f"fixed {FIXED_BATCH}/{FIXED_RETRAIN}",
                   len(batches), labels, float(np.median(batches)) if batches else 0.0,
                   dry_rounds, dry_labels, int(lag.max()), float(np.percentile(lag, 95)),
                   max_model_lag)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paces", default="10,60", help="team labels per minute")
    parser.add_argument("--minutes", type=float, default=120.0, help="simulated labeling time")
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--round-base", type=float, default=20.0,
                        help="seconds of a round with no labels")
    parser.add_argument("--round-per-label", type=float, default=0.03,
                        help="seconds a round spends per training label")
    parser.add_argument("--max-model-lag", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = [run(float(p), auto, minutes=args.minutes, annotators=args.annotators,
                base_s=args.round_base, per_label_s=args.round_per_label,
                max_model_lag=args.max_model_lag, seed=args.seed)
            for p in args.paces.split(",") for auto in (False, True)]
    header = ("pace/min", "setting", "rounds", "labels", "median batch", "rounds run dry",
              "labels from an empty batch", "lag max", "lag p95")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(f"{r.pace:g} | {r.setting} | {r.rounds} | {r.labels} | {r.median_batch:.0f} | "
              f"{r.dry_rounds} | {r.dry_labels} ({r.dry_labels / max(r.labels, 1):.0%}) | "
              f"{r.lag_max} | {r.lag_p95:.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"config": vars(args) | {"out": str(args.out)},
                                        "rows": [asdict(r) for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
