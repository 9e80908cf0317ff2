"""Non-LM baselines: what a checkpoint's test accuracy has to beat, fitted on the train split only.

Every baseline is a plain function ``(train, test) -> pd.Series`` of predicted answers (option
texts) indexed like ``test``; ``None`` where it abstains (a problem without a closed option set, or
a family it does not model). Options come from :func:`tasks.evaluate.loglik.problem_options` with
the train split's label sets, so baselines and log-likelihood scoring answer the same questions.

* :func:`chance`: a seeded uniform pick among the options (its expectation is ``mean(1/n)``).
* :func:`majority`: multiple choice -> the most frequent gold *position* of the family's train
  problems (options are dealt to positions, so this is what a position bias would score); other
  closed answers -> the most frequent train *label* of the family and answer type.
* :func:`cell_type_logreg`: logistic regression on the cell sentence, each gene of
  ``<cell>...</cell>`` weighted ``1/rank`` (rank 1 = highest expression), trained on the train
  cells' types; answers the offered option with the highest probability.
* :func:`protein_kmer_logreg`: logistic regression on the sequence's k-mer (default dipeptide)
  composition, trained on the train proteins' families; best offered option.
* :func:`perturb_gene_rate`: PerturbQA (``perturb_de``, ``perturb_dir``): the share of positive
  train pairs of the downstream gene in the same cell line (from the problems' evidence JSON:
  cell_line, pert, gene, label); positive when above one half, falling back to the cell line's and
  then the family's training majority for genes without training pairs (or at exactly one half).
  The test split is balanced per gene by construction (``tasks.problems.perturb.sample_test``), so
  expect about 0.5: a gene-level prior cannot rank pairs within a gene.
* :func:`tf_class_kmer`: ``tf_binding``: the window's k-mers (both strands) -> the TF class of its
  planted site, and the TF name's letters -> its class (``FOXP2`` reads as a forkhead factor),
  both logistic regressions fitted on the train problems (their answers' and distractors' classes
  from the evidence JSON); the option whose classes the window's class probabilities favour most.
  Test TFs are never train answers (entity split), so a class is the only thing that carries over.
* :func:`phenotype_name_overlap`: ``rare_disease``: the option whose disease name shares the most
  words with the patient's phenotype names (``Achromatopsia 3`` for a patient with
  ``Achromatopsia``; ties broken by a seeded pick). It reads the prompt alone and fits nothing: it
  shows how much of the answer the prompt's words give away to a reader that matches them, where
  the other baselines need the train split.

:func:`baseline_table` scores them per family with Wilson intervals.

>>> dipeptides("MKV")
{'MK': 0.5, 'KV': 0.5}
>>> cell_genes("Here: <cell>CD3D, CD8A,NKG7</cell>?")
['CD3D', 'CD8A', 'NKG7']
>>> sorted(kmers("ACGTA", (3,)).items())
[('ACG', 2), ('CGT', 2), ('GTA', 1), ('TAC', 1)]
>>> sorted(name_words("Hair defect with photosensitivity, type 2 (OMIM:234030)"))
['defect', 'hair', 'photosensitivity']
"""
from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from Bio.Seq import reverse_complement

from tasks.evaluate.loglik import Options, label_sets, problem_options
from tasks.evaluate.stats import wilson
from tasks.verifiers.tf_binding import window_of

Baseline = Callable[[pd.DataFrame, pd.DataFrame], pd.Series]
PERTURB = ("perturb_de", "perturb_dir")
_CELL = re.compile(r"<cell>(.*?)</cell>", re.S)
_PROTEIN = re.compile(r"<protein>(.*?)</protein>", re.S)
_PHENOTYPE = re.compile(r"^- (.+?) \(HP:\d+\)$", re.M)  # the prompt's "- Name (HP:0000001)" lines
# words of many disease and phenotype names, which tell one option from another by chance; the set
# (and the 4-letter minimum) was chosen on the train split: 0.467 there (ties split evenly), 0.409
# keeping every word
_NAME_STOPWORDS = frozenset({"abnormal", "abnormality", "autosomal", "disease", "dominant", "inheritance",
                             "linked", "recessive", "syndrome", "type", "with"})


def cell_genes(prompt: str) -> list[str]:
    """Genes of the first ``<cell>...</cell>`` sentence, in rank order."""
    m = _CELL.search(prompt)
    return [g for g in re.split(r"\s*,\s*", m.group(1).strip()) if g] if m else []


