#!/usr/bin/env bash
# Fails when the domain crate, with every feature, depends on a database
# driver, a web framework or an async runtime.
set -euo pipefail

forbidden='^(diesel|diesel_migrations|actix-web|actix-rt|tokio|libsqlite3-sys|pq-sys)$'
found=$(cargo tree -p domain --all-features -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u | grep -E "$forbidden" || true)
if [[ -n "$found" ]]; then
  echo "the domain crate must stay free of IO dependencies, but it depends on: $found" >&2
  exit 1
fi
echo "domain crate is free of diesel, actix and tokio"
