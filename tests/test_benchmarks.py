"""The benchmark scripts run end to end at a small size and report what they promise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.slow


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_query_speed_runs_every_strategy_and_the_numpy_bound(tmp_path: Path) -> None:
    out = tmp_path / "qs.json"
    done = run(
        "query_speed.py", "--sizes", "2000", "--no-peers", "--repeats", "1", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    names = {(r["library"], r["label"]) for r in rows}
    for strategy in ("random", "margin", "kcenter", "kmeans", "typiclust", "density",
                     "cluster_margin", "badge"):
        assert ("activelabel", strategy) in names
    assert any(r["library"] == "numpy" for r in rows)
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]


def test_label_efficiency_reports_labels_to_target_and_ratio(tmp_path: Path) -> None:
    out = tmp_path / "le.json"
    done = run(
        "label_efficiency.py",
        "--datasets",
        "wine",
        "--strategies",
        "random,margin",
        "--repeats",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "ratio to random" in done.stdout
    summary = {
        row["strategy"]: row for row in json.loads(out.read_text())["datasets"]["wine"]["summary"]
    }
    assert summary["random"]["ratio_to_random"] == 1.0
    assert summary["margin"]["labels_to_target"] is not None


def test_request_cpu_reports_cpu_per_labeling_cycle() -> None:
    done = run("request_cpu.py", "--seconds", "1", "--repeats", "1", "--items", "2000",
               "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert "CPU ms/cycle" in done.stdout
    assert "median CPU" in done.stdout


def test_cadence_reports_auto_against_fixed(tmp_path: Path) -> None:
    out = tmp_path / "cadence.json"
    done = run("cadence.py", "--minutes", "30", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = {(r["pace"], r["setting"]): r for r in json.loads(out.read_text())["rows"]}
    fast_fixed, fast_auto = rows[(60.0, "fixed 50/50")], rows[(60.0, "auto")]
    assert fast_auto["dry_labels"] < fast_fixed["dry_labels"] / 10
    assert all(r["lag_max"] <= r["max_model_lag"] for r in rows.values())


def test_soak_kills_server_worker_and_database_and_loses_nothing() -> None:
    done = run("soak.py", "--minutes", "1", "--annotators", "6", "--items", "600",
               "--kill-every", "6", "--db-down", "2", "--think-ms", "200,600")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| lost | doubled |" in done.stdout
    for event in ("server killed", "worker killed", "database crashed"):
        assert event in done.stdout, done.stdout


def test_spans_reports_f1_per_strategy_and_round_time(tmp_path: Path) -> None:
    data = tmp_path / "toy.jsonl"
    names = ["Anna", "Boris", "Chen", "Dara", "Emil", "Farah"]
    with data.open("w") as out:
        for i in range(80):
            name = names[i % 6]
            text = f"yesterday {name} called" if i % 2 else "it rained"
            spans = [{"start": 10, "end": 10 + len(name), "label": "person"}] if i % 2 else []
            out.write(json.dumps({"text": text, "spans": spans,
                                  "split": "test" if i >= 60 else "train"}) + "\n")
    report = tmp_path / "spans.json"
    done = run("spans.py", "--data", str(data), "--strategies", "random,diverse_token_entropy",
               "--seed-size", "10", "--batch-size", "10", "--round-pool", "60",
               "--round-labeled", "20", "--out", str(report))
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert set(result["simulation"]["curves"]) == {"random", "diverse_token_entropy"}
    assert {r["strategy"] for r in result["round"]} == {"random", "diverse_token_entropy"}
    assert "reaches random's full F1 at" in done.stdout


def test_spans_reads_an_iob_corpus_and_says_how_to_get_hironsan() -> None:
    import importlib.util

    module = _bench_module("spans")
    corpus = ("東京\tX\tB-LOC\n都\tX\tI-LOC\nで\tX\tO\n\u3000\tX\tO\n山田\tX\tI-PSN\n\n"
              "5\tX\tB-DAT\n月\tX\tI-DAT\n\n")
    rows = module.iob_rows(corpus, 1, "toy")
    assert [r["split"] for r in rows] == ["train", "test"]
    first = rows[0]
    assert first["tokens"] == ["東京", "都", "で", "山田"]  # the full-width space left out
    assert [(first["text"][s["start"]:s["end"]], s["label"]) for s in first["spans"]] == [
        ("東京 都", "LOC"), ("山田", "PSN")]  # an I- tag after O starts a span
    assert [(rows[1]["text"][s["start"]:s["end"]], s["label"]) for s in rows[1]["spans"]] == [
        ("5 月", "DAT")]
    if importlib.util.find_spec("hironsan") is None:
        done = run("spans.py", "--hironsan", "--skip-curves")
        assert done.returncode != 0
        assert "pip install hironsancorpus" in done.stderr


def _bench_module(name: str) -> Any:
    """``benchmarks/<name>.py`` imported as a module (the scripts are no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _label_share() -> Any:
    return _bench_module("label_share")


def test_label_share_large_pool_rule_keeps_the_budget_within_a_fifth_of_the_pool() -> None:
    ls = _label_share()
    got = {name: ls.large_pool_spec(ls.lc.SPECS[name], rows) for name, rows in
           [("clinc150", 23_700), ("ag_news", 7_600), ("sms_spam", 5_574),
            ("wnut17_type", 2_043), ("digits", 1_797)]}
    assert {n: (s.seed_size, s.batch_size, s.budget) for n, s in got.items()} == {
        "clinc150": (100, 200, 3000), "ag_news": (100, 100, 1000), "sms_spam": (50, 50, 750),
        "wnut17_type": (25, 25, 275), "digits": (25, 25, 250)}
    for name, s in got.items():
        rows = {"clinc150": 23_700, "ag_news": 7_600, "sms_spam": 5_574,
                "wnut17_type": 2_043, "digits": 1_797}[name]
        assert s.budget <= 0.2 * ls.pool_size(rows)
        assert s.max_rows is None
    assert ls.setup_spec("A", "clinc150", 23_700) == ls.lc.SPECS["clinc150"]


def test_label_share_setup_c_is_simulates_defaults_and_bad_flags_are_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    ls = _label_share()
    c = ls.setup_spec("C", "clinc150", 23_700)
    assert (c.seed_size, c.batch_size, c.budget, c.max_rows) == (20, 10, 300, None)
    for flags, said in ((["--setups", "A,D"], "unknown setup ['D']"),
                        (["--min-per-class", "0"], "--min-per-class must be >= 1"),
                        (["--setups", "A,C", "--datasets", "clinc150_30"],
                         "clinc150_30 run in setup C only"),
                        (["--setup-c", "20,10"], "expected SEED,BATCH,BUDGET"),
                        (["--setup-c", "30,10,20"], "the budget >= the seed"),
                        (["--model-params", "[1]"], "expected a JSON object")):
        with pytest.raises(SystemExit) as exited:
            ls.main([*flags, "--table-only"])
        assert said in f"{exited.value}{capsys.readouterr().err}"


def test_label_share_own_strategies_pick_k_distinct_pool_items() -> None:
    import numpy as np

    ls = _label_share()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=300)
    emb = rng.normal(size=(300, 8)).astype(np.float32)
    for cls in ls.BENCHMARK_STRATEGIES:
        picked = cls().query(12, probs=probs, embeddings=emb, labeled_embeddings=emb[:5],
                             random_state=1).indices
        assert len(set(picked.tolist())) == 12, cls.name
        assert picked.min() >= 0
        assert picked.max() < 300
    # info_gain: after a pick, an item in the same direction is worth less than before
    X = np.eye(8)[rng.integers(0, 8, size=300)] + 0.01 * rng.normal(size=(300, 8))
    flat = np.full((300, 3), 1 / 3)
    picked = ls.InfoGain().query(8, probs=flat, embeddings=X, random_state=0).indices
    assert sorted(int(np.argmax(np.abs(X[i]))) for i in picked) == list(range(8))
    # cal: the picks are the items whose probabilities differ most from their labeled
    # neighbours' (the model's probabilities there, or their labels)
    lab = emb[:20]
    own = np.tile([0.9, 0.05, 0.05], (300, 1))
    own[[40, 70, 99]] = [0.05, 0.9, 0.05]  # unlike every labeled item, though confident
    ls.LABELED.update(n=20, probs=np.tile([0.9, 0.05, 0.05], (20, 1)),
                      labels=np.zeros(20, dtype=np.intp))
    try:
        for cls in (ls.Contrastive, ls.ContrastiveLabels):
            picked = cls().query(3, probs=own, embeddings=emb, labeled_embeddings=lab,
                                 random_state=0).indices
            assert sorted(picked.tolist()) == [40, 70, 99], cls.name
    finally:
        ls.LABELED.clear()
    # smooth_margin: an uncertain item among confident neighbours ranks below an uncertain
    # cluster (ten near copies of one direction, each unsure)
    X = rng.normal(size=(300, 8))
    X[:10] = X[0] + 0.01 * rng.normal(size=(10, 8))
    sure = np.tile([0.98, 0.01, 0.01], (300, 1))
    sure[:10] = [0.4, 0.35, 0.25]
    sure[200] = [0.34, 0.33, 0.33]  # the most uncertain item, alone
    picked = ls.SmoothMargin(candidate_factor=1).query(5, probs=sure, embeddings=X,
                                                      random_state=0).indices
    assert set(picked.tolist()) < set(range(10))
    # softrank draws the most uncertain items most often, not only them
    scores = -np.abs(probs[:, 0] - probs[:, 1])
    firsts = [int(ls.softrank_order(scores, np.random.default_rng(i))[0]) for i in range(200)]
    top = int(np.argmax(scores))
    assert 0.05 < firsts.count(top) / 200 < 0.5
    assert len(set(firsts)) > 20


