"""A plain Emarsys uploader on the standard `csv` module: read the audience CSV, validate and
de-duplicate the customer ids, POST them in batches of 10,000 to a contact list.

python3 uploader_csv.py FILE --base-url http://127.0.0.1:PORT/api/v2/ [--user U --secret S]
"""

import csv
import sys

from emarsys_client import run, valid_id


def read_ids(path, column):
    ids, seen = [], set()
    rejected = duplicates = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        at = header.index(column)
        for row in reader:
            cell = row[at] if at < len(row) else ""
            if not valid_id(cell):
                rejected += 1
            elif cell in seen:
                duplicates += 1
            else:
                seen.add(cell)
                ids.append(cell)
    return ids, rejected, duplicates


if __name__ == "__main__":
    sys.exit(run(read_ids, "bench_csv"))
