"""The same plain Emarsys uploader with pandas doing the file work: `read_csv` of the id column
as text, the id rules as vectorised string operations, `drop_duplicates`; HTTP as in
uploader_csv.py.

python3 uploader_pandas.py FILE --base-url http://127.0.0.1:PORT/api/v2/ [--user U --secret S]
"""

import sys

import pandas as pd

from emarsys_client import MAX_ID_BYTES, run


def read_ids(path, column):
    ids = pd.read_csv(
        path, usecols=[column], dtype=str, keep_default_na=False, encoding="utf-8"
    )[column]
    ok = (
        (ids.str.len() > 0)
        & (ids.str.encode("utf-8").str.len() <= MAX_ID_BYTES)
        & (ids.str.strip() == ids)
        & ~ids.str.contains(r"[\x00-\x1f\x7f]", regex=True)
    )
    valid = ids[ok]
    distinct = valid.drop_duplicates()
    rejected = int((~ok).sum())
    return distinct.tolist(), rejected, len(valid) - len(distinct)


if __name__ == "__main__":
    sys.exit(run(read_ids, "bench_pandas"))