def test_label_share_interval_covers_the_repeats_spread(tmp_path: Path) -> None:
    import json

    ls = _label_share()
    labels = [20, 100, 180, 300]

    def curve(reach: int) -> list[list[float]]:
        """Random sampling's full-budget accuracy (0.9) from point ``reach`` on."""
        accs = [0.5, 0.6, 0.7, 0.7]
        accs[reach:] = [0.9] * (4 - reach)
        return [[n, a] for n, a in zip(labels, accs, strict=True)]

    for r, (early, late) in enumerate([(1, 2), (2, 2), (2, 2), (2, 3)]):
        (tmp_path / f"C_sms_spam_r{r}.json").write_text(json.dumps({
            "setup": "C", "dataset": "sms_spam", "curves": {
                "random": curve(3), "margin": curve(early), "entropy": curve(late)}}))
    text = ls.share_intervals(tmp_path, ["random", "margin", "entropy"], n_boot=400)
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| sms_spam |")}
    assert rows["margin"][2:] == ["4", "0.60", "0.60-0.60", "100%"]  # 0.9 by 180 in each
    share, interval, at_bar = rows["entropy"][3:]
    assert share == "1.00"  # the mean curve: 0.85 at 180 labels
    assert interval == "0.60-1.00"
    assert 15 < int(at_bar.rstrip("%")) < 50  # no late repeat drawn: (3/4)^4 of the draws


