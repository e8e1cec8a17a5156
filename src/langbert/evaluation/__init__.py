"""Metrics and reports, named as the fields they fill, and the classical baselines a model is held to."""

from .reports import (LOWER_IS_BETTER, Report, multi_label_report, plot_training, regression_report,
                      single_label_report, write_reports)

__all__ = ["LOWER_IS_BETTER", "Report", "multi_label_report", "plot_training", "regression_report",
           "single_label_report", "write_reports"]
