"""Recorded bandit data: choices and rewards from trials tables and from real datasets.

- :func:`choices_from_trials` turns any trials table (one row per trial) into the
  ``choice`` / ``reward`` columns that :class:`~neuroml.rl.choice.QLearning` fits.
- :func:`read_choice_engineering` reads the human two-armed bandit CSVs of the Choice
  Engineering Competition (Dan & Loewenstein); :func:`read_dynamic_foraging` reads an
  AIND dynamic-foraging NWB session through :func:`neuroml.load_recording`.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import plain
from ..errors import ParameterError, RecordingError

__all__ = ["choices_from_trials", "read_choice_engineering", "read_dynamic_foraging"]


def _numeric(column: pd.Series):
    """A column as floats (booleans 0/1; NaN, None and blanks NaN), and the positions of
    the values that are not numbers."""
    if column.dtype == bool:
        return column.to_numpy(dtype=float), np.zeros(0, dtype=np.int64)
    try:
        values = pd.to_numeric(column, errors="coerce").astype(float).to_numpy()
    except (TypeError, ValueError):  # e.g. lists in an object column
        values = np.full(len(column), np.nan)
    missing = np.isnan(values)
    if missing.any():
        blank = (column.isna() | column.astype(str).str.strip().eq("")).to_numpy()
        return values, np.flatnonzero(missing & ~blank)
    return values, np.zeros(0, dtype=np.int64)


def choices_from_trials(trials: pd.DataFrame, *, choice: str, reward, options=None,
                        no_response=(), subject: str | None = None, keep=()) -> pd.DataFrame:
    """The ``choice`` and ``reward`` of each trial of a trials table.

    Parameters
    ----------
    trials : DataFrame
        One row per trial (e.g. ``neuroml.load_recording(path).trials``).
    choice : str
        Column holding the response of each trial.
    reward : str or sequence of str
        One column with the reward of the chosen option (e.g. ``"observed_reward"``), or
        one column per option, in option order, of which the chosen one's is taken (e.g.
        ``("rewarded_historyL", "rewarded_historyR")``). Numbers (or numeric strings);
        booleans become 0/1; NaN, None and blanks mean no reward value.
    options : sequence or dict, default=None
        How responses map to options ``0 .. K-1``: a sequence of response labels in
        option order (``["LEFT", "RIGHT"]``), or a dict ``{label: option}`` of integer
        options (a negative one: no response). None: the responses are the option
        numbers already (booleans: False 0, True 1).
    no_response : scalar or sequence, default=()
        Response values meaning no response (e.g. ``2`` in AIND files); NaN and empty
        values always mean no response.
    subject : str, default=None
        Column with the subject (session) label to carry along as ``subject``.
    keep : str or sequence of str, default=()
        Further columns copied unchanged.

    Returns
    -------
    DataFrame indexed like ``trials``
        ``choice`` (int, -1 without a response), ``reward`` (float, NaN without a
        response), then ``subject`` and the ``keep`` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"response": [0, 1, 2], "rewardL": [True, False, False],
    ...                   "rewardR": [False, True, False]})
    >>> choices_from_trials(t, choice="response", reward=("rewardL", "rewardR"),
    ...                     no_response=2).values.tolist()
    [[0.0, 1.0], [1.0, 1.0], [-1.0, nan]]
    """
    if not isinstance(trials, pd.DataFrame):
        raise ParameterError(f"choices_from_trials: 'trials' must be a DataFrame; got "
                             f"{type(trials).__name__}.")
    reward_cols = [reward] if isinstance(reward, str) else list(reward)
    keep = [keep] if isinstance(keep, str) else list(keep)
    wanted = {"choice": [choice], "reward": reward_cols,
              "subject": [] if subject is None else [subject], "keep": keep}
    for arg, cols in wanted.items():
        missing = [c for c in cols if c not in trials.columns]
        if missing:
            raise ParameterError(f"choices_from_trials: the '{arg}' column(s) {missing} are not "
                                 f"in the trials table (columns: {list(trials.columns)}).")
    raw = trials[choice]
    skip = set(np.atleast_1d(np.asarray(no_response, dtype=object)).tolist())
    missing_resp = raw.isna() | raw.isin(skip) | raw.astype(str).str.strip().eq("")
    if options is None:
        values = raw.where(~missing_resp)
        if values.dtype == bool or values.dropna().map(type).eq(bool).all():
            values = values.astype(float)
        numeric = pd.to_numeric(values, errors="coerce")
        bad = ~missing_resp & (numeric.isna() | (numeric < 0) | (numeric != np.round(numeric)))
    else:
        mapping = dict(options) if isinstance(options, Mapping) else \
            {label: k for k, label in enumerate(options)}
        for label, k in mapping.items():
            if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Real) \
                    or not float(k).is_integer():
                raise ParameterError(f"choices_from_trials: 'options' maps {plain(label)!r} to "
                                     f"{plain(k)!r}; options must be integers 0..K-1 (a "
                                     "negative one: no response).")
        numeric = raw.map(mapping).astype(float)
        bad = ~missing_resp & numeric.isna()
    if bool(bad.any()):
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ParameterError(f"choices_from_trials: the '{choice}' column holds "
                             f"{plain(raw.iloc[i])!r} (row {plain(raw.index[i])!r}), which "
                             "is not an option"
                             + (f" among {list(options)}" if options is not None else
                                " (options are integers 0..K-1)")
                             + "; list it in 'no_response' if it means no response.")
    chosen = np.where(missing_resp, -1, numeric.fillna(-1)).astype(np.int64)
    table = np.empty((len(trials), len(reward_cols)))
    for j, col in enumerate(reward_cols):
        table[:, j], bad_rows = _numeric(trials[col])
        if bad_rows.size:
            i = int(bad_rows[0])
            raise ParameterError(f"choices_from_trials: the '{col}' reward column holds "
                                 f"{plain(trials[col].iloc[i])!r} (row "
                                 f"{plain(trials.index[i])!r}; {bad_rows.size} such rows), "
                                 "which is not a number; rewards must be numbers or booleans "
                                 "(NaN or blank where there is none).")
    if len(reward_cols) == 1:
        rew = table[:, 0]
    else:
        if chosen.max(initial=-1) >= len(reward_cols):
            raise ParameterError(f"choices_from_trials: option {chosen.max()} was chosen but "
                                 f"'reward' names {len(reward_cols)} columns, one per option.")
        rew = table[np.arange(len(chosen)), np.clip(chosen, 0, None)]
    out = pd.DataFrame({"choice": chosen, "reward": np.where(chosen >= 0, rew, np.nan)},
                       index=trials.index)
    if subject is not None:
        out["subject"] = trials[subject].to_numpy()
    for col in keep:
        out[col] = trials[col].to_numpy()
    return out


def read_choice_engineering(path) -> pd.DataFrame:
    """Read the human two-armed bandit CSVs of the Choice Engineering Competition.

    The format of Dan & Loewenstein's ``ohaddan/competition`` data (one CSV per
    subject, comma + space separated, a header line). The option is whether the subject
    chose the "biased" alternative (``is_biased_choice``: true -> 1, false -> 0); the
    reward is the one the subject saw (``observed_reward``).

    Parameters
    ----------
    path : str or Path
        A folder of such CSVs (every ``*.csv`` in it, in name order) or one CSV.

    Returns
    -------
    DataFrame
        One row per trial: ``subject`` (the file name without ``.csv``), ``trial``
        (``trial_number``), ``choice`` (0/1), ``reward`` (0/1), ``side`` (LEFT/RIGHT)
        and ``rt`` (ms).
    """
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"read_choice_engineering: 'path' must be a folder of Choice "
                             f"Engineering CSVs or one such CSV (str or Path); got {path!r}.")
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise RecordingError(f"No Choice Engineering CSV files at '{path}' (expected a folder "
                             "holding *.csv files, or one CSV file).")
    frames = []
    for f in files:
        df = _read_csv(f)
        need = {"trial_number", "is_biased_choice", "observed_reward"}
        if not need <= set(df.columns):
            raise RecordingError(f"'{f}' lacks the columns {sorted(need - set(df.columns))} of "
                                 "the Choice Engineering format.")
        biased = df["is_biased_choice"].astype(str).str.strip().str.lower()
        wrong = np.flatnonzero(~biased.isin(["true", "false"]).to_numpy())
        reward, bad = _numeric(df["observed_reward"])
        for column, rows, allowed in (("is_biased_choice", wrong, "true or false"),
                                      ("observed_reward", bad, "a number")):
            if rows.size:
                raise RecordingError(
                    f"'{f}': the '{column}' column holds {plain(df[column].iloc[rows[0]])!r} "
                    f"on line {rows[0] + 2} ({rows.size} such lines); the format has "
                    f"{allowed} there.")
        frames.append(pd.DataFrame({
            "subject": f.stem, "trial": df["trial_number"].to_numpy(),
            "choice": biased.eq("true").to_numpy().astype(np.int64), "reward": reward,
            "side": df.get("side_choice", pd.Series(np.nan, index=df.index)).to_numpy(),
            "rt": df.get("RT", pd.Series(np.nan, index=df.index)).to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def _read_csv(f: Path) -> pd.DataFrame:
    """One CSV file, or a RecordingError naming it when it is empty or not a CSV."""
    try:
        return pd.read_csv(f, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise RecordingError(f"'{f}' is empty; a Choice Engineering CSV has a header line, "
                             "then one line per trial.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RecordingError(f"'{f}' is not a Choice Engineering CSV (comma-separated: a "
                             f"header line, then one line per trial): {reason}") from None


def read_dynamic_foraging(path) -> pd.DataFrame:
    """Choices and rewards of an AIND dynamic-foraging session (NWB, HDF5 or Zarr).

    Reads the trials table with :func:`neuroml.load_recording` and turns it into choices
    with :func:`choices_from_trials`: ``animal_response`` 0 = left (option 0), 1 = right
    (option 1), 2 = no response; the reward is ``rewarded_historyL`` or ``R`` of the
    chosen side.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame indexed by trial
        ``choice``, ``reward``, ``reward_probabilityL``, ``reward_probabilityR`` and
        ``goCue_start_time`` (those present in the file).
    """
    from ..io.nwb import load_recording

    trials = load_recording(path).trials
    if trials is None or "animal_response" not in getattr(trials, "columns", ()):
        raise RecordingError(f"'{path}' has no dynamic-foraging trials table "
                             "(no 'animal_response' column).")
    keep = [c for c in ("reward_probabilityL", "reward_probabilityR", "goCue_start_time")
            if c in trials.columns]
    return choices_from_trials(trials, choice="animal_response",
                               reward=("rewarded_historyL", "rewarded_historyR"),
                               no_response=2, keep=keep)
