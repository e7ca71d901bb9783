"""End-to-end checks of `gyre ui` in a real browser (Debian's chromium, driven by Playwright).

Usage: ui_e2e.py ADDR BASE WORSE SAME [--screenshots DIR]
  BASE is the champion; WORSE fails the gate against it; SAME is trained like BASE and passes.
Exit 0 when every check holds; the first failed check is printed and exits 1.
"""

import json
import os
import re
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("GYRE_CHROMIUM", "/usr/bin/chromium")


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def main():
    args = sys.argv[1:]
    shots = None
    if "--screenshots" in args:
        i = args.index("--screenshots")
        shots = args[i + 1]
        del args[i : i + 2]
        os.makedirs(shots, exist_ok=True)
    addr, base, worse, same = args
    url = f"http://{addr}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        def api(path):
            res = page.request.get(url + path)
            check(res.status == 200, f"GET {path} answers 200")
            return res.json()

        # Every page loads, with its heading, and no script error (the CSP would report one).
        pages = {
            "/": "Overview",
            "/runs": "Runs",
            f"/runs/{worse}": "Run",
            f"/diff/{base}/{worse}": "Diff",
            f"/review/{worse}?limit=20": "Label review",
            "/findings": "Findings",
            "/data": "Data",
            "/rows/5": "Row 5",
            "/monitor": "Monitor",
            "/journal": "Journal",
        }
        for path, heading in pages.items():
            res = page.goto(url + path)
            check(res.status == 200, f"{path} loads")
            check(page.locator("h1").inner_text().startswith(heading), f"{path} is the {heading} page")
            if shots:
                name = path.strip("/").split("?")[0].replace("/", "-") or "overview"
                for run_id, alias in ((worse, "run"), (base, "base")):
                    name = name.replace(run_id, alias)
                page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=False)
        check(not errors, f"no script errors ({errors})")

        # The run page's plots hold the run's data.
        data = api(f"/runs/{worse}?format=json")
        page.goto(f"{url}/runs/{worse}")
        roc = data["curves"]["roc"]
        points = page.locator("#roc g.series").get_attribute("data-points")
        check(int(points) == len(roc), f"the ROC plot has the run's {len(roc)} points")
        tip = page.locator("#roc circle").nth(len(roc) // 2).locator("title").text_content()
        want = roc[len(roc) // 2]["threshold"]
        check(f"threshold {want:.4f}" in tip, f"a ROC point's hover names its threshold ({tip})")
        cells = page.locator("#confusion td[data-count]").all_inner_texts()
        counts = [c for row in data["curves"]["confusion"]["counts"] for c in row]
        check([int(c) for c in cells] == counts, "the confusion matrix is the run's")
        auc = data["show"]["metrics"]["holdout"]["auc"]
        shown = page.locator('[data-suite="holdout"][data-metric="auc"]').inner_text()
        check(shown == f"{auc:.4f}", f"the page shows the run's auc {auc:.4f}")
        check(page.locator("#importance g.bar").count() > 3, "feature importance is drawn")

        # Back and forward work: every view is its own address.
        page.goto(f"{url}/runs?sort=-auc")
        page.locator(f'a[href="/runs/{worse}"]').first.click()
        page.wait_for_url(f"**/runs/{worse}")
        page.go_back()
        check(page.url.endswith("/runs?sort=-auc"), f"back returns to the sorted runs ({page.url})")
        page.go_forward()
        check(page.url.endswith(f"/runs/{worse}"), "forward returns to the run")

        # Pick two runs on the runs page and diff them.
        page.goto(f"{url}/runs")
        page.locator(f'input[name="base"][value="{base}"]').check()
        page.locator(f'input[name="candidate"][value="{worse}"]').check()
        page.locator("#diff-picked").click()
        page.wait_for_url(f"**/diff/{base}/{worse}")
        check(page.locator("#forest").count() == 1, "the picked diff shows the forest plot")

        # Label review: ten suspects decided with the keyboard, applied with one reason.
        page.goto(f"{url}/review/{worse}?limit=20")
        page.evaluate("localStorage.clear()")
        page.reload()
        page.locator("#why").fill("checked the census forms for these rows")
        page.locator("h1").click()  # leave the reason field: keys now decide
        keys = ["a", "a", "g", "x", "2", "a", "g", "1", "a", "x"]
        for k in keys:
            page.keyboard.press(k)
        check(page.locator("#pending").inner_text().startswith("10 decisions"), "ten decisions queued")
        decided = page.locator(".suspect.decided").count()
        check(decided == 10, f"ten suspects marked ({decided})")
        page.keyboard.press("k")
        page.keyboard.press("u")
        check(page.locator("#pending").inner_text().startswith("9 decisions"), "u undoes one")
        page.keyboard.press("x")
        page.keyboard.press("Enter")
        # (The page's CSP forbids evaluating strings, so wait through a locator, not a function.)
        expect(page.locator("#status")).to_have_text(re.compile(r"^applied"), timeout=30000)
        status = page.locator("#status").inner_text()
        check("edit" in status, f"the decisions became edits ({status})")

        # Promote from the diff page: a challenger that fails the gate is not promoted.
        def champion():
            return api("/?format=json")["aliases"]["aliases"][0]["run"]

        page.goto(f"{url}/diff/{base}/{worse}")
        check(page.locator("#verdict").inner_text().find("fails") >= 0, "the gate fails the worse run")
        page.locator("#promote input[name=why]").fill("try the smaller trees")
        page.locator("#promote button").click()
        page.wait_for_selector("#notice")
        check("Not promoted" in page.locator("#notice").inner_text(), "the failed gate says not promoted")
        check(champion() == base, "the champion did not move")

        page.goto(f"{url}/diff/{base}/{same}")
        check("passes" in page.locator("#verdict").inner_text(), "the gate passes the same recipe")
        page.locator("#promote input[name=why]").fill("same recipe, reproduced")
        page.locator("#promote button").click()
        page.wait_for_selector("#notice")
        check("Promoted" in page.locator("#notice").inner_text(), "promoted through the gate")
        check(champion() == same, "the champion moved to the promoted run")
        if shots:
            page.goto(f"{url}/review/{worse}?limit=20")
            page.screenshot(path=os.path.join(shots, "review.png"))
        browser.close()
    print(json.dumps({"checked": True}))


if __name__ == "__main__":
    main()
