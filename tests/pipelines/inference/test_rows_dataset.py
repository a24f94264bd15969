"""The rows to score: read by suffix, and a clear error naming what is wrong with `input`."""

import pandas as pd
import pytest
from kedro.io import DatasetError

from laat.pipelines.inference.rows_dataset import RowsDataset


def test_csv_and_parquet_are_read_as_stored(tmp_path):
    df = pd.DataFrame({"Age": [50, 31], "BMI": [33.6, None]})
    df.to_csv(tmp_path / "rows.csv", index=False)
    df.to_parquet(tmp_path / "rows.parquet")
    pd.testing.assert_frame_equal(RowsDataset(str(tmp_path / "rows.csv")).load(), df)
    pd.testing.assert_frame_equal(RowsDataset(str(tmp_path / "rows.parquet")).load(), df)


@pytest.mark.parametrize(
    "filepath, message",
    [
        ("", r"no rows to score: name them with `--params input=<file.csv\|file.parquet>`"),
        ("rows.xlsx", r"input 'rows.xlsx': not a catalog entry, and not a file ending in \['.csv', '.parquet'\]"),
        ("missing.csv", r"input 'missing.csv': no such file \(relative paths start at the project root\)"),
    ],
)
def test_a_bad_input_says_what_is_wrong(filepath, message):
    with pytest.raises(DatasetError, match=message):
        RowsDataset(filepath).load()
