#!/usr/bin/env bash
# Build (and optionally push) lambench's container images: the base image first, then one image per
# model family, tagged REGISTRY/<name>:IMAGE_VERSION with the pins of images/versions.env. An image's
# pins (PIN_<IMAGE>: comma-separated name==version, no spaces) go to its Dockerfile as they are, as the
# build argument FAMILY_PACKAGES (BASE_PACKAGES for the base); the Dockerfile splits them at the commas.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# shellcheck source=images/versions.env
source "$here/versions.env"

all_families=(chgnet sevenn deepmd mace mattersim orb diep torchani xtb hienet)

usage() {
  cat <<EOF
usage: images/build.sh [options] [family ...]

Builds ${REGISTRY}/base:${IMAGE_VERSION} and then the model families' images
(default: all of ${all_families[*]}). dummy, emt and base name the base image.

options:
  --engine docker|buildah|podman  container engine (default: docker when its daemon answers,
                                  else buildah, else podman); buildah runs with --isolation chroot
  --registry REG                  tag (and push) as REG/<name>:${IMAGE_VERSION} (default: ${REGISTRY})
  --push                          push every image built, after all builds succeeded
  --base-from IMAGE               FROM of the base image (default: ${CUDA_BASE_IMAGE})
  --torch-variant VARIANT         torch build, e.g. cu130 or cpu (default: ${TORCH_VARIANT})
  --torch-index-url URL           PyTorch wheel index (default: https://download.pytorch.org/whl/VARIANT)
  --skip-base                     do not rebuild the base image; use REG/base:${IMAGE_VERSION} as it is
  --dry-run                       print the engine commands instead of running them
  -h, --help                      this help

example, a CPU-only base image from a local Debian image, with buildah:
  images/build.sh --engine buildah --base-from localhost/debian-bookworm:12 --torch-variant cpu base
EOF
}

die() {
  echo "images/build.sh: error: $*" >&2
  exit 2
}

engine=""
registry="$REGISTRY"
push=0
base_from="$CUDA_BASE_IMAGE"
torch_variant="$TORCH_VARIANT"
torch_index=""
skip_base=0
dry_run=0
requested=()

# check_pins NAME VALUE: VALUE is one or more exact pins name==version, separated by commas.
check_pins() {
  [[ "$2" =~ ^[A-Za-z0-9][^,[:space:]=]*==[^,[:space:]=]+(,[A-Za-z0-9][^,[:space:]=]*==[^,[:space:]=]+)*$ ]] \
    || die "images/versions.env: $1=$2 is not a comma-separated list of exact pins (name==version,...)"
}

need_value() {
  [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --engine) need_value "$1" $#; engine="$2"; shift 2 ;;
    --engine=*) engine="${1#*=}"; shift ;;
    --registry) need_value "$1" $#; registry="$2"; shift 2 ;;
    --registry=*) registry="${1#*=}"; shift ;;
    --push) push=1; shift ;;
    --base-from) need_value "$1" $#; base_from="$2"; shift 2 ;;
    --base-from=*) base_from="${1#*=}"; shift ;;
    --torch-variant) need_value "$1" $#; torch_variant="$2"; shift 2 ;;
    --torch-variant=*) torch_variant="${1#*=}"; shift ;;
    --torch-index-url) need_value "$1" $#; torch_index="$2"; shift 2 ;;
    --torch-index-url=*) torch_index="${1#*=}"; shift ;;
    --skip-base) skip_base=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; requested+=("$@"); break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) requested+=("$1"); shift ;;
  esac
done

registry="${registry%/}"
[[ "$registry" =~ ^[a-z0-9][a-z0-9._:/-]*$ ]] || die "--registry '$registry' is not a registry path like ghcr.io/lambench"
[[ "$torch_variant" =~ ^(cpu|cu[0-9]+|rocm[0-9.]+|xpu)$ ]] || die "--torch-variant '$torch_variant': expected cpu, cuNNN, rocmX.Y or xpu"
if [ -z "$torch_index" ]; then
  if [ "$torch_variant" = "$TORCH_VARIANT" ]; then
    torch_index="$TORCH_INDEX_URL"
  else
    torch_index="https://download.pytorch.org/whl/${torch_variant}"
  fi
fi

# Which images: the base (always first, unless --skip-base) and the requested families in order.
families=()
if [ ${#requested[@]} -eq 0 ]; then
  families=("${all_families[@]}")
fi
for name in ${requested[@]+"${requested[@]}"}; do
  case "$name" in
    base | dummy | emt) continue ;;
  esac
  case " ${all_families[*]} " in
    *" $name "*) ;;
    *) die "unknown image '$name': choose from base ${all_families[*]}" ;;
  esac
  case " ${families[*]-} " in
    *" $name "*) ;;
    *) families+=("$name") ;;
  esac
done

