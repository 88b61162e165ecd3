# The default SAP S/4HANA purchase-order mapping of Crosswalk
# (engine/systems/mappings/sap-s4hana/purchase_order.yaml), written as a jq program for the
# benchmarks: it reads one A_PurchaseOrder record (with its items and schedule lines
# expanded) per input and writes the unified record. The tests check that it gives the
# same output as Crosswalk on the SAP purchase-order samples.

def blank: . == null or . == "";
def null_if_empty: if blank then null else . end;
# OData V2 `/Date(1710201600000)/` or `/Date(1710409337000+0000)/` as Unix seconds.
def odata_seconds: capture("^/Date\\((?<ms>-?[0-9]+)") | .ms | tonumber / 1000 | floor;
def to_date: if blank then null else odata_seconds | strftime("%Y-%m-%d") end;
def to_datetime: if blank then null else odata_seconds | strftime("%Y-%m-%dT%H:%M:%SZ") end;
def to_number: if blank then null else tonumber end;
# Crosswalk divides and rounds in decimal; in binary floating point 14.5 / 100 is
# 0.14499…, so half a cent is nudged up to round half away from zero as crosswalk does.
def round2: . * 100 | (if . >= 0 then . + 1e-9 else . - 1e-9 end) | round / 100;

{
  id: .PurchaseOrder,
  number: .PurchaseOrder,
  status: (
    [.PurchasingDocumentDeletionCode, .PurchasingProcessingStatus] | map(select(blank | not)) | .[0]
    | if . == null then null
      else {"L": "cancelled", "S": "on_hold", "01": "draft", "02": "approved",
            "03": "pending_approval", "04": "pending_approval", "05": "approved"}[.] // "unknown"
      end
  ),
  vendor: {id: (.Supplier | null_if_empty), name: (.AddressName | null_if_empty)},
  order_date: (.PurchaseOrderDate | to_date),
  currency: (.DocumentCurrency | null_if_empty),
  total_amount: null,
  site_id: (.to_PurchaseOrderItem.results[0].Plant | null_if_empty),
  lines: [
    .to_PurchaseOrderItem.results[]? | {
      line_number: (.PurchaseOrderItem | to_number),
      item_id: (.Material | null_if_empty),
      description: (.PurchaseOrderItemText | null_if_empty),
      quantity: (.OrderQuantity | to_number),
      unit_of_measure: (.PurchaseOrderQuantityUnit | null_if_empty),
      unit_price: ((.NetPriceAmount | to_number) / (.NetPriceQuantity | to_number)),
      line_amount: ((.NetPriceAmount | to_number) / (.NetPriceQuantity | to_number)
                    * (.OrderQuantity | to_number) | round2),
      need_by_date: (.to_ScheduleLine.results[0].ScheduleLineDeliveryDate | to_date)
    }
  ],
  custom_fields: {},
  created_at: (.CreationDate | to_datetime),
  updated_at: (.LastChangeDateTime | to_datetime)
}
