#!/usr/bin/env bash
# Build the test cluster's binaries from their Go modules, once per version, into a cache outside
# the repository:
#
#   kube-apiserver, kube-controller-manager   k8s.io/kubernetes $KUBE_VERSION
#   etcd                                       go.etcd.io/etcd/server/v3, the version Kubernetes pins
#   training-operator                          github.com/kubeflow/training-operator $OPERATOR_VERSION
#   kubeflow.org_tfjobs.yaml                   the CRD from the operator's module (must equal
#                                              tests/data/kubeflow.org_tfjobs.yaml)
#   jobset-controller                          sigs.k8s.io/jobset $JOBSET_VERSION
#   trainer-controller-manager                 github.com/kubeflow/trainer/v2 $TRAINER_VERSION
#   jobset.x-k8s.io_jobsets.yaml,              the CRDs from those modules; their ClusterRoles
#   trainer.kubeflow.org_*.yaml                must equal tests/data's copies (below a header)
#
# k8s.io/kubernetes carries `replace` directives to its staging folders, so `go install` refuses
# it; a wrapper module requires it and replaces each staging module by its published v0.x release
# (the same minor and patch). etcd is built in the same module from `etcdmain`, so its version is the
# one the apiserver is built and tested against. The training operator has no `replace` and goes
# through `go install`. JobSet and Trainer cannot: `go install M@V` asks the proxy for the module's
# version list (the deprecation check), which it refuses (403); so each module is fetched with
# `go mod download` and built in its own folder of the module cache, with its own go.mod.
#
# Cache layout (${XDG_CACHE_HOME:-$HOME/.cache}/airflow-tfjob):
#   kube/<KUBE_VERSION>-<BUILD_REVISION>/{kube-apiserver,kube-controller-manager,etcd}
#   training-operator/<OPERATOR_VERSION>/{training-operator,kubeflow.org_tfjobs.yaml}
#   trainer/<TRAINER_VERSION>-jobset-<JOBSET_VERSION>/{trainer-controller-manager,
#       jobset-controller,jobset.x-k8s.io_jobsets.yaml,trainer.kubeflow.org_*.yaml}
# When the three folders are complete nothing is fetched or built. The Go module and build caches
# are removed after a successful build (they are ~2 GB and only a new version needs them again).
# The last lines on stdout are the three folders (kube, operator, trainer); progress goes to
# stderr.
set -Eeuo pipefail

readonly KUBE_VERSION="${AIRFLOW_TFJOB_KUBE_VERSION:-v1.36.3}"
readonly OPERATOR_VERSION="${AIRFLOW_TFJOB_OPERATOR_VERSION:-v1.9.4}"
readonly TRAINER_VERSION="${AIRFLOW_TFJOB_TRAINER_VERSION:-v2.3.0}"
readonly JOBSET_VERSION="${AIRFLOW_TFJOB_JOBSET_VERSION:-v0.12.0}"
readonly BUILD_REVISION="r1"
readonly CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/airflow-tfjob"
readonly KUBE_DIR="$CACHE_ROOT/kube/$KUBE_VERSION-$BUILD_REVISION"
readonly OPERATOR_DIR="$CACHE_ROOT/training-operator/$OPERATOR_VERSION"
readonly TRAINER_DIR="$CACHE_ROOT/trainer/$TRAINER_VERSION-jobset-$JOBSET_VERSION"
readonly HERE="$(cd "$(dirname "$0")" && pwd)"
readonly CRD_COPY="$HERE/../data/kubeflow.org_tfjobs.yaml"
readonly OPERATOR_MODULE="github.com/kubeflow/training-operator"
readonly TRAINER_MODULE="github.com/kubeflow/trainer/v2"
readonly JOBSET_MODULE="sigs.k8s.io/jobset"
readonly TRAINER_CRDS="trainjobs trainingruntimes clustertrainingruntimes"

STEP="start"
log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'build_kube.sh: FAILED in step "%s": %s\n' "$STEP" "$*" >&2; exit 1; }
trap 'printf "build_kube.sh: FAILED in step \"%s\": \`%s\` exited %s (line %s)\n" \
  "$STEP" "$BASH_COMMAND" "$?" "$LINENO" >&2' ERR

