-- Audit: what each load did, newest first (batches, rows extracted, new row versions).
-- `raw` is a reserved word on Redshift: the schema is always quoted.
select
    table_name,
    mode,
    count(*) as batches,
    sum(rows_in_batch) as rows_extracted,
    sum(rows_inserted) as new_versions,
    min(loaded_at) as first_loaded_at,
    max(loaded_at) as last_loaded_at
from "{{ env_var('DWH_RAW_SCHEMA', 'raw') }}"._load_log
group by table_name, mode
order by last_loaded_at desc
