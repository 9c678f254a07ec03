#!/usr/bin/env bash
# Installs the browser the web-page tests drive: Debian's chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver), as root, with apt-get where absent. Idempotent:
# installs only what is missing, then prints both versions. Takes well under a second when
# both are installed; the first install downloads a few hundred MB from Debian's mirror.
#
#   sudo scripts/browser.sh
#
# The tests (`crossdock_kit::browser`) find them there, or where the environment variables
# CHROMIUM and CHROMEDRIVER point.
set -euo pipefail

readonly CHROMIUM=/usr/bin/chromium
readonly CHROMEDRIVER=/usr/bin/chromedriver

readonly START_NS=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - START_NS) / 1000000)); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }
log() { printf 'browser: [%s] %s\n' "$(elapsed)" "$*"; }
die() { printf 'browser: ERROR: %s\n' "$*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
{ installed chromium && [[ -x $CHROMIUM ]]; } || missing+=(chromium)
{ installed chromium-driver && [[ -x $CHROMEDRIVER ]]; } || missing+=(chromium-driver)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "${missing[*]} missing; run as root to install them (sudo scripts/browser.sh)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt's chatter (debconf's "apt-utils is not installed"…) goes to a log shown on failure.
    apt_log=$(mktemp)
    trap 'rm -f "$apt_log"' EXIT
    apt-get update -qq >"$apt_log" 2>&1 || die "apt-get update failed: $(tail -n 5 "$apt_log")"
    # Recommends (upower, notification-daemon…) are not needed headless. --reinstall: a
    # package marked installed whose binary is gone is put back too.
    apt-get install -y -qq --no-install-recommends --reinstall "${missing[@]}" >"$apt_log" 2>&1 \
        || die "apt-get install ${missing[*]} failed: $(tail -n 5 "$apt_log")"
    log "installed ${missing[*]}"
fi

[[ -x $CHROMIUM ]] || die "$CHROMIUM missing after install (package chromium)"
[[ -x $CHROMEDRIVER ]] || die "$CHROMEDRIVER missing after install (package chromium-driver)"

# As root, chromium refuses to start without --no-sandbox; --version does not start it.
chromium_version=$("$CHROMIUM" --version 2>/dev/null) || die "$CHROMIUM --version failed: $("$CHROMIUM" --version 2>&1 | head -n 1)"
driver_version=$("$CHROMEDRIVER" --version 2>/dev/null) || die "$CHROMEDRIVER --version failed: $("$CHROMEDRIVER" --version 2>&1 | head -n 1)"
log "ready: $chromium_version ($CHROMIUM); $driver_version ($CHROMEDRIVER)"
