"""The Prior: signed feature-importance scores in [-10, 10], with where they came from.

A prior is the one artefact that crosses from elicitation into training, so it carries
its provenance with it: which kind of source produced it (``llm``, ``expert``, ``oracle``
or ``random``), which model, prompt and strategy, and what it cost. Priors not elicited
from an LLM say so in ``source`` and in every file name the pipelines derive from it.

JSON is the lossless format and a generated one: it carries the same fingerprint and a
note saying so, and a JSON prior whose scores no longer match its fingerprint is refused.
YAML is the hand-editable one: a domain expert can change scores, and on import the
fingerprint tells whether anyone did, so an edited prior is tagged as such and never passes
for raw LLM output.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import yaml

from laat.jsonable import jsonable

# The one vocabulary of where a prior comes from (its ``source``): an LLM, or one of the
# non-LLM sources, which stay labelled as such. An LLM prior is elicited from a backend.
NonLLMSource = Literal["expert", "oracle", "random"]
PriorSource = Literal["llm", NonLLMSource]
LLMBackend = Literal["local", "openai"]
SOURCES: tuple[str, ...] = get_args(PriorSource)
NON_LLM_SOURCES: tuple[str, ...] = get_args(NonLLMSource)
LLM_BACKENDS: tuple[str, ...] = get_args(LLMBackend)
SCORE_MIN, SCORE_MAX = -10.0, 10.0

ORACLE_NOTE = ("ORACLE prior: logistic-regression coefficients fit on the FULL labelled dataset. "
               "It has seen the test labels: an upper bound for evaluation only, never a real prior.")
RANDOM_NOTE = "RANDOM prior: seeded uniform integers in [-10, 10]; a control with no knowledge."
# The one way to change a prior's scores by hand, quoted wherever a hand edit is refused.
HOW_TO_EDIT = "edit conf/base/priors/{dataset}.yml and run with prior_source=expert"
GENERATED_NOTE = ("Generated file, rewritten on every run; a hand edit here is detected (fingerprint) and "
                  "refused. To change scores, " + HOW_TO_EDIT + " (start from the .yml next to this file).")


class PriorError(ValueError):
    """A prior that is malformed or does not match the dataset; the message says what and where."""


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fingerprint(features: Sequence[str], mean: Sequence[float]) -> str:
    """Hash of the scores as exported, to detect hand edits on re-import."""
    canon = json.dumps([[f, round(float(m), 6)] for f, m in zip(features, mean)], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclass
class Prior:
    """Scores by encoded feature name.

    ``mean`` is the element-wise mean over samples, ``spread`` the standard deviation over
    samples (0 when there is only one), ``samples`` the individual score vectors when known.
    """

    features: list[str]
    mean: list[float]
    spread: list[float] | None = None
    source: str = "llm"
    provenance: dict[str, Any] = field(default_factory=dict)
    samples: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.features = [str(f) for f in self.features]
        self.mean = [float(v) for v in self.mean]
        if self.spread is None:
            self.spread = [0.0] * len(self.features)
        self.spread = [float(v) for v in self.spread]
        self.samples = [[float(v) for v in s] for s in self.samples]
        self.validate()

    # ---- checks -----------------------------------------------------------------------
    def validate(self) -> None:
        if self.source not in SOURCES:
            raise PriorError(f"prior source {self.source!r} is not one of {list(SOURCES)}")
        if not self.features:
            raise PriorError("prior has no features")
        dupes = sorted({f for f in self.features if self.features.count(f) > 1})
        if dupes:
            raise PriorError(f"prior lists features more than once: {dupes}")
        d = len(self.features)
        for name, vec in (("mean", self.mean), ("spread", self.spread)):
            if len(vec) != d:
                raise PriorError(f"prior {name} has {len(vec)} values for {d} features")
        for f, m in zip(self.features, self.mean):
            if not math.isfinite(m) or not SCORE_MIN <= m <= SCORE_MAX:
                raise PriorError(f"prior score for {f!r} is {m}, outside [{SCORE_MIN:g}, {SCORE_MAX:g}]")
        for f, s in zip(self.features, self.spread):
            if not math.isfinite(s) or s < 0:
                raise PriorError(f"prior spread for {f!r} is {s}; it must be a finite number >= 0")
        for i, s in enumerate(self.samples):
            if len(s) != d:
                raise PriorError(f"prior sample {i} has {len(s)} values for {d} features")

    def check_features(self, expected: Sequence[str], where: str = "dataset") -> None:
        """Raise if this prior's feature names differ from ``expected`` (order aside)."""
        missing = [f for f in expected if f not in set(self.features)]
        unknown = [f for f in self.features if f not in set(expected)]
        if missing or unknown:
            raise PriorError(f"prior ({self.source}) does not match the {where}'s encoded columns: "
                             f"missing {missing}, unknown {unknown}")

    def aligned(self, expected: Sequence[str]) -> Prior:
        """The same prior with features in ``expected`` order (names must match exactly)."""
        self.check_features(expected)
        idx = [self.features.index(f) for f in expected]
        return Prior(features=list(expected), mean=[self.mean[i] for i in idx],
                     spread=[self.spread[i] for i in idx], source=self.source,
                     provenance=dict(self.provenance),
                     samples=[[s[i] for i in idx] for s in self.samples])

    # ---- views --------------------------------------------------------------------------
    def scores(self) -> dict[str, float]:
        return dict(zip(self.features, self.mean))

    def spreads(self) -> dict[str, float]:
        return dict(zip(self.features, self.spread))

    @property
    def label(self) -> str:
        """Short tag for file names and reports, e.g. ``llm`` or ``oracle``; ``expert-edited``."""
        return f"{self.source}-edited" if self.provenance.get("edited") else self.source

    def __len__(self) -> int:
        return len(self.features)

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"note": GENERATED_NOTE.format(dataset=self.provenance.get("dataset") or "<dataset>"),
                "source": self.source, "features": list(self.features), "mean": list(self.mean),
                "spread": list(self.spread), "samples": [list(s) for s in self.samples],
                "fingerprint": _fingerprint(self.features, self.mean),
                "provenance": jsonable(self.provenance)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "<dict>") -> Prior:
        if not isinstance(data, Mapping):
            raise PriorError(f"{origin}: a prior must be a mapping, got {type(data).__name__}")
        missing = [k for k in ("source", "features", "mean") if k not in data]
        if missing:
            raise PriorError(f"{origin}: prior is missing keys {missing}")
        check_not_hand_edited(data, origin)
        try:
            return cls(features=list(data["features"]), mean=list(data["mean"]),
                       spread=data.get("spread"), source=data["source"],
                       provenance=dict(data.get("provenance") or {}),
                       samples=list(data.get("samples") or []))
        except PriorError as exc:
            raise PriorError(f"{origin}: {exc}") from None

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> Prior:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PriorError(f"no prior file at {path}") from None
        except json.JSONDecodeError as exc:
            raise PriorError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, origin=str(path))

    # ---- YAML (hand-editable) -------------------------------------------------------------
    def to_yaml(self) -> str:
        """YAML text an expert can edit: one ``name: score`` line per feature."""
        prov = {k: v for k, v in jsonable(self.provenance).items()
                if k not in {"prompt", "prompts", "record"}}
        header = (
            f"# LAAT feature-importance prior (source: {self.label}).\n"
            "# Edit the numbers under `scores` (each in [-10, 10]): positive = increasing the feature\n"
            "# raises the probability of the positive class, negative = lowers it, 0 = no effect.\n"
            "# Keep every feature. On import, a changed score makes this an expert-edited prior;\n"
            "# leave `fingerprint` as it is (it is how the edit is detected).\n"
        )
        body = {
            "source": self.source,
            "scores": {f: _num(m) for f, m in zip(self.features, self.mean)},
            "spread": {f: _num(s) for f, s in zip(self.features, self.spread)},
            # of the scores as written above (rounded), or an unedited 23/3 would read back as edited
            "fingerprint": _fingerprint(self.features, [_num(m) for m in self.mean]),
            "provenance": prov,
        }
        return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)

    def save_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def from_yaml(cls, text: str, origin: str = "<yaml>") -> Prior:
        """Parse the YAML form; a prior whose scores changed since export becomes ``expert``.

        A file without a fingerprint was written by hand and is an expert prior; it may not
        claim another source, because nothing shows where its numbers came from.
        """
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PriorError(f"{origin}: not valid YAML ({exc})") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("scores"), Mapping):
            raise PriorError(f"{origin}: expected a mapping with a `scores:` mapping of feature -> number")
        scores = data["scores"]
        features = [str(f) for f in scores]
        mean = []
        for f, v in scores.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise PriorError(f"{origin}: score for {f!r} is {v!r}, not a number in [-10, 10]")
            mean.append(float(v))
        spread_map = data.get("spread") or {}
        if not isinstance(spread_map, Mapping):
            raise PriorError(f"{origin}: `spread` must be a mapping of feature -> number")
        unknown_spread = [f for f in spread_map if str(f) not in scores]
        if unknown_spread:
            raise PriorError(f"{origin}: `spread` names features not in `scores`: {unknown_spread}")
        spread = [float(spread_map.get(f, 0.0)) for f in features]
        claimed = data.get("source", "expert")
        provenance = dict(data.get("provenance") or {})
        fp = data.get("fingerprint")
        if fp is None:
            if claimed != "expert":
                raise PriorError(f"{origin}: a hand-written prior (no `fingerprint`) must have source "
                                 f"'expert', not {claimed!r}")
            source = "expert"
            provenance.setdefault("source_kind", "expert")
        elif fp == _fingerprint(features, mean):
            source = claimed
        else:
            # Edited since export: the numbers are now the expert's, whatever produced the draft.
            source = "expert"
            provenance = {"edited": True, "edited_from": claimed, "source_kind": "expert",
                          "draft_provenance": provenance, "imported_at": _utcnow()}
            spread = [0.0] * len(features)  # the sample spread no longer describes these numbers
        try:
            return cls(features=features, mean=mean, spread=spread, source=source, provenance=provenance)
        except PriorError as exc:
            raise PriorError(f"{origin}: {exc}") from None

    @classmethod
    def load_yaml(cls, path: str | Path) -> Prior:
        path = Path(path)
        if not path.exists():
            raise PriorError(f"no prior file at {path}")
        return cls.from_yaml(path.read_text(encoding="utf-8"), origin=str(path))

    @classmethod
    def load(cls, path: str | Path) -> Prior:
        """Load JSON or YAML by file suffix."""
        p = Path(path)
        return cls.load_yaml(p) if p.suffix in {".yml", ".yaml"} else cls.load_json(p)