def dipeptides(sequence: str, k: int = 2) -> dict[str, float]:
    """k-mer composition: each k-mer's share of the sequence's k-mers."""
    counts = Counter(sequence[i:i + k] for i in range(len(sequence) - k + 1))
    total = sum(counts.values())
    return {kmer: n / total for kmer, n in counts.items()} if total else {}


def options_of(train: pd.DataFrame, test: pd.DataFrame) -> list[Options]:
    """Each test problem's options, label sets taken from ``train``."""
    labels = label_sets(train)
    return [problem_options(r, labels) for r in test.to_dict("records")]


def _series(test: pd.DataFrame, values: list) -> pd.Series:
    return pd.Series(values, index=test.index, dtype=object)


def chance(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> pd.Series:
    """A uniform pick among each problem's options (seeded)."""
    rng = np.random.default_rng(seed)
    return _series(test, [o.options[int(rng.integers(len(o.options)))] if o.scorable else None
                          for o in options_of(train, test)])


def majority(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """Most frequent train gold position (multiple choice) or train label (other closed answers)."""
    positions: dict[str, Counter] = {}
    answers: dict[tuple[str, str], Counter] = {}
    for r in train.to_dict("records"):
        if r["answer_type"] == "multiple_choice":
            choices = list(r["choices"])
            if r["answer"] in choices:
                positions.setdefault(r["family"], Counter())[choices.index(r["answer"])] += 1
        else:
            answers.setdefault((r["family"], r["answer_type"]), Counter())[r["answer"]] += 1
    out = []
    for r, o in zip(test.to_dict("records"), options_of(train, test)):
        pick = None
        if o.scorable and r["answer_type"] == "multiple_choice":
            seen = positions.get(r["family"])
            pos = min(min(seen.most_common(), key=lambda t: (-t[1], t[0]))[0], len(o.options) - 1) \
                if seen else 0
            pick = o.options[pos]
        elif o.scorable:
            seen = answers.get((r["family"], r["answer_type"]), Counter())
            offered = [(n, a) for a, n in seen.items() if a in o.options]
            pick = min(offered, key=lambda t: (-t[0], t[1]))[1] if offered else o.options[0]
        out.append(pick)
    return _series(test, out)


def _best_option(classes: list[str], proba: np.ndarray, options: Options) -> str | None:
    if not options.scorable:
        return None
    where = {c: i for i, c in enumerate(classes)}
    scores = [proba[where[o]] if o in where else -1.0 for o in options.options]
    return options.options[int(np.argmax(scores))]


def _fit_predict(train_x: list[dict], train_y: list[str], test_x: list[dict],
                 test_options: list[Options], C: float, seed: int) -> list[str | None]:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if len(set(train_y)) < 2:  # nothing to learn: the one training class if offered, else abstain
        only = train_y[0] if train_y else None
        return [only if (o.scorable and only in o.options) else
                (o.options[0] if o.scorable else None) for o in test_options]
    model = make_pipeline(DictVectorizer(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    model.fit(train_x, train_y)
    classes = list(model.classes_)
    proba = model.predict_proba(test_x) if test_x else np.zeros((0, len(classes)))
    return [_best_option(classes, p, o) for p, o in zip(proba, test_options)]


def _only(df: pd.DataFrame, family: str) -> pd.DataFrame:
    return df[df["family"] == family]


def _family_predictions(test: pd.DataFrame, family: str, predicted: list,
                        out: pd.Series | None = None) -> pd.Series:
    """``predicted`` (one per ``family`` row of ``test``, in order) placed by position (an index
    with repeated labels is fine); None elsewhere."""
    out = _series(test, [None] * len(test)) if out is None else out
    values = out.to_numpy(dtype=object).copy()
    placed = np.empty(len(predicted), dtype=object)
    placed[:] = predicted
    values[np.flatnonzero((test["family"] == family).to_numpy())] = placed
    return pd.Series(values, index=test.index, dtype=object)


def _cell_type_of(row: Mapping) -> str | None:
    try:
        label = json.loads(row["evidence"]).get("cell_type")
    except (TypeError, ValueError):
        label = None
    if label is None and row["answer_type"] in ("label", "multiple_choice"):
        label = row["answer"]
    return label


def rank_features(genes: list[str]) -> dict[str, float]:
    """``{gene: 1/rank}``; a gene listed twice keeps its best rank.

    >>> rank_features(["CD3D", "CD8A", "CD3D"])
    {'CD3D': 1.0, 'CD8A': 0.5}
    """
    out: dict[str, float] = {}
    for rank, g in enumerate(genes, start=1):
        out.setdefault(g, 1.0 / rank)
    return out


def cell_type_logreg(train: pd.DataFrame, test: pd.DataFrame, C: float = 1.0,
                     seed: int = 0) -> pd.Series:
    """Cell type from the sentence's 1/rank gene weights (family ``cell_type`` only)."""
    tr = [r for r in _only(train, "cell_type").to_dict("records")
          if cell_genes(r["prompt"]) and _cell_type_of(r)]
    te = _only(test, "cell_type")
    predicted = _fit_predict([rank_features(cell_genes(r["prompt"])) for r in tr],
                             [_cell_type_of(r) for r in tr],
                             [rank_features(cell_genes(p)) for p in te["prompt"]],
                             options_of(train, te), C, seed)
    return _family_predictions(test, "cell_type", predicted)


def _sequence(prompt: str) -> str:
    m = _PROTEIN.search(prompt)
    return m.group(1).strip() if m else ""


def protein_kmer_logreg(train: pd.DataFrame, test: pd.DataFrame, k: int = 2, C: float = 1.0,
                        seed: int = 0) -> pd.Series:
    """Protein family from k-mer composition (family ``protein_family`` only)."""
    tr = [r for r in _only(train, "protein_family").to_dict("records") if _sequence(r["prompt"])]
    te = _only(test, "protein_family")
    predicted = _fit_predict([dipeptides(_sequence(r["prompt"]), k) for r in tr],
                             [r["answer"] for r in tr],
                             [dipeptides(_sequence(p), k) for p in te["prompt"]],
                             options_of(train, te), C, seed)
    return _family_predictions(test, "protein_family", predicted)


def _positive(answer: str) -> int:
    return int(answer in ("yes", "up"))


def perturb_gene_rate(train: pd.DataFrame, test: pd.DataFrame) -> pd.Series:
    """Per-gene training rate of positive pairs, per cell line (PerturbQA families only)."""
    out = _series(test, [None] * len(test))
    for family in PERTURB:
        tr, te = _only(train, family), _only(test, family)
        if not len(te):
            continue
        ev = [json.loads(e) for e in tr["evidence"]]
        pairs = pd.DataFrame({"line": [e["cell_line"] for e in ev], "gene": [e["gene"] for e in ev],
                              "y": [_positive(a) for a in tr["answer"]]})
        by_gene = pairs.groupby(["line", "gene"])["y"].mean().to_dict()
        by_line = pairs.groupby("line")["y"].mean().to_dict()
        overall = float(pairs["y"].mean()) if len(pairs) else 0.5
        picks = []
        for r, o in zip(te.to_dict("records"), options_of(train, te)):
            if not o.scorable:
                picks.append(None)
                continue
            e = json.loads(r["evidence"])
            rates = [by_gene.get((e["cell_line"], e["gene"])), by_line.get(e["cell_line"]), overall]
            rate = next((x for x in rates if x is not None and x != 0.5), 0.5)
            picks.append(o.options[0] if rate > 0.5 else o.options[1])  # options: (yes|up, no|down)
        out = _family_predictions(test, family, picks, out)
    return out


def kmers(sequence: str, sizes: tuple[int, ...] = (4, 5, 6)) -> Counter:
    """k-mer counts over both strands (a site may be planted either way round)."""
    strands = (sequence, reverse_complement(sequence))
    return Counter(s[i:i + k] for s in strands for k in sizes for i in range(len(s) - k + 1))


def _tf_classes(row: Mapping) -> dict[str, str]:
    """``{tf_name: tf_class}`` of a tf_binding problem's answer and distractors."""
    e = json.loads(row["evidence"])
    return {e["tf_name"]: e["tf_class"], **{d["tf_name"]: d["tf_class"] for d in e["distractors"]}}


def tf_class_kmer(train: pd.DataFrame, test: pd.DataFrame, C: float = 0.3,
                  seed: int = 0) -> pd.Series:
    """The option whose TF class the window's k-mers make likeliest (``tf_binding`` only)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    tr, te = _only(train, "tf_binding").to_dict("records"), _only(test, "tf_binding")
    names, windows = {}, []
    for r in tr:
        classes = _tf_classes(r)
        names.update(classes)
        if window := window_of(r["prompt"]):
            windows.append((kmers(window), classes[r["answer"]]))
    if not len(te) or len({c for _, c in windows}) < 2 or len(set(names.values())) < 2:
        return _family_predictions(test, "tf_binding", [None] * len(te))
    by_window = make_pipeline(DictVectorizer(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    by_window.fit([x for x, _ in windows], [c for _, c in windows])
    by_name = make_pipeline(CountVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
                            LogisticRegression(max_iter=2000, random_state=seed))
    by_name.fit(list(names), list(names.values()))
    # P(option) ~ sum over classes of P(class | name) * P(class | window), on the classes both know
    shared = [c for c in by_name.classes_ if c in set(by_window.classes_)]
    name_col = [list(by_name.classes_).index(c) for c in shared]
    window_col = [list(by_window.classes_).index(c) for c in shared]
    picks = []
    for r, o in zip(te.to_dict("records"), options_of(train, te)):
        window = window_of(r["prompt"])
        if not o.scorable or r["answer_type"] != "multiple_choice" or not window:
            picks.append(None)
            continue
        by_class = by_window.predict_proba([kmers(window)])[0][window_col]
        by_option = by_name.predict_proba(list(r["choices"]))[:, name_col] @ by_class
        picks.append(o.options[int(np.argmax(by_option))])
    return _family_predictions(test, "tf_binding", picks)


def name_words(name: str) -> set[str]:
    """Lower-case words of at least 4 letters, less :data:`_NAME_STOPWORDS` (ids and numbers drop)."""
    name = re.sub(r"\([A-Z]+:\d+\)", "", name)
    return {w for w in re.findall(r"[a-z]+", name.lower()) if len(w) >= 4} - _NAME_STOPWORDS


def phenotype_name_overlap(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0) -> pd.Series:
    """The disease whose name shares the most words with the patient's phenotypes (``rare_disease``
    only; ``train`` gives the options' label sets alone)."""
    rng = np.random.default_rng(seed)
    te = _only(test, "rare_disease")
    picks = []
    for r, o in zip(te.to_dict("records"), options_of(train, te)):
        if not o.scorable or r["answer_type"] != "multiple_choice":  # it reads the options' names
            picks.append(None)
            continue
        patient = set().union(*map(name_words, _PHENOTYPE.findall(r["prompt"])))
        shared = [len(name_words(c) & patient) for c in r["choices"]]
        best = np.flatnonzero(np.array(shared) == max(shared))
        picks.append(o.options[int(best[rng.integers(len(best))])])
    return _family_predictions(test, "rare_disease", picks)


BASELINES: dict[str, Baseline] = {
    "chance": chance, "majority": majority, "cell_type_logreg": cell_type_logreg,
    "protein_kmer_logreg": protein_kmer_logreg, "perturb_gene_rate": perturb_gene_rate,
    "tf_class_kmer": tf_class_kmer, "phenotype_name_overlap": phenotype_name_overlap,
}


def correctness(test: pd.DataFrame, predictions: pd.Series,
                options: list[Options] | None = None) -> pd.Series:
    """True/False per problem with a prediction (gold missing from the options counts wrong); None
    where the baseline abstained."""
    options = options if options is not None else [problem_options(r) for r in test.to_dict("records")]
    values = []
    for pred, o in zip(predictions, options):
        if pred is None:
            values.append(None)
        else:
            values.append(o.gold is not None and pred == o.options[o.gold])
    return pd.Series(values, index=test.index, dtype=object)


def baseline_table(problems: pd.DataFrame, baselines: Mapping[str, Baseline] | None = None,
                   by: tuple[str, ...] = ("family",)) -> pd.DataFrame:
    """Fit every baseline on the train split, score it on the test split: one row per group (by
    family, or e.g. ``("family", "answer_type")``) and baseline that answers there (n test
    problems, scored, accuracy, Wilson 95% low/high), plus ``not_scorable`` (open answers) and
    ``expected_chance`` (mean 1/n options over the scored problems)."""
    baselines = BASELINES if baselines is None else baselines
    problems = problems.reset_index(drop=True)
    train = problems[problems["split"] == "train"]
    test = problems[problems["split"] == "test"]
    opts = options_of(train, test)
    scorable = pd.Series([o.scorable for o in opts], index=test.index)
    inverse = pd.Series([1 / len(o.options) if o.scorable else np.nan for o in opts], index=test.index)
    rows = []
    for name, fn in baselines.items():
        correct = correctness(test, fn(train, test), opts)
        for key, idx in test.groupby(list(by), sort=True).groups.items():
            c = correct.loc[idx].dropna()
            if not len(c):
                continue
            k, n = int(c.astype(bool).sum()), len(c)
            low, high = wilson(k, n)
            rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))),
                         "baseline": name, "n_test": len(idx),
                         "not_scorable": int((~scorable.loc[idx]).sum()), "scored": n,
                         "expected_chance": float(inverse.loc[idx].mean()),
                         "accuracy": k / n, "low": low, "high": high})
    return pd.DataFrame(rows).sort_values([*by, "baseline"], kind="stable").reset_index(drop=True)
