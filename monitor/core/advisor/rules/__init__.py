"""The advisor's rules: pure functions from a run's evidence to findings.

Every rule has the signature :data:`monitor.core.advisor.rules.base.Rule`; ``catalog.RULES`` is the
order they run in (the order does not rank findings;
:func:`monitor.core.advisor.findings.rank_findings` does). One module per family of problems;
:mod:`monitor.core.advisor.rules.catalog` lists them.
"""