def check_not_hand_edited(data: Mapping[str, Any], origin: str = "<dict>") -> None:
    """Raise if a generated prior's scores no longer match the fingerprint written with them.

    A dict without a fingerprint (built in code, or written before fingerprints) passes.
    """
    fp = data.get("fingerprint")
    if fp is None:
        return
    try:
        actual = _fingerprint([str(f) for f in data["features"]], [float(m) for m in data["mean"]])
    except (KeyError, TypeError, ValueError):
        actual = None
    if actual != fp:
        dataset = (data.get("provenance") or {}).get("dataset") or "<dataset>"
        raise PriorError(f"{origin}: this generated prior was edited by hand (its scores no longer match its "
                         f"fingerprint), so they would pass for the {data.get('source')!r} source's own. "
                         f"To keep them, {HOW_TO_EDIT.format(dataset=dataset)}; delete this file to "
                         "regenerate it.")


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 4)


def as_prior(obj: Prior | Mapping[str, Any], origin: str = "<prior>") -> Prior:
    """Accept a Prior or its dict form (as stored by the Kedro JSON dataset)."""
    return obj if isinstance(obj, Prior) else Prior.from_dict(obj, origin=origin)


# ---- non-LLM builders ----------------------------------------------------------------------

def random_prior(features: Sequence[str], seed: int = 0) -> Prior:
    """Seeded uniform integer scores: a no-knowledge control, labelled ``random``."""
    rng = np.random.default_rng(seed)
    mean = rng.integers(int(SCORE_MIN), int(SCORE_MAX) + 1, size=len(features)).astype(float)
    return Prior(features=list(features), mean=mean.tolist(), source="random",
                 provenance={"source_kind": "random", "seed": int(seed), "note": RANDOM_NOTE,
                             "created_at": _utcnow()})