# The go command: the machine's own (1.26 here), never a toolchain download.
go_env() {
  export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -mod=mod"
  export GOGC=400  # the compiler collects garbage less often: faster builds, memory is plentiful
  export GOMODCACHE="$CACHE_ROOT/go/mod" GOCACHE="$CACHE_ROOT/go/build"
  export GOPATH="$CACHE_ROOT/go/path"
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null || fail "no go command on PATH (Go >= 1.26 is needed)"
  case "$(go env GOVERSION)" in
    go1.2[6-9]*|go1.[3-9]*) ;;
    *) fail "$(go env GOVERSION) is too old: the modules need Go >= 1.26 (is Debian's first on PATH?)" ;;
  esac
}

kube_complete() {
  [ -x "$KUBE_DIR/kube-apiserver" ] && [ -x "$KUBE_DIR/kube-controller-manager" ] \
    && [ -x "$KUBE_DIR/etcd" ]
}
operator_complete() {
  [ -x "$OPERATOR_DIR/training-operator" ] && [ -s "$OPERATOR_DIR/kubeflow.org_tfjobs.yaml" ]
}
trainer_complete() {
  local crd
  [ -x "$TRAINER_DIR/trainer-controller-manager" ] && [ -x "$TRAINER_DIR/jobset-controller" ] \
    && [ -s "$TRAINER_DIR/jobset.x-k8s.io_jobsets.yaml" ] || return 1
  for crd in $TRAINER_CRDS; do [ -s "$TRAINER_DIR/trainer.kubeflow.org_$crd.yaml" ] || return 1; done
}

# go.mod of the wrapper: k8s.io/kubernetes plus one replace per staging module it names.
write_wrapper() {
  local work="$1" staging="v0${KUBE_VERSION#v1}"
  local gomod
  STEP="wrapper module"
  gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [ -s "$gomod" ] || fail "could not read k8s.io/kubernetes@$KUBE_VERSION's go.mod"
  mkdir -p "$work/cmd/etcd"
  {
    printf 'module airflow-tfjob.test/kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n' \
      "$KUBE_VERSION"
    printf 'replace (\n'
    sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*|\1|p' "$gomod" \
      | while read -r mod; do printf '\t%s => %s %s\n' "$mod" "$mod" "$staging"; done
    printf ')\n'
  } > "$work/go.mod"
  grep -q 'k8s.io/api => k8s.io/api' "$work/go.mod" || fail "no staging replaces found in $gomod"
  cat > "$work/cmd/etcd/main.go" <<'EOF'
// etcd, built from the version k8s.io/kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  cat > "$work/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOF
}

build_kube() {
  local work="$CACHE_ROOT/go/wrapper-$KUBE_VERSION" minor
  minor="$(echo "$KUBE_VERSION" | cut -d. -f2)"
  rm -rf "$work"
  write_wrapper "$work"
  cd "$work"
  STEP="go mod tidy (k8s.io/kubernetes $KUBE_VERSION)"
  log "resolving k8s.io/kubernetes $KUBE_VERSION and its staging modules"
  go mod tidy -e >&2 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; fail "go mod tidy"; }
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1"
  ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  STEP="go build kube-apiserver kube-controller-manager etcd"
  log "go build kube-apiserver, kube-controller-manager, etcd ($(go version | cut -d' ' -f3))"
  mkdir -p "$work/out"
  go build -tags providerless -ldflags "$ldflags" -o "$work/out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager ./cmd/etcd
  "$work/out/kube-apiserver" --version | grep -qx "Kubernetes $KUBE_VERSION" \
    || fail "kube-apiserver reports '$("$work/out/kube-apiserver" --version)'"
  STEP="install kube binaries"
  mkdir -p "$KUBE_DIR"
  for bin in kube-apiserver kube-controller-manager etcd; do
    cp "$work/out/$bin" "$KUBE_DIR/.$bin.tmp" && mv -f "$KUBE_DIR/.$bin.tmp" "$KUBE_DIR/$bin"
  done
  cd /
  rm -rf "$work"
}

