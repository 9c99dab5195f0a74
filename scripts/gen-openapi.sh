#!/usr/bin/env bash
# Regenerates schemas/openapi.json (OpenAPI 3.1) from gateway/routes.json and the schemas embedded in the build.
# Run after changing gateway/routes.json (then scripts/embed-routes.py) or schemas/ (then scripts/embed-schemas.py).
# A test (ForziumGatewayTests) fails while the committed file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/embed-routes.py
swift build --product forzium-gateway >&2
"$(swift build --show-bin-path)/forzium-gateway" --print-openapi > schemas/openapi.json.tmp
mv schemas/openapi.json.tmp schemas/openapi.json
echo "wrote schemas/openapi.json" >&2
