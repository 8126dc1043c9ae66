#!/usr/bin/env bash
# Build kube-apiserver v1.20.2 for the test ground from Debian bookworm's `kubernetes` source
# package, with Debian's Go. No registry ships a kube-apiserver binary; Debian builds only kubectl
# from this source, but the whole upstream tree (dependencies vendored) is in it.
#
# Three workarounds (see the project's notes on the kube test ground):
#   1. module mode fails with -mod=vendor, so build in GOPATH mode (GO111MODULE=off) from
#      $GOPATH/src/k8s.io/kubernetes (a symlink to the unpacked tree), as upstream 1.20 did;
#   2. pkg/generated/openapi/zz_generated.openapi.go is not in the tarball: generate it with the
#      vendored openapi-gen over the same input set as upstream's Makefile.generated_files, and
#      check the API-rule report equals api/api-rules/violation_exceptions.list;
#   3. the vendored reflect2 1.0.1 segfaults under Go >= 1.18: use Debian's reflect2 1.0.2;
#   4. built with Go >= 1.16, the vendored OpenAPI validators take every empty string in a custom
#      resource for null ("Invalid value: \"null\" ... must be of type string"): Go 1.16 changed
#      reflect.Zero, and their zero-value check compares against it (kubernetes/kubernetes#99804).
#      Apply upstream's fix (kubernetes/kube-openapi#230, in kube-apiserver >= 1.21): drop the
#      reflect.Zero clause, so only a real nil is null.
#
# The binary is cached outside the repository, keyed by the Debian version and BUILD_REVISION
# (raised whenever a patch changes what is built, so an old cache is rebuilt):
#   ${XDG_CACHE_HOME:-$HOME/.cache}/airflow-tfjob/kube-apiserver/<debian-version>-<rev>/kube-apiserver
# When it exists (and the apt packages are installed) nothing is fetched or built.
# The last line on stdout is the binary's path; progress goes to stderr.
set -Eeuo pipefail

readonly DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
readonly GIT_VERSION="v1.20.2"
readonly BUILD_REVISION="r2"  # r2: empty strings in custom resources (step 4)
readonly PACKAGES=(dpkg-dev golang-go golang-github-modern-go-reflect2-dev etcd-server etcd-client
                   openssl)
readonly CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/airflow-tfjob"
readonly OUT_DIR="$CACHE_ROOT/kube-apiserver/$DEB_VERSION-$BUILD_REVISION"
readonly BINARY="$OUT_DIR/kube-apiserver"
readonly REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
readonly SRC_LIST=/etc/apt/sources.list.d/airflow-tfjob-deb-src.sources

STEP="start"
WORK=""

log() { printf '==> %s\n' "$*" >&2; }
fail() {
  printf 'build_apiserver.sh: FAILED in step "%s": %s\n' "$STEP" "$*" >&2
  if [ -n "$WORK" ]; then
    printf 'build_apiserver.sh: build directory kept for inspection: %s\n' "$WORK" >&2
  fi
  exit 1
}
on_err() {
  printf 'build_apiserver.sh: FAILED in step "%s": command `%s` exited %s (line %s)\n' \
    "$STEP" "$2" "$1" "$3" >&2
  if [ -n "$WORK" ]; then
    printf 'build_apiserver.sh: build directory kept for inspection: %s\n' "$WORK" >&2
  fi
}
trap 'on_err $? "$BASH_COMMAND" $LINENO' ERR

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else fail "need root (or sudo) to run: $*"
  fi
}

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed' || printf '%s\n' "$p"
  done
}

