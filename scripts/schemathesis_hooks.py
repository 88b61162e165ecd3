"""Schemathesis hooks for scripts/schemathesis (loaded through SCHEMATHESIS_HOOKS).

`POST /v1/plugins` takes a WebAssembly component as `application/wasm`: its body is
bytes, sent as schemathesis sends `application/octet-stream`.
"""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
