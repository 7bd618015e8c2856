"""A screenshot of a run's report.html as headless Chromium draws it (docs/report.png).

    python benchmarks/report_screenshot.py runs/fmnist            # -> docs/report.png
    python benchmarks/report_screenshot.py runs/fmnist --height 2400

Needs Debian's chromium and chromium-driver (make setup installs them) and selenium.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder with report.html")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "report.png")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=2600, help="top of the page to keep")
    args = parser.parse_args(argv)
    from PIL import Image
    from selenium import webdriver

    page = (args.run / "report.html").resolve()
    if not page.is_file():
        parser.error(f"{page} does not exist: run distill run (or distill report) first")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--window-size={args.width},{args.height}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(
        executable_path=shutil.which("chromedriver")))
    try:
        driver.get(page.as_uri())
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    finally:
        driver.quit()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shot.convert("RGB").quantize(colors=128).save(args.out, optimize=True)
    print(f"wrote {args.out} ({shot.size[0]}x{shot.size[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
