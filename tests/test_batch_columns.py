"""The scored CSV's columns: an input column named like a score column (cosine, error, probability,
...) is kept as `input_<name>`, and every row lines up with the header."""

import csv

from hypothesis import given, settings, strategies as st

from calibration_helpers import SyntheticEncoder, image_of
from clip_arena.analyzer.batch import (CALIBRATED_COLUMNS, SCORE_COLUMNS, BatchOptions, output_header, output_row,
                                       score_columns, score_csv)
from clip_arena.core.spreadsheet import neutralise

RESERVED = list(SCORE_COLUMNS + CALIBRATED_COLUMNS)
names = st.one_of(st.sampled_from(RESERVED + [f"input_{c}" for c in RESERVED] + ["input_input_cosine"]),
                  st.text(max_size=12))


@settings(max_examples=300, deadline=None)
@given(header=st.lists(names, min_size=1, max_size=8), calibrated=st.booleans(), scored=st.booleans())
def test_every_row_lines_up_with_the_header_whatever_the_input_columns_are_named(header, calibrated, scored):
    out = output_header(header, calibrated)
    values = [f"v{i}" for i in range(len(header))]
    row = output_row(values, 0.25 if scored else None, "" if scored else "missing: x",
                     fused=(0.5, 40.0) if calibrated else None)
    assert len(row) == len(out)
    assert out[len(header):] == list(score_columns(calibrated))  # every score column, always ours
    inputs = out[:len(header)]
    assert not set(inputs) & set(RESERVED)
    for name, kept in zip(header, inputs):
        if name in RESERVED:  # renamed to a name no other column of the output has
            assert kept.startswith("input_") and kept.endswith(name) and out.count(kept) == 1
            assert kept not in header
        else:
            assert kept == neutralise(name)


def test_a_scored_file_keeps_the_inputs_own_score_columns_renamed(tmp_path):
    image_of(1, 9).save(tmp_path / "1.png")
    (tmp_path / "in.csv").write_text("image,cosine,caption,error,input_cosine\n"
                                     "1.png,0.99,\"item 1, view 3\",old,x\n")
    score_csv(tmp_path / "in.csv", tmp_path / "out.csv", SyntheticEncoder(items=20),
              BatchOptions(image_roots=[str(tmp_path)]))
    with open(tmp_path / "out.csv") as f:
        header, row = list(csv.reader(f))
    assert header == ["image", "input_input_cosine", "caption", "input_error", "input_cosine", *SCORE_COLUMNS]
    got = dict(zip(header, row))
    assert got["input_input_cosine"] == "0.99" and got["input_error"] == "old" and got["input_cosine"] == "x"
    assert got["error"] == "" and got["cosine"] != "0.99" and -1 <= float(got["cosine"]) <= 1 and got["frames"] == "1"
