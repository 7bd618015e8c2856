"""report.html: one file that a browser renders with every section and every figure."""

from __future__ import annotations

import json

import pytest
import torch

import distill
from distill.data.digits import load_digits
from distill.evaluate import compare
from distill.report.html import SECTIONS, render_html

FIGURES = {"accuracy against latency", "training curves", "per-class accuracy",
           "confusion difference", "reliability diagram"}


@pytest.fixture(scope="module")
def metrics():
    train, test = load_digits("train"), load_digits("test")
    torch.manual_seed(0)
    teacher = distill.build_mlp((1, 8, 8), 10, hidden=(128,))
    fitted = distill.train_model(teacher, train, eval=test, epochs=4, batch_size=64, lr=3e-3,
                                 progress=False)
    student = distill.build_mlp((1, 8, 8), 10, hidden=(6,))
    result = distill.distill(teacher, student, train, eval=test, epochs=2, batch_size=64,
                             progress=False)
    out = compare(teacher, student, test, latency_repeats=3)
    out.update(name="digits <tiny>", history={"teacher": fitted.history,
                                              "student": result.history})
    return json.loads(json.dumps(out))  # as metrics.json holds it


def test_every_section_and_figure_renders_in_chromium(metrics, browser, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(metrics, '[data]\ndataset = "digits"'))
    browser.get(page.as_uri())
    assert browser.title == "Distillation report: digits <tiny>"  # escaped, then shown as is
    found = browser.execute_script(
        "return [...document.querySelectorAll('section')].map(s => "
        "[s.id, s.querySelector('h2').innerText, s.getBoundingClientRect().height])")
    assert [f[0] for f in found] == list(SECTIONS)
    assert all(heading and height > 0 for _, heading, height in found)
    images = browser.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete, i.naturalWidth])")
    assert {alt for alt, _, _ in images} == FIGURES
    assert all(complete and width > 100 for _, complete, width in images)  # decoded PNGs
    text = browser.find_element("tag name", "body").text
    assert "for this run" not in text  # a classifier run has every section filled
    assert "same wrong answer as the teacher" in text
    assert browser.get_screenshot_as_png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_without_class_diagnostics_still_renders_every_section(metrics):
    stripped = {k: v for k, v in metrics.items() if k not in ("diagnostics", "history")}
    page = render_html(stripped)
    for key in SECTIONS:
        assert f'<section id="{key}">' in page
    assert page.count("for this run.") == 5  # training, per-class, confusion, calibration, errors
    assert "<script" not in page and "http" not in page.split("<body>")[1]  # self-contained
