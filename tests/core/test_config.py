"""The user's config file (ufs_tui/core/config.py): where it is, what it holds, each kind of problem as one line
with the rest kept, hostile files (fuzzed), and the command line winning over its [source] defaults."""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests import nobody
from tests.conftest import time_limit
from ufs_tui import cli
from ufs_tui.commands.options import apply_config, stack_from_args
from ufs_tui.core.config import MAX_BYTES, Config, SourceDefaults, config_path, load_config
from ufs_tui.core.model.display import printable

THEMES = ("textual-dark", "nord")
IDS = ("explorer.search", "app.help")


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return str(path)


def one_line_each(config: Config, problems: tuple[str, ...] | None = None) -> list[str]:
    """The problems as printed (made printable): each one line, naming the file."""
    shown = [printable(p) for p in (config.problems if problems is None else problems)]
    assert all(s.startswith(printable(config.path) + ": ") and "\n" not in s and "\x1b" not in s for s in shown)
    return shown


# ------------------------------------------------------------------ where and what
def test_the_path_follows_xdg_config_home() -> None:
    assert config_path({"XDG_CONFIG_HOME": "/etc/xdg"}) == "/etc/xdg/ufs-tui/config.toml"
    home = os.path.expanduser("~")
    assert config_path({}) == f"{home}/.config/ufs-tui/config.toml"
    assert config_path({"XDG_CONFIG_HOME": ""}) == f"{home}/.config/ufs-tui/config.toml"
    assert config_path({"XDG_CONFIG_HOME": "rel/dir"}) == f"{home}/.config/ufs-tui/config.toml"  # the spec: ignored


def test_a_missing_file_is_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = load_config()
    assert config == Config(str(tmp_path / "ufs-tui" / "config.toml"))
    assert config.problems == () and config.theme is None and config.keymap == {} and config.source == SourceDefaults()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("")
    assert load_config().problems == ()  # a file where the dir would be: no config either


def test_every_key(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """\
theme = "nord"

[keymap]
"explorer.search" = "ctrl+f"
app.help = "f2, question_mark"

[keymap.pane]
down = "n"

[source]
host_root = "/host"
docker_root = "~/docker"
containerd_root = "/c"
podman_root = "/p"
xattr_ns = "user"
options = ["metacopy=off,redirect_dir=nofollow", "index=on"]
"""))  # fmt: skip
    assert config.problems == ()
    assert config.theme == "nord"
    assert config.keymap == {"explorer.search": "ctrl+f", "app.help": "f2, question_mark", "pane.down": "n"}
    assert config.source == SourceDefaults(
        host_root="/host",
        docker_root=os.path.expanduser("~/docker"),
        containerd_root="/c",
        podman_root="/p",
        xattr_ns="user",
        options=("metacopy=off", "redirect_dir=nofollow", "index=on"),
    )


# ------------------------------------------------------------------ problems: one line each, the rest kept
@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            'theme = "nord"\nx = ]\ny = 1\n',
            "line 2, column 5: not valid TOML: invalid value; the whole file is ignored",
        ),
        ('theme = "nord"\nx = [\n', "line 3 (the end of the file): not valid TOML: invalid value; the whole file"),
        ('theme = "nord"\nkeymap = 1 2\n', "line 2, column 12: not valid TOML: expected newline or end of document"),
        ('theme = "nord"\n[source]\n[source]\n', "line 3, column 8: not valid TOML: cannot declare ('source',) twice"),
        ('theme = "nord"\nx = "', "line 2 (the end of the file): not valid TOML: unterminated string"),
        ('theme = "nord"\nx = ' + "[" * 5000, "not valid TOML: nested too deeply"),
        ('theme = "nord"\nx = 1' + "0" * 5000, "not valid TOML: Exceeds the limit (4300 digits)"),
    ],
)
def test_not_toml_is_one_line_and_all_defaults(tmp_path: Path, text: str, said: str) -> None:
    config = load_config(write(tmp_path, text))
    assert config.theme is None  # the whole file: even its good first line
    [line] = one_line_each(config)
    assert said in line, line


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, b'theme = "nord"\n\n# caf\xe9\n'))
    assert config.theme is None
    assert one_line_each(config) == [f"{config.path}: line 3: not UTF-8 text (byte 0xe9); the whole file is ignored"]


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, '\ufefftheme = "nord"\n')).theme == "nord"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("colour = 1", "colour: unknown key (the keys: theme, [keymap], [source]); ignored"),
        ("theme = 3", "theme: must be a theme's name (a string), not an integer; ignored"),
        ('theme = ""', "theme: an empty name; ignored"),
        ('keymap = "x"', "keymap: must be a table ([keymap], then lines of"),
        ('[keymap]\n"app.help" = ["f2"]', "[keymap] app.help: must be the keys as a string"),
        ('[keymap]\n"app.help" = "f2,"', "[keymap] app.help: 'f2,': an empty key name"),
        ('[keymap]\n"app.help" = "ctrl + f"', "[keymap] app.help: 'ctrl + f' is not a key name"),
        ('[keymap]\n"app.help" = "f2\\u001b[2J"', "is not a key name"),
        ("source = [1]", "source: must be a table ([source], then lines of option = value), not an array"),
        ('[source]\nhost_root = "host"', "[source] host_root: must be an absolute path, not 'host'; ignored"),
        ('[source]\nhost_root = "/a\\u0000b"', "[source] host_root: must be an absolute path"),
        ("[source]\ndocker_root = false", "[source] docker_root: must be a path (a string), not a boolean"),
        ('[source]\nxattr_ns = "users"', '[source] xattr_ns: must be "trusted" or "user", not \'users\''),
        ("[source]\nxattr_ns = 1979-05-27", '[source] xattr_ns: must be "trusted" or "user", not a date or time'),
        ('[source]\noptions = "metacopy=off"', "[source] options: must be an array of strings"),
        ('[source]\noptions = ["a", 1]', "not an array holding something other than strings"),
        ('[source]\n"odd key\\n" = 1', "[source] 'odd key\\\\n': unknown key (the keys: host_root, docker_root"),
    ],
)
def test_a_bad_key_is_one_line_and_the_rest_is_kept(tmp_path: Path, text: str, said: str) -> None:
    head = "" if text.startswith("theme") else 'theme = "nord"\n'
    tail = "" if "keymap" in text else '\n[keymap]\n"explorer.search" = "ctrl+f"\n'
    config = load_config(write(tmp_path, head + text + tail))
    [line] = one_line_each(config)
    assert said in line, line
    assert "the whole file" not in line
    if not text.startswith("theme"):
        assert config.theme == "nord"
    if "keymap" not in text:
        assert config.keymap == {"explorer.search": "ctrl+f"}