# The engine: validated when given, else the first one that can build here.
if [ -n "$engine" ]; then
  case "$engine" in
    docker | buildah | podman) ;;
    *) die "unknown engine '$engine': choose docker, buildah or podman" ;;
  esac
  if [ "$dry_run" = 0 ] && ! command -v "$engine" >/dev/null 2>&1; then
    die "engine '$engine' is not installed (not on PATH)"
  fi
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v buildah >/dev/null 2>&1; then
  engine=buildah
elif command -v podman >/dev/null 2>&1; then
  engine=podman
elif [ "$dry_run" = 1 ]; then
  engine=docker
elif command -v docker >/dev/null 2>&1; then
  die "docker is installed but its daemon does not answer (docker info), and neither buildah nor podman is installed"
else
  die "no container engine found: install docker, buildah or podman"
fi

run() {
  if [ "$dry_run" = 1 ]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# build TAG DOCKERFILE CONTEXT [--build-arg K=V ...]
build() {
  local tag="$1" dockerfile="$2" context="$3"
  shift 3
  case "$engine" in
    docker) run docker build --file "$dockerfile" --tag "$tag" "$@" "$context" ;;
    podman) run podman build --format docker --file "$dockerfile" --tag "$tag" "$@" "$context" ;;
    buildah)
      run buildah bud --isolation "${BUILDAH_ISOLATION:-chroot}" --format docker \
        --file "$dockerfile" --tag "$tag" "$@" "$context"
      ;;
  esac
}

push_image() {
  case "$engine" in
    buildah) run buildah push "$1" "docker://$1" ;;
    *) run "$engine" push "$1" ;;
  esac
}

common_args=(--build-arg "IMAGE_VERSION=${IMAGE_VERSION}" --build-arg "SOURCE_URL=${SOURCE_URL}")
base_tag="${registry}/base:${IMAGE_VERSION}"
built=()
started=$SECONDS

if [ "$skip_base" = 0 ]; then
  check_pins PIN_BASE "$PIN_BASE"
  # The base image's context holds only what `pip install` of lambench needs.
  context="$(mktemp -d "${TMPDIR:-/tmp}/lambench-image-context.XXXXXX")"
  trap 'rm -rf "$context"' EXIT
  for path in pyproject.toml README.md constraints.txt lambench_core ops workflows; do
    [ -e "$repo/$path" ] || die "$repo/$path is missing; the base image needs it"
  done
  tar -C "$repo" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - \
    pyproject.toml README.md constraints.txt lambench_core ops workflows | tar -C "$context" -xf -
  echo "==> ${base_tag} (${engine}, FROM ${base_from}, torch ${TORCH_VERSION}+${torch_variant})" >&2
  build "$base_tag" "$here/base/Dockerfile" "$context" "${common_args[@]}" \
    --build-arg "BASE_IMAGE=${base_from}" \
    --build-arg "PIP_VERSION=${PIP_VERSION}" \
    --build-arg "TORCH_VERSION=${TORCH_VERSION}" \
    --build-arg "TORCH_VARIANT=${torch_variant}" \
    --build-arg "TORCH_INDEX_URL=${torch_index}" \
    --build-arg "BASE_PACKAGES=${PIN_BASE}"
  built+=("$base_tag")
fi

for family in ${families[@]+"${families[@]}"}; do
  pin_var="PIN_$(echo "$family" | tr '[:lower:]' '[:upper:]')"
  pin="${!pin_var:-}"
  [ -n "$pin" ] || die "images/versions.env has no ${pin_var}"
  check_pins "$pin_var" "$pin"
  tag="${registry}/${family}:${IMAGE_VERSION}"
  extra=()
  if [ "$family" = mattersim ]; then
    extra=(--build-arg "TORCH_VARIANT=${torch_variant}" --build-arg "TORCH_INDEX_URL=${torch_index}"
      --build-arg "TORCHVISION_VERSION=${TORCHVISION_VERSION}" --build-arg "TORCHAUDIO_VERSION=${TORCHAUDIO_VERSION}")
  fi
  echo "==> ${tag} (${engine}, ${pin//,/ })" >&2
  build "$tag" "$here/$family/Dockerfile" "$here/$family" "${common_args[@]}" \
    --build-arg "BASE_IMAGE=${base_tag}" --build-arg "FAMILY_PACKAGES=${pin}" ${extra[@]+"${extra[@]}"}
  built+=("$tag")
done

if [ "$push" = 1 ]; then
  for tag in ${built[@]+"${built[@]}"}; do
    echo "==> push ${tag}" >&2
    push_image "$tag"
  done
fi

if [ "$dry_run" = 1 ]; then
  echo "dry run: would build ${#built[@]} image(s) with ${engine}: ${built[*]-}" >&2
else
  echo "built ${#built[@]} image(s) with ${engine} in $((SECONDS - started)) s: ${built[*]-}" >&2
fi
if [ "$registry" != "$REGISTRY" ]; then
  echo "note: the model cards name ${REGISTRY}/...; point the cluster configuration's images: at ${registry}/..." >&2
fi
