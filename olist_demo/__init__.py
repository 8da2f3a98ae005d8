"""Tools for demos, tests and benchmarks, apart from the pipeline (and not in `dwh package`).

    olist_generator.py   the nine Olist CSV files at any scale, quirks included
    funnel_generator.py  funnel files in the vendor's format
    shop_simulator.py    simulated hours of shop activity in the source database
    run.py               `dwh demo`, `dwh generate`, `dwh simulate`, `dwh funnel generate`

The pipeline (`loaders`) never imports this package; this package uses the pipeline.
"""
