"""A plain Emarsys uploader on the standard `csv` module: read the audience CSV, validate and
de-duplicate the customer ids, POST them in batches of 10,000 to a contact list.

python3 uploader_csv.py FILE --base-url http://127.0.0.1:PORT/api/v2/ [--user U --secret S]
"""

import argparse
import csv
import sys

from emarsys_client import report, upload, valid_id


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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--base-url", required=True)
    p.add_argument("--user", default="espbridge")
    p.add_argument("--secret", default="sim-secret")
    p.add_argument("--column", default="customer_id")
    p.add_argument("--list-name", default="bench_csv")
    a = p.parse_args()
    ids, rejected, duplicates = read_ids(a.file, a.column)
    summary = upload(ids, a.base_url, a.user, a.secret, a.list_name)
    report(summary, rejected, duplicates)


if __name__ == "__main__":
    sys.exit(main())
