"""The use cases, written once; the CLI, the dashboard, the demo, the benchmarks and the hooks'
analysis process call these and do none of it themselves.

- :mod:`monitor.services.runs`: advise a run, refresh and read its findings, compare two runs
- :mod:`monitor.services.imports`: import a trace into the store
- :mod:`monitor.services.fleet`: advise the fleet (idle GPUs holding memory)
- :mod:`monitor.services.trace_advice`: advise on a trace file alone
- :mod:`monitor.services.gather`: the evidence the advisor reads (used by the above)

Imports point inwards: core, store and traces only.
"""
