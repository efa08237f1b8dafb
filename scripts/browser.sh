# Make sure Debian's Chromium is at /usr/bin/chromium for the dashboard's browser tests
# (sourced by scripts/test, after scripts/services.sh, whose service_problem and in_ci it uses).
# As root it is installed with apt-get; otherwise this says what to install: outside CI the
# browser tests are then skipped, with CI=true they fail (tests/dashboard/test_browser.py).
CHROMIUM=/usr/bin/chromium

ensure_chromium() {
  [ -x "$CHROMIUM" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing chromium (apt-get) for the dashboard's browser tests"
    if DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; }; then
      [ -x "$CHROMIUM" ] && return 0
    fi
  fi
  service_problem "Chromium is not installed at $CHROMIUM (the dashboard's browser tests drive it)" \
    "install it: sudo apt-get install chromium (Debian/Ubuntu); the tests launch $CHROMIUM" \
    "itself through Playwright, so no 'playwright install' is needed"
  return 0
}
