#!/usr/bin/env bash
# Refreshes the Swagger UI assets that the API embeds for its offline /docs page
# (shared/api/docsui), from the npm package swagger-ui-dist. Not part of the build: the assets are
# committed, so building needs neither npm nor a network. Run it only to change version:
#   bash scripts/docs-assets.sh 5.35.0
# The large files are stored gzip-compressed (served as such), which keeps the Lambda bootstrap
# about 1.5 MB smaller.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

version=${1:?usage: docs-assets.sh <swagger-ui-dist version>}
command -v npm >/dev/null || die "npm is not installed"
dest="$FIN_ROOT/shared/api/docsui"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null) \
  || die "npm could not fetch swagger-ui-dist@$version"
tar -xzf "$work/swagger-ui-dist-$version.tgz" -C "$work"
for f in swagger-ui-bundle.js swagger-ui.css; do
  gzip -9 -n -c "$work/package/$f" >"$dest/$f.gz"
done
cp "$work/package/LICENSE" "$work/package/NOTICE" "$work/package/swagger-ui-bundle.js.LICENSE.txt" "$dest/"
sed -i "s/swagger-ui-dist@[0-9.]*/swagger-ui-dist@$version/" "$dest/README.md"
log "swagger-ui-dist $version is in $dest"
