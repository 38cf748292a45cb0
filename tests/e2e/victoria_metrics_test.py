"""The core end-to-end checks of e2e_test.py (discovery, pods by selector, external metrics with
selectors, both dcgm label forms, NaN, the backend down) with VictoriaMetrics single-node
(Debian's victoria-metrics) in place of Prometheus: it scrapes the same synthetic exporters with
the same scrape config (-promscrape.config), and the adapter is started with the same flags.
The checks are e2e_test's, unchanged: a difference is the adapter's to handle."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_test as core  # noqa: E402  (a module, so that its classes do not run here too)


def tearDownModule():
    core.tearDownModule()


class VictoriaMetricsEndToEnd(core.EndToEnd):
    """Every check of e2e_test.EndToEnd, kubectl asking the adapter itself."""
    BACKEND = "victoria-metrics"


class VictoriaMetricsZzShutdown(core.ZzShutdown):
    """Last: VictoriaMetrics stopped is a 503 within the deadline; SIGTERM stops the adapter."""
    BACKEND = "victoria-metrics"


if __name__ == "__main__":
    unittest.main()