have_deb_src() {
  grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# A deb-src stanza per deb stanza of debian.sources: same URIs, suites, components and key.
add_deb_src() {
  local main=/etc/apt/sources.list.d/debian.sources
  log "adding deb-src entries in $SRC_LIST"
  if [ -f "$main" ]; then
    sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/' "$main" \
      | as_root tee "$SRC_LIST" >/dev/null
  else
    as_root tee "$SRC_LIST" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
}

ensure_packages() {
  STEP="apt packages"
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return 0
  log "installing: $(echo "$missing" | tr '\n' ' ')"
  as_root apt-get update -qq || fail "apt-get update failed (network to the Debian archive?)"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $missing \
    >&2 || fail "apt-get install failed for: $missing"
}

fetch_source() {
  STEP="fetch source kubernetes=$DEB_VERSION"
  if ! have_deb_src; then
    add_deb_src
    as_root apt-get update -qq || fail "apt-get update failed after adding deb-src entries"
  fi
  log "apt-get source kubernetes=$DEB_VERSION (34 MB) into $WORK"
  (cd "$WORK" && apt-get source -qq "kubernetes=$DEB_VERSION" >&2) \
    || fail "apt-get source failed: is version $DEB_VERSION still in the archive?"
}

prepare_gopath() {
  STEP="prepare GOPATH tree"
  local tree
  tree="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
  [ -n "$tree" ] || fail "no kubernetes-* directory unpacked in $WORK"
  mkdir -p "$WORK/gopath/src/k8s.io"
  ln -s "$tree" "$WORK/gopath/src/k8s.io/kubernetes"
  cd "$WORK/gopath/src/k8s.io/kubernetes"
  [ -d vendor/github.com/modern-go/reflect2 ] || fail "vendored reflect2 not found"
}

replace_reflect2() {
  STEP="replace vendored reflect2 with Debian's 1.0.2"
  local dst=vendor/github.com/modern-go/reflect2
  [ -d "$REFLECT2_SRC" ] || fail "$REFLECT2_SRC missing (golang-github-modern-go-reflect2-dev)"
  find "$dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$REFLECT2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) \
    ! -name '*_test.go' -exec cp {} "$dst/" \;
}

# kubernetes/kubernetes#99804, fixed upstream by kubernetes/kube-openapi#230: in both vendored
# copies of the validator (k8s.io/kube-openapi and github.com/go-openapi/validate), the type check
# treats a value equal to reflect.Zero of its type ("" under Go >= 1.16) as null.
patch_empty_strings() {
  STEP="patch the OpenAPI validators (kubernetes#99804)"
  local zero='data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data))'
  local files file
  files="$(grep -rlF --include=type.go "$zero" vendor/ || true)"
  [ "$(printf '%s\n' "$files" | grep -c .)" -eq 2 ] \
    || fail "expected the zero-value check in 2 vendored type.go files, found: ${files:-none}"
  for file in $files; do
    sed -i "s/$(printf '%s' "$zero" | sed 's/[][\\/.*^$]/\\&/g')/data == nil/" "$file"
    ! grep -qF "$zero" "$file" || fail "could not patch $file"
    log "patched $file (kube-openapi#230)"
  done
}

# grep -l over many files through xargs: "no match in one batch" (xargs exit 123) is not an error.
grep_files() { xargs -r grep -l --color=never "$1" -- || [ $? -eq 123 ]; }

# The same input set as upstream's Makefile.generated_files (KUBE target): every directory of Go
# files outside vendor/ (staging/src/X named vendor/X, as hack/make-rules/helpers/cache_go_dirs.sh
# does), keep files with a `// +k8s:` tag, drop code-generator and sample-apiserver, keep the
# directories of files carrying `+k8s:openapi-gen=`.
openapi_input_dirs() {
  find -H . \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \
      -o -type f -name '*.go' -print \
    | sed -e 's|^./staging/src|vendor|' -e 's|/[^/]*$||' -e 's|^./||' | LC_ALL=C sort -u \
    > "$WORK/all_go_dirs"
  xargs -a "$WORK/all_go_dirs" -I{} find {} -maxdepth 1 -type f -name '*.go' \
    | grep_files '^// *+k8s:' \
    | grep -Ev '^vendor/k8s.io/(code-generator|sample-apiserver)/' \
    | grep_files '+k8s:openapi-gen=' \
    | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|'
}

generate_openapi() {
  STEP="generate pkg/generated/openapi"
  local report="$WORK/api-rules.report" dirs
  go build -o "$WORK/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen \
    || fail "could not build the vendored openapi-gen"
  dirs="$(openapi_input_dirs | paste -sd, -)"
  [ -n "$dirs" ] || fail "found no +k8s:openapi-gen= packages"
  log "openapi-gen over $(echo "$dirs" | tr ',' '\n' | wc -l) packages"
  "$WORK/bin/openapi-gen" --input-dirs "$dirs" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi \
    --output-file-base zz_generated.openapi \
    --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --output-base "$GOPATH/src" --report-filename "$report" >&2 \
    || fail "openapi-gen failed"
  [ -s pkg/generated/openapi/zz_generated.openapi.go ] || fail "openapi-gen wrote no file"
  diff -u api/api-rules/violation_exceptions.list "$report" >&2 \
    || fail "API-rule report differs from api/api-rules/violation_exceptions.list (wrong inputs)"
}

build_binary() {
  STEP="go build kube-apiserver"
  local pkg=k8s.io/kubernetes/vendor/k8s.io
  local ldflags="-s -w"
  ldflags+=" -X $pkg/component-base/version.gitVersion=$GIT_VERSION"
  ldflags+=" -X $pkg/component-base/version.gitMajor=1"
  ldflags+=" -X $pkg/component-base/version.gitMinor=20"
  ldflags+=" -X $pkg/component-base/version.gitTreeState=clean"
  ldflags+=" -X $pkg/client-go/pkg/version.gitVersion=$GIT_VERSION"
  log "go build ./cmd/kube-apiserver ($(go version | cut -d' ' -f3), providerless)"
  go build -tags providerless -ldflags "$ldflags" -o "$WORK/kube-apiserver" ./cmd/kube-apiserver \
    || fail "go build failed"
  "$WORK/kube-apiserver" --version | grep -qx "Kubernetes $GIT_VERSION" \
    || fail "built binary reports '$("$WORK/kube-apiserver" --version)', not $GIT_VERSION"
}

install_binary() {
  STEP="install into cache"
  mkdir -p "$OUT_DIR"
  local tmp
  tmp="$(mktemp "$OUT_DIR/.kube-apiserver.XXXXXX")"
  cp "$WORK/kube-apiserver" "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BINARY"  # atomic: a concurrent reader sees the old state or the whole binary
}

main() {
  ensure_packages
  if [ -x "$BINARY" ]; then
    log "cached: $BINARY"
    printf '%s\n' "$BINARY"
    return 0
  fi
  local started=$SECONDS
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/airflow-tfjob-apiserver.XXXXXX")"
  export GOPATH="$WORK/gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS="" GOPROXY=off
  export GOCACHE="$CACHE_ROOT/go-build"
  fetch_source
  prepare_gopath
  replace_reflect2
  patch_empty_strings
  generate_openapi
  build_binary
  install_binary
  cd /
  rm -rf "$WORK"
  log "built $BINARY in $((SECONDS - started)) s"
  printf '%s\n' "$BINARY"
}

main "$@"