def oracle_prior(X_enc, y, meta=None, *, C: float = 1.0, max_iter: int = 5000) -> Prior:
    """Attributions of a logistic regression fit on ALL labelled rows: an evaluation upper bound.

    Columns are Min-Max scaled first (as in training), missing values imputed with the
    column median, and the coefficients rescaled so the largest magnitude is 10.
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if isinstance(X_enc, pd.DataFrame):
        features = [str(c) for c in X_enc.columns]
        X = X_enc.to_numpy(dtype=float)
    else:
        X = np.asarray(X_enc, dtype=float)
        if meta is None:
            raise PriorError("oracle_prior needs a DataFrame or `meta` to name the columns")
        features = list(meta.encoded_columns)
    if meta is not None and features != list(meta.encoded_columns):
        raise PriorError(f"oracle_prior: columns {features} are not dataset {meta.name!r}'s "
                         f"encoded columns {list(meta.encoded_columns)}")
    y = np.asarray(y).astype(int).ravel()
    if X.shape[0] != y.shape[0]:
        raise PriorError(f"oracle_prior: {X.shape[0]} rows but {y.shape[0]} labels")
    if set(np.unique(y)) != {0, 1}:
        raise PriorError(f"oracle_prior needs both classes 0 and 1 in y, got {sorted(set(np.unique(y)))}")
    from laat.preprocess import minmax_scaler, missing_value_imputer

    # the training pipeline's imputer: medians, and 0 for an all-missing column
    model = make_pipeline(missing_value_imputer(), minmax_scaler(),
                          LogisticRegression(C=C, max_iter=max_iter))
    model.fit(X, y)
    coef = model[-1].coef_.ravel()
    top = float(np.max(np.abs(coef)))
    mean = (coef * (SCORE_MAX / top)).tolist() if top > 0 else [0.0] * len(features)
    mean = [float(np.clip(m, SCORE_MIN, SCORE_MAX)) for m in mean]
    return Prior(features=features, mean=mean, source="oracle",
                 provenance={"source_kind": "oracle", "note": ORACLE_NOTE,
                             "method": "sklearn LogisticRegression (l2, C=%g) on median-imputed, "
                                       "Min-Max-scaled one-hot data; coef * 10 / max|coef|" % C,
                             "dataset": getattr(meta, "name", None), "n_rows": int(X.shape[0]),
                             "raw_coef": coef.tolist(), "created_at": _utcnow()})


def oracle_prior_from_frame(df, meta, **kwargs) -> Prior:
    """Oracle prior straight from a validated raw DataFrame."""
    from laat.datasets import encode, labels

    return oracle_prior(encode(df, meta), labels(df, meta), meta, **kwargs)
