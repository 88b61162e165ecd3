# The default IBM Maximo work-order mapping of Crosswalk
# (engine/systems/mappings/ibm-maximo/work_order.yaml), written as a jq program for the
# benchmarks: it reads one MXAPIWODETAIL record (lean JSON) per input and writes the
# unified record. The tests check that it gives the same output as Crosswalk on the
# Maximo work-order samples.

def blank: . == null or . == "";
# `2024-03-19T08:00:00-04:00` in UTC: `2024-03-19T12:00:00Z`.
def to_datetime:
  if blank then null
  else capture("^(?<t>[0-9-]{10}T[0-9:]{8})(\\.[0-9]+)?(?<z>Z|[+-][0-9]{2}:?[0-9]{2})$") as $c
    | ($c.t + "Z" | fromdateiso8601)
      - (if $c.z == "Z" then 0
         else ($c.z[1:3] | tonumber) * 3600 + ($c.z[-2:] | tonumber) * 60
              | if $c.z[0:1] == "-" then -. else . end
         end)
    | todate
  end;
def to_date: if blank then null else .[0:10] end;

{
  id: .wonum,
  number: .wonum,
  title: .description,
  description: .description_longdescription,
  status: (.status | if . == null then null
    else {"WAPPR": "open", "WSCH": "open", "APPR": "scheduled", "WMATL": "on_hold",
          "WPCOND": "on_hold", "INPRG": "in_progress", "COMP": "completed", "CLOSE": "closed",
          "HISTEDIT": "closed", "CAN": "cancelled"}[.] // "unknown" end),
  priority: .wopriority,
  type: .worktype,
  asset_id: .assetnum,
  location_id: .location,
  site_id: .siteid,
  scheduled_start: ([.schedstart, .targstartdate] | map(select(blank | not)) | .[0] | to_datetime),
  due_date: (.targcompdate | to_date),
  completed_at: (.actfinish | to_datetime),
  custom_fields: {},
  created_at: (.reportdate | to_datetime),
  updated_at: (.changedate | to_datetime)
}
