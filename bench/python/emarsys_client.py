"""The Emarsys calls both plain uploaders make, standard library only.

The same API calls as espbridge's Emarsys adapter (shared/emarsys/src/esp.rs, wire.rs,
wsse.rs): `GET field` once for the ExternalID field's id, `POST contactlist` to create the
list, then `POST contactlist/{id}/add` with at most 10,000 external ids a call, every request
signed with a fresh X-WSSE header.
"""

import argparse
import base64
import hashlib
import json
import os
import time
import urllib.request

BATCH = 10_000
MAX_ID_BYTES = 255


def valid_id(cell):
    """espbridge's customer-id rule (shared/core/src/audience/rows.rs check_customer_id)."""
    if not cell:
        return False
    raw = cell.encode("utf-8")
    if len(raw) > MAX_ID_BYTES:
        return False
    if raw[:1].isspace() or raw[-1:].isspace():
        return False
    return not any(b < 0x20 or b == 0x7F for b in raw)


def wsse_header(user, secret):
    nonce = os.urandom(16).hex()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    hex_digest = hashlib.sha1((nonce + created + secret).encode()).hexdigest()
    digest = base64.b64encode(hex_digest.encode()).decode()
    return (
        f'UsernameToken Username="{user}", PasswordDigest="{digest}", '
        f'Nonce="{nonce}", Created="{created}"'
    )


class Emarsys:
    def __init__(self, base_url, user, secret):
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.user = user
        self.secret = secret
        self.calls = 0

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-WSSE", wsse_header(self.user, self.secret))
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            envelope = json.loads(resp.read())
        self.calls += 1
        if int(envelope.get("replyCode", -1)) != 0:
            raise RuntimeError(f"{method} {path}: replyCode {envelope.get('replyCode')}")
        return envelope.get("data")

    def key_id(self, field_name="ExternalID"):
        for f in self.call("GET", "field"):
            if f["name"] == field_name:
                return str(f["id"])
        raise RuntimeError(f"no field {field_name}")

    def create_list(self, name, key_id):
        body = {"name": name, "key_id": key_id, "external_ids": []}
        return str(self.call("POST", "contactlist", body)["id"])

    def add(self, list_id, key_id, ids):
        body = {"key_id": key_id, "external_ids": ids}
        data = self.call("POST", f"contactlist/{list_id}/add", body)
        return int(data.get("inserted_contacts") or 0)


def upload(ids, base_url, user, secret, list_name):
    """Creates the list and adds `ids` (already valid and distinct) in batches; returns a
    summary dict."""
    esp = Emarsys(base_url, user, secret)
    key_id = esp.key_id()
    list_id = esp.create_list(list_name, key_id)
    inserted = 0
    for start in range(0, len(ids), BATCH):
        inserted += esp.add(list_id, key_id, ids[start : start + BATCH])
    return {"calls": esp.calls, "inserted": inserted, "sent": len(ids)}


def report(summary, rejected, duplicates):
    """One JSON line on stdout for the bench to read (counts only, never a cell)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    summary.update(
        rejected=rejected,
        duplicates=duplicates,
        cpu_s=ru.ru_utime + ru.ru_stime,
        peak_rss_kib=ru.ru_maxrss,
    )
    print(json.dumps(summary), flush=True)


def run(read_ids, list_name):
    """The uploaders' command line: FILE --base-url URL [--user U --secret S --column C]."""
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--base-url", required=True)
    p.add_argument("--user", default="espbridge")
    p.add_argument("--secret", default="sim-secret")
    p.add_argument("--column", default="customer_id")
    p.add_argument("--list-name", default=list_name)
    a = p.parse_args()
    ids, rejected, duplicates = read_ids(a.file, a.column)
    summary = upload(ids, a.base_url, a.user, a.secret, a.list_name)
    report(summary, rejected, duplicates)
