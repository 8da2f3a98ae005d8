"""Tools for demos, tests and benchmarks, apart from the pipeline (and not in `dwh package`).

    olist_generator.py   the nine Olist CSV files at any scale, quirks included
    funnel_generator.py  funnel files in the vendor's format
    shop_simulator.py    simulated hours of shop activity in the source database
    run.py               `dwh demo`, `dwh generate`, `dwh simulate`, `dwh funnel generate`

No pipeline stage imports this package (only `loaders/cli.py` does, inside the demo commands), and
`dwh package` leaves it out of the Glue artifacts; this package uses the pipeline.
"""
