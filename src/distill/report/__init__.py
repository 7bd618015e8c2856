"""Run reports: metrics.json, report.md and the plots they show."""

from distill.report.markdown import render_report, summary_table
from distill.report.plots import accuracy_vs_latency, training_curves

__all__ = ["accuracy_vs_latency", "render_report", "summary_table", "training_curves"]
