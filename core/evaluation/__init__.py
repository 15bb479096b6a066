""" "Did it work?": an evaluation report for a finished run (`tunesmith eval RUN_DIR`).

What the run learned (loss and perplexity of base and tuned on held-out and training rows), answers side
by side with scores against references, what it forgot (perplexity on a bundled general-text probe), an
optional local judge, and the run's settings and curves, in RUN_DIR/eval/<report>/report.{json,html}.
Modules: rows (which rows to score), models (base and tuned from one load), perplexity, answers, metrics,
forgetting, judge, plots + report (the files), runner (order, progress, cancel).  No Qt here.
"""