build_operator() {
  STEP="go install $OPERATOR_MODULE/cmd/training-operator.v1@$OPERATOR_VERSION"
  log "$STEP"
  mkdir -p "$OPERATOR_DIR"
  GOBIN="$OPERATOR_DIR/.bin" go install -ldflags "-s -w" \
    "$OPERATOR_MODULE/cmd/training-operator.v1@$OPERATOR_VERSION"
  STEP="the operator's TFJob CRD"
  local src="$GOMODCACHE/$OPERATOR_MODULE@$OPERATOR_VERSION/manifests/base/crds/kubeflow.org_tfjobs.yaml"
  [ -s "$src" ] || fail "$src missing"
  cmp -s "$src" "$CRD_COPY" \
    || fail "the CRD of $OPERATOR_VERSION differs from tests/data/kubeflow.org_tfjobs.yaml"
  cp "$src" "$OPERATOR_DIR/kubeflow.org_tfjobs.yaml"
  mv -f "$OPERATOR_DIR/.bin/training-operator.v1" "$OPERATOR_DIR/training-operator"
  rmdir "$OPERATOR_DIR/.bin"
}

# The folder of MODULE@VERSION in the module cache (fetched first).
module_dir() {
  local dir
  dir="$(cd / && go mod download -json "$1@$2" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  [ -d "$dir" ] || fail "go mod download $1@$2 gave no folder"
  printf '%s\n' "$dir"
}

# tests/data's copy of a ClusterRole (a two-line provenance header, then the file) must be the
# module's: the test cluster grants the controller exactly what its release grants.
check_role() {
  local src="$1" copy="$HERE/../data/$2"
  [ -s "$src" ] || fail "$src missing"
  tail -n +3 "$copy" | cmp -s - "$src" || fail "$src differs from tests/data/$2 (below its header)"
}

build_trainer() {
  local jobset trainer crd began=$SECONDS
  mkdir -p "$TRAINER_DIR"
  STEP="go build $JOBSET_MODULE@$JOBSET_VERSION"
  log "$STEP"
  jobset="$(module_dir "$JOBSET_MODULE" "$JOBSET_VERSION")"
  (cd "$jobset" && go build -o "$TRAINER_DIR/.jobset-controller.tmp" \
    -ldflags "-s -w -X $JOBSET_MODULE/pkg/version.GitVersion=$JOBSET_VERSION" .)
  log "jobset-controller built in $((SECONDS - began)) s"; began=$SECONDS
  STEP="go build $TRAINER_MODULE/cmd/trainer-controller-manager@$TRAINER_VERSION"
  log "$STEP"
  trainer="$(module_dir "$TRAINER_MODULE" "$TRAINER_VERSION")"
  (cd "$trainer" && go build -o "$TRAINER_DIR/.trainer-controller-manager.tmp" -ldflags "-s -w" \
    ./cmd/trainer-controller-manager)
  log "trainer-controller-manager built in $((SECONDS - began)) s"
  STEP="JobSet's and Trainer's CRDs and ClusterRoles"
  check_role "$jobset/config/components/rbac/role.yaml" jobset-manager-role.yaml
  check_role "$trainer/manifests/base/rbac/role.yaml" trainer-controller-manager-role.yaml
  cp "$jobset/config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml" "$TRAINER_DIR/"
  for crd in $TRAINER_CRDS; do
    cp "$trainer/manifests/base/crds/trainer.kubeflow.org_$crd.yaml" "$TRAINER_DIR/"
  done
  chmod u+w "$TRAINER_DIR"/*.yaml
  mv -f "$TRAINER_DIR/.jobset-controller.tmp" "$TRAINER_DIR/jobset-controller"
  mv -f "$TRAINER_DIR/.trainer-controller-manager.tmp" "$TRAINER_DIR/trainer-controller-manager"
}

main() {
  local started=$SECONDS built=0
  # The Debian 1.20 ground's cache (kube-apiserver/ and its Go build cache, ~1 GB): unused now.
  rm -rf "$CACHE_ROOT/kube-apiserver" "$CACHE_ROOT/go-build"
  if ! kube_complete || ! operator_complete || ! trainer_complete; then
    go_env
    if ! operator_complete; then build_operator; built=1; fi
    if ! trainer_complete; then build_trainer; built=1; fi
    if ! kube_complete; then build_kube; built=1; fi
    STEP="clean the Go caches"
    chmod -R u+w "$CACHE_ROOT/go" 2>/dev/null || true
    rm -rf "$CACHE_ROOT/go"
  fi
  if [ "$built" = 1 ]; then
    log "built in $((SECONDS - started)) s; cache $(du -sh "$CACHE_ROOT" | cut -f1)"
  else
    log "cached: $KUBE_DIR, $OPERATOR_DIR, $TRAINER_DIR"
  fi
  printf '%s\n%s\n%s\n' "$KUBE_DIR" "$OPERATOR_DIR" "$TRAINER_DIR"
}

main "$@"
