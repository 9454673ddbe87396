#!/usr/bin/env bash
# Build a real kube-apiserver and kube-controller-manager (v1.20.2) offline from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19, and install etcd from Debian: the API server the
# Kubernetes tests run against (see ../shared/reference/real-apiserver.md for the recipe and its limits).
#
# Cached outside the clone: $FLYTE_K8S_CACHE (default ~/.cache/airflow-provider-flyte/k8s-v1.20.2);
# skipped when its bin/ has both binaries. Prints the bin folder on the last line.
# About 14 minutes and 3.4 GB of disk on 2 cores the first time (the Go build cache is removed after).
set -euo pipefail

CACHE="${FLYTE_K8S_CACHE:-$HOME/.cache/airflow-provider-flyte/k8s-v1.20.2}"
BIN="$CACHE/bin"
SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo"

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ]; then
  [ -x /usr/lib/go-1.19/bin/go ] || need_apt+=(golang-1.19-go)
  command -v rsync >/dev/null 2>&1 || need_apt+=(rsync)
  command -v make >/dev/null 2>&1 || need_apt+=(make)
fi
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing system packages: ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  # etcd-server's maintainer scripts would start a system etcd where systemd/init runs: the tests start their own
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  command -v systemctl >/dev/null 2>&1 && $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
fi

if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ]; then
  echo "$BIN"
  exit 0
fi

started=$(date +%s)
WORK="$CACHE/build"
rm -rf "$WORK"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/archives/partial" "$WORK/src" "$BIN"

# A private APT configuration with a deb-src line for bookworm, on the mirror the system already uses:
# the system's own sources stay untouched.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || { echo "build_apiserver: no Debian mirror found in the APT sources" >&2; exit 1; }
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main" > "$WORK/apt/sources.list"
cat > "$WORK/apt/apt.conf" <<CONF
Dir::Etc::SourceList "$WORK/apt/sources.list";
Dir::Etc::SourceParts "$WORK/apt/none";
Dir::State::Lists "$WORK/apt/lists";
Dir::Cache::Archives "$WORK/apt/archives";
CONF
chmod 755 "$CACHE" "$WORK" "$WORK/apt" "$WORK/src"  # APT's _apt user downloads into them
APT_CONFIG="$WORK/apt/apt.conf" apt-get update -qq >&2
(cd "$WORK/src" && APT_CONFIG="$WORK/apt/apt.conf" apt-get source -qq --download-only kubernetes >&2)
# reflect2 1.0.2's sources (the vendored 1.0.1 breaks on Go >= 1.18): a binary package of the system's sources
(cd "$WORK/src" && apt-get download -qq golang-github-modern-go-reflect2-dev >&2)

export GOROOT=/usr/lib/go-1.19 PATH=/usr/lib/go-1.19/bin:$PATH
export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GO111MODULE=off GOPROXY=off CGO_ENABLED=0 GOFLAGS=
orig=$(ls "$WORK"/src/kubernetes_*.orig.tar.gz | head -1)
tar xzf "$orig" -C "$WORK/src"
tree=$(find "$WORK/src" -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$tree" "$GOPATH/src/k8s.io/kubernetes"

dpkg -x "$(ls "$WORK"/src/golang-github-modern-go-reflect2-dev_*.deb | head -1)" "$WORK/reflect2"
r2=$(find "$WORK/reflect2" -type d -path '*github.com/modern-go/reflect2' | head -1)
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
cp -r "$r2" "$tree/vendor/github.com/modern-go/reflect2"

# The behaviour-changing fix: newer Go runtimes make kube-openapi's zero-value test treat "" as null,
# so every empty string and CRD `default: ""` would be refused. Later Kubernetes versions test for nil.
python3 - "$tree/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
new, n = re.subn(r"if data == nil \|\| reflect\.DeepEqual\(reflect\.Zero\(reflect\.TypeOf\(data\)\), reflect\.ValueOf\(data\)\) \{",
                 "if data == nil {", text)
if n != 1:
    sys.exit(f"build_apiserver: the zero-value test in {path} was not found once (found {n})")
open(path, "w").write(new)
PY

cd "$GOPATH/src/k8s.io/kubernetes"
make generated_files >&2
V=k8s.io/kubernetes/vendor/k8s.io
LDFLAGS="-s -w -X $V/component-base/version.gitVersion=v1.20.2 -X $V/component-base/version.gitMajor=1 -X $V/component-base/version.gitMinor=20"
for cmd in kube-apiserver kube-controller-manager; do
  go build -p 2 -trimpath -ldflags "$LDFLAGS" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
done
cd /
rm -rf "$WORK"
echo "build_apiserver: built in $(( $(date +%s) - started )) s" >&2
echo "$BIN"