def test_unknown_theme_and_binding_ids_for_the_ui(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'theme = "neon"\n[keymap]\n"app.help" = "f2"\n"explorer.serch" = "x"\n'))
    assert config.problems == ()  # the core cannot know these: the UI's names
    checked, problems = config.for_ui(THEMES, IDS)
    assert checked.theme is None and checked.keymap == {"app.help": "f2"}
    assert one_line_each(config, problems) == [
        f"{config.path}: theme: unknown theme 'neon' (available: textual-dark, nord); the default is used",
        f"{config.path}: [keymap] explorer.serch: no key has this id (the ids: README, Configuration); ignored",
    ]
    good, none = load_config(write(tmp_path, 'theme = "nord"\n')).for_ui(THEMES, IDS)
    assert good.theme == "nord" and none == ()


def test_too_big_a_fifo_and_a_dir_are_refused_without_blocking(tmp_path: Path) -> None:
    big = load_config(write(tmp_path, "# " + "x" * MAX_BYTES + "\n"))
    assert one_line_each(big) == [f"{big.path}: too big for a config file (over 1 MiB); the whole file is ignored"]
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with time_limit(5):  # nobody writes to it: reading it would block for ever
        assert one_line_each(load_config(str(fifo)))[0].endswith(": not a regular file; the whole file is ignored")
    assert "not a regular file" in load_config(str(tmp_path)).problems[0]


def test_an_unreadable_file_is_one_line_and_an_unsearchable_dir_is_no_file(shared_tmp: str) -> None:
    """As uid 65534: a config file it may not read is a problem; one behind a dir it may not search (another
    user's HOME, as with ``sudo -u`` keeping HOME) is no file at all, and nothing is said."""
    layer = os.path.join(shared_tmp, "layer")
    os.mkdir(layer, 0o755)
    for xdg, mode in (("readable", 0o755), ("private", 0o700)):
        os.makedirs(os.path.join(shared_tmp, xdg, "ufs-tui"))
        os.chmod(os.path.join(shared_tmp, xdg), mode)  # owned by root
        config = os.path.join(shared_tmp, xdg, "ufs-tui", "config.toml")
        Path(config).write_text('theme = "nord"\n')
        os.chmod(config, 0o600)
    said = {}
    for xdg in ("readable", "private"):
        r = nobody.run("-m", "ufs_tui", "tree", "--lower", layer, env={"XDG_CONFIG_HOME": f"{shared_tmp}/{xdg}"},
                       text=True)  # fmt: skip
        assert r.returncode == 0 and r.stdout == f"/  [lower:0={layer}]\n", r
        said[xdg] = r.stderr
    path = f"{shared_tmp}/readable/ufs-tui/config.toml"
    assert said == {
        "readable": f"ufs-tui: warning: {path}: cannot open it: Permission denied; the whole file is ignored\n",
        "private": "",
    }


# ------------------------------------------------------------------ the command line wins
SOURCE = '[source]\nhost_root = "/host"\ndocker_root = "/d"\nxattr_ns = "user"\noptions = ["metacopy=off"]\n'


