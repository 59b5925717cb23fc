#!/usr/bin/env python3
"""A person's life cycle in shredkv, from Python.

    SHREDKV_LIBRARY=build/lib/libshredkv.so.0 python examples/python/lifecycle.py

Creates a store in a temporary directory, adds people with identifiers,
events and records, looks one up by identifier, exports them as NDJSON,
restricts processing, takes a processing lease, erases them, and rotates the
epoch and purges until the erasure receipt says "purged". docs/python.md
describes the API.
"""
import json
import os
import sys
import tempfile

try:
    import shredkv
except ImportError:  # not installed: use the package of this source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import shredkv

T0 = 1_709_251_200_000  # 2024-03-01T00:00:00Z, in ms


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="shredkv-py-") as tmp:
        # The root key never lives in the store directory. Here: 32 random
        # bytes in memory (raw_key); key_file() and passphrase() are the others.
        key = shredkv.raw_key(os.urandom(32))

        with shredkv.Store.open(os.path.join(tmp, "store"), key=key, create=True) as store:
            # People and their identifiers, in one atomic batch: committed when
            # the block ends, discarded if it raises.
            with store.batch() as batch:
                ann = batch.create_person([("email", "ann@example.org"), ("phone", "+49 170 1234567")],
                                          {"name": "Ann", "newsletter": True})
                bob = batch.create_person([("email", "bob@example.org")], {"name": "Bob"})
                for i, who in enumerate((ann, bob, ann)):
                    # amount and currency go (in the clear) into the anonymous
                    # analytics row; address stays encrypted under the person's key.
                    batch.append_event(who, "purchase", T0 + i * 60_000,
                                       {"amount": 19.90 + i, "currency": "EUR", "address": "Examplestr. 1"},
                                       analytics_fields=["amount", "currency"])
            # Records: bytes keys and values in a named collection.
            store.put(ann, "orders", b"2024-03/A-1", b"kettle x1")
            store.put(ann, "orders", b"2024-03/A-2", b"mug x2")

            # Lookup: identifiers are normalised first, so this finds Ann.
            found = store.resolve(("email", " Ann@Example.ORG "))
            assert found == ann
            print("resolved", found, "->", store.get_profile(found))
            for record in store.scan_records(ann, "orders", b"2024-03/"):
                print("  record", record.key.decode(), "=", record.value.decode())

            # Access and portability (Art. 15/20): the export as NDJSON.
            ndjson = store.export_json(ann, ndjson=True).decode()
            lines = [json.loads(line) for line in ndjson.splitlines()]
            print("export:", len(lines), "lines:", ", ".join(sorted({line["type"] for line in lines})))

            # Restriction (Art. 18): no lease for marketing while restricted.
            store.set_consent(ann, "marketing", True, source="web-banner")
            store.restrict(ann, purposes=["marketing"], reason="objection by mail")
            try:
                store.lease(ann, "marketing")
            except shredkv.Restricted as e:
                print("lease refused:", e.code_name)
            store.unrestrict(ann, purposes=["marketing"])

            # A processing lease: erasure of Ann waits while it is held.
            with store.lease(ann, "marketing") as lease:
                print("lease read:", lease.get_profile()["name"], len(list(lease.scan_events())), "events")

            # Erasure (Art. 17) by crypto-shredding: logical at once ...
            receipt = store.erase(ann, request_id="dsr-2024-001", suppress=True)
            print("erased:", receipt.request_id, "level", receipt.level.label)
            try:
                store.get_profile(ann)
            except shredkv.Erased:
                print("Ann's data: gone (Erased)")
            # ... cryptographic after an epoch rotation, purged once the rows are gone.
            store.rotate_epoch()
            while store.purge(10_000).people_pending:
                pass
            final = store.get_erasure("dsr-2024-001")
            assert final.purged and final.level == shredkv.ErasureLevel.PURGED
            print("analytics rows kept (anonymous):", len(list(store.scan_analytics())))
            print("bob untouched:", store.get_profile(bob))
            print("audit chain intact:", store.verify_audit_log().intact)
            print("receipt:", final.request_id, "level", final.level.label, "purged", final.purged)


if __name__ == "__main__":
    main()
