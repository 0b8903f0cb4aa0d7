"""The procbridge benchmark harness behind ``bench/run``.

Modules, one job each:

- ``scenarios``: the list of scenarios (the place to add one);
- ``model``: figures, targets, rows and results;
- ``startup``: the start-up scenario (wall time of whole commands);
- ``programs``: scenarios whose programs measure themselves and print
  ``BENCH <key> <value>`` lines (guest + Python + native, or an example
  program of the host crate measuring procbridge as a library);
- ``measure``: running commands, parsing BENCH lines, statistics;
- ``units``: units from key suffixes, costs and number formatting;
- ``build``: building the host, guests and native baselines;
- ``machine``: the machine description for the report;
- ``report`` and ``chart``: docs/benchmarks.md and its SVG chart;
- ``cli``: the command line;
- ``tests``: unit tests (``cd bench && python3 -m unittest harness.tests``).
"""