def test_label_share_refuses_to_mix_runs_of_other_flags_in_one_out_dir(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    ls = _label_share()
    monkeypatch.setattr(ls.lc, "DATA_DIR", shared_data)
    (tmp_path / "C_sms_spam_r0.json").write_text(json.dumps(
        {"curves": {}, "model_params": {"C": 3}, "seed_size": 20, "batch_size": 10,
         "budget": 300}))
    with pytest.raises(SystemExit, match="give these flags their own --out-dir"):
        ls.run_one("C", "sms_spam", 0, ["random"], tmp_path)
    # curves of an older default model (no model_version): refused too, not mixed in
    (tmp_path / "C_sms_spam_r0.json").write_text(json.dumps(
        {"curves": {"random": [[20, 0.9]]}, "model_params": {}, "seed_size": 20,
         "batch_size": 10, "budget": 300}))
    with pytest.raises(SystemExit, match="'model_version': 1"):
        ls.run_one("C", "sms_spam", 0, ["random", "auto"], tmp_path)
    # runs stored before --pseudo-label-mix are the library's equal split
    (tmp_path / "C_sms_spam_r0.json").write_text(json.dumps(
        {"curves": {"random": [[20, 0.9]]}, "model_params": {}, "seed_size": 20,
         "batch_size": 10, "budget": 300, "model_version": ls.MODEL_VERSION}))
    with pytest.raises(SystemExit, match="'pseudo_label_mix': 'equal'"):
        ls.run_one("C", "sms_spam", 0, ["random", "auto"], tmp_path, mix="pool")


def test_label_share_pseudo_label_mixes_split_the_share_by_the_class_mix() -> None:
    import numpy as np

    from activelabel.models import Classifier

    ls = _label_share()
    clf = Classifier(pseudo_labels=1)
    clf.classes_ = ["a", "b", "c"]
    codes = np.repeat([0, 1, 2], [6, 3, 1])  # ten labels
    predicted = np.repeat([0, 1, 2], [70, 20, 10])  # the pool's predicted mix
    want = {"equal": [4, 4, 4], "pool": [7, 2, 1], "labels": [6, 3, 1], "min": [4, 2, 1]}
    try:
        for mix, counts in want.items():
            ls.pseudo_label_mix(mix)
            assert clf._pseudo_label_counts(codes, predicted).tolist() == counts, mix
    finally:
        ls.pseudo_label_mix("equal")
    assert Classifier._pseudo_label_counts is ls._EQUAL_COUNTS
    ls.main(["--pseudo-label-mix", "pool", "--repeats", "0", "--datasets", "sms_spam"])
    assert Classifier._pseudo_label_counts is ls._EQUAL_COUNTS  # main() leaves no patch


def test_label_share_held_out_sets_are_made_from_the_shared_data(
        shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    ls = _label_share()
    monkeypatch.setattr(ls.lc, "DATA_DIR", shared_data)
    pair = ls.load_set("ag_news_business_scitech")
    assert pair.classes == ("Business", "Sci/Tech")
    assert np.bincount(pair.y).tolist() == [1900, 1900]
    thirty = ls.load_set("clinc150_30")
    assert len(thirty.classes) == 30
    assert "oos" not in thirty.classes
    assert len(thirty) == 30 * 150
    assert ls.load_set("clinc150_30").classes == thirty.classes  # the same draw every time
    entity = ls.load_set("wnut17_entity")
    assert len(entity) == 5690
    assert 0.4 < entity.y.mean() < 0.5  # 45% of the sentences hold an entity
    seventy_seven = ls.load_set("clinc150_77")
    assert len(seventy_seven.classes) == 77
    assert "oos" not in seventy_seven.classes
    three = ls.load_set("ag_news_no_sports")
    assert three.classes == ("Business", "Sci/Tech", "World")
    assert np.bincount(three.y).tolist() == [1900, 1900, 1900]


def test_label_share_balanced_candidates_cover_every_predicted_class() -> None:
    import numpy as np

    from activelabel.strategies.hybrid import ClusterMargin

    ls = _label_share()
    n = 90
    pred = np.repeat([0, 1, 2], n // 3)
    gap = np.where(pred == 0, 0.01, np.where(pred == 1, 0.3, 0.5))  # class 0 most confused
    p = np.full((n, 3), 0.0)
    p[np.arange(n), pred] = 0.5 + gap / 2
    p[np.arange(n), (pred + 1) % 3] = 0.5 - gap / 2
    X = np.random.default_rng(0).normal(size=(n, 4))
    plain = ClusterMargin(candidate_factor=2).query(6, probs=p, embeddings=X, random_state=0)
    balanced = ls.ClusterMarginBalanced(candidate_factor=2).query(
        6, probs=p, embeddings=X, random_state=0)
    assert set(pred[plain.indices]) == {0}
    assert set(pred[balanced.indices]) == {0, 1, 2}


def test_label_share_records_each_runs_environment_and_a_table_of_several_says_so(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from activelabel.features import TextFeaturizer

    ls = _label_share()
    monkeypatch.setattr(ls.lc, "DATA_DIR", shared_data)
    monkeypatch.setattr(ls, "set_features", lambda ds, *a: TextFeaturizer(
        field=ds.text_field, sentence_weight=None).fit_transform(ds.records))
    ls.run_one("C", "sms_spam", 0, ["random"], tmp_path, setup_c=(20, 10, 40))
    run = json.loads((tmp_path / "C_sms_spam_r0.json").read_text())
    env = run["environment"]["random"]
    assert env["numpy"]
    assert env["scikit-learn"]
    assert env["python"]
    assert "Note:" not in ls.table(tmp_path, ["random"])  # one environment
    older = dict(run, repeat=1)
    older.pop("environment")  # stored before environments were recorded
    (tmp_path / "C_sms_spam_r1.json").write_text(json.dumps(older))
    note = ls.table(tmp_path, ["random"]).splitlines()[-1]
    assert note.startswith("Note: these runs come from 2 environments")
    assert "unknown" in note
    assert env["scikit-learn"] in note
    # the interval table over the same runs says so too (a second loop: random's own curves)
    for path in tmp_path.glob("C_sms_spam_r*.json"):
        stored = json.loads(path.read_text())
        stored["curves"]["margin"] = stored["curves"]["random"]
        path.write_text(json.dumps(stored))
    intervals = ls.share_intervals(tmp_path, ["random", "margin"], n_boot=20).splitlines()
    assert intervals[-3].startswith("| sms_spam | margin | 2 |")
    assert intervals[-1] == note


def test_label_share_leaves_out_auto_runs_of_the_old_schedule(tmp_path: Path) -> None:
    ls = _label_share()
    curve = [[100, 0.5], [300, 0.8]]
    old = {"setup": "A", "dataset": "digits", "repeat": 0, "rows": 1797, "pool": 1257,
           "seed_size": 50, "batch_size": 50, "budget": 300,
           "curves": {"random": curve, "auto": [[100, 0.5], [300, 0.2]]}}
    assert ls.current(old, "random")
    assert not ls.current(old, "auto")  # stored before the schedule's version
    (tmp_path / "A_digits_r0.json").write_text(json.dumps(old))
    row = next(line for line in ls.table(tmp_path, ["random", "auto"]).splitlines()
               if line.startswith("| digits"))
    assert row.endswith("| 0.800 |  |")  # random's full-budget accuracy, no auto cell
    new = dict(old, versions={"auto": ls.VERSIONS["auto"]})
    assert ls.current(new, "auto")


def test_text_features_reports_what_character_ngrams_cost(shared_data: Path) -> None:
    done = run("text_features.py", "--sizes", "300", "--data",
               str(shared_data / "sms_spam.jsonl"))
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| 300 ")]
    assert [r[2].strip() for r in rows] == ["words", "words+chars"]
    words, both = (float(r[4]) for r in rows)  # non-zeros per row
    assert both > 3 * words


def test_review_latency_times_the_read_and_the_workers_check(shared_data: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "review_latency.py"), "--items", "400", "--labels", "60",
         "--repeats", "2"], capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ACTIVELABEL_SHARED_DATA": str(shared_data)})
    assert done.returncode == 0, done.stderr
    [row] = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| 400 ")]
    read, check = row[3].strip(), row[4].strip()
    assert float(read.split()[0]) < 5
    assert check != "-"  # the queue asked for a check, and it ran as a worker runs it
    assert float(row[5].split()[0]) >= 0  # the wait of a round asked during the check


def test_label_share_held_out_property_sets(shared_data: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sets asked about a property of a text, not its topic: clinc150's out-of-scope
    queries against a seeded draw of twice as many in-scope ones, and wnut17's sentences that
    name a person."""
    import json

    import numpy as np

    ls = _label_share()
    monkeypatch.setattr(ls.lc, "DATA_DIR", shared_data)
    oos = ls.load_set("clinc150_oos")
    assert oos.classes == ("in scope", "out of scope")
    assert (len(oos.y), int(np.sum(oos.y))) == (3_600, 1_200)
    assert oos.records == ls.load_set("clinc150_oos").records  # the same draw each time
    person = ls.load_set("wnut17_person")
    rows = [json.loads(x) for x in (ls.lc.DATA_DIR / "wnut17.jsonl").read_text().splitlines()]
    assert person.y.tolist() == [int(any(s["label"] == "person" for s in r["spans"]))
                                 for r in rows]
