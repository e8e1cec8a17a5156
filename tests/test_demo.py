"""The demo's table says where its as-is row comes from."""

from langbert.demo import _stored_as_is


def test_the_as_is_row_names_its_source():
    value, source = _stored_as_is()
    # a source checkout has benchmarks/results/baselines.json with a mean-pooled as-is row
    assert 0 < value < 1 and "benchmarks/results/baselines.json" in source