def parsed(argv: list[str], config: Config) -> argparse.Namespace:
    args = cli.build_parser().parse_args(argv)
    apply_config(args, config)
    return args


def test_source_defaults_fill_what_the_command_line_left_out(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCE))
    args = parsed(["tree", "--lower", str(tmp_path)], config)
    assert (args.host_root, args.docker_root, args.podman_root) == ("/host", "/d", None)
    assert args.xattr_ns == "user" and args.stack_options == ["metacopy=off"]
    stack = stack_from_args(args)
    assert stack.options == ("metacopy=off",) and stack.xattr_ns == "user"
    assert parsed(["ps"], config).docker_root == "/d"  # the engine roots, wherever the command takes them


def test_flags_given_win_over_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SOURCE))
    argv = ["tree", "--lower", str(tmp_path), "--host-root", "/other", "--xattr-ns", "trusted", "-o", "index=on"]
    args = parsed(argv, config)
    assert (args.host_root, args.docker_root, args.xattr_ns) == ("/other", "/d", "trusted")
    stack = stack_from_args(args)
    assert stack.options == ("index=on",) and stack.xattr_ns == "trusted"  # -o replaces the config's options
    assert stack_from_args(parsed(["tree", "--lower", str(tmp_path), "--userxattr"], config)).xattr_ns == "user"
    assert stack_from_args(parsed(["tree", "--lower", str(tmp_path), "-o", ""], config)).options == ()


def test_the_cli_says_the_problems_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ufs-tui").mkdir()
    (tmp_path / "ufs-tui" / "config.toml").write_text(
        'theme = 1\n[source]\noptions = ["metacopy=off"]\nhost_root = 2\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    layer = tmp_path / "l0"
    (layer / "d").mkdir(parents=True)
    assert cli.main(["tree", "--lower", str(layer), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["path"] for line in out.splitlines()] == ["/d"]
    path = tmp_path / "ufs-tui" / "config.toml"
    assert err.splitlines() == [
        f"ufs-tui: warning: {path}: theme: must be a theme's name (a string), not an integer; ignored",
        f"ufs-tui: warning: {path}: [source] host_root: must be a path (a string), not an integer; ignored",
    ]


# ------------------------------------------------------------------ hostile files: fuzzed
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKENS = st.sampled_from(
    ["theme", "keymap", "source", "[keymap]", "[source]", "[[source]]", "[keymap.pane]", "host_root", "xattr_ns",
     "options", '"app.help"', "explorer.search", " = ", "=", '"', "'", '"""', "[", "]", "{", "}", ",", ".", "\n",
     "#", "\\", "\\u0000", "\\u001b", "\x00", "\x1b", "\x7f", "\r", "\t", "1", "-", "1979-05-27T07:32:00Z", "true",
     "nan", "0x1f", "é", "\udcff"]
)  # fmt: skip
TOML_VALUES = st.recursive(
    st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)
KEYS = st.sampled_from(["theme", "keymap", "source", "host_root", "xattr_ns", "options", "app.help", "pane.down"])


def toml_value(v: object) -> str:
    """``v`` written as TOML (inline tables and arrays; strings as JSON writes them, DEL escaped too)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_value(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    return str(v)  # int, date


def loaded_safely(data: bytes) -> Config:
    """The config ``data`` makes: loaded in bounded time, every problem one printable line naming the file."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "config.toml")
        with open(path, "wb") as f:
            f.write(data)
        with time_limit(10):
            config = load_config(path)
        checked, more = config.for_ui(THEMES, IDS)
    one_line_each(config)
    one_line_each(config, more)
    event(f"{min(len(config.problems) + len(more), 3)} problems")
    assert checked.theme in (None, *THEMES) and set(checked.keymap) <= set(IDS)
    assert all(isinstance(k, str) and k.strip() for k in config.keymap.values())
    return config


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=400),
        st.lists(TOKENS, max_size=40).map(lambda t: "".join(t).encode(errors="surrogateescape")),
    )
)
def test_fuzz_hostile_bytes(data: bytes) -> None:
    loaded_safely(data)


@FUZZ
@given(
    st.dictionaries(KEYS | st.text(max_size=10), TOML_VALUES, max_size=5),
    st.dictionaries(KEYS | st.text(max_size=10), TOML_VALUES, max_size=5),
)
def test_fuzz_valid_toml_of_any_shape(top: dict[str, object], source: dict[str, object]) -> None:
    lines = [f"{toml_value(k)} = {toml_value(v)}" for k, v in top.items() if k != "source"]
    lines += ["[source]"] + [f"{toml_value(k)} = {toml_value(v)}" for k, v in source.items()]
    config = loaded_safely("\n".join(lines).encode())
    assert not any("the whole file" in p for p in config.problems), config.problems  # it was TOML
    assert isinstance(config.source.options, tuple) and config.source.xattr_ns in (None, "trusted", "user")
