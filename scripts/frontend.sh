# Label Studio's open-source labeling front end (Apache-2.0), for the web UI's labeling screen
# (sourced). It is not committed: the pinned PyPI wheel label-studio==1.13.1 carries a standalone
# build in web/dist/libs/editor/ (it defines window.LabelStudio) and the fonts its CSS loads from
# /static/fonts/ in label_studio/core/static/fonts/. This downloads the wheel once, checks its
# SHA-256, and unpacks those two folders into $LP_CACHE/frontend/<version>/.

LS_FRONTEND_VERSION=1.13.1
LS_FRONTEND_SHA256=ce99ae0f513c2cd29a41692bcd977bfd1c86605f1bc6840eda0735f58f717e10

# Prints the folder holding editor/ and fonts/, fetching them first when missing; fails (and
# prints nothing) when they cannot be had.
ensure_frontend() {
    local dir=$LP_CACHE/frontend/$LS_FRONTEND_VERSION
    if [ ! -s "$dir/editor/main.js" ]; then
        fetch_frontend "$dir" || return 1
    fi
    # Compressed copies of the big files, which the server sends to browsers that accept gzip.
    local file
    for file in "$dir/editor/main.js" "$dir/editor/main.css"; do
        if [ -s "$file.gz" ] && [ ! "$file" -nt "$file.gz" ]; then continue; fi
        gzip -k -9 -f "$file" || return 1
    done
    echo "$dir"
}

# Downloads and checks the wheel, unpacks into a temporary folder, then moves it into place, so
# an interrupted run never leaves a half-filled folder behind.
fetch_frontend() {
    local dir=$1
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    local work; work=$(mktemp -d) || return 1
    log "downloading label-studio==$LS_FRONTEND_VERSION from PyPI for its labeling front end"
    if ! python3 -m pip download --no-deps --disable-pip-version-check -q -d "$work/wheel" \
        "label-studio==$LS_FRONTEND_VERSION" >&2; then
        log "could not download label-studio==$LS_FRONTEND_VERSION"; rm -rf "$work"; return 1
    fi
    local wheel; wheel=$(ls "$work"/wheel/label_studio-"$LS_FRONTEND_VERSION"-*.whl)
    if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$LS_FRONTEND_SHA256" ]; then
        log "checksum mismatch for $wheel: refusing to use it"; rm -rf "$work"; return 1
    fi
    if ! python3 - "$wheel" "$work/out" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
parts = {"web/dist/libs/editor/": out / "editor", "label_studio/core/static/fonts/": out / "fonts"}
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        for prefix, target in parts.items():
            if name.startswith(prefix) and not name.endswith("/"):
                path = target / name[len(prefix):]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(archive.read(name))
if not (out / "editor" / "main.js").is_file():
    sys.exit("the wheel has no web/dist/libs/editor/main.js")
PY
    then
        log "could not unpack the labeling front end"; rm -rf "$work"; return 1
    fi
    rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
    mv "$work/out" "$dir" && rm -rf "$work"
}
