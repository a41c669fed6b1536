#!/bin/sh
# Install fashion-bot as systemd services (README, "Deploy"), as root, from a checkout:
#   sudo sh deploy/install-systemd.sh
# Users: fashion runs the bot, fashion-index builds and syncs the index (the bot only reads it). The programs go
# to /opt/fashion-bot/.venv (with TensorFlow, for the sync: EXTRAS=index), the pose models to
# /opt/fashion-bot/models, the units to /etc/systemd/system, the settings to /etc/fashion-bot/env.
# ROOT=DIR installs under DIR instead of / (the test suite does, and runs the units' commands from there).
set -eu
ROOT=${ROOT:-}
EXTRAS=${EXTRAS-index}
# The system's Python (python3-venv): the services' users must be able to run it, which a Python under an
# administrator's home (pyenv's, say) is not.
PYTHON=${PYTHON:-/usr/bin/python3}
CHECKOUT=$(cd "$(dirname "$0")/.." && pwd)
APP="$ROOT/opt/fashion-bot"

for user in fashion fashion-index; do
    id "$user" >/dev/null 2>&1 ||
        useradd --system --user-group --no-create-home --home-dir "/var/lib/$user" --shell /usr/sbin/nologin "$user"
done
"$PYTHON" -m venv "$APP/.venv"
"$APP/.venv/bin/pip" install --quiet "$CHECKOUT${EXTRAS:+[$EXTRAS]}"
PEOPLE_MODELS="$APP/models" "$APP/.venv/bin/fashion-index" fetch-models
install -d -m 755 "$ROOT/etc/systemd/system" "$ROOT/etc/fashion-bot"
install -d -m 755 -o fashion-index -g fashion-index "$ROOT/var/lib/fashion-index"
install -m 644 "$CHECKOUT/deploy/fashion-bot.service" "$CHECKOUT/deploy/fashion-sync.service" \
    "$CHECKOUT/deploy/fashion-sync.timer" "$ROOT/etc/systemd/system/"
# systemd reads the settings as root before it starts either service: nobody else needs to.
[ -e "$ROOT/etc/fashion-bot/env" ] || install -m 600 "$CHECKOUT/.env.example" "$ROOT/etc/fashion-bot/env"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
echo "installed: put TELEGRAM_BOT_TOKEN (and FEED_URL) in $ROOT/etc/fashion-bot/env, build the index, then" \
    "systemctl enable --now fashion-bot fashion-sync.timer"
