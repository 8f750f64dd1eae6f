# Sourced by the ops/cron scripts: logging, the partial-file discipline and retention.
# shellcheck shell=bash

SCRIPT_NAME=$(basename "$0" .sh)

log() { printf '%s %s: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SCRIPT_NAME" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The backup directory must exist (or be creatable) and be writable by whoever runs the job.
prepare_backup_dir() {
    local dir=$1
    mkdir -p "$dir" 2>/dev/null || die "cannot create backup directory $dir as $(id -un)"
    if ! [ -d "$dir" ] || ! [ -w "$dir" ] || ! [ -x "$dir" ]; then
        die "backup directory $dir is not writable by $(id -un)"
    fi
}

# One run per directory at a time: a second run exits instead of racing the first.
take_lock() {
    local lockfile=$1
    exec 9>"$lockfile" || die "cannot open lock file $lockfile"
    flock -n 9 || die "another run holds $lockfile"
}

# Turn a finished NAME.partial into NAME plus NAME.sha256. Both are fsynced before they get their
# final names, and the checksum sidecar appears last: a backup is complete only when NAME.sha256
# exists and matches.
publish() {
    local final=$1 partial=$1.partial dir name sum
    dir=$(dirname "$final")
    name=$(basename "$final")
    sum=$(sha256sum "$partial" | cut -d' ' -f1)
    printf '%s  %s\n' "$sum" "$name" >"$final.sha256.partial"
    sync "$partial" "$final.sha256.partial"
    mv -f "$partial" "$final"
    mv -f "$final.sha256.partial" "$final.sha256"
    sync "$dir"
    log "wrote $final ($(stat -c %s "$final") bytes, sha256 $sum)"
}

# Delete complete backups matching PATTERN older than KEEP_DAYS, and partial files a killed run
# left behind. Called only after a successful backup, so failing nights never eat old backups.
prune() {
    local dir=$1 pattern=$2 keep_days=$3 old
    [[ $keep_days =~ ^[0-9]+$ ]] || die "retention must be a whole number of days, got '$keep_days'"
    while IFS= read -r old; do
        [ -n "$old" ] || continue
        rm -f -- "$old" "$old.sha256"
        log "retention: removed $(basename "$old") (older than $keep_days days)"
    done < <(find "$dir" -maxdepth 1 -type f -name "$pattern" -mtime +"$keep_days" -print)
    find "$dir" -maxdepth 1 -type f -name '*.partial' -mmin +1440 -delete
}

# Check NAME against NAME.sha256 before anything reads it.
verify_checksum() {
    local file=$1 sidecar=$1.sha256 expected actual
    [ -f "$file" ] || die "no such backup: $file"
    [ -f "$sidecar" ] || die "$sidecar is missing: the backup is incomplete or not a backup"
    expected=$(cut -d' ' -f1 "$sidecar")
    actual=$(sha256sum "$file" | cut -d' ' -f1)
    [ "$expected" = "$actual" ] || die "checksum mismatch for $file (expected $expected, got $actual): refusing to restore"
    log "checksum ok: $file"
}
