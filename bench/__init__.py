"""Side-by-side benchmark of the exporter and the Prometheus Pushgateway (issues 6 and 13).

``python -m bench`` (``make bench``) writes ``bench/RESULTS.md`` and ``bench/results.json``;
``--smoke`` runs one short repetition at small sizes into a temporary directory. Modules by job:
``servers`` (processes, pinning, readiness, RSS), ``backends`` (where the exporter keeps its
state, and how many transactions it committed), ``load`` (wrk, the state-building client,
scrapes), ``probes`` (disk, perf, machine), ``workload`` (bodies), ``phases``, ``report``.
"""
