#!/usr/bin/env bash
# System packages the tests start for real, installed from Debian's packages where they are
# missing (`make test` and .ci/run call this; it does nothing when all are present):
# - chromium opens the monitoring index headless (npx playwright install cannot download browsers);
# - postgresql is the production instance's storage, redis-server the Celery executor's broker
#   (tests/test_prod_instance.py);
# - a Java 17+ runtime runs Spark (tests/test_spark_engine.py; pyspark 4 needs 17, Debian 12's
#   default-jre-headless is 17).
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
if command -v apt-get >/dev/null 2>&1; then
  ($sudo apt-get install -y -q "${need[@]}" || { $sudo apt-get update -q && $sudo apt-get install -y -q "${need[@]}"; }) >/dev/null \
    && exit 0
fi
echo "could not install ${need[*]} (needs apt-get as root); the tests that need them will fail or be skipped" >&2
exit 0
