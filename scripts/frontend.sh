# Label Studio's open-source labeling front end (Apache-2.0), for the web UI (issue 5; sourced).
# It is not committed: the pinned PyPI wheel label-studio==1.13.1 carries a standalone build in
# web/dist/libs/editor/ (it defines window.LabelStudio) and the fonts its CSS loads from
# /static/fonts/ in label_studio/core/static/fonts/. This downloads the wheel once, checks its
# SHA-256, and extracts those two folders into $LP_CACHE/frontend/<version>/.

LS_FRONTEND_VERSION=1.13.1
LS_FRONTEND_SHA256=ce99ae0f513c2cd29a41692bcd977bfd1c86605f1bc6840eda0735f58f717e10

# Prints the folder holding editor/ and fonts/, fetching them first when missing.
ensure_frontend() {
    local dir=$LP_CACHE/frontend/$LS_FRONTEND_VERSION
    if [ -s "$dir/editor/main.js" ]; then
        [ -s "$dir/editor/main.js.gz" ] || compress_frontend "$dir"
        echo "$dir"; return 0
    fi
    local download; download=$(mktemp -d)
    log "downloading label-studio==$LS_FRONTEND_VERSION from PyPI for its labeling front end"
    python3 -m pip download --no-deps --disable-pip-version-check -q -d "$download" "label-studio==$LS_FRONTEND_VERSION" >&2
    local wheel; wheel=$(ls "$download"/label_studio-"$LS_FRONTEND_VERSION"-*.whl)
    if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$LS_FRONTEND_SHA256" ]; then
        log "checksum mismatch for $wheel: refusing to use it"; rm -rf "$download"; return 1
    fi
    mkdir -p "$dir"
    python3 - "$wheel" "$dir" <<'PY'
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
PY
    rm -rf "$download"
    compress_frontend "$dir"
    echo "$dir"
}

# Compressed copies of the editor's big files, which the server sends to browsers that accept gzip.
compress_frontend() {
    gzip -k -9 -f "$1/editor/main.js" "$1/editor/main.css"
}
