#!/usr/bin/env bash
# Checks deploy/: the systemd unit with `systemd-analyze verify` (when systemd-analyze is
# installed) and the Dockerfile's structure (no Docker daemon or hadolint needed).
# Usage: deploy/check.sh   (from anywhere; exit 1 on the first failed check)
#        DOCKERFILE=other/Dockerfile deploy/check.sh   checks another Dockerfile's structure
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
unit="$here/switchboard.service"
dockerfile="${DOCKERFILE:-$here/Dockerfile}"
fail() { echo "deploy/check.sh: $*" >&2; exit 1; }

# --- systemd unit -----------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
    # verify refuses a unit whose ExecStart binary is missing, and /usr/local/bin/switchboard
    # is not installed where this runs: check a copy whose Exec lines run /bin/true instead.
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    sed -E 's#^(ExecStart(Pre)?=)/usr/local/bin/switchboard .*#\1/bin/true#' "$unit" >"$tmp/switchboard.service"
    grep -q '^ExecStart=/bin/true$' "$tmp/switchboard.service" || fail "could not stand in for ExecStart in the copy"
    if ! out="$(systemd-analyze verify --man=no "$tmp/switchboard.service" 2>&1)" || [ -n "$out" ]; then
        echo "$out" >&2
        fail "systemd-analyze verify found problems in switchboard.service"
    fi
    echo "ok: systemd-analyze verify switchboard.service (ExecStart stood in by /bin/true)"
else
    echo "skipped: systemd-analyze is not installed"
fi
# What the unit must keep, whatever systemd-analyze says.
for want in '^DynamicUser=yes$' '^ProtectSystem=strict$' '^StateDirectory=switchboard$' \
    '^EnvironmentFile=/etc/switchboard/env$' '^Restart=on-failure$' '^NoNewPrivileges=yes$' \
    '^PrivateTmp=yes$' '^ProtectHome=yes$' '^RestrictAddressFamilies=' '^SystemCallFilter=@system-service$' \
    '^ExecStart=/usr/local/bin/switchboard --config /etc/switchboard/switchboard.toml run$' \
    '^Environment=SWITCHBOARD_DATABASE_URL=sqlite:///var/lib/switchboard/'; do
    grep -Eq "$want" "$unit" || fail "switchboard.service lacks $want"
done
echo "ok: switchboard.service keeps its hardening"

# --- Dockerfile -------------------------------------------------------------------------
# Instructions only: comments dropped, continuation lines joined.
instructions="$(sed -e '/^[[:space:]]*#/d' "$dockerfile" | sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}')"
grep -Eiq '^FROM[[:space:]]+rust:[^[:space:]]+[[:space:]]+AS[[:space:]]+builder$' <<<"$instructions" \
    || fail "Dockerfile: the first stage must be FROM rust:... AS builder"
grep -Eq 'cargo build --release --locked --no-default-features' <<<"$instructions" \
    || fail "Dockerfile: the builder must run cargo build --release --locked --no-default-features"
[ "$(grep -Eic '^FROM ' <<<"$instructions")" -ge 2 ] || fail "Dockerfile: needs a runtime stage after the builder"
last_from="$(grep -Ei '^FROM ' <<<"$instructions" | tail -n1)"
grep -Eiq 'debian:bookworm-slim' <<<"$last_from" || fail "Dockerfile: the runtime stage must be debian:bookworm-slim"
grep -Eq 'COPY --from=builder ' <<<"$instructions" || fail "Dockerfile: the runtime must COPY --from=builder"
grep -Eq 'ca-certificates' <<<"$instructions" || fail "Dockerfile: the runtime needs ca-certificates"
user="$(grep -Ei '^USER ' <<<"$instructions" | tail -n1 | awk '{print $2}')"
[ -n "$user" ] || fail "Dockerfile: no USER: the bot must not run as root"
case "${user%%:*}" in root|0) fail "Dockerfile: USER $user is root" ;; esac
grep -Eiq '^HEALTHCHECK .*healthcheck' <<<"$instructions" || fail "Dockerfile: HEALTHCHECK must ask /healthz (switchboard healthcheck)"
grep -Eiq '^EXPOSE 8080$' <<<"$instructions" || fail "Dockerfile: EXPOSE 8080"
grep -Eq 'SWITCHBOARD_LISTEN=0\.0\.0\.0:8080' <<<"$instructions" || fail "Dockerfile: listen on 0.0.0.0:8080 (SWITCHBOARD_LISTEN)"
# No secret is baked into the image: no ENV or ARG naming a token, secret, password or key.
if grep -Ei '^(ENV|ARG) ' <<<"$instructions" | grep -Eiq '(TOKEN|SECRET|PASSWORD|PUBLIC_KEY|PRIVATE_KEY|_KEY=)'; then
    fail "Dockerfile: secrets must not be set with ENV or ARG; pass them at run time (--env-file)"
fi
if grep -Ei '^ENV ' <<<"$instructions" | grep -Eiq 'postgres(ql)?://[^/@[:space:]]*:[^@[:space:]]*@'; then
    fail "Dockerfile: a database password in ENV"
fi
echo "ok: Dockerfile structure (builder stage, lean build, non-root USER $user, HEALTHCHECK, no secrets in ENV)"
