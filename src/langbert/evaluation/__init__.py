"""Metrics and reports, named as the fields they fill, and the classical baselines a model is held to."""

from .direction import LOWER_IS_BETTER
from .plots import plot_training
from .reports import Report, multi_label_report, regression_report, single_label_report, write_reports

__all__ = ["LOWER_IS_BETTER", "Report", "multi_label_report", "plot_training", "regression_report",
           "single_label_report", "write_reports"]
