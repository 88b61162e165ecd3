#!/usr/bin/env python3
"""Writes the benchmark workloads: NDJSON files scaled from the project's samples.

    bench/workloads.py OUT_DIR

- sap-po-small.ndjson: 10,000 SAP purchase orders (A_PurchaseOrder with items and
  schedule lines expanded, the fields the mapping reads and a few more), about 2 KB
  each, 5 items.
- sap-po-large.ndjson: 1,000 SAP purchase orders, about 50 KB each, 200 items.
- maximo-wo-small.ndjson: 10,000 Maximo work orders (MXAPIWODETAIL, lean JSON), about
  2 KB each, with 5 planned-material rows (`wpmaterial`).
- maximo-wo-large.ndjson: 1,000 Maximo work orders, about 50 KB each, with 200 rows.

The unified work order has no lines, so the mapping reads past the material rows: they
make the records as large as the purchase orders, as real work orders with their child
objects are. Values vary per record (keys, quantities, prices, dates, statuses) and are
the same on every run.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "examples", "payloads")

PO_HEADER_KEYS = [
    "PurchaseOrder", "CompanyCode", "PurchaseOrderType", "PurchasingDocumentDeletionCode",
    "PurchasingProcessingStatus", "CreatedByUser", "CreationDate", "LastChangeDateTime",
    "Supplier", "Language", "PaymentTerms", "PurchasingOrganization", "PurchasingGroup",
    "PurchaseOrderDate", "DocumentCurrency", "ExchangeRate", "IncotermsClassification",
    "AddressName",
]
PO_ITEM_KEYS = [
    "PurchaseOrderItem", "PurchaseOrderItemText", "Plant", "OrderQuantity",
    "PurchaseOrderQuantityUnit", "NetPriceAmount", "NetPriceQuantity", "Material",
]
STATUSES = ["01", "02", "03", "04", "05", "08"]
UNITS = ["PC", "EA", "KG", "M", "L"]
WO_STATUSES = ["WAPPR", "WSCH", "APPR", "INPRG", "WMATL", "COMP", "CLOSE"]


def sap_order(template, n, items):
    order = {k: template.get(k) for k in PO_HEADER_KEYS}
    number = str(4500000000 + n)
    order["PurchaseOrder"] = number
    order["PurchasingProcessingStatus"] = STATUSES[n % len(STATUSES)]
    order["PurchasingDocumentDeletionCode"] = "L" if n % 97 == 0 else ""
    day_ms = 86400000
    order["CreationDate"] = f"/Date({1704067200000 + (n % 365) * day_ms})/"
    order["PurchaseOrderDate"] = order["CreationDate"]
    order["LastChangeDateTime"] = f"/Date({1704067200000 + (n % 365) * day_ms + 3600000 + n % 3600 * 1000}+0000)/"
    item_template = template["to_PurchaseOrderItem"]["results"][0]
    schedule_template = item_template["to_ScheduleLine"]["results"][0]
    results = []
    for i in range(items):
        item = {k: item_template.get(k) for k in PO_ITEM_KEYS}
        item["PurchaseOrderItem"] = str((i + 1) * 10)
        item["Material"] = f"RM-{(n * 7 + i) % 9000 + 1000}"
        item["PurchaseOrderItemText"] = f"Bearing {(n + i) % 500} 2RS"
        item["OrderQuantity"] = f"{(n + i) % 90 + 1}.000"
        item["PurchaseOrderQuantityUnit"] = UNITS[(n + i) % len(UNITS)]
        item["NetPriceAmount"] = f"{((n * 13 + i * 7) % 10000) / 100 + 1:.2f}"
        item["NetPriceQuantity"] = "1" if (n + i) % 10 else "100"
        schedule = {
            "ScheduleLine": "1",
            "ScheduleLineDeliveryDate": f"/Date({1706745600000 + ((n + i) % 300) * day_ms})/",
        }
        item["to_ScheduleLine"] = {"results": [schedule]}
        results.append(item)
    order["to_PurchaseOrderItem"] = {"results": results}
    return order


def maximo_order(template, n, rows):
    order = dict(template)
    order["wonum"] = str(100000 + n)
    order["workorderid"] = 500000 + n
    order["href"] = f"oslc/os/mxapiwodetail/_{n:08d}"
    order["status"] = WO_STATUSES[n % len(WO_STATUSES)]
    order["wopriority"] = n % 5 + 1
    order["assetnum"] = str(11000 + n % 900)
    day = n % 28 + 1
    order["reportdate"] = f"2024-03-{day:02d}T07:22:10-04:00"
    order["schedstart"] = f"2024-04-{day:02d}T08:00:00-04:00" if n % 3 else None
    order["targstartdate"] = f"2024-04-{day:02d}T09:00:00-04:00"
    order["targcompdate"] = f"2024-04-{day:02d}T17:00:00-04:00"
    order["changedate"] = f"2024-04-{day:02d}T10:21:37-04:00"
    order["actfinish"] = f"2024-04-{day:02d}T16:00:00-04:00" if order["status"] in ("COMP", "CLOSE") else None
    order["wpmaterial"] = [
        {
            "wpitemid": n * 1000 + i,
            "itemnum": f"0-{(n * 7 + i) % 9000 + 1000}",
            "description": f"Mechanical seal kit {(n + i) % 500}",
            "itemqty": (n + i) % 12 + 1,
            "orderunit": "EACH",
            "unitcost": round(((n * 13 + i * 7) % 10000) / 100 + 1, 2),
            "location": "CENTRAL",
            "storelocsite": order["siteid"],
            "linetype": "ITEM",
            "requiredate": f"2024-04-{day:02d}T00:00:00-04:00",
        }
        for i in range(rows)
    ]
    return order


def write(path, records):
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, separators=(",", ":")))
            f.write("\n")
    size = os.path.getsize(path)
    return size


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/workloads.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(SAMPLES, "sap-s4hana", "purchase_order", "standard.json")) as f:
        po = json.load(f)["d"]
    with open(os.path.join(SAMPLES, "ibm-maximo", "work_order", "standard.json")) as f:
        wo = json.load(f)
    for name, count, make in [
        ("sap-po-small", 10000, lambda n: sap_order(po, n, 5)),
        ("sap-po-large", 1000, lambda n: sap_order(po, n, 200)),
        ("maximo-wo-small", 10000, lambda n: maximo_order(wo, n, 5)),
        ("maximo-wo-large", 1000, lambda n: maximo_order(wo, n, 200)),
    ]:
        size = write(os.path.join(out, f"{name}.ndjson"), (make(n) for n in range(count)))
        print(f"{name}.ndjson: {count} records, {size / count / 1024:.1f} KiB each")


if __name__ == "__main__":
    main()
